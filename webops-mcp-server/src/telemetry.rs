//! OpenTelemetry traces over OTLP/HTTP (`[telemetry]`): the core's [`McpTracer`] and the
//! client's [`RequestTracer`], made of the OpenTelemetry SDK, and the exporter's HTTP client.
//!
//! One SERVER span per MCP request, named and attributed as the OpenTelemetry semantic
//! conventions for MCP say (`tools/call webops_get_status`, `mcp.method.name`,
//! `gen_ai.tool.name`, `jsonrpc.request.id`, `mcp.protocol.version`, `mcp.session.id`,
//! `network.*`, `error.type`): its parent is the W3C trace context of the request's
//! `params._meta`, else that of its HTTP request (`traceparent`, `tracestate`), which is then
//! kept as a link. One CLIENT span per HTTP attempt to WebOps made while serving a request
//! (`GET /api/v1/deployments/{id}/`, `http.*`, `url.*`, `server.*`), whose `traceparent`
//! goes to WebOps. Attributes hold no tool arguments: they may carry secrets.
//!
//! With `[telemetry] export_audit`, [`Telemetry::audit_sink`] also sends every audit record
//! as an OpenTelemetry log record (its body the record's JSON line, in the trace of the call
//! when there is one), after the local sink wrote it: the local log stays the source of
//! truth, and an export that fails costs no audit record.
//!
//! The exporter sends protobuf with the workspace's `reqwest`, no second HTTP stack: the
//! SDK's batch processor exports from a thread of its own, so [`TokioHttp`] runs each export
//! request on the server's Tokio runtime and waits for it there.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::{
    Link, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HeaderInjector, HttpClient, HttpError};
use opentelemetry_otlp::{
    LogExporter, Protocol, SpanExporter, WithExportConfig as _, WithHttpConfig as _,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracer, SdkTracerProvider};
use reqwest::header::HeaderMap;
use webops_client::{RequestEvent, RequestSpan, RequestTracer, TracedRequest};
use webops_mcp_core::{
    AuditSink, McpOutcome, McpRequest, McpSpan, McpTracer, McpTransport, TraceHeaders,
};

use crate::config::TelemetrySettings;
use crate::error::Error;

/// How long one export request may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest answer of a receiver read.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// The instrumentation scope of every span.
const SCOPE: &str = "webops-mcp";

/// The traces of one server: its SDK provider and tracer; and the audit records' logger.
pub(crate) struct Telemetry {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    requests: Arc<UpstreamTracer>,
    audit: Option<AuditExport>,
}

/// Where audit records go as log records.
struct AuditExport {
    provider: SdkLoggerProvider,
    logger: SdkLogger,
}

impl Telemetry {
    /// The traces of `settings` for the server named `server_id` (`[security] server_id`),
    /// or `None` when no endpoint is set. Needs a Tokio runtime (exports run on it).
    pub(crate) fn start(
        settings: &TelemetrySettings,
        server_id: &str,
    ) -> Result<Option<Arc<Telemetry>>, Error> {
        let Some(endpoint) = settings.signal_url("traces") else {
            return Ok(None);
        };
        let http = TokioHttp::new()?;
        let exporter = SpanExporter::builder()
            .with_http()
            .with_http_client(http)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| Error::Telemetry(format!("cannot set up the OTLP exporter: {e}")))?;
        let provider = SdkTracerProvider::builder()
            .with_resource(resource(settings, server_id))
            .with_span_processor(BatchSpanProcessor::builder(exporter).build())
            .build();
        let tracer = provider.tracer(SCOPE);
        let audit = match settings.signal_url("logs") {
            Some(endpoint) if settings.export_audit => {
                let exporter = LogExporter::builder()
                    .with_http()
                    .with_http_client(TokioHttp::new()?)
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(endpoint)
                    .with_timeout(EXPORT_TIMEOUT)
                    .build()
                    .map_err(|e| {
                        Error::Telemetry(format!("cannot set up the OTLP log exporter: {e}"))
                    })?;
                let provider = SdkLoggerProvider::builder()
                    .with_resource(resource(settings, server_id))
                    .with_batch_exporter(exporter)
                    .build();
                let logger = provider.logger(SCOPE);
                Some(AuditExport { provider, logger })
            }
            _ => None,
        };
        Ok(Some(Arc::new(Telemetry {
            requests: Arc::new(UpstreamTracer {
                tracer: tracer.clone(),
            }),
            provider,
            tracer,
            audit,
        })))
    }

    /// `sink`, and with `export_audit` each record also sent as a log record.
    pub(crate) fn audit_sink(self: &Arc<Self>, sink: Arc<dyn AuditSink>) -> Arc<dyn AuditSink> {
        if self.audit.is_none() {
            return sink;
        }
        Arc::new(ExportedAudit {
            local: sink,
            telemetry: Arc::clone(self),
        })
    }
}

