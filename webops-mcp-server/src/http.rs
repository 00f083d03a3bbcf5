//! The Streamable HTTP transport: `/mcp` behind authentication, `/health`, `/metrics`, the
//! OAuth Protected Resource Metadata, request accounting, time limits, the connection loop
//! and graceful shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::extract::{FromRequest as _, MatchedPath, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Method, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use hyper_util::service::TowerToHyperService;
use rmcp::model::JsonRpcMessage;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::{ServiceBuilder, ServiceExt as _};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use webops_client::{ApiFlavor, WebOpsApi};
use webops_mcp_core::{McpHandler, Permission, WebOpsMcpServer};

use crate::auth::{AuthLayerState, Authenticator, ProxyTrust, authenticate, authenticate_layer};
use crate::config::{Config, OAuthSettings};
use crate::error::Error;
use crate::jsonrpc;
use crate::lean::Lean;
use crate::metrics::HttpMetrics;
use crate::sessions::{SessionOwners, bind_session};
use crate::state::SharedState;

/// The largest request body accepted (larger ones get 413).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How long shutdown waits for tool calls in flight before cancelling them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long shutdown then waits for connections to close before closing them.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Time limit of the operational endpoints (`/health`, `/metrics`, metadata).
const OPS_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a `/health` upstream check is reused.
const HEALTH_CACHE: Duration = Duration::from_secs(5);

/// How long the `/health` upstream check may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// Host names always accepted in the `Host` header.
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The `Origin`s accepted when `[http] allowed_origins` is empty and the server is bound to a
/// loopback address: pages served from this machine, on any port. Any other origin is refused.
const LOOPBACK_ORIGINS: [&str; 6] = [
    "http://localhost:*",
    "http://127.0.0.1:*",
    "http://[::1]:*",
    "https://localhost:*",
    "https://127.0.0.1:*",
    "https://[::1]:*",
];

/// How much of an error answer of rmcp is read to turn it into a JSON-RPC error body.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The HTTP application: a router plus what graceful shutdown needs.
pub struct HttpApp {
    router: Router,
    /// Whose traces are sent when serving ends.
    server: WebOpsMcpServer,
    mcp_cancel: CancellationToken,
    inflight: Arc<Inflight>,
    read_timeout: Duration,
}

#[derive(Clone)]
struct AppState {
    server: WebOpsMcpServer,
    metrics: Arc<HttpMetrics>,
    authenticator: Arc<Authenticator>,
    health: Arc<HealthCheck>,
    oauth: Option<Arc<OAuthSettings>>,
    shared: SharedState,
}

impl HttpApp {
    /// Builds the routes for `config` around `server` (whose tools, gates and audit serve
    /// `/mcp`). With `[state]` on Redis ([`Config::shared_state`]), legacy sessions, their
    /// owners and the authentication failure throttle are shared with the other replicas.
    pub fn new(config: &Config, server: WebOpsMcpServer) -> HttpApp {
        let handler = server.mcp_handler();
        HttpApp::build(config, server, handler.clone(), Some(handler))
    }

    /// Like [`HttpApp::new`], but `/mcp` serves `handler`, typically one that wraps
    /// `server.mcp_handler()` and adds resources or prompts (the conformance fixture does).
    /// Authentication, Host/Origin checks, the body limit, `/health` and `/metrics` are the
    /// same; the handler finds the caller's identity where [`webops_mcp_core::McpHandler`]
    /// does, in the request's `http::request::Parts`.
    ///
    /// Every request reaches `handler` through rmcp: the lean path of stateless `tools/call`
    /// requests (see [`HttpApp::new`]) is only taken to the server's own handler.
    pub fn with_handler<H>(config: &Config, server: WebOpsMcpServer, handler: H) -> HttpApp
    where
        H: rmcp::ServerHandler + Clone,
    {
        HttpApp::build(config, server, handler, None)
    }

