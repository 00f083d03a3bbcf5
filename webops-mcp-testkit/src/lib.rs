//! A faithful, stateful mock of the WebOps REST API v1 on real loopback HTTP, with fault
//! injection, for tests and demos.
//!
//! [`MockWebOps`] serves the whole contract of the WebOps REST API v1 (`docs/webops-api.md`): the envelope, validation
//! errors with `details`, bearer authentication (401/403), 404/405/409, pagination, filters,
//! the deployment lifecycle (`pending` → `building` → `running`/`failed`, with `deployment` log
//! lines), actions, logs, databases, health and metrics, and `Idempotency-Key` on create. It
//! records every request and can be told to misbehave ([`Fault`], [`RateLimit`], latency).
//!
//! [`MockPanel`] is its sibling for the *shipped* control panel's API (the "panel flavour"):
//! Django form login with CSRF and session cookies, and the panel's observed quirks.
//!
//! ```
//! use webops_mcp_testkit::{Fault, MockWebOps, Seed};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mock = MockWebOps::builder().seed(Seed::Demo).start().await?;
//! let http = reqwest::Client::new();
//!
//! let list: serde_json::Value = http
//!     .get(format!("{}deployments/?environment=production", mock.api_url()))
//!     .bearer_auth(mock.token())
//!     .send()
//!     .await?
//!     .json()
//!     .await?;
//! assert_eq!(list["success"], true);
//! assert!(list["data"].as_array().is_some_and(|d| !d.is_empty()));
//!
//! mock.inject(Fault::status(503).retry_after(1));
//! let answer = http.get(format!("{}status/", mock.api_url())).send().await?;
//! assert_eq!(answer.status(), 503);
//! assert_eq!(mock.requests().len(), 2);
//!
//! mock.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod api;
mod error;
mod fault;
mod model;
mod numbers;
mod panel;
mod params;
mod seed;
mod serve;
mod store;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serve::Served;
use std::future::IntoFuture as _;

pub use fault::{Fault, RateLimit, RecordedRequest};
pub use panel::{
    MockPanel, PANEL_2FA_PASSWORD, PANEL_2FA_USER, PANEL_PASSWORD, PANEL_RATE_LIMIT, PANEL_USER,
    PanelBuilder, PanelDatabase, PanelDeployment, PanelSeed, PanelUser,
};
pub use seed::{Seed, SeedDatabase, SeedDeployment};

use model::{Level, LogType, ServiceState, Status};
use store::{Config, Shared};

/// The API token a mock accepts unless told otherwise.
pub const TEST_TOKEN: &str = "test-token";

/// How long each lifecycle step takes unless told otherwise.
const DEFAULT_STEP_DELAY: Duration = Duration::from_millis(20);

/// A running mock WebOps server. Dropping it stops the server.
pub struct MockWebOps {
    shared: Arc<Shared>,
    server: Served,
}

impl std::fmt::Debug for MockWebOps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockWebOps")
            .field("addr", &self.server.addr)
            .finish_non_exhaustive()
    }
}

impl MockWebOps {
    /// Starts an empty mock on `127.0.0.1:0` that accepts [`TEST_TOKEN`], with a fast
    /// lifecycle (each step ~20 ms).
    ///
    /// # Panics
    /// Only if no loopback port can be bound.
    #[allow(clippy::expect_used)]
    pub async fn start() -> MockWebOps {
        MockWebOps::builder()
            .start()
            .await
            .expect("webops-mock: cannot bind a port on 127.0.0.1")
    }

    /// A builder to choose token, seed data, step delay and address.
    pub fn builder() -> MockBuilder {
        MockBuilder::default()
    }

