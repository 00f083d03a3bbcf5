//! Keeping secrets out of audit records and tool output: secret-looking names, masking of
//! values, and masking of secret-looking substrings in free text such as log lines.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Regex, RegexSet};
use serde_json::{Map, Value};

/// What a whole secret is replaced with: the client's marker, so one answer never mixes two.
pub(crate) use webops_client::REDACTED;

/// Where a replacement below puts [`REDACTED`].
const MARKER: &str = "{REDACTED}";

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
pub(crate) fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_NAME_PARTS.iter().any(|part| lower.contains(part))
}

/// A masked rendering of a secret `value` that tells its length and nothing else.
pub(crate) fn mask(value: &str) -> String {
    format!("[redacted, {} chars]", value.chars().count())
}

/// Redacts a JSON value in place: members with secret-looking names and every value inside
/// an `env_vars`-like member become [`REDACTED`]; string values and member names anywhere
/// are passed through [`mask_secrets_in_text`].
pub(crate) fn redact_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            mask_keys(map);
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

/// Masks secret-looking member names (a token pasted as a key, `password=...`); a masked
/// name that collides with another gets a ` (2)`, ` (3)`, ... suffix so no member is lost.
fn mask_keys(map: &mut Map<String, Value>) {
    if !map
        .keys()
        .any(|name| matches!(mask_secrets_in_text(name), Cow::Owned(_)))
    {
        return;
    }
    for (name, member) in std::mem::take(map) {
        let masked = mask_secrets_in_text(&name).into_owned();
        let mut unique = masked.clone();
        let mut n = 2;
        while map.contains_key(&unique) {
            unique = format!("{masked} ({n})");
            n += 1;
        }
        map.insert(unique, member);
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

/// A kind of credential whose format gives it away wherever it appears: masked in free text
/// and, when `live`, a finding of the security audit when an env var holds one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Credential {
    /// What it is, e.g. "a GitHub token".
    pub(crate) what: &'static str,
    /// The regular expression that finds it.
    pattern: &'static str,
    /// What free text shows instead ([`MARKER`] stands for [`REDACTED`]).
    replacement: &'static str,
    /// Whether it grants access to something real (a Stripe test key does not).
    pub(crate) live: bool,
}

/// Every credential format known, the one list used by the masking here and by the audit.
const CREDENTIALS: &[Credential] = &[
    Credential {
        what: "a private key",
        // The whole PEM block, or to the end of the text when the block is cut.
        pattern: r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)",
        replacement: "[redacted private key]",
        live: true,
    },
    Credential {
        what: "an AWS access key id",
        pattern: r"\b(AKIA|ASIA)[0-9A-Z]{16}\b",
        replacement: "[redacted aws key id]",
        live: true,
    },
    Credential {
        what: "a GitHub token",
        pattern: r"\bgh[pousr]_[A-Za-z0-9]{20,}",
        replacement: "[redacted token]",
        live: true,
    },
    Credential {
        what: "a GitHub fine-grained token",
        pattern: r"\bgithub_pat_[A-Za-z0-9_]{20,}",
        replacement: "[redacted token]",
        live: true,
    },
    Credential {
        what: "a Stripe live secret key",
        pattern: r"\b[sr]k_live_[A-Za-z0-9]{16,}",
        replacement: "[redacted token]",
        live: true,
    },
    Credential {
        what: "a Stripe test key",
        pattern: r"\b[sr]k_test_[A-Za-z0-9]{16,}",
        replacement: "[redacted token]",
        live: false,
    },
    Credential {
        what: "a Slack token",
        pattern: r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
        replacement: "[redacted token]",
        live: true,
    },
    Credential {
        what: "a Slack webhook URL",
        pattern: r"hooks\.slack\.com/services/[A-Za-z0-9/]+",
        replacement: "hooks.slack.com/services/{REDACTED}",
        live: true,
    },
    Credential {
        what: "a Google API key",
        pattern: r"\bAIza[0-9A-Za-z_-]{35}",
        replacement: "[redacted token]",
        live: true,
    },
    Credential {
        what: "a GitLab token",
        pattern: r"\bglpat-[A-Za-z0-9_-]{20,}",
        replacement: "[redacted token]",
        live: true,
    },
];

