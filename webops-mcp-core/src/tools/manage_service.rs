//! `webops_manage_service`: start, stop, restart or scale a deployment.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use webops_client::{
    Change, DeploymentDetail, DeploymentStatus, Error as ApiError, ErrorKind as ApiErrorKind,
};

use super::common::{DeploymentId, DeploymentName, fetch_deployment, plural, upstream_error};
use super::untrusted::quote_untrusted;
use crate::identity::Permission;
use crate::plan::{Plan, Target, is_production};
use crate::redact::mask_secrets_in_text;
use crate::tool::{Access, Tool, ToolContext, ToolError, ToolErrorKind, ToolOutput};

/// Manages a running service; see [`Tool::DESCRIPTION`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ManageService;

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(inline, description = "")]
pub(crate) enum ServiceAction {
    Start,
    Stop,
    Restart,
    ScaleUp,
    ScaleDown,
}

impl ServiceAction {
    fn as_str(self) -> &'static str {
        match self {
            ServiceAction::Start => "start",
            ServiceAction::Stop => "stop",
            ServiceAction::Restart => "restart",
            ServiceAction::ScaleUp => "scale_up",
            ServiceAction::ScaleDown => "scale_down",
        }
    }

    /// The action as a gerund, for messages ("restarting").
    fn doing(self) -> &'static str {
        match self {
            ServiceAction::Start => "starting",
            ServiceAction::Stop => "stopping",
            ServiceAction::Restart => "restarting",
            ServiceAction::ScaleUp | ServiceAction::ScaleDown => "scaling",
        }
    }

    fn is_scale(self) -> bool {
        matches!(self, ServiceAction::ScaleUp | ServiceAction::ScaleDown)
    }
}

/// Fewest and most instances WebOps allows.
const MIN_INSTANCES: u32 = 1;
const MAX_INSTANCES: u32 = 10;

/// Arguments of `webops_manage_service`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManageServiceArgs {
    /// Numeric id or exact name; digits always mean an id.
    pub(crate) deployment_id: DeploymentId,
    /// start a stopped app; restart or scale a running one.
    pub(crate) action: ServiceAction,
    /// Scale to this many instead of by one.
    #[serde(default)]
    #[schemars(range(min = 1, max = 10))]
    pub(crate) instances: Option<u32>,
}

/// Result of `webops_manage_service`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct ManageServiceOutput {
    pub(crate) deployment: DeploymentName,
    pub(crate) action: String,
    pub(crate) previous_status: String,
    /// As WebOps reported it.
    pub(crate) status: String,
    pub(crate) previous_instances: u32,
    pub(crate) instances: u32,
    /// What happened.
    pub(crate) message: String,
}

impl ToolOutput for ManageServiceOutput {
    fn to_text(&self) -> String {
        format!(
            "{} (id {}): {} → {}, {} → {} instance{}. {}",
            self.deployment.name,
            self.deployment.id,
            self.previous_status,
            self.status,
            self.previous_instances,
            self.instances,
            plural(self.instances as usize),
            self.message
        )
    }
}

#[async_trait]
impl Tool for ManageService {
    type Args = ManageServiceArgs;
    type Output = ManageServiceOutput;

    const NAME: &'static str = "webops_manage_service";
    const TITLE: &'static str = "Start, stop, restart or scale";
    const DESCRIPTION: &'static str = "Start, stop or restart a deployment, or scale it \
        (1-10 instances). Use it to recover an app, take it offline or change its capacity; it \
        does not redeploy code.";
    const ACCESS: Access = Access::Write;
    const PERMISSIONS: &'static [Permission] = &[Permission::DeployManage];

    async fn call(
        &self,
        ctx: &ToolContext,
        args: ManageServiceArgs,
    ) -> Result<ManageServiceOutput, ToolError> {
        check_instances(&args)?;
        let detail = fetch_deployment(ctx, &args.deployment_id).await?;
        if args.action.is_scale() {
            scale(ctx, &detail, args.action, args.instances).await
        } else {
            lifecycle(ctx, &detail, args.action).await
        }
    }

