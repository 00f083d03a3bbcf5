//! A faithful mock of the shipped WebOps control panel's HTTP API (the "panel flavour"), as
//! observed by running the real panel (`docs/webops-panel.md` says what the server makes of
//! it): form login with Django's CSRF and session cookies, 302s instead of 401s, 403 CSRF pages, the global per-IP rate limit, the JSON views
//! under `/api/` and `/monitoring/api/` with their quirks (oldest-first `tail`, soft delete,
//! stop/restart 500s, `Paginator` 500s) and an inline deploy task that ends `pending`.
//!
//! ```
//! use webops_mcp_testkit::{MockPanel, PanelSeed};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let panel = MockPanel::builder().seed(PanelSeed::Demo).start().await?;
//! let http = reqwest::Client::builder()
//!     .redirect(reqwest::redirect::Policy::none())
//!     .build()?;
//! let answer = http
//!     .get(format!("{}/api/deployments/", panel.base_url()))
//!     .send()
//!     .await?;
//! assert_eq!(answer.status(), 302); // no session: off to the login form
//! assert_eq!(panel.deployment_status("blog").as_deref(), Some("running"));
//! panel.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod auth;
mod http;
mod monitor;
mod routes;
mod seed;
mod state;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::serve::Served;
use std::future::IntoFuture as _;

pub use seed::{
    PANEL_2FA_PASSWORD, PANEL_2FA_USER, PANEL_PASSWORD, PANEL_USER, PanelDatabase, PanelDeployment,
    PanelSeed, PanelUser,
};

use crate::fault::RecordedRequest;
use crate::store::lock;
use state::PanelState;

/// The panel's default global limit: 20 requests per fixed 60-second window per client.
pub const PANEL_RATE_LIMIT: (u32, Duration) = (20, Duration::from_secs(60));

/// What the server and the handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<PanelState>,
}

impl Shared {
    /// The state, riding over poisoning.
    pub(crate) fn state(&self) -> MutexGuard<'_, PanelState> {
        lock(&self.state)
    }
}

/// A running mock control panel. Dropping it stops the server.
pub struct MockPanel {
    shared: Arc<Shared>,
    server: Served,
}

impl std::fmt::Debug for MockPanel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockPanel")
            .field("addr", &self.server.addr)
            .finish_non_exhaustive()
    }
}

impl MockPanel {
    /// A builder: seed, users, rate limit, address.
    pub fn builder() -> PanelBuilder {
        PanelBuilder::default()
    }

    /// `http://127.0.0.1:PORT` (the panel's paths start at `/api/`, `/auth/`, `/monitoring/`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// The requests answered so far, oldest first (the newest 10,000), with every header
    /// (`cookie`, `x-csrftoken`, `referer`, `origin`, `x-forwarded-for`, ...) and the status.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.state().requests.iter().cloned().collect()
    }

    /// Forgets the requests answered so far.
    pub fn clear_requests(&self) {
        self.shared.state().requests.clear();
    }

    /// Ends every session, as if each had logged out: every later request with an old
    /// `sessionid` is treated as anonymous (302 to the login form).
    pub fn end_sessions(&self) {
        self.shared.state().sessions.clear();
    }

    /// Turns two-factor authentication of `user` on or off; false for an unknown user.
    pub fn set_two_factor(&self, user: &str, enabled: bool) -> bool {
        match self.shared.state().users.get_mut(user) {
            Some(u) => {
                u.two_factor = enabled;
                true
            }
            None => false,
        }
    }

    /// The stored `status` of deployment `name` (any owner, soft-deleted included).
    pub fn deployment_status(&self, name: &str) -> Option<String> {
        let state = self.shared.state();
        state
            .deployments
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.status.clone())
    }

    /// Writes `status` (any text, as the database would take it) into deployment `name`;
    /// false for an unknown name.
    pub fn set_deployment_status(&self, name: &str, status: &str) -> bool {
        match self.shared.state().by_name_mut(name) {
            Some(d) => {
                d.status = status.to_owned();
                true
            }
            None => false,
        }
    }

    /// Whether deployment `name` is soft-deleted (which the API never shows); `None` for an
    /// unknown name.
    pub fn is_deleted(&self, name: &str) -> Option<bool> {
        let state = self.shared.state();
        state
            .deployments
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.deleted)
    }

    /// Forgets every client's rate-limit counters.
    pub fn reset_rate_limit(&self) {
        let mut state = self.shared.state();
        let burst = state.limiter.burst;
        state.limiter = state::Limiter::new(burst);
    }

    /// Stops the server gracefully: no new connections, requests under way finish.
    pub async fn shutdown(mut self) {
        self.server.stop().await;
    }
}

