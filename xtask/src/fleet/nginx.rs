//! nginx in front of the fleet: its configuration derived from the one operators deploy
//! (`deploy/nginx.conf`) — the same locations and proxy settings, with the upstream listing the
//! replicas, plain HTTP on a loopback port instead of TLS, and every path in a scratch
//! directory — and the process, run in the foreground.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::harness::Proc;
use crate::workspace_root;

/// The operators' configuration, relative to the workspace root.
const DEPLOYED: &str = "deploy/nginx.conf";

/// The deployed server blocks turned into one for the fleet: the upstream's servers are
/// `replicas`, the TLS server listens on `127.0.0.1:port` without TLS, the port-80 redirect is
/// dropped, and the whole sits in a main configuration whose files live in `dir`.
pub(crate) fn fleet_config(
    deployed: &str,
    replicas: &[u16],
    port: u16,
    dir: &Path,
) -> Result<String> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for line in deployed.lines() {
        let code = line.split('#').next().unwrap_or_default().trim();
        if depth == 0 && code.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        depth += code.matches('{').count();
        depth = depth.saturating_sub(code.matches('}').count());
        if depth == 0 && code.ends_with('}') {
            blocks.push(std::mem::take(&mut current));
        }
    }
    let mut http = String::new();
    let mut upstreams = 0;
    let mut servers = 0;
    for block in blocks {
        let head = block.trim_start();
        if head.starts_with("upstream") {
            upstreams += 1;
            for line in block.lines() {
                if line.trim_start().starts_with("server ") {
                    for replica in replicas {
                        http.push_str(&format!("    server 127.0.0.1:{replica};\n"));
                    }
                } else {
                    http.push_str(line);
                    http.push('\n');
                }
            }
        } else if head.starts_with("server") && block.contains("ssl_certificate") {
            servers += 1;
            let mut listened = false;
            for line in block.lines() {
                let code = line.trim_start();
                if code.starts_with("listen") {
                    if !listened {
                        http.push_str(&format!("    listen 127.0.0.1:{port};\n"));
                        listened = true;
                    }
                } else if code.starts_with("ssl_") || code.starts_with("http2") {
                    continue;
                } else {
                    http.push_str(line);
                    http.push('\n');
                }
            }
        }
    }
    if upstreams != 1 || servers != 1 {
        bail!(
            "{DEPLOYED} should hold one upstream and one TLS server block (found {upstreams} and \
             {servers}); the fleet check derives its configuration from them"
        );
    }
    let d = dir.display();
    Ok(format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\n\nevents {{\n    worker_connections 512;\n}}\n\n\
         http {{\n    access_log {d}/access.log;\n    client_body_temp_path {d}/body;\n    \
         proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n    \
         uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\n{http}}}\n"
    ))
}

/// A running nginx, stopped on drop.
pub(crate) struct Nginx {
    _proc: Proc,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base_url: String,
}

impl Nginx {
    /// Writes the fleet configuration to `dir` and starts nginx with it on `port`; waits until
    /// it accepts connections.
    pub(crate) fn start(replicas: &[u16], port: u16, dir: &Path) -> Result<Nginx> {
        let binary = crate::toolchain::debian_binary("nginx", "nginx")?;
        let deployed = std::fs::read_to_string(workspace_root().join(DEPLOYED))
            .with_context(|| format!("reading {DEPLOYED}"))?;
        let config = fleet_config(&deployed, replicas, port, dir)?;
        let path: PathBuf = dir.join("nginx.conf");
        std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
        let mut cmd = Command::new(binary);
        cmd.arg("-c").arg(&path).arg("-p").arg(dir);
        let mut proc = Proc::spawn("nginx", &mut cmd, dir.join("nginx.stderr"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            proc.check_alive()?;
            if Instant::now() > deadline {
                bail!(
                    "nginx did not listen on {port} within 10 s\n{}",
                    proc.stderr_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Nginx {
            _proc: proc,
            base_url: format!("http://127.0.0.1:{port}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deployed_configuration_becomes_a_loopback_fleet() {
        let deployed = std::fs::read_to_string(workspace_root().join(DEPLOYED)).unwrap();
        let config = fleet_config(&deployed, &[7001, 7002, 7003], 7000, Path::new("/s")).unwrap();
        for replica in ["7001", "7002", "7003"] {
            assert!(
                config.contains(&format!("server 127.0.0.1:{replica};")),
                "{config}"
            );
        }
        assert!(config.contains("listen 127.0.0.1:7000;"), "{config}");
        assert!(!config.contains("ssl"), "{config}");
        assert!(!config.contains("return 301"), "{config}");
        assert!(
            config.contains("proxy_buffering off;"),
            "the deployed proxying is kept"
        );
        assert!(config.contains("pid /s/nginx.pid;"), "{config}");
        assert_eq!(config.matches('{').count(), config.matches('}').count());
    }
}
