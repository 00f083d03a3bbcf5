//! HTTP authentication: API keys, JWT bearer tokens, HTTP Basic and the optional anonymous
//! identity, the 401 challenge, and the per-address throttle of repeated failures.
//!
//! Success puts an [`Identity`] into the request extensions, where the MCP handler finds it.
//! A credential is never logged, echoed in a response, or forwarded to WebOps.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use webops_mcp_core::{AuthMethod, Identity, Permission, PermissionSet};

use crate::config::{ApiKeyEntry, AuthSettings, BasicUser};
use crate::metrics::HttpMetrics;

/// The realm of every challenge.
const REALM: &str = "webops-mcp";

/// Failures from one address within [`FAILURE_WINDOW`] before it is refused.
pub(crate) const MAX_FAILURES: u32 = 10;

/// The window in which failures are counted, and how long an address is then refused.
pub(crate) const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// The failure code of a request without credentials.
const MISSING: &str = "missing_credentials";

/// Argon2 verifications running at once (each takes tens of milliseconds of CPU).
const ARGON2_PERMITS: usize = 4;

/// Checks credentials. Built once from [`AuthSettings`].
pub(crate) struct Authenticator {
    api_keys: Vec<ApiKeyEntry>,
    jwt: Option<JwtVerifier>,
    basic: HashMap<String, BasicUser>,
    /// A hash to verify against for an unknown user name, so timing does not tell which
    /// user names exist.
    decoy_hash: Option<String>,
    anonymous: Option<PermissionSet>,
    resource_metadata: Option<String>,
    argon2_permits: Arc<Semaphore>,
    throttle: FailureThrottle,
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuthFailure {
    /// The method tried: `api_key`, `jwt`, `basic` or `none`.
    pub(crate) method: &'static str,
    /// A stable snake_case code for the JSON body.
    pub(crate) code: &'static str,
    /// What was wrong, in words (never the credential).
    pub(crate) message: String,
    /// Whether a bearer token was presented (the challenge then carries `invalid_token`).
    pub(crate) bearer_presented: bool,
}

impl AuthFailure {
    fn new(method: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        AuthFailure {
            method,
            code,
            message: message.into(),
            bearer_presented: false,
        }
    }

