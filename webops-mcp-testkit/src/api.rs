//! The HTTP face of the mock: routes, the front middleware (request log, latency, faults, rate
//! limit), authentication and the endpoint handlers of the WebOps REST API v1.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::fault::{FaultAction, RecordedRequest};
use crate::model::{DatabaseWire, Level, LinkWire, LogEntryWire, ServiceState, Status, now};
use crate::numbers;
use crate::params::{self, Query};
use crate::store::{Action, Replay, Shared};

/// Largest request body the mock reads.
const BODY_LIMIT: usize = 1024 * 1024;

/// How much of a body the request log keeps (the log holds up to 10,000 requests).
const RECORDED_BODY_BYTES: usize = 64 * 1024;

/// How long an `Idempotency-Key` is remembered.
const IDEMPOTENCY_WINDOW_HOURS: i64 = 24;

type AppState = Arc<Shared>;

/// The whole API.
pub(crate) fn router(shared: AppState) -> Router {
    Router::new()
        .route("/api/v1/status/", get(status))
        .route(
            "/api/v1/deployments/",
            get(list_deployments).post(create_deployment),
        )
        .route(
            "/api/v1/deployments/{id}/",
            get(get_deployment)
                .put(update_deployment)
                .delete(delete_deployment),
        )
        .route(
            "/api/v1/deployments/{id}/start/",
            post(|w: Writer, s: State<AppState>, id: Id| action(w, s, id, Action::Start)),
        )
        .route(
            "/api/v1/deployments/{id}/stop/",
            post(|w: Writer, s: State<AppState>, id: Id| action(w, s, id, Action::Stop)),
        )
        .route(
            "/api/v1/deployments/{id}/restart/",
            post(|w: Writer, s: State<AppState>, id: Id| action(w, s, id, Action::Restart)),
        )
        .route(
            "/api/v1/deployments/{id}/redeploy/",
            post(|w: Writer, s: State<AppState>, id: Id| action(w, s, id, Action::Redeploy)),
        )
        .route("/api/v1/deployments/{id}/scale/", post(scale))
        .route("/api/v1/deployments/{id}/logs/", get(logs))
        .route("/api/v1/databases/", get(databases))
        .route("/api/v1/monitoring/health/", get(health))
        .route("/api/v1/monitoring/metrics/", get(metrics))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(from_fn_with_state(Arc::clone(&shared), front))
        .with_state(shared)
}

/// Every request passes here first: it is logged, delayed, faulted or rate limited, and only
/// then routed.
async fn front(State(shared): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, BODY_LIMIT).await;
    let record = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: recorded_headers(&parts.headers),
        body: bytes.as_ref().map(|b| recorded_body(b)).unwrap_or_default(),
        status: 0,
    };
    let (method, path) = (parts.method.clone(), record.path.clone());
    let seq = shared.control().record(record);

    let response = respond(&shared, parts, bytes, next).await;
    let status = response.status().as_u16();
    shared.control().answered(seq, status);
    tracing::debug!(%method, %path, status, "webops-mock answered");
    response
}

async fn respond(
    shared: &AppState,
    parts: Parts,
    bytes: Result<Bytes, axum::Error>,
    next: Next,
) -> Response {
    let latency = shared.control().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fault = shared
        .control()
        .take_fault(parts.method.as_str(), parts.uri.path());
    let replacement = match fault {
        Some(FaultAction::Respond(response)) => return response,
        Some(FaultAction::Replace(response)) => Some(response),
        Some(FaultAction::Delay(d)) => {
            tokio::time::sleep(d).await;
            None
        }
        None => None,
    };
    if let Some(retry_after) = shared.control().over_limit(Instant::now()) {
        return ApiError::rate_limited(retry_after).into_response();
    }
    let Ok(bytes) = bytes else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The request body is larger than {BODY_LIMIT} bytes"),
        )
        .into_response();
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    replacement.unwrap_or(response)
}

/// The body as the request log keeps it: lossy UTF-8, at most [`RECORDED_BODY_BYTES`].
fn recorded_body(bytes: &[u8]) -> String {
    match bytes.get(..RECORDED_BODY_BYTES) {
        Some(head) if head.len() < bytes.len() => {
            format!("{}…", String::from_utf8_lossy(head))
        }
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

fn recorded_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        out.entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    out
}

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Full,
    ReadOnly,
}

fn access(parts: &Parts, shared: &Shared) -> Result<Access, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Authentication credentials were not provided",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match token {
        Some(t) if t == shared.config.token => Ok(Access::Full),
        Some(t) if shared.config.read_only_token.as_deref() == Some(t) => Ok(Access::ReadOnly),
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Invalid token: expected 'Authorization: Bearer <token>' with a valid API token",
        )),
    }
}

/// Extractor: any valid token.
#[derive(Debug)]
struct Reader;

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        access(parts, state).map(|_| Reader)
    }
}

/// Extractor: a token that may change things.
#[derive(Debug)]
struct Writer;

impl FromRequestParts<AppState> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match access(parts, state)? {
            Access::Full => Ok(Writer),
            Access::ReadOnly => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "This token is read-only: it may not create, change or delete anything",
            )),
        }
    }
}

