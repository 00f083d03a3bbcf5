//! [`PanelClient`]: [`WebOpsApi`] over the shipped WebOps control panel's HTTP API, which
//! differs from the documented v1: `/api/` paths with a trailing slash, form login with a
//! session cookie and CSRF, deployments addressed by name, a 20-requests-per-minute limit,
//! monitoring under `/monitoring/api/`, and several endpoints that do not work.
//!
//! What the panel cannot do is an [`ErrorKind::Unsupported`] error that says so, never a
//! silent no-op. The client keeps within a request budget, caches the deployment list (and so
//! the id ↔ name map) briefly, never retries a POST or DELETE, and quotes the panel's own
//! words only as [`Error::upstream_text`].

mod budget;
mod transport;
mod wire;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::Method;
use serde_json::json;

pub use budget::RequestBudget;
pub(crate) use transport::TransportConfig;
use transport::{Request, Transport};
use wire::*;

use crate::api::WebOpsApi;
use crate::error::{Error, ErrorKind, Result};
use crate::flavor::Capabilities;
use crate::plan::{Change, PlannedRequest};
use crate::sync::lock;
use crate::types::*;

/// Rows asked for per list page (the panel has no cap; we keep pages modest).
const PAGE_SIZE: u32 = 100;
/// How long a `status` answer is reused: a load balancer polling `/health` must not spend
/// the budget.
const STATUS_TTL: Duration = Duration::from_secs(60);
/// Time limits for the panel's slow endpoints.
const SLOW: Duration = Duration::from_secs(15);
const CREATE_DELETE: Duration = Duration::from_secs(30);

/// The WebOps control panel over HTTP. Build it with
/// [`crate::ClientBuilder::build_any`] (flavour `panel`, or `auto`).
pub struct PanelClient {
    transport: Transport,
    cache_ttl: Duration,
    list: Mutex<Option<(Instant, Vec<PanelDeployment>)>>,
    names: Mutex<HashMap<i64, String>>,
    status: Mutex<Option<(Instant, ApiStatus)>>,
}

impl std::fmt::Debug for PanelClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PanelClient")
            .field("user", &self.transport.username())
            .field("budget", &self.transport.budget())
            .field("cache_ttl", &self.cache_ttl)
            .finish_non_exhaustive()
    }
}

fn unsupported(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Unsupported, message).with_code("PANEL_UNSUPPORTED")
}

impl PanelClient {
    pub(crate) fn new(config: TransportConfig, cache_ttl: Duration) -> Result<Self> {
        Ok(PanelClient {
            transport: Transport::new(config)?,
            cache_ttl,
            list: Mutex::new(None),
            names: Mutex::new(HashMap::new()),
            status: Mutex::new(None),
        })
    }