    /// `http://127.0.0.1:PORT`: what a client's base URL takes.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// `http://127.0.0.1:PORT/api/v1/`.
    pub fn api_url(&self) -> String {
        format!("http://{}/api/v1/", self.server.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// The token with full access.
    pub fn token(&self) -> &str {
        &self.shared.config.token
    }

    /// The read-only token, if one was configured.
    pub fn read_only_token(&self) -> Option<&str> {
        self.shared.config.read_only_token.as_deref()
    }

    /// How long each lifecycle step takes.
    pub fn step_delay(&self) -> Duration {
        self.shared.config.step_delay
    }

    /// Queues a fault for the next matching request(s); rules are consumed in order.
    pub fn inject(&self, fault: Fault) {
        self.shared.control().inject(fault);
    }

    /// Delays every response by `latency` (zero turns it off).
    pub fn set_latency(&self, latency: Duration) {
        self.shared.control().latency = latency;
    }

    /// Answers 429 `RATE_LIMIT_EXCEEDED` with `Retry-After` past `limit` (`None` lifts it).
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.shared.control().set_rate_limit(limit);
    }

    /// Waits until every build started so far has run to its end, superseded ones included:
    /// after it, a state that a build could still change is final.
    pub async fn settle(&self) {
        self.shared.settle().await;
    }

    /// Makes every later build of deployments named `name` end `failed`.
    pub fn fail_builds_of(&self, name: &str) {
        self.shared.state().fail_builds.insert(name.to_owned());
    }

    /// The requests received so far (including faulted ones), oldest first: the newest
    /// 10,000, so a long-running mock does not grow.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.control().requests()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        self.shared.control().clear_requests();
    }

    /// The detail object of deployment `id`, as `GET deployments/{id}/` shows it.
    pub fn deployment_json(&self, id: i64) -> Option<serde_json::Value> {
        let state = self.shared.state();
        let deployment = state.deployments.get(&id)?;
        serde_json::to_value(deployment.detail(model::now())).ok()
    }

    /// How many deployments exist.
    pub fn deployment_count(&self) -> usize {
        self.shared.state().deployments.len()
    }

    /// The id of the deployment named `name`.
    pub fn deployment_id(&self, name: &str) -> Option<i64> {
        self.shared.state().by_name(name).map(|d| d.id)
    }

    /// Every status deployment `id` has had, oldest first (`None` for an unknown id): e.g.
    /// `["pending", "building", "running"]` after a successful create.
    pub fn status_history(&self, id: i64) -> Option<Vec<String>> {
        let state = self.shared.state();
        let deployment = state.deployments.get(&id)?;
        Some(
            deployment
                .history
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
        )
    }

    /// Forces deployment `id` into `status` (`pending`, `building`, `running`, `stopped`,
    /// `failed`), cancelling any build under way. False for an unknown id or status.
    pub fn set_deployment_status(&self, id: i64, status: &str) -> bool {
        let Some(status) = Status::parse(status) else {
            return false;
        };
        let changed = self.shared.state().force_status(id, status, model::now());
        if changed {
            self.shared.changed.notify_waiters();
        }
        changed
    }

    /// Makes deployment `id` pass or fail its health checks while running. False for an
    /// unknown id.
    pub fn set_deployment_health(&self, id: i64, healthy: bool) -> bool {
        match self.shared.state().deployments.get_mut(&id) {
            Some(d) => {
                d.healthy = healthy;
                true
            }
            None => false,
        }
    }

    /// Sets a platform service (`nginx`, `gunicorn`, `celery`, `postgresql`, `redis`, or a new
    /// one) to `running`, `stopped` or `failed`. False for an unknown state.
    pub fn set_service_state(&self, service: &str, state: &str) -> bool {
        let Some(state) = ServiceState::parse(state) else {
            return false;
        };
        self.shared
            .state()
            .services
            .insert(service.to_owned(), state);
        true
    }

    /// Appends a log line stamped now to deployment `id`. False for an unknown id, type
    /// or level.
    pub fn push_log(&self, id: i64, log_type: &str, level: &str, message: &str) -> bool {
        let (Some(log_type), Some(level)) = (LogType::parse(log_type), Level::parse(level)) else {
            return false;
        };
        match self.shared.state().deployments.get_mut(&id) {
            Some(d) => {
                d.log(model::now(), log_type, level, message.to_owned());
                true
            }
            None => false,
        }
    }

