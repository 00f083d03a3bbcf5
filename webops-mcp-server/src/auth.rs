//! HTTP authentication: API keys, JWT bearer tokens, HTTP Basic and the optional anonymous
//! identity, the 401 challenge, and the per-address throttle of repeated failures.
//!
//! Success puts an [`Identity`] into the request extensions, where the MCP handler finds it.
//! A credential is never logged, echoed in a response, or forwarded to WebOps.
//!
//! The throttle treats the two kinds of credential differently. API keys (256 random bits)
//! and signed JWTs cannot be guessed, so they are checked first and a valid one is always
//! let in: a shared address (every client behind Docker's port publishing, say) cannot lock
//! out their holders. Passwords can be guessed and each check costs an argon2 run, so an
//! HTTP Basic attempt must first reserve a place under the address's failure limit.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
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
use ipnet::IpNet;
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

/// Argon2 verifications running at once (each takes tens of milliseconds of CPU).
const ARGON2_PERMITS: usize = 4;

/// How long a Basic attempt waits for an argon2 permit before it is answered 503.
const ARGON2_WAIT: Duration = Duration::from_secs(2);

/// How long a Basic attempt refused only because the address's other attempts are still
/// being checked should wait.
const PENDING_RETRY: Duration = Duration::from_secs(1);

/// The address of every request whose peer is unknown (a router served without
/// `ConnectInfo<SocketAddr>`): one shared throttle entry, and `X-Forwarded-For` ignored.
pub(crate) const UNKNOWN_PEER: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

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
    argon2_wait: Duration,
    throttle: FailureThrottle,
}

/// What kind of failure an [`AuthFailure`] is, which decides its answer and whether the
/// throttle counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// No credentials were sent (401, not counted: it guesses nothing).
    Missing,
    /// The credentials sent are wrong (401, counted).
    Rejected,
    /// The credentials could not be checked now (503, not counted).
    Unavailable,
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
    /// Missing, rejected, or not checkable now.
    pub(crate) kind: FailureKind,
}

impl AuthFailure {
    fn new(method: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        AuthFailure {
            method,
            code,
            message: message.into(),
            bearer_presented: false,
            kind: FailureKind::Rejected,
        }
    }

    fn bearer(mut self) -> Self {
        self.bearer_presented = true;
        self
    }

    fn kind(mut self, kind: FailureKind) -> Self {
        self.kind = kind;
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
            argon2_wait: ARGON2_WAIT,
            throttle: FailureThrottle::new(MAX_FAILURES, FAILURE_WINDOW),
        }
    }

    /// Whether these headers carry HTTP Basic credentials and nothing else: the guessable,
    /// expensive kind, which must reserve a place under the failure limit first.
    pub(crate) fn is_basic(headers: &HeaderMap) -> bool {
        !headers.contains_key("x-api-key")
            && headers
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().split_once(' '))
                .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
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
                    "missing_credentials",
                    "authentication required: send Authorization: Bearer <API key or JWT>, \
                     X-API-Key: <API key>, or HTTP Basic credentials",
                )
                .kind(FailureKind::Missing)),
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
        let permit = match tokio::time::timeout(
            self.argon2_wait,
            self.argon2_permits.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => {
                return Err(AuthFailure::new(
                    "basic",
                    "unavailable",
                    "the server is shutting down",
                )
                .kind(FailureKind::Unavailable));
            }
            Err(_) => {
                return Err(AuthFailure::new(
                    "basic",
                    "busy",
                    "too many password checks are in progress; retry in a moment, or use an \
                     API key or JWT, which cost nothing to check",
                )
                .kind(FailureKind::Unavailable));
            }
        };
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

    /// The response for `failure`: 401 with challenges, or 503 when the credentials could
    /// not be checked now.
    pub(crate) fn unauthorized(&self, failure: &AuthFailure) -> Response {
        let body = serde_json::json!({
            "error": failure.code,
            "message": failure.message,
        });
        if failure.kind == FailureKind::Unavailable {
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
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
        let permissions = match (claims.permissions, claims.scope) {
            // A list made for this server: every entry must be a permission.
            (Some(list), _) => PermissionSet::parse(&list)
                .map_err(|e| fail("unknown_permission", format!("the JWT grants an {e}")))?,
            // An OAuth scope also names other resources' scopes (`openid profile ...`):
            // only the words that are permissions count.
            (None, Some(scope)) => PermissionSet::parse(
                scope
                    .split_whitespace()
                    .filter(|word| PermissionSet::parse([*word]).is_ok()),
            )
            .unwrap_or_default(),
            (None, None) => PermissionSet::empty(),
        };
        // A token that grants nothing here (a scope for other resources only, an empty
        // list, neither claim) was not issued for this server's use: refuse it plainly
        // rather than accept a caller who sees no tools.
        if permissions.is_empty() {
            return Err(fail(
                "no_permission",
                "the JWT grants no permission of this server: its permissions claim or scope \
                 must name at least one (e.g. deploy:read)"
                    .to_owned(),
            ));
        }
        Ok(Identity::new(subject, AuthMethod::Jwt, permissions))
    }
}

