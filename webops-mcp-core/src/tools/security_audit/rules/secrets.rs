//! Rules that find credentials where they do not belong: in env var values, in URLs, and in
//! the repository URL (which must also not be plain http).

use std::sync::LazyLock;

use regex::Regex;

use super::{Hit, Severity, Subject};
use crate::redact::{credentials_in, mask};

/// The userinfo part of `url` (`user:password` in `https://user:password@host/`), if any.
pub(super) fn userinfo(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    authority.rsplit_once('@').map(|(info, _)| info)
}

pub(super) fn insecure_repository(s: &Subject<'_>) -> Vec<Hit> {
    let url = s.deployment.repo_url.trim();
    let lower = url.to_ascii_lowercase();
    let mut hits = Vec::new();
    if let Some(info) = userinfo(url)
        && (info.contains(':') || info.len() >= 20)
    {
        hits.push(Hit {
            severity: Severity::High,
            evidence: format!(
                "the repository URL embeds credentials {} in its user part",
                mask(info)
            ),
        });
    }
    for scheme in ["http://", "git://", "ftp://"] {
        if lower.starts_with(scheme) {
            hits.push(Hit {
                severity: Severity::Medium,
                evidence: format!(
                    "the repository URL uses unencrypted {}: code can be altered in transit",
                    scheme.trim_end_matches("://")
                ),
            });
        }
    }
    hits
}

pub(super) static AWS_SECRET_VALUE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9/+=]{40}$").ok());

pub(super) fn credential_kind(name: &str, value: &str) -> Option<&'static str> {
    if let Some(credential) = credentials_in(value).find(|c| c.live) {
        return Some(credential.what);
    }
    let upper = name.to_ascii_uppercase();
    let aws_secret = upper.contains("AWS") && upper.contains("SECRET");
    if aws_secret
        && AWS_SECRET_VALUE
            .as_ref()
            .is_some_and(|re| re.is_match(value.trim()))
    {
        return Some("an AWS secret access key");
    }
    None
}

pub(super) fn credentials_in_env(s: &Subject<'_>) -> Vec<Hit> {
    s.deployment
        .env_vars
        .iter()
        .filter_map(|(name, value)| {
            credential_kind(name, value).map(|what| Hit {
                severity: Severity::High,
                evidence: format!("{name} holds {what} {}", mask(value)),
            })
        })
        .collect()
}

pub(super) fn credentials_in_urls(s: &Subject<'_>) -> Vec<Hit> {
    s.deployment
        .env_vars
        .iter()
        .filter(|(_, value)| {
            value
                .split_whitespace()
                .any(|word| userinfo(word).is_some_and(|info| info.contains(':')))
        })
        .map(|(name, value)| Hit {
            severity: Severity::Medium,
            evidence: format!("{name} {} is a URL with an embedded password", mask(value)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::tools::security_audit::rules::fixtures::*;

    #[test]
    fn repository_urls() {
        let http = with(json!({"repo_url": "http://git.example.com/shop.git"}));
        assert_eq!(fires("WEBOPS-SEC-008", &http), Some(Severity::Medium));
        let creds = with(json!({"repo_url": "https://bot:hunter2hunter2@github.com/a/b.git"}));
        let hits = run("WEBOPS-SEC-008", &creds, &[]);
        assert_eq!(hits[0].severity, Severity::High);
        assert!(!hits[0].evidence.contains("hunter2"));
        for ok in [
            "https://github.com/a/b.git",
            "git@github.com:a/b.git",
            "ssh://git@github.com/a/b.git",
        ] {
            assert_eq!(
                fires("WEBOPS-SEC-008", &with(json!({"repo_url": ok}))),
                None,
                "{ok}"
            );
        }
    }

    #[test]
    fn credentials_in_env_values_are_named_not_shown() {
        let secrets = [
            ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
            (
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
            ("GITHUB_TOKEN", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
            ("STRIPE_KEY", "sk_live_abcdefghijklmnop1234"),
            ("SLACK", "xoxb-123456789012-abcdefghij"),
            (
                "GH_PAT",
                "github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyz0123456789",
            ),
            ("MAPS_KEY", "AIzaSyA-abcdefghijklmnopqrstuvwxyz0123-"),
            ("STRIPE_RESTRICTED", "rk_live_abcdefghijklmnop1234"),
            (
                "ALERTS",
                "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX",
            ),
            (
                "TLS_KEY",
                "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
            ),
        ];
        for (name, value) in secrets {
            let d = with(json!({"env_vars": {name: value}}));
            let hits = run("WEBOPS-SEC-015", &d, &[]);
            assert_eq!(hits.len(), 1, "{name}");
            assert!(hits[0].evidence.starts_with(name));
            assert!(!hits[0].evidence.contains(value));
        }
        let test_key = with(json!({"env_vars": {"STRIPE_KEY": "sk_test_abcdefghijklmnop1234"}}));
        assert!(run("WEBOPS-SEC-015", &test_key, &[]).is_empty());
        assert!(run("WEBOPS-SEC-015", &with(json!({})), &[]).is_empty());
    }

    #[test]
    fn credentials_in_urls() {
        let d =
            with(json!({"env_vars": {"DATABASE_URL": "postgres://shop:pa55word@db:5432/shop"}}));
        let hits = run("WEBOPS-SEC-016", &d, &[]);
        assert_eq!(hits.len(), 1);
        assert!(hits[0].evidence.starts_with("DATABASE_URL"));
        assert!(!hits[0].evidence.contains("pa55word"));
        let no_password = with(
            json!({"env_vars": {"DATABASE_URL": "postgres://db:5432/shop",
                                                    "REDIS_URL": "redis://cache@redis:6379"}}),
        );
        assert!(run("WEBOPS-SEC-016", &no_password, &[]).is_empty());
    }
}
