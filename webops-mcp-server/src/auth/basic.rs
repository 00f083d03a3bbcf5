//! HTTP Basic: argon2id verification on a bounded number of blocking threads, with a decoy
//! hash for unknown user names so timing does not tell which names exist.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use webops_mcp_core::{AuthMethod, Identity};

use super::{AuthFailure, FailureKind};
use crate::config::BasicUser;

/// Argon2 verifications running at once (each takes tens of milliseconds of CPU).
pub(super) const ARGON2_PERMITS: usize = 4;

/// How long a Basic attempt waits for an argon2 permit before it is answered 503.
const ARGON2_WAIT: Duration = Duration::from_secs(2);

/// The `[[auth.basic]]` users and the argon2 verifications allowed at once.
pub(super) struct BasicAuth {
    users: HashMap<String, BasicUser>,
    /// A hash to verify against for an unknown user name, so timing does not tell which
    /// user names exist.
    decoy_hash: Option<String>,
    pub(super) permits: Arc<Semaphore>,
    pub(super) wait: Duration,
}

impl BasicAuth {
    /// Basic authentication for `users` (none: disabled).
    pub(super) fn new(users: &[BasicUser]) -> Self {
        BasicAuth {
            users: users
                .iter()
                .map(|u| (u.username.clone(), u.clone()))
                .collect(),
            decoy_hash: users.first().map(|u| u.password_hash.expose().to_owned()),
            permits: Arc::new(Semaphore::new(ARGON2_PERMITS)),
            wait: ARGON2_WAIT,
        }
    }

    /// Whether any user is configured.
    pub(super) fn is_enabled(&self) -> bool {
        !self.users.is_empty()
    }

    /// Who `encoded` (base64 of `user:password`) names, if the password is theirs.
    pub(super) async fn verify(&self, encoded: &str) -> Result<Identity, AuthFailure> {
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
        let user = self.users.get(username);
        let hash = user.map_or_else(|| decoy.clone(), |u| u.password_hash.expose().to_owned());
        let password = password.to_owned();
        let permit = self.permit().await?;
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

    /// A place among the argon2 verifications, waited for a bounded time.
    async fn permit(&self) -> Result<OwnedSemaphorePermit, AuthFailure> {
        match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => {
                Err(
                    AuthFailure::new("basic", "unavailable", "the server is shutting down")
                        .kind(FailureKind::Unavailable),
                )
            }
            Err(_) => Err(AuthFailure::new(
                "basic",
                "busy",
                "too many password checks are in progress; retry in a moment, or use an \
                 API key or JWT, which cost nothing to check",
            )
            .kind(FailureKind::Unavailable)),
        }
    }
}
