//! Merging `[auth]`: API keys, the JWT key (file or `JWT_SECRET`), Basic users and the OAuth
//! metadata, each entry checked and every problem reported.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use argon2::password_hash::PasswordHash;
use jsonwebtoken::{Algorithm, DecodingKey};
use webops_mcp_core::PermissionSet;

use super::MIN_JWT_SECRET_BYTES;
use super::file::{ApiKeyFile, AuthFile, BasicFile, JwtFile, OAuthFile};
use super::load::{is_http_url, resolve};
use super::settings::{
    ApiKeyEntry, AuthSettings, BasicUser, JwtKey, JwtKeySource, JwtSettings, OAuthSettings,
};

/// `[auth]` merged over the defaults; `jwt_secret` is the `JWT_SECRET` environment value
/// (empty counts as unset), which beats `[auth.jwt] secret`.
pub(super) fn merge_auth(
    file: AuthFile,
    jwt_secret: Option<&str>,
    base_dir: &Path,
    errors: &mut Vec<String>,
) -> AuthSettings {
    let mut auth = AuthSettings::default();
    if let Some(list) = file.anonymous_permissions {
        match PermissionSet::parse(&list) {
            Ok(set) if set.is_empty() => {}
            Ok(set) => auth.anonymous_permissions = Some(set),
            Err(e) => errors.push(format!("[auth] anonymous_permissions: {e}")),
        }
    }
    auth.api_keys = api_keys(file.api_keys.unwrap_or_default(), errors);
    let env_secret = jwt_secret.filter(|s| !s.is_empty());
    // Configured, even if invalid (its own errors are reported then).
    let jwt_configured = file.jwt.is_some() || env_secret.is_some();
    let jwt_audience_set = file
        .jwt
        .as_ref()
        .and_then(|jwt| jwt.audience.as_deref())
        .is_some_and(|audience| !audience.trim().is_empty());
    if jwt_configured {
        let jwt = file.jwt.unwrap_or_default();
        auth.jwt = jwt_settings(jwt, env_secret, base_dir, errors);
    }
    auth.basic = basic_users(file.basic.unwrap_or_default(), errors);
    if let Some(oauth) = file.oauth {
        auth.oauth = oauth_settings(oauth, jwt_configured, jwt_audience_set, errors);
    }
    auth
}

/// `[[auth.api_keys]]`: each digest once, each entry with a user id and valid permissions.
fn api_keys(list: Vec<ApiKeyFile>, errors: &mut Vec<String>) -> Vec<ApiKeyEntry> {
    let mut entries = Vec::new();
    let mut seen_digests = HashSet::new();
    for (i, key) in list.into_iter().enumerate() {
        let at = format!("[[auth.api_keys]] #{} (user_id {:?})", i + 1, key.user_id);
        if key.user_id.trim().is_empty() {
            errors.push(format!("{at}: user_id must not be empty"));
        }
        let permissions = match PermissionSet::parse(&key.permissions) {
            Ok(set) => set,
            Err(e) => {
                errors.push(format!("{at}: {e}"));
                continue;
            }
        };
        let Some(digest) = parse_digest(&key.key_sha256) else {
            errors.push(format!(
                "{at}: key_sha256 must be 64 hex digits (the SHA-256 of the key, as printed \
                 by `webops-mcp hash-key`), got {} characters",
                key.key_sha256.trim().len()
            ));
            continue;
        };
        if !seen_digests.insert(digest) {
            errors.push(format!("{at}: the same key_sha256 appears twice"));
            continue;
        }
        entries.push(ApiKeyEntry::new(key.user_id, digest, permissions));
    }
    entries
}

/// `[[auth.basic]]`: each user name once, without ':', with an argon2id hash.
fn basic_users(list: Vec<BasicFile>, errors: &mut Vec<String>) -> Vec<BasicUser> {
    let mut users = Vec::new();
    let mut seen_users = HashSet::new();
    for (i, user) in list.into_iter().enumerate() {
        let at = format!("[[auth.basic]] #{} (username {:?})", i + 1, user.username);
        if user.username.is_empty() || user.username.contains(':') {
            errors.push(format!(
                "{at}: username must be non-empty and must not contain ':'"
            ));
            continue;
        }
        if !seen_users.insert(user.username.clone()) {
            errors.push(format!("{at}: the username appears twice"));
            continue;
        }
        let permissions = match PermissionSet::parse(&user.permissions) {
            Ok(set) => set,
            Err(e) => {
                errors.push(format!("{at}: {e}"));
                continue;
            }
        };
        if let Err(why) = check_argon2id(user.password_hash.expose()) {
            errors.push(format!(
                "{at}: password_hash {why}; create one with `webops-mcp hash-password`"
            ));
            continue;
        }
        users.push(BasicUser {
            username: user.username,
            password_hash: user.password_hash,
            permissions,
        });
    }
    users
}

