//! Databases: `GET databases/`.

use super::*;

/// A deployment a database belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeploymentLink {
    /// Deployment id.
    pub id: i64,
    /// Deployment name.
    pub name: String,
}

/// One database of `GET databases/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Database {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Engine (`postgresql`, `mysql`, ...).
    pub engine: DatabaseType,
    /// Host.
    #[serde(default)]
    pub host: String,
    /// Port.
    #[serde(default)]
    pub port: Option<u16>,
    /// Size in MiB.
    #[serde(default)]
    pub size_mb: f64,
    /// Open connections.
    #[serde(default)]
    pub connection_count: i64,
    /// Reachable from the internet (extension; `None` when the server does not say).
    #[serde(default)]
    pub publicly_accessible: Option<bool>,
    /// Requires TLS (extension; `None` when the server does not say).
    #[serde(default)]
    pub ssl_required: Option<bool>,
    /// The owning deployment.
    #[serde(default)]
    pub deployment: Option<DeploymentLink>,
}
