//! Fixtures of the 2026-07-28 revision that the 0.2 conformance suite asks for by name:
//! multi round-trip requests (SEP-2322: an `InputRequiredResult` with `inputRequests` and
//! `requestState`, answered by a retry that carries `inputResponses`) and the stateless
//! diagnostics `test_missing_capability`, `test_streaming_elicitation` and `test_logging_tool`.
//!
//! `requestState` is untrusted input: the fixture keeps each state server-side under a random
//! 256-bit token and hands out only the token, so a forged or altered state is simply unknown
//! (-32602). Tokens expire after [`STATE_TTL`].

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ContentBlock,
    CreateMessageResult, ElicitResult, ElicitationAction, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, InputRequest, InputRequests, InputRequiredResult,
    InputResponses, ListRootsResult, PromptMessage, ProtocolVersion, Role, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// How long a `requestState` token stays valid.
const STATE_TTL: Duration = Duration::from_secs(600);

/// The most states kept at once (the oldest are dropped beyond).
const MAX_STATES: usize = 10_000;

/// The prompt that needs input before it can be rendered.
pub(crate) const INPUT_REQUIRED_PROMPT: &str = "test_input_required_result_prompt";

/// MRTR states by token; shared by every handler of the server.
#[derive(Default)]
pub(crate) struct RequestStates {
    states: Mutex<HashMap<String, (Instant, Value)>>,
}

impl RequestStates {
    /// Stores `state` for `tool` and returns its opaque token.
    fn seal(&self, tool: &str, state: Value) -> Result<String, ErrorData> {
        let (token, _) = webops_mcp_server::generate_api_key()
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        states.retain(|_, (at, _)| at.elapsed() < STATE_TTL);
        if states.len() >= MAX_STATES
            && let Some(oldest) = states
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
        {
            states.remove(&oldest);
        }
        states.insert(
            token.clone(),
            (Instant::now(), json!({"tool": tool, "state": state})),
        );
        Ok(token)
    }

    /// The state `token` stands for, if it was issued for `tool` and has not expired.
    fn open(&self, tool: &str, token: &str) -> Result<Value, ErrorData> {
        let states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        match states.get(token) {
            Some((at, entry)) if at.elapsed() < STATE_TTL && entry["tool"] == tool => {
                Ok(entry["state"].clone())
            }
            _ => Err(ErrorData::invalid_params(
                "requestState failed verification (unknown, altered, expired or issued for \
                 another request); start over without requestState",
                None,
            )),
        }
    }
}

/// The fixture tools of this module.
pub(crate) fn tools() -> Vec<Tool> {
    let plain = |name: &'static str, description: &'static str| {
        Tool::new(
            name,
            description,
            super::object(json!({"type": "object", "properties": {}})),
        )
    };
    vec![
        plain(
            "test_input_required_result_elicitation",
            "2026-07-28: asks the user's name through an InputRequiredResult (elicitation).",
        ),
        plain(
            "test_input_required_result_sampling",
            "2026-07-28: asks the client's LLM a question through an InputRequiredResult.",
        ),
        plain(
            "test_input_required_result_list_roots",
            "2026-07-28: asks for the client's roots through an InputRequiredResult.",
        ),
        plain(
            "test_input_required_result_request_state",
            "2026-07-28: an InputRequiredResult with requestState, checked on the retry.",
        ),
        plain(
            "test_input_required_result_multiple_inputs",
            "2026-07-28: elicitation, sampling and roots in one InputRequiredResult.",
        ),
        plain(
            "test_input_required_result_multi_round",
            "2026-07-28: two rounds of input (name, then favourite colour).",
        ),
        plain(
            "test_input_required_result_tampered_state",
            "2026-07-28: rejects a requestState that was altered.",
        ),
        plain(
            "test_input_required_result_capabilities",
            "2026-07-28: requests only the input kinds the client declared.",
        ),
        plain(
            "test_missing_capability",
            "2026-07-28: needs the sampling capability; without it fails with -32021.",
        ),
        plain(
            "test_streaming_elicitation",
            "2026-07-28: needs user input, asked through an InputRequiredResult, never a \
             server-to-client request.",
        ),
    ]
}

