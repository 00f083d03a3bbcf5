//! Resource change notifications, by polling: WebOps tells nobody when a deployment changes,
//! so a subscribed resource is read again every [`ResourceConfig::poll_interval`], as its
//! subscriber and through the pipeline like any read, and its subscriber is told when what
//! it reads changed (the digest of its content, volatile fields left out, differs from the
//! last read), or appeared or went away. A read that fails for another reason (rate limit,
//! WebOps unavailable) tells nothing and is tried again at the next interval.
//!
//! Off by default. When on, a 2025-era session subscribes with `resources/subscribe` (the
//! handler's [`Sessions`]: one polling task per session, ended by `resources/unsubscribe` of
//! its last resource or by the end of the session); a 2026-07-28 client opens
//! `subscriptions/listen` ([`listen`]: polling for as long as that request is open). Either
//! way at most [`ResourceConfig::max_subscriptions`] resources are watched at once. Every
//! poll is a tool call: it counts against the subscriber's rate limit and is audited.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::identity::Identity;
use crate::resources::{self, ReadError};
use crate::server::WebOpsMcpServer;

/// The most resources [`ResourceConfig::max_subscriptions`] may allow.
const MAX_SUBSCRIPTIONS_LIMIT: usize = 1000;

/// Resource change notifications (`[resources]` in the server's configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResourceConfig {
    /// How often a subscribed resource is read again to see whether it changed. Zero (the
    /// default) turns change notifications off: the server does not offer `subscribe`.
    pub poll_interval: Duration,
    /// The most resources one 2025-era session, or one 2026-07-28 `subscriptions/listen`
    /// request, may watch at once (1 to 1000). Default 16.
    pub max_subscriptions: usize,
}

impl Default for ResourceConfig {
    fn default() -> Self {
        ResourceConfig {
            poll_interval: Duration::ZERO,
            max_subscriptions: 16,
        }
    }
}

impl ResourceConfig {
    /// Sets [`ResourceConfig::poll_interval`].
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Sets [`ResourceConfig::max_subscriptions`].
    pub fn max_subscriptions(mut self, max: usize) -> Self {
        self.max_subscriptions = max;
        self
    }

    /// Whether change notifications are on (a poll interval is set).
    pub fn notifications(&self) -> bool {
        !self.poll_interval.is_zero()
    }

    /// Checks the values; the message names the offending setting.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_SUBSCRIPTIONS_LIMIT).contains(&self.max_subscriptions) {
            return Err(format!(
                "resources max_subscriptions must be between 1 and {MAX_SUBSCRIPTIONS_LIMIT}, \
                 not {}",
                self.max_subscriptions
            ));
        }
        Ok(())
    }
}

/// The subscriber's end went away: stop polling for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gone;

/// Where change notifications go: a 2025-era session or a 2026-07-28 listen request (the
/// handler implements both).
#[async_trait]
pub(crate) trait Notifier: Send + Sync + 'static {
    /// Tells the subscriber that `uri` changed.
    async fn updated(&self, uri: &str) -> Result<(), Gone>;
    /// Whether the subscriber's end is gone already.
    fn is_gone(&self) -> bool;
}

/// What a watched resource read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Its content, by digest.
    Content([u8; 32]),
    /// Not there (not found, or not readable by its subscriber).
    Missing,
}

/// One watched resource.
#[derive(Debug, Clone)]
struct Watch {
    uri: String,
    /// Who subscribed: the reads are theirs.
    identity: Identity,
    /// The last read, `None` before the first one that answered.
    seen: Option<Seen>,
}

impl Watch {
    fn new(uri: String, identity: Identity, seen: Option<Seen>) -> Self {
        Watch {
            uri,
            identity,
            seen,
        }
    }
}

/// Reads `watch`'s resource: what it holds now, or `None` when the read failed for a reason
/// that says nothing about the resource.
async fn observe(
    server: &WebOpsMcpServer,
    watch: &Watch,
    cancel: &CancellationToken,
) -> Option<Seen> {
    match resources::read(server, &watch.identity, &watch.uri, cancel.child_token()).await {
        Ok(contents) => Some(Seen::Content(contents.digest)),
        Err(ReadError::NotFound(_) | ReadError::Invalid(_)) => Some(Seen::Missing),
        Err(ReadError::Failed(message, kind)) => {
            tracing::debug!(uri = %watch.uri, kind = kind.as_str(), %message, "a watched resource could not be read");
            None
        }
    }
}

/// Reads every watched resource once and tells `notifier` of each that changed since its
/// last read (the first read only sets what was seen).
async fn poll(
    server: &WebOpsMcpServer,
    watches: &mut [Watch],
    notifier: &dyn Notifier,
    cancel: &CancellationToken,
) -> Result<(), Gone> {
    for watch in watches {
        if cancel.is_cancelled() {
            break;
        }
        let Some(now) = observe(server, watch, cancel).await else {
            continue;
        };
        let changed = watch.seen.is_some_and(|before| before != now);
        watch.seen = Some(now);
        if changed {
            notifier.updated(&watch.uri).await?;
        }
    }
    Ok(())
}

