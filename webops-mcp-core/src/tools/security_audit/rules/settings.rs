//! Rules over a deployment's settings: HTTPS, debug mode, the secret key, allowed hosts and
//! cookie flags.

use std::collections::BTreeSet;

use webops_client::Environment;

use super::{Hit, Severity, Subject, hit};
use crate::redact::mask;

pub(super) fn truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on" | "y" | "t"
    )
}

pub(super) fn falsy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "0" | "false" | "no" | "off" | "n" | "f"
    )
}

pub(super) fn https_disabled(s: &Subject<'_>) -> Vec<Hit> {
    let d = s.deployment;
    if d.ssl_enabled {
        return vec![];
    }
    match d.environment {
        Environment::Production => hit(
            Severity::High,
            "ssl_enabled is false in production: traffic, cookies and credentials travel \
             unencrypted",
        ),
        Environment::Staging => hit(Severity::Low, "ssl_enabled is false in staging"),
        _ => hit(
            Severity::Info,
            format!(
                "ssl_enabled is false in {}; acceptable for testing, never for real users",
                d.environment
            ),
        ),
    }
}

pub(super) fn debug_in_production(s: &Subject<'_>) -> Vec<Hit> {
    match s.env(&["DEBUG", "DJANGO_DEBUG"]) {
        Some((name, value)) if s.production() && truthy(value) => {
            hit(Severity::High, format!("{name} is true in production"))
        }
        _ => vec![],
    }
}

pub(super) const SECRET_KEY_NAMES: &[&str] = &["SECRET_KEY", "DJANGO_SECRET_KEY"];

pub(super) fn secret_key_missing(s: &Subject<'_>) -> Vec<Hit> {
    let django = s.deployment.project_type.eq_ignore_ascii_case("django");
    if !django || s.env(SECRET_KEY_NAMES).is_some_and(|(_, v)| !v.is_empty()) {
        return vec![];
    }
    hit(
        Severity::Medium,
        "no SECRET_KEY (or DJANGO_SECRET_KEY) environment variable is set; the app falls back \
         to a key in its code or settings",
    )
}

/// Secret key values published in tutorials, templates and defaults.
pub(super) const KNOWN_DEFAULT_KEYS: &[&str] = &[
    "changeme",
    "change-me",
    "change_me",
    "secret",
    "secret-key",
    "secret_key",
    "secretkey",
    "mysecretkey",
    "password",
    "default",
    "django",
    "development",
    "dev",
    "test",
    "insecure",
    "your-secret-key",
    "your_secret_key",
    "your-secret-key-here",
    "notsecret",
    "xxx",
];

/// Django's own minimum length and unique-character count for a secret key.
pub(super) const MIN_SECRET_KEY_LEN: usize = 50;
pub(super) const MIN_SECRET_KEY_UNIQUE: usize = 5;
/// Below this many bits of Shannon entropy per character a key is too predictable.
pub(super) const MIN_BITS_PER_CHAR: f64 = 3.0;

pub(super) fn shannon_bits_per_char(value: &str) -> f64 {
    let chars: Vec<char> = value.chars().collect();
    if chars.is_empty() {
        return 0.0;
    }
    let mut counts = std::collections::HashMap::new();
    for c in &chars {
        *counts.entry(*c).or_insert(0u32) += 1;
    }
    let n = chars.len() as f64;
    counts
        .values()
        .map(|&k| {
            let p = f64::from(k) / n;
            -p * p.log2()
        })
        .sum()
}

pub(super) fn secret_key_weak(s: &Subject<'_>) -> Vec<Hit> {
    let Some((name, value)) = s.env(SECRET_KEY_NAMES) else {
        return vec![];
    };
    if value.is_empty() {
        return vec![];
    }
    let shown = mask(value);
    let lower = value.trim().to_ascii_lowercase();
    if lower.starts_with("django-insecure-") {
        return hit(
            Severity::Critical,
            format!(
                "{name} {shown} is a generated development key (it carries Django's \
                 'django-insecure-' prefix)"
            ),
        );
    }
    if KNOWN_DEFAULT_KEYS.contains(&lower.as_str()) {
        return hit(
            Severity::Critical,
            format!("{name} {shown} is a well-known default value"),
        );
    }
    let length = value.chars().count();
    if length < MIN_SECRET_KEY_LEN {
        return hit(
            Severity::High,
            format!("{name} {shown} is shorter than {MIN_SECRET_KEY_LEN} characters"),
        );
    }
    let unique = value.chars().collect::<BTreeSet<_>>().len();
    let bits = shannon_bits_per_char(value);
    if unique < MIN_SECRET_KEY_UNIQUE || bits < MIN_BITS_PER_CHAR {
        return hit(
            Severity::High,
            format!(
                "{name} {shown} has low entropy ({unique} distinct characters, {bits:.1} bits \
                 per character)"
            ),
        );
    }
    vec![]
}

