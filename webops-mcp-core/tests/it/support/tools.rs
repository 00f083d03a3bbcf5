//! Small test tools for the framework, audit, gates and handler tests: plain output, a logs
//! tool with secrets, a write, a destructive one, one that fails, one that panics, and tools
//! that block until released.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use webops_mcp_core::{
    Access, Permission, Tool, ToolContext, ToolError, ToolErrorKind, ToolOutput,
};

/// A plain text output.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Said {
    /// What the tool says.
    pub said: String,
}

impl ToolOutput for Said {
    fn to_text(&self) -> String {
        self.said.clone()
    }
}

/// Log types, as in webops_get_logs (Serialize, so schemars can write the `default`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogType {
    #[default]
    Application,
    Access,
    Error,
    Deployment,
}

/// A deployment id or name.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum IdOrName {
    Id(i64),
    Name(String),
}

fn default_lines() -> u32 {
    100
}

/// Arguments shaped like webops_get_logs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsArgs {
    /// The numeric id or the name of the deployment.
    pub deployment_id: IdOrName,
    /// Which log.
    #[serde(default)]
    pub log_type: LogType,
    /// How many of the newest lines.
    #[serde(default = "default_lines")]
    #[schemars(range(min = 10, max = 1000))]
    pub lines: u32,
    /// Only lines after this time (ISO 8601).
    pub since: Option<String>,
}

/// A read tool with a logs-like schema; counts its calls.
#[derive(Default, Clone)]
pub struct Logs {
    pub calls: Arc<AtomicUsize>,
}

#[async_trait]
impl Tool for Logs {
    type Args = LogsArgs;
    type Output = Said;
    const NAME: &'static str = "test_get_logs";
    const TITLE: &'static str = "Get logs";
    const DESCRIPTION: &'static str = "Reads logs (test tool).";
    const ACCESS: Access = Access::Read;
    const PERMISSIONS: &'static [Permission] = &[Permission::LogsRead];

    async fn call(&self, _ctx: &ToolContext, args: LogsArgs) -> Result<Said, ToolError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let id = match args.deployment_id {
            IdOrName::Id(id) => id.to_string(),
            IdOrName::Name(name) => name,
        };
        Ok(Said {
            said: format!("{} {:?} lines of {id}", args.lines, args.log_type),
        })
    }
}

/// Arguments with secret-looking members.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretArgs {
    /// A name.
    pub app_name: String,
    /// Environment variables.
    #[serde(default)]
    pub env_vars: BTreeMap<String, String>,
    /// An API key.
    pub api_key: Option<String>,
    /// A password.
    pub password: Option<String>,
    /// A token.
    pub token: Option<String>,
}

/// A write tool taking secrets; says only the app name.
pub struct Configure;

#[async_trait]
impl Tool for Configure {
    type Args = SecretArgs;
    type Output = Said;
    const NAME: &'static str = "test_configure";
    const TITLE: &'static str = "Configure";
    const DESCRIPTION: &'static str = "Sets secrets of an app (test tool).";
    const ACCESS: Access = Access::Write;
    const PERMISSIONS: &'static [Permission] = &[Permission::DeployCreate];

    async fn call(&self, _ctx: &ToolContext, args: SecretArgs) -> Result<Said, ToolError> {
        Ok(Said {
            said: format!("configured {}", args.app_name),
        })
    }
}

/// No arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// A destructive tool needing two permissions.
pub struct Destroy;

#[async_trait]
impl Tool for Destroy {
    type Args = NoArgs;
    type Output = Said;
    const NAME: &'static str = "test_destroy";
    const TITLE: &'static str = "Destroy";
    const DESCRIPTION: &'static str = "Destroys something (test tool).";
    const ACCESS: Access = Access::Destructive;
    const PERMISSIONS: &'static [Permission] = &[Permission::DeployRead, Permission::DeployDelete];

    async fn call(&self, _ctx: &ToolContext, _args: NoArgs) -> Result<Said, ToolError> {
        Ok(Said {
            said: "destroyed".into(),
        })
    }
}

