//! The processes under measurement: `webops-mock` with the demo data and `webops-mcp http`
//! with a configuration written for the run.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result};
use serde_json::Value;

use super::process::{Proc, TempDir, free_port, new_key, wait_ready};

/// The permissions of the load client's key: exactly what the read tools need.
const READ_PERMISSIONS: &str = r#"["deploy:read", "logs:read", "security:audit", "system:read"]"#;

/// A `webops-mock` process with the demo data.
pub(crate) struct MockProcess {
    pub(crate) proc: Proc,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base_url: String,
    /// Its full-access bearer token.
    pub(crate) token: String,
}

impl MockProcess {
    /// Starts `webops-mock --seed demo` on a free port with a random token; request logging
    /// off (`RUST_LOG=warn`), so neither path pays for the mock's debug lines.
    pub(crate) async fn start(bin: &Path, dir: &TempDir) -> Result<MockProcess> {
        let port = free_port()?;
        let (token, _) = new_key("mock-")?;
        let mut cmd = Command::new(bin);
        cmd.args(["--bind", &format!("127.0.0.1:{port}"), "--seed", "demo"])
            .env("WEBOPS_MOCK_TOKEN", &token)
            .env("RUST_LOG", "warn");
        let mut proc = Proc::spawn("webops-mock", &mut cmd, dir.join("mock.stderr"))?;
        let base_url = format!("http://127.0.0.1:{port}");
        wait_ready(
            &reqwest::Client::new(),
            &format!("{base_url}/api/v1/status/"),
            &mut proc,
        )
        .await?;
        Ok(MockProcess {
            proc,
            base_url,
            token,
        })
    }
}

/// How to start a `webops-mcp http` process.
pub(crate) struct ServerSpec<'a> {
    pub(crate) bin: &'a Path,
    /// `None`: `--demo` (the in-process mock); `Some`: this mock's URL and token.
    pub(crate) upstream: Option<(&'a str, &'a str)>,
    /// `None` keeps the default (100 per minute).
    pub(crate) rate_limit_per_minute: Option<u32>,
    pub(crate) max_concurrent_requests: usize,
    /// The SHA-256 digest of the client key.
    pub(crate) key_digest: &'a str,
    /// Where the audit log goes.
    pub(crate) audit_log: PathBuf,
    /// Where the configuration file is written.
    pub(crate) config_path: PathBuf,
    /// More tables of the configuration (e.g. `[state]`), appended as they are.
    pub(crate) extra_toml: String,
}

impl ServerSpec<'_> {
    /// The configuration file's text.
    pub(crate) fn config_toml(&self) -> String {
        let mut toml = String::from("[security]\n");
        if let Some(n) = self.rate_limit_per_minute {
            toml.push_str(&format!("rate_limit_per_minute = {n}\n"));
        }
        toml.push_str(&format!(
            "max_concurrent_requests = {}\naudit_log = {}\n",
            self.max_concurrent_requests,
            toml_string(&self.audit_log.to_string_lossy())
        ));
        if let Some((url, _)) = self.upstream {
            toml.push_str(&format!("\n[webops]\napi_url = {}\n", toml_string(url)));
        }
        toml.push_str(&format!(
            "\n[[auth.api_keys]]\nuser_id = \"load-client\"\nkey_sha256 = \"{}\"\npermissions = {READ_PERMISSIONS}\n",
            self.key_digest
        ));
        toml.push_str(&self.extra_toml);
        toml
    }

    /// Writes the configuration and spawns `webops-mcp http` on `port` (not waiting).
    pub(crate) fn spawn(&self, port: u16, stderr: PathBuf) -> Result<Proc> {
        std::fs::write(&self.config_path, self.config_toml())
            .with_context(|| format!("writing {}", self.config_path.display()))?;
        let mut cmd = Command::new(self.bin);
        cmd.arg("http")
            .arg("--config")
            .arg(&self.config_path)
            .args(["--bind", &format!("127.0.0.1:{port}")]);
        for name in [
            "WEBOPS_MCP_CONFIG",
            "WEBOPS_API_URL",
            "WEBOPS_API_VERSION",
            "WEBOPS_API_KEY",
            "JWT_SECRET",
            "RUST_LOG",
        ] {
            cmd.env_remove(name);
        }
        match self.upstream {
            Some((_, token)) => {
                cmd.env("WEBOPS_API_KEY", token);
            }
            None => {
                cmd.arg("--demo");
            }
        }
        Proc::spawn("webops-mcp", &mut cmd, stderr)
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    Value::from(s).to_string()
}

/// A running `webops-mcp http`.
pub(crate) struct ServerProcess {
    pub(crate) proc: Proc,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base_url: String,
}

impl ServerProcess {
    /// Starts the server of `spec` on a free port and waits until `/health` answers.
    pub(crate) async fn start(spec: &ServerSpec<'_>, stderr: PathBuf) -> Result<ServerProcess> {
        let port = free_port()?;
        let mut proc = spec.spawn(port, stderr)?;
        let base_url = format!("http://127.0.0.1:{port}");
        wait_ready(
            &reqwest::Client::new(),
            &format!("{base_url}/health"),
            &mut proc,
        )
        .await?;
        Ok(ServerProcess { proc, base_url })
    }

    pub(crate) fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_configuration_raises_limits_and_keeps_secrets_out() {
        let spec = ServerSpec {
            bin: Path::new("webops-mcp"),
            upstream: Some(("http://127.0.0.1:9", "mock-token")),
            rate_limit_per_minute: Some(1_000_000),
            max_concurrent_requests: 256,
            key_digest: "ab",
            audit_log: PathBuf::from("scratch/a \"b\".jsonl"),
            config_path: PathBuf::from("scratch/c.toml"),
            extra_toml: String::new(),
        };
        let toml = spec.config_toml();
        assert!(toml.contains("rate_limit_per_minute = 1000000\n"), "{toml}");
        assert!(
            toml.contains(r#"audit_log = "scratch/a \"b\".jsonl""#),
            "{toml}"
        );
        assert!(toml.contains("api_url = \"http://127.0.0.1:9\""), "{toml}");
        assert!(
            !toml.contains("mock-token"),
            "the WebOps token goes in the environment"
        );
        let default = ServerSpec {
            rate_limit_per_minute: None,
            upstream: None,
            ..spec
        };
        assert!(!default.config_toml().contains("rate_limit_per_minute"));
        assert!(!default.config_toml().contains("[webops]"));
    }
}
