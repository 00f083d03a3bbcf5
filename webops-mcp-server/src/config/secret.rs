//! [`Secret`]: the one way the server holds a secret string, and [`REDACTED`], the one marker
//! it shows in its place.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What the server shows instead of a secret: in `Debug` output, in `check-config` and in
/// its own messages — the client's and core's marker, so one answer never mixes two. Public
/// so the binary prints the same marker when it explains `check-config`'s output.
pub use webops_client::REDACTED;

/// A secret string: `Debug` never shows it and it serializes as [`REDACTED`]; it
/// deserializes from a plain string (the configuration file's keys that hold secrets).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; use only where it is needed (hashing, verifying, sending upstream).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_shows_only_the_marker() {
        let secret = Secret::new("hunter2-hunter2");
        assert_eq!(format!("{secret:?}"), REDACTED);
        assert_eq!(
            serde_json::to_string(&secret).unwrap_or_default(),
            format!("\"{REDACTED}\"")
        );
        assert_eq!(secret.expose(), "hunter2-hunter2");
    }
}