/// Secrets recognised by their context rather than their format, each with the replacement
/// that keeps the non-secret part.
const CONTEXT_PATTERNS: [(&str, &str); 3] = [
    // The whole user part of a URL: scheme://user:password@host, scheme://TOKEN@host. It
    // stops at characters a URL cannot hold unencoded (quotes, brackets), so a URL in JSON or
    // markup does not swallow what follows it.
    (
        r#"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#"<>`{}|\\^]+@"#,
        "${1}{REDACTED}@",
    ),
    // Authorization headers and bearer tokens.
    (
        r"(?i)\b(authorization\s*[:=]\s*)?(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}",
        "${1}${2} {REDACTED}",
    ),
    // JSON Web Tokens.
    (
        r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b",
        "[redacted jwt]",
    ),
];

/// Every text pattern with its replacement, in the order they are applied: the context
/// patterns first, so a token in a URL's user part masks as `scheme://<redacted>@host`.
fn text_pattern_sources() -> impl Iterator<Item = (&'static str, &'static str)> {
    CONTEXT_PATTERNS
        .into_iter()
        .chain(CREDENTIALS.iter().map(|c| (c.pattern, c.replacement)))
}

static TEXT_PATTERNS: LazyLock<Vec<(Regex, String)>> = LazyLock::new(|| {
    text_pattern_sources()
        .filter_map(|(pattern, replacement)| {
            Some((
                Regex::new(pattern).ok()?,
                replacement.replace(MARKER, REDACTED),
            ))
        })
        .collect()
});

static CREDENTIAL_REGEXES: LazyLock<Vec<(Regex, &'static Credential)>> = LazyLock::new(|| {
    CREDENTIALS
        .iter()
        .filter_map(|c| Some((Regex::new(c.pattern).ok()?, c)))
        .collect()
});

/// Every pattern above in one set: one scan tells that a text holds nothing to mask, which
/// is what almost every text (names, URLs, most log lines) is.
static ANY_SECRET: LazyLock<Option<RegexSet>> = LazyLock::new(|| {
    RegexSet::new(
        text_pattern_sources()
            .map(|(pattern, _)| pattern)
            .chain([SECRET_ASSIGNMENT_PATTERN]),
    )
    .ok()
});

/// The kinds of credential found in `text` (each kind once, in list order).
pub(crate) fn credentials_in(text: &str) -> impl Iterator<Item = &'static Credential> + '_ {
    CREDENTIAL_REGEXES
        .iter()
        .filter(move |(regex, _)| regex.is_match(text))
        .map(|(_, credential)| *credential)
}

