//! [`Error`]: the one error type of the server crate.

use std::io;
use std::path::PathBuf;

use webops_mcp_core::BuildError;

/// Why the server could not start or a command failed. `Display` never contains a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid; one message per problem. Messages rather than the
    /// parser's errors: those may quote the offending line, and a line of the file can hold
    /// a secret, so each problem is reworded to name the table and key instead.
    #[error("invalid configuration:\n{}", bullet_list(.0))]
    Config(Vec<String>),

    /// The configuration file could not be read.
    #[error("cannot read the configuration file {}: {source}", path.display())]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },

    /// `http` was started without any authentication method.
    #[error(
        "refusing to serve HTTP without authentication: no API key, JWT, basic user or anonymous \
         identity is configured.\n  Create an API key with `webops-mcp hash-key` and paste the \
         printed [[auth.api_keys]] snippet into your configuration file (see \
         docs/configuration.md), or try `webops-mcp http --demo`."
    )]
    NoHttpAuth,

    /// The MCP server could not be built from the configuration.
    #[error("cannot build the MCP server: {0}")]
    Build(#[source] BuildError),

    /// `hash-password` could not hash the password.
    #[error("{context}: {cause}")]
    HashPassword {
        /// What was being done.
        context: &'static str,
        /// The cause (typed, but not a `source`: the argon2 crate's error does not implement
        /// `std::error::Error` in the features this crate enables).
        cause: argon2::password_hash::Error,
    },

    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: io::Error,
    },

    /// The MCP transport failed. A message, not a source: the transports (rmcp's service
    /// start and its task join) fail with several error types, and this variant's users are
    /// the transport modules, which another change reshapes.
    #[error("MCP transport error: {0}")]
    Transport(String),

    /// The OpenTelemetry export (`[telemetry]`) could not be set up.
    #[error("{0}")]
    Telemetry(String),
}

impl Error {
    /// An [`Error::Io`] with context.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

fn bullet_list(items: &[String]) -> String {
    items
        .iter()
        .map(|item| format!("  - {item}"))
        .collect::<Vec<_>>()
        .join("\n")
}