    /// The application serving `/mcp` with `handler` through rmcp, and stateless `tools/call`
    /// requests rmcp would route unchanged to `lean` without rmcp's per-request service.
    fn build<H>(
        config: &Config,
        server: WebOpsMcpServer,
        handler: H,
        lean: Option<McpHandler>,
    ) -> HttpApp
    where
        H: rmcp::ServerHandler + Clone,
    {
        let metrics = Arc::new(HttpMetrics::new());
        let authenticator = Arc::new(Authenticator::new(&config.auth));
        let mcp_cancel = CancellationToken::new();
        let inflight = Arc::new(Inflight::default());
        let shared = config.shared_state();
        let state = AppState {
            health: Arc::new(HealthCheck::new(server.api())),
            server: server.clone(),
            metrics: metrics.clone(),
            authenticator: authenticator.clone(),
            oauth: config.auth.oauth.clone().map(Arc::new),
            shared: shared.clone(),
        };

        let hosts: Vec<String> = LOOPBACK_HOSTS
            .iter()
            .map(|h| (*h).to_owned())
            .chain(config.http.allowed_hosts.iter().cloned())
            .collect();
        let body = BodyRules {
            read_timeout: config.http.read_timeout,
            answer_timeout: config.http.request_timeout,
            lean: lean.map(|handler| {
                Arc::new(Lean::new(
                    handler,
                    &hosts,
                    mcp_cancel.clone(),
                    metrics.clone(),
                ))
            }),
        };
        let mut mcp_config = StreamableHttpServerConfig::default()
            .with_allowed_hosts(hosts)
            .with_allowed_origins(allowed_origins(config))
            .enforce_origin_validation()
            .with_max_request_body_bytes(MAX_BODY_BYTES)
            .with_json_response(true)
            .with_cancellation_token(mcp_cancel.child_token());
        // A session opened on another replica is restored from the shared store.
        mcp_config.session_store = shared.session_store();
        let sessions = Arc::new(LocalSessionManager::default());
        let owners = Arc::new(SessionOwners::new(sessions.clone(), shared.clone()));
        let mcp_service = Shared(Arc::new(StreamableHttpService::new(
            move || Ok(handler.clone()),
            sessions,
            mcp_config,
        )));
        let auth_state = AuthLayerState {
            authenticator,
            metrics: metrics.clone(),
            proxies: Arc::new(ProxyTrust::new(config.http.trusted_proxies.clone())),
            require: None,
            shared,
        };
        let layers = McpLayers {
            auth: auth_state.clone(),
            owners,
            inflight: inflight.clone(),
            body,
            answer_timeout: config.http.request_timeout,
        };
        let mcp = Router::new()
            .route_service("/mcp", mcp_service)
            .route_layer(from_fn_with_state(Arc::new(layers), mcp_layers));

        let metrics_route = if config.http.metrics_require_auth {
            let guarded = AuthLayerState {
                require: Some(Permission::SystemRead),
                ..auth_state
            };
            get(metrics_handler).route_layer(from_fn_with_state(guarded, authenticate_layer))
        } else {
            get(metrics_handler)
        };
        let mut ops = Router::new()
            .route("/health", get(health_handler))
            .route("/metrics", metrics_route);
        if let Some(oauth) = &config.auth.oauth {
            let mut paths = vec![
                "/.well-known/oauth-protected-resource".to_owned(),
                "/.well-known/oauth-protected-resource/mcp".to_owned(),
            ];
            let derived = oauth.metadata_url();
            if let Some(i) = derived.find("/.well-known/") {
                let path = derived[i..].to_owned();
                if !paths.contains(&path) {
                    paths.push(path);
                }
            }
            for path in paths {
                ops = ops.route(&path, get(resource_metadata_handler));
            }
        }
        let ops = ops.layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            OPS_TIMEOUT,
        ));

        let router = ops.merge(mcp).fallback(not_found).with_state(state).layer(
            ServiceBuilder::new()
                .layer(from_fn_with_state(metrics, count_and_check_host))
                .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES)),
        );
        HttpApp {
            router,
            server,
            mcp_cancel,
            inflight,
            read_timeout: config.http.read_timeout,
        }
    }

    /// The router (for embedding in another axum application or a custom server loop).
    ///
    /// It needs `ConnectInfo<SocketAddr>` (e.g. `into_make_service_with_connect_info`) to
    /// throttle authentication failures per client address. Without it the peer is unknown:
    /// every client shares one throttle entry and `X-Forwarded-For` is ignored. The time
    /// limit on reading a request's headers is the server loop's; [`HttpApp::serve`] sets it.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Serves on `listener` until `shutdown` fires, then stops accepting, lets tool calls
    /// in flight finish (at most [`SHUTDOWN_GRACE`]), closes the MCP sessions, and sends the
    /// traces still buffered (`[telemetry]`).
    ///
    /// Connections speak HTTP/1.1 (HTTP/2 is refused). Each must send a request's headers
    /// within `[http] read_timeout_secs`, counted from the moment it connects or its previous
    /// answer was sent (so a silent or idle keep-alive connection is closed after as long).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), Error> {
        // HTTP/1.1 only: detecting HTTP/2 first reads the connection's opening bytes with no
        // deadline (a client that connects and sends nothing would hold it open forever), and
        // HTTP/2 without TLS would get none of the HTTP/1 time limits. Behind a TLS proxy the
        // client's HTTP/2 ends at the proxy.
        let mut builder = ConnectionBuilder::new(TokioExecutor::new()).http1_only();
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.read_timeout);
        let closing = CancellationToken::new();
        let mut connections = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            };
            // TCP_NODELAY: a legacy-session answer is an SSE stream written in several small
            // pieces; with Nagle's algorithm each later piece waits for the client's delayed
            // ACK (40 ms on Linux), which capped a keep-alive client at ~22 calls per second.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
            let service = TowerToHyperService::new(
                self.router
                    .clone()
                    .map_request(move |request| with_peer(request, peer)),
            );
            let builder = builder.clone();
            let closing = closing.clone();
            connections.spawn(async move {
                let connection = builder.serve_connection(TokioIo::new(tcp), service);
                tokio::pin!(connection);
                let result = tokio::select! {
                    result = connection.as_mut() => result,
                    () = closing.cancelled() => {
                        // Finish the request in progress, then close.
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                };
                if let Err(e) = result {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
            });
        }
        drop(listener);
        closing.cancel();
        let pending = self.inflight.count();
        if pending > 0 {
            tracing::info!(
                calls = pending,
                "shutting down: waiting for calls in flight (up to {} s)",
                SHUTDOWN_GRACE.as_secs()
            );
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, self.inflight.wait_idle())
            .await
            .is_err()
        {
            tracing::warn!(
                calls = self.inflight.count(),
                "calls still in flight after the grace period; cancelling them"
            );
        }
        self.mcp_cancel.cancel();
        let drained = tokio::time::timeout(CLOSE_GRACE, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                connections = connections.len(),
                "connections still open after shutdown; closing them"
            );
            connections.shutdown().await;
        }
        self.server.flush_traces().await;
        Ok(())
    }
}