/// Masks secret-looking substrings of free text (log lines, evidence): `SECRET_KEY=...`,
/// `password: '...'`, bearer tokens, the user part of URLs, JWTs, private keys and the
/// credential formats of GitHub, GitLab, AWS, Stripe, Slack and Google.
/// Borrows when nothing was masked.
pub(crate) fn mask_secrets_in_text(text: &str) -> Cow<'_, str> {
    if let Some(any) = ANY_SECRET.as_ref()
        && !any.is_match(text)
    {
        return Cow::Borrowed(text);
    }
    let mut out = Cow::Borrowed(text);
    for (regex, replacement) in TEXT_PATTERNS.iter() {
        if regex.is_match(&out) {
            out = Cow::Owned(regex.replace_all(&out, replacement.as_str()).into_owned());
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
        let all = CONTEXT_PATTERNS.len() + CREDENTIALS.len();
        assert_eq!(TEXT_PATTERNS.len(), all);
        assert_eq!(CREDENTIAL_REGEXES.len(), CREDENTIALS.len());
        assert!(SECRET_ASSIGNMENT.is_some());
        assert_eq!(ANY_SECRET.as_ref().map(RegexSet::len), Some(all + 1));
    }

    #[test]
    fn the_whole_user_part_of_a_url_is_masked() {
        let cases = [
            (
                "https://ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/acme/shop.git",
                "https://<redacted>@github.com/acme/shop.git",
            ),
            (
                "https://0123456789abcdef0123456789abcdef01234567:x-oauth-basic@github.com/a/b",
                "https://<redacted>@github.com/a/b",
            ),
            (
                "clone https://oauth2:glpat-abcdefghijklmnopqrst@gitlab.com/a/b.git failed",
                "clone https://<redacted>@gitlab.com/a/b.git failed",
            ),
            (
                "postgres://app:p@ss@db:5432/app",
                "postgres://<redacted>@db:5432/app",
            ),
        ];
        for (text, masked) in cases {
            assert_eq!(mask_secrets_in_text(text), masked);
        }
        for plain in [
            "https://github.com/acme/shop.git",
            "https://example.com/?email=a@b.com",
            "https://example.com/@admin",
            "git@github.com:acme/shop.git",
            r#"{"url":"https://svc","owner":"ops@x.io"}"#,
            "<a href=\"https://svc\">ops@x.io</a>",
        ] {
            assert!(
                matches!(mask_secrets_in_text(plain), Cow::Borrowed(_)),
                "{plain}"
            );
        }
    }

    #[test]
    fn every_credential_format_is_masked_and_recognised() {
        let cases = [
            ("AWS", "AKIAIOSFODNN7EXAMPLE", "an AWS access key id"),
            (
                "gh",
                "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                "a GitHub token",
            ),
            (
                "pat",
                "github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTU",
                "a GitHub fine-grained token",
            ),
            (
                "stripe",
                "sk_live_abcdefghijklmnop1234",
                "a Stripe live secret key",
            ),
            (
                "restricted",
                "rk_live_abcdefghijklmnop1234",
                "a Stripe live secret key",
            ),
            ("test", "sk_test_abcdefghijklmnop1234", "a Stripe test key"),
            ("slack", "xoxb-123456789012-abcdefghij", "a Slack token"),
            (
                "hook",
                "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX",
                "a Slack webhook URL",
            ),
            (
                "google",
                "AIzaSyA-abcdefghijklmnopqrstuvwxyz0123-",
                "a Google API key",
            ),
            ("gitlab", "glpat-abcdefghijklmnopqrst", "a GitLab token"),
            (
                "pem",
                "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----",
                "a private key",
            ),
        ];
        for (label, secret, what) in cases {
            let text = format!("using {secret} now");
            let masked = mask_secrets_in_text(&text);
            assert!(!masked.contains(secret), "{label}: {masked}");
            assert!(
                masked.starts_with("using ") && masked.ends_with(" now"),
                "{label}: {masked}"
            );
            let found: Vec<&str> = credentials_in(secret).map(|c| c.what).collect();
            assert_eq!(found.first(), Some(&what), "{label}");
        }
        assert_eq!(credentials_in("just some text").count(), 0);
        assert!(!credentials_in("sk_test_abcdefghijklmnop1234").any(|c| c.live));
    }

    #[test]
    fn secret_looking_member_names_are_masked() {
        let mut v = json!({
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789": 1,
            "password=hunter2hunter2": "x",
            "nested": {"AKIAIOSFODNN7EXAMPLE": true},
            "app_name": "shop"
        });
        redact_json(&mut v);
        let text = v.to_string();
        assert!(!text.contains("ghp_abc"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("AKIAIOSFODNN7EXAMPLE"), "{text}");
        // A masked name looks secret, so its value is masked too.
        assert_eq!(v["[redacted token]"], REDACTED);
        assert_eq!(v["password=<redacted>"], REDACTED);
        assert_eq!(v["nested"]["[redacted aws key id]"], true);
        assert_eq!(v["app_name"], "shop");

        // Two names that mask alike both stay.
        let mut twins = json!({
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789": 1,
            "ghp_zyxwvutsrqponmlkjihgfedcba9876543210": 2
        });
        redact_json(&mut twins);
        let map = twins.as_object().unwrap();
        assert_eq!(map.len(), 2);
        assert!(map.contains_key("[redacted token]"));
        assert!(map.contains_key("[redacted token] (2)"));
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
            "settings: SECRET_KEY='<redacted>' DEBUG=True"
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
