//! [`McpHandler`]: the rmcp `ServerHandler` over a [`WebOpsMcpServer`]. The only module that
//! speaks rmcp's protocol types; it translates MCP requests into pipeline calls and results
//! back, and carries a confirmation to the person: `elicitation/create` in a 2025-era
//! session, an input-required result in 2026-07-28. Resources, prompts and completions are
//! the `resources`, `subscriptions`, `prompts` and `completion` modules' work; this module
//! turns them into MCP's `resources/*`, `subscriptions/listen`, `prompts/*` and
//! `completion/complete`.
//!
//! Identity: a request that came over HTTP carries `http::request::Parts` in its extensions,
//! and the HTTP auth middleware put an [`Identity`] into those parts; a request without parts
//! (stdio) gets the server's default identity; anything else gets no permissions at all.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use opentelemetry::context::FutureExt as _;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ContentBlock,
    DiscoverResult, ElicitRequest, ElicitRequestParams, ElicitationAction, ElicitationSchema,
    Extensions, Implementation, InitializeRequestParams, InitializeResult, InputRequest,
    InputRequests, InputRequiredResult, ListToolsResult, MetaObject, PaginatedRequestParams,
    ProgressNotificationParam, ProgressToken, ProtocolVersion, RequestId, RequestMetaObject,
    ServerCapabilities, ServerConfig, ToolAnnotations,
};
// Resources, prompts and completions.
use rmcp::model::{
    CompleteRequestParams, CompleteResult, CompletionInfo, ErrorCode, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, Prompt, PromptArgument, PromptMessage, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Reference, Resource, ResourceContents,
    ResourceTemplate, ResourceUpdatedNotificationParam, Role, SubscribeRequestParams,
    SubscriptionFilter, UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext, SubscriptionSink};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::completion::{self, Target};
use crate::confirm::{Answer, Asker, Elicitor, InputRequired, Question};
use crate::identity::{AuthMethod, Identity, PermissionSet};
use crate::pipeline::{CallError, CallRequest};
use crate::prompts::{self, PromptDef};
use crate::registry::ToolDefinition;
use crate::resources::{self, Descriptor, ReadError};
use crate::server::WebOpsMcpServer;
use crate::subscriptions::{self, Gone, Notifier, Sessions, SubscribeError};
use crate::tool::{ProgressSink, structured_value};
use crate::trace::{McpOutcome, McpRequest, McpSpan, McpTransport, TraceHeaders};

/// The protocol versions served: the legacy `initialize` era (2025-06-18, 2025-11-25) and the
/// stateless era (2026-07-28, `server/discover`). Older versions lack structured output.
const SUPPORTED_VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2026_07_28,
];

/// The rmcp `ServerHandler` of a [`WebOpsMcpServer`]; cheap to clone. Serve it with rmcp over
/// stdio (`handler.serve(rmcp::transport::stdio())`) or Streamable HTTP.
#[derive(Clone)]
pub struct McpHandler {
    inner: Arc<HandlerInner>,
}

struct HandlerInner {
    server: WebOpsMcpServer,
    /// Every tool in rmcp's shape, converted once.
    tools: HashMap<&'static str, rmcp::model::Tool>,
    info: ServerConfig,
    /// The `resources/subscribe` subscriptions of this handler's 2025-era sessions.
    sessions: Arc<Sessions>,
}

impl McpHandler {
    pub(crate) fn new(server: WebOpsMcpServer) -> Self {
        let tools = server
            .registry()
            .definitions()
            .map(|d| (d.name, to_rmcp_tool(d)))
            .collect();
        let info = ServerConfig::new(capabilities(&server))
            .with_server_info(
                Implementation::new("webops-mcp", env!("CARGO_PKG_VERSION"))
                    .with_title("WebOps MCP")
                    .with_description(
                        "Deploy, inspect, operate and audit applications on a WebOps hosting \
                         platform, with permissions, rate limits and an audit log.",
                    ),
            )
            .with_instructions(server.instructions());
        McpHandler {
            inner: Arc::new(HandlerInner {
                server,
                tools,
                info,
                sessions: Arc::default(),
            }),
        }
    }

