//! The MCP conformance fixture server: the real `webops-mcp` HTTP stack (authentication,
//! Host/Origin checks, body limit, `/health`, `/metrics`) serving the eight production tools
//! **plus** the fixtures the official conformance suite (`@modelcontextprotocol/conformance`)
//! asks for by name: `test_*` tools, `test://` resources, prompts, completion and logging.
//!
//! An example, so none of this is ever part of the `webops-mcp` binary or its tool list.
//! `cargo xtask conformance` builds and runs it:
//!
//! ```text
//! cargo run -p webops-mcp-server --example conformance_server -- --config FILE [--bind ADDR]
//! ```
//!
//! The configuration must give the suite, which sends no credentials, an anonymous identity
//! (`[auth] anonymous_permissions`, accepted only on a loopback bind). `--bind` defaults to
//! `127.0.0.1:0`. The WebOps API is the in-process demo mock (as with `--demo`). Once it
//! accepts connections the server prints `listening on http://IP:PORT/mcp` on stdout; it stops
//! on SIGINT/SIGTERM or when its stdin closes, so it never outlives the process that started it.
// Logging, resources/subscribe, sampling and elicitation are deprecated by SEP-2577 in rmcp but
// are part of the 2025-06-18 / 2025-11-25 revisions the suite tests.
#![allow(deprecated)]

mod modern;

use std::collections::BTreeSet;
use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use rmcp::model::{
    AudioContent, CallToolRequestParams, CallToolResponse, CallToolResult, ClientResult,
    CompleteRequestParams, CompleteResult, CompletionInfo, ContentBlock,
    CreateMessageRequestParams, ElicitRequest, ElicitRequestParams, ElicitationAction,
    ElicitationSchema, GetPromptRequestParams, GetPromptResponse, GetPromptResult, ImageContent,
    JsonObject, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    ListToolsResult, LoggingLevel, LoggingMessageNotificationParam, PaginatedRequestParams,
    ProgressNotificationParam, Prompt, PromptArgument, PromptMessage, ProtocolVersion,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Reference, Resource,
    ResourceContents, ResourceTemplate, Role, SamplingMessage, ServerCapabilities, ServerConfig,
    SetLevelRequestParams, SubscribeRequestParams, SubscriptionFilter, Tool,
    UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;
use tokio_util::sync::CancellationToken;
use webops_mcp_core::McpHandler;
use webops_mcp_server::{Config, Demo, HttpApp, Transport, build_server};

/// A 1x1 red PNG.
const PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";
/// One millisecond of 8 kHz mono 16-bit silence.
const WAV_BASE64: &str =
    "UklGRjQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YRAAAAAAAAAAAAAAAAAAAAAAAAAA";

const STATIC_TEXT_URI: &str = "test://static-text";
const STATIC_BINARY_URI: &str = "test://static-binary";
const WATCHED_URI: &str = "test://watched-resource";
const TEMPLATE_URI: &str = "test://template/{id}/data";
const TEMPLATE_PREFIX: &str = "test://template/";
const TEMPLATE_SUFFIX: &str = "/data";

/// What the suite waits for between the notifications of the logging and progress tools.
const STEP: Duration = Duration::from_millis(50);

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conformance_server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let (config_path, bind) = parse_args(std::env::args().skip(1))?;
    let mut config = Config::loader()
        .file(&config_path)
        .bind(bind)
        .demo(true)
        .load()?;
    if config.auth.anonymous_permissions.is_none() {
        bail!(
            "the configuration sets no [auth] anonymous_permissions; the suite sends no credentials"
        );
    }
    let _demo = Demo::start(&mut config, true).await?;
    let listener = tokio::net::TcpListener::bind(config.http.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.http.bind))?;
    let local = listener.local_addr()?;
    // Origin validation stays on with the production default: a loopback-bound server accepts
    // loopback origins only, which the suite's DNS-rebinding scenario sends and expects to be
    // accepted.
    let server = build_server(&config, Transport::Http)?;
    let handler = ConformanceHandler::new(server.mcp_handler());
    let app = HttpApp::with_handler(&config, server, handler);

    let shutdown = CancellationToken::new();
    spawn_shutdown_watch(shutdown.clone());
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on http://{local}/mcp")?;
    stdout.flush()?;
    app.serve(listener, shutdown).await?;
    Ok(())
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<(String, String)> {
    let usage = "usage: conformance_server --config FILE [--bind ADDR]";
    let (mut config, mut bind) = (None, "127.0.0.1:0".to_owned());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config = args.next(),
            "--bind" => bind = args.next().context(usage)?,
            _ => bail!("unexpected argument {arg:?}\n{usage}"),
        }
    }
    Ok((config.context(usage)?, bind))
}

