//! The audit's rule engine: pure functions over one deployment (its details, its databases
//! and an explicit `now`), each rule with a stable id, a severity, a recommendation and the
//! compliance controls it maps to.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use regex::Regex;
use schemars::JsonSchema;
use serde::Serialize;
use webops_client::{
    Capabilities, Database, DeploymentDetail, DeploymentStatus, EnvVars, Environment, HealthChecks,
    NO_ENVIRONMENT, ProjectCheck,
};

use crate::redact::{credentials_in, mask};

/// How bad a finding is. Ordered from `Info` up to `Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(inline)]
pub(crate) enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Points a finding of this severity takes off the score of 100.
    pub(crate) fn weight(self) -> u32 {
        match self {
            Severity::Critical => 40,
            Severity::High => 20,
            Severity::Medium => 10,
            Severity::Low => 3,
            Severity::Info => 0,
        }
    }

    /// Lower-case name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// A compliance framework findings are mapped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Framework {
    /// OWASP Application Security Verification Standard 4.0.3.
    Asvs,
    /// CIS Critical Security Controls v8.
    Cis,
    /// AICPA SOC 2 Trust Services Criteria (2017).
    Soc2,
    /// PCI DSS 4.0.
    Pci,
}

impl Framework {
    /// Every framework, in report order.
    pub(crate) const ALL: [Framework; 4] = [
        Framework::Asvs,
        Framework::Cis,
        Framework::Soc2,
        Framework::Pci,
    ];

    /// The framework's name as control ids are prefixed with.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Framework::Asvs => "OWASP ASVS 4.0.3",
            Framework::Cis => "CIS Controls v8",
            Framework::Soc2 => "SOC 2",
            Framework::Pci => "PCI DSS 4.0",
        }
    }
}

/// One control of a framework, e.g. (ASVS, "V9.1.1").
pub(crate) type Control = (Framework, &'static str);

/// The full id of a control, e.g. `OWASP ASVS 4.0.3 V9.1.1`.
pub(crate) fn control_id((framework, id): Control) -> String {
    format!("{} {id}", framework.name())
}

/// What a rule looks at: one deployment, its databases, and the time of the audit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject<'a> {
    /// The deployment, with env vars and metrics.
    pub(crate) deployment: &'a DeploymentDetail,
    /// The databases attached to it.
    pub(crate) databases: &'a [&'a Database],
    /// When the audit runs (for end-of-life dates).
    pub(crate) now: DateTime<Utc>,
    /// What only the WebOps control panel exposes, when the server is one.
    pub(crate) panel: Option<&'a PanelInputs<'a>>,
}

/// What the WebOps control panel exposes beyond a deployment's detail.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PanelInputs<'a> {
    /// The variables of the `.env` file in the deployment's repository, if there is one.
    pub(crate) repo_env: Option<&'a EnvVars>,
    /// The panel's own checks of the project.
    pub(crate) checks: &'a [ProjectCheck],
}

impl Subject<'_> {
    /// A production deployment, or any deployment of a server without environments (each
    /// of them is served live).
    pub(crate) fn production(&self) -> bool {
        match &self.deployment.environment {
            Environment::Production => true,
            Environment::Other(other) => other == NO_ENVIRONMENT,
            _ => false,
        }
    }

    /// The first of `names` set in the env, with its value.
    fn env(&self, names: &[&'static str]) -> Option<(&'static str, &str)> {
        names
            .iter()
            .find_map(|n| self.deployment.env_vars.get(n).map(|v| (*n, v)))
    }
}

/// A rule that fired: how bad, and what was seen (never a secret value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hit {
    /// Severity of this occurrence.
    pub(crate) severity: Severity,
    /// What was found, without secret values.
    pub(crate) evidence: String,
}

fn hit(severity: Severity, evidence: impl Into<String>) -> Vec<Hit> {
    vec![Hit {
        severity,
        evidence: evidence.into(),
    }]
}

