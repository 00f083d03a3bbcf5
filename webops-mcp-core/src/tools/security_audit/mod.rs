//! `webops_security_audit`: run the rule engine ([`rules`]) over one deployment or all of
//! them, score the results and, for `compliance`, map findings to framework controls.

mod panel_rules;
mod report;
mod rules;

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use webops_client::{
    Capabilities, DeploymentDetail, DeploymentFilter, EnvVars, ErrorKind as ApiErrorKind,
    ProjectCheck, WebOpsApiExt,
};

use self::report::audit;
use self::rules::{Rule, Severity};
use super::common::{DeploymentId, DeploymentName, fetch_deployment, upstream_error};
use crate::identity::Permission;
use crate::redact::mask_secrets_in_text;
use crate::tool::{Access, Tool, ToolContext, ToolError, ToolErrorKind};

/// Audits deployments; see [`Tool::DESCRIPTION`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SecurityAudit;

/// How thorough the audit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(inline, description = "")]
pub(crate) enum AuditType {
    Basic,
    #[default]
    Comprehensive,
    Compliance,
}

impl AuditType {
    fn as_str(self) -> &'static str {
        match self {
            AuditType::Basic => "basic",
            AuditType::Comprehensive => "comprehensive",
            AuditType::Compliance => "compliance",
        }
    }

    fn runs(self, rule: &Rule) -> bool {
        self != AuditType::Basic || rule.basic
    }
}

fn yes() -> bool {
    true
}

/// Arguments of `webops_security_audit`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecurityAuditArgs {
    /// Numeric id or exact name; digits always mean an id. Omit to audit all.
    #[serde(default)]
    pub(crate) deployment_id: Option<DeploymentId>,
    /// basic: the key checks; comprehensive: all; compliance: all, mapped to OWASP ASVS,
    /// CIS, SOC 2 and PCI DSS controls.
    #[serde(default)]
    pub(crate) audit_type: AuditType,
    /// Include how to fix each finding.
    #[serde(default = "yes")]
    pub(crate) include_recommendations: bool,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(description = "")]
pub(crate) struct Finding {
    /// Stable rule id, e.g. WEBOPS-SEC-001.
    #[schemars(description = "")]
    pub(crate) rule_id: String,
    /// What the rule checks.
    pub(crate) title: String,
    pub(crate) severity: Severity,
    pub(crate) deployment: DeploymentName,
    /// What was found (secret values are never shown, only their length).
    #[schemars(description = "")]
    pub(crate) evidence: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub(crate) recommendation: Option<String>,
    /// Compliance controls it maps to.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<String>")]
    pub(crate) controls: Option<Vec<String>>,
}

/// Findings per severity (`counts` in the output schema's `$defs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[schemars(title = "counts", description = "")]
pub(crate) struct SeverityCounts {
    pub(crate) critical: usize,
    pub(crate) high: usize,
    pub(crate) medium: usize,
    pub(crate) low: usize,
    pub(crate) info: usize,
}

impl SeverityCounts {
    fn add(&mut self, severity: Severity) {
        match severity {
            Severity::Critical => self.critical += 1,
            Severity::High => self.high += 1,
            Severity::Medium => self.medium += 1,
            Severity::Low => self.low += 1,
            Severity::Info => self.info += 1,
        }
    }

    fn render(&self) -> String {
        format!(
            "{} critical, {} high, {} medium, {} low",
            self.critical, self.high, self.medium, self.low
        )
    }
}

/// The audit of one deployment.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(description = "")]
pub(crate) struct DeploymentAudit {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) environment: String,
    /// 0 (worst) to 100 (no findings): 100 minus 40 per critical, 20 per high, 10 per medium
    /// and 3 per low finding.
    #[schemars(description = "100 minus 40 per critical, 20 per high, 10 per medium, 3 per low.")]
    pub(crate) score: u32,
    pub(crate) counts: SeverityCounts,
}

/// How the findings bear on one compliance framework.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(description = "")]
pub(crate) struct FrameworkSummary {
    /// The framework, e.g. "OWASP ASVS 4.0.3".
    #[schemars(description = "")]
    pub(crate) framework: String,
    pub(crate) controls_checked: Vec<String>,
    /// Controls with at least one finding.
    #[schemars(description = "")]
    pub(crate) controls_failed: Vec<String>,
    /// Findings that map to this framework.
    #[schemars(description = "")]
    pub(crate) findings: usize,
    /// pass when no checked control failed, fail otherwise. Automated checks only: a pass is
    /// not a certification.
    #[schemars(description = "pass or fail; automated checks, not a certification.")]
    pub(crate) status: String,
}

