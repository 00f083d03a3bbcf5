//! MCP completions (`completion/complete`) of prompt arguments and resource template
//! variables: deployment names (the `{name}` of both templates, `diagnose_deployment`'s
//! `name`, `security_review`'s `deployment`) and `incident_summary`'s `time_range`.
//!
//! Only for what the caller was offered: a prompt it cannot run or a template whose
//! resources it cannot read is unknown to it. Deployment names come from WebOps — a
//! `webops_list_deployments` read of up to 200 (a call per page of the answer budget) for the
//! caller through the pipeline, so only for callers that hold `deploy:read` and counted
//! against their rate limit like any call — filtered by the typed prefix, at most 100 of them
//! with the total and whether there are more. MCP's
//! completion references name only prompts and resource templates: tool arguments cannot be
//! completed.

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use webops_client::is_deployment_name;

use crate::confirm::Asker;
use crate::identity::{Identity, Permission};
use crate::pipeline::{CallError, CallRequest};
use crate::prompts::{self, ArgKind, TIME_RANGES};
use crate::resources;
use crate::server::WebOpsMcpServer;
use crate::tool::structured_value;

/// The most values one completion answers (MCP's limit).
pub(crate) const MAX_VALUES: usize = 100;

/// The tool deployment names come from.
const LIST_TOOL: &str = "webops_list_deployments";

/// The most deployments asked for (the tool's own limit).
const LIST_LIMIT: u32 = 200;

/// The most pages of one list read (each a tool call) a completion reads.
const MAX_PAGES: usize = 5;

/// What a completion is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    /// A prompt, by name.
    Prompt(&'a str),
    /// A resource template, by its URI template.
    Template(&'a str),
}

/// The values offered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Completion {
    /// At most [`MAX_VALUES`] values, in WebOps's (or the enum's) order.
    pub(crate) values: Vec<String>,
    /// How many values match in all (of the up to 200 deployments read).
    pub(crate) total: usize,
    /// Whether more match than `values` holds.
    pub(crate) has_more: bool,
}

impl Completion {
    /// `matching` cut to [`MAX_VALUES`]; `more` says that the source itself was cut.
    fn of(matching: Vec<String>, more: bool) -> Self {
        let total = matching.len();
        let mut values = matching;
        values.truncate(MAX_VALUES);
        Completion {
            has_more: more || total > values.len(),
            values,
            total,
        }
    }
}

/// Completes `argument` of `target`, whose value so far is `prefix`, for `identity` whose
/// client can (or cannot) ask its person. A prompt or template the caller was not offered is
/// an error that says so in the words used for one that does not exist; an argument without
/// completions answers no values.
pub(crate) async fn complete(
    server: &WebOpsMcpServer,
    identity: &Identity,
    can_ask: bool,
    target: Target<'_>,
    argument: &str,
    prefix: &str,
    cancel: CancellationToken,
) -> Result<Completion, String> {
    let kind = match target {
        Target::Prompt(name) => prompts::find(server, identity, can_ask, name)?
            .arguments
            .iter()
            .find(|a| a.name == argument)
            .map(|a| a.kind),
        Target::Template(uri) => {
            resources::template(server, identity, uri).ok_or_else(|| {
                let shown: String = uri.chars().take(120).collect();
                format!(
                    "unknown resource template {shown:?}; resources/templates/list shows the \
                     templates this caller can read"
                )
            })?;
            (argument == "name").then_some(ArgKind::Deployment)
        }
    };
    Ok(match kind {
        Some(ArgKind::Deployment) => deployment_names(server, identity, prefix, cancel).await,
        Some(ArgKind::TimeRange) => Completion::of(
            TIME_RANGES
                .iter()
                .filter(|r| r.starts_with(prefix))
                .map(|r| (*r).to_owned())
                .collect(),
            false,
        ),
        Some(ArgKind::AppName | ArgKind::Repository | ArgKind::Branch) | None => {
            Completion::default()
        }
    })
}

/// The names of the deployments that start with `prefix`, listed for `identity` (none
/// without `deploy:read`, or when the list fails).
async fn deployment_names(
    server: &WebOpsMcpServer,
    identity: &Identity,
    prefix: &str,
    cancel: CancellationToken,
) -> Completion {
    let may_list = identity.permissions.contains(Permission::DeployRead)
        && server.offers_tool(LIST_TOOL, identity, false);
    // No name is longer than 63 characters or holds anything but a-z, 0-9 and '-'.
    let could_match = prefix.len() <= 63
        && prefix
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'));
    if !may_list || !could_match {
        return Completion::default();
    }
    // The pages of one read of up to LIST_LIMIT deployments (the answer budget may cut it).
    let mut arguments = json!({ "limit": LIST_LIMIT });
    let mut names = Vec::new();
    for _ in 0..MAX_PAGES {
        let Some(page) = list_page(server, identity, arguments, &cancel).await else {
            return Completion::default();
        };
        names.extend(
            page["deployments"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d["name"].as_str())
                // What WebOps calls a deployment is its data: only a name that follows the
                // name rule (so could be given to a template or a prompt) is offered.
                .filter(|name| is_deployment_name(name) && name.starts_with(prefix))
                .map(str::to_owned),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => arguments = json!({ "cursor": cursor }),
            // More deployments exist than the read's limit held.
            None => return Completion::of(names, page["truncated"] == Value::Bool(true)),
        }
    }
    Completion::of(names, true)
}

/// One page of `webops_list_deployments` with `arguments`, for `identity`; `None` when the
/// call failed.
async fn list_page(
    server: &WebOpsMcpServer,
    identity: &Identity,
    arguments: Value,
    cancel: &CancellationToken,
) -> Option<Value> {
    let request = CallRequest {
        name: LIST_TOOL.to_owned(),
        arguments: Some(arguments),
        identity: identity.clone(),
        progress: None,
        cancel: cancel.clone(),
        asker: Asker::None,
    };
    match server.call(request).await {
        Ok(output) => Some(structured_value(&output.structured)),
        Err(error) => {
            let kind = match &error {
                CallError::Tool(e) => e.kind().as_str(),
                CallError::UnknownTool(_) | CallError::InputRequired(_) => "internal",
            };
            tracing::debug!(kind, "no deployment names to complete: the list failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completion_holds_at_most_a_hundred_values_and_says_so() {
        let few = Completion::of(vec!["a".into(), "b".into()], false);
        assert_eq!((few.total, few.has_more), (2, false));
        let many = Completion::of((0..150).map(|i| format!("d{i}")).collect(), false);
        assert_eq!(many.values.len(), MAX_VALUES);
        assert_eq!((many.total, many.has_more), (150, true));
        let cut_at_source = Completion::of(vec!["a".into()], true);
        assert!(cut_at_source.has_more);
    }
}