    async fn plan(&self, ctx: &ToolContext, args: &ManageServiceArgs) -> Result<Plan, ToolError> {
        check_instances(args)?;
        let detail = fetch_deployment(ctx, &args.deployment_id).await?;
        let (id, name) = (detail.id, detail.name.as_str());
        let production = is_production(&detail.environment);
        let what = format!("{} deployment '{name}' (id {id})", detail.environment);
        let target = Target::of(&detail);
        let (change, plan) = match args.action {
            ServiceAction::Start => (
                Change::Action {
                    id,
                    name,
                    verb: "start",
                },
                Plan::new(format!("Start {what}"), target).change("the app starts serving"),
            ),
            ServiceAction::Stop => (
                Change::Action {
                    id,
                    name,
                    verb: "stop",
                },
                Plan::new(format!("Stop {what}"), target)
                    .change("the app stops serving until it is started again")
                    .production(production),
            ),
            ServiceAction::Restart => (
                Change::Action {
                    id,
                    name,
                    verb: "restart",
                },
                Plan::new(format!("Restart {what}"), target)
                    .change("the app is briefly unavailable while it restarts")
                    .production(production),
            ),
            ServiceAction::ScaleUp | ServiceAction::ScaleDown => {
                let current = detail.instances;
                let instances = scale_target(&detail, args.action, args.instances)?;
                if instances == current {
                    return Ok(Plan::new(
                        format!("Nothing to do: {what} already runs {current} instance(s)"),
                        target,
                    ));
                }
                (
                    Change::Scale {
                        id,
                        name,
                        instances,
                    },
                    Plan::new(
                        format!("Scale {what} from {current} to {instances} instance(s)"),
                        target,
                    )
                    .change(format!("instances: {current} → {instances}"))
                    .production(production && instances < current),
                )
            }
        };
        let request = ctx
            .api()
            .describe(&change)
            .await
            .map_err(|e| action_error(&detail, args.action, e))?;
        Ok(plan.request(request))
    }
}

fn check_instances(args: &ManageServiceArgs) -> Result<(), ToolError> {
    if args.instances.is_some() && !args.action.is_scale() {
        return Err(ToolError::invalid(format!(
            "instances applies only to scale_up and scale_down; leave it out for {}",
            args.action.as_str()
        )));
    }
    Ok(())
}

async fn lifecycle(
    ctx: &ToolContext,
    detail: &DeploymentDetail,
    action: ServiceAction,
) -> Result<ManageServiceOutput, ToolError> {
    let api = ctx.api();
    let result = match action {
        ServiceAction::Start => api.start(detail.id).await,
        ServiceAction::Stop => api.stop(detail.id).await,
        _ => api.restart(detail.id).await,
    };
    let result = result.map_err(|e| action_error(detail, action, e))?;
    let message = if result.message.is_empty() {
        format!("{} done.", action.as_str())
    } else {
        format!(
            "{} done; WebOps said: {}",
            action.as_str(),
            quote_untrusted(&result.message, 200)
        )
    };
    Ok(ManageServiceOutput {
        deployment: DeploymentName::from(&detail.deployment),
        action: action.as_str().to_owned(),
        previous_status: detail.status.to_string(),
        status: result.status.to_string(),
        previous_instances: detail.instances,
        instances: detail.instances,
        message,
    })
}

async fn scale(
    ctx: &ToolContext,
    detail: &DeploymentDetail,
    action: ServiceAction,
    instances: Option<u32>,
) -> Result<ManageServiceOutput, ToolError> {
    let current = detail.instances;
    let target = scale_target(detail, action, instances)?;
    let mut out = ManageServiceOutput {
        deployment: DeploymentName::from(&detail.deployment),
        action: action.as_str().to_owned(),
        previous_status: detail.status.to_string(),
        status: detail.status.to_string(),
        previous_instances: current,
        instances: current,
        message: String::new(),
    };
    if target == current {
        out.message = format!(
            "{} already runs {current} instance{}; nothing changed.",
            detail.name,
            plural(current as usize)
        );
        return Ok(out);
    }
    let scaled = ctx
        .api()
        .scale(detail.id, target)
        .await
        .map_err(|e| action_error(detail, action, e))?;
    out.status = scaled.status.to_string();
    out.instances = scaled.instances;
    out.message = format!("Scaled from {current} to {} instances.", scaled.instances);
    Ok(out)
}

