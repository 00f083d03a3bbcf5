//! The built-in tools, one file each, plus what they share ([`common`]).

mod common;
mod delete_deployment;
mod deploy_app;
mod get_logs;
mod get_status;
mod list_deployments;
mod manage_service;
mod security_audit;
mod system_health;
#[cfg(test)]
mod test_support;
mod untrusted;

use crate::registry::RegistryBuilder;

/// Adds every built-in tool to `builder`: one line per tool.
pub(crate) fn register_builtin(builder: RegistryBuilder) -> RegistryBuilder {
    builder
        .tool(deploy_app::DeployApp::default())
        .tool(get_status::GetStatus)
        .tool(list_deployments::ListDeployments)
        .tool(get_logs::GetLogs)
        .tool(manage_service::ManageService)
        .tool(security_audit::SecurityAudit)
        .tool(system_health::SystemHealth)
        .tool(delete_deployment::DeleteDeployment)
}