/// One audit rule.
pub(crate) struct Rule {
    /// Stable id, e.g. `WEBOPS-SEC-001`.
    pub(crate) id: &'static str,
    /// Short title.
    pub(crate) title: &'static str,
    /// Whether the `basic` audit runs it (every rule is in `comprehensive`).
    pub(crate) basic: bool,
    /// How to fix it.
    pub(crate) recommendation: &'static str,
    /// Compliance controls it maps to.
    pub(crate) controls: &'static [Control],
    /// The check.
    pub(crate) check: fn(&Subject<'_>) -> Vec<Hit>,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

use Framework::{Asvs, Cis, Pci, Soc2};

/// Every rule, in id order.
pub(crate) static RULES: &[Rule] = &[
    Rule {
        id: "WEBOPS-SEC-001",
        title: "HTTPS disabled",
        basic: true,
        recommendation: "Enable SSL for the deployment so all traffic, cookies and credentials \
            travel over TLS, and redirect HTTP to HTTPS.",
        controls: &[
            (Asvs, "V9.1.1"),
            (Cis, "3.10"),
            (Soc2, "CC6.7"),
            (Pci, "4.2.1"),
        ],
        check: https_disabled,
    },
    Rule {
        id: "WEBOPS-SEC-002",
        title: "Debug mode enabled in production",
        basic: true,
        recommendation: "Set DEBUG=False in production: debug pages leak settings, source \
            code and stack traces to anyone who triggers an error.",
        controls: &[
            (Asvs, "V14.3.2"),
            (Cis, "4.1"),
            (Soc2, "CC7.1"),
            (Pci, "2.2.6"),
        ],
        check: debug_in_production,
    },
    Rule {
        id: "WEBOPS-SEC-003",
        title: "SECRET_KEY not set",
        basic: true,
        recommendation: "Set SECRET_KEY as an environment variable holding at least 50 random \
            characters (e.g. from django.core.management.utils.get_random_secret_key), never \
            a value committed to the repository.",
        controls: &[
            (Asvs, "V6.4.1"),
            (Cis, "4.1"),
            (Soc2, "CC6.1"),
            (Pci, "8.6.2"),
        ],
        check: secret_key_missing,
    },
    Rule {
        id: "WEBOPS-SEC-004",
        title: "Weak SECRET_KEY",
        basic: true,
        recommendation: "Replace SECRET_KEY with at least 50 characters from a cryptographically \
            secure generator and rotate it; sessions and signed tokens made with the old key \
            should be treated as compromised.",
        controls: &[
            (Asvs, "V6.3.1"),
            (Cis, "4.7"),
            (Soc2, "CC6.1"),
            (Pci, "2.2.2"),
        ],
        check: secret_key_weak,
    },
    Rule {
        id: "WEBOPS-SEC-005",
        title: "ALLOWED_HOSTS accepts any host",
        basic: true,
        recommendation: "List the deployment's real domain names in ALLOWED_HOSTS instead of \
            '*', to stop Host-header poisoning of password-reset links and caches.",
        controls: &[(Cis, "4.1"), (Soc2, "CC6.6"), (Pci, "2.2.6")],
        check: allowed_hosts_wildcard,
    },
    Rule {
        id: "WEBOPS-SEC-006",
        title: "End-of-life Python version",
        basic: true,
        recommendation: "Redeploy on a supported Python version (3.12 or later); an end-of-life \
            interpreter no longer receives security fixes.",
        controls: &[
            (Asvs, "V14.2.1"),
            (Cis, "2.2"),
            (Soc2, "CC7.1"),
            (Pci, "6.3.3"),
        ],
        check: python_end_of_life,
    },
    Rule {
        id: "WEBOPS-SEC-007",
        title: "Python version near end of life",
        basic: false,
        recommendation: "Plan the upgrade to a newer Python version before the current one \
            stops receiving security fixes.",
        controls: &[(Asvs, "V14.2.1"), (Cis, "2.2"), (Soc2, "CC7.1")],
        check: python_near_end_of_life,
    },
    Rule {
        id: "WEBOPS-SEC-008",
        title: "Insecure repository URL",
        basic: true,
        recommendation: "Deploy from an https:// (or ssh) repository URL without embedded \
            credentials; give WebOps a deploy key or a scoped token through its own settings.",
        controls: &[(Asvs, "V10.3.2"), (Cis, "3.10"), (Soc2, "CC8.1")],
        check: insecure_repository,
    },
    Rule {
        id: "WEBOPS-SEC-009",
        title: "Database publicly accessible",
        basic: true,
        recommendation: "Make the database reachable only from the platform's private network \
            and restrict its firewall to the application hosts.",
        controls: &[(Cis, "4.4"), (Soc2, "CC6.6"), (Pci, "1.4.4")],
        check: database_public,
    },
    Rule {
        id: "WEBOPS-SEC-010",
        title: "Database does not require TLS",
        basic: false,
        recommendation: "Require TLS for database connections (e.g. sslmode=require) so \
            credentials and data are encrypted in transit.",
        controls: &[(Asvs, "V9.2.2"), (Cis, "3.10"), (Soc2, "CC6.7")],
        check: database_without_tls,
    },
    Rule {
        id: "WEBOPS-SEC-011",
        title: "Single instance in production",
        basic: false,
        recommendation: "Run at least two instances in production (webops_manage_service \
            scale_up) so one crash or restart does not take the app offline.",
        controls: &[(Soc2, "A1.2")],
        check: single_instance_in_production,
    },
    Rule {
        id: "WEBOPS-SEC-012",
        title: "No memory limit",
        basic: false,
        recommendation: "Set a memory limit (e.g. 512M) so a leak or an abusive request cannot \
            exhaust the host and starve other deployments.",
        controls: &[(Cis, "4.1"), (Soc2, "A1.1")],
        check: no_memory_limit,
    },
    Rule {
        id: "WEBOPS-SEC-013",
        title: "Failing health checks",
        basic: false,
        recommendation: "Investigate the failing checks with webops_get_logs (error log) and \
            fix the cause; an unhealthy app may be serving errors or stale data.",
        controls: &[(Soc2, "CC7.2")],
        check: unhealthy,
    },
    Rule {
        id: "WEBOPS-SEC-014",
        title: "High error rate",
        basic: false,
        recommendation: "Look for the failing requests in the error and access logs; a high \
            error rate can mean an attack, a broken release or an overloaded app.",
        controls: &[(Soc2, "CC7.2")],
        check: high_error_rate,
    },
    Rule {
        id: "WEBOPS-SEC-015",
        title: "Cloud or API credentials in plain environment variables",
        basic: true,
        recommendation: "Move long-lived credentials to a secrets manager or use short-lived, \
            scoped credentials (e.g. IAM roles); rotate any key that has been stored in plain \
            configuration.",
        controls: &[
            (Asvs, "V6.4.1"),
            (Asvs, "V2.10.4"),
            (Soc2, "CC6.1"),
            (Pci, "8.6.2"),
        ],
        check: credentials_in_env,
    },
    Rule {
        id: "WEBOPS-SEC-016",
        title: "Credentials embedded in URLs",
        basic: false,
        recommendation: "Keep passwords out of connection URLs where possible (separate secret \
            variables or IAM authentication) and make sure such URLs are never logged.",
        controls: &[(Asvs, "V2.10.4"), (Soc2, "CC6.1"), (Pci, "8.6.2")],
        check: credentials_in_urls,
    },
    Rule {
        id: "WEBOPS-SEC-017",
        title: "Cookies without the Secure flag in production",
        basic: false,
        recommendation: "Set SESSION_COOKIE_SECURE=True and CSRF_COOKIE_SECURE=True in \
            production so session and CSRF cookies are only sent over HTTPS.",
        controls: &[
            (Asvs, "V3.4.1"),
            (Cis, "4.1"),
            (Soc2, "CC6.7"),
            (Pci, "6.2.4"),
        ],
        check: insecure_cookies,
    },
];

/// Why `rule` cannot run on a server with `capabilities`: the data it reads does not exist
/// there. Such a rule is reported as not checked, never as passed.
pub(crate) fn unavailable(rule: &Rule, capabilities: &Capabilities) -> Option<&'static str> {
    let c = capabilities;
    match rule.id {
        "WEBOPS-SEC-001" if !c.deploy_options => {
            Some("this WebOps server does not report whether a deployment is served over HTTPS")
        }
        "WEBOPS-SEC-006" | "WEBOPS-SEC-007" if !c.deploy_options => {
            Some("this WebOps server does not report a deployment's Python version")
        }
        "WEBOPS-SEC-012" if !c.deploy_options => {
            Some("this WebOps server does not report memory limits")
        }
        "WEBOPS-SEC-009" | "WEBOPS-SEC-010" if !c.database_exposure => {
            Some("this WebOps server does not report whether a database is public or requires TLS")
        }
        "WEBOPS-SEC-011" if !c.scaling => Some("this WebOps server has no instances to count"),
        "WEBOPS-SEC-013" | "WEBOPS-SEC-014" if !c.deployment_health => {
            Some("this WebOps server keeps no health checks or request metrics per deployment")
        }
        _ => None,
    }
}

/// Runs `rules` on `subject`: every hit with the rule that produced it.
pub(crate) fn evaluate<'r>(
    rules: impl IntoIterator<Item = &'r Rule>,
    subject: &Subject<'_>,
) -> Vec<(&'r Rule, Hit)> {
    rules
        .into_iter()
        .flat_map(|rule| (rule.check)(subject).into_iter().map(move |h| (rule, h)))
        .collect()
}