    /// `GET path` without the session, for the flavour probe: whether it answered 2xx with
    /// a JSON object holding `key`. `template` names the endpoint for metrics.
    pub(crate) async fn probe(
        &self,
        template: &'static str,
        segments: &[&str],
        key: &str,
    ) -> Result<bool> {
        let mut request = Request::get(template, segments);
        request.anonymous = true;
        match self.transport.json::<serde_json::Value>(&request).await {
            Ok(body) => Ok(body.get(key).is_some()),
            Err(e) if e.status().is_some() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every deployment, newest first as the panel lists them: from the cache while it is
    /// younger than the TTL, unless `refresh` asks the panel again.
    async fn all(&self, refresh: bool) -> Result<Vec<PanelDeployment>> {
        if !refresh
            && let Some((at, rows)) = &*lock(&self.list)
            && at.elapsed() < self.cache_ttl
        {
            return Ok(rows.clone());
        }
        let mut rows = Vec::new();
        let mut page = 1;
        loop {
            let mut request = Request::get("api/deployments/", &["api", "deployments"]);
            request.query = vec![
                ("page", page.to_string()),
                ("per_page", PAGE_SIZE.to_string()),
            ];
            let list: DeploymentList = self.transport.json(&request).await?;
            let got = list.deployments.len();
            rows.extend(list.deployments);
            let pages = list.pagination.map_or(1, |p| p.pages);
            // `pagination.page` echoes whatever was asked: trust only `pages`.
            if got == 0 || page >= pages || page >= 1000 {
                break;
            }
            page += 1;
        }
        {
            let mut names = lock(&self.names);
            for row in &rows {
                names.insert(row.id, row.name.clone());
            }
        }
        *lock(&self.list) = Some((Instant::now(), rows.clone()));
        Ok(rows)
    }

    /// Forgets the cached list and names (after a create or delete).
    fn invalidate(&self) {
        *lock(&self.list) = None;
        lock(&self.names).clear();
    }

    /// The name of deployment `id` (the panel addresses deployments by name).
    async fn name_of(&self, id: i64) -> Result<String> {
        if let Some(name) = lock(&self.names).get(&id) {
            return Ok(name.clone());
        }
        let rows = self.all(true).await?;
        rows.into_iter()
            .find(|d| d.id == id)
            .map(|d| d.name)
            .ok_or_else(|| {
                Error::new(ErrorKind::NotFound, format!("no deployment with id {id}"))
                    .with_code("RESOURCE_NOT_FOUND")
            })
    }

    async fn detail(&self, name: &str) -> Result<PanelDeployment> {
        self.transport
            .json(&Request::get(
                "api/deployments/{name}/",
                &["api", "deployments", name],
            ))
            .await
    }

    async fn action(
        &self,
        id: i64,
        verb: &'static str,
        template: &'static str,
    ) -> Result<ActionResult> {
        let name = self.name_of(id).await?;
        let request = Request::new(Method::POST, template, &["api", "deployments", &name, verb]);
        match self.transport.json::<Action>(&request).await {
            Ok(answer) => {
                // The cached row takes the new status rather than being dropped: names and
                // ids stay known without another list request.
                if let Some((_, rows)) = &mut *lock(&self.list)
                    && let Some(row) = rows.iter_mut().find(|d| d.id == id)
                    && let Some(status) = &answer.status
                {
                    row.status.clone_from(status);
                }
                Ok(ActionResult {
                    id,
                    status: DeploymentStatus::from(answer.status.as_deref().unwrap_or("")),
                    message: self.transport.quote(&answer.message),
                })
            }
            Err(e) if e.kind() == ErrorKind::Server => {
                Err(self.action_failed(id, &name, verb, e).await)
            }
            Err(e) => Err(e),
        }
    }

    /// The error for a start, stop or restart the panel failed with a 500: it says whether
    /// the deployment changed (one more read), and that retrying does not help when the
    /// panel's known defect caused it.
    async fn action_failed(&self, id: i64, name: &str, verb: &str, error: Error) -> Error {
        let now = match self.detail(name).await {
            Ok(d) => format!(
                "the {verb} did not happen: '{name}' (id {id}) is still {}",
                d.status
            ),
            Err(_) => format!("'{name}' (id {id}) could not be read back to check its status"),
        };
        let known_defect = error
            .upstream_text()
            .is_some_and(|t| t.contains("Celery task") || t.contains("ValueError"));
        let advice = if known_defect {
            "This panel version cannot stop or restart deployments through its API (its \
             background task is missing), so retrying will not help; an operator can use the \
             panel's web UI or the server itself."
        } else {
            "Check the panel's own log before retrying."
        };
        let mut out = Error::new(
            ErrorKind::Server,
            format!(
                "The WebOps panel failed to {verb} '{name}' (HTTP {}); {now}. {advice}",
                error.status().unwrap_or(500)
            ),
        )
        .with_code("ACTION_FAILED")
        .with_status(error.status().unwrap_or(500));
        if let Some(text) = error.upstream_text() {
            out = out.with_upstream_text(text);
        }
        out
    }
}

/// Names the panel would store but could never address again (Django decodes `%2F` in a
/// path), or that a URL path cannot hold.
/// Refuses what the panel cannot create: a name it would make unreachable, and options it
/// cannot honour.
fn check_new(new: &NewDeployment) -> Result<()> {
    check_name(&new.name)?;
    let unsupported_options: Vec<&str> = [
        ("environment", new.environment.is_some()),
        ("project_type", new.project_type.is_some()),
        ("python_version", new.python_version.is_some()),
        ("database_type", new.database_type.is_some()),
        ("memory_limit", new.memory_limit.is_some()),
        ("ssl_enabled", new.ssl_enabled.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect();
    if !unsupported_options.is_empty() {
        return Err(unsupported(format!(
            "this WebOps server (the WebOps control panel) cannot set {} on a new \
             deployment; it takes only the name, repository, branch, domain and \
             environment variables (it detects the project type itself)",
            unsupported_options.join(", ")
        )));
    }
    Ok(())
}

/// The body of `POST api/deployments/create/`: the only fields the panel reads.
fn create_body(new: &NewDeployment) -> serde_json::Value {
    let mut body = json!({"name": new.name, "repo_url": new.repo_url});
    if let Some(branch) = &new.branch {
        body["branch"] = json!(branch);
    }
    if let Some(domain) = &new.domain {
        body["domain"] = json!(domain);
    }
    if let Some(env) = &new.env_vars {
        body["env_vars"] = json!(env.0);
    }
    body
}

fn no_scaling() -> Error {
    unsupported(
        "the WebOps control panel has no instances, so a deployment cannot be scaled; the \
         actions it has are start (and stop and restart, which fail in its current version)",
    )
}

fn check_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control);
    if bad {
        return Err(Error::new(
            ErrorKind::Validation,
            format!(
                "the WebOps panel cannot address a deployment named {name:?} after creating it \
                 (no '/', '\\\\', control characters, '.' or '..'); use letters, digits and \
                 hyphens"
            ),
        )
        .with_code("VALIDATION_ERROR"));
    }
    Ok(())
}

#[async_trait]
impl WebOpsApi for PanelClient {
    async fn status(&self) -> Result<ApiStatus> {
        if let Some((at, status)) = &*lock(&self.status)
            && at.elapsed() < STATUS_TTL
        {
            return Ok(status.clone());
        }
        let mut request = Request::get("api/status/", &["api", "status"]);
        request.anonymous = true;
        let body: serde_json::Value = self.transport.json(&request).await?;
        let status = ApiStatus {
            status: body
                .get("status")
                .and_then(|s| s.as_str())
                .unwrap_or("unknown")
                .to_owned(),
            version: "panel".to_owned(),
            timestamp: body
                .get("timestamp")
                .and_then(|t| t.as_str())
                .and_then(parse_time)
                .unwrap_or_else(chrono::Utc::now),
        };
        *lock(&self.status) = Some((Instant::now(), status.clone()));
        Ok(status)
    }

    async fn list_deployments(&self, filter: &DeploymentFilter) -> Result<Page<Deployment>> {
        if let Some(environment) = &filter.environment {
            return Err(unsupported(format!(
                "this WebOps server (the WebOps control panel) has no environments, so it \
                 cannot filter by environment '{environment}'; list without an environment"
            )));
        }
        let rows = self.all(false).await?;
        let user = self.transport.username();
        let matching: Vec<Deployment> = rows
            .iter()
            .filter(|d| {
                filter
                    .status
                    .as_ref()
                    .is_none_or(|s| d.status == s.as_str())
            })
            .filter(|d| {
                filter
                    .project_type
                    .as_ref()
                    .is_none_or(|t| d.project_type.as_deref() == Some(t.as_str()))
            })
            .filter(|d| {
                filter
                    .search
                    .as_ref()
                    .is_none_or(|s| d.name.contains(s.as_str()))
            })
            .map(|d| d.to_deployment(user))
            .collect();
        let per_page = filter.per_page.unwrap_or(20).clamp(1, crate::MAX_PER_PAGE);
        let page = filter.page.unwrap_or(1).max(1);
        let total = matching.len() as u64;
        let start = (page as usize - 1).saturating_mul(per_page as usize);
        let items = matching
            .into_iter()
            .skip(start)
            .take(per_page as usize)
            .collect();
        Ok(Page::new(items, Pagination::new(page, per_page, total)))
    }

    async fn get_deployment(&self, id: i64) -> Result<DeploymentDetail> {
        let name = self.name_of(id).await?;
        let row = self.detail(&name).await?;
        Ok(row.to_detail(self.transport.username()))
    }

    async fn create_deployment(
        &self,
        new: &NewDeployment,
        _idempotency_key: Option<String>,
    ) -> Result<CreatedDeployment> {
        check_new(new)?;
        let mut request = Request::new(
            Method::POST,
            "api/deployments/create/",
            &["api", "deployments", "create"],
        );
        request.body = Some(create_body(new));
        request.min_timeout = Some(CREATE_DELETE);
        // The panel has no idempotency: a create is sent once, never retried.
        let answer = self.transport.json::<Created>(&request).await;
        self.invalidate();
        match answer {
            Ok(created) => Ok(CreatedDeployment {
                id: created.id,
                name: created.name,
                status: DeploymentStatus::from(created.status.as_str()),
                deployment_task_id: String::new(),
                estimated_completion: None,
            }),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Validation | ErrorKind::Conflict | ErrorKind::RateLimited
                ) =>
            {
                Err(e)
            }
            Err(e) => {
                let message = format!(
                    "{}. The panel stores a new deployment before its background work, so \
                     '{}' may exist anyway: look it up before creating it again",
                    e.message(),
                    new.name
                );
                Err(e.with_message(message))
            }
        }
    }

    async fn update_deployment(
        &self,
        _id: i64,
        _update: &DeploymentUpdate,
    ) -> Result<DeploymentDetail> {
        Err(unsupported(
            "the WebOps control panel cannot change a deployment's branch, domain or \
             environment variables through its API",
        ))
    }

    async fn delete_deployment(&self, id: i64) -> Result<Deleted> {
        let name = self.name_of(id).await?;
        let mut request = Request::new(
            Method::DELETE,
            "api/deployments/{name}/delete/",
            &["api", "deployments", &name, "delete"],
        );
        request.min_timeout = Some(CREATE_DELETE);
        let answer = self.transport.send(&request).await;
        self.invalidate();
        answer.map(|_| Deleted::new(id, false))
    }

    async fn start(&self, id: i64) -> Result<ActionResult> {
        self.action(id, "start", "api/deployments/{name}/start/")
            .await
    }

    async fn stop(&self, id: i64) -> Result<ActionResult> {
        self.action(id, "stop", "api/deployments/{name}/stop/")
            .await
    }

    async fn restart(&self, id: i64) -> Result<ActionResult> {
        self.action(id, "restart", "api/deployments/{name}/restart/")
            .await
    }

    async fn redeploy(&self, _id: i64) -> Result<ActionResult> {
        Err(unsupported(
            "the WebOps control panel has no redeploy through its API",
        ))
    }

    async fn describe(&self, change: &Change<'_>) -> Result<PlannedRequest> {
        let path = |name: &str, verb: &str| format!("api/deployments/{name}/{verb}/");
        match *change {
            Change::Create(new) => {
                check_new(new)?;
                Ok(PlannedRequest::new("POST", "api/deployments/create/")
                    .with_body(create_body(new)))
            }
            Change::Action { name, verb, .. } => Ok(PlannedRequest::new("POST", path(name, verb))),
            Change::Delete { name, .. } => Ok(PlannedRequest::new("DELETE", path(name, "delete"))),
            Change::Scale { .. } => Err(no_scaling()),
        }
    }

    async fn scale(&self, _id: i64, _instances: u32) -> Result<ScaleResult> {
        Err(no_scaling())
    }

    async fn logs(&self, id: i64, query: &LogQuery) -> Result<Logs> {
        let log_type = query.log_type.clone().unwrap_or(LogType::Deployment);
        let only_errors = match log_type {
            LogType::Deployment => false,
            LogType::Error => true,
            other => {
                return Err(unsupported(format!(
                    "the WebOps control panel keeps no {other} log; the logs it has are \
                     deployment (the build log) and error (its error lines)"
                )));
            }
        };
        let name = self.name_of(id).await?;
        // `tail` returns the oldest rows: fetch them all and cut the newest ourselves.
        let rows: LogRows = self
            .transport
            .json(&Request::get(
                "api/deployments/{name}/logs/",
                &["api", "deployments", &name, "logs"],
            ))
            .await?;
        let mut kept: Vec<&LogRow> = rows
            .logs
            .iter()
            .filter(|r| !only_errors || r.is_error())
            .filter(|r| {
                query
                    .level
                    .as_ref()
                    .is_none_or(|l| r.level.eq_ignore_ascii_case(l.as_str()))
            })
            .filter(|r| query.since.is_none_or(|since| r.created_at >= since))
            .collect();
        kept.sort_by_key(|r| r.created_at);
        let total = kept.len();
        let lines = query.lines.unwrap_or(100) as usize;
        let newest = kept.split_off(total.saturating_sub(lines));
        Ok(Logs {
            logs: newest.iter().map(|r| r.to_entry()).collect(),
            total_lines: total as u64,
            is_live: false,
        })
    }

    async fn databases(&self) -> Result<Vec<Database>> {
        let list: Databases = self
            .transport
            .json(&Request::get("api/databases/", &["api", "databases"]))
            .await?;
        Ok(list
            .databases
            .iter()
            .map(PanelDatabase::to_database)
            .collect())
    }

    async fn system_health(&self) -> Result<SystemHealth> {
        let mut request = Request::get(
            "monitoring/api/system/health/",
            &["monitoring", "api", "system", "health"],
        );
        request.min_timeout = Some(SLOW);
        let health: Health = self.transport.json(&request).await?;
        Ok(health.to_system_health())
    }

    async fn metrics(&self, period: MetricsPeriod, deployment_id: Option<i64>) -> Result<Metrics> {
        if deployment_id.is_some() {
            return Err(unsupported(
                "the WebOps control panel keeps no per-deployment metrics",
            ));
        }
        let hours = hours(&period).ok_or_else(|| {
            Error::new(
                ErrorKind::Validation,
                format!("unknown metrics period '{period}'"),
            )
        })?;
        let mut request = Request::get(
            "monitoring/api/metrics/history/",
            &["monitoring", "api", "metrics", "history"],
        );
        request.query = vec![("hours", hours.to_string())];
        request.min_timeout = Some(SLOW);
        let history: History = self.transport.json(&request).await?;
        Ok(Metrics {
            period,
            points: history.points(),
        })
    }

    async fn capabilities(&self) -> Result<Capabilities> {
        let budget = self.transport.budget();
        // A poll reads the deployment and its log: keep polling to a third of the budget.
        let poll = if budget.requests == 0 {
            Duration::from_secs(2)
        } else {
            (budget.window * 6 / budget.requests).max(Duration::from_secs(2))
        };
        Ok(Capabilities::panel("configured: flavor = \"panel\"", poll))
    }

    async fn repo_env(&self, id: i64) -> Result<EnvVars> {
        let name = self.name_of(id).await?;
        let env: RepoEnv = self
            .transport
            .json(&Request::get(
                "api/deployments/{name}/env/",
                &["api", "deployments", &name, "env"],
            ))
            .await?;
        Ok(env_vars(&env.env_vars))
    }

    async fn project_checks(&self, id: i64) -> Result<Vec<ProjectCheck>> {
        let name = self.name_of(id).await?;
        let validation: Validation = self
            .transport
            .json(&Request::get(
                "api/deployments/{name}/project/validate/",
                &["api", "deployments", &name, "project", "validate"],
            ))
            .await?;
        Ok(validation
            .results
            .iter()
            .map(ValidationResult::to_check)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unaddressable_names_are_refused() {
        for bad in ["x/y", "..", ".", "a\\b", "tab\there", ""] {
            let error = check_name(bad).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Validation, "{bad}");
        }
        for good in ["shop", "shop-api", "Shop_2", "ünï"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
    }
}
