//! The send-and-retry loop: [`Call`] (one logical API call), its attempts under the retry
//! policy, the observer report of each attempt, and the errors of attempts that got no
//! complete answer.

use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use http_body_util::{BodyExt as _, Full};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Client;
use super::config::{RequestEvent, config_error};
use super::plain::Plain;
use crate::decode::{Answer, Endpoint, RawAnswer, decode, redact};
use crate::error::{Error, ErrorKind, Result};
use crate::retry::{Wait, parse_retry_after};
use crate::trace::{RequestSpan, TracedRequest};

/// The largest answer body the client reads (a guard against a runaway server).
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// One logical API call, possibly sent several times.
pub(super) struct Call {
    pub(super) method: Method,
    /// The path with ids as `{id}`, for metrics and messages.
    pub(super) template: &'static str,
    /// The path below the API root.
    pub(super) path: String,
    pub(super) query: Vec<(&'static str, String)>,
    pub(super) body: Option<Vec<u8>>,
    pub(super) idempotency_key: Option<HeaderValue>,
    pub(super) authenticated: bool,
    pub(super) extension: bool,
}

impl Call {
    pub(super) fn new(method: Method, template: &'static str, path: impl Into<String>) -> Self {
        Call {
            method,
            template,
            path: path.into(),
            query: Vec::new(),
            body: None,
            idempotency_key: None,
            authenticated: true,
            extension: false,
        }
    }

    pub(super) fn get(template: &'static str, path: impl Into<String>) -> Self {
        Call::new(Method::GET, template, path)
    }

    pub(super) fn query(mut self, query: Vec<(&'static str, String)>) -> Self {
        self.query = query;
        self
    }

    pub(super) fn json(mut self, body: &impl Serialize) -> Result<Self> {
        let body = serde_json::to_vec(body).map_err(|e| {
            Error::new(
                ErrorKind::Validation,
                format!("could not encode the request body: {e}"),
            )
        })?;
        self.body = Some(body);
        Ok(self)
    }

    /// Only idempotent requests may be sent twice.
    pub(super) fn idempotent(&self) -> bool {
        self.method != Method::POST || self.idempotency_key.is_some()
    }

    fn endpoint(&self) -> Endpoint<'_> {
        Endpoint {
            method: self.method.as_str(),
            template: self.template,
            extension: self.extension,
        }
    }
}

impl Client {
    /// Sends `call` under the retry policy and decodes its success envelope.
    pub(super) async fn send<T: DeserializeOwned>(&self, call: Call) -> Result<Answer<T>> {
        self.send_retried(call).await.0
    }

    /// [`Client::send`], also telling whether an earlier attempt that was retried may have
    /// taken effect at WebOps although its answer was lost (see [`Error::may_have_acted`]).
    pub(super) async fn send_retried<T: DeserializeOwned>(
        &self,
        call: Call,
    ) -> (Result<Answer<T>>, bool) {
        let inner = &*self.inner;
        let url = match inner.root.join(&call.path) {
            Ok(mut url) => {
                if !call.query.is_empty() {
                    url.query_pairs_mut().extend_pairs(&call.query);
                }
                url
            }
            Err(e) => {
                let message = format!("could not build the URL of {}: {e}", call.template);
                return (Err(config_error(message)), false);
            }
        };
        let endpoint = call.endpoint();
        let idempotent = call.idempotent();
        let mut attempt = 0;
        let mut lost_answer = false;
        loop {
            let started = Instant::now();
            let mut span = None;
            let (status, result) = match self.attempt(&call, &url, attempt, &mut span).await {
                Ok(answer) => (
                    Some(answer.status),
                    decode::<T>(endpoint, &answer, inner.token.as_deref()),
                ),
                Err(error) => (None, Err(error)),
            };
            let event = RequestEvent {
                method: endpoint.method,
                endpoint: endpoint.template,
                status,
                error: result.as_ref().err().map(Error::kind),
                duration: started.elapsed(),
                attempt,
            };
            if let Some(observer) = &inner.observer {
                observer.observe(&event);
            }
            if let Some(span) = span {
                span.end(&event);
            }
            let error = match result {
                Ok(answer) => return (Ok(answer), lost_answer),
                Err(error) => error,
            };
            let Some(wait) = inner.policy.wait_before_retry(&error, attempt, idempotent) else {
                let error = if attempt == 0 {
                    error
                } else {
                    let message = format!(
                        "{} (gave up after {} attempts)",
                        error.message(),
                        attempt + 1
                    );
                    error.with_message(message)
                };
                return (Err(error), lost_answer);
            };
            lost_answer |= error.may_have_acted();
            tracing::debug!(
                method = endpoint.method,
                endpoint = endpoint.template,
                attempt,
                status = status.unwrap_or(0),
                error = error.kind().as_str(),
                wait_ms = u64::try_from(wait.duration().as_millis()).unwrap_or(u64::MAX),
                honours_retry_after = matches!(wait, Wait::RetryAfter(_)),
                "retrying WebOps request"
            );
            tokio::time::sleep(wait.duration()).await;
            attempt += 1;
        }
    }