pub(super) fn allowed_hosts_wildcard(s: &Subject<'_>) -> Vec<Hit> {
    let Some((name, value)) = s.env(&["ALLOWED_HOSTS", "DJANGO_ALLOWED_HOSTS"]) else {
        return vec![];
    };
    let wildcard = value
        .split(|c: char| c == ',' || c.is_whitespace() || c == '[' || c == ']')
        .map(|h| h.trim_matches(|c| c == '"' || c == '\''))
        .any(|h| h == "*");
    if !wildcard {
        return vec![];
    }
    let severity = if s.deployment.environment == Environment::Development {
        Severity::Low
    } else {
        Severity::Medium
    };
    hit(
        severity,
        format!("{name} contains '*': any Host header is accepted"),
    )
}

pub(super) fn insecure_cookies(s: &Subject<'_>) -> Vec<Hit> {
    if !s.production() {
        return vec![];
    }
    let off: Vec<&str> = ["SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"]
        .into_iter()
        .filter(|name| s.env(&[name]).is_some_and(|(_, v)| falsy(v)))
        .collect();
    if off.is_empty() {
        return vec![];
    }
    hit(
        Severity::Medium,
        format!("{} set to false in production", off.join(" and ")),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::tools::security_audit::rules::fixtures::*;

    #[test]
    fn https() {
        assert_eq!(
            fires("WEBOPS-SEC-001", &with(json!({"ssl_enabled": false}))),
            Some(Severity::High)
        );
        assert_eq!(
            fires(
                "WEBOPS-SEC-001",
                &with(json!({"ssl_enabled": false, "environment": "staging"}))
            ),
            Some(Severity::Low)
        );
        assert_eq!(
            fires(
                "WEBOPS-SEC-001",
                &with(json!({"ssl_enabled": false, "environment": "development"}))
            ),
            Some(Severity::Info)
        );
        assert_eq!(fires("WEBOPS-SEC-001", &with(json!({}))), None);
    }

    #[test]
    fn debug() {
        for value in ["True", "1", "yes", "on"] {
            let d = with(json!({"env_vars": {"DEBUG": value}}));
            assert_eq!(fires("WEBOPS-SEC-002", &d), Some(Severity::High), "{value}");
        }
        assert_eq!(
            fires(
                "WEBOPS-SEC-002",
                &with(json!({"environment": "development", "env_vars": {"DEBUG": "True"}}))
            ),
            None
        );
        assert_eq!(
            fires("WEBOPS-SEC-002", &with(json!({"env_vars": {"DEBUG": "0"}}))),
            None
        );
    }

    #[test]
    fn secret_key_missing_only_for_django() {
        let mut d = with(json!({}));
        d.env_vars = webops_client::EnvVars::default();
        assert_eq!(fires("WEBOPS-SEC-003", &d), Some(Severity::Medium));
        d.deployment.project_type = "static".into();
        assert_eq!(fires("WEBOPS-SEC-003", &d), None);
        assert_eq!(fires("WEBOPS-SEC-003", &with(json!({}))), None);
    }

    #[test]
    fn weak_secret_keys_and_no_value_in_evidence() {
        let cases = [
            ("changeme", Severity::Critical),
            (
                "django-insecure-abcdefghijklmnopqrstuvwxyz0123456789!@#$%^&*()",
                Severity::Critical,
            ),
            ("short-but-random-Xy7#", Severity::High),
            (&"ab".repeat(30) as &str, Severity::High),
        ];
        for (value, severity) in cases {
            let d = with(json!({"env_vars": {"SECRET_KEY": value}}));
            let hits = run("WEBOPS-SEC-004", &d, &[]);
            assert_eq!(hits.len(), 1, "{value}");
            assert_eq!(hits[0].severity, severity, "{value}");
            assert!(!hits[0].evidence.contains(value), "{}", hits[0].evidence);
            assert!(hits[0].evidence.contains("chars]"));
        }
        assert_eq!(fires("WEBOPS-SEC-004", &with(json!({}))), None);
    }

    #[test]
    fn allowed_hosts() {
        for value in ["*", "shop.example.com, *", "[\"*\"]"] {
            let d = with(json!({"env_vars": {"ALLOWED_HOSTS": value}}));
            assert_eq!(
                fires("WEBOPS-SEC-005", &d),
                Some(Severity::Medium),
                "{value}"
            );
        }
        let dev = with(json!({"environment": "development", "env_vars": {"ALLOWED_HOSTS": "*"}}));
        assert_eq!(fires("WEBOPS-SEC-005", &dev), Some(Severity::Low));
        let sub = with(json!({"env_vars": {"ALLOWED_HOSTS": ".example.com"}}));
        assert_eq!(fires("WEBOPS-SEC-005", &sub), None);
    }

    #[test]
    fn cookies() {
        let d = with(json!({"env_vars": {"SESSION_COOKIE_SECURE": "False"}}));
        let hits = run("WEBOPS-SEC-017", &d, &[]);
        assert_eq!(
            hits[0].evidence,
            "SESSION_COOKIE_SECURE set to false in production"
        );
        let dev = with(json!({"environment": "development",
                              "env_vars": {"CSRF_COOKIE_SECURE": "false"}}));
        assert!(run("WEBOPS-SEC-017", &dev, &[]).is_empty());
    }
}