/// rmcp's HTTP service behind an `Arc`. The router clones the `/mcp` service (with the
/// layers around it) for each request, and rmcp's own clone copies its whole configuration,
/// allowed hosts and origins included; this clone is a reference count.
struct Shared<H>(Arc<StreamableHttpService<H, LocalSessionManager>>);

impl<H> Clone for Shared<H> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<H> tower::Service<Request> for Shared<H>
where
    H: rmcp::ServerHandler + Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move { Ok(service.handle(request).await.map(Body::new)) })
    }
}

/// Gives a request its connection's peer address, as axum's `ConnectInfo` extractor and the
/// authentication throttle expect it.
fn with_peer<B>(mut request: http::Request<B>, peer: SocketAddr) -> http::Request<B> {
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

/// After a failed `accept`: per-connection errors are the client's; others (such as running
/// out of file descriptors) are logged and followed by a pause rather than a busy loop.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %error, "cannot accept connections; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The route label of a matched path (a fixed set, so label cardinality stays bounded).
fn route_label(path: Option<&MatchedPath>) -> &'static str {
    match path.map(MatchedPath::as_str) {
        Some("/mcp") => "/mcp",
        Some("/health") => "/health",
        Some("/metrics") => "/metrics",
        Some(p) if p.starts_with("/.well-known/oauth-protected-resource") => {
            "/.well-known/oauth-protected-resource"
        }
        _ => "other",
    }
}

/// What the `/mcp` middleware needs.
struct McpLayers {
    auth: AuthLayerState,
    owners: Arc<SessionOwners>,
    inflight: Arc<Inflight>,
    body: BodyRules,
    /// See [`limit_answer_start`].
    answer_timeout: Duration,
}

/// The `/mcp` middleware, outermost first, as one layer. Each axum layer clones and boxes
/// the layers inside it for every request; as six layers that cost about 4% of the server's
/// CPU per call.
async fn mcp_layers(
    State(layers): State<Arc<McpLayers>>,
    request: Request,
    next: Next,
) -> Response {
    let l = &*layers;
    json_rpc_errors(request, async |request| {
        authenticate(&l.auth, request, async |request| {
            bind_session(&l.owners, request, async |request| {
                track_inflight(&l.inflight, request, async |request| {
                    read_body(&l.body, request, async |request| {
                        limit_answer_start(l.answer_timeout, request, next).await
                    })
                    .await
                })
                .await
            })
            .await
        })
        .await
    })
    .await
}

