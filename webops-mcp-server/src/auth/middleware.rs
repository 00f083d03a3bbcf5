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

use super::throttle::{Attempt, FAILURE_WINDOW};
use super::{AuthFailure, Authenticator, FailureKind, ProxyTrust};
use crate::config::OnUnavailable;
use crate::metrics::HttpMetrics;
use crate::state::SharedState;

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
    /// Where the fleet counts failures (Redis), if it does.
    pub(crate) shared: SharedState,
}

/// [`authenticate`] as a layer of its own (`/metrics`).
pub(crate) async fn authenticate_layer(
    State(state): State<AuthLayerState>,
    request: Request,
    next: Next,
) -> Response {
    authenticate(&state, request, async |request| next.run(request).await).await
}

/// The middleware: authentication under the failure throttle, `Identity` into the
/// extensions, then `next`.
pub(crate) async fn authenticate(
    state: &AuthLayerState,
    mut request: Request,
    next: impl AsyncFnOnce(Request) -> Response,
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
        if let Err(unavailable) = observe_fleet(state, ip).await {
            return unavailable;
        }
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
            next(request).await
        }
        Err(failure) => refused(state, ip, attempt, &failure).await,
    }
}

/// Before a password is checked: takes in the fleet's count of `ip`'s failures (shared
/// state on Redis). While the store cannot say, `deny` answers 503 (a password cannot be
/// checked against the fleet's limit now); `allow_local` goes on with this replica's count.
async fn observe_fleet(state: &AuthLayerState, ip: IpAddr) -> Result<(), Response> {
    let Some(redis) = state.shared.redis() else {
        return Ok(());
    };
    match redis.auth_failures(&ip.to_string()).await {
        Ok(Some((failures, remaining))) => {
            state
                .authenticator
                .throttle()
                .observe(ip, failures, remaining);
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(_) if redis.policy() == OnUnavailable::AllowLocal => Ok(()),
        Err(e) => Err(state.authenticator.unauthorized(
            &AuthFailure::new(
                "basic",
                "state_unavailable",
                format!("the password cannot be checked now: {e}; retry shortly"),
            )
            .kind(FailureKind::Unavailable),
        )),
    }
}

/// Counts a failure of `ip` where the fleet counts them (shared state on Redis): the
/// failures in its window, this one included, and the time left; `None` in memory or while
/// the store cannot say (this replica's own count goes on).
async fn count_in_fleet(state: &AuthLayerState, ip: IpAddr) -> Option<(u32, Duration)> {
    let redis = state.shared.redis()?;
    redis
        .count_auth_failure(&ip.to_string(), FAILURE_WINDOW)
        .await
        .ok()
}

/// The answer to a request whose credentials were not accepted, counted by the throttle
/// when they were presented and wrong.
async fn refused(
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
            if let Some((failures, remaining)) = count_in_fleet(state, ip).await {
                auth.throttle().observe(ip, failures, remaining);
            }
        } else {
            // The fleet's count before this failure decides, as this replica's own would.
            if let Some((failures, remaining)) = count_in_fleet(state, ip).await {
                auth.throttle()
                    .observe(ip, failures.saturating_sub(1), remaining);
            }
            if let Some(wait) = auth.throttle().retry_after(ip) {
                state.metrics.record_throttled();
                return too_many_failures(wait);
            }
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
