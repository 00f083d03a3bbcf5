//! [`PanelMode::Redis`](super::PanelMode::Redis)'s helpers: a private `redis-server` per
//! panel (found or installed by [`crate::redis`]) and the wait for its Celery worker.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::instance::{GroupChild, free_port};
use crate::interop::tail;
use crate::redis::{pong as redis_pong, redis_server};

/// Environment variables to add to a command.
pub(super) type EnvVars = Vec<(String, String)>;

/// Starts `redis-server` on a free loopback port (no persistence, files in `dir`) and waits for
/// its PONG; returns it, its port and the panel's environment for it.
pub(super) fn start_redis(dir: &Path) -> Result<(GroupChild, u16, EnvVars)> {
    let binary = redis_server()?;
    let port = free_port()?;
    let mut cmd = Command::new(binary);
    cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir);
    let log = dir.join("redis.log");
    let mut redis = GroupChild::spawn(cmd, &log, "redis-server")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if redis_pong(port) {
            break;
        }
        redis.check_running().with_context(|| tail(&log, 20))?;
        if Instant::now() > deadline {
            bail!(
                "redis-server did not answer PING within 10 s\n{}",
                tail(&log, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let url = |db: u8| format!("redis://127.0.0.1:{port}/{db}");
    let env = vec![
        ("CELERY_BROKER_URL".to_owned(), url(0)),
        ("CELERY_RESULT_BACKEND".to_owned(), url(1)),
        ("REDIS_URL".to_owned(), url(3)),
    ];
    Ok((redis, port, env))
}

/// Waits up to 60 s until a client of the Redis at `port` blocks in BRPOP: the worker
/// consumes its queue. (Its "ready." line never reaches the log: the panel's logging config
/// swallows the worker's own messages.)
pub(super) fn wait_for_worker(worker: &mut GroupChild, port: u16, log: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if redis_client_list(port).is_some_and(|list| list.contains("cmd=brpop")) {
            return Ok(());
        }
        worker.check_running().with_context(|| tail(log, 30))?;
        if Instant::now() > deadline {
            bail!(
                "the celery worker did not consume its queue within 60 s\n{}",
                tail(log, 30)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The answer to `CLIENT LIST` (a RESP bulk string).
fn redis_client_list(port: u16) -> Option<String> {
    let attempt = || -> std::io::Result<Option<String>> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"CLIENT LIST\r\n")?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(None);
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            let Some((head, body)) = text.split_once("\r\n") else {
                continue;
            };
            let Some(len) = head.strip_prefix('$').and_then(|l| l.parse::<usize>().ok()) else {
                return Ok(None);
            };
            if body.len() >= len {
                return Ok(Some(body[..len].to_owned()));
            }
        }
    };
    attempt().ok().flatten()
}
