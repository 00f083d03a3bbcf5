//! The cheap load generator: one pre-serialized HTTP/1.1 request sent again and again, each
//! worker on its own keep-alive hyper connection, so the generator's own cost per call stays
//! small next to the processes it measures (an rmcp client spends about twice what the mock
//! spends on a call, which caps any ratio measured with it).
//!
//! Two requests are built: the direct path's `GET` of the WebOps API with the mock's token,
//! and a stateless 2026-07-28 `tools/call` (per-request `_meta`, `MCP-Protocol-Version`,
//! `Mcp-Method` and `Mcp-Name`) with the server's key. Both answers are read to the end and
//! parsed, and a call counts only when the answer is what the path promises.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use super::driver::{RunStats, Stop, drive};
use super::workload::{CALL_TIMEOUT, Outcome};

/// How an answer is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A WebOps API envelope with `"success": true`.
    WebOpsSuccess,
    /// A JSON-RPC answer (plain JSON or the `data:` of an SSE event) whose result is not an
    /// error and carries `structuredContent`.
    ToolResult,
}

/// One request, serialized once: what every call of a [`RawClients`] sends.
#[derive(Debug)]
pub(crate) struct RawRequest {
    /// `127.0.0.1:PORT`, where the connections go.
    authority: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    expect: Expect,
}

impl RawRequest {
    /// `GET {base_url}{path}` with `Authorization: Bearer {token}`: the direct path.
    pub(crate) fn webops_get(base_url: &str, path: &str, token: &str) -> Result<RawRequest> {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, bearer(token)?);
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        RawRequest::new(
            base_url,
            path,
            Method::GET,
            headers,
            Bytes::new(),
            Expect::WebOpsSuccess,
        )
    }

    /// A stateless 2026-07-28 `tools/call` of `tool` with `arguments`, `POST`ed to
    /// `{base_url}/mcp` with `Authorization: Bearer {key}`.
    pub(crate) fn tools_call(
        base_url: &str,
        key: &str,
        tool: &str,
        arguments: &Value,
    ) -> Result<RawRequest> {
        let body = json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {
                "name": tool,
                "arguments": arguments,
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {},
                    "io.modelcontextprotocol/clientInfo": {"name": "xtask-bench", "version": "1"},
                },
            },
        });
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, bearer(key)?);
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            "mcp-protocol-version",
            HeaderValue::from_static("2026-07-28"),
        );
        headers.insert("mcp-method", HeaderValue::from_static("tools/call"));
        headers.insert(
            "mcp-name",
            HeaderValue::from_str(tool).context("a tool name that is no header value")?,
        );
        RawRequest::new(
            base_url,
            "/mcp",
            Method::POST,
            headers,
            Bytes::from(serde_json::to_vec(&body)?),
            Expect::ToolResult,
        )
    }

    fn new(
        base_url: &str,
        path: &str,
        method: Method,
        mut headers: HeaderMap,
        body: Bytes,
        expect: Expect,
    ) -> Result<RawRequest> {
        let authority = base_url
            .strip_prefix("http://")
            .with_context(|| format!("{base_url} is not a plain http:// URL"))?
            .trim_end_matches('/')
            .to_owned();
        headers.insert(header::HOST, HeaderValue::from_str(&authority)?);
        if !body.is_empty() {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        Ok(RawRequest {
            uri: path.parse().with_context(|| format!("the path {path}"))?,
            authority,
            method,
            headers,
            body,
            expect,
        })
    }

    /// A fresh `http::Request` of the stored parts (the body is shared, not copied).
    fn build(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }

    /// Whether an answer is a success of this path.
    fn judge(&self, status: StatusCode, body: &[u8]) -> Outcome {
        if !status.is_success() {
            return Outcome::Error(format!("raw: HTTP {status}"));
        }
        let ok = match self.expect {
            Expect::WebOpsSuccess => {
                serde_json::from_slice::<Envelope>(body).is_ok_and(|envelope| envelope.success)
            }
            Expect::ToolResult => jsonrpc_answer(body)
                .and_then(|answer| answer.result)
                .is_some_and(|result| !result.is_error && result.structured_content.is_some()),
        };
        if ok {
            Outcome::Ok
        } else {
            Outcome::Error(format!(
                "raw: unexpected answer: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ))
        }
    }
}

/// `Bearer {token}` as a header value.
fn bearer(token: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(&format!("Bearer {token}")).context("a token that is no header value")
}

/// What the direct path's answer is judged by. Answers are read into these shapes rather than
/// into a `Value`: serde still checks that the whole body is JSON, without building a tree the
/// generator would spend its share of the shared CPU on (about a third of its cost per call).
#[derive(Deserialize)]
struct Envelope {
    success: bool,
}

/// What a JSON-RPC answer is judged by.
#[derive(Deserialize)]
struct Answer {
    result: Option<ToolResult>,
    error: Option<IgnoredAny>,
}

/// What a `tools/call` result is judged by.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolResult {
    #[serde(default)]
    is_error: bool,
    structured_content: Option<IgnoredAny>,
}

/// The JSON-RPC answer of a body: the body itself when it is JSON, otherwise the last `data:`
/// of an SSE stream that holds a `result` or an `error`.
fn jsonrpc_answer(body: &[u8]) -> Option<Answer> {
    if let Ok(answer) = serde_json::from_slice::<Answer>(body) {
        return Some(answer);
    }
    std::str::from_utf8(body)
        .ok()?
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Answer>(data.trim()).ok())
        .rfind(|answer| answer.result.is_some() || answer.error.is_some())
}

