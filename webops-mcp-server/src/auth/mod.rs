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
//!
//! - `middleware.rs` — the axum layer: throttle, [`Authenticator`], `Identity` into the
//!   request, 401 / 403 / 429 / 503 answers;
//! - `jwt.rs` — JWT verification; `basic.rs` — HTTP Basic with argon2id;
//! - `throttle.rs` — the failure throttle; `proxy.rs` — trusted proxies and the client address.

mod basic;
mod jwt;
mod middleware;
mod proxy;
mod throttle;

use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use webops_mcp_core::{AuthMethod, Identity, PermissionSet};

use crate::config::{ApiKeyEntry, AuthSettings};
use basic::BasicAuth;
use jwt::{JwtVerifier, looks_like_jwt};

pub(crate) use middleware::{AuthLayerState, authenticate, authenticate_layer};
pub(crate) use proxy::ProxyTrust;
pub(crate) use throttle::FailureThrottle;

/// The realm of every challenge.
const REALM: &str = "webops-mcp";

/// Checks credentials. Built once from [`AuthSettings`].
pub(crate) struct Authenticator {
    api_keys: Vec<ApiKeyEntry>,
    jwt: Option<JwtVerifier>,
    basic: BasicAuth,
    anonymous: Option<PermissionSet>,
    resource_metadata: Option<String>,
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
        Authenticator {
            api_keys: settings.api_keys.clone(),
            jwt: settings.jwt.as_ref().map(JwtVerifier::new),
            basic: BasicAuth::new(&settings.basic),
            anonymous: settings.anonymous_permissions.clone(),
            resource_metadata: settings.oauth.as_ref().map(|o| o.metadata_url()),
            throttle: FailureThrottle::new(throttle::MAX_FAILURES, throttle::FAILURE_WINDOW),
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
            self.basic.verify(credentials).await
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
        if self.basic.is_enabled() {
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

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use std::time::Duration;
    use webops_mcp_core::Permission;

    use super::basic::ARGON2_PERMITS;
    use super::*;

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
        auth.basic.wait = Duration::from_millis(50);
        let held = auth
            .basic
            .permits
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
