//! The audit's rule engine: pure functions over one deployment (its details, its databases
//! and an explicit `now`), each rule with a stable id, a severity, a recommendation and the
//! compliance controls it maps to.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use webops_client::{
    Capabilities, Database, DeploymentDetail, EnvVars, Environment, NO_ENVIRONMENT, ProjectCheck,
};

use self::platform::*;
use self::secrets::*;
use self::settings::*;

#[cfg(test)]
mod fixtures;
mod platform;
mod secrets;
mod settings;

/// How bad a finding is. Ordered from `Info` up to `Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(inline, description = "")]
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::fixtures::*;
    use super::*;

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
    fn scores_floor_at_zero() {
        assert_eq!(score([]), 100);
        assert_eq!(score([Severity::High, Severity::Low]), 77);
        assert_eq!(score([Severity::Critical; 3]), 0);
        assert_eq!(score([Severity::Info]), 100);
    }
}
