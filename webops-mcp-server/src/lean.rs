//! The lean path of `/mcp`: a stateless (2026-07-28) `tools/call` answered by the handler
//! itself, without rmcp's per-request machinery.
//!
//! rmcp serves each stateless request by building a service around a one-shot transport: a
//! clone of its whole HTTP service and configuration, a peer, channels, a cancellation tree,
//! a spawned serve loop, the message serialized once more to check its headers and the
//! called tool's definition cloned to look up its schema. For the call every agent makes
//! most, that was about a fifth of the server's CPU.
//!
//! The lean path takes a request only when rmcp would accept it and route it, unchanged, to
//! [`McpHandler::call_tool`](rmcp::ServerHandler::call_tool) with a result it answers as one
//! JSON body: every check below is one of rmcp's, made the same way or more strictly.
//! Anything else (another method, a 2025-era or session request, a progress token, an
//! `Origin`, unusual `Accept` or protocol headers, anything rmcp would refuse) goes to rmcp
//! as before, so every refusal and every other answer is still rmcp's own. The answer is
//! rmcp's JSON-RPC message type, serialized as rmcp does.

use std::sync::Arc;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{ACCEPT, CONTENT_TYPE, HOST, ORIGIN};
use http::{HeaderMap, HeaderValue, StatusCode};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorCode,
    JsonRpcResponse, JsonRpcVersion2_0, ProtocolVersion, RequestId, RequestMetaObject,
    ServerJsonRpcMessage, ServerResult,
};
use serde::{Deserialize as _, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use webops_mcp_core::{McpHandler, Served};

use crate::metrics::HttpMetrics;

/// The protocol version the lean path serves ([`ProtocolVersion::V_2026_07_28`]).
const VERSION: &str = "2026-07-28";

/// The lean path of one HTTP application.
pub(crate) struct Lean {
    handler: McpHandler,
    /// rmcp's allowed `Host`s, read as rmcp reads them.
    hosts: Vec<(String, Option<u16>)>,
    /// Fires when the server shuts down (rmcp's cancellation token).
    shutdown: CancellationToken,
    metrics: Arc<HttpMetrics>,
}

/// A request the lean path answers.
pub(crate) struct Call {
    id: RequestId,
    params: CallToolRequestParams,
    meta: RequestMetaObject,
}

impl Lean {
    /// The lean path of `handler`, for a server whose rmcp service allows `hosts` and stops
    /// with `shutdown`.
    pub(crate) fn new(
        handler: McpHandler,
        hosts: &[String],
        shutdown: CancellationToken,
        metrics: Arc<HttpMetrics>,
    ) -> Lean {
        Lean {
            handler,
            hosts: hosts.iter().filter_map(|h| allowed_authority(h)).collect(),
            shutdown,
            metrics,
        }
    }

    /// The call in `message` (a JSON POST's body, its keys unrepeated) when the lean path can
    /// answer it exactly as rmcp would; otherwise `message` back, for rmcp.
    pub(crate) fn accepts(&self, headers: &HeaderMap, message: Value) -> Result<Call, Value> {
        if !self.headers_fit(headers) {
            return Err(message);
        }
        let Value::Object(object) = message else {
            return Err(message);
        };
        let Some((id, params)) = tools_call(&object) else {
            return Err(Value::Object(object));
        };
        let fits = params
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|name| name_headers_fit(headers, name))
            && !params
                .get("_meta")
                .and_then(Value::as_object)
                .is_some_and(|meta| meta.contains_key("progressToken"));
        let mut params = match fits.then(|| CallToolRequestParams::deserialize(params)) {
            Some(Ok(params)) if params.meta.as_ref().is_some_and(meta_fits) => params,
            _ => return Err(Value::Object(object)),
        };
        let meta = params.meta.take().unwrap_or_default();
        Ok(Call { id, params, meta })
    }

    /// Answers `call`, whose HTTP request is `parts`. The call runs in its own task, as under
    /// rmcp: when this future is dropped (the client went away, or the answer timeout is up)
    /// it is cancelled (a read stops, a change runs to its end and is audited) rather than
    /// dropped with it.
    pub(crate) async fn serve(&self, call: Call, parts: http::request::Parts) -> Response {
        self.metrics.record_lean_call();
        let cancel = self.shutdown.child_token();
        let guard = cancel.clone().drop_guard();
        let handler = self.handler.clone();
        let Call { id, params, meta } = call;
        let task = tokio::spawn(async move {
            let result = handler
                .call_tool_stateless(&id, params, &meta, parts, cancel)
                .await;
            match result {
                Ok(Served::Output { text, structured }) => output_response(id, text, &structured),
                Ok(Served::Response(response)) => json_response(&ServerJsonRpcMessage::response(
                    ServerResult::from(response),
                    id,
                )),
                Err(error) => json_response(&ServerJsonRpcMessage::error(error, Some(id))),
            }
        });
        let response = match task.await {
            Ok(response) => response,
            Err(e) => {
                tracing::error!(error = %e, "a tools/call task failed");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error: the call failed",
                )
                    .into_response();
            }
        };
        guard.disarm();
        response
    }

    /// Whether the headers pass rmcp's checks of a stateless request the way the lean path
    /// reads them: an allowed `Host`, no `Origin`, JSON and event streams accepted, no
    /// session, 2026-07-28, `Mcp-Method: tools/call` and no `Mcp-Param-*`.
    fn headers_fit(&self, headers: &HeaderMap) -> bool {
        !headers.contains_key(ORIGIN)
            && !headers.contains_key("mcp-session-id")
            && host_allowed(&self.hosts, headers)
            && accepts_json_and_streams(headers)
            && single(headers, "mcp-protocol-version") == Some(VERSION)
            && single(headers, "mcp-method") == Some("tools/call")
            && !headers
                .keys()
                .any(|name| name.as_str().starts_with("mcp-param-"))
    }
}

