//! How the client fails: every error code of the contract, malformed bodies, timeouts,
//! refused connections, the retry policy (counted from the mock's request log and the
//! observer), `Retry-After`, and that the token never leaks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{self, Recorder, Seen, builder, client, hits, requests_to};
use webops_client::*;
use webops_mcp_testkit::{Fault, MockWebOps, RateLimit, SeedDeployment};

async fn with_app() -> (MockWebOps, i64) {
    let mock = MockWebOps::builder()
        .deployment(SeedDeployment::new("app").status("running"))
        .deployment(SeedDeployment::new("idle").status("stopped"))
        .read_only_token("read-only-token")
        .start()
        .await
        .unwrap();
    let id = client(&mock)
        .resolve(&DeploymentRef::from("app"))
        .await
        .unwrap();
    mock.clear_requests();
    (mock, id)
}

fn list() -> DeploymentFilter {
    DeploymentFilter::new()
}

#[test]
fn errors_and_clients_are_shareable() {
    fn assert_shareable<T: Clone + Send + Sync + 'static>() {}
    assert_shareable::<Error>();
    assert_shareable::<Client>();
    assert_shareable::<ClientBuilder>();
}

// ---- every error code of the contract -------------------------------------------------------

#[tokio::test]
async fn validation_400_carries_details() {
    let mock = MockWebOps::start().await;
    let error = client(&mock)
        .create_deployment(
            &NewDeployment::new("Not A Valid Name!", "https://github.com/x/y.git")
                .python_version("2.7"),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Validation);
    assert_eq!(error.status(), Some(400));
    assert_eq!(error.code(), Some("VALIDATION_ERROR"));
    assert!(
        error.details().contains_key("name"),
        "{:?}",
        error.details()
    );
    assert!(error.details().contains_key("python_version"));
    // The per-field problems are the server's words: in details, not in the message.
    assert!(!error.message().contains("name: "), "{error}");
    assert_eq!(mock.deployment_count(), 0);

    let error = client(&mock)
        .list_deployments(&list().per_page(500))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Validation);
    assert!(error.details().contains_key("per_page"), "{error}");
}

#[tokio::test]
async fn unauthorized_401_for_a_wrong_token() {
    let mock = MockWebOps::start().await;
    let wrong = builder(&mock).token("wrong-token-xyz").build().unwrap();
    let error = wrong.list_deployments(&list()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
    assert_eq!(error.status(), Some(401));
    assert_eq!(error.code(), Some("AUTHENTICATION_REQUIRED"));
    assert!(
        error
            .message()
            .starts_with("WebOps rejected the API token (401)"),
        "{error}"
    );
    assert!(!error.message().contains("wrong-token-xyz"));

    let no_token = Client::builder().base_url(mock.base_url()).build().unwrap();
    let error = no_token.databases().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
    assert_eq!(hits(&mock, "GET", "deployments/"), 1, "401 is not retried");
}

#[tokio::test]
async fn forbidden_403_for_a_read_only_token_on_a_write() {
    let (mock, id) = with_app().await;
    let reader = builder(&mock).token("read-only-token").build().unwrap();
    assert_eq!(
        reader.list_deployments(&list()).await.unwrap().items.len(),
        2
    );
    let error = reader.restart(id).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Forbidden);
    assert_eq!(error.status(), Some(403));
    assert_eq!(error.code(), Some("PERMISSION_DENIED"));
    let error = reader.delete_deployment(id).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Forbidden);
    assert_eq!(hits(&mock, "DELETE", &format!("deployments/{id}/")), 1);
}