/// Cancels `shutdown` on SIGINT, SIGTERM, or when stdin reaches its end (the parent died or
/// closed the pipe).
fn spawn_shutdown_watch(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let stdin_closed = async {
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 256];
            while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
        };
        #[cfg(unix)]
        let terminate = async {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut terminate) => {
                    terminate.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminate => {}
            () = stdin_closed => {}
        }
        shutdown.cancel();
    });
}

/// The production [`McpHandler`] plus the conformance fixtures. Production tools (listing and
/// calls, with the caller's identity and the whole pipeline) go to the production handler;
/// everything else is answered here.
///
/// The HTTP transport makes one handler per MCP session by cloning, and `Clone` gives the
/// clone fresh session state: the log level and the resource subscriptions are per session.
struct ConformanceHandler {
    production: McpHandler,
    session: Mutex<Session>,
    /// Multi round-trip states, shared by every handler (the 2026 revision is stateless).
    states: Arc<modern::RequestStates>,
}

struct Session {
    log_level: LoggingLevel,
    subscriptions: BTreeSet<String>,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            log_level: LoggingLevel::Info,
            subscriptions: BTreeSet::new(),
        }
    }
}

impl Clone for ConformanceHandler {
    fn clone(&self) -> Self {
        ConformanceHandler {
            production: self.production.clone(),
            session: Mutex::new(Session::default()),
            states: self.states.clone(),
        }
    }
}

impl ConformanceHandler {
    fn new(production: McpHandler) -> Self {
        ConformanceHandler {
            production,
            session: Mutex::new(Session::default()),
            states: Arc::default(),
        }
    }

    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends a log notification when `level` passes the threshold: a 2026-07-28 request's own
    /// `_meta` log level (no level, no logs), else the session's `logging/setLevel`.
    async fn log(&self, context: &RequestContext<RoleServer>, level: LoggingLevel, text: &str) {
        let per_request = context
            .meta
            .protocol_version()
            .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
        let threshold = if per_request {
            context.meta.log_level()
        } else {
            Some(self.session().log_level)
        };
        if threshold.is_none_or(|t| severity(level) < severity(t)) {
            return;
        }
        let params = LoggingMessageNotificationParam::new(level, json!(text))
            .with_logger("conformance-fixture");
        if let Err(error) = context.peer.notify_logging_message(params).await {
            tracing::debug!(%error, "could not send a log notification");
        }
    }

