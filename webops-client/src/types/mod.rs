//! The data types of the WebOps REST API v1: what the server sends and what the client sends.
//!
//! Decoding is tolerant: unknown fields are ignored and an unknown enum value is kept as the
//! `Other(String)` variant instead of failing the whole object.

mod database;
mod deployment;
mod lifecycle;
mod list;
mod logs;
mod monitoring;
pub(crate) mod time;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use database::*;
pub use deployment::*;
pub use lifecycle::*;
pub use list::*;
pub use logs::*;
pub use monitoring::*;

/// A point in time, always UTC.
pub type Timestamp = DateTime<Utc>;

/// Declares a string enum of the API with an `Other(String)` fallback for values this version
/// of the client does not know yet.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $wire:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version of the client does not know, kept verbatim.
            Other(String),
        }

        impl $name {
            /// Every value this version knows, in declaration order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// The value as it appears on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )+
                    $name::Other(other) => other.as_str(),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(match s {
                    $( $wire => $name::$variant, )+
                    other => $name::Other(other.to_owned()),
                })
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s.parse() {
                    Ok(value) => value,
                    Err(never) => match never {},
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                Ok($name::from(s.as_str()))
            }
        }
    };
}

string_enum! {
    /// Where a deployment is in its lifecycle.
    pub enum DeploymentStatus {
        /// Accepted, not yet building.
        Pending => "pending",
        /// Cloning, installing, building.
        Building => "building",
        /// Serving traffic.
        Running => "running",
        /// Stopped by an operator.
        Stopped => "stopped",
        /// The deployment process failed.
        Failed => "failed",
    }
}

string_enum! {
    /// The environment a deployment belongs to.
    pub enum Environment {
        /// Development.
        Development => "development",
        /// Staging.
        Staging => "staging",
        /// Production.
        Production => "production",
    }
}

#[allow(clippy::derivable_impls)] // the enum comes from a macro shared with enums without a default
impl Default for Environment {
    fn default() -> Self {
        Environment::Production
    }
}

string_enum! {
    /// The database engine attached to a deployment.
    pub enum DatabaseType {
        /// PostgreSQL.
        Postgresql => "postgresql",
        /// MySQL.
        Mysql => "mysql",
        /// SQLite.
        Sqlite => "sqlite",
    }
}

string_enum! {
    /// Severity of a log line.
    pub enum LogLevel {
        /// Debug.
        Debug => "debug",
        /// Info.
        Info => "info",
        /// Warning.
        Warning => "warning",
        /// Error.
        Error => "error",
        /// Critical.
        Critical => "critical",
    }
}

string_enum! {
    /// Which log stream of a deployment to read.
    pub enum LogType {
        /// The application's own output (the default).
        Application => "application",
        /// HTTP access log.
        Access => "access",
        /// Error log.
        Error => "error",
        /// The deployment process (clone, build, start).
        Deployment => "deployment",
    }
}

string_enum! {
    /// Overall platform health.
    pub enum OverallStatus {
        /// All good.
        Healthy => "healthy",
        /// Working with problems.
        Degraded => "degraded",
        /// Not working.
        Unhealthy => "unhealthy",
    }
}

string_enum! {
    /// State of a platform service (web server, worker, database, ...).
    pub enum ServiceState {
        /// Running.
        Running => "running",
        /// Stopped.
        Stopped => "stopped",
        /// Failed.
        Failed => "failed",
    }
}

string_enum! {
    /// Time window of `monitoring/metrics/`.
    pub enum MetricsPeriod {
        /// The last hour.
        Hour => "1h",
        /// The last six hours.
        SixHours => "6h",
        /// The last day.
        Day => "24h",
        /// The last week.
        Week => "7d",
        /// The last thirty days.
        Month => "30d",
    }
}

/// `GET status/`: the API is up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApiStatus {
    /// `"ok"` when healthy.
    pub status: String,
    /// The server's version string.
    pub version: String,
    /// The server's clock.
    #[serde(deserialize_with = "crate::types::time::deserialize")]
    pub timestamp: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_enum_values_are_kept() {
        let s: DeploymentStatus = serde_json::from_str("\"paused\"").unwrap();
        assert_eq!(s, DeploymentStatus::Other("paused".into()));
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"paused\"");
        let s: DeploymentStatus = serde_json::from_str("\"running\"").unwrap();
        assert_eq!(s, DeploymentStatus::Running);
    }
}
