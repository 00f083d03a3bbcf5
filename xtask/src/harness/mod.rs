//! Shared machinery of `load-test` and `bench`: release binaries, child processes that die
//! with us, temporary configurations, real MCP clients (Streamable HTTP or stdio), a
//! closed-loop workload driver with latency percentiles and error classes, and RSS readings.
//!
//! `process.rs`: binaries, temporary directories, child processes, keys, RSS and CPU readings;
//! `servers.rs`: the mock and the server under test; `client.rs`: MCP clients; `raw.rs`: the cheap load generator
//! (pre-serialized requests on keep-alive hyper connections); `workload.rs`:
//! the tool calls and how their outcomes are classified; `driver.rs`: the closed loops and
//! their statistics.

mod client;
mod driver;
mod process;
mod raw;
mod servers;
mod workload;

pub(crate) use client::{McpClient, Protocol, STDIO_CLEARED_ENV, connect_http_many, connect_stdio};
pub(crate) use driver::{RunStats, Stop, drive, drive_mcp, mib, ms, parse_duration, print_stats};
pub(crate) use process::{
    Binaries, Proc, TempDir, baseline_server, binaries, cpu_of_pid, free_port, new_key,
    rerun_optimized, rss_from_metrics, rss_of_pid, wait_ready,
};
pub(crate) use raw::{RawClients, RawRequest};
pub(crate) use servers::{MockProcess, ServerProcess, ServerSpec};
/// For tidy's test that the list follows the tool registry.
#[cfg(test)]
pub(crate) use workload::READ_TOOLS;
pub(crate) use workload::{CALL_TIMEOUT, Mix, Outcome, call_tool};
