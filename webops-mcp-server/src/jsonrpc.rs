//! The JSON-RPC edge of both transports: every incoming message (an HTTP body, a stdio line)
//! is checked here before rmcp sees it, so what is not a valid message gets a JSON-RPC error
//! answer instead of rmcp's plain-text HTTP 415 or, over stdio, silence.
//!
//! - not JSON (bad syntax, invalid UTF-8, more than 128 levels of nesting, a number out of
//!   range): `-32700` parse error, `id: null`;
//! - JSON that is not one message (a batch, a scalar, a repeated key, a message rmcp cannot
//!   read): `-32600` invalid request, with the request's `id` when it can be read;
//! - a standard MCP request whose `params` do not fit its method (rmcp would read it as an
//!   unknown custom method and answer `-32601`): `-32602` invalid params, with its `id`.

use std::fmt;

use rmcp::model::{ClientJsonRpcMessage, ClientRequest};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value, json};

/// JSON-RPC: the text is not JSON.
pub(crate) const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: the JSON is not a valid request object.
pub(crate) const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: the method exists, its params are not valid.
pub(crate) const INVALID_PARAMS: i64 = -32602;

/// The UTF-8 byte order mark some writers put first; it is not part of the JSON.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Why a message does not reach the handler: the JSON-RPC error to answer with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refusal {
    /// `-32700`, `-32600` or `-32602`.
    pub(crate) code: i64,
    /// What was wrong, for the client.
    pub(crate) message: String,
    /// The request's id when it could be read, else `null`.
    pub(crate) id: Value,
}

impl Refusal {
    fn new(code: i64, message: impl Into<String>, id: Value) -> Refusal {
        Refusal {
            code,
            message: message.into(),
            id,
        }
    }

    /// The JSON-RPC error response.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "jsonrpc": "2.0",
            "id": self.id,
            "error": {"code": self.code, "message": self.message},
        })
    }
}

/// `bytes` without a leading UTF-8 byte order mark.
pub(crate) fn without_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes)
}

/// Reads one JSON-RPC message as rmcp will, or says why it cannot be answered normally.
pub(crate) fn check(bytes: &[u8]) -> Result<ClientJsonRpcMessage, Refusal> {
    check_value(parse(bytes)?)
}

/// The JSON of a message that repeats no key, or why it is not one (the first half of
/// [`check`]).
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, Refusal> {
    match serde_json::from_slice::<Unique>(without_bom(bytes)) {
        Ok(Unique(value)) => Ok(value),
        Err(e) if e.is_data() => {
            // Only `Unique` raises data errors: a repeated key. The id is the request's
            // unless `id` is the key repeated.
            let id = match serde_json::from_slice::<Value>(without_bom(bytes)) {
                Ok(Value::Object(object)) if !e.to_string().contains("duplicate key \"id\"") => {
                    readable_id(&object)
                }
                _ => Value::Null,
            };
            Err(Refusal::new(
                INVALID_REQUEST,
                format!("Invalid Request: {e}; a JSON-RPC message must not repeat a key"),
                id,
            ))
        }
        Err(e) => Err(Refusal::new(
            PARSE_ERROR,
            format!("Parse error: {e}"),
            Value::Null,
        )),
    }
}

/// The message [`parse`] read, as rmcp will read it, or why it cannot be answered normally
/// (the second half of [`check`]).
pub(crate) fn check_value(value: Value) -> Result<ClientJsonRpcMessage, Refusal> {
    let object = match &value {
        Value::Object(object) => object,
        Value::Array(_) => {
            return Err(Refusal::new(
                INVALID_REQUEST,
                "Invalid Request: JSON-RPC batches are not supported (MCP sends one message \
                 per request)",
                Value::Null,
            ));
        }
        _ => {
            return Err(Refusal::new(
                INVALID_REQUEST,
                "Invalid Request: a JSON-RPC message is a JSON object",
                Value::Null,
            ));
        }
    };
    let id = readable_id(object);
    let method = object
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let params = object.get("params").cloned();
    // A request whose envelope is sound (version, id), so only its params can be wrong.
    let is_request = object.get("jsonrpc").and_then(Value::as_str) == Some("2.0") && !id.is_null();
    let (message, custom) = match serde_json::from_value::<ClientJsonRpcMessage>(value) {
        Ok(message) => {
            let custom = matches!(
                &message,
                ClientJsonRpcMessage::Request(request)
                    if matches!(request.request, ClientRequest::CustomRequest(_))
            );
            (Some(message), custom)
        }
        Err(e) if !is_request || !method.as_deref().is_some_and(is_standard_request) => {
            return Err(Refusal::new(
                INVALID_REQUEST,
                format!("Invalid Request: {e}"),
                id,
            ));
        }
        Err(_) => (None, true),
    };
    if custom
        && let Some(method) = method.as_deref()
        && let Some(why) = standard_params_error(method, params)
    {
        return Err(Refusal::new(
            INVALID_PARAMS,
            format!("Invalid params for {method}: {why}"),
            id,
        ));
    }
    message.ok_or_else(|| {
        Refusal::new(
            INVALID_REQUEST,
            "Invalid Request: not a JSON-RPC message",
            id,
        )
    })
}

/// The `id` of a message when it is one JSON-RPC allows (a string or an integer), else `null`.
fn readable_id(object: &Map<String, Value>) -> Value {
    match object.get("id") {
        Some(id @ Value::String(_)) => id.clone(),
        Some(Value::Number(n)) if n.is_i64() => Value::Number(n.clone()),
        _ => Value::Null,
    }
}