#[tokio::test]
async fn not_found_404_for_an_unknown_id() {
    let (mock, _) = with_app().await;
    let client = client(&mock);
    let error = client.get_deployment(987_654).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert_eq!(error.code(), Some("RESOURCE_NOT_FOUND"));
    let error = client.logs(987_654, &LogQuery::new()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    // A real "no such deployment" on the extension endpoint is still NotFound.
    let error = client.scale(987_654, 2).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn unsupported_for_405_and_for_a_missing_extension() {
    let (mock, id) = with_app().await;
    let client = client(&mock);
    mock.inject(Fault::status(405).on_path("/logs/"));
    let error = client.logs(id, &LogQuery::new()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert_eq!(error.status(), Some(405));

    // A server without `scale/` answers 404 with its own page, not a RESOURCE_NOT_FOUND envelope.
    mock.inject(Fault::html(404).on_path("/scale/"));
    let error = client.scale(id, 2).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert!(
        error
            .message()
            .contains("does not support POST deployments/{id}/scale/"),
        "{error}"
    );
    // The same page on a core endpoint is a plain NotFound.
    mock.inject(Fault::html(404).on_path("/deployments/"));
    let error = client.get_deployment(id).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn conflict_409_for_a_taken_name_and_an_invalid_transition() {
    let (mock, id) = with_app().await;
    let client = client(&mock);
    let error = client
        .create_deployment(
            &NewDeployment::new("app", "https://github.com/x/app.git"),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Conflict);
    assert_eq!(error.code(), Some("CONFLICT"));

    let idle = client.resolve(&DeploymentRef::from("idle")).await.unwrap();
    let error = client.scale(idle, 3).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Conflict, "scale of a stopped app");
    let error = client.start(id).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Conflict, "start of a running app");
    assert_eq!(error.status(), Some(409));
}

#[tokio::test]
async fn deployment_failed_422() {
    let mock = MockWebOps::start().await;
    mock.inject(Fault::status(422).on_method("POST"));
    let error = client(&mock)
        .create_deployment(&NewDeployment::new("x", "https://github.com/x/x.git"), None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::DeploymentFailed);
    assert_eq!(error.code(), Some("DEPLOYMENT_FAILED"));
}

#[tokio::test]
async fn rate_limited_429_reports_retry_after() {
    let mock = MockWebOps::start().await;
    mock.set_rate_limit(Some(RateLimit {
        max_requests: 1,
        window: Duration::from_secs(600),
        retry_after_secs: 7,
    }));
    // 7 s is more than this client waits, so it fails at once and says when to come back.
    let client = builder(&mock)
        .max_retry_after(Duration::from_secs(1))
        .build()
        .unwrap();
    client.databases().await.unwrap();
    let error = client.databases().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.status(), Some(429));
    assert_eq!(error.code(), Some("RATE_LIMIT_EXCEEDED"));
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
    assert!(
        error
            .message()
            .starts_with("WebOps rate limit reached; retry after 7 s"),
        "{error}"
    );
    assert_eq!(hits(&mock, "GET", "databases/"), 2);
}

#[tokio::test]
async fn internal_error_500_is_not_retried() {
    let mock = MockWebOps::start().await;
    mock.inject(Fault::status(500).times(5));
    let error = client(&mock).databases().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Server);
    assert_eq!(error.code(), Some("INTERNAL_ERROR"));
    assert_eq!(hits(&mock, "GET", "databases/"), 1);
}

#[tokio::test]
async fn unavailable_503_after_the_last_retry() {
    let mock = MockWebOps::start().await;
    mock.inject(Fault::status(503).times(10));
    let client = builder(&mock).max_retries(2).build().unwrap();
    let error = client.system_health().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(error.code(), Some("SERVICE_UNAVAILABLE"));
    assert!(
        error.message().ends_with("(gave up after 3 attempts)"),
        "{error}"
    );
    assert_eq!(hits(&mock, "GET", "monitoring/health/"), 3);

    let once = builder(&mock).max_retries(0).build().unwrap();
    mock.clear_requests();
    assert_eq!(
        once.system_health().await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    assert_eq!(hits(&mock, "GET", "monitoring/health/"), 1);
}

// ---- retries --------------------------------------------------------------------------------

#[tokio::test]
async fn get_is_retried_up_to_max_retries_then_fails() {
    for status in [502, 503, 504] {
        let mock = MockWebOps::start().await;
        mock.inject(Fault::status(status).times(100));
        let error = client(&mock).list_deployments(&list()).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unavailable, "{status}");
        assert_eq!(error.status(), Some(status));
        assert_eq!(
            hits(&mock, "GET", "deployments/"),
            4,
            "{status}: 1 + 3 retries"
        );
    }
}

