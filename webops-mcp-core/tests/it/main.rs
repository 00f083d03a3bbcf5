//! The integration tests of `webops-mcp-core`, in one test binary: one module per area.

mod audit_log;
mod framework_metrics;
mod framework_pipeline;
mod gates_limits;
mod handler_agent;
mod handler_mcp;
mod hostile_inputs;
mod paging;
mod permissions_matrix;
mod schema_snapshots;
mod secrets_no_leak;
mod support;
mod tool_selection;
mod tools_audit_health;
mod tools_deploy;
mod tools_logs;
mod tools_manage;
mod tools_panel;
mod tools_status_list;
mod tools_upstream;
mod tracing_hooks;
