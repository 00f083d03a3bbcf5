//! The answer budget: logs and lists page with an opaque cursor under `max_answer_bytes`, a
//! log read on while the app writes returns every line of the first read exactly once and in
//! order, and any other answer over the budget is withheld with what to do instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use webops_mcp_core::{DEFAULT_ANSWER_BYTES, MIN_ANSWER_BYTES, ToolErrorKind};
use webops_mcp_testkit::{MockWebOps, Seed};

use crate::support::{Env, tool_security};

/// The bytes an answer takes: its text plus its structured content as JSON.
fn bytes(structured: &Value, text: &str) -> usize {
    text.len() + structured.to_string().len()
}

/// Calls `tool` with `args`, then with each `next_cursor` until there is none, running
/// `between` after each page: every page's structured content, each checked against `budget`.
async fn read_all(
    env: &Env,
    tool: &str,
    args: Value,
    budget: usize,
    between: impl Fn(),
) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut args = args;
    loop {
        let (out, text) = env.ok(tool, args.clone()).await;
        assert!(
            bytes(&out, &text) <= budget,
            "{} > {budget}",
            bytes(&out, &text)
        );
        let next = out
            .get("next_cursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        match &next {
            Some(cursor) => {
                assert!(out["remaining"].as_u64().unwrap() > 0);
                assert!(
                    text.contains("Shortened to fit the answer budget"),
                    "{text}"
                );
                assert!(text.contains(cursor.as_str()), "{text}");
            }
            None => assert_eq!(out["remaining"], 0),
        }
        pages.push(out);
        between();
        let Some(cursor) = next else {
            return pages;
        };
        args["cursor"] = json!(cursor);
    }
}

#[tokio::test]
async fn a_thousand_long_log_lines_page_and_read_on_exactly_once_in_order() {
    let env = Env::demo().await;
    let id = env.id("shop-api");
    let filler = "x".repeat(180);
    for i in 0..1000 {
        assert!(
            env.mock
                .push_log(id, "application", "info", &format!("line {i:04} {filler}"))
        );
    }
    let args = json!({"deployment_id": "shop-api", "lines": 1000});
    // The app writes on between pages: the read still ends where the first page's ended.
    let pages = read_all(&env, "webops_get_logs", args, DEFAULT_ANSWER_BYTES, || {
        for i in 0..20 {
            env.mock
                .push_log(id, "application", "info", &format!("later {i} {filler}"));
        }
    })
    .await;
    assert!(
        pages.len() > 1,
        "a 1000-line read must not fit in one answer"
    );
    let first_page = pages[0]["entries"].as_array().unwrap().len();
    assert_eq!(pages[0]["remaining"], 1000 - first_page);
    let messages: Vec<String> = pages
        .iter()
        .flat_map(|p| p["entries"].as_array().unwrap().clone())
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..1000).map(|i| format!("line {i:04} {filler}")).collect();
    assert!(
        messages == expected,
        "{} lines, not the 1000 in order",
        messages.len()
    );
}

#[tokio::test]
async fn a_log_cursor_continues_only_the_read_it_came_from() {
    let env = Env::demo().await;
    let id = env.id("shop-api");
    for i in 0..1000 {
        env.mock
            .push_log(id, "error", "error", &format!("{i:04} {}", "y".repeat(300)));
    }
    let (first, _) = env
        .ok(
            "webops_get_logs",
            json!({"deployment_id": id, "log_type": "error", "lines": 1000}),
        )
        .await;
    let cursor = first["next_cursor"].as_str().unwrap();

    let other = env
        .err(
            "webops_get_logs",
            json!({"deployment_id": "search-api", "log_type": "error", "cursor": cursor}),
            ToolErrorKind::InvalidArguments,
        )
        .await;
    assert!(other.contains("another read"), "{other}");
    let wrong_type = env
        .err(
            "webops_get_logs",
            json!({"deployment_id": id, "log_type": "application", "cursor": cursor}),
            ToolErrorKind::InvalidArguments,
        )
        .await;
    assert!(wrong_type.contains("another read"), "{wrong_type}");
    let in_a_list = env
        .err(
            "webops_list_deployments",
            json!({"cursor": cursor}),
            ToolErrorKind::InvalidArguments,
        )
        .await;
    assert!(in_a_list.contains("another read"), "{in_a_list}");
    for forged in ["not-a-cursor", "eyJMb2dzIjp7fX0", &"A".repeat(5000)] {
        let message = env
            .err(
                "webops_get_logs",
                json!({"deployment_id": id, "log_type": "error", "cursor": forged}),
                ToolErrorKind::InvalidArguments,
            )
            .await;
        assert!(message.contains("next_cursor"), "{message}");
    }
}

#[tokio::test]
async fn a_long_deployment_list_pages_under_a_small_budget() {
    let env = Env::with_security(
        MockWebOps::builder()
            .seed(Seed::Empty)
            .generated_deployments(200),
        tool_security().max_answer_bytes(MIN_ANSWER_BYTES),
    )
    .await;
    let pages = read_all(
        &env,
        "webops_list_deployments",
        json!({"limit": 200}),
        MIN_ANSWER_BYTES,
        || {},
    )
    .await;
    assert!(pages.len() > 2, "{} pages", pages.len());
    let ids: Vec<i64> = pages
        .iter()
        .flat_map(|p| p["deployments"].as_array().unwrap().clone())
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 200);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order, each once");
    for page in &pages {
        assert_eq!(page["count"], page["deployments"].as_array().unwrap().len());
    }
}

#[tokio::test]
async fn an_answer_over_the_budget_is_withheld_with_what_to_do() {
    let env = Env::with_security(
        MockWebOps::builder().seed(Seed::Demo),
        tool_security().max_answer_bytes(MIN_ANSWER_BYTES),
    )
    .await;
    let message = env
        .err(
            "webops_security_audit",
            json!({"audit_type": "comprehensive"}),
            ToolErrorKind::TooLarge,
        )
        .await;
    assert!(
        message.contains(&format!("answer budget of {MIN_ANSWER_BYTES} bytes")),
        "{message}"
    );
    assert!(message.contains("Ask for less"), "{message}");
    // Asking for less fits.
    let demo = Env::with_security(
        MockWebOps::builder().seed(Seed::Demo),
        tool_security().max_answer_bytes(MIN_ANSWER_BYTES),
    )
    .await;
    demo.ok(
        "webops_security_audit",
        json!({"deployment_id": "shop-api", "audit_type": "basic"}),
    )
    .await;
    let audit = env.audit.records();
    assert!(
        audit.iter().any(|r| r["error"]["kind"] == "too_large"),
        "{audit:?}"
    );
}