/// A worker's keep-alive connection, once opened.
type Connection = Mutex<Option<SendRequest<Full<Bytes>>>>;

/// Workers sending one [`RawRequest`], each on its own keep-alive connection (opened at its
/// first call, opened again after a failure).
pub(crate) struct RawClients {
    request: Arc<RawRequest>,
    connections: Arc<[Connection]>,
}

impl RawClients {
    /// `workers` workers of `request`, not yet connected.
    pub(crate) fn new(request: RawRequest, workers: usize) -> RawClients {
        RawClients {
            request: Arc::new(request),
            connections: (0..workers).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Runs every worker in a closed loop until `stop`.
    pub(crate) async fn drive(&self, stop: Stop) -> Result<RunStats> {
        let (request, connections) = (Arc::clone(&self.request), Arc::clone(&self.connections));
        drive(self.connections.len(), stop, move |worker, _| {
            let (request, connections) = (Arc::clone(&request), Arc::clone(&connections));
            async move {
                let mut connection = connections[worker].lock().await;
                match tokio::time::timeout(CALL_TIMEOUT, call(&request, &mut connection)).await {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(e)) => {
                        *connection = None;
                        Outcome::Error(format!("raw: {e}"))
                    }
                    Err(_) => {
                        *connection = None;
                        Outcome::Error("raw: timeout".to_owned())
                    }
                }
            }
        })
        .await
    }
}

/// One call on `connection` (connecting first when there is none): sends the request, reads
/// the whole answer and judges it.
async fn call(
    request: &RawRequest,
    connection: &mut Option<SendRequest<Full<Bytes>>>,
) -> Result<Outcome> {
    let sender = match connection {
        Some(sender) if !sender.is_closed() => sender,
        _ => connection.insert(connect(&request.authority).await?),
    };
    sender.ready().await?;
    let response = sender.send_request(request.build()).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(request.judge(status, &body))
}

/// A new HTTP/1.1 connection to `authority` (`TCP_NODELAY`, like any latency-minded client),
/// its driver spawned.
async fn connect(authority: &str) -> Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools_call() -> RawRequest {
        RawRequest::tools_call(
            "http://127.0.0.1:9",
            "k",
            "webops_list_deployments",
            &json!({}),
        )
        .expect("a request")
    }

    #[test]
    fn a_stateless_call_carries_the_protocol_in_headers_and_meta() {
        let request = tools_call();
        assert_eq!(request.headers["host"], "127.0.0.1:9");
        assert_eq!(request.headers["mcp-protocol-version"], "2026-07-28");
        assert_eq!(request.headers["mcp-name"], "webops_list_deployments");
        assert_eq!(request.headers["authorization"], "Bearer k");
        let body: Value = serde_json::from_slice(&request.body).expect("JSON");
        assert_eq!(body["method"], "tools/call");
        assert_eq!(
            body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"],
            "2026-07-28"
        );
        assert_eq!(
            request.headers["content-length"],
            request.body.len().to_string().as_str()
        );
    }

    #[test]
    fn answers_are_judged_by_what_the_path_promises() {
        let request = tools_call();
        let ok = br#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"structuredContent":{}}}"#;
        assert!(matches!(request.judge(StatusCode::OK, ok), Outcome::Ok));
        let sse = b"data: \n\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"structuredContent\":{}}}\n\n";
        assert!(matches!(request.judge(StatusCode::OK, sse), Outcome::Ok));
        let failed = br#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true}}"#;
        assert!(matches!(
            request.judge(StatusCode::OK, failed),
            Outcome::Error(_)
        ));
        assert!(matches!(
            request.judge(StatusCode::BAD_REQUEST, ok),
            Outcome::Error(_)
        ));
        let direct = RawRequest::webops_get("http://127.0.0.1:9", "/api/v1/x", "t").expect("get");
        assert!(matches!(
            direct.judge(StatusCode::OK, br#"{"success":true,"data":[]}"#),
            Outcome::Ok
        ));
        assert!(matches!(
            direct.judge(StatusCode::OK, br#"{"success":false}"#),
            Outcome::Error(_)
        ));
    }
}
