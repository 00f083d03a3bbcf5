//! The panel's front door, in the order its Django middleware runs: request log, global rate
//! limit, URL resolution with `APPEND_SLASH`, CSRF, `login_required`, allowed methods; plus
//! cookies, form decoding and the shapes of Django's non-JSON answers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Bytes, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Shared;
use super::routes;
use crate::fault::RecordedRequest;

/// Largest request body read.
const BODY_LIMIT: usize = 1024 * 1024;
/// How much of a body the request log keeps.
const RECORDED_BODY_BYTES: usize = 64 * 1024;
/// The characters of CSRF secrets and masks.
const CSRF_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// Origins the panel's settings trust besides its own.
const TRUSTED_ORIGINS: [&str; 4] = [
    "http://localhost:8000",
    "https://localhost:8000",
    "http://127.0.0.1:8000",
    "https://127.0.0.1:8000",
];

/// One request as the views see it.
#[derive(Debug)]
pub(crate) struct Req {
    pub(crate) method: Method,
    /// The path as received (still percent-encoded).
    pub(crate) raw_path: String,
    pub(crate) query: Option<String>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// The logged-in user, once the session was looked at.
    pub(crate) user: Option<String>,
}

impl Req {
    /// A header's value as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A cookie's value (the last one of that name, as Django reads them).
    pub(crate) fn cookie(&self, name: &str) -> Option<String> {
        let mut found = None;
        for value in self.headers.get_all(header::COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            for pair in value.split(';') {
                if let Some((k, v)) = pair.trim().split_once('=')
                    && k.trim() == name
                {
                    found = Some(v.trim().trim_matches('"').to_owned());
                }
            }
        }
        found
    }

    /// A query parameter (the last one of that name, as `QueryDict.get` does).
    pub(crate) fn param(&self, name: &str) -> Option<String> {
        decode_form(self.query.as_deref().unwrap_or_default())
            .into_iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The path with its query, as Django's `get_full_path()`.
    pub(crate) fn full_path(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.raw_path),
            None => self.raw_path.clone(),
        }
    }

    /// Whether the body is a URL-encoded form.
    pub(crate) fn is_form(&self) -> bool {
        self.header("content-type")
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    }
}

/// Serves every request of the panel.
pub(crate) async fn serve(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, BODY_LIMIT).await.unwrap_or_default();
    let mut req = Req {
        method: parts.method,
        raw_path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
        user: None,
    };
    let response = dispatch(&shared, &mut req, peer.ip());
    let mut headers = std::collections::BTreeMap::new();
    for (name, value) in &req.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v: &mut String| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let mut text =
        String::from_utf8_lossy(&req.body[..req.body.len().min(RECORDED_BODY_BYTES)]).into_owned();
    if req.body.len() > RECORDED_BODY_BYTES {
        text.push('…');
    }
    shared.state().record(RecordedRequest {
        method: req.method.to_string(),
        path: req.raw_path.clone(),
        query: req.query.clone(),
        headers,
        body: text,
        status: response.status().as_u16(),
    });
    response
}

/// The middleware chain and the view.
fn dispatch(shared: &Shared, req: &mut Req, peer: IpAddr) -> Response {
    let exempt = ["/static/", "/media/", "/admin/"]
        .iter()
        .any(|p| req.raw_path.starts_with(p));
    if !exempt {
        let key = req
            .header("x-forwarded-for")
            .map(|xff| xff.split(',').next().unwrap_or_default().trim().to_owned())
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| peer.to_string());
        if let Err(retry) = shared.state().limiter.check(&key, Instant::now()) {
            return too_many(req, retry);
        }
    }
    let decoded = percent_decode(&req.raw_path);
    let Some(route) = routes::resolve(&decoded) else {
        let slashed = format!("{decoded}/");
        if !decoded.ends_with('/') && routes::resolve(&slashed).is_some() {
            if matches!(req.method, Method::POST | Method::PUT | Method::PATCH) {
                return server_error(
                    req,
                    "RuntimeError",
                    &format!(
                        "You called this URL via {}, but the URL doesn't end in a slash and you \
                         have APPEND_SLASH set. Django can't redirect to the slash URL while \
                         maintaining {} data. Change your form to point to {}/ (note the \
                         trailing slash), or set APPEND_SLASH=False in your Django settings.",
                        req.method, req.method, req.raw_path
                    ),
                );
            }
            let mut location = format!("{}/", req.raw_path);
            if let Some(q) = &req.query {
                location = format!("{location}?{q}");
            }
            return redirect(StatusCode::MOVED_PERMANENTLY, &location);
        }
        return not_found_page(req, &decoded);
    };

    let session = req.cookie("sessionid");
    req.user = session.and_then(|s| shared.state().session_user(&s, Instant::now()));

    let safe = matches!(
        req.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    if !safe
        && !route.csrf_exempt()
        && let Err(reason) = check_csrf(req)
    {
        return csrf_failure(&reason);
    }
    if route.login_required() && req.user.is_none() {
        let next = quote(&req.full_path());
        return redirect(StatusCode::FOUND, &format!("/auth/login/?next={next}"));
    }
    if let Some(allowed) = route.methods()
        && !allowed.contains(&req.method.as_str())
    {
        let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
        set(&mut response, "allow", &allowed.join(", "));
        set(&mut response, "content-type", "text/html; charset=utf-8");
        return response;
    }
    routes::view(shared, req, route)
}

