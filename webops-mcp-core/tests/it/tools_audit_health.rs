//! `webops_security_audit` and `webops_system_health` through the pipeline against the
//! testkit's demo platform over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use crate::support::{Env, find};
use serde_json::{Value, json};
use webops_mcp_core::ToolErrorKind;
use webops_mcp_testkit::Fault;

const AUDIT: &str = "webops_security_audit";
const HEALTH: &str = "webops_system_health";

fn rule_ids(out: &Value, deployment: &str) -> BTreeSet<String> {
    out["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["deployment"]["name"] == deployment)
        .map(|f| f["rule_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn shop_api_yields_the_expected_findings() {
    let env = Env::demo().await;
    let (out, text) = env.ok(AUDIT, json!({"deployment_id": "shop-api"})).await;
    let expected: BTreeSet<String> = [
        "WEBOPS-SEC-001", // ssl off in production
        "WEBOPS-SEC-002", // DEBUG=True
        "WEBOPS-SEC-004", // django-insecure- key
        "WEBOPS-SEC-005", // ALLOWED_HOSTS=*
        "WEBOPS-SEC-009", // shop-db public
        "WEBOPS-SEC-011", // one instance
        "WEBOPS-SEC-012", // no memory limit
        "WEBOPS-SEC-015", // AWS keys
        "WEBOPS-SEC-016", // DATABASE_URL with password
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    // WEBOPS-SEC-007 (Python 3.11 near its end of life) depends on today's date.
    let mut found = rule_ids(&out, "shop-api");
    found.remove("WEBOPS-SEC-007");
    assert_eq!(found, expected, "{text}");
    assert_eq!(out["deployments"].as_array().unwrap().len(), 1);
    assert_eq!(out["deployments"][0]["score"], 0);
    assert_eq!(out["score"], 0);
    let key = find(&out["findings"], "rule_id", "WEBOPS-SEC-004");
    assert_eq!(key["severity"], "critical");
    assert!(
        key["evidence"]
            .as_str()
            .unwrap()
            .contains("[redacted, 24 chars]")
    );
    assert!(key["recommendation"].is_string());
    let aws: Vec<&Value> = out["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == "WEBOPS-SEC-015")
        .collect();
    assert_eq!(aws.len(), 2, "access key id and secret key");
    for secret in [
        "django-insecure-changeme",
        "S3cretPass",
        "AKIAIOSFODNN7EXAMPLE",
    ] {
        assert!(
            !text.contains(secret) && !out.to_string().contains(secret),
            "{secret}"
        );
    }
}

#[tokio::test]
async fn the_well_configured_app_scores_high() {
    let env = Env::demo().await;
    let (out, _) = env
        .ok(AUDIT, json!({"deployment_id": "billing-portal"}))
        .await;
    assert!(out["score"].as_u64().unwrap() >= 90, "{out}");
    assert_eq!(out["counts"]["critical"], 0);
    assert_eq!(out["counts"]["high"], 0);
}

#[tokio::test]
async fn the_whole_platform_basic_is_a_subset_of_comprehensive() {
    let env = Env::demo().await;
    let (basic, _) = env.ok(AUDIT, json!({"audit_type": "basic"})).await;
    let (full, text) = env.ok(AUDIT, json!({})).await;
    assert_eq!(full["audit_type"], "comprehensive");
    assert_eq!(full["deployments"].as_array().unwrap().len(), 8);
    let pairs = |out: &Value| -> BTreeSet<(String, String)> {
        out["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["deployment"]["name"].as_str().unwrap().to_owned(),
                    f["rule_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let (b, f) = (pairs(&basic), pairs(&full));
    assert!(b.is_subset(&f));
    assert!(b.len() < f.len());
    assert!(
        basic["rules_run"].as_array().unwrap().len() < full["rules_run"].as_array().unwrap().len()
    );
    // The other demo problems are found too.
    assert!(rule_ids(&full, "legacy-blog").contains("WEBOPS-SEC-006"));
    assert!(rule_ids(&full, "legacy-blog").contains("WEBOPS-SEC-008"));
    assert!(rule_ids(&full, "legacy-blog").contains("WEBOPS-SEC-010"));
    assert!(rule_ids(&full, "search-api").contains("WEBOPS-SEC-013"));
    assert!(rule_ids(&full, "search-api").contains("WEBOPS-SEC-014"));
    let shop = find(&full["deployments"], "name", "shop-api")["score"]
        .as_u64()
        .unwrap();
    let billing = find(&full["deployments"], "name", "billing-portal")["score"]
        .as_u64()
        .unwrap();
    assert!(billing > shop);
    assert!(text.contains("[CRITICAL] WEBOPS-SEC-004"), "{text}");

    let (quiet, _) = env
        .ok(AUDIT, json!({"include_recommendations": false}))
        .await;
    assert!(
        quiet["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f.get("recommendation").is_none())
    );
}

#[tokio::test]
async fn compliance_maps_findings_to_controls() {
    let env = Env::demo().await;
    let (out, text) = env
        .ok(
            AUDIT,
            json!({"deployment_id": "shop-api", "audit_type": "compliance"}),
        )
        .await;
    let ssl = find(&out["findings"], "rule_id", "WEBOPS-SEC-001");
    let controls: Vec<&str> = ssl["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        controls.contains(&"OWASP ASVS 4.0.3 V9.1.1"),
        "{controls:?}"
    );
    assert!(controls.contains(&"PCI DSS 4.0 4.2.1"), "{controls:?}");
    let frameworks = out["compliance"].as_array().unwrap();
    assert_eq!(frameworks.len(), 4);
    for fw in frameworks {
        assert_eq!(fw["status"], "fail");
        assert!(!fw["controls_failed"].as_array().unwrap().is_empty());
    }
    assert!(text.contains("not a certification"));
}

#[tokio::test]
async fn audit_survives_a_webops_without_database_listing() {
    let env = Env::demo().await;
    env.mock.inject(Fault::status(405).on_path("/databases/"));
    let (out, _) = env.ok(AUDIT, json!({"deployment_id": "shop-api"})).await;
    assert!(out["notes"][0].as_str().unwrap().contains("skipped"));
    assert!(!rule_ids(&out, "shop-api").contains("WEBOPS-SEC-009"));
    env.err(
        AUDIT,
        json!({"audit_type": "full"}),
        ToolErrorKind::InvalidArguments,
    )
    .await;
}

#[tokio::test]
async fn a_deployment_that_cannot_be_read_is_noted_and_the_others_audited() {
    let env = Env::demo().await;
    let id = env.id("analytics-dashboard");
    env.mock.inject(
        Fault::status(500)
            .on_method("GET")
            .on_path(&format!("/deployments/{id}/")),
    );
    let (out, text) = env.ok(AUDIT, json!({})).await;
    let audited: Vec<&str> = out["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(audited.len(), 7, "{audited:?}");
    assert!(!audited.contains(&"analytics-dashboard"));
    assert!(audited.contains(&"shop-api"));
    let note = format!("'analytics-dashboard' (id {id}) could not be read and was not audited");
    assert!(
        out["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains(&note)),
        "{}",
        out["notes"]
    );
    assert!(text.contains(&note), "{text}");

    // Not one deployment readable: an error, not a clean report of nothing.
    for name in &audited {
        let id = env.id(name);
        env.mock.inject(
            Fault::status(503)
                .on_method("GET")
                .on_path(&format!("/deployments/{id}/")),
        );
    }
    env.mock.inject(
        Fault::status(503)
            .on_method("GET")
            .on_path(&format!("/deployments/{id}/")),
    );
    env.err(AUDIT, json!({}), ToolErrorKind::Unavailable).await;
}

#[tokio::test]
async fn health_with_everything() {
    let env = Env::demo().await;
    let (out, text) = env.ok(HEALTH, json!({"time_range": "24h"})).await;
    assert!(out["overall_status"].is_string());
    assert_eq!(out["deployments"]["total"], 8);
    assert!(out["resources"]["cpu_percent"].is_number());
    let m = &out["metrics"];
    assert_eq!(m["time_range"], "24h");
    assert!(m["samples"].as_u64().unwrap() > 0);
    let cpu = &m["cpu_percent"];
    assert!(cpu["min"].as_f64().unwrap() <= cpu["avg"].as_f64().unwrap());
    assert!(cpu["avg"].as_f64().unwrap() <= cpu["max"].as_f64().unwrap());
    assert!(text.contains("Deployments: 8 in all"), "{text}");
    let period = env
        .mock
        .requests()
        .into_iter()
        .find(|r| r.path.contains("/monitoring/metrics/"))
        .and_then(|r| r.query)
        .unwrap();
    assert!(period.contains("period=24h"), "{period}");
}

#[tokio::test]
async fn health_honours_the_include_flags() {
    let env = Env::demo().await;
    let (out, text) = env
        .ok(
            HEALTH,
            json!({"include_deployments": false, "include_resources": false}),
        )
        .await;
    for absent in ["deployments", "resources", "metrics"] {
        assert!(out.get(absent).is_none(), "{absent}: {out}");
    }
    assert!(
        !text.contains("Deployments:") && !text.contains("CPU"),
        "{text}"
    );
    assert!(
        env.mock
            .requests()
            .iter()
            .all(|r| !r.path.contains("/monitoring/metrics/"))
    );
    for bad in [
        json!({"time_range": "30d"}),
        json!({"include_resources": "yes"}),
    ] {
        env.err(HEALTH, bad, ToolErrorKind::InvalidArguments).await;
    }
}

#[tokio::test]
async fn health_when_webops_is_down() {
    let env = Env::demo().await;
    env.mock
        .inject(Fault::html(502).on_path("/monitoring/health/"));
    let msg = env.err(HEALTH, json!({}), ToolErrorKind::Unavailable).await;
    assert!(
        msg.contains("unreachable") || msg.contains("unavailable"),
        "{msg}"
    );
}
