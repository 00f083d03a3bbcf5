//! Creating, updating, deleting, starting, stopping and scaling a deployment: the bodies the
//! client sends and the answers.

use super::*;

/// Body of `POST deployments/`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct NewDeployment {
    /// Unique name.
    pub name: String,
    /// Git repository URL (https).
    pub repo_url: String,
    /// Branch (server default `main`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Project type (server default `django`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_type: Option<String>,
    /// Environment (server default production).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    /// Python version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python_version: Option<String>,
    /// Database engine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_type: Option<DatabaseType>,
    /// Custom domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// TLS (server default on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_enabled: Option<bool>,
    /// Memory limit, e.g. `"512M"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<String>,
    /// Environment variables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_vars: Option<EnvVars>,
}

impl NewDeployment {
    /// A deployment of `repo_url` named `name`, everything else the server's default.
    pub fn new(name: impl Into<String>, repo_url: impl Into<String>) -> Self {
        NewDeployment {
            name: name.into(),
            repo_url: repo_url.into(),
            branch: None,
            project_type: None,
            environment: None,
            python_version: None,
            database_type: None,
            domain: None,
            ssl_enabled: None,
            memory_limit: None,
            env_vars: None,
        }
    }
    /// Git branch.
    pub fn branch(mut self, branch: impl Into<String>) -> Self {
        self.branch = Some(branch.into());
        self
    }
    /// Project type.
    pub fn project_type(mut self, project_type: impl Into<String>) -> Self {
        self.project_type = Some(project_type.into());
        self
    }
    /// Environment.
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = Some(environment);
        self
    }
    /// Python version.
    pub fn python_version(mut self, version: impl Into<String>) -> Self {
        self.python_version = Some(version.into());
        self
    }
    /// Database engine.
    pub fn database_type(mut self, database_type: DatabaseType) -> Self {
        self.database_type = Some(database_type);
        self
    }
    /// Custom domain.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }
    /// TLS on or off.
    pub fn ssl_enabled(mut self, enabled: bool) -> Self {
        self.ssl_enabled = Some(enabled);
        self
    }
    /// Memory limit.
    pub fn memory_limit(mut self, limit: impl Into<String>) -> Self {
        self.memory_limit = Some(limit.into());
        self
    }
    /// Environment variables.
    pub fn env_vars(mut self, env_vars: EnvVars) -> Self {
        self.env_vars = Some(env_vars);
        self
    }
}

/// Answer of `POST deployments/` (201).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CreatedDeployment {
    /// New id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Always `pending` on creation.
    pub status: DeploymentStatus,
    /// Id of the background deployment task.
    #[serde(default)]
    pub deployment_task_id: String,
    /// When the server expects it to be done.
    #[serde(default, deserialize_with = "crate::types::time::deserialize_opt")]
    pub estimated_completion: Option<Timestamp>,
}

/// Body of `PUT deployments/{id}/`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct DeploymentUpdate {
    /// New branch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// New domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// New environment variables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_vars: Option<EnvVars>,
}

impl DeploymentUpdate {
    /// An update that changes nothing.
    pub fn new() -> Self {
        Self::default()
    }
    /// Change the branch.
    pub fn branch(mut self, branch: impl Into<String>) -> Self {
        self.branch = Some(branch.into());
        self
    }
    /// Change the domain.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }
    /// Replace the environment variables.
    pub fn env_vars(mut self, env_vars: EnvVars) -> Self {
        self.env_vars = Some(env_vars);
        self
    }
}

/// Answer of `DELETE deployments/{id}/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Deleted {
    /// The deleted id.
    pub id: i64,
    /// True when the deployment is gone; false when WebOps only accepted the request and
    /// deletes in the background (the control panel).
    pub deleted: bool,
}

impl Deleted {
    /// A delete answer (for alternative [`crate::WebOpsApi`] implementations).
    pub fn new(id: i64, deleted: bool) -> Self {
        Deleted { id, deleted }
    }
}

/// One of the server's own checks of a deployment's project (the control panel's project
/// validation). The message is the server's text: untrusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProjectCheck {
    /// Whether the check passed.
    pub passed: bool,
    /// `info`, `warning`, `error`, ...
    pub level: String,
    /// What the server found.
    pub message: String,
    /// The server marked the finding as a security risk.
    pub security_risk: bool,
}

/// Answer of start/stop/restart/redeploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ActionResult {
    /// Deployment id.
    pub id: i64,
    /// Status after the action.
    pub status: DeploymentStatus,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
}

/// Answer of `POST deployments/{id}/scale/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ScaleResult {
    /// Deployment id.
    pub id: i64,
    /// Instances now.
    pub instances: u32,
    /// Status after scaling.
    pub status: DeploymentStatus,
}
