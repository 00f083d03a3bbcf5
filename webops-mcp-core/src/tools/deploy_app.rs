//! `webops_deploy_app`: deploy a Git repository as a new app, optionally following it until it
//! runs or fails.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use webops_client::{
    Change, DEPLOYMENT_NAME_PATTERN, DEPLOYMENT_NAME_RULE, DatabaseType, DeploymentStatus,
    Environment, ErrorKind as ApiErrorKind, NO_ENVIRONMENT, NewDeployment, WebOpsApiExt,
    is_deployment_name,
};

mod wait;

use super::common::{EnvironmentArg, Given, plural, upstream_error};
use super::repository::check_repository;
use crate::config::RepositoryPolicy;
use crate::identity::Permission;
use crate::plan::{Plan, Target, is_production};
use crate::redact::mask_secrets_in_text;
use crate::tool::{Access, Tool, ToolContext, ToolError, ToolErrorKind, ToolOutput};
use crate::validation::MEMORY_LIMIT_PATTERN;

/// Deploys an app; see [`Tool::DESCRIPTION`].
#[derive(Debug, Clone)]
pub(crate) struct DeployApp {
    poll_interval: Duration,
    max_wait: Duration,
    repositories: RepositoryPolicy,
}

impl Default for DeployApp {
    fn default() -> Self {
        DeployApp::new(RepositoryPolicy::default())
    }
}

impl DeployApp {
    /// A deploy tool that accepts the repositories `repositories` allows.
    pub(crate) fn new(repositories: RepositoryPolicy) -> Self {
        DeployApp {
            poll_interval: Duration::from_millis(500),
            max_wait: Duration::from_secs(600),
            repositories,
        }
    }

    /// Checks what no request may carry, before anything is sent: the app name follows the
    /// name rule, and WebOps is handed only a repository it may clone. Returns the repository
    /// URL to send.
    fn checked_repository(&self, args: &DeployAppArgs) -> Result<String, ToolError> {
        if !is_deployment_name(&args.app_name) {
            let mut shown: String = args.app_name.chars().take(40).collect();
            if shown.len() < args.app_name.len() {
                shown.push('…');
            }
            return Err(ToolError::invalid(format!(
                "app_name {:?} is not allowed: a deployment name has {DEPLOYMENT_NAME_RULE} \
                 (e.g. \"shop-api\")",
                mask_secrets_in_text(&shown)
            )));
        }
        check_repository(&args.repository, &self.repositories).map_err(ToolError::invalid)
    }

    /// A deploy tool that polls every `poll_interval` and gives up waiting after `max_wait`.
    #[cfg(test)]
    pub(crate) fn with_timing(poll_interval: Duration, max_wait: Duration) -> Self {
        DeployApp {
            poll_interval,
            max_wait,
            repositories: RepositoryPolicy::default(),
        }
    }
}

/// Python version of the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[schemars(inline, description = "")]
pub(crate) enum PythonVersion {
    #[serde(rename = "3.9")]
    V3_9,
    #[serde(rename = "3.10")]
    V3_10,
    #[serde(rename = "3.11")]
    #[default]
    V3_11,
    #[serde(rename = "3.12")]
    V3_12,
}

impl PythonVersion {
    fn as_str(self) -> &'static str {
        match self {
            PythonVersion::V3_9 => "3.9",
            PythonVersion::V3_10 => "3.10",
            PythonVersion::V3_11 => "3.11",
            PythonVersion::V3_12 => "3.12",
        }
    }
}

/// Database engine of the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(inline, description = "")]
pub(crate) enum DatabaseArg {
    #[default]
    Postgresql,
    Mysql,
    Sqlite,
}

impl From<DatabaseArg> for DatabaseType {
    fn from(d: DatabaseArg) -> Self {
        match d {
            DatabaseArg::Postgresql => DatabaseType::Postgresql,
            DatabaseArg::Mysql => DatabaseType::Mysql,
            DatabaseArg::Sqlite => DatabaseType::Sqlite,
        }
    }
}

fn default_branch() -> String {
    "main".to_owned()
}

fn default_memory_limit() -> Given<String> {
    Given::default_of("512M".to_owned())
}

fn yes() -> Given<bool> {
    Given::default_of(true)
}

