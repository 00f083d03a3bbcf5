//! Lists the deployments of a WebOps server: here the testkit's mock with its demo data, so the
//! example runs anywhere. Point `base_url` and `token` at a real server to list yours.
//!
//! `cargo run -p webops-client --example list_deployments`

use std::time::Duration;

use webops_client::{Client, DeploymentFilter, WebOpsApi, WebOpsApiExt};
use webops_mcp_testkit::{MockWebOps, Seed};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock = MockWebOps::builder().seed(Seed::Demo).start().await?;

    let client = Client::builder()
        .base_url(mock.base_url())
        .token(mock.token())
        .timeout(Duration::from_secs(10))
        .build()?;

    let status = client.status().await?;
    println!(
        "WebOps {} at {} is {}\n",
        status.version,
        mock.base_url(),
        status.status
    );

    let deployments = client
        .list_all_deployments(&DeploymentFilter::new(), None)
        .await?;
    println!(
        "{:>4}  {:<20} {:<9} {:<12} {:<8} URL",
        "ID", "NAME", "STATUS", "ENVIRONMENT", "HEALTHY"
    );
    for d in &deployments {
        println!(
            "{:>4}  {:<20} {:<9} {:<12} {:<8} {}",
            d.id,
            d.name,
            d.status.as_str(),
            d.environment.as_str(),
            if d.health.is_healthy { "yes" } else { "no" },
            d.url.as_deref().unwrap_or("-"),
        );
    }
    println!("\n{} deployments", deployments.len());
    Ok(())
}