/// Whether `Host` is one of `hosts`, read as rmcp reads both: brackets trimmed, lowercase, a
/// port compared only where the allowed entry names one.
fn host_allowed(hosts: &[(String, Option<u16>)], headers: &HeaderMap) -> bool {
    let Some(host) =
        single(headers, HOST.as_str()).and_then(|h| http::uri::Authority::try_from(h).ok())
    else {
        return false;
    };
    let name = normalize_host(host.host());
    let port = host.port_u16();
    hosts.iter().any(|(allowed, allowed_port)| {
        *allowed == name && allowed_port.is_none_or(|p| Some(p) == port)
    })
}

/// An allowed `Host` entry as rmcp reads it.
fn allowed_authority(allowed: &str) -> Option<(String, Option<u16>)> {
    let allowed = allowed.trim();
    if allowed.is_empty() {
        return None;
    }
    Some(match http::uri::Authority::try_from(allowed) {
        Ok(authority) => (normalize_host(authority.host()), authority.port_u16()),
        Err(_) => (normalize_host(allowed), None),
    })
}

fn normalize_host(host: &str) -> String {
    host.trim_matches('[')
        .trim_matches(']')
        .to_ascii_lowercase()
}

/// The one value of header `name`, when it has exactly one that is visible ASCII.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok()
}

/// Whether `Accept` names both `application/json` and `text/event-stream`, read strictly: a
/// media range with parameters (such as a weight) or quotes leaves the request to rmcp.
fn accepts_json_and_streams(headers: &HeaderMap) -> bool {
    let (mut json, mut stream) = (false, false);
    for value in headers.get_all(ACCEPT) {
        let Ok(value) = value.to_str() else {
            return false;
        };
        for range in value.split(',') {
            if range.contains([';', '"']) {
                return false;
            }
            let range = range.trim();
            json |= range.eq_ignore_ascii_case("application/json");
            stream |= range.eq_ignore_ascii_case("text/event-stream");
        }
    }
    json && stream
}

/// The id and params (an object) of a JSON-RPC 2.0 `tools/call` request with nothing else
/// in it.
fn tools_call(object: &Map<String, Value>) -> Option<(RequestId, &Value)> {
    if object.len() != 4
        || object.get("jsonrpc").and_then(Value::as_str) != Some("2.0")
        || object.get("method").and_then(Value::as_str) != Some("tools/call")
    {
        return None;
    }
    let id = match object.get("id")? {
        Value::String(s) => RequestId::String(s.as_str().into()),
        Value::Number(n) => RequestId::Number(n.as_i64()?),
        _ => return None,
    };
    let params = object.get("params").filter(|p| p.is_object())?;
    Some((id, params))
}