    /// The server this handler serves.
    pub fn server(&self) -> &WebOpsMcpServer {
        &self.inner.server
    }

    fn identity(&self, extensions: &Extensions) -> Identity {
        if let Some(parts) = extensions.get::<http::request::Parts>() {
            // Over HTTP only the auth middleware's identity counts, never the stdio default.
            return parts
                .extensions
                .get::<Identity>()
                .cloned()
                .unwrap_or_else(nobody);
        }
        self.inner
            .server
            .default_identity()
            .cloned()
            .unwrap_or_else(nobody)
    }
}

impl McpHandler {
    /// Starts the span of a request, when the server has a tracer: the request's facts, its
    /// `_meta` and HTTP trace context, never its arguments. `tool` is the name a `tools/call`
    /// asked for, kept only when it is one of this server's tools.
    fn trace(
        &self,
        method: &'static str,
        tool: Option<&str>,
        context: &RequestContext<RoleServer>,
    ) -> Option<Traced> {
        self.trace_request(method, tool, &Facts::of(context))
    }

    /// [`McpHandler::trace`] from a request's [`Facts`].
    fn trace_request(
        &self,
        method: &'static str,
        tool: Option<&str>,
        context: &Facts<'_>,
    ) -> Option<Traced> {
        let tracer = self.inner.server.tracer()?;
        let tool = tool.filter(|name| self.inner.tools.contains_key(name));
        let parts = context.extensions.get::<http::request::Parts>();
        let header = |name: &str| {
            parts
                .and_then(|p| p.headers.get(name))
                .and_then(|v| v.to_str().ok())
        };
        let request_id = context.id.to_string();
        let version = &context.protocol_version;
        let span = tracer.start(&McpRequest {
            method,
            tool,
            request_id: &request_id,
            protocol_version: version.as_ref().map(ProtocolVersion::as_str),
            session_id: header("mcp-session-id"),
            transport: match parts {
                Some(parts) => McpTransport::Http {
                    version: http_version(parts.version),
                },
                None => McpTransport::Stdio,
            },
            meta: TraceHeaders::from_lookup(|key| context.meta.get(key).and_then(Value::as_str)),
            http: TraceHeaders::from_lookup(header),
        });
        Some(Traced(Some(span)))
    }
}

/// What answering a request reads of it, whichever way it arrived: through rmcp's service
/// (a [`RequestContext`]) or the HTTP transport's stateless path
/// ([`McpHandler::call_tool_stateless`]).
struct Facts<'a> {
    id: &'a RequestId,
    meta: &'a RequestMetaObject,
    extensions: &'a Extensions,
    protocol_version: Option<ProtocolVersion>,
}

impl<'a> Facts<'a> {
    fn of(context: &'a RequestContext<RoleServer>) -> Facts<'a> {
        Facts {
            id: &context.id,
            meta: &context.meta,
            extensions: &context.extensions,
            protocol_version: context.protocol_version(),
        }
    }
}

impl McpHandler {
    /// Answers a stateless (2026-07-28) `tools/call` without rmcp's per-request service: the
    /// HTTP transport's lean path. It answers exactly what [`ServerHandler::call_tool`] would
    /// for the same request, and may be used only for one that rmcp would route to it with
    /// these facts: `meta` (the request's `_meta`) names 2026-07-28 and carries the client's
    /// capabilities, and holds no progress token (progress needs rmcp's stream). `parts` is
    /// the HTTP request (with the authenticated [`Identity`] in its extensions); `cancel`
    /// fires when the caller goes away.
    pub async fn call_tool_stateless(
        &self,
        id: &RequestId,
        mut request: CallToolRequestParams,
        meta: &RequestMetaObject,
        parts: http::request::Parts,
        cancel: CancellationToken,
    ) -> Result<Served, ErrorData> {
        let mut extensions = Extensions::new();
        extensions.insert(parts);
        let facts = Facts {
            id,
            meta,
            extensions: &extensions,
            protocol_version: meta.protocol_version(),
        };
        let asker = match elicits_forms(meta.client_capabilities()) {
            true => stateless_asker(&mut request),
            false => Asker::None,
        };
        self.serve_call(request, &facts, asker, None, cancel).await
    }

