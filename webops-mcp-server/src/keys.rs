//! Credentials made by the command line: random API keys with their SHA-256 digests, and
//! argon2id password hashes.

use argon2::password_hash::{PasswordHasher, SaltString};
use rand::TryRng as _;
use rand::rngs::SysRng;
use sha2::{Digest, Sha256};

use crate::error::Error;

/// The prefix of generated API keys (lets secret scanners recognise a leaked key).
pub const API_KEY_PREFIX: &str = "wmcp_";

/// A new API key: 32 bytes from the operating system's random number generator, hex
/// encoded after [`API_KEY_PREFIX`]. Returns the key and its SHA-256 digest.
pub fn generate_api_key() -> Result<(String, [u8; 32]), Error> {
    let mut bytes = [0u8; 32];
    SysRng.try_fill_bytes(&mut bytes).map_err(|e| {
        Error::io(
            "reading the OS random number generator",
            std::io::Error::other(e),
        )
    })?;
    let key = format!("{API_KEY_PREFIX}{}", hex::encode(bytes));
    let digest = key_digest(&key);
    Ok((key, digest))
}

/// The SHA-256 digest of an API key, as `[[auth.api_keys]] key_sha256` holds it.
pub fn key_digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// An argon2id PHC hash of `password` with a random salt and the crate's default
/// parameters (OWASP's recommendation: m = 19 MiB, t = 2, p = 1).
pub fn hash_password(password: &str) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    SysRng.try_fill_bytes(&mut salt).map_err(|e| {
        Error::io(
            "reading the OS random number generator",
            std::io::Error::other(e),
        )
    })?;
    let salt = SaltString::encode_b64(&salt).map_err(|cause| Error::HashPassword {
        context: "cannot encode the salt",
        cause,
    })?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|cause| Error::HashPassword {
            context: "cannot hash the password",
            cause,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHash, PasswordVerifier};

    #[test]
    fn keys_are_random_and_digests_match() {
        let (a, da) = generate_api_key().unwrap();
        let (b, _) = generate_api_key().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(API_KEY_PREFIX));
        assert_eq!(a.len(), API_KEY_PREFIX.len() + 64);
        assert_eq!(key_digest(&a), da);
    }

    #[test]
    fn password_hash_is_argon2id_and_verifies() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(
            argon2::Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            argon2::Argon2::default()
                .verify_password(b"wrong", &parsed)
                .is_err()
        );
    }
}
