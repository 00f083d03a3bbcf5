//! JWT bearer tokens: the algorithm is fixed by the configured key, `exp` and `sub` are
//! required (`iss` and `aud` when configured), and the token must grant at least one of this
//! server's permissions.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use webops_mcp_core::{AuthMethod, Identity, PermissionSet};

use super::AuthFailure;
use crate::config::JwtSettings;

/// Three dot-separated base64url segments (the last may be empty, as in `alg: none`).
pub(super) fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && !parts[0].is_empty()
        && !parts[1].is_empty()
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Verifies tokens against one key.
pub(super) struct JwtVerifier {
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

fn fail(code: &'static str, message: String) -> AuthFailure {
    AuthFailure::new("jwt", code, message)
}

impl JwtVerifier {
    /// A verifier for `[auth.jwt]`.
    pub(super) fn new(jwt: &JwtSettings) -> Self {
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
    }

    /// Who the token names, with the permissions it grants.
    pub(super) fn verify(&self, token: &str) -> Result<Identity, AuthFailure> {
        let expected = format!("{:?}", self.algorithm);
        check_header(token, &expected)?;
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| decode_failure(e.kind(), &expected))?;
        let claims = data.claims;
        let subject = claims
            .sub
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| fail("invalid_token", "the JWT has an empty sub".to_owned()))?;
        let permissions = granted(claims.permissions, claims.scope)?;
        Ok(Identity::new(subject, AuthMethod::Jwt, permissions))
    }
}

/// Says clearly why an unsigned or wrongly signed token is refused.
fn check_header(token: &str, expected: &str) -> Result<(), AuthFailure> {
    let header = token
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h.trim_end_matches('=')).ok())
        .and_then(|bytes| serde_json::from_slice::<RawHeader>(&bytes).ok())
        .ok_or_else(|| fail("invalid_token", "malformed JWT header".to_owned()))?;
    match header.alg.as_deref() {
        Some(alg) if alg == expected => Ok(()),
        Some(alg) if alg.eq_ignore_ascii_case("none") => Err(fail(
            "invalid_token",
            "unsigned JWTs (alg none) are refused".to_owned(),
        )),
        Some(_) | None => Err(fail(
            "invalid_token",
            format!("JWT algorithm not accepted: this server accepts only {expected}"),
        )),
    }
}

/// The failure for a token `jsonwebtoken` refused.
fn decode_failure(kind: &JwtErrorKind, expected: &str) -> AuthFailure {
    match kind {
        JwtErrorKind::ExpiredSignature => fail("expired_token", "the JWT has expired".to_owned()),
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
    }
}

/// The permissions a token grants: its `permissions` list, else the words of its `scope`
/// that are permissions; at least one.
fn granted(
    permissions: Option<Vec<String>>,
    scope: Option<String>,
) -> Result<PermissionSet, AuthFailure> {
    let permissions = match (permissions, scope) {
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
    Ok(permissions)
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
}
