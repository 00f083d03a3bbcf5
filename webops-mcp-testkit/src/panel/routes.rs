//! The panel's URL table and its JSON views under `/api/`: status, deployments (list, create
//! with the inline deploy, detail, start, the broken stop/restart, soft delete, logs, repo
//! `.env`, project validation, the broken `files/*`) and databases.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::Shared;
use super::http::{Req, error, json_response, server_error};
use super::state::{Deployment, PanelState, iso};
use super::{auth, monitor};

/// A resolved URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Dashboard,
    Status,
    Login,
    Logout,
    TwoFactor,
    List,
    Create,
    Files(&'static str),
    Detail(String),
    Start(String),
    Stop(String),
    Restart(String),
    Delete(String),
    Logs(String),
    Env(String),
    ProjectValidate(String),
    Databases,
    Database(String),
    MetricsCurrent,
    MetricsHistory,
    SystemSummary,
    SystemHealth,
}

/// Resolves a decoded path as Django's URLconf does (every route ends in `/`; a `str`
/// segment is one or more characters other than `/`; an `int` segment is digits).
pub(crate) fn resolve(path: &str) -> Option<Route> {
    if path == "/" {
        return Some(Route::Dashboard);
    }
    let inner = path.strip_prefix('/')?.strip_suffix('/')?;
    let segments: Vec<&str> = inner.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    let name = |s: &str| s.to_owned();
    let route = match segments.as_slice() {
        ["api", "status"] => Route::Status,
        ["auth", "login"] => Route::Login,
        ["auth", "logout"] => Route::Logout,
        ["auth", "2fa", "verify"] => Route::TwoFactor,
        ["api", "deployments"] => Route::List,
        ["api", "deployments", "create"] => Route::Create,
        ["api", "deployments", id, "files", kind] if id.bytes().all(|b| b.is_ascii_digit()) => {
            match *kind {
                "tree" => Route::Files("tree"),
                "read" => Route::Files("read"),
                "write" => Route::Files("write"),
                _ => return None,
            }
        }
        ["api", "deployments", n] => Route::Detail(name(n)),
        ["api", "deployments", n, "start"] => Route::Start(name(n)),
        ["api", "deployments", n, "stop"] => Route::Stop(name(n)),
        ["api", "deployments", n, "restart"] => Route::Restart(name(n)),
        ["api", "deployments", n, "delete"] => Route::Delete(name(n)),
        ["api", "deployments", n, "logs"] => Route::Logs(name(n)),
        ["api", "deployments", n, "env"] => Route::Env(name(n)),
        ["api", "deployments", n, "project", "validate"] => Route::ProjectValidate(name(n)),
        ["api", "databases"] => Route::Databases,
        ["api", "databases", n] => Route::Database(name(n)),
        ["monitoring", "api", "metrics", "current"] => Route::MetricsCurrent,
        ["monitoring", "api", "metrics", "history"] => Route::MetricsHistory,
        ["monitoring", "api", "system", "summary"] => Route::SystemSummary,
        ["monitoring", "api", "system", "health"] => Route::SystemHealth,
        _ => return None,
    };
    Some(route)
}

impl Route {
    /// Whether the view is wrapped in `login_required`.
    pub(crate) fn login_required(&self) -> bool {
        !matches!(self, Route::Status | Route::Login | Route::TwoFactor)
    }

    /// Whether the view is `csrf_exempt` (none of the served ones is).
    pub(crate) fn csrf_exempt(&self) -> bool {
        false
    }

    /// The methods `require_http_methods` allows (`None`: any).
    pub(crate) fn methods(&self) -> Option<&'static [&'static str]> {
        Some(match self {
            Route::Dashboard
            | Route::Status
            | Route::Login
            | Route::Logout
            | Route::TwoFactor
            | Route::MetricsCurrent
            | Route::MetricsHistory
            | Route::SystemSummary => return None,
            Route::Create
            | Route::Start(_)
            | Route::Stop(_)
            | Route::Restart(_)
            | Route::Files("write") => &["POST"],
            Route::Delete(_) => &["DELETE"],
            _ => &["GET"],
        })
    }
}

