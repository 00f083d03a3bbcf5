//! The built-in tools, one file each, plus what they share ([`common`]).

mod common;
mod delete_deployment;
mod deploy_app;
mod get_logs;
mod get_status;
mod list_deployments;
mod manage_service;
mod page;
pub(crate) mod repository;
mod security_audit;
mod system_health;
#[cfg(test)]
mod test_support;
mod untrusted;

use crate::config::SecurityConfig;
use crate::registry::RegistryBuilder;
use crate::selection::Toolset;
use crate::tool::Tool;

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

/// The built-in tools of `toolset` (every built-in tool is in exactly one).
pub(crate) fn toolset(toolset: Toolset) -> &'static [&'static str] {
    const OBSERVE: &[&str] = &[
        list_deployments::ListDeployments::NAME,
        get_status::GetStatus::NAME,
        get_logs::GetLogs::NAME,
        system_health::SystemHealth::NAME,
    ];
    const DEPLOY: &[&str] = &[
        deploy_app::DeployApp::NAME,
        manage_service::ManageService::NAME,
    ];
    const SECURITY: &[&str] = &[security_audit::SecurityAudit::NAME];
    const ADMIN: &[&str] = &[delete_deployment::DeleteDeployment::NAME];
    match toolset {
        Toolset::Observe => OBSERVE,
        Toolset::Deploy => DEPLOY,
        Toolset::Security => SECURITY,
        Toolset::Admin => ADMIN,
    }
}