    async fn call_fixture(
        &self,
        name: &str,
        arguments: JsonObject,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let text = |t: &str| CallToolResult::success(vec![ContentBlock::text(t)]);
        Ok(match name {
            "test_simple_text" => text("This is a simple text response for testing."),
            "test_image_content" => {
                CallToolResult::success(vec![ContentBlock::image(PNG_BASE64, "image/png")])
            }
            "test_audio_content" => CallToolResult::success(vec![ContentBlock::Audio(
                AudioContent::new(WAV_BASE64, "audio/wav"),
            )]),
            "test_embedded_resource" => CallToolResult::success(vec![ContentBlock::resource(
                ResourceContents::text(
                    "This is an embedded resource content.",
                    "test://embedded-resource",
                ),
            )]),
            "test_multiple_content_types" => CallToolResult::success(vec![
                ContentBlock::text("Multiple content types test:"),
                ContentBlock::image(PNG_BASE64, "image/png"),
                ContentBlock::resource(
                    ResourceContents::text(
                        json!({"test": "data", "value": 123}).to_string(),
                        "test://mixed-content-resource",
                    )
                    .with_mime_type("application/json"),
                ),
            ]),
            "test_tool_with_logging" | "test_logging_tool" => {
                self.log(&context, LoggingLevel::Info, "Tool execution started")
                    .await;
                tokio::time::sleep(STEP).await;
                self.log(&context, LoggingLevel::Info, "Tool processing data")
                    .await;
                tokio::time::sleep(STEP).await;
                self.log(&context, LoggingLevel::Info, "Tool execution completed")
                    .await;
                text("Logging test completed: 3 log messages sent at info level.")
            }
            "test_error_handling" => CallToolResult::error(vec![ContentBlock::text(
                "This tool intentionally returns an error for testing",
            )]),
            "test_tool_with_progress" => {
                let token = context.meta.get_progress_token();
                for (i, progress) in [0.0, 50.0, 100.0].into_iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(STEP).await;
                    }
                    if let Some(token) = &token {
                        let params = ProgressNotificationParam::new(token.clone(), progress)
                            .with_total(100.0)
                            .with_message(format!("{progress}/100"));
                        if let Err(error) = context.peer.notify_progress(params).await {
                            tracing::debug!(%error, "could not send a progress notification");
                        }
                    }
                }
                text(if token.is_some() {
                    "Progress test completed: reported 0, 50 and 100 of 100."
                } else {
                    "Progress test completed (no progress token, nothing reported)."
                })
            }
            "test_sampling" => {
                let prompt = string_argument(&arguments, "prompt")?;
                if !client_can(&context, |c| c.sampling.is_some()) {
                    return Ok(tool_error(
                        "the client does not support sampling (no sampling capability)",
                    ));
                }
                let request =
                    CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], 100);
                match context.peer.create_message(request).await {
                    Ok(result) => {
                        let reply = result
                            .message
                            .content
                            .first()
                            .and_then(|c| c.as_text())
                            .map(|t| t.text.clone())
                            .unwrap_or_else(|| "(no text in the response)".to_owned());
                        text(&format!("LLM response: {reply}"))
                    }
                    Err(e) => tool_error(&format!("sampling failed: {e}")),
                }
            }
            "test_elicitation" => {
                let message = string_argument(&arguments, "message")?;
                self.elicit(
                    &context,
                    message,
                    json!({
                        "type": "object",
                        "properties": {
                            "username": {"type": "string", "description": "User's response"},
                            "email": {"type": "string", "description": "User's email address"},
                        },
                        "required": ["username", "email"],
                    }),
                    "User response",
                )
                .await?
            }
            "test_elicitation_sep1034_defaults" => {
                self.elicit(
                    &context,
                    "Please review these values (each has a default)".to_owned(),
                    json!({
                        "type": "object",
                        "properties": {
                            "name": {"type": "string", "description": "Name", "default": "John Doe"},
                            "age": {"type": "integer", "description": "Age", "default": 30},
                            "score": {"type": "number", "description": "Score", "default": 95.5},
                            "status": {
                                "type": "string",
                                "description": "Status",
                                "enum": ["active", "inactive", "pending"],
                                "default": "active",
                            },
                            "verified": {"type": "boolean", "description": "Verified", "default": true},
                        },
                    }),
                    "Elicitation completed",
                )
                .await?
            }
            "test_elicitation_sep1330_enums" => {
                self.elicit(
                    &context,
                    "Please choose options".to_owned(),
                    json!({
                        "type": "object",
                        "properties": {
                            "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
                            "titledSingle": {
                                "type": "string",
                                "oneOf": [
                                    {"const": "value1", "title": "First Option"},
                                    {"const": "value2", "title": "Second Option"},
                                    {"const": "value3", "title": "Third Option"},
                                ],
                            },
                            "legacyEnum": {
                                "type": "string",
                                "enum": ["opt1", "opt2", "opt3"],
                                "enumNames": ["Option One", "Option Two", "Option Three"],
                            },
                            "untitledMulti": {
                                "type": "array",
                                "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
                            },
                            "titledMulti": {
                                "type": "array",
                                "items": {
                                    "anyOf": [
                                        {"const": "value1", "title": "First Choice"},
                                        {"const": "value2", "title": "Second Choice"},
                                        {"const": "value3", "title": "Third Choice"},
                                    ],
                                },
                            },
                        },
                    }),
                    "Elicitation completed",
                )
                .await?
            }
            "json_schema_2020_12_tool" => {
                let name = arguments
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("world");
                let city = arguments
                    .get("address")
                    .and_then(|a| a.get("city"))
                    .and_then(Value::as_str);
                match city {
                    Some(city) => text(&format!("Hello, {name} from {city}!")),
                    None => text(&format!("Hello, {name}!")),
                }
            }
            "test_custom_headers" => {
                let region = string_argument(&arguments, "region")?;
                text(&format!("Region: {region}"))
            }
            "test_reconnection" => {
                tokio::time::sleep(STEP * 2).await;
                text("Reconnection test completed.")
            }
            _ => {
                return Err(ErrorData::invalid_params(
                    format!("unknown tool: {name}"),
                    None,
                ));
            }
        })
    }

    /// Asks the client for input with a form of `schema` and reports its answer.
    async fn elicit(
        &self,
        context: &RequestContext<RoleServer>,
        message: String,
        schema: Value,
        label: &str,
    ) -> Result<CallToolResult, ErrorData> {
        if !client_can(context, |c| c.elicitation.is_some()) {
            return Ok(tool_error(
                "the client does not support elicitation (no elicitation capability)",
            ));
        }
        let requested_schema: ElicitationSchema = serde_json::from_value(schema)
            .map_err(|e| ErrorData::internal_error(format!("fixture schema: {e}"), None))?;
        let request = ElicitRequest::new(ElicitRequestParams::FormElicitationParams {
            meta: None,
            message,
            requested_schema,
        });
        Ok(match context.peer.send_request(request.into()).await {
            Ok(ClientResult::ElicitResult(result)) => {
                let action = match result.action {
                    ElicitationAction::Accept => "accept",
                    ElicitationAction::Decline => "decline",
                    ElicitationAction::Cancel => "cancel",
                    _ => "unknown",
                };
                let content = result.content.unwrap_or(Value::Null);
                CallToolResult::success(vec![ContentBlock::text(format!(
                    "{label}: action={action}, content={content}"
                ))])
            }
            Ok(_) => tool_error("the client answered elicitation/create with another result"),
            Err(e) => tool_error(&format!("elicitation failed: {e}")),
        })
    }
}

