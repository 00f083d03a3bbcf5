//! The axum middleware: authentication under the failure throttle, then the [`Identity`]
//! into the request extensions.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::RETRY_AFTER;
use http::{HeaderValue, StatusCode};
use webops_mcp_core::Permission;

use super::throttle::Attempt;
use super::{AuthFailure, Authenticator, FailureKind, ProxyTrust};
use crate::metrics::HttpMetrics;

/// State of the authentication middleware.
#[derive(Clone)]
pub(crate) struct AuthLayerState {
    pub(crate) authenticator: Arc<Authenticator>,
    pub(crate) metrics: Arc<HttpMetrics>,
    /// Whose `X-Forwarded-For` is believed.
    pub(crate) proxies: Arc<ProxyTrust>,
    /// A permission the caller must also hold (403 otherwise), e.g. `system:read` for
    /// `/metrics`.
    pub(crate) require: Option<Permission>,
}

/// The middleware: authentication under the failure throttle, `Identity` into the
/// extensions.
pub(crate) async fn authenticate(
    State(state): State<AuthLayerState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let ip = state.proxies.client_ip(peer, request.headers());
    let auth = &state.authenticator;
    // A password attempt reserves its place under the limit before argon2 runs; keys and
    // tokens are checked first (see the module documentation).
    let attempt = if Authenticator::is_basic(request.headers()) {
        match auth.throttle().reserve(ip) {
            Ok(attempt) => Some(attempt),
            Err(wait) => {
                state.metrics.record_throttled();
                return too_many_failures(wait);
            }
        }
    } else {
        None
    };
    match auth.authenticate(request.headers()).await {
        Ok(identity) => {
            drop(attempt);
            state
                .metrics
                .record_auth(identity.auth_method.as_str(), "success");
            if let Some(permission) = state.require
                && !identity.permissions.contains(permission)
            {
                return forbidden(permission);
            }
            request.extensions_mut().insert(identity);
            next.run(request).await
        }
        Err(failure) => refused(&state, ip, attempt, &failure),
    }
}

/// The answer to a request whose credentials were not accepted, counted by the throttle
/// when they were presented and wrong.
fn refused(
    state: &AuthLayerState,
    ip: IpAddr,
    attempt: Option<Attempt<'_>>,
    failure: &AuthFailure,
) -> Response {
    let auth = &state.authenticator;
    if failure.kind == FailureKind::Unavailable {
        drop(attempt);
        tracing::warn!(client = %ip, method = failure.method, reason = failure.code,
            "authentication could not be checked");
        return auth.unauthorized(failure);
    }
    state.metrics.record_auth(failure.method, "failure");
    tracing::info!(
        client = %ip,
        method = failure.method,
        reason = failure.code,
        "authentication failed"
    );
    // Only presented credentials count: a client probing without any (e.g. to read
    // the OAuth challenge) guesses nothing.
    if failure.kind == FailureKind::Rejected {
        if let Some(attempt) = attempt {
            attempt.failed();
        } else if let Some(wait) = auth.throttle().retry_after(ip) {
            state.metrics.record_throttled();
            return too_many_failures(wait);
        } else {
            auth.throttle().record_failure(ip);
        }
    }
    auth.unauthorized(failure)
}

/// 403 for an authenticated caller who lacks the endpoint's permission.
fn forbidden(permission: Permission) -> Response {
    let body = serde_json::json!({
        "error": "forbidden",
        "message": format!("this endpoint requires the {permission} permission"),
    });
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

fn too_many_failures(wait: Duration) -> Response {
    let seconds = wait.as_secs().max(1);
    let body = serde_json::json!({
        "error": "too_many_failures",
        "message": format!(
            "too many failed authentication attempts from this address; retry in {seconds} s"
        ),
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}