/// Extractor: the deployment id of the path (anything but an integer is an unknown
/// deployment).
#[derive(Debug)]
struct Id(i64);

impl FromRequestParts<AppState> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let raw = Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(raw)| raw)
            .unwrap_or_default();
        raw.parse::<i64>()
            .map(Id)
            .map_err(|_| ApiError::not_found(format!("Deployment '{raw}' not found")))
    }
}

/// `{"success": true, "data": data}` with `status`.
fn success(status: StatusCode, data: impl Serialize) -> Response {
    (status, axum::Json(Success::new(data))).into_response()
}

/// A successful answer, written straight from its data. A `Value` tree in between, built under
/// the state's lock for a list, more than doubled the mock's CPU per listed page at 64
/// concurrent lists: they queued on that lock.
#[derive(Serialize)]
struct Success<T> {
    success: bool,
    data: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    pagination: Option<Value>,
}

impl<T> Success<T> {
    fn new(data: T) -> Self {
        Success {
            success: true,
            data,
            pagination: None,
        }
    }
}

fn ok(data: impl Serialize) -> Response {
    success(StatusCode::OK, data)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    let path = uri.path();
    let hint = if path.ends_with('/') {
        String::new()
    } else {
        " (every API path ends with '/')".to_owned()
    };
    ApiError::not_found(format!("No endpoint {method} {path}{hint}"))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method {method} is not allowed on {}", uri.path()),
    )
}

async fn status() -> Response {
    ok(json!({
        "status": "ok",
        "version": concat!("webops-mock ", env!("CARGO_PKG_VERSION")),
        "timestamp": now(),
    }))
}

async fn list_deployments(
    _: Reader,
    State(shared): State<AppState>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let q = params::list_query(&Query::of(&uri)?)?;
    let at = now();
    let state = shared.state();
    let matching: Vec<_> = state
        .deployments
        .values()
        .filter(|d| q.status.is_none_or(|s| d.status == s))
        .filter(|d| q.environment.is_none_or(|e| d.environment == e))
        .filter(|d| {
            q.project_type
                .as_deref()
                .is_none_or(|t| d.project_type == t)
        })
        .filter(|d| q.search.as_deref().is_none_or(|s| d.name.contains(s)))
        .collect();
    let total = matching.len();
    let per_page = q.per_page as usize;
    let skip = (q.page as usize - 1).saturating_mul(per_page);
    let page: Vec<_> = matching
        .into_iter()
        .skip(skip)
        .take(per_page)
        .map(|d| d.summary(at))
        .collect();
    let body = Success {
        pagination: Some(json!({
            "page": q.page,
            "per_page": q.per_page,
            "total": total,
            "total_pages": total.div_ceil(per_page),
        })),
        ..Success::new(page)
    };
    Ok(axum::Json(body).into_response())
}

async fn create_deployment(
    _: Writer,
    State(shared): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if !k.trim().is_empty() && k.len() <= 255 => Some(k.trim().to_owned()),
            _ => {
                return Err(ApiError::field(
                    "Idempotency-Key",
                    "must be 1 to 255 visible ASCII characters",
                ));
            }
        },
    };
    let object = params::json_object(&body)?;
    let request = Value::Object(object.clone());
    let at = now();

    let (id, generation, data) = {
        let mut state = shared.state();
        if let Some(key) = &key {
            state
                .idempotency
                .retain(|_, r| at - r.at < chrono::Duration::hours(IDEMPOTENCY_WINDOW_HOURS));
            if let Some(replay) = state.idempotency.get(key) {
                if replay.request != request {
                    return Err(ApiError::conflict(format!(
                        "Idempotency-Key '{key}' was already used with a different request body"
                    )));
                }
                let status = StatusCode::from_u16(replay.status).unwrap_or(StatusCode::CREATED);
                let mut response = (status, axum::Json(replay.response.clone())).into_response();
                response
                    .headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
                return Ok(response);
            }
        }
        let new = params::new_deployment(&object)?;
        let (id, generation, data) = state.create(new, at, shared.config.step_delay)?;
        if let Some(key) = key {
            let response = json!({"success": true, "data": data});
            state.idempotency.insert(
                key,
                Replay {
                    request,
                    status: StatusCode::CREATED.as_u16(),
                    response,
                    at,
                },
            );
        }
        (id, generation, data)
    };
    shared.changed.notify_waiters();
    shared.spawn_build(id, generation, true);
    Ok(success(StatusCode::CREATED, data))
}

async fn get_deployment(
    _: Reader,
    State(shared): State<AppState>,
    Id(id): Id,
) -> Result<Response, ApiError> {
    let state = shared.state();
    Ok(ok(state.get(id)?.detail(now())))
}

async fn update_deployment(
    _: Writer,
    State(shared): State<AppState>,
    Id(id): Id,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut state = shared.state();
    state.get(id)?;
    let update = params::update(&params::json_object(&body)?)?;
    let at = now();
    state.update(id, update, at)?;
    Ok(ok(state.get(id)?.detail(at)))
}