/// 100 minus the weights of `severities`, floored at 0.
pub(crate) fn score(severities: impl IntoIterator<Item = Severity>) -> u32 {
    let lost: u32 = severities.into_iter().map(Severity::weight).sum();
    100u32.saturating_sub(lost)
}

fn truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on" | "y" | "t"
    )
}

fn falsy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "0" | "false" | "no" | "off" | "n" | "f"
    )
}

fn https_disabled(s: &Subject<'_>) -> Vec<Hit> {
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

fn debug_in_production(s: &Subject<'_>) -> Vec<Hit> {
    match s.env(&["DEBUG", "DJANGO_DEBUG"]) {
        Some((name, value)) if s.production() && truthy(value) => {
            hit(Severity::High, format!("{name} is true in production"))
        }
        _ => vec![],
    }
}

const SECRET_KEY_NAMES: &[&str] = &["SECRET_KEY", "DJANGO_SECRET_KEY"];

fn secret_key_missing(s: &Subject<'_>) -> Vec<Hit> {
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
const KNOWN_DEFAULT_KEYS: &[&str] = &[
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
const MIN_SECRET_KEY_LEN: usize = 50;
const MIN_SECRET_KEY_UNIQUE: usize = 5;
/// Below this many bits of Shannon entropy per character a key is too predictable.
const MIN_BITS_PER_CHAR: f64 = 3.0;

fn shannon_bits_per_char(value: &str) -> f64 {
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

fn secret_key_weak(s: &Subject<'_>) -> Vec<Hit> {
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

fn allowed_hosts_wildcard(s: &Subject<'_>) -> Vec<Hit> {
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

/// A Python version as (major, minor).
type PythonMinor = (u32, u32);
/// A month as (year, month).
type YearMonth = (i32, u32);

/// End of security support of Python versions (first day of the month it ends).
const PYTHON_EOL: &[(PythonMinor, YearMonth)] = &[
    ((3, 8), (2024, 10)),
    ((3, 9), (2025, 10)),
    ((3, 10), (2026, 10)),
    ((3, 11), (2027, 10)),
    ((3, 12), (2028, 10)),
];

/// The (major, minor) of a version string like `3.11` or `3.11.4`.
fn python_minor(version: &str) -> Option<(u32, u32)> {
    let trimmed = version.trim();
    let bare = match trimmed.get(..6) {
        Some(prefix) if prefix.eq_ignore_ascii_case("python") => trimmed[6..].trim_start(),
        _ => trimmed,
    };
    let mut parts = bare.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// When `version` stops (or stopped) getting security fixes; `None` for versions newer than
/// the table.
fn python_eol(version: (u32, u32)) -> Option<NaiveDate> {
    if let Some((_, (y, m))) = PYTHON_EOL.iter().find(|(v, _)| *v == version) {
        return NaiveDate::from_ymd_opt(*y, *m, 1);
    }
    // Anything older than the oldest version in the table ended before it.
    let oldest = PYTHON_EOL.first().map(|(v, _)| *v)?;
    (version < oldest).then_some(NaiveDate::MIN)
}

fn python_end_of_life(s: &Subject<'_>) -> Vec<Hit> {
    let Some(text) = s.deployment.python_version.as_deref() else {
        return vec![];
    };
    let Some(version) = python_minor(text) else {
        return vec![];
    };
    match python_eol(version) {
        Some(eol) if eol <= s.now.date_naive() => {
            let when = if eol == NaiveDate::MIN {
                "long ago".to_owned()
            } else {
                format!("in {}", eol.format("%Y-%m"))
            };
            hit(
                Severity::High,
                format!(
                    "Python {}.{} reached end of life {when} and gets no security fixes",
                    version.0, version.1
                ),
            )
        }
        _ => vec![],
    }
}

fn python_near_end_of_life(s: &Subject<'_>) -> Vec<Hit> {
    let Some(version) = s
        .deployment
        .python_version
        .as_deref()
        .and_then(python_minor)
    else {
        return vec![];
    };
    let today = s.now.date_naive();
    match python_eol(version) {
        Some(eol) if eol > today && (eol - today).num_days() <= 365 => hit(
            Severity::Low,
            format!(
                "Python {}.{} reaches end of life in {} ({} days from now)",
                version.0,
                version.1,
                eol.format("%Y-%m"),
                (eol - today).num_days()
            ),
        ),
        _ => vec![],
    }
}

/// The userinfo part of `url` (`user:password` in `https://user:password@host/`), if any.
fn userinfo(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    authority.rsplit_once('@').map(|(info, _)| info)
}

fn insecure_repository(s: &Subject<'_>) -> Vec<Hit> {
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

fn database_public(s: &Subject<'_>) -> Vec<Hit> {
    s.databases
        .iter()
        .filter(|db| db.publicly_accessible == Some(true))
        .map(|db| Hit {
            severity: Severity::High,
            evidence: format!(
                "database '{}' ({}) is reachable from the internet",
                db.name, db.engine
            ),
        })
        .collect()
}

fn database_without_tls(s: &Subject<'_>) -> Vec<Hit> {
    s.databases
        .iter()
        .filter(|db| db.ssl_required == Some(false))
        .map(|db| Hit {
            severity: Severity::Medium,
            evidence: format!(
                "database '{}' ({}) accepts connections without TLS",
                db.name, db.engine
            ),
        })
        .collect()
}

fn single_instance_in_production(s: &Subject<'_>) -> Vec<Hit> {
    let d = s.deployment;
    if s.production() && d.instances <= 1 && d.status == DeploymentStatus::Running {
        hit(
            Severity::Low,
            format!("runs {} instance in production", d.instances),
        )
    } else {
        vec![]
    }
}

fn no_memory_limit(s: &Subject<'_>) -> Vec<Hit> {
    match s.deployment.memory_limit.as_deref().map(str::trim) {
        Some(limit) if !limit.is_empty() => vec![],
        _ => hit(Severity::Low, "no memory limit is set"),
    }
}

fn unhealthy(s: &Subject<'_>) -> Vec<Hit> {
    let d = s.deployment;
    if d.status != DeploymentStatus::Running {
        return vec![];
    }
    let failed: Vec<&str> = d
        .health
        .checks
        .as_ref()
        .map(HealthChecks::failed)
        .unwrap_or_default();
    if failed.is_empty() && d.health.is_healthy {
        return vec![];
    }
    let evidence = if failed.is_empty() {
        "the last health check failed".to_owned()
    } else {
        format!("failing health checks: {}", failed.join(", "))
    };
    hit(Severity::Medium, evidence)
}

/// Error rates above these are findings.
const ERROR_RATE_MEDIUM: f64 = 0.05;
const ERROR_RATE_HIGH: f64 = 0.20;

fn high_error_rate(s: &Subject<'_>) -> Vec<Hit> {
    let m = &s.deployment.metrics;
    let severity = if m.error_rate > ERROR_RATE_HIGH {
        Severity::High
    } else if m.error_rate > ERROR_RATE_MEDIUM {
        Severity::Medium
    } else {
        return vec![];
    };
    hit(
        severity,
        format!(
            "{:.1}% of requests failed in the last 24 hours ({} requests)",
            m.error_rate * 100.0,
            m.request_count_24h
        ),
    )
}

static AWS_SECRET_VALUE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9/+=]{40}$").ok());

fn credential_kind(name: &str, value: &str) -> Option<&'static str> {
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

fn credentials_in_env(s: &Subject<'_>) -> Vec<Hit> {
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

fn credentials_in_urls(s: &Subject<'_>) -> Vec<Hit> {
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

fn insecure_cookies(s: &Subject<'_>) -> Vec<Hit> {
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
    use chrono::TimeZone;
    use serde_json::{Value, json};

    use super::*;
    use crate::tools::test_support::detail;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    /// A deployment that passes every rule.
    fn good() -> Value {
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

    fn with(overrides: Value) -> DeploymentDetail {
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

    fn database(public: bool, ssl: bool) -> Database {
        serde_json::from_value(json!({
            "id": 1, "name": "shop_db", "engine": "postgresql", "host": "db", "port": 5432,
            "size_mb": 10.0, "connection_count": 3, "publicly_accessible": public,
            "ssl_required": ssl, "deployment": {"id": 1, "name": "app"}
        }))
        .unwrap()
    }

    fn run(id: &str, d: &DeploymentDetail, dbs: &[&Database]) -> Vec<Hit> {
        let rule = RULES.iter().find(|r| r.id == id).unwrap();
        (rule.check)(&Subject {
            deployment: d,
            databases: dbs,
            now: now(),
            panel: None,
        })
    }

    fn fires(id: &str, d: &DeploymentDetail) -> Option<Severity> {
        run(id, d, &[]).first().map(|h| h.severity)
    }

    #[test]
    fn rule_ids_are_unique_stable_and_at_least_fourteen() {
        assert!(RULES.len() >= 14);
        let ids: BTreeSet<_> = RULES.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), RULES.len());
        for (i, rule) in RULES.iter().enumerate() {
            assert_eq!(rule.id, format!("WEBOPS-SEC-{:03}", i + 1));
            assert!(!rule.title.is_empty() && !rule.recommendation.is_empty());
            assert!(!rule.controls.is_empty(), "{}", rule.id);
        }
    }

    #[test]
    fn a_well_configured_deployment_passes_every_rule() {
        let d = with(json!({}));
        let db = database(false, true);
        let hits = evaluate(
            RULES,
            &Subject {
                deployment: &d,
                databases: &[&db],
                now: now(),
                panel: None,
            },
        );
        assert!(
            hits.is_empty(),
            "{:?}",
            hits.iter()
                .map(|(r, h)| (r.id, &h.evidence))
                .collect::<Vec<_>>()
        );
    }

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
    fn python_end_of_life_against_now() {
        // now = 2026-03-01
        for (version, eol, near) in [
            ("3.8", Some(Severity::High), None),
            ("3.9", Some(Severity::High), None),
            ("3.7", Some(Severity::High), None),
            ("3.10", None, Some(Severity::Low)),
            ("3.10.12", None, Some(Severity::Low)),
            ("3.11", None, None),
            ("3.12", None, None),
            ("3.13", None, None),
        ] {
            let d = with(json!({"python_version": version}));
            assert_eq!(fires("WEBOPS-SEC-006", &d), eol, "{version}");
            assert_eq!(fires("WEBOPS-SEC-007", &d), near, "{version}");
        }
        let d = with(json!({"python_version": null}));
        assert_eq!(fires("WEBOPS-SEC-006", &d), None);
    }

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
    fn databases() {
        let d = with(json!({}));
        let public = database(true, true);
        let plain = database(false, false);
        assert_eq!(
            run("WEBOPS-SEC-009", &d, &[&public])[0].severity,
            Severity::High
        );
        assert!(run("WEBOPS-SEC-009", &d, &[&plain]).is_empty());
        assert_eq!(
            run("WEBOPS-SEC-010", &d, &[&plain])[0].severity,
            Severity::Medium
        );
        assert!(run("WEBOPS-SEC-010", &d, &[&public]).is_empty());
    }

    #[test]
    fn capacity_rules() {
        assert_eq!(
            fires("WEBOPS-SEC-011", &with(json!({"instances": 1}))),
            Some(Severity::Low)
        );
        assert_eq!(
            fires(
                "WEBOPS-SEC-011",
                &with(json!({"instances": 1, "environment": "staging"}))
            ),
            None
        );
        assert_eq!(
            fires("WEBOPS-SEC-012", &with(json!({"memory_limit": null}))),
            Some(Severity::Low)
        );
        assert_eq!(
            fires("WEBOPS-SEC-012", &with(json!({"memory_limit": "1G"}))),
            None
        );
    }

    #[test]
    fn health_and_errors() {
        let sick = with(json!({"health": {"is_healthy": false, "uptime_seconds": 1,
            "checks": {"http_response": true, "database_connection": false, "disk_space": true}}}));
        let hits = run("WEBOPS-SEC-013", &sick, &[]);
        assert!(hits[0].evidence.contains("database_connection"));
        let stopped = with(json!({"status": "stopped", "health": {"is_healthy": false}}));
        assert!(run("WEBOPS-SEC-013", &stopped, &[]).is_empty());

        let metrics = |rate: f64| {
            with(json!({"metrics": {"cpu_usage": 1.0, "memory_usage": 1.0,
                                    "request_count_24h": 1000, "error_rate": rate}}))
        };
        assert_eq!(fires("WEBOPS-SEC-014", &metrics(0.05)), None);
        assert_eq!(
            fires("WEBOPS-SEC-014", &metrics(0.08)),
            Some(Severity::Medium)
        );
        assert_eq!(
            fires("WEBOPS-SEC-014", &metrics(0.35)),
            Some(Severity::High)
        );
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

    #[test]
    fn scores_floor_at_zero() {
        assert_eq!(score([]), 100);
        assert_eq!(score([Severity::High, Severity::Low]), 77);
        assert_eq!(score([Severity::Critical; 3]), 0);
        assert_eq!(score([Severity::Info]), 100);
    }
}