/// For a standard MCP request method, why `params` do not fit it (rmcp read the request as a
/// custom one); `None` for other methods.
fn standard_params_error(method: &str, params: Option<Value>) -> Option<String> {
    use rmcp::model as m;
    let mut request = Map::new();
    request.insert("method".to_owned(), Value::String(method.to_owned()));
    if let Some(params) = params {
        request.insert("params".to_owned(), params);
    }
    let request = Value::Object(request);
    macro_rules! fit {
        ($($name:literal => $ty:ty),* $(,)?) => {
            match method {
                $($name => serde_json::from_value::<$ty>(request).err().map(|e| e.to_string()),)*
                _ => None,
            }
        };
    }
    let why = fit!(
        "initialize" => m::InitializeRequest,
        "ping" => m::PingRequest,
        "tools/call" => m::CallToolRequest,
        "tools/list" => m::ListToolsRequest,
        "prompts/get" => m::GetPromptRequest,
        "prompts/list" => m::ListPromptsRequest,
        "resources/list" => m::ListResourcesRequest,
        "resources/read" => m::ReadResourceRequest,
        "resources/templates/list" => m::ListResourceTemplatesRequest,
        "completion/complete" => m::CompleteRequest,
    );
    // The typed request read fine on its own: rmcp refused something else about it; say so
    // rather than pass it on to be called an unknown method.
    why.or_else(|| {
        is_standard_request(method)
            .then(|| "the request does not match its method's parameters".to_owned())
    })
}

/// The MCP request methods a client sends (rmcp reads each into its own type).
fn is_standard_request(method: &str) -> bool {
    matches!(
        method,
        "initialize"
            | "ping"
            | "server/discover"
            | "tools/call"
            | "tools/list"
            | "prompts/get"
            | "prompts/list"
            | "resources/list"
            | "resources/read"
            | "resources/templates/list"
            | "resources/subscribe"
            | "resources/unsubscribe"
            | "subscriptions/listen"
            | "completion/complete"
            | "logging/setLevel"
    )
}

/// A JSON value read with every object's keys checked to be unique (RFC 8259 leaves a repeated
/// key's meaning open; serde would keep the last one in a map and refuse it in a struct, which
/// makes rmcp read a `tools/call` with two `name`s as an unknown method).
struct Unique(Value);

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Unique, D::Error> {
        deserializer.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(Unique(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            let Unique(value) = access.next_value()?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(bytes: &[u8]) -> Refusal {
        check(bytes).expect_err("refused")
    }

    #[test]
    fn valid_messages_pass() {
        for text in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"x","arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"some/custom","params":{}}"#,
            "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}",
        ] {
            assert!(check(text.as_bytes()).is_ok(), "{text}");
        }
    }

    #[test]
    fn what_is_not_json_is_a_parse_error_with_a_null_id() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        for bytes in [
            &b"{\"jsonrpc\":\"2.0\",\"id\":1,"[..],
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\xfe\"}",
            b"",
            b"nope",
            b"{\"id\": 1e999}",
            deep.as_bytes(),
        ] {
            let refusal = refusal(bytes);
            assert_eq!(refusal.code, PARSE_ERROR, "{bytes:?}: {refusal:?}");
            assert_eq!(refusal.id, Value::Null);
        }
    }

    #[test]
    fn json_that_is_not_a_message_is_an_invalid_request() {
        for (text, id) in [
            ("[]", Value::Null),
            (r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, Value::Null),
            ("42", Value::Null),
            (r#"{"jsonrpc":"1.0","id":7,"method":"ping"}"#, json!(7)),
            (r#"{"id":"x","method":"ping"}"#, json!("x")),
            (
                r#"{"jsonrpc":"2.0","id":18446744073709551616,"method":"ping"}"#,
                Value::Null,
            ),
        ] {
            let refusal = refusal(text.as_bytes());
            assert_eq!(refusal.code, INVALID_REQUEST, "{text}: {refusal:?}");
            assert_eq!(refusal.id, id, "{text}");
        }
    }

    #[test]
    fn a_repeated_key_is_refused_not_read_as_an_unknown_method() {
        let text =
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"a","name":"b"}}"#;
        let refusal = refusal(text.as_bytes());
        assert_eq!(refusal.code, INVALID_REQUEST, "{refusal:?}");
        assert!(
            refusal.message.contains("duplicate key \"name\""),
            "{refusal:?}"
        );
    }

    #[test]
    fn bad_params_of_a_standard_method_are_invalid_params() {
        for text in [
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":5}}"#,
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"x","arguments":"y"}}"#,
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":5,"method":"initialize","params":[]}"#,
        ] {
            let refusal = refusal(text.as_bytes());
            assert_eq!(refusal.code, INVALID_PARAMS, "{text}: {refusal:?}");
            assert_eq!(refusal.id, json!(5));
            let method = if text.contains("initialize") {
                "initialize"
            } else {
                "tools/call"
            };
            assert!(refusal.message.contains(method), "{refusal:?}");
        }
    }

    #[test]
    fn the_answer_is_a_json_rpc_error() {
        let answer = refusal(b"{").to_json();
        assert_eq!(answer["jsonrpc"], "2.0");
        assert_eq!(answer["id"], Value::Null);
        assert_eq!(answer["error"]["code"], PARSE_ERROR);
    }
}