/// Counts every request by route and status, after refusing the ones with ambiguous hosts
/// ([`host_refusal`]). One layer for both: a layer costs every request of every route.
async fn count_and_check_host(
    State(metrics): State<Arc<HttpMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = route_label(request.extensions().get::<MatchedPath>());
    let response = match host_refusal(&request) {
        None => next.run(request).await,
        Some(refusal) => refusal,
    };
    metrics.record_request(route, response.status().as_u16());
    response
}

/// How `read_body` reads and answers an `/mcp` request.
struct BodyRules {
    /// How long the body may take to arrive.
    read_timeout: Duration,
    /// How long the answer may take to start (`limit_answer_start`).
    answer_timeout: Duration,
    /// The lean path of stateless `tools/call` requests, with the server's own handler.
    lean: Option<Arc<Lean>>,
}

/// Reads an authenticated `/mcp` request's body within the read timeout (408 otherwise), so
/// a client cannot hold a request open by sending its body slowly; an oversized body gets
/// 413. A JSON POST whose body is not a valid JSON-RPC message gets 400 with its JSON-RPC
/// error ([`jsonrpc::check`]) instead of reaching rmcp; one the lean path takes is answered
/// there ([`Lean`]), within the answer timeout like any other. rmcp's plain-text errors get
/// a JSON-RPC body with the request's id ([`as_json_rpc_error`]).
async fn read_body(
    rules: &BodyRules,
    request: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    let (parts, body) = request.into_parts();
    // Only the body matters to the extractor (it answers 413 past the body limit).
    let read = Bytes::from_request(Request::new(body), &());
    let limit = rules.read_timeout;
    match tokio::time::timeout(limit, read).await {
        Ok(Ok(mut bytes)) => {
            let mut id = Value::Null;
            if parts.method == Method::POST && is_json(&parts.headers) {
                let checked = jsonrpc::parse(&bytes).and_then(|message| {
                    let message = match &rules.lean {
                        Some(lean) => match lean.accepts(&parts.headers, message) {
                            Ok(call) => return Ok(Some((lean, call))),
                            Err(message) => message,
                        },
                        None => message,
                    };
                    jsonrpc::check_value(message).map(|message| {
                        if let JsonRpcMessage::Request(request) = message {
                            id = request.id.into_json_value();
                        }
                        None
                    })
                });
                match checked {
                    Err(refusal) => {
                        tracing::debug!(code = refusal.code, message = %refusal.message, "refused a message");
                        return (StatusCode::BAD_REQUEST, axum::Json(refusal.to_json()))
                            .into_response();
                    }
                    Ok(Some((lean, call))) => {
                        let limit = rules.answer_timeout;
                        return tokio::time::timeout(limit, lean.serve(call, parts))
                            .await
                            .unwrap_or_else(|_| answer_timed_out(limit));
                    }
                    Ok(None) => {}
                }
                // rmcp reads the body again; without the byte order mark it reads what we did.
                let skip = bytes.len() - jsonrpc::without_bom(&bytes).len();
                bytes = bytes.slice(skip..);
            }
            let response = next(Request::from_parts(parts, Body::from(bytes))).await;
            as_json_rpc_error(response, id).await
        }
        Ok(Err(rejection)) => rejection.into_response(),
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            axum::Json(json!({
                "error": "request_timeout",
                "message": format!(
                    "the request body did not arrive within {} s",
                    limit.as_secs_f64()
                ),
            })),
        )
            .into_response(),
    }
}

/// Whether a request says its body is JSON (`Content-Type: application/json`, parameters
/// allowed). Other bodies are left to rmcp, which refuses them with 415.
fn is_json(headers: &http::HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
}

/// Gives an `/mcp` error answer that is not JSON a JSON-RPC error body, with `"id": null`
/// ([`as_json_rpc_error`]; `read_body` gives rmcp's answers to a request that request's id).
async fn json_rpc_errors(
    request: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    as_json_rpc_error(next(request).await, Value::Null).await
}

