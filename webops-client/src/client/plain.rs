//! Plain HTTP to a WebOps no proxy stands in front of, sent on hyper's pooled client directly.
//!
//! reqwest wraps this same client in layers the API client does not use (redirects and
//! retries it turns off, a URL parsed back from the URI of every answer, boxed futures). On
//! the server's busiest call they took about a fifth of its CPU. So a plain `http://`
//! WebOps that no proxy of the environment intercepts gets hyper's client, set up as reqwest
//! sets up its own; HTTPS and proxies stay with reqwest, which brings the TLS roots and the
//! proxy rules.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client as Pool;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use reqwest::Url;

/// hyper's pooled HTTP/1.1 client.
pub(super) type Plain = Pool<HttpConnector, Full<Bytes>>;

/// The plain client for the API root `root`: `None` unless `root` is `http://` and no proxy
/// of the environment (`HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, read as reqwest reads them)
/// intercepts it.
pub(super) fn for_root(root: &Url) -> Option<Plain> {
    if root.scheme() != "http" {
        return None;
    }
    let uri = http::Uri::try_from(root.as_str()).ok()?;
    if Matcher::from_system().intercept(&uri).is_some() {
        return None;
    }
    // reqwest's defaults for its own connections.
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_keepalive(Some(Duration::from_secs(15)));
    connector.set_keepalive_interval(Some(Duration::from_secs(15)));
    connector.set_keepalive_retries(Some(3));
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    connector.set_tcp_user_timeout(Some(Duration::from_secs(30)));
    Some(
        Pool::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector),
    )
}
