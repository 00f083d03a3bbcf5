//! The [`WebOpsApi`] implementation of [`Client`]: the path, method, query and body of each
//! endpoint of the REST API v1.

use async_trait::async_trait;
use chrono::SecondsFormat;
use reqwest::Method;
use reqwest::header::HeaderValue;
use serde::Serialize;

use super::Client;
use super::send::Call;
use crate::api::WebOpsApi;
use crate::error::{Error, ErrorKind, Result};
use crate::types::*;

/// The query of `GET deployments/`, with the contract's parameter names.
fn filter_query(filter: &DeploymentFilter) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if let Some(status) = &filter.status {
        query.push(("status", status.as_str().to_owned()));
    }
    if let Some(environment) = &filter.environment {
        query.push(("environment", environment.as_str().to_owned()));
    }
    if let Some(project_type) = &filter.project_type {
        query.push(("project_type", project_type.clone()));
    }
    if let Some(search) = &filter.search {
        query.push(("search", search.clone()));
    }
    if let Some(page) = filter.page {
        query.push(("page", page.to_string()));
    }
    if let Some(per_page) = filter.per_page {
        query.push(("per_page", per_page.to_string()));
    }
    query
}

/// The query of `GET deployments/{id}/logs/`, with the contract's parameter names.
fn log_query(logs: &LogQuery) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if let Some(log_type) = &logs.log_type {
        query.push(("type", log_type.as_str().to_owned()));
    }
    if let Some(lines) = logs.lines {
        query.push(("lines", lines.to_string()));
    }
    if let Some(level) = &logs.level {
        query.push(("level", level.as_str().to_owned()));
    }
    if let Some(since) = logs.since {
        query.push(("since", since.to_rfc3339_opts(SecondsFormat::AutoSi, true)));
    }
    query
}

fn action(id: i64, template: &'static str, verb: &str) -> Call {
    Call::new(Method::POST, template, format!("deployments/{id}/{verb}/"))
}

#[derive(Serialize)]
struct ScaleBody {
    instances: u32,
}

#[async_trait]
impl WebOpsApi for Client {
    async fn status(&self) -> Result<ApiStatus> {
        let mut call = Call::get("status/", "status/");
        call.authenticated = false;
        self.data(call).await
    }

    async fn list_deployments(&self, filter: &DeploymentFilter) -> Result<Page<Deployment>> {
        let call = Call::get("deployments/", "deployments/").query(filter_query(filter));
        let answer = self.send::<Vec<Deployment>>(call).await?;
        let pagination = answer.pagination.unwrap_or_else(|| {
            // A server that does not paginate sent everything at once.
            let count = u32::try_from(answer.data.len()).unwrap_or(u32::MAX);
            Pagination {
                page: 1,
                per_page: count,
                total: u64::from(count),
                total_pages: 1,
            }
        });
        Ok(Page {
            items: answer.data,
            pagination,
        })
    }

    async fn get_deployment(&self, id: i64) -> Result<DeploymentDetail> {
        self.data(Call::get("deployments/{id}/", format!("deployments/{id}/")))
            .await
    }