/// Whether `name` is one of this module's tools.
pub(crate) fn is_tool(name: &str) -> bool {
    tools().iter().any(|t| t.name == name)
}

/// Whether the request uses the 2026-07-28 (or later) revision.
fn is_modern(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

/// Runs one of this module's tools.
pub(crate) fn call_tool(
    states: &RequestStates,
    request: &CallToolRequestParams,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, ErrorData> {
    let name = request.name.as_ref();
    if !is_modern(context) {
        return Ok(super::tool_error(&format!(
            "{name} needs protocol revision 2026-07-28 (multi round-trip requests)"
        ))
        .into());
    }
    let round = Round {
        tool: name,
        states,
        responses: request.input_responses.as_ref(),
        state: request.request_state.as_deref(),
    };
    let text = |t: String| Ok(CallToolResult::success(vec![ContentBlock::text(t)]).into());
    match name {
        "test_input_required_result_elicitation" | "test_streaming_elicitation" => {
            if name == "test_streaming_elicitation" && !client_has(context, "elicitation") {
                return Err(missing_capability("elicitation"));
            }
            match round.response::<ElicitResult>("user_name")? {
                None => round.ask(&[("user_name", ask_name("What is your name?"))], None),
                Some(answer) => text(greeting(&answer, "name")?),
            }
        }
        "test_input_required_result_sampling" => {
            match round.response::<CreateMessageResult>("capital_question")? {
                None => round.ask(
                    &[(
                        "capital_question",
                        ask_llm("What is the capital of France?", 100),
                    )],
                    None,
                ),
                Some(answer) => text(format!("The model answered: {}", sampled_text(&answer))),
            }
        }
        "test_input_required_result_list_roots" => {
            match round.response::<ListRootsResult>("client_roots")? {
                None => round.ask(&[("client_roots", ask_roots())], None),
                Some(roots) => text(format!("Client roots: {}", root_list(&roots))),
            }
        }
        "test_input_required_result_request_state"
        | "test_input_required_result_tampered_state" => {
            match (
                round.verified_state()?,
                round.response::<ElicitResult>("confirm")?,
            ) {
                (Some(state), Some(answer)) if state["step"] == 1 => text(format!(
                    "state-ok: requestState verified; the user chose {}",
                    action(&answer)
                )),
                _ => round.ask(
                    &[("confirm", ask_confirmation("Continue with this operation?"))],
                    Some(json!({"step": 1})),
                ),
            }
        }
        "test_input_required_result_multiple_inputs" => {
            let state = round.verified_state()?;
            let name = round.response::<ElicitResult>("user_name")?;
            let greeting_text = round.response::<CreateMessageResult>("greeting")?;
            let roots = round.response::<ListRootsResult>("client_roots")?;
            match (state, name, greeting_text, roots) {
                (Some(_), Some(name), Some(llm), Some(roots)) => text(format!(
                    "{} Greeting: {}. Roots: {}.",
                    greeting(&name, "name")?,
                    sampled_text(&llm),
                    root_list(&roots)
                )),
                (_, name, llm, roots) => {
                    // Ask again for whatever is still missing.
                    let mut asks = Vec::new();
                    if name.is_none() {
                        asks.push(("user_name", ask_name("What is your name?")));
                    }
                    if llm.is_none() {
                        asks.push(("greeting", ask_llm("Generate a greeting", 50)));
                    }
                    if roots.is_none() {
                        asks.push(("client_roots", ask_roots()));
                    }
                    if asks.is_empty() {
                        asks.push(("user_name", ask_name("What is your name?")));
                    }
                    round.ask(&asks, Some(json!({"step": 1})))
                }
            }
        }
        "test_input_required_result_multi_round" => {
            let state = round.verified_state()?;
            match state.as_ref().and_then(|s| s["step"].as_u64()) {
                Some(1) => match round.response::<ElicitResult>("step1")? {
                    Some(answer) => {
                        let name = accepted_field(&answer, "name")?;
                        round.ask(
                            &[(
                                "step2",
                                ask_text("Step 2: What is your favorite color?", "color"),
                            )],
                            Some(json!({"step": 2, "name": name})),
                        )
                    }
                    None => round.ask(
                        &[("step1", ask_text("Step 1: What is your name?", "name"))],
                        Some(json!({"step": 1})),
                    ),
                },
                Some(2) => match round.response::<ElicitResult>("step2")? {
                    Some(answer) => {
                        let color = accepted_field(&answer, "color")?;
                        let name = state
                            .as_ref()
                            .and_then(|s| s["name"].as_str())
                            .unwrap_or("someone");
                        text(format!("Hello, {name}! Your favorite color is {color}."))
                    }
                    None => round.ask(
                        &[(
                            "step2",
                            ask_text("Step 2: What is your favorite color?", "color"),
                        )],
                        state,
                    ),
                },
                _ => round.ask(
                    &[("step1", ask_text("Step 1: What is your name?", "name"))],
                    Some(json!({"step": 1})),
                ),
            }
        }
        "test_input_required_result_capabilities" => {
            if round.responses.is_some_and(|r| !r.is_empty()) {
                return text("Thanks: the answers to the requests your capabilities allow.".into());
            }
            let mut asks = Vec::new();
            if client_has(context, "elicitation") {
                asks.push(("user_name", ask_name("What is your name?")));
            }
            if client_has(context, "sampling") {
                asks.push(("greeting", ask_llm("Generate a greeting", 50)));
            }
            if client_has(context, "roots") {
                asks.push(("client_roots", ask_roots()));
            }
            if asks.is_empty() {
                return Err(missing_capability("sampling"));
            }
            round.ask(&asks, None)
        }
        "test_missing_capability" => {
            if !client_has(context, "sampling") {
                return Err(missing_capability("sampling"));
            }
            match round.response::<CreateMessageResult>("summary")? {
                None => round.ask(
                    &[("summary", ask_llm("Summarise MCP in one line", 50))],
                    None,
                ),
                Some(answer) => text(format!("The model answered: {}", sampled_text(&answer))),
            }
        }
        other => Err(ErrorData::invalid_params(
            format!("unknown tool: {other}"),
            None,
        )),
    }
}

/// `prompts/get` of [`INPUT_REQUIRED_PROMPT`]: asks for a context first.
pub(crate) fn get_prompt(
    states: &RequestStates,
    request: &GetPromptRequestParams,
    context: &RequestContext<RoleServer>,
) -> Result<GetPromptResponse, ErrorData> {
    if !is_modern(context) {
        return Err(ErrorData::invalid_params(
            format!("{INPUT_REQUIRED_PROMPT} needs protocol revision 2026-07-28"),
            None,
        ));
    }
    let round = Round {
        tool: INPUT_REQUIRED_PROMPT,
        states,
        responses: request.input_responses.as_ref(),
        state: request.request_state.as_deref(),
    };
    match round.response::<ElicitResult>("user_context")? {
        None => Ok(InputRequiredResult::from_input_requests(requests(&[(
            "user_context",
            ask_text("What context should the prompt use?", "context"),
        )])?)
        .into()),
        Some(answer) => {
            let context = accepted_field(&answer, "context")?;
            Ok(GetPromptResult::new(vec![PromptMessage::new_text(
                Role::User,
                format!("Using the context \"{context}\", summarise the situation."),
            )])
            .into())
        }
    }
}

/// One round of a multi round-trip request.
struct Round<'a> {
    tool: &'a str,
    states: &'a RequestStates,
    responses: Option<&'a InputResponses>,
    state: Option<&'a str>,
}

impl Round<'_> {
    /// The client's answer to the input request `key`, if it sent one. An answer of the wrong
    /// shape is invalid params; answers to keys never asked for are ignored.
    fn response<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ErrorData> {
        let Some(value) = self.responses.and_then(|r| r.get(key)) else {
            return Ok(None);
        };
        serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|e| {
                ErrorData::invalid_params(format!("inputResponses.{key} is malformed: {e}"), None)
            })
    }

    /// The echoed state, verified; `None` when the client sent none.
    fn verified_state(&self) -> Result<Option<Value>, ErrorData> {
        self.state
            .map(|token| self.states.open(self.tool, token))
            .transpose()
    }

    /// An `InputRequiredResult` asking `asks`, with `state` sealed into `requestState`.
    fn ask(
        &self,
        asks: &[(&str, Value)],
        state: Option<Value>,
    ) -> Result<CallToolResponse, ErrorData> {
        let state = state.map(|s| self.states.seal(self.tool, s)).transpose()?;
        Ok(InputRequiredResult::new(Some(requests(asks)?), state).into())
    }
}

