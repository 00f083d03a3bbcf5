//! [`WebOpsApi`]: the object-safe trait over the client, one method per endpoint, and
//! [`WebOpsApiExt`]: helpers built on it (walk all pages, find by name, resolve a reference).

use async_trait::async_trait;

use crate::error::{Error, ErrorKind, Result};
use crate::flavor::Capabilities;
use crate::plan::{Change, PlannedRequest};
use crate::types::*;

/// One async method per endpoint of the WebOps REST API v1.
///
/// [`crate::Client`] implements it over HTTP. With the `mock` feature, `MockWebOpsApi`
/// (mockall) implements it for tests that need to script odd upstream answers; it scripts
/// the endpoints and keeps the defaults of the methods that have one (a v1 server).
#[async_trait]
pub trait WebOpsApi: Send + Sync {
    /// `GET status/` (no auth): is the API up.
    async fn status(&self) -> Result<ApiStatus>;

    /// `GET deployments/`: one page, filtered.
    async fn list_deployments(&self, filter: &DeploymentFilter) -> Result<Page<Deployment>>;

    /// `GET deployments/{id}/`: one deployment with env vars and metrics.
    async fn get_deployment(&self, id: i64) -> Result<DeploymentDetail>;

    /// `POST deployments/`. With an `idempotency_key`, a repeated call returns the first
    /// result instead of creating a second deployment (and only then may it be retried).
    async fn create_deployment(
        &self,
        new: &NewDeployment,
        idempotency_key: Option<String>,
    ) -> Result<CreatedDeployment>;

    /// `PUT deployments/{id}/`.
    async fn update_deployment(
        &self,
        id: i64,
        update: &DeploymentUpdate,
    ) -> Result<DeploymentDetail>;

    /// `DELETE deployments/{id}/`.
    async fn delete_deployment(&self, id: i64) -> Result<Deleted>;

    /// `POST deployments/{id}/start/`.
    async fn start(&self, id: i64) -> Result<ActionResult>;

    /// `POST deployments/{id}/stop/`.
    async fn stop(&self, id: i64) -> Result<ActionResult>;

    /// `POST deployments/{id}/restart/`.
    async fn restart(&self, id: i64) -> Result<ActionResult>;

    /// `POST deployments/{id}/redeploy/`.
    async fn redeploy(&self, id: i64) -> Result<ActionResult>;

    /// `POST deployments/{id}/scale/` (extension): set the number of instances, 1..=10.
    async fn scale(&self, id: i64, instances: u32) -> Result<ScaleResult>;

    /// `GET deployments/{id}/logs/`: the newest lines, oldest first.
    async fn logs(&self, id: i64, query: &LogQuery) -> Result<Logs>;

    /// `GET databases/`.
    async fn databases(&self) -> Result<Vec<Database>>;

    /// `GET monitoring/health/`.
    async fn system_health(&self) -> Result<SystemHealth>;

    /// `GET monitoring/metrics/`, for the whole platform or one deployment.
    async fn metrics(&self, period: MetricsPeriod, deployment_id: Option<i64>) -> Result<Metrics>;

    /// What this server can do. The REST API v1 can do everything (the default); the auto
    /// client finds out at its first use, which may fail like any request.
    async fn capabilities(&self) -> Result<Capabilities> {
        Ok(Capabilities::default())
    }

    /// The variables of the `.env` file in deployment `id`'s repository (values are secrets).
    /// Only where [`Capabilities::repo_env`]; elsewhere [`ErrorKind::Unsupported`].
    async fn repo_env(&self, id: i64) -> Result<EnvVars> {
        let _ = id;
        Err(Error::new(
            ErrorKind::Unsupported,
            "this WebOps server does not expose a repository's .env file",
        ))
    }

    /// The server's own checks of deployment `id`'s project. Only where
    /// [`Capabilities::project_checks`]; elsewhere [`ErrorKind::Unsupported`].
    async fn project_checks(&self, id: i64) -> Result<Vec<ProjectCheck>> {
        let _ = id;
        Err(Error::new(
            ErrorKind::Unsupported,
            "this WebOps server has no project checks",
        ))
    }