#[tokio::test]
async fn get_succeeds_after_two_faults() {
    let (mock, id) = with_app().await;
    mock.inject(Fault::status(502).times(2).on_method("GET"));
    let detail = client(&mock).get_deployment(id).await.unwrap();
    assert_eq!(detail.name, "app");
    let sent = requests_to(&mock, "GET", &format!("deployments/{id}/"));
    let statuses: Vec<u16> = sent.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [502, 502, 200]);
}

#[tokio::test]
async fn put_and_delete_are_retried() {
    let (mock, id) = with_app().await;
    let client = client(&mock);
    mock.inject(Fault::status(504).on_method("PUT"));
    let updated = client
        .update_deployment(id, &DeploymentUpdate::new().branch("next"))
        .await
        .unwrap();
    assert_eq!(updated.branch, "next");
    assert_eq!(hits(&mock, "PUT", &format!("deployments/{id}/")), 2);

    mock.inject(Fault::status(503).on_method("DELETE"));
    client.delete_deployment(id).await.unwrap();
    assert_eq!(hits(&mock, "DELETE", &format!("deployments/{id}/")), 2);
}

#[tokio::test]
async fn a_delete_whose_answer_was_lost_is_done() {
    let (mock, id) = with_app().await;
    let client = client(&mock);
    // The first DELETE takes effect but a proxy answers 504; the retry finds nothing.
    mock.inject(Fault::status(504).on_method("DELETE").after_handling());
    let deleted = client.delete_deployment(id).await.unwrap();
    assert_eq!((deleted.id, deleted.deleted), (id, true));
    assert_eq!(hits(&mock, "DELETE", &format!("deployments/{id}/")), 2);
    let gone = client.get_deployment(id).await.unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::NotFound);
    // Without a lost answer a 404 is still an error, retried or not.
    let error = client.delete_deployment(id).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    mock.inject(Fault::status(503).on_method("DELETE"));
    let error = client.delete_deployment(id).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn a_keyed_create_that_conflicts_after_a_gateway_error_says_it_may_exist() {
    let (mock, _) = with_app().await;
    let client = client(&mock);
    let create = |key: &str| {
        let new = NewDeployment::new("app", "https://github.com/x/app.git");
        let client = client.clone();
        let key = key.to_owned();
        async move { client.create_deployment(&new, Some(key)).await.unwrap_err() }
    };
    // A 502 from a proxy says nothing of whether WebOps acted: the conflict of the retry may
    // be with the deployment the first attempt created.
    mock.inject(Fault::status(502).on_method("POST"));
    let error = create("key-1").await;
    assert_eq!(error.kind(), ErrorKind::Conflict);
    assert!(
        error.message().contains("may have created 'app'"),
        "{}",
        error.message()
    );
    assert_eq!(hits(&mock, "POST", "deployments/"), 2);
    // A 503 is WebOps refusing before acting, and a first-attempt conflict is only that.
    mock.inject(Fault::status(503).on_method("POST"));
    for key in ["key-2", "key-3"] {
        let error = create(key).await;
        assert_eq!(error.kind(), ErrorKind::Conflict);
        assert!(!error.message().contains("may have"), "{}", error.message());
    }
}

