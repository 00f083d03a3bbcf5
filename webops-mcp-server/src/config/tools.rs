//! `[tools]` (`enabled`, `toolsets`) and the flags `--tools` and `--toolsets`: which tools
//! exist on this server, as core's [`ToolSelection`]. The two keys (or the two flags) make a
//! union; naming nothing keeps every tool. Either flag replaces the file's whole selection.
//! An unknown tool or toolset is an error that lists the valid ones.

use serde::{Deserialize, Serialize};
use webops_mcp_core::{ToolSelection, Toolset, builtin_tool_names};

/// `[tools]` as the file holds it.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ToolsFile {
    /// Tools by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) enabled: Option<Vec<String>>,
    /// Toolsets by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) toolsets: Option<Vec<String>>,
}

impl ToolsFile {
    /// The effective selection in the file's shape: no keys for every tool.
    pub(super) fn view(selection: &ToolSelection) -> ToolsFile {
        if selection.is_all() {
            return ToolsFile::default();
        }
        ToolsFile {
            enabled: Some(selection.tools().map(str::to_owned).collect()),
            toolsets: Some(
                selection
                    .toolsets()
                    .map(|set| set.as_str().to_owned())
                    .collect(),
            ),
        }
    }
}

/// The selection given on the command line (`--tools`, `--toolsets`), if any.
#[derive(Debug, Clone, Default)]
pub(super) struct ToolFlags {
    /// `--tools`.
    pub(super) tools: Option<Vec<String>>,
    /// `--toolsets`.
    pub(super) toolsets: Option<Vec<String>>,
}

impl ToolFlags {
    /// Whether either flag was given.
    fn given(&self) -> bool {
        self.tools.is_some() || self.toolsets.is_some()
    }
}

/// The selection: the flags' when either was given, else the file's; every tool when
/// neither names anything. Names are trimmed and empty ones skipped.
pub(super) fn merge_tools(
    file: ToolsFile,
    flags: &ToolFlags,
    errors: &mut Vec<String>,
) -> ToolSelection {
    let (tools, toolsets, [tools_origin, toolsets_origin]) = if flags.given() {
        (
            flags.tools.clone(),
            flags.toolsets.clone(),
            ["--tools", "--toolsets"],
        )
    } else {
        (
            file.enabled,
            file.toolsets,
            ["[tools] enabled", "[tools] toolsets"],
        )
    };
    if tools.is_none() && toolsets.is_none() {
        return ToolSelection::all();
    }
    let (tools, toolsets) = (names(tools), names(toolsets));
    if tools.is_empty() && toolsets.is_empty() {
        errors.push(format!(
            "{tools_origin} and {toolsets_origin} select no tool: name at least one tool or \
             toolset, or leave both out for every tool; valid tools: {}; valid toolsets: {}",
            builtin_tool_names().collect::<Vec<_>>().join(", "),
            Toolset::ALL
                .iter()
                .map(|set| set.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        return ToolSelection::all();
    }
    let mut sets = Vec::with_capacity(toolsets.len());
    for name in toolsets {
        match name.parse::<Toolset>() {
            Ok(set) => sets.push(set),
            Err(e) => errors.push(format!("{toolsets_origin}: {e}")),
        }
    }
    let selection = ToolSelection::all().with_tools(tools).with_toolsets(sets);
    if let Err(e) = selection.check(builtin_tool_names()) {
        errors.push(format!("{tools_origin}: {e}"));
    }
    selection
}

/// The names of a list, trimmed, without empty ones.
fn names(list: Option<Vec<String>>) -> Vec<String> {
    list.unwrap_or_default()
        .into_iter()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect()
}