/// Gives an error answer that is not JSON (rmcp answers HTTP misuse, such as a wrong media
/// type, a missing `Accept`, an unknown session or a refused `Origin`, and a request it lost
/// while stopping, in plain text) a JSON-RPC error body with the same status and words:
/// `-32001` for an unknown session, `-32000` otherwise, and `id`. A client reads a JSON error
/// as the answer to the request of that id, so `id` is the request's where there was one: a
/// `null` one answers nothing, and rmcp's client then waits for good.
async fn as_json_rpc_error(response: Response, id: Value) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let media = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if media.contains("json") || media.starts_with("text/event-stream") {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_ERROR_BODY).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let code = if status == StatusCode::NOT_FOUND {
        -32001
    } else {
        -32000
    };
    let body = json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code, "message": message},
    });
    parts.headers.remove(http::header::CONTENT_LENGTH);
    parts.headers.insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body.to_string()))
}

/// The 400 answer to a request with more than one `Host` header, or whose absolute-form
/// target (`POST http://host/mcp`) names another authority than its `Host` header: the Host
/// checks (rmcp's, and a proxy's) look at one of them, the routing at the other.
fn host_refusal(request: &Request) -> Option<Response> {
    let mut hosts = request.headers().get_all(http::header::HOST).iter();
    let host = hosts.next();
    let why = if hosts.next().is_some() {
        "more than one Host header"
    } else if let (Some(target), Some(host)) = (request.uri().authority(), host)
        && !same_authority(target, request.uri().scheme_str(), host)
    {
        "the request target names another host than the Host header"
    } else {
        return None;
    };
    tracing::warn!(why, "refused a request with ambiguous hosts");
    let body = if request.uri().path() == "/mcp" {
        json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {"code": -32000, "message": format!("Bad Request: {why}")},
        })
    } else {
        json!({"error": "bad_request", "message": why})
    };
    Some((StatusCode::BAD_REQUEST, axum::Json(body)).into_response())
}

/// Whether the authority of an absolute-form target and a `Host` header name the same host and
/// port (ports omitted mean the scheme's default).
fn same_authority(
    target: &http::uri::Authority,
    scheme: Option<&str>,
    host: &http::HeaderValue,
) -> bool {
    let Some(host) = host
        .to_str()
        .ok()
        .and_then(|h| h.parse::<http::uri::Authority>().ok())
    else {
        return false;
    };
    let default_port = match scheme {
        Some(s) if s.eq_ignore_ascii_case("https") => 443,
        _ => 80,
    };
    target.host().eq_ignore_ascii_case(host.host())
        && target.port_u16().unwrap_or(default_port) == host.port_u16().unwrap_or(default_port)
}

/// The `Origin`s `/mcp` accepts: `[http] allowed_origins`, or when that is empty and the
/// server is bound to a loopback address, the loopback ones ([`LOOPBACK_ORIGINS`]).
fn allowed_origins(config: &Config) -> Vec<String> {
    if config.http.allowed_origins.is_empty() && config.http.bind.ip().is_loopback() {
        LOOPBACK_ORIGINS.iter().map(|o| (*o).to_owned()).collect()
    } else {
        config.http.allowed_origins.clone()
    }
}

/// Answers `504` when `/mcp` has not started its answer within `limit`. A legacy session's
/// answer is a stream that starts at once; a stateless (2026-07-28) call with a progress
/// token starts its stream with the tool's first message; otherwise the JSON answer starts
/// when the tool is done. Once started, an answer is not cut. The tool call is not undone:
/// a write tool's change may still happen, which the body says.
async fn limit_answer_start(limit: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => answer_timed_out(limit),
    }
}

/// The `504` of an answer that did not start within `limit`.
fn answer_timed_out(limit: Duration) -> Response {
    (
        StatusCode::GATEWAY_TIMEOUT,
        axum::Json(json!({
            "error": "answer_timeout",
            "message": format!(
                "no answer started within {} s (request_timeout_secs); the call was not \
                 necessarily undone: a write tool's change (deploy, start, stop, restart, \
                 scale) may have happened or may still happen, so check with \
                 webops_get_status before retrying",
                limit.as_secs_f64()
            ),
        })),
    )
        .into_response()
}