    fn bearer(mut self) -> Self {
        self.bearer_presented = true;
        self
    }
}

impl Authenticator {
    /// An authenticator for `settings`.
    pub(crate) fn new(settings: &AuthSettings) -> Self {
        let jwt = settings.jwt.as_ref().map(|jwt| {
            let mut validation = Validation::new(jwt.key.algorithm);
            let mut required = vec!["exp", "sub"];
            validation.validate_nbf = true;
            validation.leeway = 30;
            validation.validate_aud = jwt.audience.is_some();
            if let Some(issuer) = &jwt.issuer {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            if let Some(audience) = &jwt.audience {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            validation.set_required_spec_claims(&required);
            JwtVerifier {
                algorithm: jwt.key.algorithm,
                key: jwt.key.decoding.clone(),
                validation,
            }
        });
        Authenticator {
            api_keys: settings.api_keys.clone(),
            jwt,
            basic: settings
                .basic
                .iter()
                .map(|u| (u.username.clone(), u.clone()))
                .collect(),
            decoy_hash: settings
                .basic
                .first()
                .map(|u| u.password_hash.expose().to_owned()),
            anonymous: settings.anonymous_permissions.clone(),
            resource_metadata: settings.oauth.as_ref().map(|o| o.metadata_url()),
            argon2_permits: Arc::new(Semaphore::new(ARGON2_PERMITS)),
            throttle: FailureThrottle::new(MAX_FAILURES, FAILURE_WINDOW),
        }
    }

    /// The throttle of repeated failures.
    pub(crate) fn throttle(&self) -> &FailureThrottle {
        &self.throttle
    }

    /// Who sent these headers, or why that cannot be told.
    pub(crate) async fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, AuthFailure> {
        let api_key_header = headers.get("x-api-key");
        let authorization = headers.get(AUTHORIZATION);
        match (api_key_header, authorization) {
            (Some(_), Some(_)) => Err(AuthFailure::new(
                "none",
                "ambiguous_credentials",
                "send one credential: either X-API-Key or Authorization, not both",
            )),
            (Some(key), None) => {
                let key = key.to_str().map_err(|_| {
                    AuthFailure::new("api_key", "malformed_credentials", "X-API-Key is not text")
                })?;
                self.api_key(key.trim()).ok_or_else(|| {
                    AuthFailure::new("api_key", "unknown_api_key", "unknown API key")
                })
            }
            (None, Some(value)) => self.authorization(value).await,
            (None, None) => match &self.anonymous {
                Some(permissions) => Ok(Identity::new(
                    "anonymous",
                    AuthMethod::Anonymous,
                    permissions.clone(),
                )),
                None => Err(AuthFailure::new(
                    "none",
                    MISSING,
                    "authentication required: send Authorization: Bearer <API key or JWT>, \
                     X-API-Key: <API key>, or HTTP Basic credentials",
                )),
            },
        }
    }

    async fn authorization(&self, value: &HeaderValue) -> Result<Identity, AuthFailure> {
        let malformed = || {
            AuthFailure::new(
                "none",
                "malformed_credentials",
                "malformed Authorization header: expected \"Bearer <token>\" or \"Basic <base64>\"",
            )
        };
        let value = value.to_str().map_err(|_| malformed())?.trim();
        let (scheme, credentials) = value.split_once(' ').ok_or_else(malformed)?;
        let credentials = credentials.trim();
        if credentials.is_empty() {
            return Err(malformed());
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            self.bearer(credentials)
        } else if scheme.eq_ignore_ascii_case("basic") {
            self.basic(credentials).await
        } else {
            Err(AuthFailure::new(
                "none",
                "unsupported_scheme",
                "unsupported Authorization scheme: use Bearer or Basic",
            ))
        }
    }

    /// A bearer token: an API key first, then a JWT when it looks like one.
    fn bearer(&self, token: &str) -> Result<Identity, AuthFailure> {
        if let Some(identity) = self.api_key(token) {
            return Ok(identity);
        }
        if !looks_like_jwt(token) {
            return Err(AuthFailure::new("api_key", "unknown_api_key", "unknown API key").bearer());
        }
        match &self.jwt {
            Some(jwt) => jwt.verify(token).map_err(AuthFailure::bearer),
            None => Err(AuthFailure::new(
                "jwt",
                "jwt_not_accepted",
                "JWT bearer tokens are not accepted by this server (no [auth.jwt] configured)",
            )
            .bearer()),
        }
    }

    /// Compares the key's SHA-256 with every configured digest in constant time.
    fn api_key(&self, key: &str) -> Option<Identity> {
        if key.is_empty() {
            return None;
        }
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut found = None;
        for entry in &self.api_keys {
            if bool::from(entry.digest.ct_eq(&digest)) {
                found = Some(entry);
            }
        }
        found.map(|entry| {
            Identity::new(
                entry.user_id.clone(),
                AuthMethod::ApiKey,
                entry.permissions.clone(),
            )
        })
    }

    async fn basic(&self, encoded: &str) -> Result<Identity, AuthFailure> {
        let malformed = || {
            AuthFailure::new(
                "basic",
                "malformed_credentials",
                "malformed Basic credentials: expected base64 of \"user:password\"",
            )
        };
        let Some(decoy) = &self.decoy_hash else {
            return Err(AuthFailure::new(
                "basic",
                "basic_not_accepted",
                "HTTP Basic authentication is not enabled on this server",
            ));
        };
        let decoded = STANDARD.decode(encoded).map_err(|_| malformed())?;
        let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
        let (username, password) = decoded.split_once(':').ok_or_else(malformed)?;
        let user = self.basic.get(username);
        let hash = user.map_or_else(|| decoy.clone(), |u| u.password_hash.expose().to_owned());
        let password = password.to_owned();
        let permit = self
            .argon2_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AuthFailure::new("basic", "unavailable", "server is shutting down"))?;
        let verified = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            PasswordHash::new(&hash).is_ok_and(|parsed| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
        match user {
            Some(user) if verified => Ok(Identity::new(
                user.username.clone(),
                AuthMethod::Basic,
                user.permissions.clone(),
            )),
            _ => Err(AuthFailure::new(
                "basic",
                "invalid_credentials",
                "invalid user name or password",
            )),
        }
    }

    /// The `WWW-Authenticate` challenges of a 401.
    pub(crate) fn challenges(&self, failure: &AuthFailure) -> Vec<HeaderValue> {
        let mut bearer = format!("Bearer realm=\"{REALM}\"");
        if failure.bearer_presented {
            bearer.push_str(&format!(
                ", error=\"invalid_token\", error_description=\"{}\"",
                quoted_safe(&failure.message)
            ));
        }
        if let Some(url) = &self.resource_metadata {
            bearer.push_str(&format!(", resource_metadata=\"{}\"", quoted_safe(url)));
        }
        let mut values: Vec<HeaderValue> = HeaderValue::from_str(&bearer).into_iter().collect();
        if !self.basic.is_empty() {
            values.push(HeaderValue::from_static(
                "Basic realm=\"webops-mcp\", charset=\"UTF-8\"",
            ));
        }
        values
    }

    /// The 401 response for `failure`.
    pub(crate) fn unauthorized(&self, failure: &AuthFailure) -> Response {
        let body = serde_json::json!({
            "error": failure.code,
            "message": failure.message,
        });
        let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
        for value in self.challenges(failure) {
            response.headers_mut().append(WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// Removes characters that cannot appear inside a quoted header parameter.
fn quoted_safe(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '"' && *c != '\\' && (' '..='~').contains(c))
        .collect()
}

/// Three dot-separated base64url segments (the last may be empty, as in `alg: none`).
fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && !parts[0].is_empty()
        && !parts[1].is_empty()
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

struct JwtVerifier {
    algorithm: Algorithm,
    key: DecodingKey,
    validation: Validation,
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    #[serde(default)]
    permissions: Option<Vec<String>>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: Option<String>,
}

impl JwtVerifier {
    fn verify(&self, token: &str) -> Result<Identity, AuthFailure> {
        let fail = |code, message: String| AuthFailure::new("jwt", code, message);
        let expected = format!("{:?}", self.algorithm);
        // Say clearly why an unsigned or wrongly signed token is refused.
        let header = token
            .split('.')
            .next()
            .and_then(|h| URL_SAFE_NO_PAD.decode(h.trim_end_matches('=')).ok())
            .and_then(|bytes| serde_json::from_slice::<RawHeader>(&bytes).ok())
            .ok_or_else(|| fail("invalid_token", "malformed JWT header".to_owned()))?;
        match header.alg.as_deref() {
            Some(alg) if alg == expected => {}
            Some(alg) if alg.eq_ignore_ascii_case("none") => {
                return Err(fail(
                    "invalid_token",
                    "unsigned JWTs (alg none) are refused".to_owned(),
                ));
            }
            Some(_) | None => {
                return Err(fail(
                    "invalid_token",
                    format!("JWT algorithm not accepted: this server accepts only {expected}"),
                ));
            }
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(
            |e| match e.kind() {
                JwtErrorKind::ExpiredSignature => {
                    fail("expired_token", "the JWT has expired".to_owned())
                }
                JwtErrorKind::InvalidAudience => fail(
                    "invalid_audience",
                    "the JWT audience (aud) is not this server".to_owned(),
                ),
                JwtErrorKind::InvalidIssuer => fail(
                    "invalid_issuer",
                    "the JWT issuer (iss) is not trusted".to_owned(),
                ),
                JwtErrorKind::ImmatureSignature => {
                    fail("invalid_token", "the JWT is not valid yet (nbf)".to_owned())
                }
                JwtErrorKind::MissingRequiredClaim(claim) => fail(
                    "invalid_token",
                    format!("the JWT lacks the required claim {claim}"),
                ),
                JwtErrorKind::InvalidSignature => {
                    fail("invalid_token", "the JWT signature is invalid".to_owned())
                }
                JwtErrorKind::InvalidAlgorithm => fail(
                    "invalid_token",
                    format!("JWT algorithm not accepted: this server accepts only {expected}"),
                ),
                _ => fail("invalid_token", "malformed JWT".to_owned()),
            },
        )?;
        let claims = data.claims;
        let subject = claims
            .sub
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| fail("invalid_token", "the JWT has an empty sub".to_owned()))?;
        let strings: Vec<String> = match (claims.permissions, claims.scope) {
            (Some(list), _) => list,
            (None, Some(scope)) => vec![scope],
            (None, None) => Vec::new(),
        };
        let permissions = PermissionSet::parse(&strings)
            .map_err(|e| fail("unknown_permission", format!("the JWT grants an {e}")))?;
        Ok(Identity::new(subject, AuthMethod::Jwt, permissions))
    }
}

/// Counts authentication failures per client address and refuses an address that failed
/// [`MAX_FAILURES`] times within the window, until the window passes.
pub(crate) struct FailureThrottle {
    max_failures: u32,
    window: Duration,
    entries: Mutex<HashMap<IpAddr, FailureWindow>>,
}

#[derive(Clone, Copy)]
struct FailureWindow {
    start: Instant,
    failures: u32,
}

/// Addresses tracked at most; beyond it, expired entries are pruned first.
const MAX_TRACKED: usize = 100_000;

impl FailureThrottle {
    /// A throttle refusing after `max_failures` failures within `window`.
    pub(crate) fn new(max_failures: u32, window: Duration) -> Self {
        FailureThrottle {
            max_failures,
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// How long `ip` is still refused, if it is.
    pub(crate) fn retry_after(&self, ip: IpAddr) -> Option<Duration> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = *entries.get(&ip)?;
        let elapsed = entry.start.elapsed();
        if elapsed >= self.window {
            entries.remove(&ip);
            return None;
        }
        (entry.failures >= self.max_failures).then(|| self.window - elapsed)
    }

    /// Counts one failure of `ip`.
    pub(crate) fn record_failure(&self, ip: IpAddr) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_TRACKED {
            let window = self.window;
            entries.retain(|_, e| e.start.elapsed() < window);
            if entries.len() >= MAX_TRACKED {
                // Still full of live entries: forget the oldest half rather than grow.
                let mut starts: Vec<Instant> = entries.values().map(|e| e.start).collect();
                starts.sort_unstable();
                let cutoff = starts[starts.len() / 2];
                entries.retain(|_, e| e.start > cutoff);
            }
        }
        let now = Instant::now();
        let entry = entries.entry(ip).or_insert(FailureWindow {
            start: now,
            failures: 0,
        });
        if now.duration_since(entry.start) >= self.window {
            *entry = FailureWindow {
                start: now,
                failures: 0,
            };
        }
        entry.failures = entry.failures.saturating_add(1);
    }

    /// Addresses refused right now.
    pub(crate) fn throttled_addresses(&self) -> usize {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .values()
            .filter(|e| e.failures >= self.max_failures && e.start.elapsed() < self.window)
            .count()
    }
}

/// The client's address: the peer, or — when the peer is a loopback reverse proxy — the
/// last address of `X-Forwarded-For` (which the proxy sets; see docs/deployment.md).
pub(crate) fn client_ip(peer: Option<SocketAddr>, headers: &HeaderMap) -> IpAddr {
    let peer_ip = peer.map_or(IpAddr::from([127, 0, 0, 1]), |p| p.ip());
    if peer_ip.is_loopback()
        && let Some(forwarded) = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .next_back()
    {
        return forwarded;
    }
    peer_ip
}

/// State of the authentication middleware.
#[derive(Clone)]
pub(crate) struct AuthLayerState {
    pub(crate) authenticator: Arc<Authenticator>,
    pub(crate) metrics: Arc<HttpMetrics>,
    /// A permission the caller must also hold (403 otherwise), e.g. `system:read` for
    /// `/metrics`.
    pub(crate) require: Option<Permission>,
}

/// The middleware: throttle check, authentication, `Identity` into the extensions.
pub(crate) async fn authenticate(
    State(state): State<AuthLayerState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let ip = client_ip(peer, request.headers());
    let auth = &state.authenticator;
    if let Some(wait) = auth.throttle().retry_after(ip) {
        state.metrics.record_throttled();
        return too_many_failures(wait);
    }
    match auth.authenticate(request.headers()).await {
        Ok(identity) => {
            state
                .metrics
                .record_auth(identity.auth_method.as_str(), "success");
            if let Some(permission) = state.require
                && !identity.permissions.contains(permission)
            {
                let body = serde_json::json!({
                    "error": "forbidden",
                    "message": format!("this endpoint requires the {permission} permission"),
                });
                return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
            }
            request.extensions_mut().insert(identity);
            next.run(request).await
        }
        Err(failure) => {
            // Only presented credentials count: a client probing without any (e.g. to read
            // the OAuth challenge) guesses nothing.
            if failure.code != MISSING {
                auth.throttle().record_failure(ip);
            }
            state.metrics.record_auth(failure.method, "failure");
            tracing::info!(
                client = %ip,
                method = failure.method,
                reason = failure.code,
                "authentication failed"
            );
            auth.unauthorized(&failure)
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."));
        assert!(looks_like_jwt("a.b.c"));
        assert!(!looks_like_jwt("wmcp_0123abcd"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a..c"));
        assert!(!looks_like_jwt("a.b.c d"));
    }

    #[test]
    fn throttle_refuses_after_the_limit_and_other_addresses_are_unaffected() {
        let throttle = FailureThrottle::new(3, Duration::from_secs(60));
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        for _ in 0..2 {
            throttle.record_failure(a);
        }
        assert!(throttle.retry_after(a).is_none());
        throttle.record_failure(a);
        let wait = throttle.retry_after(a).unwrap();
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(0));
        assert!(throttle.retry_after(b).is_none());
        assert_eq!(throttle.throttled_addresses(), 1);
    }

    #[test]
    fn throttle_window_expires() {
        let throttle = FailureThrottle::new(1, Duration::from_millis(1));
        let a = IpAddr::from([10, 0, 0, 1]);
        throttle.record_failure(a);
        std::thread::sleep(Duration::from_millis(5));
        assert!(throttle.retry_after(a).is_none());
        assert_eq!(throttle.throttled_addresses(), 0);
    }

    #[test]
    fn forwarded_for_is_trusted_only_from_loopback() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 203.0.113.9"),
        );
        let loopback = SocketAddr::from(([127, 0, 0, 1], 5000));
        let remote = SocketAddr::from(([198, 51, 100, 7], 5000));
        assert_eq!(
            client_ip(Some(loopback), &headers),
            IpAddr::from([203, 0, 113, 9])
        );
        assert_eq!(
            client_ip(Some(remote), &headers),
            IpAddr::from([198, 51, 100, 7])
        );
    }

    #[test]
    fn quoted_values_drop_quotes_and_controls() {
        assert_eq!(quoted_safe("a \"b\"\\\n c"), "a b c");
    }
}