/// A tool that always fails with a conflict.
pub struct Fails;

#[async_trait]
impl Tool for Fails {
    type Args = NoArgs;
    type Output = Said;
    const NAME: &'static str = "test_fails";
    const TITLE: &'static str = "Fails";
    const DESCRIPTION: &'static str = "Always fails (test tool).";
    const ACCESS: Access = Access::Read;
    const PERMISSIONS: &'static [Permission] = &[];

    async fn call(&self, _ctx: &ToolContext, _args: NoArgs) -> Result<Said, ToolError> {
        Err(ToolError::new(
            ToolErrorKind::Conflict,
            "shop-api is stopped; start it first",
        ))
    }
}

/// A tool that panics.
pub struct Panics;

#[async_trait]
impl Tool for Panics {
    type Args = NoArgs;
    type Output = Said;
    const NAME: &'static str = "test_panics";
    const TITLE: &'static str = "Panics";
    const DESCRIPTION: &'static str = "Panics (test tool).";
    const ACCESS: Access = Access::Read;
    const PERMISSIONS: &'static [Permission] = &[];

    async fn call(&self, _ctx: &ToolContext, _args: NoArgs) -> Result<Said, ToolError> {
        panic!("a bug in a tool")
    }
}

/// Arguments of [`Blocker`].
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockArgs {
    /// Progress reports to send before blocking.
    #[serde(default)]
    pub reports: u32,
}

/// A tool that reports progress, signals that it runs, then blocks until released (or
/// forever, until cancelled).
#[derive(Clone)]
pub struct Blocker {
    /// One permit per call that started.
    pub started: Arc<Semaphore>,
    /// Each call takes (and consumes) one permit before finishing.
    pub release: Arc<Semaphore>,
    /// Calls that finished (were not dropped).
    pub finished: Arc<AtomicUsize>,
}

impl Default for Blocker {
    fn default() -> Self {
        Blocker {
            started: Arc::new(Semaphore::new(0)),
            release: Arc::new(Semaphore::new(0)),
            finished: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl Blocker {
    /// Waits until `n` calls have started.
    pub async fn wait_started(&self, n: u32) {
        let permits = tokio::time::timeout(Duration::from_secs(30), self.started.acquire_many(n))
            .await
            .expect("calls did not start")
            .unwrap();
        permits.forget();
    }
}

#[async_trait]
impl Tool for Blocker {
    type Args = BlockArgs;
    type Output = Said;
    const NAME: &'static str = "test_block";
    const TITLE: &'static str = "Block";
    const DESCRIPTION: &'static str = "Blocks until released (test tool).";
    const ACCESS: Access = Access::Read;
    const PERMISSIONS: &'static [Permission] = &[];

    async fn call(&self, ctx: &ToolContext, args: BlockArgs) -> Result<Said, ToolError> {
        for step in 1..=args.reports {
            ctx.progress(
                f64::from(step),
                Some(f64::from(args.reports)),
                format!("step {step}"),
            )
            .await;
        }
        self.started.add_permits(1);
        let permit = self.release.acquire().await.unwrap();
        permit.forget();
        self.finished.fetch_add(1, Ordering::SeqCst);
        Ok(Said {
            said: "released".into(),
        })
    }
}

/// A [`Blocker`] that changes something ([`Access::Write`]): a cancelled call runs on until
/// released.
#[derive(Clone, Default)]
pub struct WriteBlocker(pub Blocker);

#[async_trait]
impl Tool for WriteBlocker {
    type Args = BlockArgs;
    type Output = Said;
    const NAME: &'static str = "test_block_write";
    const TITLE: &'static str = "Block (write)";
    const DESCRIPTION: &'static str = "Changes something once released (test tool).";
    const ACCESS: Access = Access::Write;
    const PERMISSIONS: &'static [Permission] = &[];

    async fn call(&self, ctx: &ToolContext, args: BlockArgs) -> Result<Said, ToolError> {
        <Blocker as Tool>::call(&self.0, ctx, args).await
    }
}
