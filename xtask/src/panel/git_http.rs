//! The fixture repositories over HTTP on loopback, as an operator would serve an internal Git
//! host: git's own smart-HTTP CGI (`git http-backend`, with `GIT_HTTP_EXPORT_ALL`) behind a
//! small HTTP/1.1 front on `127.0.0.1:<free port>`, one thread per connection, stopped when the
//! [`GitHttp`] is dropped. Smart HTTP, not the dumb protocol of static files: the panel clones
//! with `--depth=1`, which dumb HTTP cannot serve.

use std::io::{BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, Result};

/// The largest request body accepted (a clone's negotiation is a few KiB).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// A running HTTP server of a directory of bare repositories.
pub(crate) struct GitHttp {
    port: u16,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl GitHttp {
    /// Serves the bare repositories under `root` on a free loopback port.
    pub(crate) fn start(root: &Path) -> Result<GitHttp> {
        let listener =
            TcpListener::bind("127.0.0.1:0").context("binding the git HTTP server on loopback")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (root, stop, requests) = (root.to_owned(), stop.clone(), requests.clone());
            std::thread::Builder::new()
                .name("git-http".to_owned())
                .spawn(move || accept_until_stopped(&listener, &root, &stop, &requests))?
        };
        Ok(GitHttp {
            port,
            stop,
            requests,
            thread: Some(thread),
        })
    }

    /// The URL of the repository `name` (e.g. `static-site.git`) under the root.
    pub(crate) fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }

    /// Every request answered so far, as `STATUS METHOD PATH`.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for GitHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept_until_stopped(
    listener: &TcpListener,
    root: &Path,
    stop: &AtomicBool,
    requests: &Arc<Mutex<Vec<String>>>,
) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (root, requests) = (root.to_owned(), requests.clone());
                std::thread::spawn(move || answer(stream, &root, &requests));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// One HTTP request as the CGI needs it.
struct Request {
    method: String,
    path: String,
    query: String,
    content_type: Option<String>,
    content_encoding: Option<String>,
    git_protocol: Option<String>,
    body: Vec<u8>,
}

/// Answers one request, then closes the connection; logs `STATUS METHOD PATH` before it
/// answers (so a client that has its answer finds it logged).
fn answer(stream: TcpStream, root: &Path, requests: &Mutex<Vec<String>>) -> Option<()> {
    stream.set_nonblocking(false).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let request = read_request(&mut reader)?;
    let (status, headers, body) = if plain_path(&request.path) {
        run_backend(root, &request)
    } else {
        ("404 Not Found".to_owned(), Vec::new(), Vec::new())
    };
    let code = status.get(..3).unwrap_or("???");
    if let Ok(mut log) = requests.lock() {
        log.push(format!("{code} {} {}", request.method, request.path));
    }
    let mut stream = stream;
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in &headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(&body).ok()?;
    stream.flush().ok()
}

/// The request line, the headers the CGI reads, and the body (by `Content-Length`, or
/// chunked).
fn read_request(reader: &mut impl std::io::BufRead) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut request = Request {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        content_type: None,
        content_encoding: None,
        git_protocol: None,
        body: Vec::new(),
    };
    let mut length = 0usize;
    let mut chunked = false;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 || header.trim().is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim().to_owned();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().ok()?,
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "content-type" => request.content_type = Some(value),
            "content-encoding" => request.content_encoding = Some(value),
            "git-protocol" => request.git_protocol = Some(value),
            _ => {}
        }
    }
    request.body = if chunked {
        read_chunked(reader)?
    } else if length <= MAX_BODY {
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        body
    } else {
        return None;
    };
    Some(request)
}

/// A chunked body, decoded.
fn read_chunked(reader: &mut impl std::io::BufRead) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).ok()?;
        let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        if size == 0 {
            let mut trailer = String::new();
            while reader.read_line(&mut trailer).ok()? > 2 {
                trailer.clear();
            }
            return Some(body);
        }
        if body.len() + size > MAX_BODY {
            return None;
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).ok()?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf).ok()?;
    }
}

