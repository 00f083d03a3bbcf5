//! A private, real `redis-server` per test on a free loopback port (no persistence, its files
//! in a temporary directory), which a test can stop and start again on the same port. When
//! `redis-server` is not on PATH it is installed with apt-get (as root); only when that is
//! impossible does a test skip, saying so.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::TempDir;

/// A running `redis-server`, killed on drop.
pub(super) struct RedisServer {
    binary: PathBuf,
    port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// A new server, or `None` (after printing why the test is skipped) when no
    /// `redis-server` can be found or installed.
    pub(super) fn start() -> Option<RedisServer> {
        let binary = match redis_server() {
            Ok(binary) => binary.clone(),
            Err(why) => {
                eprintln!(
                    "SKIPPED: this test needs a real redis-server, which is not on PATH and \
                     could not be installed: {why}"
                );
                return None;
            }
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let mut server = RedisServer {
            binary,
            port,
            dir: TempDir::new(),
            child: None,
        };
        server.restart();
        Some(server)
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub(super) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (its clients' connections drop) and waits for it to end.
    pub(super) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "redis-server still answers");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server (again) on its port, empty, and waits for its PONG.
    pub(super) fn restart(&mut self) {
        self.stop();
        let child = Command::new(&self.binary)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pong(self.port) {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn pong(port: u16) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"PING\r\n")?;
        let mut answer = [0u8; 7];
        stream.read_exact(&mut answer)?;
        Ok(&answer == b"+PONG\r\n")
    };
    attempt().unwrap_or(false)
}

/// `redis-server` on PATH; when missing and running as root with apt-get,
/// `apt-get install -y redis-server` first (once per test run).
fn redis_server() -> &'static Result<PathBuf, String> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND.get_or_init(|| {
        let find = || {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join("redis-server"))
                    .find(|candidate| candidate.is_file())
            })
        };
        if let Some(found) = find() {
            return Ok(found);
        }
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.stdout.trim_ascii() == b"0");
        if !root {
            return Err("not root, so apt-get cannot install it \
                        (install it: apt-get install -y redis-server)"
                .to_owned());
        }
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        eprintln!("redis-server is not on PATH: installing it with apt-get");
        let install = || apt(&["install", "-y", "-q", "redis-server"]);
        // Empty package lists on a fresh machine: update them and try again.
        let installed = install() || (apt(&["update", "-q"]) && install());
        if !installed {
            return Err("apt-get install -y redis-server failed".to_owned());
        }
        find().ok_or_else(|| "apt-get installed redis-server, yet it is not on PATH".to_owned())
    })
}