#[tokio::test]
async fn post_without_a_key_is_never_retried() {
    let (mock, id) = with_app().await;
    let client = client(&mock);
    mock.inject(Fault::status(503).times(100).on_method("POST"));

    let error = client
        .create_deployment(
            &NewDeployment::new("new-app", "https://github.com/x/n.git"),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(hits(&mock, "POST", "deployments/"), 1);

    for verb in ["start", "stop", "restart", "redeploy", "scale"] {
        let result = match verb {
            "start" => client.start(id).await.map(|_| ()),
            "stop" => client.stop(id).await.map(|_| ()),
            "restart" => client.restart(id).await.map(|_| ()),
            "redeploy" => client.redeploy(id).await.map(|_| ()),
            _ => client.scale(id, 2).await.map(|_| ()),
        };
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Unavailable, "{verb}");
        assert_eq!(
            hits(&mock, "POST", &format!("deployments/{id}/{verb}/")),
            1,
            "{verb} was sent once"
        );
    }

    // Not even a 429 with a short Retry-After makes a keyless POST go twice.
    let mock = MockWebOps::start().await;
    mock.inject(Fault::status(429).retry_after(0).times(5));
    let error = common::client(&mock)
        .create_deployment(&NewDeployment::new("n", "https://github.com/x/n.git"), None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(hits(&mock, "POST", "deployments/"), 1);
    assert_eq!(mock.deployment_count(), 0);
}

#[tokio::test]
async fn post_with_a_key_is_retried_and_creates_one_deployment() {
    let mock = MockWebOps::start().await;
    mock.inject(Fault::status(503).times(2).on_method("POST"));
    let created = client(&mock)
        .create_deployment(
            &NewDeployment::new("keyed", "https://github.com/x/keyed.git"),
            Some("retry-me".into()),
        )
        .await
        .unwrap();
    assert_eq!(created.name, "keyed");
    let sent = requests_to(&mock, "POST", "deployments/");
    assert_eq!(sent.len(), 3);
    assert!(
        sent.iter()
            .all(|r| r.header("idempotency-key") == Some("retry-me"))
    );
    assert_eq!(mock.deployment_count(), 1);
}

#[tokio::test]
async fn retry_after_is_waited_for() {
    for status in [503, 429] {
        let mock = MockWebOps::start().await;
        mock.inject(Fault::status(status).retry_after(1));
        let started = Instant::now();
        client(&mock).databases().await.unwrap();
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "{status}: retried after {:?}",
            started.elapsed()
        );
        assert_eq!(hits(&mock, "GET", "databases/"), 2);
    }
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_is_not_waited_for() {
    let mock = MockWebOps::start().await;
    mock.inject(Fault::status(503).retry_after(3600).times(5));
    let client = builder(&mock)
        .max_retry_after(Duration::from_secs(2))
        .build()
        .unwrap();
    let error = client.databases().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(3600)));
    assert!(error.message().contains("retry after 3600 s"), "{error}");
    assert_eq!(hits(&mock, "GET", "databases/"), 1);
}

#[tokio::test]
async fn a_429_without_retry_after_backs_off_and_retries() {
    let mock = MockWebOps::start().await;
    mock.inject(Fault::status(429).times(2));
    client(&mock).databases().await.unwrap();
    assert_eq!(hits(&mock, "GET", "databases/"), 3);
}

// ---- malformed bodies, timeouts, connections ------------------------------------------------

#[tokio::test]
async fn malformed_bodies_map_by_status() {
    let mock = MockWebOps::start().await;
    let client = builder(&mock).max_retries(0).build().unwrap();
    let cases: Vec<(Fault, ErrorKind, Option<&str>)> = vec![
        (
            Fault::html(502),
            ErrorKind::Unavailable,
            Some("502 Bad Gateway"),
        ),
        (Fault::html(500), ErrorKind::Server, Some("nginx")),
        (Fault::html(401), ErrorKind::Unauthorized, Some("401")),
        (Fault::html(404), ErrorKind::NotFound, Some("404 Not Found")),
        (
            Fault::truncated_json(200),
            ErrorKind::Decode,
            Some("could not decode"),
        ),
        (
            Fault::truncated_json(500),
            ErrorKind::Server,
            Some("INTERNAL_"),
        ),
        (Fault::truncated_json(503), ErrorKind::Unavailable, None),
        (
            Fault::empty(500),
            ErrorKind::Server,
            Some("internal error (500)"),
        ),
        (Fault::empty(200), ErrorKind::Decode, None),
        (Fault::empty(429), ErrorKind::RateLimited, None),
    ];
    for (fault, kind, needle) in cases {
        let shown = format!("{fault:?}");
        mock.inject(fault);
        let error = client.databases().await.unwrap_err();
        assert_eq!(error.kind(), kind, "{shown}: {error}");
        assert_eq!(error.code(), None, "{shown}: not an envelope");
        // The server's words are quoted apart from the client's message, never inside it.
        let quoted = error.upstream_text().unwrap_or_default();
        if let Some(needle) = needle {
            assert!(
                error.message().contains(needle) || quoted.contains(needle),
                "{shown}: {error} / {quoted}"
            );
        }
        for words in ["nginx", "Bad Gateway", "<html", "INTERNAL_"] {
            assert!(!error.message().contains(words), "{shown}: {error}");
        }
        assert!(error.message().len() < 500, "{shown}: {error}");
        assert!(quoted.chars().count() <= 601, "{shown}: {quoted}");
    }
    assert_eq!(hits(&mock, "GET", "databases/"), 10);
}