    /// A `tools/call` through the pipeline, its span, and its result.
    async fn serve_call(
        &self,
        request: CallToolRequestParams,
        context: &Facts<'_>,
        asker: Asker,
        progress: Option<Arc<dyn ProgressSink>>,
        cancel: CancellationToken,
    ) -> Result<Served, ErrorData> {
        let traced = self.trace_request("tools/call", Some(&request.name), context);
        let call = CallRequest {
            name: request.name.into_owned(),
            arguments: request.arguments.map(Value::Object),
            identity: self.identity(context.extensions),
            progress,
            cancel,
            asker,
        };
        let result = Traced::run(traced.as_ref(), self.inner.server.call(call)).await;
        if let Some(traced) = traced {
            traced.end(&match &result {
                Ok(_) => McpOutcome::Ok,
                Err(CallError::UnknownTool(message)) => McpOutcome::JsonRpcError {
                    code: rmcp::model::ErrorCode::INVALID_PARAMS.0,
                    message,
                },
                Err(CallError::InputRequired(_)) => McpOutcome::InputRequired,
                Err(CallError::Tool(error)) => McpOutcome::ToolError {
                    kind: error.kind().as_str(),
                },
            });
        }
        match result {
            Ok(output) => Ok(Served::Output {
                text: output.text,
                structured: output.structured,
            }),
            Err(CallError::UnknownTool(message)) => Err(ErrorData::invalid_params(message, None)),
            Err(CallError::InputRequired(ask)) => Ok(Served::Response(input_required(ask)?.into())),
            Err(CallError::Tool(error)) => Ok(Served::Response(
                CallToolResult::error(vec![ContentBlock::text(error.message().to_owned())]).into(),
            )),
        }
    }
}

/// The answer to a `tools/call` ([`McpHandler::call_tool_stateless`]).
#[derive(Debug)]
pub enum Served {
    /// The tool's answer: its text block, and its `structuredContent` as the JSON it was
    /// written as once (the HTTP lean path puts it into the answer as it is).
    Output {
        /// The text block.
        text: String,
        /// The structured content, conforming to the tool's output schema.
        structured: Box<RawValue>,
    },
    /// Any other answer (a failed call, a question for the person), in rmcp's shape.
    Response(CallToolResponse),
}

impl Served {
    /// The answer in rmcp's shape.
    pub fn into_response(self) -> CallToolResponse {
        match self {
            Served::Output { text, structured } => {
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                result.structured_content = Some(structured_value(&structured));
                result.into()
            }
            Served::Response(response) => response,
        }
    }
}

/// `"1.1"` for HTTP/1.1, and so on.
fn http_version(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// The span of the request being handled: ended once, as abandoned when the request's
/// future is dropped first.
struct Traced(Option<Box<dyn McpSpan>>);

impl Traced {
    /// Runs `future` with the span as the current context (where the WebOps client's spans
    /// find their parent).
    async fn run<F: Future>(traced: Option<&Traced>, future: F) -> F::Output {
        match traced.and_then(|t| t.0.as_ref()) {
            Some(span) => future.with_context(span.context()).await,
            None => future.await,
        }
    }

    fn end(mut self, outcome: &McpOutcome<'_>) {
        if let Some(span) = self.0.take() {
            span.end(outcome);
        }
    }

    /// Ends `traced` by a protocol result.
    fn end_with<T>(traced: Option<Traced>, result: &Result<T, ErrorData>) {
        if let Some(traced) = traced {
            traced.end(&match result {
                Ok(_) => McpOutcome::Ok,
                Err(e) => McpOutcome::JsonRpcError {
                    code: e.code.0,
                    message: &e.message,
                },
            });
        }
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        if let Some(span) = self.0.take() {
            span.end(&McpOutcome::Abandoned);
        }
    }
}

impl std::fmt::Debug for McpHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpHandler")
            .field("server", &self.inner.server)
            .finish()
    }
}

