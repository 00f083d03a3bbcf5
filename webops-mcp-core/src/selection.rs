//! Which tools a server has: [`ToolSelection`], the union of tools named one by one and of
//! [`Toolset`]s (named groups of built-in tools). A tool left out does not exist on the
//! server: it is not listed, and a call answers like one to an unknown tool. Read-only mode
//! applies on top: it hides the selected tools that change something.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// A named group of built-in tools, selected as a whole (`--toolsets observe,deploy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Toolset {
    /// Reading what runs: `webops_list_deployments`, `webops_get_status`, `webops_get_logs`,
    /// `webops_system_health`.
    Observe,
    /// Changing what runs: `webops_deploy_app`, `webops_manage_service`.
    Deploy,
    /// `webops_security_audit`.
    Security,
    /// `webops_delete_deployment`.
    Admin,
}

impl Toolset {
    /// Every toolset, in the order they are documented.
    pub const ALL: &'static [Toolset] = &[
        Toolset::Observe,
        Toolset::Deploy,
        Toolset::Security,
        Toolset::Admin,
    ];

    /// The configuration name: `observe`, `deploy`, `security` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Toolset::Observe => "observe",
            Toolset::Deploy => "deploy",
            Toolset::Security => "security",
            Toolset::Admin => "admin",
        }
    }

    /// The names of the built-in tools in this toolset. Every built-in tool is in exactly
    /// one toolset.
    pub fn tools(self) -> &'static [&'static str] {
        crate::tools::toolset(self)
    }
}

impl fmt::Display for Toolset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Toolset {
    type Err = String;

    /// Parses a configuration name (exact, lowercase); the error lists every toolset with
    /// its tools.
    fn from_str(name: &str) -> Result<Self, String> {
        Toolset::ALL
            .iter()
            .copied()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| format!("unknown toolset {name:?}; valid toolsets: {}", described()))
    }
}

/// Every toolset with its tools: `observe (webops_list_deployments, ...), deploy (...)`.
fn described() -> String {
    Toolset::ALL
        .iter()
        .map(|set| format!("{set} ({})", set.tools().join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The names of the built-in tools, toolset by toolset.
pub fn builtin_tool_names() -> impl Iterator<Item = &'static str> {
    Toolset::ALL
        .iter()
        .flat_map(|set| set.tools().iter().copied())
}

/// Which tools a server has: the tools named one by one plus those of the named toolsets.
/// Naming nothing (the default) selects every tool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolSelection {
    tools: BTreeSet<String>,
    toolsets: BTreeSet<Toolset>,
}

impl ToolSelection {
    /// Every tool (the default).
    pub fn all() -> Self {
        Self::default()
    }

    /// Adds tools by name.
    pub fn with_tools<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.tools.extend(names.into_iter().map(Into::into));
        self
    }

    /// Adds toolsets.
    pub fn with_toolsets(mut self, toolsets: impl IntoIterator<Item = Toolset>) -> Self {
        self.toolsets.extend(toolsets);
        self
    }

    /// Whether it names nothing, and so selects every tool.
    pub fn is_all(&self) -> bool {
        self.tools.is_empty() && self.toolsets.is_empty()
    }

    /// The tools named one by one, sorted.
    pub fn tools(&self) -> impl Iterator<Item = &str> {
        self.tools.iter().map(String::as_str)
    }

    /// The toolsets named, in the order of [`Toolset::ALL`].
    pub fn toolsets(&self) -> impl Iterator<Item = Toolset> + '_ {
        self.toolsets.iter().copied()
    }

    /// Whether the tool named `name` is selected.
    pub fn selects(&self, name: &str) -> bool {
        self.is_all()
            || self.tools.contains(name)
            || self.toolsets.iter().any(|set| set.tools().contains(&name))
    }

    /// Checks that every tool named one by one is one of `available` (a server's tools). A
    /// toolset may name tools a server lacks (one without the built-in tools): it selects
    /// those it has.
    pub fn check<'a>(
        &self,
        available: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), UnknownTools> {
        let available: Vec<&str> = available.into_iter().collect();
        let unknown: Vec<String> = self
            .tools()
            .filter(|name| !available.contains(name))
            .map(str::to_owned)
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(UnknownTools {
                unknown,
                valid: available.into_iter().map(str::to_owned).collect(),
            })
        }
    }
}