/// Counts authentication failures per client address and refuses an address that failed
/// [`MAX_FAILURES`] times within the window, until the window passes. It also counts the
/// attempts in progress that reserved a place ([`FailureThrottle::reserve`]), so concurrent
/// attempts cannot all pass the check before the first failure is counted.
pub(crate) struct FailureThrottle {
    max_failures: u32,
    window: Duration,
    entries: Mutex<HashMap<IpAddr, FailureWindow>>,
}

#[derive(Clone, Copy)]
struct FailureWindow {
    /// When the first failure of the window was counted.
    start: Instant,
    /// Failures within the window (0: no window running).
    failures: u32,
    /// Reserved attempts still being checked.
    pending: u32,
}

impl FailureWindow {
    fn new(now: Instant) -> Self {
        FailureWindow {
            start: now,
            failures: 0,
            pending: 0,
        }
    }

    /// Forgets the failures of a window that has passed.
    fn expire(&mut self, window: Duration) {
        if self.failures > 0 && self.start.elapsed() >= window {
            self.failures = 0;
        }
    }

    fn fail(&mut self, now: Instant) {
        if self.failures == 0 {
            self.start = now;
        }
        self.failures = self.failures.saturating_add(1);
    }

    fn idle(&self) -> bool {
        self.failures == 0 && self.pending == 0
    }
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, FailureWindow>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long `ip` is still refused because its failures reached the limit, if it is.
    pub(crate) fn retry_after(&self, ip: IpAddr) -> Option<Duration> {
        let mut entries = self.lock();
        let entry = entries.get_mut(&ip)?;
        entry.expire(self.window);
        if entry.idle() {
            entries.remove(&ip);
            return None;
        }
        (entry.failures >= self.max_failures)
            .then(|| self.window.saturating_sub(entry.start.elapsed()))
    }

    /// Counts one failure of `ip`.
    pub(crate) fn record_failure(&self, ip: IpAddr) {
        let mut entries = self.lock();
        let entry = self.entry(&mut entries, ip);
        entry.fail(Instant::now());
    }