/// Runs the view of `route` (the middleware has passed).
pub(crate) fn view(shared: &Shared, req: &Req, route: Route) -> Response {
    let user = req.user.clone().unwrap_or_default();
    match route {
        Route::Dashboard => auth::dashboard(&user),
        Route::Status => json_response(
            StatusCode::OK,
            json!({"status": "ok", "timestamp": iso(chrono::Utc::now())}),
        ),
        Route::Login => auth::login(shared, req),
        Route::Logout => auth::logout(shared, req),
        Route::TwoFactor => auth::two_factor_page(),
        Route::List => list(&shared.state(), req, &user),
        Route::Create => create(&mut shared.state(), req, &user),
        Route::Files(_) => server_error(
            req,
            "FieldError",
            "Cannot resolve keyword 'deployment_id' into field. Choices are: branch, \
             created_at, deployed_by, deployed_by_id, domain, env_vars, id, logs, name, port, \
             project_type, repo_url, status, updated_at",
        ),
        Route::Detail(name) => match shared.state().owned(&user, &name) {
            Some(d) => json_response(StatusCode::OK, d.detail()),
            None => missing(&name),
        },
        Route::Start(name) => match shared.state().owned_mut(&user, &name) {
            // `save(update_fields=['status'])`: `updated_at` stays.
            Some(d) => {
                d.status = "running".to_owned();
                json_response(
                    StatusCode::OK,
                    json!({"message": format!("Deployment {name} started"), "status": "running"}),
                )
            }
            None => missing(&name),
        },
        Route::Stop(name) => broken_task(shared, req, &user, &name, "stop_deployment"),
        Route::Restart(name) => broken_task(shared, req, &user, &name, "restart_deployment"),
        Route::Delete(name) => {
            let mut state = shared.state();
            let Some(id) = state.owned(&user, &name).map(|d| d.id) else {
                return missing(&name);
            };
            state.run_delete(id, chrono::Utc::now());
            json_response(
                StatusCode::OK,
                json!({"message": format!("Deployment {name} delete queued")}),
            )
        }
        Route::Logs(name) => logs(&shared.state(), req, &user, &name),
        Route::Env(name) => match shared.state().owned(&user, &name) {
            Some(d) => {
                let text = d.repo.as_ref().and_then(|r| r.dot_env.as_deref());
                json_response(
                    StatusCode::OK,
                    json!({"env_vars": text.map(parse_dot_env).unwrap_or_default()}),
                )
            }
            None => missing(&name),
        },
        Route::ProjectValidate(name) => match shared.state().owned(&user, &name) {
            Some(d) => project_validate(d),
            None => missing(&name),
        },
        Route::Databases => databases(&shared.state(), &user),
        Route::Database(name) => database(&shared.state(), &user, &name),
        Route::MetricsCurrent => monitor::current(&shared.state()),
        Route::MetricsHistory => monitor::history(&shared.state(), req),
        Route::SystemSummary => monitor::summary(&shared.state()),
        Route::SystemHealth => monitor::health(&shared.state()),
    }
}

/// 404 `{"error": "Deployment <name> not found"}`.
fn missing(name: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        &format!("Deployment {name} not found"),
    )
}

/// Python's `int(text)`: surrounding whitespace, a sign, digits with single `_` between them.
pub(crate) fn py_int(text: &str) -> Option<i64> {
    let t = text.trim();
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let ok = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !ok {
        return None;
    }
    let value: i64 = digits.replace('_', "").parse().ok()?;
    Some(if negative { -value } else { value })
}

/// The 500 of `int(text)` failing.
pub(crate) fn int_error(req: &Req, text: &str) -> Response {
    server_error(
        req,
        "ValueError",
        &format!("invalid literal for int() with base 10: '{text}'"),
    )
}

/// `GET /api/deployments/`: Django's `Paginator` with its quirks.
fn list(state: &PanelState, req: &Req, user: &str) -> Response {
    let page_text = req.param("page").unwrap_or_else(|| "1".to_owned());
    let Some(page) = py_int(&page_text) else {
        return int_error(req, &page_text);
    };
    let per_page_text = req.param("per_page").unwrap_or_else(|| "20".to_owned());
    let Some(per_page) = py_int(&per_page_text) else {
        return int_error(req, &per_page_text);
    };
    let status = req.param("status").filter(|s| !s.is_empty());
    let mut rows: Vec<&Deployment> = state
        .deployments
        .iter()
        .filter(|d| d.owner == user)
        .filter(|d| status.as_deref().is_none_or(|s| d.status == s))
        .collect();
    rows.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let count = rows.len() as i64;
    if per_page == 0 {
        return server_error(req, "ZeroDivisionError", "division by zero");
    }
    // ceil(max(1, count) / per_page), with Python's rounding for a negative per_page.
    let hits = count.max(1);
    let pages = if per_page > 0 {
        (hits + per_page - 1) / per_page
    } else {
        -(hits / -per_page)
    };
    let number = if page < 1 || page > pages {
        pages
    } else {
        page
    };
    if number < 1 {
        return server_error(req, "EmptyPage", "That page contains no results");
    }
    let bottom = ((number - 1) * per_page).min(count) as usize;
    let top = (bottom as i64 + per_page).min(count) as usize;
    let items: Vec<Value> = rows[bottom..top].iter().map(|d| d.summary()).collect();
    json_response(
        StatusCode::OK,
        json!({
            "deployments": items,
            "pagination": {"page": page, "per_page": per_page, "total": count, "pages": pages},
        }),
    )
}