fn tool_error(message: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

fn string_argument(arguments: &JsonObject, name: &str) -> Result<String, ErrorData> {
    arguments
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ErrorData::invalid_params(format!("missing string argument '{name}'"), None))
}

fn client_can(
    context: &RequestContext<RoleServer>,
    check: impl Fn(&rmcp::model::ClientCapabilities) -> bool,
) -> bool {
    context.client_capabilities().is_some_and(|c| check(&c))
}

/// The rank of a log level, `debug` lowest.
fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

fn object(schema: Value) -> JsonObject {
    match schema {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

fn no_arguments() -> JsonObject {
    object(json!({"type": "object", "properties": {}}))
}

fn string_arguments(names: &[(&str, &str)]) -> JsonObject {
    let properties: serde_json::Map<String, Value> = names
        .iter()
        .map(|(name, description)| {
            (
                (*name).to_owned(),
                json!({"type": "string", "description": description}),
            )
        })
        .collect();
    let required: Vec<&str> = names.iter().map(|(name, _)| *name).collect();
    object(json!({"type": "object", "properties": properties, "required": required}))
}

/// The fixture tools the suite calls by name.
fn fixture_tools() -> Vec<Tool> {
    let plain = |name: &'static str, description: &'static str| {
        Tool::new(name, description, no_arguments())
    };
    vec![
        plain("test_simple_text", "Returns a simple text block."),
        plain("test_image_content", "Returns a 1x1 PNG image."),
        plain("test_audio_content", "Returns a short WAV audio clip."),
        plain(
            "test_embedded_resource",
            "Returns an embedded text resource.",
        ),
        plain(
            "test_multiple_content_types",
            "Returns text, an image and an embedded resource.",
        ),
        plain(
            "test_tool_with_logging",
            "Sends three info log notifications while it runs.",
        ),
        plain("test_error_handling", "Always fails with isError: true."),
        plain(
            "test_tool_with_progress",
            "Reports progress 0, 50 and 100 of 100 when the request has a progress token.",
        ),
        Tool::new(
            "test_sampling",
            "Asks the client's LLM (sampling/createMessage) and returns its answer.",
            string_arguments(&[("prompt", "The prompt to send to the LLM")]),
        ),
        Tool::new(
            "test_elicitation",
            "Asks the user for a username and an email (elicitation/create).",
            string_arguments(&[("message", "The message to show the user")]),
        ),
        plain(
            "test_elicitation_sep1034_defaults",
            "Elicits values of every primitive type, each with a default (SEP-1034).",
        ),
        plain(
            "test_elicitation_sep1330_enums",
            "Elicits the five kinds of enum fields (SEP-1330).",
        ),
        Tool::new(
            "json_schema_2020_12_tool",
            "Greets; its input schema uses JSON Schema 2020-12 keywords ($schema, $defs, $ref).",
            object(json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {
                    "address": {
                        "type": "object",
                        "properties": {
                            "street": {"type": "string"},
                            "city": {"type": "string"},
                        },
                    },
                },
                "properties": {
                    "name": {"type": "string"},
                    "address": {"$ref": "#/$defs/address"},
                },
                "additionalProperties": false,
            })),
        ),
        plain(
            "test_reconnection",
            "Takes a moment, for the SSE polling scenario.",
        ),
        plain(
            "test_logging_tool",
            "Sends three info log notifications, only to a client that asked for logs.",
        ),
        Tool::new(
            "test_custom_headers",
            "Echoes its region, which 2026-07-28 clients also send as the Mcp-Param-Region \
             header (SEP-2243; the transport checks that header and body agree).",
            object(json!({
                "type": "object",
                "properties": {
                    "region": {
                        "type": "string",
                        "description": "A region name",
                        "x-mcp-header": "Region",
                    },
                },
                "required": ["region"],
            })),
        ),
    ]
    .into_iter()
    .chain(modern::tools())
    .collect()
}

