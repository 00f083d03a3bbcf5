//! Binds each legacy MCP session to the identity that opened it. A session id presented with
//! anybody else's credentials is answered exactly like an unknown session (404), so a leaked
//! id lets nobody read another caller's stream or act inside their session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use webops_mcp_core::{AuthMethod, Identity};

/// The header that carries a legacy session's id.
const SESSION_HEADER: &str = "mcp-session-id";

/// Fewest owners kept before pruning the ones whose session rmcp has closed.
const PRUNE_FLOOR: usize = 1024;

/// Who opened a session: how they authenticated and as whom.
type Owner = (AuthMethod, String);

/// The owner of every open session.
pub(crate) struct SessionOwners {
    manager: Arc<LocalSessionManager>,
    state: Mutex<OwnerState>,
}

struct OwnerState {
    owners: HashMap<String, Owner>,
    /// Prune sessions rmcp has expired once this many owners are recorded.
    prune_at: usize,
}

impl SessionOwners {
    /// Owners of the sessions of `manager`.
    pub(crate) fn new(manager: Arc<LocalSessionManager>) -> Self {
        SessionOwners {
            manager,
            state: Mutex::new(OwnerState {
                owners: HashMap::new(),
                prune_at: PRUNE_FLOOR,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, OwnerState> {
        crate::sync::lock(&self.state)
    }

    fn owner(&self, session: &str) -> Option<Owner> {
        self.lock().owners.get(session).cloned()
    }

    async fn record(&self, session: String, owner: Owner) {
        let due = {
            let mut state = self.lock();
            state.owners.insert(session, owner);
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

    fn forget(&self, session: &str) {
        self.lock().owners.remove(session);
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
    State(owners): State<Arc<SessionOwners>>,
    request: Request,
    next: Next,
) -> Response {
    let caller = request
        .extensions()
        .get::<Identity>()
        .map(|identity| (identity.auth_method, identity.user_id.clone()));
    let presented = session_id(request.headers());
    if let Some(session) = &presented
        && let Some(owner) = owners.owner(session)
        && caller.as_ref() != Some(&owner)
    {
        // The same answer rmcp gives for a session it does not know.
        return (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response();
    }
    let deleting = request.method() == Method::DELETE;
    let response = next.run(request).await;
    match (presented, caller) {
        (None, Some(caller)) => {
            if let Some(opened) = session_id(response.headers()) {
                owners.record(opened, caller).await;
            }
        }
        (Some(session), _) if deleting && response.status().is_success() => {
            owners.forget(&session);
        }
        _ => {}
    }
    response
}
