//! [`Plan`]: what a Write or Destructive call would do, described without doing it — the
//! requests it would send to WebOps, what would change, and the deployment it would hit
//! ([`Target`], its blast radius). A dry run returns it; a confirmation shows it to a person
//! and binds the answer to its [`Plan::digest`].

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use webops_client::{DeploymentDetail, Environment, PlannedRequest, WebOpsApi};

use crate::redact::mask_secrets_in_text;

/// The structured answer of a dry run.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct DryRun {
    /// What the call would do; nothing was sent to WebOps.
    #[schemars(description = "")]
    pub(crate) dry_run: Plan,
}

/// What a call would do. Its fields are documented here and (but for `production`) not in
/// the schema: their names say what they are, and the schema is repeated in the output
/// schema of each Write or Destructive tool.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(description = "")]
#[non_exhaustive]
pub struct Plan {
    /// One line: what the call would do.
    #[schemars(description = "")]
    pub summary: String,
    /// The deployment it acts on (for a deploy: the one it would create).
    #[schemars(description = "")]
    pub target: Target,
    /// The requests it would send to WebOps, in order.
    #[schemars(description = "")]
    pub requests: Vec<Request>,
    /// What would change.
    #[schemars(description = "")]
    pub changes: Vec<String>,
    /// Whether it would change or interrupt a production deployment (a deployment without
    /// an environment counts as production).
    #[schemars(description = "Whether it touches a production deployment.")]
    pub production: bool,
}

/// The deployment a call acts on, as it is now: its blast radius.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(description = "")]
#[non_exhaustive]
pub struct Target {
    /// Numeric id; absent for a deployment not yet created.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "i64")]
    #[schemars(description = "")]
    pub id: Option<i64>,
    /// Name.
    #[schemars(description = "")]
    pub name: String,
    /// Environment.
    #[schemars(description = "")]
    pub environment: String,
    /// Status; absent for a deployment not yet created.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    #[schemars(description = "")]
    pub status: Option<String>,
    /// Running instances.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u32")]
    #[schemars(description = "")]
    pub instances: Option<u32>,
    /// Public URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    #[schemars(description = "")]
    pub url: Option<String>,
    /// Attached databases (`name (engine)`), when WebOps lists them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(description = "")]
    pub databases: Vec<String>,
    /// Last change and by whom.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    #[schemars(description = "")]
    pub last_deploy: Option<String>,
}

/// One request to WebOps as it would be sent.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(description = "")]
#[non_exhaustive]
pub struct Request {
    /// HTTP method.
    #[schemars(description = "")]
    pub method: String,
    /// Path under the WebOps base URL.
    #[schemars(description = "")]
    pub path: String,
    /// JSON body (environment variable values masked).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "serde_json::Value")]
    #[schemars(description = "JSON body, secrets masked.")]
    pub body: Option<serde_json::Value>,
}

/// Whether a deployment in `environment` counts as production: production, and a deployment
/// without an environment (the control panel has none), to be safe.
pub(crate) fn is_production(environment: &Environment) -> bool {
    !matches!(environment, Environment::Development | Environment::Staging)
}

impl From<PlannedRequest> for Request {
    fn from(planned: PlannedRequest) -> Self {
        Request {
            method: planned.method.to_owned(),
            path: planned.path,
            body: planned.body,
        }
    }
}

impl Target {
    /// A deployment that does not exist yet.
    pub fn new_deployment(name: impl Into<String>, environment: impl Into<String>) -> Self {
        Target {
            id: None,
            name: name.into(),
            environment: environment.into(),
            status: None,
            instances: None,
            url: None,
            databases: Vec::new(),
            last_deploy: None,
        }
    }

    /// An existing deployment. Its attached databases are added only when the plan is
    /// shown (`Plan::with_databases`), which costs a request.
    pub fn of(detail: &DeploymentDetail) -> Self {
        Target {
            id: Some(detail.id),
            name: detail.name.clone(),
            environment: detail.environment.to_string(),
            status: Some(detail.status.to_string()),
            instances: Some(detail.instances),
            url: detail.url.clone(),
            databases: Vec::new(),
            last_deploy: Some(format!(
                "{} by {}",
                detail.updated_at, detail.deployed_by.username
            )),
        }
    }
}

