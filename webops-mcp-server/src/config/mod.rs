//! Configuration: the TOML file shape, environment and flag overrides, validation, and the
//! effective [`Config`] the transports run with.
//!
//! Precedence: defaults < TOML file < environment < flags. Every table rejects unknown keys
//! with an error naming the key and the table. Only [`ConfigLoader`] turns outside input into
//! a [`Config`]; the binary's `main` is the only place that reads the process environment
//! (the names in [`ENV_VARS`]) and hands the values to [`ConfigLoader::env`].
//!
//! - `settings.rs` — the effective types ([`Config`] and its tables);
//! - `secret.rs` — [`Secret`] and the [`REDACTED`] marker;
//! - `load.rs` — [`ConfigLoader`]: reading and merging, `[webops]`, `[security]`, `[stdio]`,
//!   `[http]`; `merge_auth.rs` — merging `[auth]`;
//! - `file.rs` — the file's shape, its error messages, and the redacted view `check-config`
//!   prints;
//! - `resources.rs` — `[resources]` (resource change notifications);
//! - `state.rs` — `[state]` (where a fleet's shared state lives) and the masked Redis URL;
//! - `telemetry.rs` — `[telemetry]` (OpenTelemetry export);
//! - `tools.rs` — `[tools]`, `--tools` and `--toolsets` (which tools exist on the server).

mod file;
mod load;
mod merge_auth;
mod resources;
mod secret;
mod settings;
mod state;
mod telemetry;
mod tools;

use std::time::Duration;

pub use load::ConfigLoader;
pub use secret::{REDACTED, Secret};
pub use settings::{
    ApiKeyEntry, AuthSettings, BasicUser, Config, HttpSettings, JwtSettings, OAuthSettings,
    SecuritySettings, StdioSettings,
};
pub use state::{OnUnavailable, RedisUrl, StateBackend, StateSettings};
pub use telemetry::TelemetrySettings;

/// The name of each environment variable the configuration reads, written once here;
/// [`ENV_VARS`] lists them all.
pub(crate) mod env {
    /// `[webops] api_url`.
    pub(crate) const API_URL: &str = "WEBOPS_API_URL";
    /// `[webops] api_version`.
    pub(crate) const API_VERSION: &str = "WEBOPS_API_VERSION";
    /// `[webops] api_key`.
    pub(crate) const API_KEY: &str = "WEBOPS_API_KEY";
    /// `[webops] flavor`.
    pub(crate) const API_FLAVOR: &str = "WEBOPS_API_FLAVOR";
    /// `[webops] username`.
    pub(crate) const USERNAME: &str = "WEBOPS_USERNAME";
    /// `[webops] password`.
    pub(crate) const PASSWORD: &str = "WEBOPS_PASSWORD";
    /// `[auth.jwt] secret`.
    pub(crate) const JWT_SECRET: &str = "JWT_SECRET";
    /// `[confirmations] state_keys`, comma-separated.
    pub(crate) const CONFIRMATION_KEYS: &str = "WEBOPS_MCP_CONFIRMATION_KEYS";
    /// `[state] redis_url`.
    pub(crate) const REDIS_URL: &str = "WEBOPS_MCP_REDIS_URL";
    /// `[telemetry] otlp_endpoint` (the OpenTelemetry standard variable).
    pub(crate) const OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
    /// `[telemetry] service_name` (the OpenTelemetry standard variable).
    pub(crate) const SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
}

/// The environment variables the configuration reads (besides [`CONFIG_ENV_VAR`], which
/// names the file and is handled by the command line). The one list: the binary reads
/// exactly these, [`ConfigLoader::env`] accepts exactly these, and tests and documentation
/// checks derive theirs from it.
pub const ENV_VARS: [&str; 11] = [
    env::API_URL,
    env::API_VERSION,
    env::API_KEY,
    env::API_FLAVOR,
    env::USERNAME,
    env::PASSWORD,
    env::JWT_SECRET,
    env::CONFIRMATION_KEYS,
    env::REDIS_URL,
    env::OTLP_ENDPOINT,
    env::SERVICE_NAME,
];

/// The environment variable that names the configuration file (the `--config` flag's
/// default). Public for the same reason as [`ENV_VARS`]: whoever clears or documents the
/// server's environment takes the name from here.
pub const CONFIG_ENV_VAR: &str = "WEBOPS_MCP_CONFIG";

/// The default HTTP bind address.
pub(crate) const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// The shortest HS256 secret accepted, in bytes (RFC 7518 §3.2: at least the hash size).
pub(crate) const MIN_JWT_SECRET_BYTES: usize = 32;

/// The default of `[http] request_timeout_secs`: above the longest deploy wait (600 s).
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(660);

/// The default of `[http] read_timeout_secs`.
pub(crate) const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_bind_address_is_the_default_of_http_bind() {
        assert_eq!(
            HttpSettings::default().bind.to_string(),
            DEFAULT_BIND,
            "the error message for a bad bind names DEFAULT_BIND as the example"
        );
    }
}