/// The identity of a request that carries none: no permissions.
fn nobody() -> Identity {
    Identity::new(
        "unauthenticated",
        AuthMethod::Anonymous,
        PermissionSet::empty(),
    )
}

fn to_rmcp_tool(definition: &ToolDefinition) -> rmcp::model::Tool {
    rmcp::model::Tool::new(
        definition.name,
        definition.description,
        as_object(&definition.input_schema),
    )
    .with_title(definition.title)
    .with_raw_output_schema(Arc::new(as_object(&definition.output_schema)))
    .with_annotations(wire_annotations(&definition.annotations))
    .with_meta(permissions_meta(definition))
}

/// The annotations as `tools/list` sends them: what MCP's defaults do not already say, since
/// a model reads every byte. `readOnlyHint` always; `destructiveHint` and `idempotentHint`
/// only for a tool that changes something (MCP: they mean nothing when `readOnlyHint` is
/// true), `destructiveHint` then always (its default, true, would be wrong for a Write tool)
/// and `idempotentHint` when true (default false); `openWorldHint` when false (default true).
fn wire_annotations(hints: &crate::registry::ToolAnnotations) -> ToolAnnotations {
    let mut annotations = ToolAnnotations::new().read_only(hints.read_only_hint);
    if !hints.read_only_hint {
        annotations = annotations.destructive(hints.destructive_hint);
        if hints.idempotent_hint {
            annotations = annotations.idempotent(true);
        }
    }
    if !hints.open_world_hint {
        annotations = annotations.open_world(false);
    }
    annotations
}

/// The `_meta` key of a tool in `tools/list` whose value lists the permissions a caller
/// must hold to call it, e.g. `{"io.webops-mcp/permissions": ["deploy:read"]}`, for a
/// client or gateway to see.
pub const PERMISSIONS_META_KEY: &str = "io.webops-mcp/permissions";

/// A tool's `_meta`: its permissions under [`PERMISSIONS_META_KEY`].
fn permissions_meta(definition: &ToolDefinition) -> MetaObject {
    let names = definition
        .permissions
        .iter()
        .map(|p| Value::String(p.as_str().to_owned()))
        .collect();
    MetaObject(Map::from_iter([(
        PERMISSIONS_META_KEY.to_owned(),
        Value::Array(names),
    )]))
}

/// The registry guarantees object roots; anything else would become an empty schema.
fn as_object(schema: &Value) -> Map<String, Value> {
    schema.as_object().cloned().unwrap_or_default()
}

/// How the client of this request can reach its person: `elicitation/create` in a 2025-era
/// session, an input-required result in 2026-07-28, when it declared form elicitation.
fn asker(context: &RequestContext<RoleServer>, request: &mut CallToolRequestParams) -> Asker {
    if !can_elicit(context) {
        return Asker::None;
    }
    if context
        .protocol_version()
        .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28)
    {
        stateless_asker(request)
    } else {
        Asker::Session(Arc::new(PeerElicitor {
            peer: context.peer.clone(),
        }))
    }
}

/// A 2026-07-28 client's person is asked with an input-required result; `request` carries
/// the state and answers of an earlier one, if any.
fn stateless_asker(request: &mut CallToolRequestParams) -> Asker {
    Asker::Stateless {
        state: request.request_state.take(),
        responses: request.input_responses.take(),
    }
}

/// Whether the client of this request declared form elicitation (an elicitation capability
/// that names neither mode means form).
fn can_elicit(context: &RequestContext<RoleServer>) -> bool {
    elicits_forms(context.client_capabilities())
}