/// A JSON value as Python's `str()` would put it into a text column.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        other => other.to_string(),
    }
}

/// Python's type name of a JSON value.
fn py_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// `POST /api/deployments/create/`: inserts the row and runs the deploy task inline.
fn create(state: &mut PanelState, req: &Req, user: &str) -> Response {
    let Ok(data) = serde_json::from_slice::<Value>(&req.body) else {
        return error(StatusCode::BAD_REQUEST, "Invalid JSON");
    };
    // `all(field in data for field in ['name', 'repo_url'])`, then `data['name']`.
    let has = |key: &str| match &data {
        Value::Object(o) => Ok(o.contains_key(key)),
        Value::Array(a) => Ok(a.iter().any(|v| v.as_str() == Some(key))),
        Value::String(s) => Ok(s.contains(key)),
        other => Err(format!(
            "argument of type '{}' is not iterable",
            py_type(other)
        )),
    };
    match (has("name"), has("repo_url")) {
        (Err(e), _) | (_, Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        (Ok(true), Ok(true)) => {}
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "Missing required fields: name, repo_url",
            );
        }
    }
    let Value::Object(data) = data else {
        let message = match data {
            Value::Array(_) => "list indices must be integers or slices, not str",
            _ => "string indices must be integers, not 'str'",
        };
        return error(StatusCode::INTERNAL_SERVER_ERROR, message);
    };
    let field = |key: &str, default: &str| data.get(key).map_or(default.to_owned(), text_of);
    let name = field("name", "");
    if state.deployments.iter().any(|d| d.name == name) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("Deployment {name} already exists"),
        );
    }
    let now = chrono::Utc::now();
    let id = state.insert(Deployment {
        id: 0,
        name: name.clone(),
        owner: user.to_owned(),
        status: "pending".to_owned(),
        project_type: "django".to_owned(),
        repo_url: field("repo_url", ""),
        branch: field("branch", "main"),
        domain: field("domain", ""),
        port: None,
        created_at: now,
        updated_at: now,
        env_vars: data.get("env_vars").cloned().unwrap_or(json!({})),
        deleted: false,
        deletes: 0,
        repo: None,
    });
    state.run_deploy(id, now);
    json_response(
        StatusCode::CREATED,
        json!({
            "id": id,
            "name": name,
            "status": "pending",
            "message": "Deployment queued successfully",
        }),
    )
}

/// Stop and restart: the lookup works, then submitting the task fails.
fn broken_task(shared: &Shared, req: &Req, user: &str, name: &str, task: &str) -> Response {
    if shared.state().owned(user, name).is_none() {
        return missing(name);
    }
    server_error(
        req,
        "ValueError",
        &format!("Unknown Celery task: apps.deployments.tasks.{task}"),
    )
}

/// `GET …/logs/`: oldest first; `tail=N` keeps the first N.
fn logs(state: &PanelState, req: &Req, user: &str, name: &str) -> Response {
    let Some(d) = state.owned(user, name) else {
        return missing(name);
    };
    let mut rows: Vec<_> = state.logs.iter().filter(|l| l.deployment == d.id).collect();
    rows.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    if let Some(tail) = req.param("tail").filter(|t| !t.is_empty()) {
        let Some(n) = py_int(&tail) else {
            return int_error(req, &tail);
        };
        if n < 0 {
            return server_error(req, "ValueError", "Negative indexing is not supported.");
        }
        rows.truncate(usize::try_from(n).unwrap_or(usize::MAX));
    }
    let logs: Vec<Value> = rows
        .iter()
        .map(|l| {
            json!({"id": l.id, "level": l.level, "message": l.message, "created_at": iso(l.created_at)})
        })
        .collect();
    json_response(StatusCode::OK, json!({ "logs": logs }))
}

/// Parses a `.env` file as the panel does: `KEY=value`, `#` comments, outer quotes stripped.
fn parse_dot_env(text: &str) -> Map<String, Value> {
    let mut vars = Map::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let value = value.trim();
            let quoted = value.len() >= 2
                && ((value.starts_with('"') && value.ends_with('"'))
                    || (value.starts_with('\'') && value.ends_with('\'')));
            let value = if quoted {
                &value[1..value.len() - 1]
            } else {
                value
            };
            vars.insert(key.trim().to_owned(), Value::String(value.to_owned()));
        }
    }
    vars
}

