//! Binds each legacy MCP session to the identity that opened it. A session id presented with
//! anybody else's credentials is answered exactly like an unknown session (404), so a leaked
//! id lets nobody read another caller's stream or act inside their session.
//!
//! With shared state on Redis the owner is recorded there too, beside the session rmcp
//! stores: a session opened on one replica and continued on another is checked against the
//! same owner (and a session the fleet does not know, or whose owner it cannot tell, is
//! answered 404). Each replica keeps the owners it has seen, so a session that stays on its
//! replica asks Redis nothing but a renewal now and then.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use webops_mcp_core::Identity;

use crate::config::OnUnavailable;
use crate::state::SharedState;

/// The header that carries a legacy session's id.
const SESSION_HEADER: &str = "mcp-session-id";

/// Fewest owners kept before pruning the ones whose session rmcp has closed.
const PRUNE_FLOOR: usize = 1024;

/// How often a session in use renews its shared entry.
const RENEW_EVERY: Duration = Duration::from_secs(60);

/// Who opened a session: `"<auth method>:<user id>"` (the method has no `:`).
type Owner = String;

fn owner_of(identity: &Identity) -> Owner {
    format!("{}:{}", identity.auth_method.as_str(), identity.user_id)
}

/// The owner of every open session.
pub(crate) struct SessionOwners {
    manager: Arc<LocalSessionManager>,
    shared: SharedState,
    state: Mutex<OwnerState>,
}

struct OwnerState {
    owners: HashMap<String, Known>,
    /// Prune sessions rmcp has expired once this many owners are recorded.
    prune_at: usize,
}

/// An owner this replica knows, and when it last renewed the session's shared entry.
struct Known {
    owner: Owner,
    renewed: Instant,
}

/// What a request presenting a session id may do.
enum Check {
    /// Go on (to rmcp, which answers 404 for a session it cannot find or restore).
    Pass,
    /// Another identity's session, or one the fleet does not know: 404.
    NotFound,
    /// Its owner cannot be told now (shared state unavailable, `deny`): 503.
    Unavailable(String),
}

impl SessionOwners {
    /// Owners of the sessions of `manager`, shared through `shared` when it is Redis.
    pub(crate) fn new(manager: Arc<LocalSessionManager>, shared: SharedState) -> Self {
        SessionOwners {
            manager,
            shared,
            state: Mutex::new(OwnerState {
                owners: HashMap::new(),
                prune_at: PRUNE_FLOOR,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, OwnerState> {
        crate::sync::lock(&self.state)
    }

    /// Whether `caller` may use `session`.
    async fn check(self: &Arc<Self>, session: &str, caller: Option<&Owner>) -> Check {
        let renew = {
            let mut state = self.lock();
            match state.owners.get_mut(session) {
                Some(known) if caller == Some(&known.owner) => {
                    let due = known.renewed.elapsed() >= RENEW_EVERY;
                    if due {
                        known.renewed = Instant::now();
                    }
                    Some(due)
                }
                Some(_) => return Check::NotFound,
                None => None,
            }
        };
        let Some(redis) = self.shared.redis() else {
            // This process is the whole fleet: an owner it does not know is a session rmcp
            // does not know either.
            return Check::Pass;
        };
        match renew {
            Some(due) => {
                if due {
                    self.renew(session);
                }
                Check::Pass
            }
            None => match redis.session_owner(session).await {
                Ok(Some(owner)) if caller == Some(&owner) => {
                    self.remember(session.to_owned(), owner).await;
                    Check::Pass
                }
                // Another identity's, or unknown to the fleet (or its owner was never
                // recorded: refused rather than let anyone in).
                Ok(_) => Check::NotFound,
                Err(e) => match redis.policy() {
                    OnUnavailable::Deny => Check::Unavailable(e.to_string()),
                    OnUnavailable::AllowLocal => Check::NotFound,
                },
            },
        }
    }

    /// Renews `session`'s shared entry in the background; forgets it here when the fleet no
    /// longer knows it (its owner deleted it through another replica).
    fn renew(self: &Arc<Self>, session: &str) {
        let owners = Arc::clone(self);
        let session = session.to_owned();
        tokio::spawn(async move {
            let Some(redis) = owners.shared.redis() else {
                return;
            };
            if let Ok(false) = redis.touch_session(&session).await {
                owners.lock().owners.remove(&session);
            }
        });
    }

    /// Remembers the owner of `session` here.
    async fn remember(&self, session: String, owner: Owner) {
        let due = {
            let mut state = self.lock();
            state.owners.insert(
                session,
                Known {
                    owner,
                    renewed: Instant::now(),
                },
            );
            state.owners.len() >= state.prune_at
        };
        if due {
            // Sessions rmcp closed on its own (idle timeout) leave their owner behind: keep
            // only those still open, then wait for the map to double before looking again.
            let open = self.manager.sessions.read().await;
            let mut state = self.lock();
            state.owners.retain(|id, _| open.contains_key(id.as_str()));
            state.prune_at = (state.owners.len() * 2).max(PRUNE_FLOOR);
        }
    }

    /// Records the owner of a session the request opened, here and in the shared store.
    async fn record(&self, session: String, owner: Owner) {
        if let Some(redis) = self.shared.redis()
            && let Err(e) = redis.record_session_owner(&session, &owner).await
        {
            tracing::warn!(error = %e, "the new session's owner could not be shared: the session works on this replica only");
        }
        self.remember(session, owner).await;
    }

    /// Forgets a session its owner deleted, here and in the shared store.
    async fn forget(&self, session: &str) {
        self.lock().owners.remove(session);
        if let Some(redis) = self.shared.redis() {
            let _ = redis.forget_session(session).await;
        }
    }
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Middleware after authentication: refuses a session opened by another identity, records the
/// owner of a session the request opened, and forgets a session its owner deleted.
pub(crate) async fn bind_session(
    owners: &Arc<SessionOwners>,
    request: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    let caller = request.extensions().get::<Identity>().map(owner_of);
    let presented = session_id(request.headers());
    if let Some(session) = &presented {
        match owners.check(session, caller.as_ref()).await {
            Check::Pass => {}
            // The same answer rmcp gives for a session it does not know.
            Check::NotFound => {
                return (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response();
            }
            Check::Unavailable(why) => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(http::header::RETRY_AFTER, "1")],
                    format!("Service Unavailable: the session's owner cannot be checked: {why}"),
                )
                    .into_response();
            }
        }
    }
    let deleting = request.method() == Method::DELETE;
    let response = next(request).await;
    match (presented, caller) {
        (None, Some(caller)) => {
            if let Some(opened) = session_id(response.headers()) {
                owners.record(opened, caller).await;
            }
        }
        (Some(session), _) if deleting && response.status().is_success() => {
            owners.forget(&session).await;
        }
        _ => {}
    }
    response
}