    /// Reserves an attempt of `ip`, or says how long to wait: refused while its failures
    /// plus its attempts in progress reach the limit. The attempt counts as a failure only
    /// if [`Attempt::failed`] is called; dropped, it frees its place.
    pub(crate) fn reserve(&self, ip: IpAddr) -> Result<Attempt<'_>, Duration> {
        let mut entries = self.lock();
        let max = self.max_failures;
        let window = self.window;
        let entry = self.entry(&mut entries, ip);
        if entry.failures >= max {
            return Err(window.saturating_sub(entry.start.elapsed()));
        }
        if entry.failures.saturating_add(entry.pending) >= max {
            return Err(PENDING_RETRY);
        }
        entry.pending += 1;
        Ok(Attempt {
            throttle: self,
            ip,
            failed: false,
        })
    }

    /// The entry of `ip` with its passed window forgotten, made if missing; prunes first
    /// when too many addresses are tracked.
    fn entry<'m>(
        &self,
        entries: &'m mut HashMap<IpAddr, FailureWindow>,
        ip: IpAddr,
    ) -> &'m mut FailureWindow {
        if entries.len() >= MAX_TRACKED && !entries.contains_key(&ip) {
            let window = self.window;
            entries.retain(|_, e| {
                e.expire(window);
                !e.idle()
            });
            if entries.len() >= MAX_TRACKED {
                // Still full of live entries: forget the older half of those not in use
                // rather than grow.
                let mut starts: Vec<Instant> = entries.values().map(|e| e.start).collect();
                starts.sort_unstable();
                let cutoff = starts[starts.len() / 2];
                entries.retain(|_, e| e.pending > 0 || e.start > cutoff);
            }
        }
        let entry = entries
            .entry(ip)
            .or_insert_with(|| FailureWindow::new(Instant::now()));
        entry.expire(self.window);
        entry
    }

    /// Ends a reserved attempt of `ip`, counting it as a failure or not.
    fn finish(&self, ip: IpAddr, failed: bool) {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(&ip) else {
            return;
        };
        entry.pending = entry.pending.saturating_sub(1);
        entry.expire(self.window);
        if failed {
            entry.fail(Instant::now());
        } else if entry.idle() {
            entries.remove(&ip);
        }
    }

    /// Addresses refused right now.
    pub(crate) fn throttled_addresses(&self) -> usize {
        self.lock()
            .values()
            .filter(|e| e.failures >= self.max_failures && e.start.elapsed() < self.window)
            .count()
    }
}

/// A reserved authentication attempt ([`FailureThrottle::reserve`]).
pub(crate) struct Attempt<'a> {
    throttle: &'a FailureThrottle,
    ip: IpAddr,
    failed: bool,
}

impl Attempt<'_> {
    /// The attempt failed: it counts as a failure of its address.
    pub(crate) fn failed(mut self) {
        self.failed = true;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.throttle.finish(self.ip, self.failed);
    }
}

/// Which peers are reverse proxies whose `X-Forwarded-For` names the client: loopback
/// peers and `[http] trusted_proxies`.
pub(crate) struct ProxyTrust {
    networks: Vec<IpNet>,
}

