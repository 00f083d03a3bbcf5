//! The audit itself, pure over fetched data and an explicit `now`: which rules run, their
//! findings per deployment, scores, the compliance summary per framework; and the text of
//! the result.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use webops_client::{Capabilities, Database, DeploymentDetail};

use super::panel_rules::PANEL_RULES;
use super::rules::{
    Control, Framework, Hit, PanelInputs, RULES, Rule, Subject, control_id, evaluate, score,
    unavailable,
};
use super::{
    AuditType, DeploymentAudit, Finding, FrameworkSummary, NotChecked, PanelData,
    SecurityAuditArgs, SecurityAuditOutput, SeverityCounts,
};
use crate::redact::mask_secrets_in_text;
use crate::tool::ToolOutput;
use crate::tools::common::{DeploymentName, plural};

/// The audit itself: pure, over fetched data and an explicit `now`.
pub(super) fn audit(
    details: &[DeploymentDetail],
    databases: &[Database],
    args: &SecurityAuditArgs,
    now: DateTime<Utc>,
    notes: Vec<String>,
    capabilities: &Capabilities,
    panel: &BTreeMap<i64, PanelData>,
) -> SecurityAuditOutput {
    let (rules, not_checked) = select_rules(args.audit_type, capabilities);
    let mut tally = Tally::default();
    for detail in details {
        let hits = evaluate_one(detail, databases, panel.get(&detail.id), &rules, now);
        tally.add(detail, &hits, args);
    }
    let Tally {
        mut findings,
        deployments,
        counts,
        failed,
    } = tally;
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.deployment.name.cmp(&b.deployment.name))
            .then_with(|| a.rule_id.cmp(&b.rule_id))
    });
    let compliance = (args.audit_type == AuditType::Compliance).then(|| {
        Framework::ALL
            .iter()
            .map(|fw| framework_summary(*fw, &rules, &failed, &findings))
            .collect()
    });
    SecurityAuditOutput {
        audit_type: args.audit_type.as_str().to_owned(),
        audited_at: now,
        rules_run: rules.iter().map(|r| r.id.to_owned()).collect(),
        score: overall_score(&deployments),
        counts,
        deployments,
        findings,
        compliance,
        not_checked,
        notes,
    }
}

/// The rules `audit_type` runs on a server with `capabilities`, and those it cannot run there.
fn select_rules(
    audit_type: AuditType,
    capabilities: &Capabilities,
) -> (Vec<&'static Rule>, Vec<NotChecked>) {
    let panel_rules: &'static [Rule] = if capabilities.repo_env || capabilities.project_checks {
        PANEL_RULES
    } else {
        &[]
    };
    let mut not_checked = Vec::new();
    let mut rules = Vec::new();
    for rule in RULES.iter().chain(panel_rules) {
        if !audit_type.runs(rule) {
            continue;
        }
        match unavailable(rule, capabilities) {
            Some(why) => not_checked.push(NotChecked {
                rule_id: rule.id.to_owned(),
                title: rule.title.to_owned(),
                why: why.to_owned(),
            }),
            None => rules.push(rule),
        }
    }
    (rules, not_checked)
}

/// Runs `rules` on one deployment, with its attached databases and, on a control panel, the
/// settings it takes from its repository's `.env` (under its own variables).
fn evaluate_one<'r>(
    detail: &DeploymentDetail,
    databases: &[Database],
    data: Option<&PanelData>,
    rules: &[&'r Rule],
    now: DateTime<Utc>,
) -> Vec<(&'r Rule, Hit)> {
    let attached: Vec<&Database> = databases
        .iter()
        .filter(|db| {
            db.deployment
                .as_ref()
                .is_some_and(|link| link.id == detail.id)
        })
        .collect();
    let effective;
    let deployment = match data.and_then(|d| d.repo_env.as_ref()) {
        Some(repo_env) if !repo_env.is_empty() => {
            let mut merged = detail.clone();
            merged.env_vars = repo_env.iter().chain(detail.env_vars.iter()).collect();
            effective = merged;
            &effective
        }
        _ => detail,
    };
    let inputs = data.map(|d| PanelInputs {
        repo_env: d.repo_env.as_ref(),
        checks: &d.checks,
    });
    let subject = Subject {
        deployment,
        databases: &attached,
        now,
        panel: inputs.as_ref(),
    };
    evaluate(rules.iter().copied(), &subject)
}

/// What the audit has found so far, over every deployment audited.
#[derive(Default)]
struct Tally {
    findings: Vec<Finding>,
    deployments: Vec<DeploymentAudit>,
    counts: SeverityCounts,
    /// (framework, control) -> number of findings
    failed: BTreeMap<Control, usize>,
}