/// Only plain segments: no `..`, no backslash.
fn plain_path(path: &str) -> bool {
    let relative = Path::new(path.trim_start_matches('/'));
    !path.contains('\\')
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// `git http-backend` for `request`: its status, headers and body.
fn run_backend(root: &Path, request: &Request) -> (String, Vec<(String, String)>, Vec<u8>) {
    let failed = |why: String| {
        (
            "500 Internal Server Error".to_owned(),
            Vec::new(),
            why.into_bytes(),
        )
    };
    let mut cmd = Command::new("git");
    cmd.arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &request.method)
        .env("PATH_INFO", &request.path)
        .env("QUERY_STRING", &request.query)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_LENGTH", request.body.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (name, value) in [
        ("CONTENT_TYPE", &request.content_type),
        ("HTTP_CONTENT_ENCODING", &request.content_encoding),
        ("GIT_PROTOCOL", &request.git_protocol),
    ] {
        if let Some(value) = value {
            cmd.env(name, value);
        }
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return failed(format!("cannot run git http-backend: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&request.body);
    }
    let output = match child.wait_with_output() {
        Ok(output) => output,
        Err(e) => return failed(format!("git http-backend failed: {e}")),
    };
    parse_cgi(&output.stdout)
}

/// A CGI answer: headers (`Status:` among them) up to a blank line, then the body.
fn parse_cgi(out: &[u8]) -> (String, Vec<(String, String)>, Vec<u8>) {
    let (head, body) = match find(out, b"\r\n\r\n") {
        Some(at) => (&out[..at], &out[at + 4..]),
        None => match find(out, b"\n\n") {
            Some(at) => (&out[..at], &out[at + 2..]),
            None => (out, &[][..]),
        },
    };
    let mut status = "200 OK".to_owned();
    let mut headers = Vec::new();
    for line in String::from_utf8_lossy(head).lines() {
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("status") {
                status = value.to_owned();
            } else if !name.eq_ignore_ascii_case("content-length") {
                headers.push((name.to_owned(), value.to_owned()));
            }
        }
    }
    (status, headers, body.to_vec())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_with_either_body_framing() {
        let plain = b"POST /r.git/git-upload-pack HTTP/1.1\r\nContent-Type: application/x-git-upload-pack-request\r\nContent-Length: 5\r\nGit-Protocol: version=2\r\n\r\nhello";
        let r = read_request(&mut &plain[..]).unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/r.git/git-upload-pack")
        );
        assert_eq!(r.body, b"hello");
        assert_eq!(r.git_protocol.as_deref(), Some("version=2"));
        let chunked = b"POST /r.git/git-upload-pack HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n";
        assert_eq!(read_request(&mut &chunked[..]).unwrap().body, b"hello");
        let get = b"GET /r.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\n\r\n";
        let r = read_request(&mut &get[..]).unwrap();
        assert_eq!(
            (r.path.as_str(), r.query.as_str()),
            ("/r.git/info/refs", "service=git-upload-pack")
        );
    }

    #[test]
    fn only_plain_paths_reach_the_backend() {
        assert!(plain_path("/static-site.git/info/refs"));
        for bad in ["/../etc/passwd", "/r.git/../../x", "/r.git\\..\\x"] {
            assert!(!plain_path(bad), "{bad}");
        }
    }

    #[test]
    fn cgi_answers_are_split_into_status_headers_and_body() {
        let (status, headers, body) =
            parse_cgi(b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope");
        assert_eq!(status, "404 Not Found");
        assert_eq!(
            headers,
            [("Content-Type".to_owned(), "text/plain".to_owned())]
        );
        assert_eq!(body, b"nope");
        let (status, _, body) = parse_cgi(b"Content-Type: x\n\nbody");
        assert_eq!((status.as_str(), body.as_slice()), ("200 OK", &b"body"[..]));
    }

    #[test]
    fn a_bare_repository_is_cloned_shallow_over_it() {
        let root = std::env::temp_dir().join(format!("git-http-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let work = root.join("work");
        std::fs::create_dir_all(&work).unwrap();
        let git = |dir: &Path, args: &[&str]| {
            let status = Command::new("git")
                .arg("-C")
                .arg(dir)
                .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "git {args:?}");
        };
        git(
            &root,
            &[
                "init",
                "--quiet",
                "--bare",
                "--initial-branch=main",
                "r.git",
            ],
        );
        git(&work, &["init", "--quiet", "--initial-branch=main"]);
        std::fs::write(work.join("f"), "x").unwrap();
        git(&work, &["add", "f"]);
        git(&work, &["commit", "--quiet", "-m", "c"]);
        git(
            &work,
            &[
                "push",
                "--quiet",
                root.join("r.git").to_str().unwrap(),
                "main",
            ],
        );
        let server = GitHttp::start(&root).unwrap();
        let clone = root.join("clone");
        let url = server.url("r.git");
        git(
            &root,
            &[
                "clone",
                "--quiet",
                "--branch=main",
                "--depth=1",
                &url,
                clone.to_str().unwrap(),
            ],
        );
        assert_eq!(std::fs::read_to_string(clone.join("f")).unwrap(), "x");
        let missing = Command::new("git")
            .args(["clone", "--quiet", &server.url("none.git")])
            .arg(root.join("none"))
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(!missing.success());
        let log = server.requests();
        assert!(
            log.contains(&"200 GET /r.git/info/refs".to_owned()),
            "{log:?}"
        );
        assert!(
            log.contains(&"200 POST /r.git/git-upload-pack".to_owned()),
            "{log:?}"
        );
        assert!(
            log.contains(&"404 GET /none.git/info/refs".to_owned()),
            "{log:?}"
        );
        drop(server);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
