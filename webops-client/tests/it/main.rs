//! The integration tests of `webops-client`, in one test binary: one module per area.

mod common;
mod endpoints;
mod failures;
mod panel;
mod tracing;
