//! The built-in tools, one file each, plus what they share ([`common`]).

mod common;
mod delete_deployment;
mod deploy_app;
mod get_logs;
mod get_status;
mod list_deployments;
mod manage_service;
mod page;
mod repository;
mod security_audit;
mod system_health;
#[cfg(test)]
mod test_support;
mod untrusted;

use crate::config::SecurityConfig;
use crate::registry::RegistryBuilder;

/// Adds every built-in tool to `builder`, configured by the default [`SecurityConfig`].
pub(crate) fn register_builtin(builder: RegistryBuilder) -> RegistryBuilder {
    register_builtin_with(builder, &SecurityConfig::default())
}

/// Adds every built-in tool to `builder`, configured by `security`: one line per tool.
pub(crate) fn register_builtin_with(
    builder: RegistryBuilder,
    security: &SecurityConfig,
) -> RegistryBuilder {
    builder
        .tool(deploy_app::DeployApp::new(security.repositories.clone()))
        .tool(get_status::GetStatus)
        .tool(list_deployments::ListDeployments)
        .tool(get_logs::GetLogs)
        .tool(manage_service::ManageService)
        .tool(security_audit::SecurityAudit)
        .tool(system_health::SystemHealth)
        .tool(delete_deployment::DeleteDeployment)
}