/// Django's `CsrfViewMiddleware` over plain HTTP: an `Origin`, if sent, must be this host or a
/// trusted origin; the `csrftoken` cookie must be a valid secret; the token from the form
/// field `csrfmiddlewaretoken` (POST forms) or else the `X-CSRFToken` header must match it.
fn check_csrf(req: &Req) -> Result<(), String> {
    if let Some(origin) = req.header("origin") {
        let own = req.header("host").map(|h| format!("http://{h}"));
        if own.as_deref() != Some(origin) && !TRUSTED_ORIGINS.contains(&origin) {
            return Err(format!(
                "Origin checking failed - {origin} does not match any trusted origins."
            ));
        }
    }
    let Some(cookie) = req.cookie("csrftoken") else {
        return Err("CSRF cookie not set.".to_owned());
    };
    let Some(secret) = unmask(&cookie) else {
        return Err("CSRF cookie has incorrect length.".to_owned());
    };
    let form_token = (req.method == Method::POST && req.is_form())
        .then(|| {
            decode_form(&String::from_utf8_lossy(&req.body))
                .into_iter()
                .rev()
                .find(|(k, _)| k == "csrfmiddlewaretoken")
                .map(|(_, v)| v)
        })
        .flatten();
    let (token, source) = match form_token {
        Some(t) => (t, "POST"),
        None => match req.header("x-csrftoken") {
            Some(t) => (t.to_owned(), "'X-Csrftoken' HTTP header"),
            None => return Err("CSRF token missing.".to_owned()),
        },
    };
    match unmask(&token) {
        Some(t) if t == secret => Ok(()),
        Some(_) => Err(format!("CSRF token from {source} incorrect.")),
        None => Err(format!("CSRF token from {source} has incorrect length.")),
    }
}