impl Tally {
    /// Adds the `hits` of one deployment: its findings, its score and the controls they fail.
    fn add(&mut self, detail: &DeploymentDetail, hits: &[(&Rule, Hit)], args: &SecurityAuditArgs) {
        let compliance = args.audit_type == AuditType::Compliance;
        let mut own = SeverityCounts::default();
        for (rule, hit) in hits {
            own.add(hit.severity);
            self.counts.add(hit.severity);
            for control in rule.controls {
                *self.failed.entry(*control).or_default() += 1;
            }
            self.findings.push(Finding {
                rule_id: rule.id.to_owned(),
                title: rule.title.to_owned(),
                severity: hit.severity,
                deployment: DeploymentName::from(&detail.deployment),
                evidence: mask_secrets_in_text(&hit.evidence).into_owned(),
                recommendation: args
                    .include_recommendations
                    .then(|| rule.recommendation.to_owned()),
                controls: compliance
                    .then(|| rule.controls.iter().map(|c| control_id(*c)).collect()),
            });
        }
        self.deployments.push(DeploymentAudit {
            id: detail.id,
            name: detail.name.clone(),
            environment: detail.environment.to_string(),
            score: score(hits.iter().map(|(_, h)| h.severity)),
            counts: own,
        });
    }
}

/// The mean score of `deployments`; 100 when there are none.
fn overall_score(deployments: &[DeploymentAudit]) -> u32 {
    if deployments.is_empty() {
        100
    } else {
        let sum: u64 = deployments.iter().map(|d| u64::from(d.score)).sum();
        u32::try_from(sum / deployments.len() as u64).unwrap_or(0)
    }
}

/// How `framework` fared: the controls the `rules` run check, those findings failed, and how
/// many findings map to it.
fn framework_summary(
    framework: Framework,
    rules: &[&Rule],
    failed: &BTreeMap<Control, usize>,
    findings: &[Finding],
) -> FrameworkSummary {
    let checked: BTreeSet<&str> = rules
        .iter()
        .flat_map(|r| r.controls.iter())
        .filter(|(f, _)| *f == framework)
        .map(|(_, id)| *id)
        .collect();
    let failed_here: Vec<(&str, usize)> = failed
        .iter()
        .filter(|((f, _), _)| *f == framework)
        .map(|((_, id), n)| (*id, *n))
        .collect();
    FrameworkSummary {
        framework: framework.name().to_owned(),
        controls_checked: checked
            .iter()
            .map(|id| control_id((framework, id)))
            .collect(),
        controls_failed: failed_here
            .iter()
            .map(|(id, _)| control_id((framework, id)))
            .collect(),
        findings: findings
            .iter()
            .filter(|f| {
                rules
                    .iter()
                    .any(|r| r.id == f.rule_id && r.controls.iter().any(|(fw, _)| *fw == framework))
            })
            .count(),
        status: if failed_here.is_empty() {
            "pass"
        } else {
            "fail"
        }
        .to_owned(),
    }
}

impl ToolOutput for SecurityAuditOutput {
    fn to_text(&self) -> String {
        let mut out = format!(
            "Security audit ({}, {} rules) of {} deployment{}: score {}/100; {}.\n",
            self.audit_type,
            self.rules_run.len(),
            self.deployments.len(),
            plural(self.deployments.len()),
            self.score,
            self.counts.render()
        );
        for d in &self.deployments {
            let _ = writeln!(
                out,
                "- {} (id {}, {}): {}/100 ({})",
                d.name,
                d.id,
                d.environment,
                d.score,
                d.counts.render()
            );
        }
        if self.findings.is_empty() {
            out.push_str("No findings.\n");
        } else {
            out.push_str("Findings, most severe first:\n");
        }
        for f in &self.findings {
            let _ = writeln!(
                out,
                "[{}] {} {} on {}: {}.",
                f.severity.as_str().to_uppercase(),
                f.rule_id,
                f.title,
                f.deployment.name,
                f.evidence
            );
            if let Some(fix) = &f.recommendation {
                let _ = writeln!(out, "  Fix: {fix}");
            }
            if let Some(controls) = &f.controls {
                let _ = writeln!(out, "  Controls: {}", controls.join(", "));
            }
        }
        if let Some(frameworks) = &self.compliance {
            out.push_str("Compliance (automated checks only, not a certification):\n");
            for fw in frameworks {
                let _ = writeln!(
                    out,
                    "- {}: {} ({} of {} checked controls failed{})",
                    fw.framework,
                    fw.status,
                    fw.controls_failed.len(),
                    fw.controls_checked.len(),
                    if fw.controls_failed.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", fw.controls_failed.join(", "))
                    }
                );
            }
        }
        if !self.not_checked.is_empty() {
            let _ = writeln!(
                out,
                "Not checked ({} rule{}; this is not a pass):",
                self.not_checked.len(),
                plural(self.not_checked.len())
            );
            for rule in &self.not_checked {
                let _ = writeln!(out, "- {} {}: {}.", rule.rule_id, rule.title, rule.why);
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "Note: {note}");
        }
        out.trim_end().to_owned()
    }
}
