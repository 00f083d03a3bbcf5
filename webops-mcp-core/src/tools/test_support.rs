//! Helpers for the tools' unit tests: contexts over `MockWebOpsApi`, API objects built from
//! JSON, and a progress sink that records reports.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use webops_client::{DeploymentDetail, Logs, MockWebOpsApi};

use crate::identity::{AuthMethod, Identity, PermissionSet};
use crate::tool::{ProgressSink, ToolContext};

/// A context for `api` with every permission.
pub(crate) fn ctx(api: MockWebOpsApi) -> ToolContext {
    ctx_with(api, None, None)
}

/// A context for `api` with every permission, progress and cancellation as given.
pub(crate) fn ctx_with(
    api: MockWebOpsApi,
    sink: Option<Arc<RecordingSink>>,
    cancel: Option<CancellationToken>,
) -> ToolContext {
    ctx_as(api, PermissionSet::all(), sink, cancel)
}

/// A context for `api` for a caller holding `permissions`.
pub(crate) fn ctx_as(
    api: MockWebOpsApi,
    permissions: PermissionSet,
    sink: Option<Arc<RecordingSink>>,
    cancel: Option<CancellationToken>,
) -> ToolContext {
    let identity = Identity::new("tester", AuthMethod::Embedded, permissions);
    let mut ctx = ToolContext::new(identity, Arc::new(api), "req-1");
    if let Some(sink) = sink {
        ctx = ctx.with_progress(sink);
    }
    if let Some(cancel) = cancel {
        ctx = ctx.with_cancellation(cancel);
    }
    ctx
}

fn merge(mut base: Value, overrides: Value) -> Value {
    if let (Some(base), Value::Object(overrides)) = (base.as_object_mut(), overrides) {
        for (k, v) in overrides {
            base.insert(k, v);
        }
    }
    base
}

fn deployment_json() -> Value {
    json!({
        "id": 1, "name": "app", "status": "running", "environment": "production",
        "project_type": "django", "repo_url": "https://github.com/acme/app.git",
        "branch": "main", "domain": "app.example.com", "url": "https://app.example.com",
        "port": 8000, "ssl_enabled": true, "python_version": "3.12",
        "database_type": "postgresql", "memory_limit": "512M", "instances": 2,
        "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-02T00:00:00Z",
        "deployed_by": {"id": 1, "username": "ops"},
        "health": {"is_healthy": true, "uptime_seconds": 3600,
                   "last_check": "2025-01-02T00:00:00Z",
                   "checks": {"http_response": true, "database_connection": true,
                              "disk_space": true}}
    })
}

/// A healthy running production deployment with env vars and metrics, with `overrides`
/// applied to the top level.
pub(crate) fn detail(overrides: Value) -> DeploymentDetail {
    let base = merge(
        deployment_json(),
        json!({
            "env_vars": {},
            "metrics": {"cpu_usage": 12.5, "memory_usage": 40.0,
                        "request_count_24h": 1000, "error_rate": 0.01}
        }),
    );
    serde_json::from_value(merge(base, overrides)).unwrap()
}

/// Log lines with `messages`, one second apart.
pub(crate) fn logs(messages: &[&str]) -> Logs {
    let entries: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            json!({"timestamp": format!("2025-01-02T00:00:{:02}Z", i % 60), "level": "info",
                   "message": m, "source": "app"})
        })
        .collect();
    serde_json::from_value(json!({"logs": entries, "total_lines": messages.len(), "is_live": true}))
        .unwrap()
}

/// Records every progress report.
#[derive(Default)]
pub(crate) struct RecordingSink {
    reports: Mutex<Vec<(f64, Option<f64>, String)>>,
}

impl RecordingSink {
    /// The reports so far.
    pub(crate) fn reports(&self) -> Vec<(f64, Option<f64>, String)> {
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
    }
}