    /// The request `change` would send, without sending it: what a dry run or a
    /// confirmation shows. The default is the REST API v1's.
    async fn describe(&self, change: &Change<'_>) -> Result<PlannedRequest> {
        Ok(crate::plan::v1_request(change))
    }
}

#[cfg(feature = "mock")]
mockall::mock! {
    /// A scriptable [`WebOpsApi`]: one expectation per endpoint; `capabilities`, `repo_env`
    /// and `project_checks` keep their defaults (a REST API v1 server).
    pub WebOpsApi {}

    #[async_trait]
    impl WebOpsApi for WebOpsApi {
        async fn status(&self) -> Result<ApiStatus>;
        async fn list_deployments(&self, filter: &DeploymentFilter) -> Result<Page<Deployment>>;
        async fn get_deployment(&self, id: i64) -> Result<DeploymentDetail>;
        async fn create_deployment(
            &self,
            new: &NewDeployment,
            idempotency_key: Option<String>,
        ) -> Result<CreatedDeployment>;
        async fn update_deployment(
            &self,
            id: i64,
            update: &DeploymentUpdate,
        ) -> Result<DeploymentDetail>;
        async fn delete_deployment(&self, id: i64) -> Result<Deleted>;
        async fn start(&self, id: i64) -> Result<ActionResult>;
        async fn stop(&self, id: i64) -> Result<ActionResult>;
        async fn restart(&self, id: i64) -> Result<ActionResult>;
        async fn redeploy(&self, id: i64) -> Result<ActionResult>;
        async fn scale(&self, id: i64, instances: u32) -> Result<ScaleResult>;
        async fn logs(&self, id: i64, query: &LogQuery) -> Result<Logs>;
        async fn databases(&self) -> Result<Vec<Database>>;
        async fn system_health(&self) -> Result<SystemHealth>;
        async fn metrics(&self, period: MetricsPeriod, deployment_id: Option<i64>) -> Result<Metrics>;
    }
}

/// The most items one `GET deployments/` page holds.
pub const MAX_PER_PAGE: u32 = 100;

/// Helpers over any [`WebOpsApi`], including the mock.
#[async_trait]
pub trait WebOpsApiExt: WebOpsApi {
    /// Walks pages of `filter` (from its `page`, or 1) until `limit` items or the last page.
    async fn list_all_deployments(
        &self,
        filter: &DeploymentFilter,
        limit: Option<usize>,
    ) -> Result<Vec<Deployment>> {
        let mut filter = filter.clone();
        let limit = limit.unwrap_or(usize::MAX);
        let per_page = filter
            .per_page
            .unwrap_or(MAX_PER_PAGE)
            .clamp(1, MAX_PER_PAGE);
        filter.per_page = Some(per_page);
        let mut page = filter.page.unwrap_or(1).max(1);
        let mut all = Vec::new();
        while all.len() < limit {
            filter.page = Some(page);
            let answer = self.list_deployments(&filter).await?;
            let got = answer.items.len();
            all.extend(answer.items);
            if got == 0 || page >= answer.pagination.total_pages {
                break;
            }
            page += 1;
        }
        all.truncate(limit);
        Ok(all)
    }

    /// The deployment whose name is exactly `name`, if any (search, then exact match).
    async fn find_deployment(&self, name: &str) -> Result<Option<Deployment>> {
        let filter = DeploymentFilter::new().search(name);
        let found = self.list_all_deployments(&filter, None).await?;
        Ok(found.into_iter().find(|d| d.name == name))
    }

    /// The numeric id of `reference`. A name that matches no deployment is a
    /// [`ErrorKind::NotFound`] error saying so.
    async fn resolve(&self, reference: &DeploymentRef) -> Result<i64> {
        match reference {
            DeploymentRef::Id(id) => Ok(*id),
            DeploymentRef::Name(name) => match self.find_deployment(name).await? {
                Some(deployment) => Ok(deployment.id),
                None => Err(Error::new(
                    ErrorKind::NotFound,
                    format!("no deployment named '{name}'"),
                )
                .with_code("RESOURCE_NOT_FOUND")),
            },
        }
    }
}

impl<T: WebOpsApi + ?Sized> WebOpsApiExt for T {}