/// The secret inside a CSRF token: a 32-character secret as is, or a 64-character masked
/// token (mask + cipher) unmasked; `None` for anything else.
pub(crate) fn unmask(token: &str) -> Option<String> {
    let index = |c: u8| CSRF_CHARS.iter().position(|&x| x == c);
    let bytes = token.as_bytes();
    if !bytes.iter().all(|&c| index(c).is_some()) {
        return None;
    }
    match bytes.len() {
        32 => Some(token.to_owned()),
        64 => {
            let (mask, cipher) = bytes.split_at(32);
            let n = CSRF_CHARS.len();
            Some(
                mask.iter()
                    .zip(cipher)
                    .map(|(&m, &c)| {
                        let (m, c) = (index(m).unwrap_or(0), index(c).unwrap_or(0));
                        char::from(CSRF_CHARS[(c + n - m) % n])
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

/// A masked form of `secret` (what `{% csrf_token %}` renders).
pub(crate) fn mask(secret: &str, mask: &str) -> String {
    let index = |c: u8| CSRF_CHARS.iter().position(|&x| x == c).unwrap_or(0);
    let n = CSRF_CHARS.len();
    let cipher: String = mask
        .bytes()
        .zip(secret.bytes())
        .map(|(m, s)| char::from(CSRF_CHARS[(index(s) + index(m)) % n]))
        .collect();
    format!("{mask}{cipher}")
}

/// Decodes `%XX` escapes (invalid ones stay as they are); lossy UTF-8.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space).
pub(crate) fn decode_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

/// Python's `urllib.parse.quote(s, safe="/")`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"/_.-~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sets a header, skipping values that cannot be one.
pub(crate) fn set(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

/// Adds a `Set-Cookie` header.
pub(crate) fn add_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// A cookie as Django writes it: `max_age` `None` is a browser-session cookie.
pub(crate) fn cookie(name: &str, value: &str, max_age: Option<i64>, http_only: bool) -> String {
    let mut c = format!("{name}={value}; ");
    if let Some(age) = max_age {
        let expires = chrono::Utc::now() + chrono::Duration::seconds(age);
        c.push_str(&format!(
            "expires={}; ",
            expires.format("%a, %d %b %Y %H:%M:%S GMT")
        ));
    }
    if http_only {
        c.push_str("HttpOnly; ");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("Max-Age={age}; "));
    }
    c.push_str("Path=/; SameSite=Lax");
    c
}

/// A JSON answer.
pub(crate) fn json_response(status: StatusCode, value: Value) -> Response {
    let mut response = (status, value.to_string()).into_response();
    set(&mut response, "content-type", "application/json");
    response
}

/// A handled failure: `{"error": "<message>"}`.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    json_response(status, json!({ "error": message }))
}

/// An HTML page.
pub(crate) fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{title}</title>\
         </head>\n<body>\n{body}\n</body>\n</html>\n"
    );
    let mut response = (status, page).into_response();
    set(&mut response, "content-type", "text/html; charset=utf-8");
    response
}

/// A redirect with an empty body.
pub(crate) fn redirect(status: StatusCode, location: &str) -> Response {
    let mut response = status.into_response();
    set(&mut response, "location", location);
    set(&mut response, "content-type", "text/html; charset=utf-8");
    response
}

/// Django's DEBUG answer to an unhandled exception: the technical 500 page, as text when the
/// client does not accept HTML (e.g. `Accept: application/json`), as HTML otherwise.
pub(crate) fn server_error(req: &Req, exception: &str, message: &str) -> Response {
    let host = req.header("host").unwrap_or("127.0.0.1");
    let path = &req.raw_path;
    let method = &req.method;
    let text = format!(
        "{exception} at {path}\n{message}\n\nRequest Method: {method}\n\
         Request URL: http://{host}{path}\nDjango Version: 5.0.1\nPython Version: 3.11.2\n\n\
         Traceback (most recent call last):\n  File \"django/core/handlers/exception.py\", line 55, \
         in inner\n    response = get_response(request)\n  File \"django/core/handlers/base.py\", \
         line 197, in _get_response\n    response = wrapped_callback(request, *callback_args, \
         **callback_kwargs)\n\nException Type: {exception} at {path}\nException Value: {message}\n"
    );
    if accepts_html(req) {
        let body = format!(
            "<div id=\"summary\"><h1>{exception} at {path}</h1><pre class=\"exception_value\">{}\
             </pre></div>\n<textarea id=\"traceback_area\">{}</textarea>",
            escape(message),
            escape(&text)
        );
        return html(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("{exception} at {path}"),
            &body,
        );
    }
    let mut response = (StatusCode::INTERNAL_SERVER_ERROR, text).into_response();
    set(&mut response, "content-type", "text/plain; charset=utf-8");
    response
}

/// Whether Django's `request.accepts("text/html")` holds (no `Accept` means `*/*`).
fn accepts_html(req: &Req) -> bool {
    let Some(accept) = req.header("accept") else {
        return true;
    };
    accept.split(',').any(|part| {
        let media = part.split(';').next().unwrap_or_default().trim();
        matches!(media, "text/html" | "text/*" | "*/*" | "*")
    })
}

/// The DEBUG 404 page for a path no route matches (HTML whatever `Accept` says).
fn not_found_page(req: &Req, decoded: &str) -> Response {
    let body = format!(
        "<div id=\"summary\"><h1>Page not found <span>(404)</span></h1><table><tr><th>Request \
         Method:</th><td>{}</td></tr><tr><th>Request URL:</th><td>{}</td></tr></table></div>\n\
         <div id=\"info\"><p>The current path, <code>{}</code>, didn’t match any of these.</p></div>",
        req.method,
        escape(&req.raw_path),
        escape(decoded.trim_start_matches('/'))
    );
    html(StatusCode::NOT_FOUND, "Page not found at /", &body)
}

/// The 403 page of a CSRF failure.
fn csrf_failure(reason: &str) -> Response {
    let body = format!(
        "<div id=\"summary\"><h1>Forbidden <span>(403)</span></h1><p>CSRF verification failed. \
         Request aborted.</p></div>\n<div id=\"info\"><h2>Help</h2><p>Reason given for failure:\
         </p><pre>    {}\n    </pre></div>",
        escape(reason)
    );
    html(StatusCode::FORBIDDEN, "403 Forbidden", &body)
}

/// The global limiter's 429: JSON on `/api/` or for `Accept: application/json...`, HTML else.
fn too_many(req: &Req, retry: u64) -> Response {
    let wants_json = req.raw_path.starts_with("/api/")
        || req
            .header("accept")
            .is_some_and(|a| a.starts_with("application/json"));
    let mut response = if wants_json {
        json_response(
            StatusCode::TOO_MANY_REQUESTS,
            json!({
                "error": "Global rate limit exceeded",
                "message": "Too many requests from this IP address",
                "retry_after": retry,
            }),
        )
    } else {
        html(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate Limit Exceeded - WebOps",
            &format!(
                "<h1>Rate Limit Exceeded</h1><p>Too many requests. Please try again in {retry} \
                 seconds.</p>"
            ),
        )
    };
    set(&mut response, "retry-after", &retry.to_string());
    response
}

/// Escapes text for HTML.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