fn requests(asks: &[(&str, Value)]) -> Result<InputRequests, ErrorData> {
    asks.iter()
        .map(|(key, request)| {
            serde_json::from_value::<InputRequest>(request.clone())
                .map(|r| ((*key).to_owned(), r))
                .map_err(|e| ErrorData::internal_error(format!("fixture request {key}: {e}"), None))
        })
        .collect()
}

fn ask_text(message: &str, field: &str) -> Value {
    json!({
        "method": "elicitation/create",
        "params": {
            "mode": "form",
            "message": message,
            "requestedSchema": {
                "type": "object",
                "properties": {field: {"type": "string"}},
                "required": [field],
            },
        },
    })
}

fn ask_name(message: &str) -> Value {
    ask_text(message, "name")
}

fn ask_confirmation(message: &str) -> Value {
    json!({
        "method": "elicitation/create",
        "params": {
            "mode": "form",
            "message": message,
            "requestedSchema": {
                "type": "object",
                "properties": {"ok": {"type": "boolean"}},
            },
        },
    })
}

fn ask_llm(question: &str, max_tokens: u32) -> Value {
    json!({
        "method": "sampling/createMessage",
        "params": {
            "messages": [{"role": "user", "content": {"type": "text", "text": question}}],
            "maxTokens": max_tokens,
        },
    })
}