/// Result of `webops_security_audit`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct SecurityAuditOutput {
    pub(crate) audit_type: String,
    pub(crate) audited_at: DateTime<Utc>,
    pub(crate) rules_run: Vec<String>,
    /// The mean of the deployments' scores (100 when none).
    pub(crate) score: u32,
    pub(crate) counts: SeverityCounts,
    pub(crate) deployments: Vec<DeploymentAudit>,
    /// Most severe first.
    pub(crate) findings: Vec<Finding>,
    /// Per-framework summary (compliance audits only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<FrameworkSummary>")]
    pub(crate) compliance: Option<Vec<FrameworkSummary>>,
    /// Rules that could not run because this WebOps server does not expose what they read
    /// (never counted as passed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(description = "Rules this WebOps could not run (not passed).")]
    pub(crate) not_checked: Vec<NotChecked>,
    /// What could not be checked, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) notes: Vec<String>,
}

/// A rule that did not run.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(description = "")]
pub(crate) struct NotChecked {
    pub(crate) rule_id: String,
    pub(crate) title: String,
    pub(crate) why: String,
}

/// What the WebOps control panel told about one deployment beyond its detail.
#[derive(Debug, Clone, Default)]
struct PanelData {
    repo_env: Option<EnvVars>,
    checks: Vec<ProjectCheck>,
}

/// How many deployment details are fetched at once.
const FETCH_CONCURRENCY: usize = 4;
/// The most deployments one audit covers.
const MAX_AUDITED: usize = 200;

#[async_trait]
impl Tool for SecurityAudit {
    type Args = SecurityAuditArgs;
    type Output = SecurityAuditOutput;

    const NAME: &'static str = "webops_security_audit";
    const TITLE: &'static str = "Security audit";
    const DESCRIPTION: &'static str = "Audit one deployment or all for security \
        problems (HTTPS, debug, SECRET_KEY, ALLOWED_HOSTS, old Python, exposed databases, \
        leaked credentials, cookies), e.g. before a release. Returns findings with severity, \
        evidence (never secrets) and fixes, and a 0-100 score.";
    const ACCESS: Access = Access::Read;
    const PERMISSIONS: &'static [Permission] = &[Permission::SecurityAudit];

    async fn call(
        &self,
        ctx: &ToolContext,
        args: SecurityAuditArgs,
    ) -> Result<SecurityAuditOutput, ToolError> {
        // A reference that is neither an id nor a name is refused before any request.
        if let Some(id) = &args.deployment_id {
            id.to_ref()?;
        }
        let targets = async {
            match &args.deployment_id {
                Some(id) => Ok((vec![fetch_deployment(ctx, id).await?], Vec::new())),
                None => fetch_all(ctx).await,
            }
        };
        let (targets, databases) = tokio::join!(targets, ctx.api().databases());
        let (details, mut notes) = targets?;
        let capabilities = ctx
            .api()
            .capabilities()
            .await
            .map_err(|e| upstream_error(e, None))?;
        let panel = panel_data(ctx, &capabilities, &details, &mut notes).await;
        let databases = match databases {
            Ok(databases) => databases,
            Err(e) => {
                let why = if e.kind() == ApiErrorKind::Unsupported {
                    "this WebOps server does not list databases".to_owned()
                } else {
                    mask_secrets_in_text(e.message()).into_owned()
                };
                notes.push(format!(
                    "Database checks (WEBOPS-SEC-009, WEBOPS-SEC-010) were skipped: {why}."
                ));
                Vec::new()
            }
        };
        Ok(audit(
            &details,
            &databases,
            &args,
            Utc::now(),
            notes,
            &capabilities,
            &panel,
        ))
    }
}

/// The repository `.env` and project checks of each deployment, where the server exposes
/// them (the control panel), read one deployment at a time to spare its request budget. What
/// cannot be read becomes a note; the rules that need it then find nothing for it.
async fn panel_data(
    ctx: &ToolContext,
    capabilities: &Capabilities,
    details: &[DeploymentDetail],
    notes: &mut Vec<String>,
) -> BTreeMap<i64, PanelData> {
    let mut out = BTreeMap::new();
    if !capabilities.repo_env && !capabilities.project_checks {
        return out;
    }
    for detail in details {
        let mut data = PanelData::default();
        if capabilities.repo_env {
            match ctx.api().repo_env(detail.id).await {
                Ok(env) => data.repo_env = Some(env),
                Err(e) => notes.push(format!(
                    "The repository .env file of '{}' could not be read, so WEBOPS-SEC-018 did \
                     not check it: {}",
                    detail.name,
                    upstream_error(e, Some(&detail.id.into())).message()
                )),
            }
        }
        if capabilities.project_checks {
            match ctx.api().project_checks(detail.id).await {
                Ok(checks) => data.checks = checks,
                Err(e) => notes.push(format!(
                    "The panel's project checks of '{}' could not be read, so WEBOPS-SEC-020 \
                     did not check them: {}",
                    detail.name,
                    upstream_error(e, Some(&detail.id.into())).message()
                )),
            }
        }
        out.insert(detail.id, data);
    }
    out
}

