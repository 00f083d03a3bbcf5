//! Which WebOps API a server speaks ([`Flavor`], [`ApiFlavor`]) and what it can do
//! ([`Capabilities`]), so tools can shape their calls and answers to it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::types::LogType;

/// The environment shown for deployments of a server without environments.
pub const NO_ENVIRONMENT: &str = "none";

/// The configured flavour: which API to speak, or `Auto` to find out at first use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    /// Probe `GET /api/v1/status/`, then `GET /api/status/`, once, at first use.
    #[default]
    Auto,
    /// The documented WebOps REST API v1 (`/api/v1/`, Bearer token).
    V1,
    /// The shipped WebOps control panel (`/api/`, form login with a session cookie).
    Panel,
}

impl Flavor {
    /// Every value, as configuration spells it.
    pub const NAMES: &'static [&'static str] = &["auto", "v1", "panel"];

    /// The value as configuration spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Flavor::Auto => "auto",
            Flavor::V1 => "v1",
            Flavor::Panel => "panel",
        }
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Flavor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "auto" => Ok(Flavor::Auto),
            "v1" => Ok(Flavor::V1),
            "panel" => Ok(Flavor::Panel),
            other => Err(format!(
                "unknown WebOps API flavour {other:?}; use one of: {}",
                Flavor::NAMES.join(", ")
            )),
        }
    }
}

/// The API a client actually speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiFlavor {
    /// The documented WebOps REST API v1.
    V1,
    /// The shipped WebOps control panel.
    Panel,
}

impl ApiFlavor {
    /// `v1` or `panel`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiFlavor::V1 => "v1",
            ApiFlavor::Panel => "panel",
        }
    }
}

impl fmt::Display for ApiFlavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a WebOps server can do. Tools read it to refuse what the server cannot honour
/// instead of dropping it, and to word their answers truthfully.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// The API in use.
    pub flavor: ApiFlavor,
    /// How the flavour was chosen (configured, or what the probe saw).
    pub why: String,
    /// Deployments belong to environments (development, staging, production).
    pub environments: bool,
    /// A new deployment honours environment, project type, Python version, database,
    /// memory limit and TLS; without it only name, repository, branch, domain and env vars.
    pub deploy_options: bool,
    /// Deployments have instances that can be scaled.
    pub scaling: bool,
    /// The log streams that exist.
    pub log_types: Vec<LogType>,
    /// Per-deployment health checks and runtime metrics exist.
    pub deployment_health: bool,
    /// A successful delete means the deployment is gone (else: the request was accepted and
    /// the deletion goes on in the background, unobservable through the API).
    pub delete_is_final: bool,
    /// The least time between two polls of one deployment that the server's request budget
    /// allows.
    pub poll_interval: Duration,
    /// [`crate::WebOpsApi::repo_env`] reads the repository's `.env`.
    pub repo_env: bool,
    /// [`crate::WebOpsApi::project_checks`] reads the server's own project checks.
    pub project_checks: bool,
    /// Databases say whether they are reachable from the internet and require TLS.
    pub database_exposure: bool,
}

impl Capabilities {
    /// The documented REST API v1: everything.
    pub fn v1(why: impl Into<String>) -> Self {
        Capabilities {
            flavor: ApiFlavor::V1,
            why: why.into(),
            environments: true,
            deploy_options: true,
            scaling: true,
            log_types: LogType::KNOWN.to_vec(),
            deployment_health: true,
            delete_is_final: true,
            poll_interval: Duration::from_millis(500),
            repo_env: false,
            project_checks: false,
            database_exposure: true,
        }
    }

    /// The shipped control panel, whose request budget allows a poll every `poll_interval`.
    pub fn panel(why: impl Into<String>, poll_interval: Duration) -> Self {
        Capabilities {
            flavor: ApiFlavor::Panel,
            why: why.into(),
            environments: false,
            deploy_options: false,
            scaling: false,
            log_types: vec![LogType::Deployment, LogType::Error],
            deployment_health: false,
            delete_is_final: false,
            poll_interval,
            repo_env: true,
            project_checks: true,
            database_exposure: false,
        }
    }

    /// Whether log stream `log_type` exists.
    pub fn has_log_type(&self, log_type: &LogType) -> bool {
        self.log_types.contains(log_type)
    }
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities::v1("configured: v1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavors_parse_and_name_the_choices() {
        assert_eq!("panel".parse::<Flavor>(), Ok(Flavor::Panel));
        assert_eq!(" v1 ".parse::<Flavor>(), Ok(Flavor::V1));
        let err = "django".parse::<Flavor>().unwrap_err();
        assert!(err.contains("auto, v1, panel"), "{err}");
        for name in Flavor::NAMES {
            assert_eq!(name.parse::<Flavor>().unwrap().as_str(), *name);
        }
    }
}