#[tokio::test]
async fn a_decode_failure_is_not_retried() {
    let mock = MockWebOps::start().await;
    mock.inject(Fault::truncated_json(200).times(5));
    let error = client(&mock).databases().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Decode);
    assert_eq!(hits(&mock, "GET", "databases/"), 1);
}

#[tokio::test]
async fn a_timeout_is_reported_and_not_retried() {
    let mock = MockWebOps::start().await;
    mock.inject(Fault::delay(Duration::from_secs(3)).times(5));
    let recorder = Recorder::new();
    let client = builder(&mock)
        .timeout(Duration::from_millis(300))
        .observer(recorder.clone())
        .build()
        .unwrap();
    let error = client.databases().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert_eq!(error.status(), None);
    assert!(
        error
            .message()
            .contains("did not answer GET databases/ within 300 ms"),
        "{error}"
    );
    assert_eq!(hits(&mock, "GET", "databases/"), 1);
    assert_eq!(recorder.seen().len(), 1);
    assert_eq!(recorder.seen()[0].error, Some(ErrorKind::Timeout));
}

/// A loopback port nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    let port = closed_port().await;
    let recorder = Recorder::new();
    let client = Client::builder()
        .base_url(format!("http://127.0.0.1:{port}"))
        .token("some-secret-token")
        .max_retries(2)
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .observer(recorder.clone())
        .build()
        .unwrap();

    let error = client.list_deployments(&list()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connection);
    assert_eq!(error.status(), None);
    assert_eq!(
        error.message(),
        format!(
            "could not connect to WebOps at http://127.0.0.1:{port}/: connection refused \
             (gave up after 3 attempts)"
        )
    );
    let seen = recorder.seen();
    assert_eq!(seen.len(), 3);
    for (n, event) in seen.iter().enumerate() {
        assert_eq!(event.attempt, n as u32);
        assert_eq!(event.status, None);
        assert_eq!(event.error, Some(ErrorKind::Connection));
        assert_eq!(event.endpoint, "deployments/");
    }

    // A keyless POST gets one attempt even when nothing was sent.
    let error = client.restart(1).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connection);
    assert_eq!(recorder.seen().len(), 4);
}

/// A server that accepts connections, reads the request and hangs up without answering; it
/// counts the connections.
async fn hang_up_server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 8192];
            let _ = socket.read(&mut buf).await;
            drop(socket);
        }
    });
    (url, accepted)
}

#[tokio::test]
async fn a_dropped_connection_is_retried_only_when_idempotent() {
    let (url, accepted) = hang_up_server().await;
    let client = Client::builder()
        .base_url(&url)
        .token("some-secret-token")
        .max_retries(3)
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .build()
        .unwrap();

    let error = client.get_deployment(7).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connection, "{error}");
    assert!(
        error.message().starts_with(&format!(
            "the connection to WebOps at {url}/ failed during GET"
        )),
        "{error}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 4, "1 + 3 retries");

    // The server may have acted on a POST before hanging up: never send it again.
    let error = client.stop(7).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connection);
    assert_eq!(accepted.load(Ordering::SeqCst), 5);

    // With an Idempotency-Key the server dedupes, so the POST may be repeated.
    let new = NewDeployment::new("a", "https://github.com/x/a.git");
    let error = client
        .create_deployment(&new, Some("k-1".into()))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connection);
    assert_eq!(accepted.load(Ordering::SeqCst), 9);
}

// ---- observer and secrets -------------------------------------------------------------------

#[tokio::test]
async fn the_observer_sees_every_attempt() {
    let (mock, id) = with_app().await;
    let recorder = Recorder::new();
    let client = builder(&mock).observer(recorder.clone()).build().unwrap();
    mock.inject(Fault::status(503).times(2).on_path("/logs/"));

    client.logs(id, &LogQuery::new()).await.unwrap();
    client.status().await.unwrap();
    let _ = client.get_deployment(id + 1000).await;

    let seen = |status, error, attempt, method: &str, endpoint: &str| Seen {
        method: method.to_owned(),
        endpoint: endpoint.to_owned(),
        status: Some(status),
        error,
        attempt,
    };
    let logs = "deployments/{id}/logs/";
    assert_eq!(
        recorder.seen(),
        [
            seen(503, Some(ErrorKind::Unavailable), 0, "GET", logs),
            seen(503, Some(ErrorKind::Unavailable), 1, "GET", logs),
            seen(200, None, 2, "GET", logs),
            seen(200, None, 0, "GET", "status/"),
            seen(
                404,
                Some(ErrorKind::NotFound),
                0,
                "GET",
                "deployments/{id}/"
            ),
        ]
    );
}

