//! Helpers shared by every integration test of the crate: identities, servers (of the
//! built-in tools over the testkit's mock WebOps on real loopback HTTP or over a scripted
//! `MockWebOpsApi`, or of the small test tools in [`tools`]), a progress sink that records
//! reports, and waiting for a condition.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

mod tools;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use webops_client::{Client, MockWebOpsApi, WebOpsApi};
use webops_mcp_core::{
    AuthMethod, ConfirmationConfig, Fallback, Identity, MemorySink, PermissionSet, ProgressSink,
    SecurityConfig, ToolCallResult, ToolErrorKind, WebOpsMcpServer, WebOpsMcpServerBuilder,
};
use webops_mcp_testkit::{MockBuilder, MockWebOps, Seed};

#[allow(unused_imports)] // not every test binary uses the test tools
pub use self::tools::*;

/// The identity of `user`, holding `permissions` (strings as in configuration).
pub fn identity(user: &str, permissions: &[&str]) -> Identity {
    Identity::new(
        user,
        AuthMethod::ApiKey,
        PermissionSet::parse(permissions).unwrap(),
    )
}

/// An identity with every permission.
pub fn admin() -> Identity {
    identity("tester", &["admin:*"])
}

/// A builder with no built-in tools, a mock API that must never be called, and `sink`.
pub fn builder(sink: &Arc<MemorySink>, security: SecurityConfig) -> WebOpsMcpServerBuilder {
    WebOpsMcpServer::builder()
        .without_builtin_tools()
        .api(Arc::new(MockWebOpsApi::new()))
        .audit_sink(sink.clone())
        .security(security)
}

/// A client of `mock` that does not retry (fault tests stay fast and exact).
pub fn client(mock: &MockWebOps) -> Client {
    Client::builder()
        .base_url(mock.base_url())
        .token(mock.token())
        .timeout(Duration::from_secs(10))
        .max_retries(0)
        .build()
        .unwrap()
}

/// The settings of [`server`]: no rate limit, and calls that need a person's confirmation
/// run on the tools' own checks (these tests are about the tools; `confirmations` tests
/// the policy itself).
pub fn tool_security() -> SecurityConfig {
    SecurityConfig::default()
        .rate_limit_per_minute(0)
        .confirmations(ConfirmationConfig::default().fallback(Fallback::ConfirmName))
}

/// A server with the built-in tools over `api`, no rate limit, audit records kept in memory.
pub fn server(api: Arc<dyn WebOpsApi>) -> WebOpsMcpServer {
    server_and_audit(api).0
}

/// [`server`], with the sink holding its audit records.
pub fn server_and_audit(api: Arc<dyn WebOpsApi>) -> (WebOpsMcpServer, Arc<MemorySink>) {
    let audit = Arc::new(MemorySink::new());
    let server = WebOpsMcpServer::builder()
        .api(api)
        .audit_sink(audit.clone())
        .security(tool_security())
        .build()
        .unwrap();
    (server, audit)
}

/// The testkit mock and a server of the built-in tools talking to it over HTTP.
pub struct Env {
    pub mock: MockWebOps,
    pub server: WebOpsMcpServer,
    /// The server's audit records.
    pub audit: Arc<MemorySink>,
}

impl Env {
    /// The demo platform.
    pub async fn demo() -> Env {
        Env::with(MockWebOps::builder().seed(Seed::Demo)).await
    }

    /// A mock from `builder`.
    pub async fn with(builder: MockBuilder) -> Env {
        Env::with_security(builder, tool_security()).await
    }

    /// A mock from `builder`, and a server with `security`.
    pub async fn with_security(builder: MockBuilder, security: SecurityConfig) -> Env {
        let mock = builder.start().await.unwrap();
        let audit = Arc::new(MemorySink::new());
        let server = WebOpsMcpServer::builder()
            .api(Arc::new(client(&mock)))
            .audit_sink(audit.clone())
            .security(security)
            .build()
            .unwrap();
        Env {
            mock,
            server,
            audit,
        }
    }

    /// Calls `tool` as an admin.
    pub async fn call(&self, tool: &str, args: Value) -> ToolCallResult {
        self.server.handle_tool_call(tool, args, &admin()).await
    }

    /// Calls `tool` as an admin and expects success: its structured content and text.
    pub async fn ok(&self, tool: &str, args: Value) -> (Value, String) {
        let result = self.call(tool, args).await;
        assert!(!result.is_error, "{tool} failed: {}", result.text());
        (result.structured_content.clone().unwrap(), result.text())
    }

    /// Calls `tool` as an admin and expects a failure of `kind`: its message.
    pub async fn err(&self, tool: &str, args: Value, kind: ToolErrorKind) -> String {
        let result = self.call(tool, args).await;
        assert!(result.is_error, "{tool} succeeded: {}", result.text());
        assert_eq!(result.error_kind, Some(kind), "{}", result.text());
        assert!(result.structured_content.is_none());
        result.text()
    }

    /// The id of the demo deployment `name`.
    pub fn id(&self, name: &str) -> i64 {
        self.mock.deployment_id(name).unwrap()
    }

    /// Calls `tool` as an admin with progress reports going to `sink` and `cancel`.
    pub async fn call_with(
        &self,
        tool: &str,
        args: Value,
        cancel: CancellationToken,
        sink: Arc<RecordingSink>,
    ) -> ToolCallResult {
        self.server
            .handle_tool_call_with(tool, args, &admin(), cancel, Some(sink))
            .await
    }
}

/// Records every progress report; can fire a token on the first one.
#[derive(Default)]
pub struct RecordingSink {
    reports: Mutex<Vec<(f64, Option<f64>, String)>>,
    cancel_on_first: Mutex<Option<CancellationToken>>,
}

impl RecordingSink {
    /// A sink that cancels `token` when the first report arrives.
    pub fn cancelling(token: CancellationToken) -> Self {
        RecordingSink {
            reports: Mutex::default(),
            cancel_on_first: Mutex::new(Some(token)),
        }
    }

    /// The reports so far.
    pub fn reports(&self) -> Vec<(f64, Option<f64>, String)> {
        self.reports.lock().unwrap().clone()
    }
}

#[async_trait]
impl ProgressSink for RecordingSink {
    async fn report(&self, progress: f64, total: Option<f64>, message: String) {
        self.reports
            .lock()
            .unwrap()
            .push((progress, total, message));
        if let Some(token) = self.cancel_on_first.lock().unwrap().take() {
            token.cancel();
        }
    }
}

/// A member of a JSON array of objects whose `key` equals `value`.
pub fn find<'a>(items: &'a Value, key: &str, value: &str) -> &'a Value {
    items
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item[key] == value)
        .unwrap_or_else(|| panic!("no item with {key} = {value} in {items}"))
}

/// Polls `condition` every 10 ms until it holds (at most 30 s, then fails the test).
pub async fn eventually(mut condition: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("condition never held");
}
