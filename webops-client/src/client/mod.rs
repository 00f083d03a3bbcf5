//! [`Client`]: the HTTP implementation of [`WebOpsApi`], its builder and its configuration.
//!
//! One [`Client`] holds its pooled HTTP client behind an `Arc`: hyper's own for a plain-HTTP
//! WebOps without a proxy ([`plain`]), reqwest's otherwise. Every call goes through
//! `Client::send` ([`send`]), which builds the URL, sends attempts under the retry policy
//! ([`crate::retry`]), reports each attempt to the [`RequestObserver`] and decodes the answer
//! ([`crate::decode`]). [`config`] holds the settings and the builder, [`endpoints`] the
//! [`WebOpsApi`] mapping of each endpoint.

mod config;
mod endpoints;
mod plain;
mod send;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::HeaderValue;

#[cfg(doc)]
use crate::api::WebOpsApi;
use crate::decode::REDACTED;
use crate::retry::RetryPolicy;
use crate::trace::RequestTracer;

pub use config::{ClientBuilder, ClientConfig, RequestEvent, RequestObserver};

/// The WebOps API over HTTP. Cheap to clone; `Debug` never shows the token.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// hyper's client for a plain-HTTP WebOps without a proxy, which `http` then never sends.
    plain: Option<plain::Plain>,
    user_agent: HeaderValue,
    /// The configured server URL, for messages.
    server: String,
    /// `{api_url}/api/{api_version}/`.
    root: Url,
    /// Kept only to scrub it from quoted server text.
    token: Option<String>,
    authorization: Option<HeaderValue>,
    timeout: Duration,
    policy: RetryPolicy,
    observer: Option<Arc<dyn RequestObserver>>,
    /// Traces each attempt (and sends its `traceparent`), when set.
    tracer: Option<Arc<dyn RequestTracer>>,
}

impl Client {
    /// A builder with the defaults.
    pub fn builder() -> ClientBuilder {
        ClientConfig::default().builder()
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("Client")
            .field("api_root", &inner.root.as_str())
            .field("token", &inner.token.as_ref().map(|_| REDACTED))
            .field("timeout", &inner.timeout)
            .field("max_retries", &inner.policy.max_retries)
            .field("max_retry_after", &inner.policy.max_retry_after)
            .field("observer", &inner.observer.is_some())
            .field("tracer", &inner.tracer.is_some())
            .finish_non_exhaustive()
    }
}