/// Configures and starts a [`MockPanel`].
///
/// ```
/// use std::time::Duration;
/// use webops_mcp_testkit::{MockPanel, PanelDeployment, PanelSeed, PanelUser};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let panel = MockPanel::builder()
///     .seed(PanelSeed::Empty)
///     .users(vec![PanelUser::new("carol", "carol-password")])
///     .deployment(PanelDeployment::new("site", "carol").status("running").env_var("DEBUG", "True"))
///     .rate_limit(Some((5, Duration::from_secs(10))))
///     .start()
///     .await?;
/// assert_eq!(panel.deployment_status("site").as_deref(), Some("running"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct PanelBuilder {
    seed: PanelSeed,
    users: Vec<PanelUser>,
    deployments: Vec<PanelDeployment>,
    databases: Vec<PanelDatabase>,
    rate_limit: Option<(u32, Duration)>,
    bind: SocketAddr,
}

impl Default for PanelBuilder {
    fn default() -> Self {
        PanelBuilder {
            seed: PanelSeed::Empty,
            users: seed::default_users(),
            deployments: Vec::new(),
            databases: Vec::new(),
            rate_limit: Some(PANEL_RATE_LIMIT),
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        }
    }
}

impl PanelBuilder {
    /// The data set to start with (default [`PanelSeed::Empty`]).
    pub fn seed(mut self, seed: PanelSeed) -> Self {
        self.seed = seed;
        self
    }

    /// Replaces the users (default: [`PANEL_USER`] and [`PANEL_2FA_USER`] with 2FA).
    pub fn users(mut self, users: Vec<PanelUser>) -> Self {
        self.users = users;
        self
    }

    /// Adds a user.
    pub fn user(mut self, user: PanelUser) -> Self {
        self.users.push(user);
        self
    }

    /// Adds a deployment (besides the seed's).
    pub fn deployment(mut self, deployment: PanelDeployment) -> Self {
        self.deployments.push(deployment);
        self
    }

    /// Adds a database (besides the seed's).
    pub fn database(mut self, database: PanelDatabase) -> Self {
        self.databases.push(database);
        self
    }

    /// The global burst limit per client: `(requests, window)`, counted from a client's first
    /// request in a window, next to a fixed 1000 per hour (default [`PANEL_RATE_LIMIT`]);
    /// `None` turns limiting off.
    pub fn rate_limit(mut self, limit: Option<(u32, Duration)>) -> Self {
        self.rate_limit = limit;
        self
    }

    /// The address to listen on (default `127.0.0.1:0`, a free port).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Binds and starts serving. Fails when the address cannot be bound or the seed data is
    /// invalid ([`std::io::ErrorKind::InvalidInput`]: a duplicate name, a database of an
    /// unknown deployment).
    pub async fn start(self) -> std::io::Result<MockPanel> {
        let started = chrono::Utc::now();
        let (mut deployments, mut databases) = match self.seed {
            PanelSeed::Empty => (Vec::new(), Vec::new()),
            PanelSeed::Demo => seed::demo(),
        };
        deployments.extend(self.deployments);
        databases.extend(self.databases);
        let state = seed::build(
            &self.users,
            &deployments,
            &databases,
            self.rate_limit,
            started,
        )?;
        let listener = tokio::net::TcpListener::bind(self.bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
        });
        let app = axum::Router::new()
            .fallback(http::serve)
            .with_state(Arc::clone(&shared))
            .into_make_service_with_connect_info::<SocketAddr>();
        let server = Served::spawn(addr, "webops-mock panel", move |stopped| {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .into_future()
        });
        Ok(MockPanel { shared, server })
    }
}