/// Whether `capabilities` declare form elicitation.
fn elicits_forms(capabilities: Option<ClientCapabilities>) -> bool {
    capabilities
        .and_then(|c| c.elicitation)
        .is_some_and(|e| e.form.is_some() || e.url.is_none())
}

/// Asks the person of a 2025-era session with `elicitation/create` (form mode).
struct PeerElicitor {
    peer: Peer<RoleServer>,
}

/// How long a person has to answer in a 2025-era session.
const ELICITATION_TIMEOUT: std::time::Duration = crate::confirm::MAX_STATE_TTL;

#[async_trait]
impl Elicitor for PeerElicitor {
    async fn elicit(&self, question: &Question) -> Result<Answer, String> {
        let result = self
            .peer
            .create_elicitation_with_timeout(form(question)?, Some(ELICITATION_TIMEOUT))
            .await
            .map_err(|e| e.to_string())?;
        Ok(match result.action {
            ElicitationAction::Accept => Answer::Accept(result.content),
            ElicitationAction::Decline => Answer::Decline,
            // Cancel, and whatever a later protocol adds: no confirmation.
            _ => Answer::Cancel,
        })
    }
}

/// The form that asks `question`.
fn form(question: &Question) -> Result<ElicitRequestParams, String> {
    let schema = match question.schema() {
        Value::Object(schema) => ElicitationSchema::from_json_schema(schema),
        _ => return Err("the confirmation form is not an object".to_owned()),
    }
    .map_err(|e| format!("the confirmation form is invalid: {e}"))?;
    Ok(ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: question.message.clone(),
        requested_schema: schema,
    })
}

/// The input-required result of a 2026-07-28 first round.
fn input_required(ask: InputRequired) -> Result<InputRequiredResult, ErrorData> {
    let params = form(&ask.question).map_err(|e| ErrorData::internal_error(e, None))?;
    let requests: InputRequests = [(
        Question::KEY.to_owned(),
        InputRequest::Elicitation(ElicitRequest::new(params)),
    )]
    .into();
    Ok(InputRequiredResult::new(Some(requests), Some(ask.state)))
}

/// Sends a tool's progress reports as `notifications/progress` with the request's token.
struct PeerProgress {
    peer: Peer<RoleServer>,
    token: ProgressToken,
}

#[async_trait]
impl ProgressSink for PeerProgress {
    async fn report(&self, progress: f64, total: Option<f64>, message: String) {
        let mut params =
            ProgressNotificationParam::new(self.token.clone(), progress).with_message(message);
        if let Some(total) = total {
            params = params.with_total(total);
        }
        if let Err(error) = self.peer.notify_progress(params).await {
            tracing::debug!(%error, "could not send a progress notification");
        }
    }
}

impl ServerHandler for McpHandler {
    fn get_info(&self) -> ServerConfig {
        self.inner.info.clone()
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(SUPPORTED_VERSIONS)
    }