async fn delete_deployment(
    _: Writer,
    State(shared): State<AppState>,
    Id(id): Id,
) -> Result<Response, ApiError> {
    shared.state().delete(id)?;
    shared.changed.notify_waiters();
    Ok(ok(json!({"id": id, "deleted": true})))
}

async fn action(
    _: Writer,
    State(shared): State<AppState>,
    Id(id): Id,
    action: Action,
) -> Result<Response, ApiError> {
    let outcome = shared.state().action(id, action, now())?;
    shared.changed.notify_waiters();
    if let Some(generation) = outcome.build {
        shared.spawn_build(id, generation, false);
    }
    let body = json!({
        "success": true,
        "message": outcome.message,
        "data": {"id": id, "status": outcome.status, "message": outcome.message},
    });
    Ok(axum::Json(body).into_response())
}

async fn scale(
    _: Writer,
    State(shared): State<AppState>,
    Id(id): Id,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut state = shared.state();
    state.get(id)?;
    // No body at all is a missing `instances`, not a malformed body.
    let object = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        params::json_object(&body)?
    };
    let instances = params::instances(&object)?;
    let data = state.scale(id, instances, now())?;
    Ok(ok(data))
}

async fn logs(
    _: Reader,
    State(shared): State<AppState>,
    Id(id): Id,
    uri: Uri,
) -> Result<Response, ApiError> {
    let state = shared.state();
    let deployment = state.get(id)?;
    let q = params::log_query(&Query::of(&uri)?)?;
    let matching: Vec<_> = deployment
        .logs
        .iter()
        .filter(|l| l.log_type == q.log_type)
        .filter(|l| q.level.is_none_or(|level: Level| l.level == level))
        .filter(|l| q.since.is_none_or(|since| l.timestamp >= since))
        .collect();
    let total = matching.len();
    let newest: Vec<LogEntryWire<'_>> = matching[total.saturating_sub(q.lines)..]
        .iter()
        .map(|l| LogEntryWire::from(*l))
        .collect();
    Ok(ok(json!({
        "logs": newest,
        "total_lines": total,
        "is_live": matches!(deployment.status, Status::Running | Status::Building),
    })))
}

async fn databases(_: Reader, State(shared): State<AppState>) -> Response {
    let state = shared.state();
    let list: Vec<DatabaseWire<'_>> = state
        .databases
        .iter()
        .map(|db| {
            let owner = db.deployment_id.and_then(|id| state.deployments.get(&id));
            let host = if db.publicly_accessible {
                format!("{}.db.webops-demo.com", db.name)
            } else {
                format!("{}.internal", db.name)
            };
            DatabaseWire {
                id: db.id,
                name: &db.name,
                engine: db.engine,
                host,
                port: match db.engine {
                    crate::model::Engine::Postgresql => Some(5432),
                    crate::model::Engine::Mysql => Some(3306),
                    crate::model::Engine::Sqlite => None,
                },
                size_mb: numbers::database_size_mb(db),
                connection_count: numbers::database_connections(db, owner),
                publicly_accessible: db.publicly_accessible,
                ssl_required: db.ssl_required,
                deployment: owner.map(|d| LinkWire {
                    id: d.id,
                    name: &d.name,
                }),
            }
        })
        .collect();
    ok(list)
}

async fn health(_: Reader, State(shared): State<AppState>) -> Response {
    let at = now();
    let state = shared.state();
    let count = |s: Status| state.deployments.values().filter(|d| d.status == s).count();
    let (running, failed) = (count(Status::Running), count(Status::Failed));
    let unhealthy_running = state
        .deployments
        .values()
        .filter(|d| d.status == Status::Running && !d.healthy)
        .count();
    let problems = failed + unhealthy_running;
    let service_failed = state.services.values().any(|s| *s == ServiceState::Failed);
    let service_stopped = state.services.values().any(|s| *s == ServiceState::Stopped);
    let overall = if service_failed || (problems > 0 && problems * 2 > running + failed) {
        "unhealthy"
    } else if problems > 0 || service_stopped {
        "degraded"
    } else {
        "healthy"
    };
    ok(json!({
        "overall_status": overall,
        "timestamp": at,
        "system": numbers::system(
            state.deployments.values(),
            &state.databases,
            at,
            shared.config.booted,
        ),
        "services": state.services,
        "deployments": {
            "total": state.deployments.len(),
            "running": running,
            "stopped": count(Status::Stopped),
            "failed": failed,
            "pending": count(Status::Pending),
            "building": count(Status::Building),
            "unhealthy": unhealthy_running,
        },
    }))
}

async fn metrics(
    _: Reader,
    State(shared): State<AppState>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let q = params::metrics_query(&Query::of(&uri)?)?;
    let at = now();
    let state = shared.state();
    let points = match q.deployment_id {
        Some(id) => numbers::deployment_points(state.get(id)?, q.period, at),
        None => numbers::platform_points(state.deployments.values(), q.period, at),
    };
    let mut data = json!({"period": q.period, "points": points});
    if let (Some(id), Some(object)) = (q.deployment_id, data.as_object_mut()) {
        object.insert("deployment_id".to_owned(), json!(id));
    }
    Ok(ok(data))
}