fn fixture_resources() -> Vec<Resource> {
    vec![
        Resource::new(STATIC_TEXT_URI, "static-text")
            .with_description("A static text resource.")
            .with_mime_type("text/plain"),
        Resource::new(STATIC_BINARY_URI, "static-binary")
            .with_description("A static binary resource (a 1x1 PNG).")
            .with_mime_type("image/png"),
        Resource::new(WATCHED_URI, "watched-resource")
            .with_description("A text resource that can be subscribed to.")
            .with_mime_type("text/plain"),
    ]
}

fn read_fixture(uri: &str) -> Option<ResourceContents> {
    match uri {
        STATIC_TEXT_URI => Some(ResourceContents::text(
            "This is the content of the static text resource.",
            uri,
        )),
        STATIC_BINARY_URI => {
            Some(ResourceContents::blob(PNG_BASE64, uri).with_mime_type("image/png"))
        }
        WATCHED_URI => Some(ResourceContents::text(
            "This is the content of the watched resource.",
            uri,
        )),
        _ => {
            let id = uri
                .strip_prefix(TEMPLATE_PREFIX)?
                .strip_suffix(TEMPLATE_SUFFIX)?;
            if id.is_empty() || id.contains('/') {
                return None;
            }
            let data =
                json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
            Some(ResourceContents::text(data.to_string(), uri).with_mime_type("application/json"))
        }
    }
}

fn fixture_prompts() -> Vec<Prompt> {
    let argument = |name: &str, description: &str| {
        PromptArgument::new(name)
            .with_description(description)
            .with_required(true)
    };
    vec![
        Prompt::new(
            "test_simple_prompt",
            Some("A simple prompt without arguments."),
            None,
        ),
        Prompt::new(
            "test_prompt_with_arguments",
            Some("A prompt with two arguments."),
            Some(vec![
                argument("arg1", "First test argument"),
                argument("arg2", "Second test argument"),
            ]),
        ),
        Prompt::new(
            "test_prompt_with_embedded_resource",
            Some("A prompt that embeds a resource."),
            Some(vec![argument(
                "resourceUri",
                "URI of the resource to embed",
            )]),
        ),
        Prompt::new(
            "test_prompt_with_image",
            Some("A prompt with an image."),
            None,
        ),
        Prompt::new(
            modern::INPUT_REQUIRED_PROMPT,
            Some("2026-07-28: asks for a context (InputRequiredResult) before it renders."),
            None,
        ),
    ]
}