    // `initialize` and `server/discover` do what rmcp's defaults do, traced.
    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        context.peer.set_peer_info(request.clone());
        let traced = self.trace("initialize", None, &context);
        let result = self.negotiate_initialize(&request);
        Traced::end_with(traced, &result);
        result
    }

    async fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, ErrorData> {
        let traced = self.trace("server/discover", None, &context);
        let result = Ok(DiscoverResult::from_server_info(
            self.supported_protocol_versions().into_owned(),
            self.get_info(),
        ));
        Traced::end_with(traced, &result);
        result
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let traced = self.trace("tools/list", None, &context);
        let identity = self.identity(&context.extensions);
        let server = &self.inner.server;
        let can_ask = can_elicit(&context);
        let tools = server
            .registry()
            .definitions()
            .filter(|d| server.offers(d, &identity, can_ask))
            .filter_map(|d| self.inner.tools.get(d.name).cloned())
            .collect();
        let result = Ok(ListToolsResult::with_all_items(tools));
        Traced::end_with(traced, &result);
        result
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        self.inner.tools.get(name).cloned()
    }

    async fn call_tool(
        &self,
        mut request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let asker = asker(&context, &mut request);
        let progress = context.meta.get_progress_token().map(|token| {
            Arc::new(PeerProgress {
                peer: context.peer.clone(),
                token,
            }) as Arc<dyn ProgressSink>
        });
        self.serve_call(
            request,
            &Facts::of(&context),
            asker,
            progress,
            context.ct.clone(),
        )
        .await
        .map(Served::into_response)
    }

    // Resources, change notifications, prompts and completions: each answered by a method of
    // the `impl McpHandler` below, in the request's span.

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let listed = self.readable(&resources::RESOURCES, &context, to_rmcp_resource);
        let answer = async { Ok(ListResourcesResult::with_all_items(listed)) };
        self.traced("resources/list", &context, answer).await
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let listed = self.readable(&resources::TEMPLATES, &context, to_rmcp_template);
        let answer = async { Ok(ListResourceTemplatesResult::with_all_items(listed)) };
        self.traced("resources/templates/list", &context, answer)
            .await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let answer = self.resource_read(&request.uri, &context);
        self.traced("resources/read", &context, answer).await
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let answer = self.resource_subscribe(&request.uri, &context);
        self.traced("resources/subscribe", &context, answer).await
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let answer = async {
            let key = session_key(&context);
            self.inner.sessions.unsubscribe(&key, &request.uri);
            Ok(())
        };
        self.traced("resources/unsubscribe", &context, answer).await
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let config = self.inner.server.resource_config();
        let asked = requested
            .resource_subscriptions
            .as_deref()
            .unwrap_or_default();
        config.notifications().then(|| {
            SubscriptionFilter::builder()
                .resource_subscriptions(subscriptions::granted(asked, config))
                .build()
        })
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let request = context.request_context();
        let identity = self.identity(&request.extensions);
        let uris = context
            .accepted()
            .resource_subscriptions
            .clone()
            .unwrap_or_default();
        let notifier = ListenNotifier(context.sink().clone());
        let cancel = request.ct.clone();
        subscriptions::listen(&self.inner.server, &identity, uris, &notifier, cancel).await;
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.traced("prompts/list", &context, self.prompts_list(&context))
            .await
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let answer = self.prompt_get(&request, &context);
        self.traced("prompts/get", &context, answer).await
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let answer = self.completion(&request, &context);
        self.traced("completion/complete", &context, answer).await
    }
}

/// What the server offers: tools, resources (with `subscribe` when change notifications are
/// on), prompts and completions.
fn capabilities(server: &WebOpsMcpServer) -> ServerCapabilities {
    let mut capabilities = ServerCapabilities::builder()
        .enable_tools()
        .enable_resources()
        .enable_prompts()
        .enable_completions()
        .build();
    if server.resource_config().notifications()
        && let Some(resources) = capabilities.resources.as_mut()
    {
        resources.subscribe = Some(true);
    }
    capabilities
}

/// The answers to resource, prompt and completion requests (the trait methods above run
/// them in the request's span).
impl McpHandler {
    /// Runs `answer`, the answer to a `method` request, in that request's span.
    async fn traced<T>(
        &self,
        method: &'static str,
        context: &RequestContext<RoleServer>,
        answer: impl Future<Output = Result<T, ErrorData>>,
    ) -> Result<T, ErrorData> {
        let traced = self.trace(method, None, context);
        let result = Traced::run(traced.as_ref(), answer).await;
        Traced::end_with(traced, &result);
        result
    }

    /// The resources or templates of `set` the caller of `context` may read, in rmcp's shape.
    fn readable<T>(
        &self,
        set: &'static [Descriptor],
        context: &RequestContext<RoleServer>,
        convert: fn(&Descriptor) -> T,
    ) -> Vec<T> {
        let identity = self.identity(&context.extensions);
        resources::readable(set, &self.inner.server, &identity)
            .map(convert)
            .collect()
    }

