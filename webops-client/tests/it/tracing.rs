//! The request tracer hook over loopback HTTP: one span per attempt (retries included) for
//! both flavours, its headers on the request WebOps receives, its end with the status; and
//! no header at all without a tracer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use reqwest::header::{HeaderMap, HeaderValue};
use webops_client::*;
use webops_mcp_testkit::{Fault, MockPanel, MockWebOps, PANEL_PASSWORD, PANEL_USER, PanelSeed};

use crate::common::builder;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// One attempt as the tracer saw it: `METHOD template attempt`, the URL, and the status it
/// ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Traced {
    name: String,
    url: String,
    traceparent: String,
    status: Option<Option<u16>>,
}

/// Gives each attempt a span of the same trace, numbered from 1.
#[derive(Default)]
struct RecordingTracer {
    next: AtomicU32,
    spans: Arc<Mutex<Vec<Traced>>>,
}

struct Span {
    index: usize,
    traceparent: String,
    spans: Arc<Mutex<Vec<Traced>>>,
}

impl RequestTracer for RecordingTracer {
    fn start(&self, request: &TracedRequest<'_>) -> Option<Box<dyn RequestSpan>> {
        let n = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let traceparent = format!("00-{TRACE_ID}-{n:016x}-01");
        let mut spans = self.spans.lock().unwrap();
        spans.push(Traced {
            name: format!(
                "{} {} {}",
                request.method, request.url_template, request.attempt
            ),
            url: request.url.to_owned(),
            traceparent: traceparent.clone(),
            status: None,
        });
        Some(Box::new(Span {
            index: spans.len() - 1,
            traceparent,
            spans: Arc::clone(&self.spans),
        }))
    }
}

impl RequestSpan for Span {
    fn inject(&self, headers: &mut HeaderMap) {
        headers.insert(
            "traceparent",
            HeaderValue::from_str(&self.traceparent).unwrap(),
        );
    }

    fn end(self: Box<Self>, event: &RequestEvent<'_>) {
        self.spans.lock().unwrap()[self.index].status = Some(event.status);
    }
}

impl RecordingTracer {
    fn spans(&self) -> Vec<Traced> {
        self.spans.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn every_v1_attempt_is_a_span_whose_traceparent_webops_receives() {
    let mock = MockWebOps::start().await;
    mock.inject(Fault::status(503).times(1).on_path("/monitoring/health/"));
    let tracer = Arc::new(RecordingTracer::default());
    let client = builder(&mock)
        .request_tracer(tracer.clone())
        .build()
        .unwrap();
    client.system_health().await.unwrap();

    let spans = tracer.spans();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "GET /api/v1/monitoring/health/ 0",
            "GET /api/v1/monitoring/health/ 1"
        ]
    );
    let statuses: Vec<_> = spans.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [Some(Some(503)), Some(Some(200))]);
    assert_eq!(
        spans[0].url,
        format!("{}/api/v1/monitoring/health/", mock.base_url())
    );
    let received: Vec<String> = mock
        .requests()
        .iter()
        .map(|r| r.headers.get("traceparent").cloned().unwrap_or_default())
        .collect();
    let sent: Vec<String> = spans.iter().map(|s| s.traceparent.clone()).collect();
    assert_eq!(received, sent);
}

#[tokio::test]
async fn every_panel_request_is_a_span_login_included() {
    let mock = MockPanel::builder()
        .seed(PanelSeed::Demo)
        .start()
        .await
        .unwrap();
    let tracer = Arc::new(RecordingTracer::default());
    let api = Client::builder()
        .base_url(mock.base_url())
        .flavor(Flavor::Panel)
        .credentials(PANEL_USER, PANEL_PASSWORD)
        .max_retries(0)
        .request_tracer(tracer.clone())
        .build_any()
        .unwrap();
    api.list_deployments(&DeploymentFilter::new())
        .await
        .unwrap();

    let spans = tracer.spans();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "GET /auth/login/ 0",
            "POST /auth/login/ 0",
            "GET /api/deployments/ 0"
        ]
    );
    assert!(spans.iter().all(|s| s.status.is_some()), "{spans:?}");
    let received: Vec<String> = mock
        .requests()
        .iter()
        .map(|r| r.headers.get("traceparent").cloned().unwrap_or_default())
        .collect();
    let sent: Vec<String> = spans.iter().map(|s| s.traceparent.clone()).collect();
    assert_eq!(received, sent);
}

#[tokio::test]
async fn without_a_tracer_no_trace_header_is_sent() {
    let mock = MockWebOps::start().await;
    builder(&mock)
        .build()
        .unwrap()
        .system_health()
        .await
        .unwrap();
    let panel = MockPanel::builder()
        .seed(PanelSeed::Demo)
        .start()
        .await
        .unwrap();
    Client::builder()
        .base_url(panel.base_url())
        .flavor(Flavor::Panel)
        .credentials(PANEL_USER, PANEL_PASSWORD)
        .build_any()
        .unwrap()
        .list_deployments(&DeploymentFilter::new())
        .await
        .unwrap();
    let requests = mock.requests().into_iter().chain(panel.requests());
    for request in requests {
        assert!(
            !request.headers.contains_key("traceparent"),
            "{} {}: {:?}",
            request.method,
            request.path,
            request.headers
        );
    }
}
