//! Real MCP clients of the server under test: Streamable HTTP (one or many) or a
//! `webops-mcp stdio --demo` child.

use std::fmt;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use rmcp::model::{ClientConfig, ProtocolVersion};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientLifecycleMode, ClientServiceExt as _};
use tokio::task::JoinSet;

use super::process::tail_of;

/// A connected MCP client.
pub(crate) type McpClient = RunningService<RoleClient, ClientConfig>;

/// Which MCP lifecycle the clients use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Protocol {
    /// `initialize` handshake and a session (2025-11-25), what most clients do today.
    Legacy,
    /// Stateless `server/discover` (2026-07-28): no session, every request self-contained.
    Modern,
}

impl Protocol {
    fn lifecycle(self) -> ClientLifecycleMode {
        match self {
            Protocol::Legacy => ClientLifecycleMode::Initialize,
            Protocol::Modern => ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Legacy => "legacy: initialize handshake, a session over HTTP",
            Protocol::Modern => "modern: stateless 2026-07-28",
        })
    }
}

/// An initialized Streamable HTTP client sending `Authorization: Bearer <key>`. With
/// `keep_alive` its reqwest client pools connections (like the direct baseline); without,
/// it is rmcp's default (a new connection per request).
pub(crate) async fn connect_http(
    url: &str,
    key: &str,
    protocol: Protocol,
    keep_alive: bool,
) -> Result<McpClient> {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(key);
    let transport = if keep_alive {
        StreamableHttpClientTransport::with_client(reqwest::Client::new(), config)
    } else {
        StreamableHttpClientTransport::from_config(config)
    };
    ClientConfig::default()
        .serve_with_lifecycle(transport, protocol.lifecycle())
        .await
        .with_context(|| format!("connecting an MCP client to {url}"))
}

/// `count` clients, connected a few at a time.
pub(crate) async fn connect_http_many(
    count: usize,
    url: &str,
    key: &str,
    protocol: Protocol,
    keep_alive: bool,
) -> Result<Vec<Arc<McpClient>>> {
    let mut clients = Vec::with_capacity(count);
    for chunk_start in (0..count).step_by(16) {
        let mut set = JoinSet::new();
        for i in chunk_start..count.min(chunk_start + 16) {
            let (url, key) = (url.to_owned(), key.to_owned());
            set.spawn(async move { (i, connect_http(&url, &key, protocol, keep_alive).await) });
        }
        let mut chunk: Vec<(usize, McpClient)> = Vec::new();
        while let Some(joined) = set.join_next().await {
            let (i, client) = joined?;
            chunk.push((i, client?));
        }
        chunk.sort_by_key(|(i, _)| *i);
        clients.extend(chunk.into_iter().map(|(_, c)| Arc::new(c)));
    }
    Ok(clients)
}

/// What a `webops-mcp stdio --demo` child must not inherit: configuration from the
/// environment (a file, a real WebOps) and log filters.
pub(crate) const STDIO_CLEARED_ENV: [&str; 4] = [
    "WEBOPS_MCP_CONFIG",
    "WEBOPS_API_URL",
    "WEBOPS_API_KEY",
    "RUST_LOG",
];

/// A `webops-mcp stdio --demo` child with an MCP client on its stdin/stdout.
pub(crate) struct StdioClient {
    pub(crate) client: Arc<McpClient>,
    pub(crate) pid: u32,
}

/// Spawns `webops-mcp stdio --demo --config <config>` and connects a client to it. The
/// child's stderr goes to `stderr`; the child dies with the client.
pub(crate) async fn connect_stdio(
    bin: &Path,
    config: &Path,
    stderr: &Path,
    protocol: Protocol,
) -> Result<StdioClient> {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(["stdio", "--demo", "--config"])
        .arg(config)
        .kill_on_drop(true);
    for name in STDIO_CLEARED_ENV {
        cmd.env_remove(name);
    }
    let log = File::create(stderr).with_context(|| format!("creating {}", stderr.display()))?;
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(log)
        .spawn()
        .context("starting webops-mcp stdio")?;
    let pid = transport.id().context("the stdio server has no pid")?;
    let client = ClientConfig::default()
        .serve_with_lifecycle(transport, protocol.lifecycle())
        .await
        .with_context(|| {
            format!(
                "connecting to webops-mcp stdio; its stderr:\n{}",
                tail_of(stderr, 2000)
            )
        })?;
    Ok(StdioClient {
        client: Arc::new(client),
        pid,
    })
}
