//! The heart of webops-mcp: tools, the permission model, validation, gates, audit and the MCP
//! handler.

mod identity;
pub mod redact;
mod registry;
mod tool;
mod tools;

pub use identity::{AuthMethod, Identity, Permission, PermissionSet, UnknownPermission};
pub use registry::RegistryBuilder;
pub use tool::{Access, ProgressSink, Tool, ToolContext, ToolError, ToolErrorKind, ToolOutput};
