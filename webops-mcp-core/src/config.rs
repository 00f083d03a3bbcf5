//! Configuration of an embedded server: [`SecurityConfig`] (gates, audit, read-only) and
//! [`ServerConfig`] (WebOps connection + security).
//!
//! Libraries read no environment and no files: the binary (or the embedding application)
//! assembles these values once and hands them to [`crate::WebOpsMcpServer`].

use std::time::Duration;

use webops_client::ClientConfig;

/// Safety settings of the call pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecurityConfig {
    /// Tool calls per user per minute (a token bucket whose burst equals this number).
    /// `0` disables the per-user rate limit. Default 100.
    pub rate_limit_per_minute: u32,
    /// Tool calls running at the same time, over all users. Must be at least 1. Default 50.
    pub max_concurrent_requests: usize,
    /// Whether every call writes an audit record. Default `true`.
    pub audit_logging: bool,
    /// Offer and run only tools that read (`Access::Read`). Default `false`.
    pub read_only: bool,
    /// How long a call waits for a free slot when `max_concurrent_requests` calls are in
    /// flight before it fails as busy. Default 2 s.
    pub busy_timeout: Duration,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            rate_limit_per_minute: 100,
            max_concurrent_requests: 50,
            audit_logging: true,
            read_only: false,
            busy_timeout: Duration::from_secs(2),
        }
    }
}

impl SecurityConfig {
    /// Sets [`SecurityConfig::rate_limit_per_minute`].
    pub fn rate_limit_per_minute(mut self, calls: u32) -> Self {
        self.rate_limit_per_minute = calls;
        self
    }

    /// Sets [`SecurityConfig::max_concurrent_requests`].
    pub fn max_concurrent_requests(mut self, calls: usize) -> Self {
        self.max_concurrent_requests = calls;
        self
    }

    /// Sets [`SecurityConfig::audit_logging`].
    pub fn audit_logging(mut self, enabled: bool) -> Self {
        self.audit_logging = enabled;
        self
    }

    /// Sets [`SecurityConfig::read_only`].
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Sets [`SecurityConfig::busy_timeout`].
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Checks the values; the message names the offending setting.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.max_concurrent_requests == 0 {
            return Err("max_concurrent_requests must be at least 1".to_owned());
        }
        Ok(())
    }
}

/// Everything [`crate::WebOpsMcpServer::new`] needs.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// How to reach the WebOps API (the server's own credentials).
    pub webops: ClientConfig,
    /// Gates, audit and read-only mode.
    pub security: SecurityConfig,
}

impl ServerConfig {
    /// A configuration from its two parts.
    pub fn new(webops: ClientConfig, security: SecurityConfig) -> Self {
        ServerConfig { webops, security }
    }

    /// Sets [`ServerConfig::webops`].
    pub fn webops(mut self, webops: ClientConfig) -> Self {
        self.webops = webops;
        self
    }

    /// Sets [`ServerConfig::security`].
    pub fn security(mut self, security: SecurityConfig) -> Self {
        self.security = security;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_brief() {
        let s = SecurityConfig::default();
        assert_eq!(s.rate_limit_per_minute, 100);
        assert_eq!(s.max_concurrent_requests, 50);
        assert!(s.audit_logging);
        assert!(!s.read_only);
        assert_eq!(s.busy_timeout, Duration::from_secs(2));
        assert!(s.validate().is_ok());
    }

    #[test]
    fn zero_concurrency_is_rejected() {
        let s = SecurityConfig::default().max_concurrent_requests(0);
        assert!(
            s.validate()
                .unwrap_err()
                .contains("max_concurrent_requests")
        );
    }
}
