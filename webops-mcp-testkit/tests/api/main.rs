//! Integration tests of the mock WebOps API over real loopback HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary;
mod common;
mod demo;
mod errors;
mod faults;
mod idempotency;
mod lifecycle;
mod listing;
mod logs;
mod monitoring;
mod panel;
