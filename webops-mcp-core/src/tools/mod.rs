//! The built-in tools, one file each.

use crate::registry::RegistryBuilder;

/// Adds every built-in tool to `builder`: one line per tool.
pub(crate) fn register_builtin(builder: RegistryBuilder) -> RegistryBuilder {
    builder
}
