//! The heart of webops-mcp: tools, the permission model, validation, gates, audit and the MCP
//! handler.

mod identity;
mod tool;

pub use identity::{AuthMethod, Identity, Permission, PermissionSet, UnknownPermission};
pub use tool::{Access, ProgressSink, Tool, ToolContext, ToolError, ToolErrorKind, ToolOutput};
