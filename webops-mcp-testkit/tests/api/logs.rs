//! `GET deployments/{id}/logs/`: type, lines (newest N, oldest first), level, since.

use std::time::Duration;

use serde_json::Value;
use webops_mcp_testkit::{MockWebOps, SeedDeployment};

use crate::common::Api;

fn messages(data: &Value) -> Vec<String> {
    data["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_owned())
        .collect()
}

async fn seeded() -> Api {
    let minutes = |m: u64| Duration::from_secs(m * 60);
    let app = (1..=150).fold(SeedDeployment::new("shop"), |s, i| {
        let level = if i % 10 == 0 { "error" } else { "info" };
        s.log_at(
            "application",
            level,
            format!("app line {i}"),
            minutes(200 - i),
        )
    });
    let app = app
        .log_at("access", "info", "GET / 200", minutes(30))
        .log_at("error", "critical", "boom", minutes(20))
        .log_at("deployment", "info", "Deployment succeeded", minutes(300));
    Api::with(
        MockWebOps::builder().deployment(app).deployment(
            SeedDeployment::new("quiet")
                .status("stopped")
                .log("application", "info", "only"),
        ),
    )
    .await
}

#[tokio::test]
async fn lines_are_the_newest_n_oldest_first() {
    let api = seeded().await;
    let answer = api.get("deployments/1/logs/?lines=3").await;
    let data = answer.data(200);
    assert_eq!(
        messages(data),
        ["app line 148", "app line 149", "app line 150"]
    );
    assert_eq!(data["total_lines"], 150);
    assert_eq!(data["is_live"], true);
    let entry = &data["logs"][0];
    for field in ["timestamp", "level", "message", "source"] {
        assert!(entry.get(field).is_some(), "{field}");
    }
    assert_eq!(entry["source"], "django");
    let stamps: Vec<&str> = data["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["timestamp"].as_str().unwrap())
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");

    // Default: 100 lines of the application stream.
    let default = api.get("deployments/1/logs/").await;
    let lines = messages(default.data(200));
    assert_eq!(lines.len(), 100);
    assert_eq!(lines[0], "app line 51");
    assert_eq!(lines[99], "app line 150");

    let all = api.get("deployments/1/logs/?lines=1000").await;
    assert_eq!(messages(all.data(200)).len(), 150);

    let quiet = api.get("deployments/2/logs/").await;
    assert_eq!(quiet.data(200)["is_live"], false);
    assert_eq!(messages(quiet.data(200)), ["only"]);
}

#[tokio::test]
async fn type_level_and_since_filter() {
    let api = seeded().await;
    for (log_type, expected) in [
        ("access", "GET / 200"),
        ("error", "boom"),
        ("deployment", "Deployment succeeded"),
    ] {
        let answer = api
            .get(&format!("deployments/1/logs/?type={log_type}"))
            .await;
        assert_eq!(messages(answer.data(200)), [expected], "{log_type}");
    }
    let errors = api.get("deployments/1/logs/?level=error").await;
    let lines = messages(errors.data(200));
    assert_eq!(lines.len(), 15);
    assert_eq!(errors.data(200)["total_lines"], 15);
    assert!(lines.iter().all(|l| l.ends_with('0')));
    let critical = api
        .get("deployments/1/logs/?type=error&level=critical")
        .await;
    assert_eq!(messages(critical.data(200)), ["boom"]);
    let none = api.get("deployments/1/logs/?level=debug").await;
    assert_eq!(none.data(200)["total_lines"], 0);

    // since: at or after a line's own timestamp, in every accepted spelling.
    let all = api.get("deployments/1/logs/?lines=1000").await;
    let line_140 = &all.data(200)["logs"][139];
    assert_eq!(line_140["message"], "app line 140");
    let stamp = chrono::DateTime::parse_from_rfc3339(line_140["timestamp"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    for since in [
        stamp.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        stamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        stamp.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
    ] {
        let answer = api
            .http
            .get(api.url("deployments/1/logs/"))
            .bearer_auth(api.mock.token())
            .query(&[("since", since.as_str())])
            .send()
            .await
            .unwrap();
        let body: Value = answer.json().await.unwrap();
        let lines = messages(&body["data"]);
        assert_eq!(
            lines.first().map(String::as_str),
            Some("app line 140"),
            "{since}"
        );
        assert_eq!(lines.len(), 11, "{since}");
    }
    // An unencoded '+' arrives as a space and is still understood.
    let raw = stamp.to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    let answer = api
        .get(&format!("deployments/1/logs/?since={raw}&level=error"))
        .await;
    assert_eq!(messages(answer.data(200)), ["app line 140", "app line 150"]);
}

#[tokio::test]
async fn log_query_values_out_of_range_are_400() {
    let api = seeded().await;
    for (query, field) in [
        ("lines=0", "lines"),
        ("lines=1001", "lines"),
        ("lines=many", "lines"),
        ("type=stdout", "type"),
        ("level=fatal", "level"),
        ("since=yesterday", "since"),
        ("since=2025-13-01T00:00:00Z", "since"),
    ] {
        let answer = api.get(&format!("deployments/1/logs/?{query}")).await;
        answer.assert_error(400, "VALIDATION_ERROR");
        assert!(
            !answer.details(field).is_empty(),
            "?{query}: {}",
            answer.text
        );
    }
    let answer = api.get("deployments/1/logs/?type=stdout").await;
    assert!(answer.details("type")[0].contains("application, access, error, deployment"));
}

#[tokio::test]
async fn pushed_lines_are_served_after_older_ones() {
    let api = seeded().await;
    assert!(api.mock.push_log(2, "application", "warning", "fresh"));
    assert!(!api.mock.push_log(99, "application", "info", "x"));
    assert!(!api.mock.push_log(2, "stdout", "info", "x"));
    let answer = api.get("deployments/2/logs/").await;
    assert_eq!(messages(answer.data(200)), ["only", "fresh"]);
}
