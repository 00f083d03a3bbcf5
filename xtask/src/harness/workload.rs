//! The workload: tool calls with realistic arguments against the demo data, their mix, and
//! how a call's outcome is classified.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::ServiceError;
use serde_json::{Map, Value, json};

use super::client::McpClient;

/// The longest a single tool call may take before it counts as a transport timeout.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// One tool call of a workload.
#[derive(Debug, Clone)]
pub(crate) struct ToolCall {
    pub(crate) tool: String,
    pub(crate) arguments: Map<String, Value>,
}

impl ToolCall {
    fn new(tool: &str, arguments: Value) -> ToolCall {
        ToolCall {
            tool: tool.to_owned(),
            arguments: arguments.as_object().cloned().unwrap_or_default(),
        }
    }

    fn params(&self) -> CallToolRequestParams {
        CallToolRequestParams::new(self.tool.clone()).with_arguments(self.arguments.clone())
    }
}

/// The read tools a load test may run, with realistic arguments against the demo data.
pub(crate) const READ_TOOLS: [&str; 5] = [
    "webops_list_deployments",
    "webops_get_status",
    "webops_get_logs",
    "webops_system_health",
    "webops_security_audit",
];

/// A cycle of calls; client `c` makes call `(c + n) % len` as its `n`th, so the clients
/// interleave the mix.
#[derive(Debug, Clone)]
pub(crate) struct Mix(Arc<[ToolCall]>);

impl Mix {
    /// A realistic mix of the read tools an agent uses to look around: 3 lists, 2 status
    /// reads (one with metrics), 2 log reads, 2 health checks, 1 security audit in 10 calls.
    pub(crate) fn read_mix() -> Mix {
        Mix(Arc::from(vec![
            ToolCall::new("webops_list_deployments", json!({})),
            ToolCall::new("webops_get_status", json!({"deployment_id": "shop-api"})),
            ToolCall::new(
                "webops_get_logs",
                json!({"deployment_id": "shop-api", "lines": 50}),
            ),
            ToolCall::new("webops_list_deployments", json!({"status": "running"})),
            ToolCall::new("webops_system_health", json!({})),
            ToolCall::new(
                "webops_get_status",
                json!({"deployment_id": "billing-portal", "include_metrics": true}),
            ),
            ToolCall::new(
                "webops_list_deployments",
                json!({"environment": "production"}),
            ),
            ToolCall::new(
                "webops_get_logs",
                json!({"deployment_id": "billing-portal", "log_type": "error"}),
            ),
            ToolCall::new("webops_system_health", json!({"time_range": "24h"})),
            ToolCall::new(
                "webops_security_audit",
                json!({"deployment_id": "shop-api", "audit_type": "basic"}),
            ),
        ]))
    }

    /// Only `tool`, with `arguments` or its default arguments against the demo data.
    pub(crate) fn single(tool: &str, arguments: Option<Value>) -> Result<Mix> {
        let arguments = match arguments {
            Some(arguments) => arguments,
            None => match tool {
                "webops_list_deployments" | "webops_system_health" => json!({}),
                "webops_get_status" | "webops_get_logs" | "webops_security_audit" => {
                    json!({"deployment_id": "shop-api"})
                }
                _ => bail!(
                    "no default arguments for {tool}: load tests run the read tools ({}); pass \
                     --args JSON for another (a write tool changes the platform under test)",
                    READ_TOOLS.join(", ")
                ),
            },
        };
        if !arguments.is_object() {
            bail!("--args must be a JSON object");
        }
        Ok(Mix(Arc::from(vec![ToolCall::new(tool, arguments)])))
    }

    pub(crate) fn pick(&self, client: usize, n: u64) -> &ToolCall {
        let len = self.0.len() as u64;
        &self.0[((client as u64 + n) % len) as usize]
    }

