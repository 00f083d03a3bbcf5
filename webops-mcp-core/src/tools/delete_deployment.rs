//! `webops_delete_deployment`: delete a deployment for good, only with its exact name as
//! confirmation.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use webops_client::Change;

use super::common::{DeploymentId, DeploymentName, fetch_deployment, upstream_error};
use crate::identity::Permission;
use crate::plan::{Plan, Target, is_production};
use crate::redact::mask_secrets_in_text;
use crate::tool::{Access, RefusalReason, Tool, ToolContext, ToolError, ToolOutput};

/// Deletes a deployment; see [`Tool::DESCRIPTION`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DeleteDeployment;

/// Arguments of `webops_delete_deployment`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteDeploymentArgs {
    /// Numeric id or exact name; digits always mean an id.
    pub(crate) deployment_id: DeploymentId,
    /// The deployment's exact name, to confirm; nothing is deleted when it differs.
    #[schemars(length(min = 1))]
    pub(crate) confirm_name: String,
}

/// Result of `webops_delete_deployment`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct DeleteDeploymentOutput {
    pub(crate) deployment: DeploymentName,
    pub(crate) previous_status: String,
    pub(crate) environment: String,
    /// True when WebOps confirmed the deployment is gone; false when it only accepted the
    /// request (the WebOps control panel deletes in the background). A refused or failed
    /// deletion is an error instead.
    #[schemars(description = "false: accepted, deleted in the background.")]
    pub(crate) deleted: bool,
}

impl ToolOutput for DeleteDeploymentOutput {
    fn to_text(&self) -> String {
        if !self.deleted {
            return format!(
                "Delete requested for deployment '{}' (id {}, was {}); WebOps accepted it and \
                 deletes in the background. This WebOps server (the control panel) keeps \
                 listing the deployment afterwards with its old status, so its disappearance \
                 cannot be observed through the API, and its name stays taken. This cannot be \
                 undone.",
                self.deployment.name, self.deployment.id, self.previous_status
            );
        }
        format!(
            "Deleted {} deployment '{}' (id {}, was {}). This cannot be undone; deploy it \
             again with webops_deploy_app if needed.",
            self.environment, self.deployment.name, self.deployment.id, self.previous_status
        )
    }
}

#[async_trait]
impl Tool for DeleteDeployment {
    type Args = DeleteDeploymentArgs;
    type Output = DeleteDeploymentOutput;

    const NAME: &'static str = "webops_delete_deployment";
    const TITLE: &'static str = "Delete a deployment";
    const DESCRIPTION: &'static str = "Permanently delete a deployment, only when the \
        user clearly wants it gone: stopping it (webops_manage_service) is reversible, this \
        is not. confirm_name must be its exact name; a person may be asked to confirm.";
    const ACCESS: Access = Access::Destructive;
    const PERMISSIONS: &'static [Permission] = &[Permission::DeployDelete];

    async fn call(
        &self,
        ctx: &ToolContext,
        args: DeleteDeploymentArgs,
    ) -> Result<DeleteDeploymentOutput, ToolError> {
        let detail = fetch_deployment(ctx, &args.deployment_id).await?;
        if args.confirm_name != detail.name {
            let hint = if args.confirm_name.eq_ignore_ascii_case(&detail.name) {
                " (the comparison is case-sensitive)"
            } else {
                ""
            };
            // No ready-made call to repeat: the point is that someone checks first.
            return Err(ToolError::refused(
                RefusalReason::Validation,
                format!(
                    "Refused: confirm_name \"{}\" is not the exact name of the deployment \
                     '{}' (id {}, {}, {}){hint}. Nothing was deleted. Deleting cannot be \
                     undone: confirm with the user that this is the deployment they want \
                     deleted before calling again, with its exact name as confirm_name.",
                    mask_secrets_in_text(&args.confirm_name.chars().take(100).collect::<String>()),
                    detail.name,
                    detail.id,
                    detail.environment,
                    detail.status,
                ),
            ));
        }
        let answer = ctx
            .api()
            .delete_deployment(detail.id)
            .await
            .map_err(|e| upstream_error(e, Some(&detail.id.into())))?;
        Ok(DeleteDeploymentOutput {
            deployment: DeploymentName::from(&detail.deployment),
            previous_status: detail.status.to_string(),
            environment: detail.environment.to_string(),
            deleted: answer.deleted,
        })
    }

