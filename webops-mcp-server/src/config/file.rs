//! The configuration file's shape (every table rejects unknown keys), its parsing into
//! messages that name the table and the key and never show a secret, and the same shape
//! filled from an effective [`Config`] with secrets redacted (what `check-config` prints).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use webops_mcp_core::{
    ConfirmationConfig, DestructivePolicy, Fallback, PermissionSet, RepositoryPolicy, WritePolicy,
};

use super::resources::ResourcesFile;
use super::secret::Secret;
use super::settings::{
    AuthSettings, Config, HttpSettings, JwtKeySource, SecuritySettings, StdioSettings,
};
use super::state::StateFile;
use super::telemetry::TelemetryFile;
use super::tools::ToolsFile;
use crate::error::Error;
use webops_client::ClientConfig;

/// Parses the file, turning serde errors into messages that name the table and the key and
/// never show a secret value.
pub(super) fn parse_file(text: &str, label: &str) -> Result<FileConfig, Error> {
    let deserializer = toml::Deserializer::parse(text).map_err(|e| {
        Error::Config(vec![format!(
            "{label}: TOML syntax error{}: {}",
            line_of(text, e.span()),
            e.message().trim()
        )])
    })?;
    serde_path_to_error::deserialize::<_, FileConfig>(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner();
        let at = line_of(text, inner.span());
        let table = table_of(&path);
        let key = path.rsplit('.').next().unwrap_or_default();
        let message = inner.message().trim();
        let message = if SECRET_KEYS.contains(&key) {
            "invalid value (not shown: this key holds a secret); expected a string".to_owned()
        } else if let Some(rest) = message.strip_prefix("unknown field ") {
            format!("unknown key {rest}")
        } else {
            message.to_owned()
        };
        let location = match table {
            Some(table) => format!("in {table}"),
            None => "at the top level".to_owned(),
        };
        Error::Config(vec![format!("{label}{at}: {location}: {message}")])
    })
}

/// Keys whose values are secrets.
const SECRET_KEYS: [&str; 6] = [
    "api_key",
    "password",
    "secret",
    "password_hash",
    "state_keys",
    "redis_url",
];

