//! Keeping secrets out of audit records and tool output: secret-looking names, masking of
//! values, and masking of secret-looking substrings in free text such as log lines.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Regex, RegexSet};
use serde_json::Value;

/// What a masked value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Name fragments that mark a value as secret (matched case-insensitively).
const SECRET_NAME_PARTS: &[&str] = &[
    "key",
    "secret",
    "password",
    "passwd",
    "pwd",
    "token",
    "credential",
    "auth",
    "private",
    "signature",
    "cookie",
    "session",
    "dsn",
];

/// Object members whose every value is secret, whatever the member names inside.
const SECRET_CONTAINERS: &[&str] = &["env_vars", "env", "environment_variables"];

/// Whether a field or environment variable `name` suggests a secret value
/// (`SECRET_KEY`, `api_token`, `DB_PASSWORD`, `AWS_SECRET_ACCESS_KEY`, ...).
pub fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_NAME_PARTS.iter().any(|part| lower.contains(part))
}

/// A masked rendering of a secret `value` that tells its length and nothing else.
pub fn mask(value: &str) -> String {
    format!("[redacted, {} chars]", value.chars().count())
}

/// Redacts a JSON value in place: members with secret-looking names and every value inside
/// an `env_vars`-like member become [`REDACTED`]; string values anywhere are passed through
/// [`mask_secrets_in_text`].
pub fn redact_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (name, member) in map.iter_mut() {
                if SECRET_CONTAINERS.contains(&name.to_ascii_lowercase().as_str()) {
                    redact_all_leaves(member);
                } else if is_secret_name(name) && !member.is_boolean() && !member.is_null() {
                    *member = Value::String(REDACTED.to_owned());
                } else {
                    redact_json(member);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        Value::String(s) => {
            if let Cow::Owned(masked) = mask_secrets_in_text(s) {
                *s = masked;
            }
        }
        _ => {}
    }
}

fn redact_all_leaves(value: &mut Value) {
    match value {
        Value::Object(map) => map.values_mut().for_each(redact_all_leaves),
        Value::Array(items) => items.iter_mut().for_each(redact_all_leaves),
        Value::Null => {}
        other => *other = Value::String(REDACTED.to_owned()),
    }
}

/// `NAME=value`, `NAME: value`, `"name": "value"` and `NAME='quoted value'` where NAME looks
/// secret: group 1 is the name and separator (kept), group 2 the value (masked, quotes kept).
const SECRET_ASSIGNMENT_PATTERN: &str = r#"(?i)\b([A-Za-z0-9_.-]*(?:key|secret|password|passwd|pwd|token|credential|auth|private|signature|cookie|session|dsn)[A-Za-z0-9_.-]*"?\s*[:=]\s*)('[^']*'|"[^"]*"|[^\s"',;&]+)"#;

static SECRET_ASSIGNMENT: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(SECRET_ASSIGNMENT_PATTERN).ok());

/// Other patterns of secrets in free text, each with the replacement that keeps the
/// non-secret part.
const TEXT_PATTERN_SOURCES: [(&str, &str); 6] = [
    // PEM private keys, whole block.
    (
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)",
        "[redacted private key]",
    ),
    // URLs with credentials: scheme://user:password@host
    (
        r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]+):[^\s@/]+@",
        "${1}:[redacted]@",
    ),
    // Authorization headers and bearer tokens.
    (
        r"(?i)\b(authorization\s*[:=]\s*)?(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}",
        "${1}${2} [redacted]",
    ),
    // AWS access key ids.
    (r"\b(AKIA|ASIA)[0-9A-Z]{16}\b", "[redacted aws key id]"),
    // GitHub, Slack, Stripe and similar prefixed tokens.
    (
        r"\b(gh[pousr]_[A-Za-z0-9]{20,}|xox[abpors]-[A-Za-z0-9-]{10,}|sk_(live|test)_[A-Za-z0-9]{16,}|glpat-[A-Za-z0-9_-]{20,})\b",
        "[redacted token]",
    ),
    // JSON Web Tokens.
    (
        r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b",
        "[redacted jwt]",
    ),
];

static TEXT_PATTERNS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    TEXT_PATTERN_SOURCES
        .into_iter()
        .filter_map(|(pattern, replacement)| Some((Regex::new(pattern).ok()?, replacement)))
        .collect()
});

