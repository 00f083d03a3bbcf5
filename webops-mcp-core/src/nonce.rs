//! Single use of confirmation state: a [`NonceStore`] remembers each nonce it was shown until
//! it expires. [`MemoryNonceStore`] serves one process; a fleet shares one store.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

/// Remembers used nonces.
#[async_trait]
pub trait NonceStore: Send + Sync {
    /// Marks `nonce` used for `ttl`: `Ok(true)` the first time, `Ok(false)` after that;
    /// `Err` when the store cannot say (the caller refuses).
    async fn consume(&self, nonce: &str, ttl: Duration) -> Result<bool, String>;
}

/// A [`NonceStore`] in this process's memory; expired nonces are dropped as new ones come.
#[derive(Debug, Default)]
pub struct MemoryNonceStore {
    used: Mutex<HashMap<String, Instant>>,
}

impl MemoryNonceStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl NonceStore for MemoryNonceStore {
    async fn consume(&self, nonce: &str, ttl: Duration) -> Result<bool, String> {
        let now = Instant::now();
        let mut used = crate::audit::lock(&self.used);
        used.retain(|_, expires| *expires > now);
        if used.contains_key(nonce) {
            return Ok(false);
        }
        used.insert(nonce.to_owned(), now + ttl);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_nonce_is_accepted_once_until_it_expires() {
        let store = MemoryNonceStore::new();
        assert_eq!(store.consume("a", Duration::from_secs(60)).await, Ok(true));
        assert_eq!(store.consume("a", Duration::from_secs(60)).await, Ok(false));
        assert_eq!(store.consume("b", Duration::from_millis(1)).await, Ok(true));
        tokio::time::sleep(Duration::from_millis(5)).await;
        // Expired entries are dropped (the state that carried them has expired too).
        assert_eq!(store.consume("c", Duration::from_secs(60)).await, Ok(true));
        assert_eq!(store.used.lock().unwrap().len(), 2);
    }
}