/// An audit sink that also exports each record it wrote.
struct ExportedAudit {
    local: Arc<dyn AuditSink>,
    telemetry: Arc<Telemetry>,
}

impl AuditSink for ExportedAudit {
    fn write_line(&self, line: &str) -> io::Result<()> {
        self.local.write_line(line)?;
        if let Some(audit) = &self.telemetry.audit {
            let mut record = audit.logger.create_log_record();
            record.set_event_name("webops_mcp.audit");
            record.set_severity_number(Severity::Info);
            record.set_severity_text("INFO");
            record.set_body(AnyValue::from(line.to_owned()));
            audit.logger.emit(record);
        }
        Ok(())
    }

    fn last_hash(&self) -> Option<String> {
        self.local.last_hash()
    }
}

/// `service.name`, `service.version` and `service.instance.id` (the audit's `server_id`,
/// which tells the replicas of a fleet apart); nothing read from the environment.
fn resource(settings: &TelemetrySettings, server_id: &str) -> Resource {
    Resource::builder_empty()
        .with_service_name(settings.service_name.clone())
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("service.instance.id", server_id.to_owned()),
        ])
        .build()
}

impl McpTracer for Telemetry {
    fn start(&self, request: &McpRequest<'_>) -> Box<dyn McpSpan> {
        let meta = remote(request.meta);
        let http = remote(request.http);
        // The semantic conventions: `_meta` is the parent, the transport's context a link.
        let (parent, link) = match (meta, http) {
            (Some(meta), http) => (meta, http),
            (None, Some(http)) => (http, None),
            (None, None) => (Context::new(), None),
        };
        let name = match request.tool {
            Some(tool) => format!("{} {tool}", request.method),
            None => request.method.to_owned(),
        };
        let mut attributes = vec![
            KeyValue::new("mcp.method.name", request.method),
            KeyValue::new("jsonrpc.request.id", request.request_id.to_owned()),
        ];
        if let Some(tool) = request.tool {
            attributes.push(KeyValue::new("gen_ai.tool.name", tool.to_owned()));
            attributes.push(KeyValue::new("gen_ai.operation.name", "execute_tool"));
        }
        if let Some(version) = request.protocol_version {
            attributes.push(KeyValue::new("mcp.protocol.version", version.to_owned()));
        }
        if let Some(session) = request.session_id {
            attributes.push(KeyValue::new("mcp.session.id", session.to_owned()));
        }
        match request.transport {
            McpTransport::Http { version } => {
                attributes.push(KeyValue::new("network.transport", "tcp"));
                attributes.push(KeyValue::new("network.protocol.name", "http"));
                attributes.push(KeyValue::new("network.protocol.version", version));
            }
            _ => attributes.push(KeyValue::new("network.transport", "pipe")),
        }
        let mut builder = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .with_attributes(attributes);
        if let Some(link) = link {
            let linked = link.span().span_context().clone();
            if linked != *parent.span().span_context() {
                builder = builder.with_links(vec![Link::with_context(linked)]);
            }
        }
        let span = builder.start_with_context(&self.tracer, &parent);
        Box::new(ServerSpan {
            context: parent.with_span(span),
        })
    }

    fn request_tracer(&self) -> Option<Arc<dyn RequestTracer>> {
        Some(self.requests.clone())
    }

    fn flush(&self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::warn!(error = %e, "could not send the last traces");
        }
        if let Some(audit) = &self.audit
            && let Err(e) = audit.provider.force_flush()
        {
            tracing::warn!(error = %e, "could not send the last audit records");
        }
    }
}

/// The remote context in `headers`, when they hold a valid `traceparent`.
fn remote(headers: TraceHeaders<'_>) -> Option<Context> {
    headers.traceparent?;
    let context = TraceContextPropagator::new().extract(&Carrier(headers));
    context.span().span_context().is_valid().then_some(context)
}

/// [`TraceHeaders`] as the propagator reads them.
struct Carrier<'a>(TraceHeaders<'a>);

impl Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.0.traceparent,
            "tracestate" => self.0.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// The SERVER span of one MCP request, in its context.
