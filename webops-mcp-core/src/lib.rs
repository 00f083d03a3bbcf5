//! The heart of webops-mcp: tools, the permission model, validation, gates, audit and the MCP
//! handler.

mod identity;

pub use identity::{AuthMethod, Identity, Permission, PermissionSet, UnknownPermission};
