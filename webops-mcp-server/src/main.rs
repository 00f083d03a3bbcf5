//! The `webops-mcp` binary.
fn main() {}
