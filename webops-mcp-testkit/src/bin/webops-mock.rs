//! `webops-mock`: serves the mock WebOps API for manual use.
fn main() {}
