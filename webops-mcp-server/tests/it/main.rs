//! The integration tests of `webops-mcp-server`, in one test binary: one module per area.

mod cli;
mod common;
mod config;
mod confirmations;
mod edges;
mod http_auth;
mod http_mcp;
mod selection;
mod shared_state;
mod stdio;
mod telemetry;