/// `[auth.oauth]`, which needs `[auth.jwt]` with an audience to verify the tokens it sends
/// clients for.
fn oauth_settings(
    oauth: OAuthFile,
    jwt_configured: bool,
    jwt_audience_set: bool,
    errors: &mut Vec<String>,
) -> Option<OAuthSettings> {
    let mut ok = true;
    if !jwt_configured {
        errors.push(
            "[auth.oauth] needs [auth.jwt]: the metadata sends clients to \
             authorization_servers for tokens, and only [auth.jwt] verifies them; set \
             [auth.jwt] with the servers' public_key_pem_file (or secret / JWT_SECRET)"
                .to_owned(),
        );
        ok = false;
    } else if !jwt_audience_set {
        errors.push(format!(
            "[auth.oauth] needs [auth.jwt] audience: MCP authorization requires checking \
             that a token was issued for this server, or a token meant for another \
             resource of the same authorization servers would be accepted; set \
             [auth.jwt] audience to the resource URL ({:?})",
            oauth.resource
        ));
        ok = false;
    }
    if !is_http_url(&oauth.resource) {
        errors.push(format!(
            "[auth.oauth] resource must be an absolute https:// URL, got {:?}",
            oauth.resource
        ));
        ok = false;
    }
    if oauth.authorization_servers.is_empty() {
        errors.push("[auth.oauth] authorization_servers must name at least one".into());
        ok = false;
    }
    for server in &oauth.authorization_servers {
        if !is_http_url(server) {
            errors.push(format!(
                "[auth.oauth] authorization_servers: {server:?} is not an http(s) URL"
            ));
            ok = false;
        }
    }
    ok.then_some(OAuthSettings {
        resource: oauth.resource,
        authorization_servers: oauth.authorization_servers,
    })
}

/// `[auth.jwt]`: exactly one key (an HS256 secret or a PEM public key file), which fixes the
/// algorithm.
fn jwt_settings(
    jwt: JwtFile,
    env_secret: Option<&str>,
    base_dir: &Path,
    errors: &mut Vec<String>,
) -> Option<JwtSettings> {
    let secret = env_secret
        .map(str::to_owned)
        .or(jwt.secret.map(|s| s.expose().to_owned()))
        .filter(|s| !s.is_empty());
    let key = match (secret, jwt.public_key_pem_file) {
        (Some(_), Some(_)) => {
            errors.push(
                "[auth.jwt] set either secret (or JWT_SECRET) for HS256 or public_key_pem_file \
                 for RS256/ES256, not both"
                    .to_owned(),
            );
            return None;
        }
        (None, None) => {
            errors.push(
                "[auth.jwt] needs a key: secret (or the JWT_SECRET environment variable) for \
                 HS256, or public_key_pem_file for RS256/ES256"
                    .to_owned(),
            );
            return None;
        }
        (Some(secret), None) => hs256_key(&secret, errors)?,
        (None, Some(path)) => pem_key(resolve(base_dir, path), errors)?,
    };
    let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    Some(JwtSettings {
        issuer: non_empty(jwt.issuer),
        audience: non_empty(jwt.audience),
        key,
    })
}

/// An HS256 key, if the secret is long enough.
fn hs256_key(secret: &str, errors: &mut Vec<String>) -> Option<JwtKey> {
    if secret.len() < MIN_JWT_SECRET_BYTES {
        errors.push(format!(
            "[auth.jwt] the HS256 secret is {} bytes; use at least {MIN_JWT_SECRET_BYTES} \
             random bytes (e.g. `openssl rand -hex 32`)",
            secret.len()
        ));
        return None;
    }
    Some(JwtKey {
        algorithm: Algorithm::HS256,
        decoding: DecodingKey::from_secret(secret.as_bytes()),
        source: JwtKeySource::Secret,
    })
}

/// An RS256 or ES256 key from the PEM public key file at `path`.
fn pem_key(path: PathBuf, errors: &mut Vec<String>) -> Option<JwtKey> {
    let pem = match std::fs::read(&path) {
        Ok(pem) => pem,
        Err(e) => {
            errors.push(format!(
                "[auth.jwt] cannot read public_key_pem_file {}: {e}",
                path.display()
            ));
            return None;
        }
    };
    let (algorithm, decoding) = if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        (Algorithm::RS256, key)
    } else if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
        (Algorithm::ES256, key)
    } else {
        errors.push(format!(
            "[auth.jwt] public_key_pem_file {} holds no RSA or EC (P-256) public key in \
             PEM format (\"-----BEGIN PUBLIC KEY-----\")",
            path.display()
        ));
        return None;
    };
    Some(JwtKey {
        algorithm,
        decoding,
        source: JwtKeySource::PemFile(path),
    })
}

/// Whether `hash` is an argon2id PHC string; the error says what is wrong.
fn check_argon2id(hash: &str) -> Result<(), &'static str> {
    let parsed =
        PasswordHash::new(hash).map_err(|_| "is not a PHC string (\"$argon2id$v=19$...\")")?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err("must be an argon2id hash (\"$argon2id$...\")");
    }
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err("lacks its salt or hash part");
    }
    Ok(())
}

/// The 32 bytes of 64 hex digits (surrounding blanks ignored).
fn parse_digest(hex_digits: &str) -> Option<[u8; 32]> {
    let trimmed = hex_digits.trim();
    if trimmed.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    hex::decode_to_slice(trimmed, &mut digest).ok()?;
    Some(digest)
}