/// The instance count a scale action asks for, or why it makes no sense.
fn scale_target(
    detail: &DeploymentDetail,
    action: ServiceAction,
    instances: Option<u32>,
) -> Result<u32, ToolError> {
    let name = &detail.name;
    let current = detail.instances;
    Ok(match (action, instances) {
        (ServiceAction::ScaleUp, Some(n)) if n < current => {
            return Err(ToolError::invalid(format!(
                "scale_up to {n} instances would reduce {name} from {current}; use scale_down \
                 to reduce it"
            )));
        }
        (ServiceAction::ScaleDown, Some(n)) if n > current => {
            return Err(ToolError::invalid(format!(
                "scale_down to {n} instances would grow {name} from {current}; use scale_up \
                 to grow it"
            )));
        }
        (_, Some(n)) => n.clamp(MIN_INSTANCES, MAX_INSTANCES),
        (ServiceAction::ScaleUp, None) if current >= MAX_INSTANCES => {
            return Err(ToolError::new(
                ToolErrorKind::Conflict,
                format!("{name} already runs {current} instances, the most WebOps allows"),
            ));
        }
        (ServiceAction::ScaleDown, None) if current <= MIN_INSTANCES => {
            return Err(ToolError::new(
                ToolErrorKind::Conflict,
                format!(
                    "{name} already runs {current} instance{}, the fewest WebOps allows; to \
                     take it offline use action stop",
                    plural(current as usize)
                ),
            ));
        }
        (ServiceAction::ScaleUp, None) => current + 1,
        (_, None) => current - 1,
    })
}

/// Turns a failed action into an error an agent can act on; 409 answers are explained from
/// the deployment's current status.
fn action_error(detail: &DeploymentDetail, action: ServiceAction, err: ApiError) -> ToolError {
    match err.kind() {
        ApiErrorKind::Conflict => ToolError::new(
            ToolErrorKind::Conflict,
            transition_message(detail, action, err.message()),
        ),
        // A v1 server without the scale extension; a control panel says why itself.
        ApiErrorKind::Unsupported
            if action.is_scale() && err.code() != Some("PANEL_UNSUPPORTED") =>
        {
            ToolError::new(
                ToolErrorKind::Unsupported,
                "This WebOps server cannot scale deployments (it has no scale endpoint); change \
                 the instance count in WebOps itself.",
            )
        }
        _ => upstream_error(err, Some(&detail.id.into())),
    }
}