/// Candidate values of each completable argument.
fn completion_candidates(reference: &Reference, argument: &str) -> Option<&'static [&'static str]> {
    match (reference, argument) {
        (Reference::Prompt(p), "arg1" | "arg2") if p.name == "test_prompt_with_arguments" => {
            Some(&[
                "paris", "park", "party", "test", "testing", "tested", "value1", "value2",
            ])
        }
        (Reference::Resource(r), "id") if r.uri == TEMPLATE_URI => {
            Some(&["1", "2", "3", "42", "123"])
        }
        _ => None,
    }
}

impl ServerHandler for ConformanceHandler {
    fn get_info(&self) -> ServerConfig {
        let mut info = self.production.get_info();
        info.capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_tools()
            .build();
        info
    }

    fn supported_protocol_versions(&self) -> std::borrow::Cow<'static, [ProtocolVersion]> {
        self.production.supported_protocol_versions()
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut result = self.production.list_tools(request, context).await?;
        result.tools.extend(fixture_tools());
        Ok(result)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.production
            .get_tool(name)
            .or_else(|| fixture_tools().into_iter().find(|t| t.name == name))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if self.production.get_tool(&request.name).is_some() {
            return self.production.call_tool(request, context).await;
        }
        if modern::is_tool(&request.name) {
            return modern::call_tool(&self.states, &request, &context);
        }
        let arguments = request.arguments.unwrap_or_default();
        self.call_fixture(&request.name, arguments, context)
            .await
            .map(Into::into)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(fixture_resources()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(TEMPLATE_URI, "template-data")
                .with_description("JSON data for an id.")
                .with_mime_type("application/json"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        match read_fixture(&request.uri) {
            Some(contents) => Ok(ReadResourceResult::new(vec![contents]).into()),
            None => Err(resource_not_found(&request.uri)),
        }
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if read_fixture(&request.uri).is_none() {
            return Err(resource_not_found(&request.uri));
        }
        self.session().subscriptions.insert(request.uri);
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.session().subscriptions.remove(&request.uri);
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(fixture_prompts()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        if request.name == modern::INPUT_REQUIRED_PROMPT {
            return modern::get_prompt(&self.states, &request, &context);
        }
        let arguments = request.arguments.unwrap_or_default();
        let messages = match request.name.as_str() {
            "test_simple_prompt" => vec![PromptMessage::new_text(
                Role::User,
                "This is a simple prompt for testing.",
            )],
            "test_prompt_with_arguments" => {
                let arg1 = string_argument(&arguments, "arg1")?;
                let arg2 = string_argument(&arguments, "arg2")?;
                vec![PromptMessage::new_text(
                    Role::User,
                    format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"),
                )]
            }
            "test_prompt_with_embedded_resource" => {
                let uri = string_argument(&arguments, "resourceUri")?;
                vec![
                    PromptMessage::new(
                        Role::User,
                        ContentBlock::resource(ResourceContents::text(
                            "Embedded resource content for testing.",
                            uri,
                        )),
                    ),
                    PromptMessage::new_text(
                        Role::User,
                        "Please process the embedded resource above.",
                    ),
                ]
            }
            "test_prompt_with_image" => vec![
                PromptMessage::new(
                    Role::User,
                    ContentBlock::Image(ImageContent::new(PNG_BASE64, "image/png")),
                ),
                PromptMessage::new_text(Role::User, "Please analyze the image above."),
            ],
            other => {
                return Err(ErrorData::invalid_params(
                    format!("unknown prompt: {other}"),
                    None,
                ));
            }
        };
        Ok(GetPromptResult::new(messages).into())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let prefix = request.argument.value.to_lowercase();
        let values: Vec<String> = completion_candidates(&request.r#ref, &request.argument.name)
            .unwrap_or_default()
            .iter()
            .filter(|v| v.starts_with(&prefix))
            .map(|v| (*v).to_owned())
            .collect();
        let completion = CompletionInfo::with_all_values(values)
            .map_err(|e| ErrorData::internal_error(e, None))?;
        Ok(CompleteResult::new(completion))
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        // Everything asked for, but updates only of resources that exist.
        let mut accepted = requested.clone();
        if let Some(uris) = &mut accepted.resource_subscriptions {
            uris.retain(|uri| read_fixture(uri).is_some());
        }
        Some(accepted)
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.session().log_level = request.level;
        Ok(())
    }
}

fn resource_not_found(uri: &str) -> ErrorData {
    ErrorData::resource_not_found(format!("no resource {uri}"), Some(json!({"uri": uri})))
}
