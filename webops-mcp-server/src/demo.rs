//! `--demo`: an in-process mock WebOps API with demo data, so a newcomer needs no WebOps
//! server; in HTTP mode without API keys, an admin and a viewer key made for the run.
//! `--demo-flavor panel` runs a mock of the shipped WebOps control panel instead of the REST
//! API v1, logged in to as its demo user, with the panel's request budget.

use std::net::SocketAddr;
use std::time::Duration;

use webops_client::{ApiFlavor, Flavor, RequestBudget};
use webops_mcp_core::PermissionSet;
use webops_mcp_testkit::{MockPanel, MockWebOps, PANEL_PASSWORD, PANEL_USER, PanelSeed, Seed};

use crate::config::{ApiKeyEntry, Config};
use crate::error::Error;
use crate::keys::generate_api_key;

/// How long each step of the mock's deployment lifecycle takes.
pub(crate) const DEMO_STEP_DELAY: Duration = Duration::from_secs(1);

/// The permissions of the demo's viewer key.
pub const VIEWER_PERMISSIONS: &str = "deploy:read logs:read system:read";

/// A running demo. Dropping it stops the mock WebOps API.
pub struct Demo {
    mock: DemoMock,
    keys: Option<DemoKeys>,
}

/// The mock the demo runs.
enum DemoMock {
    /// The REST API v1.
    V1(MockWebOps),
    /// The shipped control panel, and the request budget the server keeps to.
    Panel(MockPanel, RequestBudget),
}

/// The keys made for an HTTP demo.
struct DemoKeys {
    admin: String,
    viewer: String,
}

impl Demo {
    /// Starts the mock of `config.demo_flavor` and points `config.webops` at it: for
    /// [`ApiFlavor::V1`] the REST API v1 mock (demo seed, a random token,
    /// a one-second lifecycle step); for [`ApiFlavor::Panel`] the control panel mock (its demo seed,
    /// logged in to as [`PANEL_USER`], the configured request budget kept, as against a real
    /// panel). With `http` and no `[[auth.api_keys]]` configured, adds an admin key (all
    /// permissions) and a viewer key ([`VIEWER_PERMISSIONS`]) to `config.auth`;
    /// [`Demo::banner`] shows them.
    pub async fn start(config: &mut Config, http: bool) -> Result<Demo, Error> {
        let mock = match config.demo_flavor {
            ApiFlavor::V1 => {
                let (token, _) = generate_api_key()?;
                let mock = MockWebOps::builder()
                    .seed(Seed::Demo)
                    .token(token.clone())
                    .step_delay(DEMO_STEP_DELAY)
                    .start()
                    .await
                    .map_err(|e| Error::io("starting the demo WebOps API", e))?;
                config.webops.api_url = mock.base_url();
                config.webops.flavor = Flavor::V1;
                config.webops.api_key = Some(token);
                config.webops.username = None;
                config.webops.password = None;
                DemoMock::V1(mock)
            }
            ApiFlavor::Panel => {
                let mock = MockPanel::builder()
                    .seed(PanelSeed::Demo)
                    .start()
                    .await
                    .map_err(|e| Error::io("starting the demo WebOps control panel", e))?;
                config.webops.api_url = mock.base_url();
                config.webops.flavor = Flavor::Panel;
                config.webops.api_key = None;
                config.webops.username = Some(PANEL_USER.to_owned());
                config.webops.password = Some(PANEL_PASSWORD.to_owned());
                DemoMock::Panel(mock, config.webops.budget)
            }
        };
        let mut keys = None;
        if http && config.auth.api_keys.is_empty() {
            let (admin, admin_digest) = generate_api_key()?;
            let (viewer, viewer_digest) = generate_api_key()?;
            let viewer_permissions = PermissionSet::parse([VIEWER_PERMISSIONS])
                .map_err(|e| Error::Config(vec![e.to_string()]))?;
            config.auth.api_keys.push(ApiKeyEntry::new(
                "demo-admin",
                admin_digest,
                PermissionSet::all(),
            ));
            config.auth.api_keys.push(ApiKeyEntry::new(
                "demo-viewer",
                viewer_digest,
                viewer_permissions,
            ));
            keys = Some(DemoKeys { admin, viewer });
        }
        Ok(Demo { mock, keys })
    }

    /// Where the mock WebOps API listens.
    pub fn api_url(&self) -> String {
        match &self.mock {
            DemoMock::V1(mock) => mock.base_url(),
            DemoMock::Panel(mock, _) => mock.base_url(),
        }
    }

    /// The API the mock speaks.
    pub fn flavor(&self) -> ApiFlavor {
        match &self.mock {
            DemoMock::V1(_) => ApiFlavor::V1,
            DemoMock::Panel(..) => ApiFlavor::Panel,
        }
    }

    /// One line on what the mock is and, for the panel, how to log in to it.
    pub fn describe(&self) -> String {
        match &self.mock {
            DemoMock::V1(mock) => format!(
                "a mock WebOps REST API v1 (flavour v1) with demo data runs in-process at {}",
                mock.base_url()
            ),
            DemoMock::Panel(mock, budget) => {
                let budget = if budget.requests == 0 {
                    "no request budget ([webops] budget_requests = 0)".to_owned()
                } else {
                    format!(
                        "a budget of {} requests per {} s, as against a real panel (which allows \
                         20 a minute per address)",
                        budget.requests,
                        budget.window.as_secs()
                    )
                };
                format!(
                    "a mock WebOps control panel (flavour panel) with demo data runs in-process \
                     at {}\nThe server logs in to it with the panel's form login as user \
                     {PANEL_USER:?}, password {PANEL_PASSWORD:?} (the mock's demo user), and \
                     keeps to {budget}",
                    mock.base_url()
                )
            }
        }
    }

    /// What to print on stderr when the HTTP demo starts listening on `bind`: the keys
    /// made for this run with a ready MCP client configuration and a curl example.
    pub fn banner(&self, bind: SocketAddr) -> String {
        let host = if bind.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else if bind.is_ipv6() {
            format!("[{}]", bind.ip())
        } else {
            bind.ip().to_string()
        };
        let url = format!("http://{host}:{}/mcp", bind.port());
        let mut out = format!("\nwebops-mcp demo: {}\n", self.describe());
        match &self.keys {
            None => out.push_str(&format!(
                "MCP endpoint: {url} (authenticate with the keys of your configuration)\n"
            )),
            Some(keys) => {
                out.push_str(&format!(
                    "Two API keys were made for this run (kept nowhere; they end with it):\n  \
                     admin  (all permissions):  {}\n  viewer ({VIEWER_PERMISSIONS}):  {}\n\n",
                    keys.admin, keys.viewer
                ));
                let client = serde_json::json!({
                    "mcpServers": {
                        "webops": {
                            "type": "http",
                            "url": url,
                            "headers": { "Authorization": format!("Bearer {}", keys.admin) },
                        }
                    }
                });
                out.push_str("MCP client configuration (paste into your client's MCP settings):\n");
                out.push_str(&serde_json::to_string_pretty(&client).unwrap_or_default());
                out.push_str("\n\nOr try it with curl:\n");
                out.push_str(&format!(
                    "  curl -s {url} -H 'Authorization: Bearer {}' \\\n    \
                     -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\\n    \
                     -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{{}},\"clientInfo\":{{\"name\":\"curl\",\"version\":\"1\"}}}}}}'\n",
                    keys.viewer
                ));
            }
        }
        out
    }
}