fn transition_message(detail: &DeploymentDetail, action: ServiceAction, api: &str) -> String {
    use DeploymentStatus as S;
    use ServiceAction as A;
    let name = &detail.name;
    match (&detail.status, action) {
        (S::Stopped, A::Restart) => {
            format!("{name} is stopped; start it before restarting (action: start).")
        }
        (S::Stopped, A::ScaleUp | A::ScaleDown) => {
            format!("{name} is stopped; start it before scaling (action: start).")
        }
        (S::Stopped, A::Stop) => format!("{name} is already stopped."),
        (S::Running, A::Start) => {
            format!("{name} is already running; to restart it use action restart.")
        }
        (S::Pending | S::Building, _) => format!(
            "{name} is still being deployed ({}); wait until webops_get_status shows it \
             running, then try again.",
            detail.status
        ),
        (S::Failed, _) => format!(
            "{name} is failed: its last deployment did not succeed. Read why with \
             webops_get_logs (log_type: deployment) and fix it before {} it.",
            action.doing()
        ),
        (status, _) => format!(
            "{name} is {status}; WebOps refused to {}: {}",
            action.as_str(),
            mask_secrets_in_text(api)
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use webops_client::{ActionResult, MockWebOpsApi, ScaleResult};

    use super::*;
    use crate::tools::test_support::{ctx, detail};

    fn args(v: serde_json::Value) -> ManageServiceArgs {
        serde_json::from_value(v).unwrap()
    }

    fn api_with(status: &'static str, instances: u32) -> MockWebOpsApi {
        let mut api = MockWebOpsApi::new();
        api.expect_get_deployment().returning(move |id| {
            Ok(detail(
                json!({"id": id, "name": "shop-api", "status": status,
                             "instances": instances}),
            ))
        });
        api
    }

    fn action_result(status: &str) -> ActionResult {
        serde_json::from_value(json!({"id": 4, "status": status, "message": "done"})).unwrap()
    }

    #[tokio::test]
    async fn start_stop_restart_call_the_api() {
        for (action, before, after) in [
            ("start", "stopped", "running"),
            ("stop", "running", "stopped"),
            ("restart", "running", "running"),
        ] {
            let mut api = api_with(before, 2);
            match action {
                "start" => {
                    api.expect_start()
                        .returning(move |_| Ok(action_result(after)));
                }
                "stop" => {
                    api.expect_stop()
                        .returning(move |_| Ok(action_result(after)));
                }
                _ => {
                    api.expect_restart()
                        .returning(move |_| Ok(action_result(after)));
                }
            }
            let out = ManageService
                .call(
                    &ctx(api),
                    args(json!({"deployment_id": 4, "action": action})),
                )
                .await
                .unwrap();
            assert_eq!(out.previous_status, before);
            assert_eq!(out.status, after);
            assert_eq!(out.action, action);
            assert!(out.to_text().contains("shop-api (id 4)"));
        }
    }

    #[tokio::test]
    async fn instances_with_a_lifecycle_action_is_invalid() {
        let mut api = MockWebOpsApi::new();
        api.expect_get_deployment().never();
        let err = ManageService
            .call(
                &ctx(api),
                args(json!({"deployment_id": 4, "action": "restart", "instances": 3})),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ToolErrorKind::InvalidArguments);
        assert!(err.message().contains("scale_up and scale_down"));
    }

    #[tokio::test]
    async fn invalid_transitions_are_explained_from_the_status() {
        let mut api = api_with("stopped", 2);
        api.expect_restart().returning(|_| {
            Err(ApiError::new(
                ApiErrorKind::Conflict,
                "HTTP 409 CONFLICT invalid state",
            ))
        });
        let err = ManageService
            .call(
                &ctx(api),
                args(json!({"deployment_id": 4, "action": "restart"})),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ToolErrorKind::Conflict);
        assert_eq!(
            err.message(),
            "shop-api is stopped; start it before restarting (action: start)."
        );

        let mut api = api_with("stopped", 2);
        api.expect_scale()
            .returning(|_, _| Err(ApiError::new(ApiErrorKind::Conflict, "not running")));
        let err = ManageService
            .call(
                &ctx(api),
                args(json!({"deployment_id": 4, "action": "scale_up"})),
            )
            .await
            .unwrap_err();
        assert!(err.message().contains("start it before scaling"));

        let mut api = api_with("failed", 1);
        api.expect_start()
            .returning(|_| Err(ApiError::new(ApiErrorKind::Conflict, "failed")));
        let err = ManageService
            .call(
                &ctx(api),
                args(json!({"deployment_id": 4, "action": "start"})),
            )
            .await
            .unwrap_err();
        assert!(err.message().contains("log_type: deployment"));
    }

    #[tokio::test]
    async fn scaling_by_one_and_to_a_count() {
        let cases = [
            (json!({"action": "scale_up"}), 3, 4),
            (json!({"action": "scale_down"}), 3, 2),
            (json!({"action": "scale_up", "instances": 7}), 3, 7),
            (json!({"action": "scale_down", "instances": 1}), 3, 1),
        ];
        for (extra, current, expected) in cases {
            let mut api = api_with("running", current);
            api.expect_scale().times(1).returning(move |id, n| {
                assert_eq!(n, expected);
                Ok(serde_json::from_value::<ScaleResult>(
                    json!({"id": id, "instances": n, "status": "running"}),
                )
                .unwrap())
            });
            let mut a = json!({"deployment_id": 4});
            a.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let out = ManageService.call(&ctx(api), args(a)).await.unwrap();
            assert_eq!(out.previous_instances, current);
            assert_eq!(out.instances, expected);
        }
    }

    #[tokio::test]
    async fn scaling_the_wrong_way_or_past_the_bounds_is_refused() {
        let cases = [
            (
                json!({"action": "scale_up", "instances": 2}),
                3,
                "use scale_down",
            ),
            (
                json!({"action": "scale_down", "instances": 5}),
                3,
                "use scale_up",
            ),
            (json!({"action": "scale_up"}), 10, "the most WebOps allows"),
            (
                json!({"action": "scale_down"}),
                1,
                "the fewest WebOps allows",
            ),
        ];
        for (extra, current, says) in cases {
            let mut api = api_with("running", current);
            api.expect_scale().never();
            let mut a = json!({"deployment_id": 4});
            a.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let err = ManageService.call(&ctx(api), args(a)).await.unwrap_err();
            assert!(err.message().contains(says), "{}", err.message());
        }
    }

    #[tokio::test]
    async fn scaling_to_the_current_count_changes_nothing() {
        let mut api = api_with("running", 3);
        api.expect_scale().never();
        let out = ManageService
            .call(
                &ctx(api),
                args(json!({"deployment_id": 4, "action": "scale_up", "instances": 3})),
            )
            .await
            .unwrap();
        assert!(out.message.contains("nothing changed"));
    }

    #[tokio::test]
    async fn unsupported_scaling_says_so() {
        let mut api = api_with("running", 2);
        api.expect_scale()
            .returning(|_, _| Err(ApiError::new(ApiErrorKind::Unsupported, "404")));
        let err = ManageService
            .call(
                &ctx(api),
                args(json!({"deployment_id": 4, "action": "scale_down"})),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ToolErrorKind::Unsupported);
        assert!(err.message().contains("cannot scale"));
    }
}