/// `GET …/project/validate/`.
fn project_validate(d: &Deployment) -> Response {
    let Some(repo) = &d.repo else {
        return error(
            StatusCode::BAD_REQUEST,
            "Repository not cloned yet. Deploy first.",
        );
    };
    let result = |passed: bool, message: &str, level: &str, details: Value| json!({"passed": passed, "message": message, "level": level, "details": details});
    let mut results = Vec::new();
    if repo.static_site {
        results.push(result(
            true,
            "Static site detected (index.html found)",
            "info",
            json!({"project_type": "static"}),
        ));
    } else {
        results.push(result(
            true,
            "Django project detected (manage.py found)",
            "info",
            json!({"project_type": "django"}),
        ));
        results.push(result(
            false,
            "No .env.example file found - consider adding one for easier configuration",
            "info",
            json!({}),
        ));
    }
    if repo.dot_env.is_some() {
        results.push(result(
            false,
            ".env file found in repository - this should be in .gitignore",
            "warning",
            json!({"security_risk": true}),
        ));
    }
    let all_passed = results
        .iter()
        .all(|r| r["passed"] == true || r["level"] != "error");
    json_response(
        StatusCode::OK,
        json!({"success": true, "all_passed": all_passed, "results": results}),
    )
}

/// The fields every database answer has.
fn database_base(state: &PanelState, db: &super::state::Database) -> Map<String, Value> {
    let mut m = Map::new();
    let created = iso(db.created_at);
    m.insert("id".into(), json!(db.id));
    m.insert("name".into(), json!(db.name));
    m.insert("db_type".into(), json!(db.db_type));
    m.insert("host".into(), json!(db.host));
    m.insert("port".into(), json!(db.port));
    m.insert("database_name".into(), json!(db.database_name));
    m.insert("username".into(), json!(db.username));
    m.insert("is_active".into(), json!(true));
    m.insert("created_at".into(), json!(created));
    m.insert("updated_at".into(), json!(created));
    if let Some(d) = state.deployments.iter().find(|d| d.id == db.deployment) {
        m.insert("deployment".into(), json!({"id": d.id, "name": d.name}));
    }
    let dependency = match db.db_type.as_str() {
        "postgresql" => "psycopg2-binary",
        "mysql" => "mysqlclient",
        "redis" => "redis",
        "mongodb" => "pymongo",
        _ => "",
    };
    m.insert(
        "dependency_status".into(),
        json!({
            "dependencies": if dependency.is_empty() { vec![] } else { vec![dependency] },
            "all_installed": true,
            "missing": [],
            "install_commands": {},
        }),
    );
    m
}

/// Databases whose deployment `user` owns, newest first.
fn owned_databases<'a>(
    state: &'a PanelState,
    user: &str,
) -> impl Iterator<Item = &'a super::state::Database> {
    let owned: Vec<i64> = state
        .deployments
        .iter()
        .filter(|d| d.owner == user)
        .map(|d| d.id)
        .collect();
    let mut dbs: Vec<_> = state
        .databases
        .iter()
        .filter(|db| owned.contains(&db.deployment))
        .collect();
    dbs.sort_by_key(|db| std::cmp::Reverse(db.created_at));
    dbs.into_iter()
}

/// `GET /api/databases/`.
fn databases(state: &PanelState, user: &str) -> Response {
    let list: Vec<Value> = owned_databases(state, user)
        .map(|db| Value::Object(database_base(state, db)))
        .collect();
    let count = list.len();
    json_response(StatusCode::OK, json!({"databases": list, "count": count}))
}

/// `GET /api/databases/{name}/`: `connection_string` masked, `connection_uri` raw.
fn database(state: &PanelState, user: &str, name: &str) -> Response {
    let Some(db) = owned_databases(state, user).find(|db| db.name == name) else {
        return error(StatusCode::NOT_FOUND, &format!("Database {name} not found"));
    };
    let mut m = database_base(state, db);
    let scheme = db.db_type.as_str();
    let tail = format!("@{}:{}/{}", db.host, db.port, db.database_name);
    m.insert("ssl_enabled".into(), json!(false));
    m.insert("connection_timeout".into(), json!(30));
    m.insert("pool_size".into(), json!(5));
    m.insert("environment".into(), json!("production"));
    m.insert(
        "connection_uri".into(),
        json!(format!("{scheme}://{}:{}{tail}", db.username, db.password)),
    );
    m.insert("metadata".into(), json!({}));
    m.insert(
        "connection_string".into(),
        json!(format!("{scheme}://{}:****{tail}", db.username)),
    );
    m.insert("required_addons".into(), json!([]));
    json_response(StatusCode::OK, Value::Object(m))
}
