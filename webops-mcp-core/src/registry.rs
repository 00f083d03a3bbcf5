//! The tool registry: built once from the built-in tools plus any custom ones.
//!
//! SKELETON: `RegistryBuilder::tool` is the fixed registration API; the rest is to be built.

use std::sync::Arc;

use crate::tool::Tool;

/// Builds the set of tools a server offers.
#[derive(Default)]
pub struct RegistryBuilder {
    tools: Vec<Arc<dyn ErasedTool>>,
}

/// A [`Tool`] with its types erased, so tools of different types live in one registry.
pub(crate) trait ErasedTool: Send + Sync {
    fn name(&self) -> &'static str;
}

impl<T: Tool> ErasedTool for T {
    fn name(&self) -> &'static str {
        T::NAME
    }
}

impl RegistryBuilder {
    /// An empty builder (no tools).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the built-in tools of the design brief.
    pub fn with_builtin_tools(self) -> Self {
        crate::tools::register_builtin(self)
    }

    /// Names of the tools added so far, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.tools.iter().map(|t| t.name()).collect()
    }

    /// Adds a tool.
    pub fn tool<T: Tool>(mut self, tool: T) -> Self {
        self.tools.push(Arc::new(tool));
        self
    }
}