async fn health_handler(State(state): State<AppState>) -> Response {
    let (upstream, shared) = tokio::join!(state.health.check(), state.shared.health());
    let body = json!({
        "status": if upstream.reachable && shared.reachable { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.metrics.uptime_seconds(),
        "webops_api": {
            "reachable": upstream.reachable,
            "latency_ms": upstream.latency_ms,
            "flavor": upstream.flavor.map(ApiFlavor::as_str),
            "flavor_reason": upstream.flavor_reason,
        },
        "state": shared.to_json(),
    });
    axum::Json(body).into_response()
}

async fn metrics_handler(State(state): State<AppState>) -> Response {
    let mut out = String::with_capacity(8 * 1024);
    state.server.metrics().render(&mut out);
    state.metrics.render(
        &mut out,
        state.authenticator.throttle().throttled_addresses(),
    );
    state.shared.render_metrics(&mut out);
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
        .into_response()
}

async fn resource_metadata_handler(State(state): State<AppState>) -> Response {
    let Some(oauth) = &state.oauth else {
        return not_found().await;
    };
    let mut scopes: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
    scopes.extend(["deploy:*", "admin:*"]);
    axum::Json(json!({
        "resource": oauth.resource,
        "authorization_servers": oauth.authorization_servers,
        "bearer_methods_supported": ["header"],
        "scopes_supported": scopes,
        "resource_name": "webops-mcp",
    }))
    .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({
            "error": "not_found",
            "message": "no such endpoint; MCP is served at /mcp, health at /health, metrics at /metrics",
        })),
    )
        .into_response()
}

/// What `/health` reports about the WebOps API.
#[derive(Debug, Clone)]
struct Upstream {
    reachable: bool,
    latency_ms: Option<f64>,
    /// The API flavour in use; `None` while `auto` has not found it out.
    flavor: Option<ApiFlavor>,
    /// How the flavour was chosen.
    flavor_reason: Option<String>,
}

/// A cached upstream check: at most one check in flight, reused for [`HEALTH_CACHE`].
struct HealthCheck {
    api: Arc<dyn WebOpsApi>,
    cached: tokio::sync::Mutex<Option<(Instant, Upstream)>>,
}

impl HealthCheck {
    fn new(api: Arc<dyn WebOpsApi>) -> Self {
        HealthCheck {
            api,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    async fn check(&self) -> Upstream {
        // Holding the lock across the check makes concurrent callers wait for it and then
        // reuse its answer instead of starting their own.
        let mut cached = self.cached.lock().await;
        if let Some((at, upstream)) = &*cached
            && at.elapsed() < HEALTH_CACHE
        {
            return upstream.clone();
        }
        let deadline = tokio::time::Instant::now() + HEALTH_TIMEOUT;
        // The capabilities cost no request once the flavour is known (configured, or found
        // by `auto`); before that they run the one probe that `status` would run anyway. A
        // failed probe means `status` would fail the same way, so it is not asked again.
        let capabilities = match tokio::time::timeout_at(deadline, self.api.capabilities()).await {
            Ok(Ok(capabilities)) => Some(capabilities),
            _ => None,
        };
        let started = Instant::now();
        let reachable = capabilities.is_some()
            && matches!(
                tokio::time::timeout_at(deadline, self.api.status()).await,
                Ok(Ok(_))
            );
        let upstream = Upstream {
            reachable,
            latency_ms: reachable
                .then(|| (started.elapsed().as_secs_f64() * 1000.0 * 10.0).round() / 10.0),
            flavor: capabilities.as_ref().map(|c| c.flavor),
            flavor_reason: capabilities.map(|c| c.why),
        };
        *cached = Some((Instant::now(), upstream.clone()));
        upstream
    }
}

/// Counts MCP POST requests whose response has not been fully sent (a tool call's answer
/// may stream), so shutdown can wait for them.
#[derive(Default)]
struct Inflight {
    count: AtomicUsize,
    idle: Notify,
}

impl Inflight {
    fn enter(self: &Arc<Self>) -> InflightGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        InflightGuard(self.clone())
    }

    fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

struct InflightGuard(Arc<Inflight>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

async fn track_inflight(
    inflight: &Arc<Inflight>,
    request: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    if request.method() != Method::POST {
        return next(request).await;
    }
    let guard = inflight.enter();
    let response = next(request).await;
    response.map(|body| {
        Body::new(GuardedBody {
            inner: body,
            _guard: guard,
        })
    })
}

/// A response body that holds an [`InflightGuard`] until it is sent or dropped.
struct GuardedBody {
    inner: Body,
    _guard: InflightGuard,
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn inflight_waits_for_guards() {
        let inflight = Arc::new(Inflight::default());
        inflight.wait_idle().await;
        let guard = inflight.enter();
        assert_eq!(inflight.count(), 1);
        let waiter = {
            let inflight = inflight.clone();
            tokio::spawn(async move { inflight.wait_idle().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(guard);
        waiter.await.unwrap();
        assert_eq!(inflight.count(), 0);
    }
}