    async fn resource_read(
        &self,
        uri: &str,
        context: &RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let identity = self.identity(&context.extensions);
        let contents = resources::read(&self.inner.server, &identity, uri, context.ct.clone())
            .await
            .map_err(read_error)?;
        let contents =
            ResourceContents::text(contents.text, contents.uri).with_mime_type(contents.mime_type);
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn resource_subscribe(
        &self,
        uri: &str,
        context: &RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let identity = self.identity(&context.extensions);
        let notifier = Arc::new(PeerNotifier(context.peer.clone()));
        let key = session_key(context);
        let server = &self.inner.server;
        let cancel = context.ct.clone();
        match self
            .inner
            .sessions
            .subscribe(server, &key, uri, &identity, notifier, cancel)
            .await
        {
            Ok(()) => Ok(()),
            Err(SubscribeError::Read(error)) => Err(read_error(error)),
            Err(error @ SubscribeError::Off) => Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                error.message(),
                None,
            )),
            Err(error @ SubscribeError::TooMany(_)) => {
                Err(ErrorData::invalid_params(error.message(), None))
            }
        }
    }

    async fn prompts_list(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let identity = self.identity(&context.extensions);
        let listed = prompts::offered(&self.inner.server, &identity, can_elicit(context))
            .map(to_rmcp_prompt)
            .collect();
        Ok(ListPromptsResult::with_all_items(listed))
    }

    async fn prompt_get(
        &self,
        request: &GetPromptRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let identity = self.identity(&context.extensions);
        let can_ask = can_elicit(context);
        let server = &self.inner.server;
        let arguments = request.arguments.as_ref();
        let rendered = prompts::get(server, &identity, can_ask, &request.name, arguments)
            .map_err(|message| ErrorData::invalid_params(message, None))?;
        let message = PromptMessage::new_text(Role::User, rendered.text);
        Ok(GetPromptResult::new(vec![message])
            .with_description(rendered.description)
            .into())
    }

    async fn completion(
        &self,
        request: &CompleteRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let target = match &request.r#ref {
            Reference::Prompt(prompt) => Target::Prompt(&prompt.name),
            Reference::Resource(template) => Target::Template(&template.uri),
            _ => {
                return Err(ErrorData::invalid_params(
                    "completion/complete completes the arguments of prompts and the variables \
                     of resource templates only",
                    None,
                ));
            }
        };
        let identity = self.identity(&context.extensions);
        let argument = &request.argument;
        let found = completion::complete(
            &self.inner.server,
            &identity,
            can_elicit(context),
            target,
            &argument.name,
            &argument.value,
            context.ct.clone(),
        )
        .await
        .map_err(|message| ErrorData::invalid_params(message, None))?;
        let total = u32::try_from(found.total).unwrap_or(u32::MAX);
        let info = CompletionInfo::with_pagination(found.values, Some(total), found.has_more)
            .map_err(|e| ErrorData::internal_error(e, None))?;
        Ok(CompleteResult::new(info))
    }
}

