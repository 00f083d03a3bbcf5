//! Test fixtures of the rules: a deployment that passes every rule, variations of it, and
//! running one rule at a fixed `now`.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use webops_client::{Database, DeploymentDetail};

use super::{Hit, RULES, Severity, Subject};
use crate::tools::test_support::detail;

pub(super) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// A deployment that passes every rule.
pub(super) fn good() -> Value {
    json!({
        "environment": "production", "ssl_enabled": true, "instances": 2,
        "python_version": "3.12", "memory_limit": "512M",
        "repo_url": "https://github.com/acme/shop.git",
        "env_vars": {
            "DEBUG": "False",
            "SECRET_KEY": "q8#Zr!t2Vw$e9Lp@m4Xk^b7Nc&y1Hs*d6Gf(u3Ja)o5Ti-l0Ru+QzWxEvCbNmKa",
            "ALLOWED_HOSTS": "shop.example.com,www.shop.example.com",
            "SESSION_COOKIE_SECURE": "True",
            "CSRF_COOKIE_SECURE": "True"
        }
    })
}

pub(super) fn with(overrides: Value) -> DeploymentDetail {
    let mut base = good();
    for (k, v) in overrides.as_object().unwrap() {
        if k == "env_vars" {
            for (ek, ev) in v.as_object().unwrap() {
                base["env_vars"][ek] = ev.clone();
            }
        } else {
            base[k] = v.clone();
        }
    }
    detail(base)
}

pub(super) fn database(public: bool, ssl: bool) -> Database {
    serde_json::from_value(json!({
        "id": 1, "name": "shop_db", "engine": "postgresql", "host": "db", "port": 5432,
        "size_mb": 10.0, "connection_count": 3, "publicly_accessible": public,
        "ssl_required": ssl, "deployment": {"id": 1, "name": "app"}
    }))
    .unwrap()
}

pub(super) fn run(id: &str, d: &DeploymentDetail, dbs: &[&Database]) -> Vec<Hit> {
    let rule = RULES.iter().find(|r| r.id == id).unwrap();
    (rule.check)(&Subject {
        deployment: d,
        databases: dbs,
        now: now(),
        panel: None,
    })
}

pub(super) fn fires(id: &str, d: &DeploymentDetail) -> Option<Severity> {
    run(id, d, &[]).first().map(|h| h.severity)
}