/// Waits one poll interval; `false` when `cancel` fired first.
async fn tick(interval: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        biased;
        () = cancel.cancelled() => false,
        () = tokio::time::sleep(interval) => true,
    }
}

/// The URIs of `requested` a `subscriptions/listen` request is granted: those with the shape
/// of one of this server's resources, each once, at most `max_subscriptions` of them. Who may
/// read them is checked when the listen runs (the filter is acknowledged before the handler
/// learns who asks); one the caller may not read is never notified.
pub(crate) fn granted(requested: &[String], config: &ResourceConfig) -> Vec<String> {
    let mut granted: Vec<String> = Vec::new();
    for uri in requested {
        if granted.len() == config.max_subscriptions {
            break;
        }
        if resources::is_resource_uri(uri) && !granted.contains(uri) {
            granted.push(uri.clone());
        }
    }
    granted
}

/// Runs one 2026-07-28 `subscriptions/listen` request's watch of `uris` for `identity` until
/// `cancel` fires or `notifier` is gone. A URI the caller may not read is not watched.
pub(crate) async fn listen(
    server: &WebOpsMcpServer,
    identity: &Identity,
    uris: Vec<String>,
    notifier: &dyn Notifier,
    cancel: CancellationToken,
) {
    let interval = server.resource_config().poll_interval;
    let mut watches: Vec<Watch> = uris
        .into_iter()
        .filter(|uri| resources::resolve(server, identity, uri).is_ok())
        .map(|uri| Watch::new(uri, identity.clone(), None))
        .collect();
    if watches.is_empty() || interval.is_zero() {
        cancel.cancelled().await;
        return;
    }
    // The first round only takes note of what each resource holds now.
    let mut round = poll(server, &mut watches, notifier, &cancel).await;
    while round.is_ok() && tick(interval, &cancel).await {
        round = poll(server, &mut watches, notifier, &cancel).await;
    }
}

/// Why a `resources/subscribe` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SubscribeError {
    /// Change notifications are off on this server.
    Off,
    /// The resource cannot be read (the same error its read gives).
    Read(ReadError),
    /// The session already watches as many resources as allowed.
    TooMany(usize),
}

impl SubscribeError {
    /// What a client is told.
    pub(crate) fn message(&self) -> String {
        match self {
            SubscribeError::Off => "resource change notifications are off on this server \
                ([resources] poll_interval_secs is 0); read the resource again instead"
                .to_owned(),
            SubscribeError::Read(
                ReadError::NotFound(m) | ReadError::Invalid(m) | ReadError::Failed(m, _),
            ) => m.clone(),
            SubscribeError::TooMany(max) => format!(
                "this session already watches {max} resources, the most allowed ([resources] \
                 max_subscriptions); unsubscribe from one first"
            ),
        }
    }
}

/// The 2025-era subscriptions (`resources/subscribe`) of one handler's sessions, by session
/// key: the `Mcp-Session-Id` over HTTP, one key for a stdio connection.
#[derive(Default)]
pub(crate) struct Sessions {
    by_key: Mutex<HashMap<String, Arc<SessionWatch>>>,
}

/// What one session watches, and the end of its polling task.
#[derive(Default)]
struct SessionWatch {
    watches: Mutex<Vec<Watch>>,
    stop: CancellationToken,
}