/// Arguments of `webops_deploy_app`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeployAppArgs {
    /// Unique name, e.g. "shop-api"; later calls use it or the returned id.
    #[schemars(regex(pattern = DEPLOYMENT_NAME_PATTERN))]
    pub(crate) app_name: String,
    /// https URL of a public Git host, without credentials.
    #[schemars(length(min = 1))]
    pub(crate) repository: String,
    #[serde(default = "default_branch")]
    #[schemars(length(min = 1))]
    pub(crate) branch: String,
    #[serde(default)]
    pub(crate) environment: Given<EnvironmentArg>,
    #[serde(default)]
    pub(crate) python_version: Given<PythonVersion>,
    /// The database to attach.
    #[serde(default)]
    pub(crate) database_type: Given<DatabaseArg>,
    /// Per instance, in M or G.
    #[serde(default = "default_memory_limit")]
    #[schemars(regex(pattern = MEMORY_LIMIT_PATTERN))]
    pub(crate) memory_limit: Given<String>,
    #[serde(default = "yes")]
    pub(crate) ssl_enabled: Given<bool>,
    /// Wait (up to 10 minutes, with progress) until it runs or fails.
    #[serde(default)]
    pub(crate) wait: bool,
}

/// Result of `webops_deploy_app`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct DeployAppOutput {
    pub(crate) id: i64,
    pub(crate) name: String,
    /// Its status: pending when not waited for, running when waited for (a WebOps control
    /// panel may leave it pending; next_steps then says why).
    #[schemars(description = "pending, or running once waited for")]
    pub(crate) status: String,
    pub(crate) environment: String,
    pub(crate) url: Option<String>,
    /// Whether this call waited for the deployment to finish.
    pub(crate) waited: bool,
    pub(crate) estimated_completion: Option<DateTime<Utc>>,
    pub(crate) next_steps: String,
}

impl ToolOutput for DeployAppOutput {
    fn to_text(&self) -> String {
        let mut out = format!(
            "Deployment '{}' (id {}) in {}: {}.",
            self.name, self.id, self.environment, self.status
        );
        if let Some(url) = &self.url {
            out.push_str(&format!(" URL: {url}."));
        }
        out.push('\n');
        out.push_str(&self.next_steps);
        out
    }
}

#[async_trait]
impl Tool for DeployApp {
    type Args = DeployAppArgs;
    type Output = DeployAppOutput;

    const NAME: &'static str = "webops_deploy_app";
    const TITLE: &'static str = "Deploy an app";
    const DESCRIPTION: &'static str = "Deploy a Git repository as a new Django app \
        (to restart or scale an existing one, use webops_manage_service). Returns its id and \
        status: pending, or with wait running (a failure is an error with its log's tail).";
    const ACCESS: Access = Access::Write;
    const PERMISSIONS: &'static [Permission] = &[Permission::DeployCreate];

    async fn call(
        &self,
        ctx: &ToolContext,
        mut args: DeployAppArgs,
    ) -> Result<DeployAppOutput, ToolError> {
        args.repository = self.checked_repository(&args)?;
        let capabilities = ctx
            .api()
            .capabilities()
            .await
            .map_err(|e| upstream_error(e, None))?;
        let environment = Environment::from(args.environment.value);
        let new = new_deployment(&args, capabilities.deploy_options);
        let shown_environment = if capabilities.environments {
            environment.to_string()
        } else {
            NO_ENVIRONMENT.to_owned()
        };
        // A fresh key per call: the client may retry the POST, WebOps creates one deployment.
        let idempotency_key = uuid::Uuid::new_v4().to_string();
        let created = match ctx
            .api()
            .create_deployment(&new, Some(idempotency_key))
            .await
        {
            Ok(created) => created,
            Err(e) if e.kind() == ApiErrorKind::Conflict => {
                return Err(name_taken(ctx, &args.app_name, e).await);
            }
            Err(e) => return Err(upstream_error(e, None)),
        };
        if !args.wait {
            return Ok(DeployAppOutput {
                id: created.id,
                name: created.name.clone(),
                status: created.status.to_string(),
                environment: shown_environment,
                url: None,
                waited: false,
                estimated_completion: created.estimated_completion,
                next_steps: format!(
                    "WebOps is building it in the background. Follow it with webops_get_status \
                     (deployment_id: {id}) or read the build with webops_get_logs \
                     (deployment_id: {id}, log_type: deployment).",
                    id = created.id
                ),
            });
        }
        let detail = self.wait_until_done(ctx, &created, &capabilities).await?;
        let next_steps = if detail.status != DeploymentStatus::Running {
            format!(
                "WebOps left it {status}. On this WebOps server (the control panel), {status} \
                 after the build log has stopped growing means its background work is over \
                 without serving the app: the panel could not install the web server \
                 configuration it needs, or no background worker ran the build. Read the \
                 build log with webops_get_logs (deployment_id: {id}, log_type: deployment); \
                 webops_manage_service (action: start) only marks it running in the panel.",
                status = detail.status,
                id = detail.id
            )
        } else if capabilities.scaling {
            format!(
                "It is running with {} instance{}. Check it with webops_get_status \
                 (deployment_id: {}).",
                detail.instances,
                plural(detail.instances as usize),
                detail.id
            )
        } else {
            format!(
                "It is running. Check it with webops_get_status (deployment_id: {}).",
                detail.id
            )
        };
        Ok(DeployAppOutput {
            id: detail.id,
            name: detail.name.clone(),
            status: detail.status.to_string(),
            environment: detail.environment.to_string(),
            url: detail.url.clone(),
            waited: true,
            estimated_completion: None,
            next_steps,
        })
    }

    async fn plan(&self, ctx: &ToolContext, args: &DeployAppArgs) -> Result<Plan, ToolError> {
        let repository = self.checked_repository(args)?;
        let capabilities = ctx
            .api()
            .capabilities()
            .await
            .map_err(|e| upstream_error(e, None))?;
        let mut new = new_deployment(args, capabilities.deploy_options);
        new.repo_url = repository;
        let request = ctx
            .api()
            .describe(&Change::Create(&new))
            .await
            .map_err(|e| upstream_error(e, None))?;
        let environment = Environment::from(args.environment.value);
        let shown = if capabilities.environments {
            environment.to_string()
        } else {
            NO_ENVIRONMENT.to_owned()
        };
        let (name, branch) = (&args.app_name, &args.branch);
        Ok(Plan::new(
            format!(
                "Deploy {} (branch {branch}) as the new {shown} deployment '{name}'",
                new.repo_url
            ),
            Target::new_deployment(name.as_str(), shown),
        )
        .request(request)
        .change(format!(
            "a deployment named '{name}' is created, built and started"
        ))
        .production(is_production(&environment)))
    }
}