    async fn create_deployment(
        &self,
        new: &NewDeployment,
        idempotency_key: Option<String>,
    ) -> Result<CreatedDeployment> {
        let mut call = Call::new(Method::POST, "deployments/", "deployments/").json(new)?;
        if let Some(key) = idempotency_key {
            let valid = !key.is_empty() && !key.chars().any(char::is_control);
            let value = HeaderValue::from_str(&key)
                .ok()
                .filter(|_| valid)
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::Validation,
                        "the idempotency key must be non-empty visible ASCII",
                    )
                })?;
            call.idempotency_key = Some(value);
        }
        match self.send_retried(call).await {
            // A server without the Idempotency-Key extension may have created it on an
            // attempt whose answer was lost.
            (Err(e), true) if e.kind() == ErrorKind::Conflict => {
                let message = format!(
                    "{} An earlier attempt of this request may have created '{}' before its \
                     answer was lost: look it up before creating it again.",
                    e.message(),
                    new.name
                );
                Err(e.with_message(message))
            }
            (result, _) => result.map(|answer| answer.data),
        }
    }

    async fn update_deployment(
        &self,
        id: i64,
        update: &DeploymentUpdate,
    ) -> Result<DeploymentDetail> {
        let call = Call::new(
            Method::PUT,
            "deployments/{id}/",
            format!("deployments/{id}/"),
        )
        .json(update)?;
        self.data(call).await
    }

    async fn delete_deployment(&self, id: i64) -> Result<Deleted> {
        let call = Call::new(
            Method::DELETE,
            "deployments/{id}/",
            format!("deployments/{id}/"),
        );
        match self.send_retried(call).await {
            // The retry of a DELETE whose first answer was lost finds nothing left to delete.
            (Err(e), true) if e.kind() == ErrorKind::NotFound => Ok(Deleted { id, deleted: true }),
            (result, _) => result.map(|answer| answer.data),
        }
    }

    async fn start(&self, id: i64) -> Result<ActionResult> {
        self.data(action(id, "deployments/{id}/start/", "start"))
            .await
    }

    async fn stop(&self, id: i64) -> Result<ActionResult> {
        self.data(action(id, "deployments/{id}/stop/", "stop"))
            .await
    }

    async fn restart(&self, id: i64) -> Result<ActionResult> {
        self.data(action(id, "deployments/{id}/restart/", "restart"))
            .await
    }

    async fn redeploy(&self, id: i64) -> Result<ActionResult> {
        self.data(action(id, "deployments/{id}/redeploy/", "redeploy"))
            .await
    }

    async fn scale(&self, id: i64, instances: u32) -> Result<ScaleResult> {
        let mut call =
            action(id, "deployments/{id}/scale/", "scale").json(&ScaleBody { instances })?;
        call.extension = true;
        self.data(call).await
    }

    async fn logs(&self, id: i64, query: &LogQuery) -> Result<Logs> {
        let call = Call::get("deployments/{id}/logs/", format!("deployments/{id}/logs/"))
            .query(log_query(query));
        self.data(call).await
    }

    async fn databases(&self) -> Result<Vec<Database>> {
        self.data(Call::get("databases/", "databases/")).await
    }

    async fn system_health(&self) -> Result<SystemHealth> {
        self.data(Call::get("monitoring/health/", "monitoring/health/"))
            .await
    }

    async fn metrics(&self, period: MetricsPeriod, deployment_id: Option<i64>) -> Result<Metrics> {
        let mut query = vec![("period", period.as_str().to_owned())];
        if let Some(id) = deployment_id {
            query.push(("deployment_id", id.to_string()));
        }
        let call = Call::get("monitoring/metrics/", "monitoring/metrics/").query(query);
        self.data(call).await
    }
}
#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    #[test]
    fn queries_use_the_contract_names() {
        let filter = DeploymentFilter::new()
            .status(DeploymentStatus::Running)
            .environment(Environment::Staging)
            .project_type("django")
            .search("shop")
            .page(2)
            .per_page(50);
        assert_eq!(
            filter_query(&filter),
            vec![
                ("status", "running".to_owned()),
                ("environment", "staging".to_owned()),
                ("project_type", "django".to_owned()),
                ("search", "shop".to_owned()),
                ("page", "2".to_owned()),
                ("per_page", "50".to_owned()),
            ]
        );
        assert!(filter_query(&DeploymentFilter::new()).is_empty());
        let since = chrono::DateTime::parse_from_rfc3339("2025-03-01T12:30:00+00:00")
            .unwrap()
            .with_timezone(&Utc);
        let logs = LogQuery::new()
            .log_type(LogType::Deployment)
            .lines(20)
            .level(LogLevel::Error)
            .since(since);
        assert_eq!(
            log_query(&logs),
            vec![
                ("type", "deployment".to_owned()),
                ("lines", "20".to_owned()),
                ("level", "error".to_owned()),
                ("since", "2025-03-01T12:30:00Z".to_owned()),
            ]
        );
    }

    #[test]
    fn only_idempotent_calls_are_marked_so() {
        assert!(Call::get("status/", "status/").idempotent());
        assert!(Call::new(Method::PUT, "x/", "x/").idempotent());
        assert!(Call::new(Method::DELETE, "x/", "x/").idempotent());
        assert!(!action(1, "deployments/{id}/start/", "start").idempotent());
        let mut keyed = Call::new(Method::POST, "deployments/", "deployments/");
        keyed.idempotency_key = Some(HeaderValue::from_static("k"));
        assert!(keyed.idempotent());
    }
}
