//! [`Client`]: the HTTP implementation of [`WebOpsApi`], its builder and its configuration.
//!
//! SKELETON: the public surface below is fixed; the bodies are to be implemented.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::api::WebOpsApi;
use crate::error::{Error, ErrorKind, Result};
use crate::types::*;

/// Connection settings, e.g. assembled from a config file or [`ClientConfig::from_env`].
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Base URL of the WebOps server, e.g. `http://localhost:8000`.
    pub api_url: String,
    /// API version path segment, e.g. `v1`.
    pub api_version: String,
    /// Bearer token (secret: never shown by `Debug`).
    pub api_key: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            api_url: "http://localhost:8000".to_owned(),
            api_version: "v1".to_owned(),
            api_key: None,
            timeout: Duration::from_secs(30),
            max_retries: 3,
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("api_url", &self.api_url)
            .field("api_version", &self.api_version)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

impl ClientConfig {
    /// Reads `WEBOPS_API_URL`, `WEBOPS_API_VERSION` and `WEBOPS_API_KEY`; unset ones keep
    /// their defaults.
    pub fn from_env() -> Self {
        unimplemented!()
    }

    /// A builder preset with these settings.
    pub fn builder(&self) -> ClientBuilder {
        unimplemented!()
    }
}

/// What the client saw of one HTTP attempt, for metrics.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RequestEvent<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path below the API root with ids replaced by `{id}`, e.g. `deployments/{id}/logs/`.
    pub endpoint: &'a str,
    /// HTTP status, when the server answered.
    pub status: Option<u16>,
    /// Error kind, when the attempt failed.
    pub error: Option<ErrorKind>,
    /// How long the attempt took.
    pub duration: Duration,
    /// 0 for the first attempt, then 1, 2, ... for retries.
    pub attempt: u32,
}

/// Receives a [`RequestEvent`] after every HTTP attempt.
pub trait RequestObserver: Send + Sync {
    /// Called once per attempt; must be cheap and must not block.
    fn observe(&self, event: &RequestEvent<'_>);
}

/// Builds a [`Client`].
#[derive(Clone)]
pub struct ClientBuilder {
    _private: (),
}

impl ClientBuilder {
    /// Base URL of the WebOps server, e.g. `http://localhost:8000` (no `/api/v1`).
    pub fn base_url(self, _url: impl Into<String>) -> Self {
        unimplemented!()
    }
    /// API version segment (default `v1`).
    pub fn api_version(self, _version: impl Into<String>) -> Self {
        unimplemented!()
    }
    /// Bearer token sent on every request but `GET status/`.
    pub fn token(self, _token: impl Into<String>) -> Self {
        unimplemented!()
    }
    /// Per-attempt timeout (default 30 s).
    pub fn timeout(self, _timeout: Duration) -> Self {
        unimplemented!()
    }
    /// Retries after the first attempt (default 3).
    pub fn max_retries(self, _retries: u32) -> Self {
        unimplemented!()
    }
    /// `User-Agent` header (default `webops-client/<version>`).
    pub fn user_agent(self, _agent: impl Into<String>) -> Self {
        unimplemented!()
    }
    /// Longest wait honoured from a `Retry-After` header (default 30 s).
    pub fn max_retry_after(self, _cap: Duration) -> Self {
        unimplemented!()
    }
    /// Receives every attempt, for metrics.
    pub fn observer(self, _observer: Arc<dyn RequestObserver>) -> Self {
        unimplemented!()
    }
    /// Validates the settings and builds the client.
    pub fn build(self) -> Result<Client> {
        unimplemented!()
    }
}

/// The WebOps API over HTTP. Cheap to clone; `Debug` never shows the token.
#[derive(Clone)]
pub struct Client {
    _private: (),
}

impl Client {
    /// A builder with the defaults.
    pub fn builder() -> ClientBuilder {
        unimplemented!()
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

#[async_trait]
impl WebOpsApi for Client {
    async fn status(&self) -> Result<ApiStatus> {
        unimplemented!()
    }
    async fn list_deployments(&self, _filter: &DeploymentFilter) -> Result<Page<Deployment>> {
        unimplemented!()
    }
    async fn get_deployment(&self, _id: i64) -> Result<DeploymentDetail> {
        unimplemented!()
    }
    async fn create_deployment(
        &self,
        _new: &NewDeployment,
        _idempotency_key: Option<String>,
    ) -> Result<CreatedDeployment> {
        unimplemented!()
    }
    async fn update_deployment(
        &self,
        _id: i64,
        _update: &DeploymentUpdate,
    ) -> Result<DeploymentDetail> {
        unimplemented!()
    }
    async fn delete_deployment(&self, _id: i64) -> Result<Deleted> {
        unimplemented!()
    }
    async fn start(&self, _id: i64) -> Result<ActionResult> {
        unimplemented!()
    }
    async fn stop(&self, _id: i64) -> Result<ActionResult> {
        unimplemented!()
    }
    async fn restart(&self, _id: i64) -> Result<ActionResult> {
        unimplemented!()
    }
    async fn redeploy(&self, _id: i64) -> Result<ActionResult> {
        unimplemented!()
    }
    async fn scale(&self, _id: i64, _instances: u32) -> Result<ScaleResult> {
        unimplemented!()
    }
    async fn logs(&self, _id: i64, _query: &LogQuery) -> Result<Logs> {
        unimplemented!()
    }
    async fn databases(&self) -> Result<Vec<Database>> {
        unimplemented!()
    }
    async fn system_health(&self) -> Result<SystemHealth> {
        unimplemented!()
    }
    async fn metrics(
        &self,
        _period: MetricsPeriod,
        _deployment_id: Option<i64>,
    ) -> Result<Metrics> {
        let _ = (Error::new(ErrorKind::Config, ""),);
        unimplemented!()
    }
}