impl ProxyTrust {
    /// Loopback plus `networks`.
    pub(crate) fn new(networks: Vec<IpNet>) -> Self {
        ProxyTrust { networks }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        ip.is_loopback() || self.networks.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: the peer's, or — when the peer is a trusted proxy — the one
    /// `X-Forwarded-For` names, read from the right past every trusted proxy (each appends
    /// the address it received the request from). An unknown peer is [`UNKNOWN_PEER`]
    /// whatever the headers say: nothing vouches for them.
    pub(crate) fn client_ip(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> IpAddr {
        let Some(peer) = peer else {
            return UNKNOWN_PEER;
        };
        let mut client = peer.ip().to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for hop in hops.into_iter().rev() {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            client = ip.to_canonical();
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

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
            if failure.kind == FailureKind::Unavailable {
                drop(attempt);
                tracing::warn!(client = %ip, method = failure.method, reason = failure.code,
                    "authentication could not be checked");
                return auth.unauthorized(&failure);
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

    fn forwarded(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn forwarded_for_is_trusted_only_from_loopback_by_default() {
        let headers = forwarded("1.2.3.4, 203.0.113.9");
        let trust = ProxyTrust::new(Vec::new());
        let loopback = SocketAddr::from(([127, 0, 0, 1], 5000));
        let remote = SocketAddr::from(([198, 51, 100, 7], 5000));
        assert_eq!(
            trust.client_ip(Some(loopback), &headers),
            IpAddr::from([203, 0, 113, 9])
        );
        assert_eq!(
            trust.client_ip(Some(remote), &headers),
            IpAddr::from([198, 51, 100, 7])
        );
        // An IPv4-mapped loopback peer (dual-stack socket) is loopback too.
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        assert_eq!(
            trust.client_ip(Some(mapped), &headers),
            IpAddr::from([203, 0, 113, 9])
        );
    }

    #[test]
    fn trusted_proxies_are_skipped_from_the_right() {
        let trust = ProxyTrust::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let proxy = SocketAddr::from(([10, 1, 2, 3], 443));
        // client → edge proxy 10.9.9.9 → proxy 10.1.2.3 → us; a client-written first entry
        // is not believed.
        let headers = forwarded("6.6.6.6, 203.0.113.9, 10.9.9.9");
        assert_eq!(
            trust.client_ip(Some(proxy), &headers),
            IpAddr::from([203, 0, 113, 9])
        );
        // Without the header, the proxy itself is the client.
        assert_eq!(
            trust.client_ip(Some(proxy), &HeaderMap::new()),
            IpAddr::from([10, 1, 2, 3])
        );
        // A peer outside the trusted networks is the client, whatever it forwards.
        let other = SocketAddr::from(([172, 17, 0, 1], 443));
        assert_eq!(
            trust.client_ip(Some(other), &headers),
            IpAddr::from([172, 17, 0, 1])
        );
    }

    #[test]
    fn an_unknown_peer_is_one_fixed_address_and_its_forwarded_for_is_ignored() {
        let trust = ProxyTrust::new(Vec::new());
        assert_eq!(
            trust.client_ip(None, &forwarded("203.0.113.9")),
            UNKNOWN_PEER
        );
        assert_eq!(trust.client_ip(None, &forwarded("1.2.3.4")), UNKNOWN_PEER);
        assert!(!UNKNOWN_PEER.is_loopback());
    }

    #[test]
    fn reservations_count_against_the_limit_until_they_end() {
        let throttle = FailureThrottle::new(3, Duration::from_secs(60));
        let a = IpAddr::from([10, 0, 0, 1]);
        let first = throttle.reserve(a).unwrap();
        let second = throttle.reserve(a).unwrap();
        let third = throttle.reserve(a).unwrap();
        // Three attempts in progress: a fourth must wait, though nothing has failed yet.
        assert_eq!(throttle.reserve(a).err(), Some(PENDING_RETRY));
        assert!(throttle.reserve(IpAddr::from([10, 0, 0, 2])).is_ok());
        // A success frees its place.
        drop(first);
        let fourth = throttle.reserve(a).unwrap();
        // Failures take the places for the window.
        second.failed();
        third.failed();
        fourth.failed();
        assert!(throttle.retry_after(a).is_some());
        let wait = throttle.reserve(a).err().unwrap();
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert_eq!(throttle.throttled_addresses(), 1);
    }

    #[test]
    fn a_finished_attempt_leaves_no_entry_behind() {
        let throttle = FailureThrottle::new(3, Duration::from_secs(60));
        let a = IpAddr::from([10, 0, 0, 1]);
        drop(throttle.reserve(a).unwrap());
        assert!(throttle.lock().is_empty());
    }

    fn basic_header(user: &str, password: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
        headers.insert(AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
        headers
    }

    #[test]
    fn basic_credentials_are_recognised() {
        assert!(Authenticator::is_basic(&basic_header("u", "p")));
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("basic dTpw"));
        assert!(Authenticator::is_basic(&headers));
        headers.insert("x-api-key", HeaderValue::from_static("k"));
        assert!(!Authenticator::is_basic(&headers), "ambiguous, not Basic");
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert!(!Authenticator::is_basic(&headers));
        assert!(!Authenticator::is_basic(&HeaderMap::new()));
    }

    fn basic_authenticator(password: &str) -> Authenticator {
        let params = argon2::Params::new(1024, 1, 1, None).unwrap();
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = argon2::password_hash::SaltString::encode_b64(b"unit-test-salt").unwrap();
        let hash = argon2::password_hash::PasswordHasher::hash_password(
            &argon,
            password.as_bytes(),
            &salt,
        )
        .unwrap()
        .to_string();
        let config = crate::Config::loader()
            .toml(format!(
                "[[auth.basic]]\nusername = \"u\"\npassword_hash = \"{hash}\"\n\
                 permissions = [\"deploy:read\"]\n"
            ))
            .load()
            .unwrap();
        Authenticator::new(&config.auth)
    }

    #[tokio::test]
    async fn a_basic_attempt_waits_a_bounded_time_for_an_argon2_permit() {
        let mut auth = basic_authenticator("pw");
        auth.argon2_wait = Duration::from_millis(50);
        let held = auth
            .argon2_permits
            .clone()
            .acquire_many_owned(ARGON2_PERMITS as u32)
            .await
            .unwrap();
        let headers = basic_header("u", "pw");
        let failure = tokio::time::timeout(Duration::from_secs(10), auth.authenticate(&headers))
            .await
            .expect("answered without a permit")
            .unwrap_err();
        assert_eq!(failure.kind, FailureKind::Unavailable);
        assert_eq!(failure.code, "busy");
        let response = auth.unauthorized(&failure);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
        drop(held);
        let identity = auth.authenticate(&headers).await.unwrap();
        assert_eq!(identity.user_id, "u");
    }

    fn hs256_authenticator() -> (Authenticator, jsonwebtoken::EncodingKey) {
        let secret = "unit-test-jwt-secret-0123456789abcdef";
        let config = crate::Config::loader()
            .toml(format!("[auth.jwt]\nsecret = \"{secret}\"\n"))
            .load()
            .unwrap();
        (
            Authenticator::new(&config.auth),
            jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
    }

    fn token(key: &jsonwebtoken::EncodingKey, extra: serde_json::Value) -> HeaderMap {
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        let mut claims = serde_json::json!({"sub": "someone", "exp": exp});
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let jwt = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, key).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {jwt}")).unwrap(),
        );
        headers
    }

    #[tokio::test]
    async fn a_scope_keeps_its_permissions_ignores_other_oauth_scopes_and_must_grant_one() {
        let (auth, key) = hs256_authenticator();
        let identity = auth
            .authenticate(&token(
                &key,
                serde_json::json!({"scope": "openid profile deploy:read offline_access logs:read"}),
            ))
            .await
            .unwrap();
        let granted: Vec<Permission> = identity.permissions.iter().collect();
        assert_eq!(granted, [Permission::DeployRead, Permission::LogsRead]);

        // A token that grants none of this server's permissions is refused, whichever claim
        // (or neither) it carries.
        for claims in [
            serde_json::json!({"scope": "openid email"}),
            serde_json::json!({"scope": ""}),
            serde_json::json!({"permissions": []}),
            serde_json::json!({"permissions": [], "scope": "deploy:read"}),
            serde_json::json!({}),
        ] {
            let failure = auth
                .authenticate(&token(&key, claims.clone()))
                .await
                .unwrap_err();
            assert_eq!(failure.code, "no_permission", "{claims}");
            assert!(failure.message.contains("no permission"), "{claims}");
        }

        // The permissions array is this server's own claim: an unknown entry refuses it.
        let failure = auth
            .authenticate(&token(
                &key,
                serde_json::json!({"permissions": ["deploy:read", "openid"]}),
            ))
            .await
            .unwrap_err();
        assert_eq!(failure.code, "unknown_permission");
    }

    #[test]
    fn quoted_values_drop_quotes_and_controls() {
        assert_eq!(quoted_safe("a \"b\"\\\n c"), "a b c");
    }
}