impl Plan {
    /// A plan of `summary` on `target`.
    pub fn new(summary: impl Into<String>, target: Target) -> Self {
        Plan {
            summary: summary.into(),
            target,
            requests: Vec::new(),
            changes: Vec::new(),
            production: false,
        }
    }

    /// Adds a request it would send.
    pub fn request(mut self, request: impl Into<Request>) -> Self {
        self.requests.push(request.into());
        self
    }

    /// Adds a change it would make.
    pub fn change(mut self, change: impl Into<String>) -> Self {
        self.changes.push(change.into());
        self
    }

    /// Marks it as changing or interrupting a production deployment.
    pub fn production(mut self, production: bool) -> Self {
        self.production = production;
        self
    }

    /// With the databases WebOps lists as attached to the target (none when it cannot list
    /// them): the blast radius a person sees.
    pub(crate) async fn with_databases(mut self, api: &dyn WebOpsApi) -> Self {
        if let (Some(id), Ok(all)) = (self.target.id, api.databases().await) {
            self.target.databases = all
                .into_iter()
                .filter(|db| db.deployment.as_ref().is_some_and(|d| d.id == id))
                .map(|db| format!("{} ({})", db.name, db.engine))
                .collect();
        }
        self
    }

    /// SHA-256 (hex) of what a person confirms — the call and the deployment as it is (its
    /// id, name, environment, status, instances, URL and last change) — so a confirmation
    /// holds only while all of it is unchanged. The attached databases are shown but not
    /// bound: reading them again before acting would cost every confirmed call a request.
    pub fn digest(&self) -> String {
        let mut bound = self.clone();
        bound.target.databases.clear();
        let json = serde_json::to_vec(&bound).unwrap_or_default();
        hex::encode(Sha256::digest(json))
    }

    /// The plan as a person or a model reads it; secrets masked.
    pub fn to_text(&self) -> String {
        let t = &self.target;
        let mut out = format!("{}\n", self.summary);
        let _ = write!(out, "Deployment: {}", t.name);
        if let Some(id) = t.id {
            let _ = write!(out, " (id {id})");
        }
        let _ = write!(out, "\nEnvironment: {}", t.environment);
        if let Some(status) = &t.status {
            let _ = write!(out, " · status {status}");
        }
        if let Some(instances) = t.instances {
            let _ = write!(out, " · {instances} instance(s)");
        }
        if let Some(url) = &t.url {
            let _ = write!(out, "\nURL: {url}");
        }
        if !t.databases.is_empty() {
            let _ = write!(out, "\nAttached databases: {}", t.databases.join(", "));
        }
        if let Some(last) = &t.last_deploy {
            let _ = write!(out, "\nLast change: {last}");
        }
        for change in &self.changes {
            let _ = write!(out, "\n- {change}");
        }
        for request in &self.requests {
            let _ = write!(out, "\nWould send: {} {}", request.method, request.path);
            if let Some(body) = &request.body {
                let _ = write!(out, " {body}");
            }
        }
        mask_secrets_in_text(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_changes_with_anything_shown() {
        let plan = Plan::new("Delete shop", Target::new_deployment("shop", "production"))
            .change("the deployment is gone for good");
        let same = plan.clone();
        assert_eq!(plan.digest(), same.digest());
        let mut moved = plan.clone();
        moved.target.status = Some("stopped".into());
        assert_ne!(plan.digest(), moved.digest());
        let mut shown = plan.clone();
        shown.target.databases = vec!["shop-db (postgresql)".into()];
        assert_eq!(
            plan.digest(),
            shown.digest(),
            "databases are shown, not bound"
        );
        assert_eq!(plan.digest().len(), 64);
    }

    #[test]
    fn text_names_the_blast_radius() {
        let mut target = Target::new_deployment("shop", "production");
        target.id = Some(9);
        target.databases = vec!["shop-db (postgresql)".into()];
        let text = Plan::new("Delete production deployment 'shop'", target)
            .request(PlannedRequest::new("DELETE", "deployments/9/"))
            .to_text();
        assert!(text.contains("shop (id 9)"), "{text}");
        assert!(text.contains("shop-db (postgresql)"), "{text}");
        assert!(text.contains("Would send: DELETE deployments/9/"), "{text}");
    }
}
