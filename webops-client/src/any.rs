//! [`AnyClient`]: the client a configuration asks for — the REST API v1, the control panel,
//! or (`auto`) whichever the server turns out to speak, found once at first use.

use async_trait::async_trait;
use tokio::sync::OnceCell;

use crate::api::WebOpsApi;
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::flavor::{ApiFlavor, Capabilities, Flavor};
use crate::panel::PanelClient;
use crate::plan::{Change, PlannedRequest};
use crate::types::*;

/// Speaks the WebOps API flavour of its configuration; see [`crate::ClientBuilder::build_any`].
pub struct AnyClient {
    configured: Flavor,
    v1: Option<Client>,
    panel: Option<PanelClient>,
    chosen: OnceCell<(ApiFlavor, String)>,
}

impl std::fmt::Debug for AnyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnyClient")
            .field("configured", &self.configured)
            .field("chosen", &self.chosen.get())
            .field("v1", &self.v1)
            .field("panel", &self.panel)
            .finish()
    }
}

impl AnyClient {
    pub(crate) fn new(configured: Flavor, v1: Option<Client>, panel: Option<PanelClient>) -> Self {
        let chosen = match configured {
            Flavor::V1 => OnceCell::new_with(Some((
                ApiFlavor::V1,
                "configured: flavor = \"v1\"".to_owned(),
            ))),
            Flavor::Panel => OnceCell::new_with(Some((
                ApiFlavor::Panel,
                "configured: flavor = \"panel\"".to_owned(),
            ))),
            Flavor::Auto => OnceCell::new(),
        };
        AnyClient {
            configured,
            v1,
            panel,
            chosen,
        }
    }

    /// The configured flavour.
    pub fn configured_flavor(&self) -> Flavor {
        self.configured
    }

    /// The flavour in use and why, once known (at once unless `auto` has not probed yet).
    pub fn flavor_in_use(&self) -> Option<(ApiFlavor, &str)> {
        self.chosen.get().map(|(f, why)| (*f, why.as_str()))
    }

    /// The flavour in use, probing the server first when `auto` has not yet: `GET
    /// /api/v1/status/`, then `GET /api/status/`. A failed probe is retried at the next use.
    pub async fn detect(&self) -> Result<(ApiFlavor, &str)> {
        let (flavor, why) = self.chosen.get_or_try_init(|| self.probe()).await?;
        Ok((*flavor, why.as_str()))
    }

    async fn probe(&self) -> Result<(ApiFlavor, String)> {
        let panel = self.panel.as_ref().ok_or_else(|| {
            Error::new(ErrorKind::Config, "the auto flavour needs the panel client")
        })?;
        if panel
            .probe("status/", &["api", "v1", "status"], "data")
            .await?
        {
            return Ok((
                ApiFlavor::V1,
                "auto: GET /api/v1/status/ answered the REST API v1's envelope".to_owned(),
            ));
        }
        if panel
            .probe("api/status/", &["api", "status"], "status")
            .await?
        {
            return Ok((
                ApiFlavor::Panel,
                "auto: GET /api/v1/status/ did not answer as the REST API v1, GET /api/status/ \
                 answered as the WebOps control panel"
                    .to_owned(),
            ));
        }
        Err(Error::new(
            ErrorKind::Unsupported,
            "the server at the WebOps URL answered neither GET /api/v1/status/ (REST API v1) \
             nor GET /api/status/ (WebOps control panel) as WebOps does: check the URL, or set \
             the flavour (WEBOPS_API_FLAVOR=v1 or panel)",
        ))
    }

    async fn api(&self) -> Result<&dyn WebOpsApi> {
        let (flavor, _) = self.detect().await?;
        let api: Option<&dyn WebOpsApi> = match flavor {
            ApiFlavor::V1 => self.v1.as_ref().map(|c| c as &dyn WebOpsApi),
            ApiFlavor::Panel => self.panel.as_ref().map(|c| c as &dyn WebOpsApi),
        };
        api.ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!("no {flavor} client was configured"),
            )
        })
    }
}

#[async_trait]
impl WebOpsApi for AnyClient {
    async fn status(&self) -> Result<ApiStatus> {
        self.api().await?.status().await
    }
    async fn list_deployments(&self, filter: &DeploymentFilter) -> Result<Page<Deployment>> {
        self.api().await?.list_deployments(filter).await
    }
    async fn get_deployment(&self, id: i64) -> Result<DeploymentDetail> {
        self.api().await?.get_deployment(id).await
    }
    async fn create_deployment(
        &self,
        new: &NewDeployment,
        idempotency_key: Option<String>,
    ) -> Result<CreatedDeployment> {
        self.api()
            .await?
            .create_deployment(new, idempotency_key)
            .await
    }
    async fn update_deployment(
        &self,
        id: i64,
        update: &DeploymentUpdate,
    ) -> Result<DeploymentDetail> {
        self.api().await?.update_deployment(id, update).await
    }
    async fn delete_deployment(&self, id: i64) -> Result<Deleted> {
        self.api().await?.delete_deployment(id).await
    }
    async fn start(&self, id: i64) -> Result<ActionResult> {
        self.api().await?.start(id).await
    }
    async fn stop(&self, id: i64) -> Result<ActionResult> {
        self.api().await?.stop(id).await
    }
    async fn restart(&self, id: i64) -> Result<ActionResult> {
        self.api().await?.restart(id).await
    }
    async fn redeploy(&self, id: i64) -> Result<ActionResult> {
        self.api().await?.redeploy(id).await
    }
    async fn scale(&self, id: i64, instances: u32) -> Result<ScaleResult> {
        self.api().await?.scale(id, instances).await
    }
    async fn logs(&self, id: i64, query: &LogQuery) -> Result<Logs> {
        self.api().await?.logs(id, query).await
    }
    async fn databases(&self) -> Result<Vec<Database>> {
        self.api().await?.databases().await
    }
    async fn system_health(&self) -> Result<SystemHealth> {
        self.api().await?.system_health().await
    }
    async fn metrics(&self, period: MetricsPeriod, deployment_id: Option<i64>) -> Result<Metrics> {
        self.api().await?.metrics(period, deployment_id).await
    }
    async fn capabilities(&self) -> Result<Capabilities> {
        // The chosen client says what it can do; why it was chosen is known here.
        let (_, why) = self.detect().await?;
        let mut capabilities = self.api().await?.capabilities().await?;
        why.clone_into(&mut capabilities.why);
        Ok(capabilities)
    }
    async fn repo_env(&self, id: i64) -> Result<EnvVars> {
        self.api().await?.repo_env(id).await
    }
    async fn project_checks(&self, id: i64) -> Result<Vec<ProjectCheck>> {
        self.api().await?.project_checks(id).await
    }
    async fn describe(&self, change: &Change<'_>) -> Result<PlannedRequest> {
        self.api().await?.describe(change).await
    }
}