/// Lists every deployment and fetches their details, a few at a time.
async fn fetch_all(ctx: &ToolContext) -> Result<(Vec<DeploymentDetail>, Vec<String>), ToolError> {
    let mut notes = Vec::new();
    let mut listed = ctx
        .api()
        .list_all_deployments(&DeploymentFilter::new(), Some(MAX_AUDITED + 1))
        .await
        .map_err(|e| upstream_error(e, None))?;
    if listed.len() > MAX_AUDITED {
        listed.truncate(MAX_AUDITED);
        notes.push(format!(
            "Only the first {MAX_AUDITED} deployments were audited; audit the others one by one."
        ));
    }
    let mut queue = listed.iter().map(|d| d.id).enumerate();
    let mut running = JoinSet::new();
    let mut fetched = Vec::with_capacity(listed.len());
    let mut first_failure = None;
    loop {
        while running.len() < FETCH_CONCURRENCY {
            let Some((index, id)) = queue.next() else {
                break;
            };
            let ctx = ctx.clone();
            running.spawn(async move { (index, id, ctx.api().get_deployment(id).await) });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (index, id, result) = joined.map_err(|e| {
            ToolError::new(
                ToolErrorKind::Internal,
                format!("fetching a deployment failed unexpectedly: {e}"),
            )
        })?;
        match result {
            Ok(detail) => fetched.push((index, detail)),
            // Deleted between the listing and now: nothing left to audit.
            Err(e) if e.kind() == ApiErrorKind::NotFound => {
                notes.push(format!("Deployment {id} disappeared during the audit."));
            }
            // One unreadable deployment does not sink the audit of the others.
            Err(e) => {
                let error = upstream_error(e, Some(&id.into()));
                notes.push(format!(
                    "Deployment '{}' (id {id}) could not be read and was not audited: {} \
                     Audit it alone with deployment_id {id} once WebOps answers.",
                    listed[index].name,
                    error.message()
                ));
                first_failure.get_or_insert(error);
            }
        }
    }
    // Nothing read at all: an error, not a clean report of zero deployments.
    if fetched.is_empty()
        && let Some(error) = first_failure
    {
        return Err(error);
    }
    fetched.sort_by_key(|(index, _)| *index);
    Ok((fetched.into_iter().map(|(_, d)| d).collect(), notes))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use chrono::TimeZone;
    use serde_json::json;
    use webops_client::{Database, Error as ApiError, MockWebOpsApi};

    use super::*;
    use crate::tool::ToolOutput;
    use crate::tools::test_support::{ctx, detail};

    fn args(v: serde_json::Value) -> SecurityAuditArgs {
        serde_json::from_value(v).unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
    }

    fn risky() -> DeploymentDetail {
        detail(json!({
            "id": 1, "name": "risky", "ssl_enabled": false, "python_version": "3.8",
            "instances": 1,
            "env_vars": {"DEBUG": "True", "SECRET_KEY": "changeme", "ALLOWED_HOSTS": "*",
                         "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE"}
        }))
    }

    fn tidy() -> DeploymentDetail {
        detail(json!({
            "id": 2, "name": "tidy",
            "env_vars": {"DEBUG": "False",
                         "SECRET_KEY": "q8#Zr!t2Vw$e9Lp@m4Xk^b7Nc&y1Hs*d6Gf(u3Ja)o5Ti-l0Ru+QzWx"}
        }))
    }

    fn public_db() -> Database {
        serde_json::from_value(json!({
            "id": 1, "name": "risky_db", "engine": "postgresql", "publicly_accessible": true,
            "ssl_required": false, "deployment": {"id": 1, "name": "risky"}
        }))
        .unwrap()
    }

    fn ids(out: &SecurityAuditOutput, deployment: &str) -> BTreeSet<String> {
        out.findings
            .iter()
            .filter(|f| f.deployment.name == deployment)
            .map(|f| f.rule_id.clone())
            .collect()
    }

    #[test]
    fn basic_is_a_subset_of_comprehensive_and_compliance_maps_controls() {
        let details = [risky(), tidy()];
        let dbs = [public_db()];
        let run = |t: &str| {
            audit(
                &details,
                &dbs,
                &args(json!({"audit_type": t})),
                now(),
                vec![],
                &Capabilities::default(),
                &BTreeMap::new(),
            )
        };
        let basic = run("basic");
        let full = run("comprehensive");
        let compliance = run("compliance");
        assert!(basic.rules_run.len() < full.rules_run.len());
        let basic_ids = ids(&basic, "risky");
        let full_ids = ids(&full, "risky");
        assert!(basic_ids.is_subset(&full_ids));
        assert!(full_ids.contains("WEBOPS-SEC-010") && !basic_ids.contains("WEBOPS-SEC-010"));
        for id in [
            "WEBOPS-SEC-001",
            "WEBOPS-SEC-002",
            "WEBOPS-SEC-004",
            "WEBOPS-SEC-005",
            "WEBOPS-SEC-006",
            "WEBOPS-SEC-009",
            "WEBOPS-SEC-015",
        ] {
            assert!(basic_ids.contains(id), "{id}");
        }
        assert!(full.compliance.is_none() && full.findings.iter().all(|f| f.controls.is_none()));
        assert_eq!(ids(&compliance, "risky"), full_ids);
        let frameworks = compliance.compliance.as_ref().unwrap();
        let names: Vec<&str> = frameworks.iter().map(|f| f.framework.as_str()).collect();
        assert_eq!(
            names,
            [
                "OWASP ASVS 4.0.3",
                "CIS Controls v8",
                "SOC 2",
                "PCI DSS 4.0"
            ]
        );
        assert!(frameworks.iter().all(|f| f.status == "fail"));
        let ssl = compliance
            .findings
            .iter()
            .find(|f| f.rule_id == "WEBOPS-SEC-001")
            .unwrap();
        assert!(
            ssl.controls
                .as_ref()
                .unwrap()
                .contains(&"OWASP ASVS 4.0.3 V9.1.1".to_owned())
        );
        assert!(compliance.to_text().contains("not a certification"));
    }

    #[test]
    fn scores_findings_order_and_no_secrets() {
        let out = audit(
            &[risky(), tidy()],
            &[public_db()],
            &args(json!({})),
            now(),
            vec![],
            &Capabilities::default(),
            &BTreeMap::new(),
        );
        let risky_score = out.deployments[0].score;
        let tidy_score = out.deployments[1].score;
        assert_eq!(risky_score, 0);
        assert!(tidy_score >= 90, "{tidy_score}");
        assert_eq!(out.score, (risky_score + tidy_score) / 2);
        assert!(
            out.findings
                .windows(2)
                .all(|w| w[0].severity >= w[1].severity)
        );
        assert!(out.findings.iter().all(|f| f.recommendation.is_some()));
        let text = out.to_text();
        let structured = serde_json::to_string(&out).unwrap();
        for shown in [&text, &structured] {
            assert!(!shown.contains("changeme"));
            assert!(!shown.contains("AKIAIOSFODNN7EXAMPLE"));
        }
        let quiet = audit(
            &[tidy()],
            &[],
            &args(json!({"include_recommendations": false})),
            now(),
            vec![],
            &Capabilities::default(),
            &BTreeMap::new(),
        );
        assert!(quiet.findings.iter().all(|f| f.recommendation.is_none()));
    }

    #[tokio::test]
    async fn one_deployment_by_id_and_databases_once() {
        let mut api = MockWebOpsApi::new();
        api.expect_get_deployment()
            .times(1)
            .returning(|_| Ok(risky()));
        api.expect_databases()
            .times(1)
            .returning(|| Ok(vec![public_db()]));
        let out = SecurityAudit
            .call(&ctx(api), args(json!({"deployment_id": 1})))
            .await
            .unwrap();
        assert_eq!(out.deployments.len(), 1);
        assert!(ids(&out, "risky").contains("WEBOPS-SEC-009"));
    }

    #[tokio::test]
    async fn unsupported_databases_become_a_note() {
        let mut api = MockWebOpsApi::new();
        api.expect_get_deployment().returning(|_| Ok(risky()));
        api.expect_databases()
            .returning(|| Err(ApiError::new(ApiErrorKind::Unsupported, "404")));
        let out = SecurityAudit
            .call(&ctx(api), args(json!({"deployment_id": 1})))
            .await
            .unwrap();
        assert!(out.notes[0].contains("skipped"));
        assert!(!ids(&out, "risky").contains("WEBOPS-SEC-009"));
    }
}
