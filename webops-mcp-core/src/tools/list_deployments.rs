//! `webops_list_deployments`: deployments, filtered by environment and status.

use std::fmt::Write as _;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use webops_client::{DeploymentFilter, DeploymentStatus, WebOpsApiExt};

use super::common::{DeploymentSummary, EnvironmentArg, plural, upstream_error};
use super::page::{Cursor, DeploymentsCursor, Written, fit, foreign_cursor};
use crate::identity::Permission;
use crate::tool::{Access, Tool, ToolContext, ToolError, ToolOutput};

/// Lists deployments; see [`Tool::DESCRIPTION`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ListDeployments;

/// Status filter. `error` is WebOps's `failed`; `pending` covers `pending` and `building`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(inline, description = "")]
pub(crate) enum StatusFilter {
    Running,
    Stopped,
    Error,
    Pending,
}

impl StatusFilter {
    /// The WebOps statuses this filter covers.
    fn api_statuses(self) -> &'static [DeploymentStatus] {
        match self {
            StatusFilter::Running => &[DeploymentStatus::Running],
            StatusFilter::Stopped => &[DeploymentStatus::Stopped],
            StatusFilter::Error => &[DeploymentStatus::Failed],
            StatusFilter::Pending => &[DeploymentStatus::Pending, DeploymentStatus::Building],
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            StatusFilter::Running => "running",
            StatusFilter::Stopped => "stopped",
            StatusFilter::Error => "error",
            StatusFilter::Pending => "pending",
        }
    }
}

fn fifty() -> u32 {
    50
}

/// Arguments of `webops_list_deployments`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListDeploymentsArgs {
    /// Only deployments in this environment.
    #[serde(default)]
    pub(crate) environment: Option<EnvironmentArg>,
    /// error: failed; pending: still deploying.
    #[serde(default)]
    pub(crate) status: Option<StatusFilter>,
    /// The most to return.
    #[serde(default = "fifty")]
    #[schemars(range(min = 1, max = 200))]
    pub(crate) limit: u32,
    /// An earlier answer's next_cursor, to list on (same environment and status).
    #[serde(default)]
    pub(crate) cursor: Option<String>,
}

/// Result of `webops_list_deployments`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct ListDeploymentsOutput {
    pub(crate) count: usize,
    /// Whether more match than `limit` allowed.
    pub(crate) truncated: bool,
    /// The filter applied.
    pub(crate) environment: Option<String>,
    /// The filter applied.
    pub(crate) status: Option<String>,
    pub(crate) deployments: Vec<DeploymentSummary>,
    /// Deployments of this read not returned yet (the answer budget cut it short).
    pub(crate) remaining: usize,
    /// Pass as cursor to list the remaining deployments.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub(crate) next_cursor: Option<String>,
}

#[async_trait]
impl Tool for ListDeployments {
    type Args = ListDeploymentsArgs;
    type Output = Written<ListDeploymentsOutput>;

    const NAME: &'static str = "webops_list_deployments";
    const TITLE: &'static str = "List deployments";
    const DESCRIPTION: &'static str = "List deployments (id, name, status, environment, \
        URL, health), optionally filtered. Use it to find an app's id or name before acting on \
        it.";
    const ACCESS: Access = Access::Read;
    const PERMISSIONS: &'static [Permission] = &[Permission::DeployRead];