    async fn plan(
        &self,
        ctx: &ToolContext,
        args: &DeleteDeploymentArgs,
    ) -> Result<Plan, ToolError> {
        let detail = fetch_deployment(ctx, &args.deployment_id).await?;
        let (id, name) = (detail.id, detail.name.as_str());
        let request = ctx
            .api()
            .describe(&Change::Delete { id, name })
            .await
            .map_err(|e| upstream_error(e, Some(&id.into())))?;
        let mut plan = Plan::new(
            format!(
                "Delete {} deployment '{name}' (id {id}) for good",
                detail.environment
            ),
            Target::of(&detail),
        )
        .request(request)
        .change("the deployment and its app are deleted; this cannot be undone")
        .production(is_production(&detail.environment));
        if args.confirm_name != name {
            plan = plan.change("confirm_name is not its exact name: the call would be refused");
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use webops_client::{Deleted, Error as ApiError, ErrorKind as ApiErrorKind, MockWebOpsApi};

    use super::*;
    use crate::tool::ToolErrorKind;
    use crate::tools::test_support::{ctx, detail};

    fn args(v: serde_json::Value) -> DeleteDeploymentArgs {
        serde_json::from_value(v).unwrap()
    }

    fn api() -> MockWebOpsApi {
        let mut api = MockWebOpsApi::new();
        api.expect_get_deployment()
            .returning(|id| Ok(detail(json!({"id": id, "name": "shop-api"}))));
        api
    }

    #[tokio::test]
    async fn deletes_with_the_exact_name() {
        let mut api = api();
        api.expect_delete_deployment().times(1).returning(|id| {
            Ok(serde_json::from_value::<Deleted>(json!({"id": id, "deleted": true})).unwrap())
        });
        let out = DeleteDeployment
            .call(
                &ctx(api),
                args(json!({"deployment_id": 9, "confirm_name": "shop-api"})),
            )
            .await
            .unwrap();
        assert!(out.deleted);
        assert_eq!(out.deployment.id, 9);
        assert!(out.to_text().contains("cannot be undone"));
    }

    #[tokio::test]
    async fn a_different_name_deletes_nothing_and_says_the_exact_name() {
        for wrong in ["Shop-api", "shop", "other-app"] {
            let mut api = api();
            api.expect_delete_deployment().never();
            let err = DeleteDeployment
                .call(
                    &ctx(api),
                    args(json!({"deployment_id": 9, "confirm_name": wrong})),
                )
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ToolErrorKind::Refused);
            assert_eq!(err.reason(), Some(RefusalReason::Validation));
            let msg = err.message();
            assert!(msg.contains("Nothing was deleted"), "{msg}");
            assert!(msg.contains("deployment 'shop-api' (id 9,"), "{msg}");
            assert!(msg.contains("confirm with the user"), "{msg}");
            // No pre-filled argument a model could just send back.
            assert!(!msg.contains("confirm_name \"shop-api\""), "{msg}");
            assert!(!msg.contains("confirm_name: \"shop-api\""), "{msg}");
        }
    }

    #[tokio::test]
    async fn an_upstream_failure_is_reported() {
        let mut api = api();
        api.expect_delete_deployment()
            .returning(|_| Err(ApiError::new(ApiErrorKind::NotFound, "gone")));
        let err = DeleteDeployment
            .call(
                &ctx(api),
                args(json!({"deployment_id": 9, "confirm_name": "shop-api"})),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ToolErrorKind::NotFound);
        assert!(err.message().contains("id 9"));
    }
}
