//! `redis-server` for the checks that need a real one: the server's shared-state tests (which
//! `ci` makes sure can find it), the fleet, `bench --state redis` and the control panel's
//! Redis mode. Found on PATH, or installed with apt-get when missing (as root); [`pong`] tells
//! when one answers, [`start`] runs a private one.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::harness::Proc;

/// `redis-server` on PATH; when missing and running as root, installed from Debian's package
/// (about 10 s).
pub(crate) fn redis_server() -> Result<PathBuf> {
    crate::toolchain::debian_binary("redis-server", "redis-server")
}

/// Whether the Redis on loopback `port` answers `PING`.
pub(crate) fn pong(port: u16) -> bool {
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

/// A private `redis-server` on loopback `port` (no persistence, files in `dir`), once it
/// answers PING; stopped when the returned process drops.
pub(crate) fn start(dir: &Path, port: u16) -> Result<Proc> {
    let binary = redis_server()?;
    let mut cmd = Command::new(binary);
    cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir);
    let mut proc = Proc::spawn("redis-server", &mut cmd, dir.join("redis.stderr"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pong(port) {
        proc.check_alive()?;
        if Instant::now() > deadline {
            bail!("redis-server did not answer PING within 10 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(proc)
}