    /// Sends `call` once and reads the whole answer; `span` receives the attempt's span when
    /// a tracer traces it.
    async fn attempt(
        &self,
        call: &Call,
        url: &Url,
        attempt: u32,
        span: &mut Option<Box<dyn RequestSpan>>,
    ) -> Result<RawAnswer> {
        let inner = &*self.inner;
        let mut headers = HeaderMap::new();
        if call.authenticated
            && let Some(authorization) = &inner.authorization
        {
            headers.insert(header::AUTHORIZATION, authorization.clone());
        }
        if let Some(key) = &call.idempotency_key {
            headers.insert("Idempotency-Key", key.clone());
        }
        if call.body.is_some() {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        if let Some(tracer) = &inner.tracer {
            let template = format!("{}{}", inner.root.path(), call.template);
            *span = tracer.start(&TracedRequest {
                method: call.method.as_str(),
                url_template: &template,
                url: url.as_str(),
                attempt,
            });
            if let Some(span) = span {
                span.inject(&mut headers);
            }
        }
        match &inner.plain {
            Some(plain) => {
                tokio::time::timeout(inner.timeout, self.send_plain(plain, call, url, headers))
                    .await
                    .unwrap_or_else(|_| Err(self.timeout_error(call)))
            }
            None => self.send_reqwest(call, url, headers).await,
        }
    }

    /// One attempt on hyper's client ([`plain`](super::plain)).
    async fn send_plain(
        &self,
        plain: &Plain,
        call: &Call,
        url: &Url,
        mut headers: HeaderMap,
    ) -> Result<RawAnswer> {
        let inner = &*self.inner;
        let uri = http::Uri::try_from(url.as_str()).map_err(|e| {
            config_error(format!(
                "could not build the request {} {}: {e}",
                call.method, call.template
            ))
        })?;
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(header::USER_AGENT, inner.user_agent.clone());
        let body = call.body.clone().map(Bytes::from).unwrap_or_default();
        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = call.method.clone();
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        let response = plain
            .request(request)
            .await
            .map_err(|e| self.transport_error(&e, e.is_connect(), call))?;
        let (parts, mut incoming) = response.into_parts();
        let mut answer = self.answer_head(call, parts.status.as_u16(), &parts.headers)?;
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(|e| self.transport_error(&e, false, call))?;
            if let Ok(chunk) = frame.into_data() {
                append(&mut answer, &chunk, call)?;
            }
        }
        Ok(answer)
    }

