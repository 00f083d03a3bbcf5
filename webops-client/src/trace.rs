//! [`RequestTracer`]: a hook that traces each HTTP attempt to WebOps (an OpenTelemetry CLIENT
//! span, in the server) and adds the headers that carry the trace (W3C `traceparent`).
//!
//! The client knows no tracing system: without a tracer (the default) nothing is traced and
//! no header is added; each attempt costs one `Option` check.

use reqwest::header::HeaderMap;

use crate::client::RequestEvent;

/// One HTTP attempt about to be sent, as a [`RequestTracer`] sees it: no headers and no body,
/// which may hold credentials.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct TracedRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// The URL's path with ids as `{id}` (the control panel's names as `{name}`), e.g.
    /// `/api/v1/deployments/{id}/`: low cardinality, for a span name.
    pub url_template: &'a str,
    /// The URL sent: scheme, host, port, path and query (never credentials: the client refuses
    /// a URL with a user name or password).
    pub url: &'a str,
    /// 0 for the first attempt, then 1, 2, ... for retries.
    pub attempt: u32,
}

/// Traces the client's HTTP attempts; set with
/// [`ClientBuilder::request_tracer`](crate::ClientBuilder::request_tracer).
pub trait RequestTracer: Send + Sync {
    /// Called before each attempt is sent; `None` traces this one not at all (e.g. a request
    /// made outside any traced operation). Must be cheap and must not block.
    fn start(&self, request: &TracedRequest<'_>) -> Option<Box<dyn RequestSpan>>;
}

/// The span of one attempt, from [`RequestTracer::start`]. Dropped without
/// [`RequestSpan::end`] when the attempt was abandoned (its caller went away).
pub trait RequestSpan: Send {
    /// Adds the headers that carry this span's context to WebOps (`traceparent`,
    /// `tracestate`).
    fn inject(&self, headers: &mut HeaderMap);

    /// Ends the span with what came of the attempt: the status when WebOps answered, else the
    /// error kind (the same event a [`RequestObserver`](crate::RequestObserver) receives).
    fn end(self: Box<Self>, event: &RequestEvent<'_>);
}
