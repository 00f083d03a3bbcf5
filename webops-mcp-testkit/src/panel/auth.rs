//! The panel's HTML side that a client meets: the form login (CSRF cookie, session cookie,
//! rotated CSRF token, 2FA detour), the logout, and the dashboard a login lands on.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::Response;

use super::Shared;
use super::http::{Req, add_cookie, cookie, decode_form, escape, html, mask, redirect, unmask};
use super::state::{Session, token};

/// `csrftoken`'s `Max-Age` (a year).
const CSRF_COOKIE_AGE: i64 = 31_449_600;
/// `sessionid`'s `Max-Age` with `remember_me` (two weeks).
const REMEMBER_AGE: i64 = 1_209_600;
/// How long the server keeps a session without `remember_me` (`SESSION_COOKIE_AGE`).
const SESSION_AGE: i64 = 3_600;

/// `/auth/login/`: GET shows the form (and sets `csrftoken`); POST checks the credentials.
pub(crate) fn login(shared: &Shared, req: &Req) -> Response {
    if req.user.is_some() {
        return redirect(StatusCode::FOUND, "/");
    }
    // The template's `{% csrf_token %}` keeps a valid cookie and re-sends it, or makes one.
    let secret = req
        .cookie("csrftoken")
        .and_then(|c| unmask(&c))
        .unwrap_or_else(|| token(32));
    if req.method != axum::http::Method::POST {
        return form_page(&secret, None);
    }
    let form = if req.is_form() {
        decode_form(&String::from_utf8_lossy(&req.body))
    } else {
        Vec::new()
    };
    let get = |key: &str| {
        form.iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (username, password) = (get("username"), get("password"));
    let remember = !get("remember_me").is_empty();
    let mut state = shared.state();
    let known = state
        .users
        .get(&username)
        .filter(|u| !password.is_empty() && u.password == password)
        .cloned();
    let Some(user) = known else {
        drop(state);
        return form_page(
            &secret,
            Some(
                "Please enter a correct username and password. Note that both fields may be \
                 case-sensitive.",
            ),
        );
    };
    let now = Instant::now();
    let key = session_key();
    if user.two_factor {
        // The password was right; the session only remembers who waits for a code.
        state.sessions.insert(
            key.clone(),
            Session {
                user: None,
                expires: now + Duration::from_secs(SESSION_AGE as u64),
            },
        );
        drop(state);
        let mut response = redirect(StatusCode::FOUND, "/auth/2fa/verify/");
        add_cookie(&mut response, &cookie("sessionid", &key, None, true));
        return response;
    }
    let (server_age, cookie_age) = if remember {
        (REMEMBER_AGE, Some(REMEMBER_AGE))
    } else {
        (SESSION_AGE, None)
    };
    state.sessions.insert(
        key.clone(),
        Session {
            user: Some(username.clone()),
            expires: now + Duration::from_secs(server_age as u64),
        },
    );
    drop(state);
    let next = req.param("next").unwrap_or_else(|| "/".to_owned());
    let mut response = redirect(StatusCode::FOUND, &next);
    add_cookie(&mut response, &cookie("sessionid", &key, cookie_age, true));
    // `login()` rotates the CSRF token.
    add_cookie(
        &mut response,
        &cookie("csrftoken", &token(32), Some(CSRF_COOKIE_AGE), false),
    );
    response
}

/// A Django session key: 32 characters of lower-case letters and digits.
fn session_key() -> String {
    token(32).to_ascii_lowercase()
}

/// The login form with a masked CSRF token, and the `csrftoken` cookie.
fn form_page(secret: &str, error: Option<&str>) -> Response {
    let masked = mask(secret, &token(32));
    let error = error
        .map(|e| {
            format!(
                "<ul class=\"errorlist nonfield\"><li>{}</li></ul>\n",
                escape(e)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in to WebOps</h1>\n{error}<form method=\"post\">\n\
         <input type=\"hidden\" name=\"csrfmiddlewaretoken\" value=\"{masked}\">\n\
         <input type=\"text\" name=\"username\" required>\n\
         <input type=\"password\" name=\"password\" required>\n\
         <input type=\"checkbox\" name=\"remember_me\">\n<button type=\"submit\">Sign in</button>\n\
         </form>"
    );
    let mut response = html(StatusCode::OK, "Login - WebOps", &body);
    add_cookie(
        &mut response,
        &cookie("csrftoken", secret, Some(CSRF_COOKIE_AGE), false),
    );
    response
}

/// `/auth/logout/`: ends this session (others stay) and sends the client to the login form.
pub(crate) fn logout(shared: &Shared, req: &Req) -> Response {
    if let Some(key) = req.cookie("sessionid") {
        shared.state().sessions.remove(&key);
    }
    let mut response = redirect(StatusCode::FOUND, "/auth/login/");
    add_cookie(
        &mut response,
        "sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax",
    );
    response
}

/// `/auth/2fa/verify/`: the code form (the mock verifies no codes).
pub(crate) fn two_factor_page() -> Response {
    html(
        StatusCode::OK,
        "Two-Factor Authentication - WebOps",
        "<h1>Two-Factor Authentication</h1>\n<form method=\"post\"><input type=\"text\" \
         name=\"token\" maxlength=\"6\"><button type=\"submit\">Verify</button></form>",
    )
}

/// `/`: the dashboard a successful login lands on.
pub(crate) fn dashboard(user: &str) -> Response {
    html(
        StatusCode::OK,
        "Dashboard - WebOps",
        &format!("<h1>Dashboard</h1>\n<p>Welcome back, {}!</p>", escape(user)),
    )
}