/// A lock whose holder panicked is still usable: every critical section here leaves the data
/// consistent.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Sessions {
    /// Subscribes session `key` to `uri` for `identity`: reads it once now (a resource the
    /// caller cannot read is refused with its read's error; `cancel` ends that read) and, for
    /// the session's first subscription, starts the session's polling task, which notifies
    /// through `notifier`.
    pub(crate) async fn subscribe(
        self: &Arc<Self>,
        server: &WebOpsMcpServer,
        key: &str,
        uri: &str,
        identity: &Identity,
        notifier: Arc<dyn Notifier>,
        cancel: CancellationToken,
    ) -> Result<(), SubscribeError> {
        let config = server.resource_config();
        if !config.notifications() {
            return Err(SubscribeError::Off);
        }
        let first = resources::read(server, identity, uri, cancel)
            .await
            .map_err(SubscribeError::Read)?;
        let watch = Watch::new(
            uri.to_owned(),
            identity.clone(),
            Some(Seen::Content(first.digest)),
        );
        // One lock over both steps, so an unsubscribe cannot end the session in between.
        let (session, started) = {
            let mut sessions = lock(&self.by_key);
            let (session, started) = match sessions.get(key) {
                Some(session) if !session.stop.is_cancelled() => (session.clone(), false),
                _ => {
                    let session = Arc::new(SessionWatch::default());
                    sessions.insert(key.to_owned(), session.clone());
                    (session, true)
                }
            };
            let mut watches = lock(&session.watches);
            match watches.iter().position(|w| w.uri == uri) {
                Some(existing) => watches[existing] = watch,
                None if watches.len() >= config.max_subscriptions => {
                    return Err(SubscribeError::TooMany(config.max_subscriptions));
                }
                None => watches.push(watch),
            }
            drop(watches);
            (session, started)
        };
        if started {
            let sessions = self.clone();
            let server = server.clone();
            let key = key.to_owned();
            let interval = config.poll_interval;
            tokio::spawn(async move {
                run_session(&server, &session, notifier.as_ref(), interval).await;
                sessions.ended(&key, &session);
            });
        }
        Ok(())
    }

    /// Ends session `key`'s subscription to `uri` (nothing when it has none); its polling
    /// task ends with its last subscription.
    pub(crate) fn unsubscribe(&self, key: &str, uri: &str) {
        let mut sessions = lock(&self.by_key);
        let Some(session) = sessions.get(key).cloned() else {
            return;
        };
        let mut watches = lock(&session.watches);
        watches.retain(|w| w.uri != uri);
        if watches.is_empty() {
            session.stop.cancel();
            sessions.remove(key);
        }
    }

    /// How many resources session `key` watches.
    #[cfg(test)]
    fn watched(&self, key: &str) -> usize {
        lock(&self.by_key)
            .get(key)
            .map_or(0, |session| lock(&session.watches).len())
    }

    /// Forgets session `key` once its task has ended, unless a newer session took the key.
    fn ended(&self, key: &str, session: &Arc<SessionWatch>) {
        session.stop.cancel();
        let mut sessions = lock(&self.by_key);
        if sessions
            .get(key)
            .is_some_and(|current| Arc::ptr_eq(current, session))
        {
            sessions.remove(key);
        }
    }
}

/// Polls one session's watches every `interval` until it is stopped or its client is gone.
/// The watches are copied for each round, so subscribing never waits for WebOps.
async fn run_session(
    server: &WebOpsMcpServer,
    session: &SessionWatch,
    notifier: &dyn Notifier,
    interval: Duration,
) {
    while tick(interval, &session.stop).await && !notifier.is_gone() {
        let mut round = lock(&session.watches).clone();
        let result = poll(server, &mut round, notifier, &session.stop).await;
        let mut watches = lock(&session.watches);
        for watch in watches.iter_mut() {
            // What this round saw, unless the resource was subscribed anew meanwhile.
            if let Some(seen) = round
                .iter()
                .find(|r| r.uri == watch.uri && r.identity == watch.identity)
                .and_then(|r| r.seen)
            {
                watch.seen = Some(seen);
            }
        }
        if result.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_bounded() {
        let config = ResourceConfig::default();
        assert!(!config.notifications());
        assert_eq!(config.max_subscriptions, 16);
        assert!(config.validate().is_ok());
        let on = config.clone().poll_interval(Duration::from_secs(30));
        assert!(on.notifications());
        for bad in [0, MAX_SUBSCRIPTIONS_LIMIT + 1] {
            let err = config
                .clone()
                .max_subscriptions(bad)
                .validate()
                .unwrap_err();
            assert!(err.contains("max_subscriptions"), "{err}");
        }
    }

    #[test]
    fn a_listen_is_granted_resource_uris_once_up_to_the_limit() {
        let config = ResourceConfig::default().max_subscriptions(2);
        let requested: Vec<String> = [
            "file:///etc/passwd",
            "webops://health",
            "webops://health",
            "webops://deployments/a",
            "webops://deployments/b",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(
            granted(&requested, &config),
            ["webops://health", "webops://deployments/a"]
        );
    }

    #[tokio::test]
    async fn a_session_is_forgotten_with_its_last_subscription() {
        let sessions = Arc::new(Sessions::default());
        let session = Arc::new(SessionWatch::default());
        lock(&session.watches).push(Watch::new(
            "webops://health".into(),
            Identity::new("a", crate::AuthMethod::ApiKey, crate::PermissionSet::all()),
            None,
        ));
        lock(&sessions.by_key).insert("s1".into(), session.clone());
        assert_eq!(sessions.watched("s1"), 1);
        sessions.unsubscribe("s1", "webops://deployments");
        assert_eq!(sessions.watched("s1"), 1);
        sessions.unsubscribe("s1", "webops://health");
        assert_eq!(sessions.watched("s1"), 0);
        assert!(session.stop.is_cancelled());
        // A task that ends after a newer session took the key leaves the newer one alone.
        let newer = Arc::new(SessionWatch::default());
        lock(&sessions.by_key).insert("s1".into(), newer.clone());
        sessions.ended("s1", &session);
        assert!(lock(&sessions.by_key).contains_key("s1"));
        sessions.ended("s1", &newer);
        assert!(!lock(&sessions.by_key).contains_key("s1"));
    }
}