/// The 2025-era session of `context`'s request, as [`Sessions`] keys it: its
/// `Mcp-Session-Id` over HTTP; a connection without one (stdio) is one session.
fn session_key(context: &RequestContext<RoleServer>) -> String {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.headers.get("mcp-session-id"))
        .and_then(|id| id.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The MCP error of a failed read: resource not found (which the SDK turns into invalid
/// params for 2026-07-28), invalid params, or an internal error whose data names the kind of
/// failure (`rate_limited`, `unavailable`, ...) and whose message says what to do.
fn read_error(error: ReadError) -> ErrorData {
    match error {
        ReadError::NotFound(message) => ErrorData::resource_not_found(message, None),
        ReadError::Invalid(message) => ErrorData::invalid_params(message, None),
        ReadError::Failed(message, kind) => {
            ErrorData::internal_error(message, Some(serde_json::json!({ "kind": kind.as_str() })))
        }
    }
}

fn to_rmcp_resource(descriptor: &Descriptor) -> Resource {
    Resource::new(descriptor.uri, descriptor.name)
        .with_title(descriptor.title)
        .with_description(descriptor.description)
        .with_mime_type(descriptor.mime_type)
}

fn to_rmcp_template(descriptor: &Descriptor) -> ResourceTemplate {
    ResourceTemplate::new(descriptor.uri, descriptor.name)
        .with_title(descriptor.title)
        .with_description(descriptor.description)
        .with_mime_type(descriptor.mime_type)
}

fn to_rmcp_prompt(prompt: &PromptDef) -> Prompt {
    let arguments = prompt
        .arguments
        .iter()
        .map(|a| {
            PromptArgument::new(a.name)
                .with_description(a.description)
                .with_required(a.required)
        })
        .collect();
    Prompt::new(prompt.name, Some(prompt.description), Some(arguments)).with_title(prompt.title)
}

/// Change notifications of a 2025-era session: `notifications/resources/updated` to its peer.
struct PeerNotifier(Peer<RoleServer>);

#[async_trait]
impl Notifier for PeerNotifier {
    async fn updated(&self, uri: &str) -> Result<(), Gone> {
        self.0
            .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
            .await
            .map_err(|_| Gone)
    }

    fn is_gone(&self) -> bool {
        self.0.is_transport_closed()
    }
}

/// Change notifications of a 2026-07-28 `subscriptions/listen` request, on its stream.
struct ListenNotifier(SubscriptionSink);

#[async_trait]
impl Notifier for ListenNotifier {
    async fn updated(&self, uri: &str) -> Result<(), Gone> {
        self.0.notify_resource_updated(uri).await.map_err(|_| Gone)
    }

    fn is_gone(&self) -> bool {
        // The listen request's cancellation ends the watch.
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::MemorySink;
    use crate::config::SecurityConfig;

    fn handler(default: Option<Identity>) -> McpHandler {
        let mut builder = WebOpsMcpServer::builder()
            .without_builtin_tools()
            .api(Arc::new(webops_client::MockWebOpsApi::new()))
            .audit_sink(Arc::new(MemorySink::new()))
            .security(SecurityConfig::default());
        if let Some(identity) = default {
            builder = builder.default_identity(identity);
        }
        builder.build().unwrap().mcp_handler()
    }

    fn http_parts(identity: Option<Identity>) -> http::request::Parts {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        if let Some(identity) = identity {
            parts.extensions.insert(identity);
        }
        parts
    }

    #[test]
    fn identity_comes_from_the_http_parts_then_the_default() {
        let stdio = Identity::new("stdio", AuthMethod::Stdio, PermissionSet::all());
        let alice = Identity::new("alice", AuthMethod::Jwt, PermissionSet::empty());
        let handler = handler(Some(stdio.clone()));

        let mut over_http = Extensions::new();
        over_http.insert(http_parts(Some(alice.clone())));
        assert_eq!(handler.identity(&over_http), alice);

        // HTTP without an authenticated identity never falls back to the stdio default.
        let mut unauthenticated = Extensions::new();
        unauthenticated.insert(http_parts(None));
        let nobody = handler.identity(&unauthenticated);
        assert!(nobody.permissions.is_empty());
        assert_eq!(nobody.user_id, "unauthenticated");

        assert_eq!(handler.identity(&Extensions::new()), stdio);
        assert!(
            self::handler(None)
                .identity(&Extensions::new())
                .permissions
                .is_empty()
        );
    }

    #[test]
    fn info_and_versions() {
        let handler = handler(None);
        let info = handler.get_info();
        assert_eq!(info.server_info.name, "webops-mcp");
        assert_eq!(info.server_info.version, env!("CARGO_PKG_VERSION"));
        assert!(info.capabilities.tools.is_some());
        let versions = handler.supported_protocol_versions();
        assert!(versions.contains(&ProtocolVersion::V_2025_06_18));
        assert!(versions.contains(&ProtocolVersion::V_2025_11_25));
        assert!(versions.contains(&ProtocolVersion::V_2026_07_28));
    }
}