/// Whether `Mcp-Name` is the called tool's name, sent plainly.
fn name_headers_fit(headers: &HeaderMap, name: &str) -> bool {
    single(headers, "mcp-name") == Some(name) && !name.starts_with("=?base64?")
}

/// Whether a request's `_meta` names 2026-07-28 and carries the client's capabilities (a
/// progress token is looked for first: progress is sent on rmcp's event stream).
fn meta_fits(meta: &RequestMetaObject) -> bool {
    meta.protocol_version()
        .as_ref()
        .map(ProtocolVersion::as_str)
        == Some(VERSION)
        && meta
            .missing_required_keys(&ProtocolVersion::V_2026_07_28)
            .is_empty()
}

/// A tool's answer: rmcp's result for its text block, with the structured content put in as
/// the tool's output was written once, not read into a `Value` and written again.
fn output_response(id: RequestId, text: String, structured: &RawValue) -> Response {
    #[derive(Serialize)]
    struct WithStructured<'a> {
        #[serde(flatten)]
        result: ServerResult,
        #[serde(rename = "structuredContent")]
        structured: &'a RawValue,
    }
    let result = CallToolResult::success(vec![ContentBlock::text(text)]);
    json_body(
        StatusCode::OK,
        &JsonRpcResponse {
            jsonrpc: JsonRpcVersion2_0,
            id,
            result: WithStructured {
                result: ServerResult::from(CallToolResponse::from(result)),
                structured,
            },
        },
    )
}

/// rmcp's answer to a stateless request: its JSON-RPC message as the body, with rmcp's
/// status for it (a stateless error can mean a status other than 200).
fn json_response(message: &ServerJsonRpcMessage) -> Response {
    let status = match message {
        ServerJsonRpcMessage::Error(error) => match error.error.code {
            ErrorCode::UNSUPPORTED_PROTOCOL_VERSION
            | ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY
            | ErrorCode::HEADER_MISMATCH => StatusCode::BAD_REQUEST,
            ErrorCode::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
            _ => StatusCode::OK,
        },
        _ => StatusCode::OK,
    };
    json_body(status, message)
}

/// `message` as a JSON body with `status`.
fn json_body(status: StatusCode, message: &impl Serialize) -> Response {
    match serde_json::to_vec(message) {
        Ok(body) => (
            status,
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            Body::from(body),
        )
            .into_response(),
        Err(e) => unserializable(&e),
    }
}

/// The answer when an answer could not be serialized.
fn unserializable(error: &serde_json::Error) -> Response {
    tracing::error!(%error, "could not serialize an answer");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("Internal Server Error: serialize json response: {error}"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_version_is_rmcps_2026_07_28() {
        assert_eq!(VERSION, ProtocolVersion::V_2026_07_28.as_str());
    }

    #[test]
    fn accept_is_read_strictly() {
        let fits = |value| accepts_json_and_streams(&headers(&[("accept", value)]));
        assert!(fits("application/json, text/event-stream"));
        assert!(fits("Text/Event-Stream,application/JSON"));
        assert!(!fits("application/json"));
        assert!(!fits("application/json;q=1, text/event-stream"));
        assert!(!fits("*/*"));
        let two = headers(&[
            ("accept", "application/json"),
            ("accept", "text/event-stream"),
        ]);
        assert!(accepts_json_and_streams(&two));
    }

    #[test]
    fn hosts_are_read_as_rmcp_reads_them() {
        let hosts: Vec<_> = ["localhost", "127.0.0.1", "::1", "mcp.example.com:8443"]
            .iter()
            .filter_map(|h| allowed_authority(h))
            .collect();
        let allowed = |host| host_allowed(&hosts, &headers(&[("host", host)]));
        assert!(allowed("localhost:8080"));
        assert!(allowed("LOCALHOST"));
        assert!(allowed("[::1]:8080"));
        assert!(allowed("mcp.example.com:8443"));
        assert!(!allowed("mcp.example.com"));
        assert!(!allowed("evil.example:8080"));
    }
}
