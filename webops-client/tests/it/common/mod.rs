//! Helpers shared by the client's integration tests: a fast-retrying client for a mock, a
//! recording observer, and request-log queries.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use webops_client::{Client, ClientBuilder, ErrorKind, RequestEvent, RequestObserver};
use webops_mcp_testkit::{MockWebOps, RecordedRequest};

/// A client builder for `mock`, with millisecond backoff so retry tests run fast.
pub fn builder(mock: &MockWebOps) -> ClientBuilder {
    Client::builder()
        .base_url(mock.base_url())
        .token(mock.token())
        .timeout(Duration::from_secs(10))
        .max_retries(3)
        .backoff(Duration::from_millis(1), Duration::from_millis(10))
}

/// [`builder`], built.
pub fn client(mock: &MockWebOps) -> Client {
    builder(mock).build().unwrap()
}

/// One attempt as the observer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub endpoint: String,
    pub status: Option<u16>,
    pub error: Option<ErrorKind>,
    pub attempt: u32,
}

/// An observer that keeps every event.
#[derive(Default)]
pub struct Recorder(Mutex<Vec<Seen>>);

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
}

impl RequestObserver for Recorder {
    fn observe(&self, event: &RequestEvent<'_>) {
        self.0.lock().unwrap().push(Seen {
            method: event.method.to_owned(),
            endpoint: event.endpoint.to_owned(),
            status: event.status,
            error: event.error,
            attempt: event.attempt,
        });
    }
}

/// The requests `mock` received with `method` on exactly `path` (below `/api/v1/`).
pub fn requests_to(mock: &MockWebOps, method: &str, path: &str) -> Vec<RecordedRequest> {
    let full = format!("/api/v1/{path}");
    mock.requests()
        .into_iter()
        .filter(|r| r.method == method && r.path == full)
        .collect()
}

/// How many requests `mock` received with `method` on exactly `path`.
pub fn hits(mock: &MockWebOps, method: &str, path: &str) -> usize {
    requests_to(mock, method, path).len()
}