/// A selection named tools that a server does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct UnknownTools {
    /// The names that are no tool of the server.
    pub unknown: Vec<String>,
    /// The tools the server has.
    pub valid: Vec<String>,
}

impl fmt::Display for UnknownTools {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quoted: Vec<String> = self.unknown.iter().map(|n| format!("{n:?}")).collect();
        let noun = if self.unknown.len() == 1 {
            "tool"
        } else {
            "tools"
        };
        write!(f, "unknown {noun} {}", quoted.join(", "))?;
        for name in &self.unknown {
            if let Ok(set) = name.parse::<Toolset>() {
                write!(f, " ({:?} is a toolset, not a tool)", set.as_str())?;
            }
        }
        write!(
            f,
            "; valid tools: {}; valid toolsets: {}",
            self.valid.join(", "),
            described()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegistryBuilder;

    #[test]
    fn the_toolsets_split_the_builtin_tools_into_four() {
        let builtin = RegistryBuilder::new().with_builtin_tools().names();
        let mut in_sets: Vec<&str> = builtin_tool_names().collect();
        assert_eq!(in_sets.len(), builtin.len(), "a tool is in two toolsets");
        in_sets.sort_unstable();
        let mut builtin = builtin;
        builtin.sort_unstable();
        assert_eq!(in_sets, builtin);
        assert_eq!(
            Toolset::Observe.tools(),
            [
                "webops_list_deployments",
                "webops_get_status",
                "webops_get_logs",
                "webops_system_health"
            ]
        );
        assert_eq!(
            Toolset::Deploy.tools(),
            ["webops_deploy_app", "webops_manage_service"]
        );
        assert_eq!(Toolset::Security.tools(), ["webops_security_audit"]);
        assert_eq!(Toolset::Admin.tools(), ["webops_delete_deployment"]);
    }

    #[test]
    fn toolsets_parse_by_their_names_only() {
        for set in Toolset::ALL {
            assert_eq!(set.as_str().parse::<Toolset>(), Ok(*set));
        }
        let err = "ops".parse::<Toolset>().unwrap_err();
        assert!(err.starts_with("unknown toolset \"ops\""), "{err}");
        assert!(err.contains("admin (webops_delete_deployment)"), "{err}");
        assert!("Observe".parse::<Toolset>().is_err());
    }

    #[test]
    fn nothing_named_selects_everything_and_names_are_a_union() {
        assert!(ToolSelection::all().is_all());
        assert!(ToolSelection::all().selects("anything"));
        let selection = ToolSelection::all()
            .with_tools(["webops_deploy_app"])
            .with_toolsets([Toolset::Security]);
        assert!(!selection.is_all());
        assert!(selection.selects("webops_deploy_app"));
        assert!(selection.selects("webops_security_audit"));
        assert!(!selection.selects("webops_get_status"));
        assert_eq!(
            selection.toolsets().collect::<Vec<_>>(),
            [Toolset::Security]
        );
    }

    #[test]
    fn unknown_names_are_reported_with_every_valid_name() {
        let selection = ToolSelection::all().with_tools(["webops_nope", "observe", "b"]);
        let err = selection.check(["a", "b"]).unwrap_err();
        assert_eq!(err.unknown, ["observe", "webops_nope"]);
        let text = err.to_string();
        assert!(
            text.starts_with(
                "unknown tools \"observe\", \"webops_nope\" (\"observe\" is a toolset"
            ),
            "{text}"
        );
        assert!(
            text.contains("valid tools: a, b; valid toolsets: observe ("),
            "{text}"
        );
        assert!(
            selection
                .check(["a", "b", "observe", "webops_nope"])
                .is_ok()
        );
        // A toolset selects the tools it has; it is never unknown.
        let sets = ToolSelection::all().with_toolsets([Toolset::Admin]);
        assert!(sets.check(["a"]).is_ok());
    }
}