    /// Waits until deployment `id` has `status`; false when `timeout` passes first, the
    /// deployment is gone, or the status is unknown.
    pub async fn wait_for_status(&self, id: i64, status: &str, timeout: Duration) -> bool {
        let Some(wanted) = Status::parse(status) else {
            return false;
        };
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.shared.state().deployments.get(&id) {
                Some(d) if d.status == wanted => return true,
                Some(_) => {}
                None => return false,
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// Stops the server gracefully: no new connections, requests under way finish.
    pub async fn shutdown(mut self) {
        self.server.stop().await;
        self.shared.abort_tasks();
    }
}

impl Drop for MockWebOps {
    fn drop(&mut self) {
        self.shared.abort_tasks();
    }
}

/// Configures and starts a [`MockWebOps`].
///
/// ```
/// use std::time::Duration;
/// use webops_mcp_testkit::{MockWebOps, Seed, SeedDatabase, SeedDeployment};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let mock = MockWebOps::builder()
///     .token("secret")
///     .read_only_token("viewer")
///     .seed(Seed::Empty)
///     .deployment(SeedDeployment::new("shop-api").status("stopped"))
///     .generated_deployments(3)
///     .database(SeedDatabase::new("shop-db", "postgresql").deployment("shop-api"))
///     .step_delay(Duration::from_millis(5))
///     .start()
///     .await?;
/// assert_eq!(mock.deployment_count(), 4);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct MockBuilder {
    token: String,
    read_only_token: Option<String>,
    seed: Seed,
    deployments: Vec<SeedDeployment>,
    generated: usize,
    databases: Vec<SeedDatabase>,
    step_delay: Duration,
    bind: SocketAddr,
}

impl Default for MockBuilder {
    fn default() -> Self {
        MockBuilder {
            token: TEST_TOKEN.to_owned(),
            read_only_token: None,
            seed: Seed::Empty,
            deployments: Vec::new(),
            generated: 0,
            databases: Vec::new(),
            step_delay: DEFAULT_STEP_DELAY,
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        }
    }
}

impl MockBuilder {
    /// The token with full access (default [`TEST_TOKEN`]).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = token.into();
        self
    }

    /// A token that may read but gets 403 `PERMISSION_DENIED` on every write.
    pub fn read_only_token(mut self, token: impl Into<String>) -> Self {
        self.read_only_token = Some(token.into());
        self
    }

    /// The data set to start with (default [`Seed::Empty`]).
    pub fn seed(mut self, seed: Seed) -> Self {
        self.seed = seed;
        self
    }

    /// Adds a deployment (after the seed's).
    pub fn deployment(mut self, deployment: SeedDeployment) -> Self {
        self.deployments.push(deployment);
        self
    }

    /// Adds `n` simple running deployments `gen-app-001`, `gen-app-002`, ... whose environment
    /// cycles through development, staging and production.
    pub fn generated_deployments(mut self, n: usize) -> Self {
        self.deployments
            .extend(seed::generated(self.generated + 1, n));
        self.generated += n;
        self
    }

    /// Adds a database (after the seed's).
    pub fn database(mut self, database: SeedDatabase) -> Self {
        self.databases.push(database);
        self
    }

    /// How long each lifecycle step takes (default 20 ms).
    pub fn step_delay(mut self, delay: Duration) -> Self {
        self.step_delay = delay;
        self
    }

    /// The address to listen on (default `127.0.0.1:0`, a free port).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Binds and starts serving. Fails when the address cannot be bound or the seed data is
    /// invalid ([`std::io::ErrorKind::InvalidInput`]).
    pub async fn start(self) -> std::io::Result<MockWebOps> {
        let started = model::now();
        let (mut deployments, mut databases) = match self.seed {
            Seed::Empty => (Vec::new(), Vec::new()),
            Seed::Demo => seed::demo(),
        };
        deployments.extend(self.deployments);
        databases.extend(self.databases);
        let state = seed::build_state(&deployments, &databases, started)?;
        let config = Config {
            token: self.token,
            read_only_token: self.read_only_token,
            step_delay: self.step_delay,
            started,
            booted: started - chrono::Duration::hours(9 * 24 + 3),
        };

        let listener = tokio::net::TcpListener::bind(self.bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config, state));
        let app = api::router(Arc::clone(&shared));
        let server = Served::spawn(addr, "webops-mock", move |stopped| {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .into_future()
        });
        Ok(MockWebOps { shared, server })
    }
}