/// ` (line N)` for a byte span.
fn line_of(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(span) => {
            let end = span.start.min(text.len());
            let line = text.as_bytes()[..end]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

/// The table of a serde path such as `auth.api_keys[0].oops` → `[[auth.api_keys]] #1`.
fn table_of(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('.').collect();
    if segments.len() < 2 {
        return None;
    }
    let table = segments[..segments.len() - 1].join(".");
    if let Some(open) = table.rfind('[')
        && table.ends_with(']')
    {
        let index: usize = table[open + 1..table.len() - 1].parse().unwrap_or(0);
        Some(format!("[[{}]] #{}", &table[..open], index + 1))
    } else {
        Some(format!("[{table}]"))
    }
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    #[serde(default)]
    pub(super) webops: WebopsFile,
    #[serde(default)]
    pub(super) security: SecurityFile,
    #[serde(default)]
    pub(super) stdio: StdioFile,
    #[serde(default)]
    pub(super) http: HttpFile,
    #[serde(default)]
    pub(super) auth: AuthFile,
    #[serde(default)]
    pub(super) confirmations: ConfirmationsFile,
    #[serde(default)]
    pub(super) resources: ResourcesFile,
    #[serde(default)]
    pub(super) state: StateFile,
    #[serde(default)]
    pub(super) telemetry: TelemetryFile,
    #[serde(default)]
    pub(super) tools: ToolsFile,
    #[serde(default)]
    pub(super) limits: LimitsFile,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LimitsFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) max_answer_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfirmationsFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) destructive: Option<DestructivePolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) write: Option<WritePolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) fallback: Option<Fallback>,
    /// `"<key id>:<secret of at least 32 bytes>"`, the first seals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) state_keys: Option<Vec<Secret>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) state_ttl_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WebopsFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) api_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) api_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) api_key: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) timeout_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) max_retries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) flavor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) password: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) budget_requests: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) budget_window_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) cache_ttl_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) repository_schemes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) allowed_repository_hosts: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SecurityFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) rate_limit_per_minute: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) max_concurrent_requests: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) audit_logging: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) audit_log: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) read_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) server_id: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StdioFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) permissions: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) bind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) allowed_hosts: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) allowed_origins: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) metrics_require_auth: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) trusted_proxies: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) request_timeout_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) read_timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuthFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) anonymous_permissions: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) api_keys: Option<Vec<ApiKeyFile>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) jwt: Option<JwtFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) basic: Option<Vec<BasicFile>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) oauth: Option<OAuthFile>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ApiKeyFile {
    pub(super) user_id: String,
    pub(super) key_sha256: String,
    #[serde(default)]
    pub(super) permissions: Vec<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JwtFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) secret: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) public_key_pem_file: Option<PathBuf>,
    /// Shown by `check-config` only; not a key of the file.
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub(super) algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) audience: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BasicFile {
    pub(super) username: String,
    pub(super) password_hash: Secret,
    #[serde(default)]
    pub(super) permissions: Vec<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OAuthFile {
    pub(super) resource: String,
    pub(super) authorization_servers: Vec<String>,
}

impl FileConfig {
    /// The effective configuration in the file's shape, secrets redacted.
    pub(super) fn redacted_view(config: &Config) -> FileConfig {
        FileConfig {
            webops: WebopsFile::redacted_view(&config.webops, &config.security.repositories),
            security: SecurityFile::view(&config.security),
            stdio: StdioFile::view(&config.stdio),
            http: HttpFile::view(&config.http),
            auth: AuthFile::redacted_view(&config.auth),
            confirmations: ConfirmationsFile::redacted_view(&config.confirmations),
            resources: ResourcesFile::view(&config.resources),
            state: StateFile::view(&config.state),
            telemetry: TelemetryFile::view(&config.telemetry),
            limits: LimitsFile {
                max_answer_bytes: Some(config.security.max_answer_bytes),
            },
            tools: ToolsFile::view(&config.tools),
        }
    }
}

impl ConfirmationsFile {
    fn redacted_view(c: &ConfirmationConfig) -> ConfirmationsFile {
        ConfirmationsFile {
            destructive: Some(c.destructive),
            write: Some(c.write),
            fallback: c.fallback,
            state_keys: (!c.state_keys.is_empty())
                .then(|| c.state_keys.iter().map(|_| redacted()).collect()),
            state_ttl_secs: Some(c.state_ttl.as_secs()),
        }
    }
}

/// A permission set as the file lists it.
fn permission_names(set: &PermissionSet) -> Vec<String> {
    set.iter().map(|p| p.as_str().to_owned()).collect()
}

/// Stands in for a secret that is set: it serializes as the redaction marker whatever it
/// holds, so it holds nothing.
fn redacted() -> Secret {
    Secret::new("")
}

impl WebopsFile {
    fn redacted_view(webops: &ClientConfig, repositories: &RepositoryPolicy) -> WebopsFile {
        WebopsFile {
            api_url: Some(webops.api_url.clone()),
            api_version: Some(webops.api_version.clone()),
            api_key: webops.api_key.as_ref().map(|_| redacted()),
            timeout_secs: Some(webops.timeout.as_secs()),
            max_retries: Some(webops.max_retries),
            flavor: Some(webops.flavor.as_str().to_owned()),
            username: webops.username.clone(),
            password: webops.password.as_ref().map(|_| redacted()),
            budget_requests: Some(webops.budget.requests),
            budget_window_secs: Some(webops.budget.window.as_secs()),
            cache_ttl_secs: Some(webops.cache_ttl.as_secs()),
            repository_schemes: Some(
                repositories
                    .schemes
                    .iter()
                    .map(|s| s.as_str().to_owned())
                    .collect(),
            ),
            allowed_repository_hosts: Some(repositories.allowed_hosts.clone()),
        }
    }
}

impl SecurityFile {
    fn view(security: &SecuritySettings) -> SecurityFile {
        SecurityFile {
            rate_limit_per_minute: Some(security.rate_limit_per_minute),
            max_concurrent_requests: Some(security.max_concurrent_requests),
            audit_logging: Some(security.audit_logging),
            audit_log: security.audit_log.clone(),
            read_only: Some(security.read_only),
            server_id: Some(security.server_id.clone()),
        }
    }
}

impl StdioFile {
    fn view(stdio: &StdioSettings) -> StdioFile {
        StdioFile {
            user_id: Some(stdio.user_id.clone()),
            permissions: Some(permission_names(&stdio.permissions)),
        }
    }
}

impl HttpFile {
    fn view(http: &HttpSettings) -> HttpFile {
        HttpFile {
            bind: Some(http.bind.to_string()),
            allowed_hosts: Some(http.allowed_hosts.clone()),
            allowed_origins: Some(http.allowed_origins.clone()),
            metrics_require_auth: Some(http.metrics_require_auth),
            trusted_proxies: Some(
                http.trusted_proxies
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            ),
            request_timeout_secs: Some(http.request_timeout.as_secs()),
            read_timeout_secs: Some(http.read_timeout.as_secs()),
        }
    }
}

impl AuthFile {
    fn redacted_view(auth: &AuthSettings) -> AuthFile {
        AuthFile {
            anonymous_permissions: Some(
                auth.anonymous_permissions
                    .as_ref()
                    .map(permission_names)
                    .unwrap_or_default(),
            ),
            api_keys: Some(
                auth.api_keys
                    .iter()
                    .map(|k| ApiKeyFile {
                        user_id: k.user_id.clone(),
                        key_sha256: hex::encode(k.digest),
                        permissions: permission_names(&k.permissions),
                    })
                    .collect(),
            ),
            jwt: auth.jwt.as_ref().map(|jwt| JwtFile {
                secret: matches!(jwt.key.source, JwtKeySource::Secret).then(redacted),
                public_key_pem_file: match &jwt.key.source {
                    JwtKeySource::PemFile(path) => Some(path.clone()),
                    JwtKeySource::Secret => None,
                },
                algorithm: Some(format!("{:?}", jwt.key.algorithm)),
                issuer: jwt.issuer.clone(),
                audience: jwt.audience.clone(),
            }),
            basic: Some(
                auth.basic
                    .iter()
                    .map(|u| BasicFile {
                        username: u.username.clone(),
                        password_hash: u.password_hash.clone(),
                        permissions: permission_names(&u.permissions),
                    })
                    .collect(),
            ),
            oauth: auth.oauth.as_ref().map(|o| OAuthFile {
                resource: o.resource.clone(),
                authorization_servers: o.authorization_servers.clone(),
            }),
        }
    }
}