    /// One attempt on reqwest's client (HTTPS, or through a proxy).
    async fn send_reqwest(&self, call: &Call, url: &Url, headers: HeaderMap) -> Result<RawAnswer> {
        let inner = &*self.inner;
        let mut request = inner
            .http
            .request(call.method.clone(), url.clone())
            .headers(headers);
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| self.reqwest_error(&e, call))?;
        let mut answer = self.answer_head(call, response.status().as_u16(), response.headers())?;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.reqwest_error(&e, call))?
        {
            append(&mut answer, &chunk, call)?;
        }
        Ok(answer)
    }

    /// An answer with its status and what its headers say, its body still to read; a body
    /// announced larger than the client reads is refused at once.
    fn answer_head(&self, call: &Call, status: u16, headers: &HeaderMap) -> Result<RawAnswer> {
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if length.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return Err(too_large(call, status));
        }
        let retry_after = headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, Utc::now()));
        let location = headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| redact(v, self.inner.token.as_deref()));
        Ok(RawAnswer {
            status,
            retry_after,
            location,
            body: Vec::new(),
        })
    }

    /// The [`Error`] of a reqwest attempt that got no complete answer.
    fn reqwest_error(&self, error: &reqwest::Error, call: &Call) -> Error {
        if error.is_timeout() {
            return self.timeout_error(call);
        }
        if error.is_builder() {
            let cause = redact(&root_cause(error), self.inner.token.as_deref());
            return config_error(format!(
                "could not build the request {} {}: {cause}",
                call.method, call.template
            ));
        }
        self.transport_error(error, error.is_connect(), call)
    }

    /// The [`Error`] of an attempt that WebOps did not answer in time.
    fn timeout_error(&self, call: &Call) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "WebOps did not answer {} {} within {}",
                call.method,
                call.template,
                human_duration(self.inner.timeout)
            ),
        )
    }

    /// The [`Error`] of an attempt that got no complete answer: it could not connect, or
    /// the connection failed later.
    fn transport_error(
        &self,
        error: &(dyn std::error::Error + 'static),
        connect: bool,
        call: &Call,
    ) -> Error {
        let inner = &*self.inner;
        let cause = redact(&root_cause(error), inner.token.as_deref());
        if connect {
            let message = format!("could not connect to WebOps at {}: {cause}", inner.server);
            return Error::new(ErrorKind::Connection, message);
        }
        let message = format!(
            "the connection to WebOps at {} failed during {} {}: {cause}",
            inner.server, call.method, call.template
        );
        Error::new(ErrorKind::Connection, message).unanswered()
    }

    pub(super) async fn data<T: DeserializeOwned>(&self, call: Call) -> Result<T> {
        Ok(self.send(call).await?.data)
    }
}

/// Adds `chunk` to the answer's body, unless the body would outgrow what the client reads.
fn append(answer: &mut RawAnswer, chunk: &[u8], call: &Call) -> Result<()> {
    if answer.body.len() + chunk.len() > MAX_BODY_BYTES {
        return Err(too_large(call, answer.status));
    }
    answer.body.extend_from_slice(chunk);
    Ok(())
}

fn too_large(call: &Call, status: u16) -> Error {
    Error::new(
        ErrorKind::Decode,
        format!(
            "the WebOps answer to {} {} is larger than {} MiB",
            call.method,
            call.template,
            MAX_BODY_BYTES / (1024 * 1024)
        ),
    )
    .with_status(status)
}

/// The most telling description of a transport failure: an I/O cause in plain words, else
/// the innermost error's text.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    use std::io::ErrorKind as Io;
    let mut current = Some(error);
    let mut innermost = error;
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            let text = match io.kind() {
                Io::ConnectionRefused => "connection refused",
                Io::ConnectionReset => "connection reset by the server",
                Io::ConnectionAborted => "connection aborted",
                Io::BrokenPipe => "connection closed by the server (broken pipe)",
                Io::UnexpectedEof => "connection closed before the answer was complete",
                Io::NotConnected => "not connected",
                Io::AddrNotAvailable => "address not available",
                Io::HostUnreachable => "host unreachable",
                Io::NetworkUnreachable => "network unreachable",
                Io::TimedOut => "connection timed out",
                _ => return io.to_string(),
            };
            return text.to_owned();
        }
        innermost = e;
        current = e.source();
    }
    innermost.to_string()
}

/// `1500 ms`, `30 s`, `2.5 s`.
fn human_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(Duration::from_millis(250)), "250 ms");
        assert_eq!(human_duration(Duration::from_secs(30)), "30 s");
        assert_eq!(human_duration(Duration::from_millis(2500)), "2.5 s");
    }
}