/// The request for `args`. A server that honours every option gets each (the defaults
/// included, as before); one that does not gets only those the caller set, which its client
/// refuses by name instead of dropping them.
fn new_deployment(args: &DeployAppArgs, all_options: bool) -> NewDeployment {
    let mut new = NewDeployment::new(args.app_name.as_str(), args.repository.as_str())
        .branch(args.branch.as_str());
    if all_options {
        new = new.project_type("django");
    }
    if all_options || args.environment.given {
        new = new.environment(args.environment.value.into());
    }
    if all_options || args.python_version.given {
        new = new.python_version(args.python_version.value.as_str());
    }
    if all_options || args.database_type.given {
        new = new.database_type(args.database_type.value.into());
    }
    if all_options || args.ssl_enabled.given {
        new = new.ssl_enabled(args.ssl_enabled.value);
    }
    if all_options || args.memory_limit.given {
        new = new.memory_limit(args.memory_limit.value.as_str());
    }
    new
}

/// The error for a name that is taken: which deployment has it, and what to do instead.
async fn name_taken(ctx: &ToolContext, name: &str, err: webops_client::Error) -> ToolError {
    match ctx.api().find_deployment(name).await {
        Ok(Some(existing)) => ToolError::new(
            ToolErrorKind::Conflict,
            format!(
                "A deployment named '{name}' already exists (id {}, status {}, {}). Inspect it \
                 with webops_get_status, restart or scale it with webops_manage_service, or \
                 choose another app_name.",
                existing.id, existing.status, existing.environment
            ),
        ),
        _ => upstream_error(err, None),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use webops_client::{CreatedDeployment, Error as ApiError, MockWebOpsApi};

    use super::*;
    use crate::tools::test_support::ctx;

    pub(super) fn args(wait: bool) -> DeployAppArgs {
        serde_json::from_value(json!({
            "app_name": "blog",
            "repository": "https://github.com/acme/blog.git",
            "wait": wait
        }))
        .unwrap()
    }

    pub(super) fn created(id: i64, name: &str) -> CreatedDeployment {
        serde_json::from_value(json!({
            "id": id, "name": name, "status": "pending",
            "deployment_task_id": "task-1", "estimated_completion": "2030-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn defaults_match_the_contract() {
        let a: DeployAppArgs =
            serde_json::from_value(json!({"app_name": "a", "repository": "https://x/y.git"}))
                .unwrap();
        assert_eq!(a.branch, "main");
        assert_eq!(a.environment.value, EnvironmentArg::Production);
        assert_eq!(a.python_version.value, PythonVersion::V3_11);
        assert_eq!(a.database_type.value, DatabaseArg::Postgresql);
        assert_eq!(a.memory_limit.value, "512M");
        assert!(a.ssl_enabled.value);
        assert!(!a.environment.given && !a.memory_limit.given && !a.ssl_enabled.given);
        assert!(!a.wait);
        let unknown = serde_json::from_value::<DeployAppArgs>(
            json!({"app_name": "a", "repository": "r", "colour": "red"}),
        );
        assert!(unknown.is_err());
    }

    #[tokio::test]
    async fn maps_arguments_and_sends_a_fresh_idempotency_key() {
        let mut api = MockWebOpsApi::new();
        let keys = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = keys.clone();
        api.expect_create_deployment()
            .times(2)
            .returning(move |new, key| {
                let body = serde_json::to_value(new).unwrap();
                assert_eq!(body["name"], "blog");
                assert_eq!(body["repo_url"], "https://github.com/acme/blog.git");
                assert_eq!(body["project_type"], "django");
                assert_eq!(body["branch"], "main");
                assert_eq!(body["environment"], "production");
                assert_eq!(body["python_version"], "3.11");
                assert_eq!(body["database_type"], "postgresql");
                assert_eq!(body["memory_limit"], "512M");
                assert_eq!(body["ssl_enabled"], true);
                let key = key.unwrap();
                assert!(uuid::Uuid::parse_str(&key).is_ok());
                seen.lock().unwrap().push(key);
                Ok(created(7, "blog"))
            });
        let ctx = ctx(api);
        let out = DeployApp::default().call(&ctx, args(false)).await.unwrap();
        assert_eq!(out.id, 7);
        assert_eq!(out.status, "pending");
        assert!(!out.waited);
        assert!(out.next_steps.contains("webops_get_status"));
        assert!(out.to_text().contains("id 7"));
        DeployApp::default().call(&ctx, args(false)).await.unwrap();
        let keys = keys.lock().unwrap();
        assert_ne!(keys[0], keys[1]);
    }

    #[tokio::test]
    async fn bad_names_and_repositories_are_refused_before_anything_is_sent() {
        // No expectations: any request to the API fails the test.
        let ctx = ctx(MockWebOpsApi::new());
        let long = "a".repeat(64);
        for (name, repository, expected) in [
            (
                "Shop",
                "https://github.com/acme/shop.git",
                "app_name \"Shop\" is not allowed",
            ),
            (
                "2048",
                "https://github.com/acme/shop.git",
                "starting with a letter",
            ),
            ("shop_api", "https://github.com/acme/shop.git", "hyphens"),
            (
                " shop",
                "https://github.com/acme/shop.git",
                "app_name \" shop\"",
            ),
            (
                long.as_str(),
                "https://github.com/acme/shop.git",
                "1 to 63 characters",
            ),
            ("blog", "file:///etc/passwd", "file: URLs are not accepted"),
            (
                "blog",
                "https://10.0.0.5/x.git",
                "10.0.0.5 is a private address",
            ),
        ] {
            let args: DeployAppArgs =
                serde_json::from_value(json!({"app_name": name, "repository": repository}))
                    .unwrap();
            for plan in [false, true] {
                let err = if plan {
                    DeployApp::default().plan(&ctx, &args).await.unwrap_err()
                } else {
                    DeployApp::default()
                        .call(&ctx, args.clone())
                        .await
                        .unwrap_err()
                };
                assert_eq!(err.kind(), ToolErrorKind::InvalidArguments, "{name}");
                assert!(
                    err.message().contains(expected),
                    "{name}: {}",
                    err.message()
                );
            }
        }
    }

    #[tokio::test]
    async fn name_taken_falls_back_to_the_api_message_when_the_lookup_fails() {
        let mut api = MockWebOpsApi::new();
        api.expect_create_deployment()
            .returning(|_, _| Err(ApiError::new(ApiErrorKind::Conflict, "name already taken")));
        api.expect_list_deployments()
            .returning(|_| Err(ApiError::new(ApiErrorKind::Connection, "refused")));
        let err = DeployApp::default()
            .call(&ctx(api), args(false))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ToolErrorKind::Conflict);
        assert!(err.message().contains("name already taken"));
    }

    #[tokio::test]
    async fn validation_errors_name_the_tool_parameters() {
        let mut api = MockWebOpsApi::new();
        api.expect_create_deployment().returning(|_, _| {
            Err(ApiError::new(ApiErrorKind::Validation, "invalid")
                .with_details([("repo_url".to_owned(), vec!["must be https".to_owned()])].into()))
        });
        let err = DeployApp::default()
            .call(&ctx(api), args(false))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ToolErrorKind::InvalidArguments);
        assert!(err.message().contains("repository: must be https"));
    }
}
