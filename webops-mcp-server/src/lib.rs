//! The `webops-mcp` server: configuration, the stdio and Streamable HTTP transports, HTTP
//! authentication, `/health`, `/metrics` and `--demo`.
//!
//! A thin crate around [`webops_mcp_core`], which holds every tool and the call pipeline.
//! The binary is `webops-mcp`; this library is what it is made of, so the transports can be
//! started in-process (tests, embedding):
//!
//! ```no_run
//! # async fn run() -> Result<(), webops_mcp_server::Error> {
//! use webops_mcp_server::{Config, HttpApp, Transport, build_server};
//!
//! let config = Config::loader().file("webops-mcp.toml").load()?;
//! config.check_http_auth()?;
//! let server = build_server(&config, Transport::Http)?;
//! let listener = tokio::net::TcpListener::bind(config.http.bind)
//!     .await
//!     .map_err(|e| webops_mcp_server::Error::Io { context: "bind".into(), source: e })?;
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! HttpApp::new(&config, server).serve(listener, shutdown).await
//! # }
//! ```

mod auth;
pub mod config;
mod demo;
mod error;
mod http;
mod jsonrpc;
mod keys;
mod lean;
mod metrics;
mod sessions;
pub mod state;
mod stdio;
mod sync;
mod telemetry;

use std::sync::Arc;

/// The README's examples, compiled as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

use rmcp::ServiceExt as _;
use tokio_util::sync::CancellationToken;
use webops_mcp_core::{
    AuditSink, AuthMethod, Identity, JsonLinesFileSink, ServerConfig, StderrSink, WebOpsMcpServer,
};

pub use config::{Config, ConfigLoader};
pub use demo::{Demo, VIEWER_PERMISSIONS};
pub use error::Error;
/// `MAX_BODY_BYTES` is the largest request body `/mcp` accepts (tests and embedders size
/// requests by it); `SHUTDOWN_GRACE` is how long [`HttpApp::serve`] lets tool calls in flight
/// finish after shutdown is signalled, so an embedder knows how long stopping may take.
pub use http::{HttpApp, MAX_BODY_BYTES, SHUTDOWN_GRACE};
pub use keys::{API_KEY_PREFIX, generate_api_key, hash_password, key_digest};

/// Which transport a server is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// One agent over stdin/stdout; its identity is `[stdio]` of the configuration.
    Stdio,
    /// Streamable HTTP; every request is authenticated and carries its own identity.
    Http,
}

/// Builds the MCP server for `config`: the built-in tools `[tools]` selects, the WebOps
/// client, gates (their rate limit and confirmation nonces in `[state]`'s store when it is
/// shared: [`Config::shared_state`]), the audit sink (`[security] audit_log`, else stderr) and, for
/// stdio only, the default identity. Over HTTP there is no default identity: a request
/// without an authenticated identity may call nothing.
///
/// With `[telemetry] otlp_endpoint` its requests are traced (OpenTelemetry over OTLP/HTTP,
/// exported from the current Tokio runtime, so call it inside one); [`HttpApp::serve`] and
/// [`serve_stdio`] send the last spans when they end.
pub fn build_server(config: &Config, transport: Transport) -> Result<WebOpsMcpServer, Error> {
    let mut builder = WebOpsMcpServer::builder().config(
        ServerConfig::new(
            config.webops.clone(),
            config
                .security
                .to_core()
                .confirmations(config.confirmations.clone())
                .resources(config.resources.clone()),
        )
        .tools(config.tools.clone()),
    );
    let shared = config.shared_state();
    if let Some(store) = shared.rate_limit_store() {
        builder = builder.rate_limit_store(store);
    }
    if let Some(store) = shared.nonce_store() {
        builder = builder.nonce_store(store);
    }
    let telemetry = telemetry::Telemetry::start(&config.telemetry, &config.security.server_id)?;
    if config.security.audit_logging {
        let mut sink: Arc<dyn AuditSink> = match &config.security.audit_log {
            Some(path) => Arc::new(JsonLinesFileSink::open(path).map_err(|e| {
                Error::io(format!("cannot open the audit log {}", path.display()), e)
            })?),
            None => Arc::new(StderrSink::new()),
        };
        if let Some(telemetry) = &telemetry {
            sink = telemetry.audit_sink(sink);
        }
        builder = builder.audit_sink(sink);
    }
    if let Some(telemetry) = telemetry {
        builder = builder.tracer(telemetry);
    }
    if transport == Transport::Stdio {
        builder = builder.default_identity(Identity::new(
            config.stdio.user_id.clone(),
            AuthMethod::Stdio,
            config.stdio.permissions.clone(),
        ));
    }
    builder.build().map_err(Error::Build)
}

/// Serves one agent over stdin/stdout until stdin closes or `shutdown` fires. Nothing but
/// MCP messages is written to stdout; a line that is not a valid message gets its JSON-RPC
/// error (`-32700` with `"id": null` when it is not JSON) and the server reads on.
pub async fn serve_stdio(
    server: WebOpsMcpServer,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let running = server
        .mcp_handler()
        .serve_with_ct(
            stdio::LineTransport::new(tokio::io::stdin(), tokio::io::stdout()),
            shutdown,
        )
        .await
        .map_err(|e| Error::Transport(e.to_string()))?;
    let result = running
        .waiting()
        .await
        .map(|_| ())
        .map_err(|e| Error::Transport(e.to_string()));
    server.flush_traces().await;
    result
}