fn ask_roots() -> Value {
    json!({"method": "roots/list", "params": {}})
}

fn action(answer: &ElicitResult) -> &'static str {
    match answer.action {
        ElicitationAction::Accept => "accept",
        ElicitationAction::Decline => "decline",
        ElicitationAction::Cancel => "cancel",
        _ => "an unknown action",
    }
}

/// The string `field` of an accepted elicitation, or why there is none.
fn accepted_field(answer: &ElicitResult, field: &str) -> Result<String, ErrorData> {
    if answer.action != ElicitationAction::Accept {
        return Ok(format!("(the user chose {})", action(answer)));
    }
    answer
        .content
        .as_ref()
        .and_then(|c| c.get(field))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            ErrorData::invalid_params(
                format!("the accepted elicitation has no string '{field}'"),
                None,
            )
        })
}

fn greeting(answer: &ElicitResult, field: &str) -> Result<String, ErrorData> {
    Ok(format!("Hello, {}!", accepted_field(answer, field)?))
}

fn sampled_text(answer: &CreateMessageResult) -> String {
    answer
        .message
        .content
        .first()
        .and_then(|c| c.as_text())
        .map_or_else(|| "(no text)".to_owned(), |t| t.text.clone())
}

fn root_list(roots: &ListRootsResult) -> String {
    if roots.roots.is_empty() {
        return "none".to_owned();
    }
    roots
        .roots
        .iter()
        .map(|r| r.uri.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether the request's client capabilities include `capability` (`sampling`,
/// `elicitation`, `roots`).
fn client_has(context: &RequestContext<RoleServer>, capability: &str) -> bool {
    context
        .client_capabilities()
        .and_then(|c| serde_json::to_value(c).ok())
        .is_some_and(|c| c.get(capability).is_some_and(|v| !v.is_null()))
}

/// MissingRequiredClientCapabilityError (-32021) naming `capability`.
fn missing_capability(capability: &str) -> ErrorData {
    match serde_json::from_value::<ClientCapabilities>(json!({capability: {}})) {
        Ok(required) => ErrorData::missing_required_client_capability(required),
        Err(e) => ErrorData::internal_error(e.to_string(), None),
    }
}
