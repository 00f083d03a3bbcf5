//! A contributor's own tool, `webops_count_by_environment`, added next to the built-in ones
//! through the builder and called against the testkit's mock WebOps (no real server needed):
//!
//! ```text
//! cargo run -p webops-mcp-core --example custom_tool
//! ```
//!
//! A tool declares its name, description, access level, permissions, typed arguments and
//! typed output; the pipeline checks permissions, validates the arguments against the
//! schema derived from them, audits the call and renders the result.

use std::collections::BTreeMap;
use std::sync::Arc;

use webops_client::{Client, DeploymentFilter, WebOpsApiExt};
// The crate re-exports what a tool needs, so a tool crate depends on no more than these two.
use webops_mcp_core::schemars::JsonSchema;
use webops_mcp_core::serde::{Deserialize, Serialize};
use webops_mcp_core::{
    Access, AuthMethod, Identity, MemorySink, Permission, PermissionSet, Tool, ToolContext,
    ToolError, ToolOutput, WebOpsMcpServer, async_trait,
};
use webops_mcp_testkit::{MockWebOps, Seed};

/// Counts deployments per environment.
struct CountByEnvironment;

/// Arguments: an optional status filter.
#[derive(Deserialize, JsonSchema)]
#[serde(crate = "webops_mcp_core::serde", deny_unknown_fields)]
#[schemars(crate = "webops_mcp_core::schemars")]
struct CountArgs {
    /// Only count deployments in this state (e.g. "running"); all of them when left out.
    #[serde(default)]
    status: Option<String>,
}

/// The counts.
#[derive(Serialize, JsonSchema)]
#[serde(crate = "webops_mcp_core::serde")]
#[schemars(crate = "webops_mcp_core::schemars")]
struct Counts {
    /// Deployments per environment.
    by_environment: BTreeMap<String, usize>,
    /// All counted deployments.
    total: usize,
}

impl ToolOutput for Counts {
    fn to_text(&self) -> String {
        let parts: Vec<String> = self
            .by_environment
            .iter()
            .map(|(env, n)| format!("{env}: {n}"))
            .collect();
        format!("{} deployments ({})", self.total, parts.join(", "))
    }
}

#[async_trait]
impl Tool for CountByEnvironment {
    type Args = CountArgs;
    type Output = Counts;

    const NAME: &'static str = "webops_count_by_environment";
    const TITLE: &'static str = "Count deployments per environment";
    const DESCRIPTION: &'static str = "Count deployments per environment (development, \
        staging, production), optionally only those in one state. Use it for a quick overview; \
        returns the counts and the total.";
    const ACCESS: Access = Access::Read;
    const PERMISSIONS: &'static [Permission] = &[Permission::DeployRead];

    async fn call(&self, ctx: &ToolContext, args: CountArgs) -> Result<Counts, ToolError> {
        let mut filter = DeploymentFilter::new();
        if let Some(status) = args.status.as_deref() {
            filter = filter.status(status.into());
        }
        // A client error becomes the tool error the built-in tools give for it.
        let deployments = ctx.api().list_all_deployments(&filter, None).await?;
        let mut by_environment = BTreeMap::new();
        for d in &deployments {
            *by_environment.entry(d.environment.to_string()).or_insert(0) += 1;
        }
        Ok(Counts {
            by_environment,
            total: deployments.len(),
        })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A mock WebOps on loopback HTTP with the demo platform.
    let mock = MockWebOps::builder().seed(Seed::Demo).start().await?;
    let client = Client::builder()
        .base_url(mock.base_url())
        .token(mock.token())
        .build()?;

    // The built-in tools plus ours; audit records kept in memory for this example.
    let server = WebOpsMcpServer::builder()
        .api(Arc::new(client))
        .tool(CountByEnvironment)
        .audit_sink(Arc::new(MemorySink::new()))
        .build()?;

    let viewer = Identity::new(
        "example-user",
        AuthMethod::Embedded,
        PermissionSet::parse(["deploy:read"])?,
    );
    let names: Vec<&str> = server.tools_for(&viewer).iter().map(|d| d.name).collect();
    println!("tools for a deploy:read caller: {}", names.join(", "));

    for args in [
        serde_json::json!({}),
        serde_json::json!({"status": "running"}),
        serde_json::json!({"colour": "red"}),
    ] {
        let result = server
            .handle_tool_call("webops_count_by_environment", args.clone(), &viewer)
            .await;
        println!("\nwebops_count_by_environment {args}");
        println!("  isError: {}", result.is_error);
        println!("  text: {}", result.text());
        if let Some(structured) = &result.structured_content {
            println!("  structuredContent: {structured}");
        }
    }
    mock.shutdown().await;
    Ok(())
}