struct ServerSpan {
    context: Context,
}

impl McpSpan for ServerSpan {
    fn context(&self) -> Context {
        self.context.clone()
    }

    fn end(self: Box<Self>, outcome: &McpOutcome<'_>) {
        let span = self.context.span();
        let (label, error) = match outcome {
            McpOutcome::ToolError { kind } => ("tool_error", Some(((*kind).to_owned(), None))),
            McpOutcome::JsonRpcError { code, message } => {
                let code = code.to_string();
                span.set_attribute(KeyValue::new("rpc.response.status_code", code.clone()));
                ("jsonrpc_error", Some((code, Some(*message))))
            }
            McpOutcome::InputRequired => ("input_required", None),
            McpOutcome::Abandoned => ("abandoned", Some(("cancelled".to_owned(), None))),
            _ => ("ok", None),
        };
        span.set_attribute(KeyValue::new("webops_mcp.outcome", label));
        if let Some((error_type, message)) = error {
            let description = message.map_or_else(|| error_type.clone(), str::to_owned);
            span.set_attribute(KeyValue::new("error.type", error_type));
            span.set_status(Status::error(description));
        }
        span.end();
    }
}

/// CLIENT spans of the WebOps client's attempts, children of the current context.
struct UpstreamTracer {
    tracer: SdkTracer,
}

impl RequestTracer for UpstreamTracer {
    fn start(&self, request: &TracedRequest<'_>) -> Option<Box<dyn RequestSpan>> {
        // Only for an MCP request being served: a `/health` check starts no trace.
        let parent = Context::map_current(|cx| cx.has_active_span().then(|| cx.clone()))?;
        let mut attributes = vec![
            KeyValue::new("http.request.method", request.method.to_owned()),
            KeyValue::new("url.full", request.url.to_owned()),
            KeyValue::new("url.template", request.url_template.to_owned()),
        ];
        if let Ok(url) = reqwest::Url::parse(request.url) {
            if let Some(host) = url.host_str() {
                attributes.push(KeyValue::new("server.address", host.to_owned()));
            }
            if let Some(port) = url.port_or_known_default() {
                attributes.push(KeyValue::new("server.port", i64::from(port)));
            }
        }
        if request.attempt > 0 {
            attributes.push(KeyValue::new(
                "http.request.resend_count",
                i64::from(request.attempt),
            ));
        }
        let span = self
            .tracer
            .span_builder(format!("{} {}", request.method, request.url_template))
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &parent);
        Some(Box::new(ClientSpan {
            context: parent.with_span(span),
        }))
    }
}

/// The CLIENT span of one attempt.
struct ClientSpan {
    context: Context,
}

impl RequestSpan for ClientSpan {
    fn inject(&self, headers: &mut HeaderMap) {
        TraceContextPropagator::new().inject_context(&self.context, &mut HeaderInjector(headers));
    }

    fn end(self: Box<Self>, event: &RequestEvent<'_>) {
        let span = self.context.span();
        if let Some(status) = event.status {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
        let error_type = match (event.status, event.error) {
            (Some(status), _) if status >= 400 => Some(status.to_string()),
            (_, Some(kind)) => Some(kind.as_str().to_owned()),
            _ => None,
        };
        if let Some(error_type) = error_type {
            span.set_status(Status::error(error_type.clone()));
            span.set_attribute(KeyValue::new("error.type", error_type));
        }
        span.end();
    }
}

/// The exporter's HTTP client: the workspace's `reqwest`, each request run on the Tokio
/// runtime the server started on (the SDK exports from a thread of its own, outside it).
#[derive(Debug)]
pub(crate) struct TokioHttp {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl TokioHttp {
    pub(crate) fn new() -> Result<TokioHttp, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Telemetry("the OpenTelemetry export needs a Tokio runtime".to_owned())
        })?;
        let client = reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| Error::Telemetry(format!("cannot set up the OTLP HTTP client: {e}")))?;
        Ok(TokioHttp { client, runtime })
    }
}

#[async_trait]
impl HttpClient for TokioHttp {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let answer = self.runtime.spawn(async move {
            let mut response = client.execute(request).await?;
            let status = response.status();
            let headers = std::mem::take(response.headers_mut());
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>((status, headers, body))
        });
        let (status, headers, body) = answer.await??;
        let mut response = http::Response::builder()
            .status(status)
            .body(Bytes::from(body))?;
        *response.headers_mut() = headers;
        Ok(response)
    }
}