    pub(crate) fn describe(&self) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for call in self.0.iter() {
            *counts.entry(call.tool.as_str()).or_default() += 1;
        }
        counts
            .iter()
            .map(|(tool, n)| format!("{tool} x{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// How one call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    /// An error, by class (`isError: rate_limited`, `JSON-RPC -32602`, `transport: closed`…).
    Error(String),
}

/// Calls `call` on `client` (with [`CALL_TIMEOUT`]) and classifies the answer.
pub(crate) async fn call_tool(client: &McpClient, call: &ToolCall) -> Outcome {
    match tokio::time::timeout(CALL_TIMEOUT, client.call_tool(call.params())).await {
        Err(_) => Outcome::Error("transport: timeout".to_owned()),
        Ok(Ok(result)) => classify_result(&result),
        Ok(Err(e)) => Outcome::Error(classify_service_error(&e)),
    }
}

fn classify_result(result: &CallToolResult) -> Outcome {
    if result.is_error != Some(true) {
        return if result.structured_content.is_some() {
            Outcome::Ok
        } else {
            Outcome::Error("result without structuredContent".to_owned())
        };
    }
    let text: String = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
        .collect::<Vec<_>>()
        .join(" ");
    Outcome::Error(format!("isError: {}", error_class(&text)))
}

/// The class of a tool error message (the pipeline's and the tools' wording).
pub(crate) fn error_class(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.starts_with("rate limit exceeded") {
        "rate_limited"
    } else if m.starts_with("server busy") {
        "busy"
    } else if m.starts_with("permission denied") || m.contains("this server is read-only") {
        "permission_denied"
    } else if m.starts_with("invalid arguments") {
        "invalid_arguments"
    } else if m.contains("the call was cancelled") {
        "cancelled"
    } else if m.contains("webops is rate limiting") {
        "upstream_rate_limited"
    } else if m.contains("webops did not answer in time") {
        "upstream_timeout"
    } else if m.starts_with("webops is unreachable") || m.starts_with("webops failed") {
        "upstream_unavailable"
    } else if m.starts_with("no deployment") {
        "not_found"
    } else {
        "other"
    }
}

fn classify_service_error(error: &ServiceError) -> String {
    match error {
        ServiceError::McpError(data) => format!("JSON-RPC {}", data.code.0),
        ServiceError::TransportClosed => "transport: closed".to_owned(),
        ServiceError::TransportSend(_) => "transport: send failed".to_owned(),
        ServiceError::Timeout { .. } => "transport: timeout".to_owned(),
        ServiceError::Cancelled { .. } => "transport: cancelled".to_owned(),
        other => format!("transport: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_classes_follow_the_pipeline_wording() {
        assert_eq!(
            error_class(
                "rate limit exceeded: at most 100 tool calls per minute per user; retry in 1 s"
            ),
            "rate_limited"
        );
        assert_eq!(
            error_class("server busy: 50 calls in flight; retry shortly"),
            "busy"
        );
        assert_eq!(
            error_class("permission denied: webops_get_logs requires logs:read; ..."),
            "permission_denied"
        );
        assert_eq!(
            error_class("WebOps is unreachable or unavailable right now (x); retry shortly."),
            "upstream_unavailable"
        );
        assert_eq!(error_class("something else"), "other");
    }

    #[test]
    fn the_mix_interleaves_clients_and_single_needs_known_arguments() {
        let mix = Mix::read_mix();
        assert_ne!(mix.pick(0, 0).arguments, mix.pick(1, 0).arguments);
        assert_eq!(mix.pick(3, 0).tool, mix.pick(0, 3).tool);
        for tool in READ_TOOLS {
            assert!(Mix::single(tool, None).is_ok(), "{tool}");
            assert!(mix.describe().contains(tool), "{tool}");
        }
        assert!(Mix::single("webops_delete_deployment", None).is_err());
        assert!(Mix::single("webops_delete_deployment", Some(json!([1]))).is_err());
    }
}