    async fn call(
        &self,
        ctx: &ToolContext,
        args: ListDeploymentsArgs,
    ) -> Result<Self::Output, ToolError> {
        let environment = args
            .environment
            .map(|e| webops_client::Environment::from(e).to_string());
        let status = args.status.map(|s| s.as_str().to_owned());
        let cursor = match args.cursor.as_deref().map(Cursor::decode).transpose()? {
            None => None,
            Some(Cursor::Deployments(cursor)) => Some(cursor),
            Some(_) => return Err(foreign_cursor("not a deployment list")),
        };
        if let Some(cursor) = &cursor
            && (cursor.environment != environment || cursor.status != status)
        {
            return Err(foreign_cursor("with other filters"));
        }
        let limit = cursor
            .as_ref()
            .map_or(args.limit, |c| c.limit)
            .clamp(1, 200);
        let mut base = DeploymentFilter::new();
        if let Some(environment) = args.environment {
            base = base.environment(environment.into());
        }
        let statuses: &[DeploymentStatus] = match args.status {
            Some(status) => status.api_statuses(),
            None => &[],
        };
        let filters: Vec<DeploymentFilter> = if statuses.is_empty() {
            vec![base]
        } else {
            statuses
                .iter()
                .map(|s| base.clone().status(s.clone()))
                .collect()
        };
        // One more than asked for tells whether the list is truncated.
        let mut found = Vec::new();
        for filter in &filters {
            let page = ctx
                .api()
                .list_all_deployments(filter, Some(limit as usize + 1))
                .await
                .map_err(|e| upstream_error(e, None))?;
            found.extend(page);
        }
        if filters.len() > 1 {
            found.sort_by_key(|d| d.id);
        }
        let truncated = found.len() > limit as usize;
        found.truncate(limit as usize);
        // Reading on: after the last one returned (or, when it is gone, as many further).
        let returned = cursor.as_ref().map_or(0, |c| c.returned);
        let start = match &cursor {
            Some(c) => found
                .iter()
                .position(|d| d.id == c.after)
                .map_or(c.returned as usize, |i| i + 1),
            None => 0,
        };
        let rest: Vec<DeploymentSummary> = found.iter().skip(start).map(Into::into).collect();
        fit(Self::NAME, rest.len(), ctx.answer_budget(), |k| {
            ListDeploymentsOutput {
                count: k,
                truncated,
                environment: environment.clone(),
                status: status.clone(),
                deployments: rest[..k].to_vec(),
                remaining: rest.len() - k,
                next_cursor: (k < rest.len()).then(|| {
                    Cursor::Deployments(DeploymentsCursor {
                        environment: environment.clone(),
                        status: status.clone(),
                        limit,
                        returned: returned + k as u32,
                        after: rest[k - 1].id,
                    })
                    .encode()
                }),
            }
        })
    }
}

impl ToolOutput for ListDeploymentsOutput {
    fn to_text(&self) -> String {
        let mut filters = Vec::new();
        if let Some(e) = &self.environment {
            filters.push(format!("environment {e}"));
        }
        if let Some(s) = &self.status {
            filters.push(format!("status {s}"));
        }
        let filters = if filters.is_empty() {
            String::new()
        } else {
            format!(" ({})", filters.join(", "))
        };
        if self.count == 0 {
            return format!("No deployments{filters}.");
        }
        let mut out = format!(
            "{} deployment{}{filters}{}:\n",
            self.count,
            plural(self.count),
            if self.truncated {
                ", more match: raise limit or filter"
            } else {
                ""
            }
        );
        for d in &self.deployments {
            d.write_line(&mut out);
        }
        if let Some(cursor) = &self.next_cursor {
            let _ = write!(
                out,
                "Shortened to fit the answer budget: {} more. Call again with the same \
                 environment and status and cursor \"{cursor}\" for the next page.",
                self.remaining
            );
        }
        out.trim_end().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn defaults_and_status_mapping() {
        let a: ListDeploymentsArgs = serde_json::from_value(json!({})).unwrap();
        assert_eq!(a.limit, 50);
        assert!(a.environment.is_none() && a.status.is_none());
        assert_eq!(
            StatusFilter::Error.api_statuses(),
            &[DeploymentStatus::Failed]
        );
        assert_eq!(
            StatusFilter::Pending.api_statuses(),
            &[DeploymentStatus::Pending, DeploymentStatus::Building]
        );
        let bad = serde_json::from_value::<ListDeploymentsArgs>(json!({"status": "failed"}));
        assert!(bad.is_err());
    }

    #[test]
    fn schema_has_the_contract_range_and_enums() {
        let schema = serde_json::to_value(schemars::schema_for!(ListDeploymentsArgs)).unwrap();
        let limit = &schema["properties"]["limit"];
        assert_eq!(limit["minimum"], 1);
        assert_eq!(limit["maximum"], 200);
        assert_eq!(limit["default"], 50);
        let status = serde_json::to_string(&schema["properties"]["status"]).unwrap();
        for value in ["running", "stopped", "error", "pending"] {
            assert!(status.contains(value), "{status}");
        }
    }
}