#[tokio::test]
async fn the_token_never_leaks() {
    const SECRET: &str = "tok-3f9a7c1e-never-show-me";
    let mock = MockWebOps::builder().token(SECRET).start().await.unwrap();
    let mut config = ClientConfig::default();
    config.api_url = mock.base_url();
    config.api_key = Some(SECRET.to_owned());
    assert!(!format!("{config:?}").contains(SECRET));
    let client = config
        .builder()
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    assert!(!format!("{client:?}").contains(SECRET));
    assert!(!format!("{:?}", config.builder()).contains(SECRET));

    let mut errors = Vec::new();
    errors.push(client.get_deployment(424_242).await.unwrap_err());
    errors.push(
        client
            .create_deployment(&NewDeployment::new("BAD NAME", ""), None)
            .await
            .unwrap_err(),
    );
    for fault in [
        Fault::html(502).times(4),
        Fault::truncated_json(200),
        Fault::empty(500),
        Fault::status(429).retry_after(999),
        Fault::delay(Duration::from_secs(3)),
    ] {
        mock.inject(fault);
        errors.push(client.databases().await.unwrap_err());
    }
    let port = closed_port().await;
    let refused = config
        .builder()
        .base_url(format!("http://127.0.0.1:{port}"))
        .max_retries(0)
        .build()
        .unwrap();
    errors.push(refused.databases().await.unwrap_err());

    let kinds: Vec<ErrorKind> = errors.iter().map(Error::kind).collect();
    assert_eq!(
        kinds,
        [
            ErrorKind::NotFound,
            ErrorKind::Validation,
            ErrorKind::Unavailable,
            ErrorKind::Decode,
            ErrorKind::Server,
            ErrorKind::RateLimited,
            ErrorKind::Timeout,
            ErrorKind::Connection,
        ]
    );
    for error in &errors {
        assert!(!error.to_string().contains(SECRET), "{error}");
        assert!(!format!("{error:?}").contains(SECRET), "{error:?}");
        assert!(
            error
                .details()
                .values()
                .flatten()
                .all(|m| !m.contains(SECRET))
        );
    }

    // The mock saw the token where it belongs: in the Authorization header.
    assert!(
        mock.requests()
            .iter()
            .any(|r| { r.header("authorization") == Some(format!("Bearer {SECRET}").as_str()) })
    );
}

/// A server that answers every request with `head` and then, when `chunked`, a chunked body
/// of 33 MiB of JSON-ish bytes in 1 MiB chunks.
async fn big_answer_server(head: &'static str, chunked: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(head.as_bytes()).await;
                if chunked {
                    let chunk = vec![b' '; 1 << 20];
                    for _ in 0..33 {
                        let size = format!("{:x}\r\n", chunk.len());
                        if socket.write_all(size.as_bytes()).await.is_err()
                            || socket.write_all(&chunk).await.is_err()
                            || socket.write_all(b"\r\n").await.is_err()
                        {
                            return;
                        }
                    }
                    let _ = socket.write_all(b"0\r\n\r\n").await;
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn an_answer_larger_than_the_client_reads_is_refused() {
    let announced = big_answer_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 41943040\r\n\r\n",
        false,
    )
    .await;
    let streamed = big_answer_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        true,
    )
    .await;
    for url in [announced, streamed] {
        let client = Client::builder()
            .base_url(&url)
            .token("some-secret-token")
            .max_retries(0)
            .build()
            .unwrap();
        let error = client.status().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Decode, "{error}");
        assert_eq!(error.status(), Some(200), "{error}");
        assert_eq!(
            error.message(),
            "the WebOps answer to GET status/ is larger than 32 MiB",
            "{url}"
        );
    }
}