/// Every pattern above in one set: one scan tells that a text holds nothing to mask, which
/// is what almost every text (names, URLs, most log lines) is.
static ANY_SECRET: LazyLock<Option<RegexSet>> = LazyLock::new(|| {
    RegexSet::new(
        TEXT_PATTERN_SOURCES
            .iter()
            .map(|(pattern, _)| *pattern)
            .chain([SECRET_ASSIGNMENT_PATTERN]),
    )
    .ok()
});

/// Masks secret-looking substrings of free text (log lines, evidence): `SECRET_KEY=...`,
/// `password: '...'`, bearer tokens, credentials in URLs, AWS key ids, JWTs, private keys.
/// Borrows when nothing was masked.
pub fn mask_secrets_in_text(text: &str) -> Cow<'_, str> {
    if let Some(any) = ANY_SECRET.as_ref()
        && !any.is_match(text)
    {
        return Cow::Borrowed(text);
    }
    let mut out = Cow::Borrowed(text);
    for (regex, replacement) in TEXT_PATTERNS.iter() {
        if regex.is_match(&out) {
            out = Cow::Owned(regex.replace_all(&out, *replacement).into_owned());
        }
    }
    if let Some(regex) = SECRET_ASSIGNMENT.as_ref()
        && regex.is_match(&out)
    {
        let masked = regex.replace_all(&out, |caps: &regex::Captures<'_>| {
            let value = &caps[2];
            let quote = match value.chars().next() {
                Some(q @ ('\'' | '"')) => q.to_string(),
                _ => String::new(),
            };
            format!("{}{quote}{REDACTED}{quote}", &caps[1])
        });
        out = Cow::Owned(masked.into_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_text_pattern_compiles() {
        assert_eq!(TEXT_PATTERNS.len(), 6);
        assert!(SECRET_ASSIGNMENT.is_some());
        assert_eq!(ANY_SECRET.as_ref().map(RegexSet::len), Some(7));
    }

    #[test]
    fn secret_names() {
        for name in [
            "SECRET_KEY",
            "api_token",
            "DB_PASSWORD",
            "AWS_SECRET_ACCESS_KEY",
            "x-api-key",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["DEBUG", "ALLOWED_HOSTS", "app_name", "branch"] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn text_masking() {
        let cases = [
            ("SECRET_KEY=hunter2hunter2", "hunter2"),
            ("password: s3cr3tvalue", "s3cr3tvalue"),
            ("Authorization: Bearer abcdefgh12345678", "abcdefgh12345678"),
            ("connect postgres://app:pa55word@db:5432/app", "pa55word"),
            ("key id AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
            ("{\"api_key\": \"zzzyyyxxx\"}", "zzzyyyxxx"),
            (
                "SECRET_KEY='django-insecure-abc xyz'",
                "django-insecure-abc",
            ),
            ("api_token=\"t0k3n with space\"", "t0k3n"),
            (
                "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijk",
                "eyJzdWIiOiIxMjM0NTY3ODkwIn0",
            ),
        ];
        for (text, secret) in cases {
            let masked = mask_secrets_in_text(text);
            assert!(!masked.contains(secret), "{text} -> {masked}");
        }
        assert_eq!(
            mask_secrets_in_text("settings: SECRET_KEY='abc' DEBUG=True"),
            "settings: SECRET_KEY='[redacted]' DEBUG=True"
        );
        assert!(matches!(
            mask_secrets_in_text("GET /health 200 12ms"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn json_redaction() {
        let mut v = json!({
            "app_name": "shop",
            "api_key": "abc",
            "env_vars": {"DEBUG": "True", "NESTED": {"X": "y"}},
            "ssl_enabled": true,
            "note": "uses SECRET_KEY=topsecret"
        });
        redact_json(&mut v);
        assert_eq!(v["app_name"], "shop");
        assert_eq!(v["api_key"], REDACTED);
        assert_eq!(v["env_vars"]["DEBUG"], REDACTED);
        assert_eq!(v["env_vars"]["NESTED"]["X"], REDACTED);
        assert_eq!(v["ssl_enabled"], true);
        assert!(!v["note"].as_str().unwrap().contains("topsecret"));
    }
}
