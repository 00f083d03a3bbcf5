//! Parsing and validation of request bodies and query strings, with per-field `details`.

use std::collections::BTreeMap;

use axum::http::Uri;
use serde_json::{Map, Value};

use crate::error::{ApiError, Problems};
use crate::model::{Engine, Environment, Level, LogType, Period, Status, Ts};

/// The Python versions a new deployment may ask for.
pub(crate) const PYTHON_VERSIONS: &[&str] = &["3.9", "3.10", "3.11", "3.12"];

/// Parses a request body that must be a JSON object.
pub(crate) fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::field("body", "a JSON object is required"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::field("body", "must be a JSON object")),
        Err(e) => Err(ApiError::field("body", format!("malformed JSON: {e}"))),
    }
}

/// A field that is absent or `null` counts as not given.
fn given<'a>(body: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    body.get(field).filter(|v| !v.is_null())
}

/// A string field; notes a problem when it has another type.
fn string<'a>(body: &'a Map<String, Value>, field: &str, p: &mut Problems) -> Option<&'a str> {
    match given(body, field) {
        None => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            p.add(field, "must be a string");
            None
        }
    }
}

/// Whether `name` is a valid deployment name; otherwise what is wrong.
fn check_name(name: &str) -> Result<(), &'static str> {
    let len = name.chars().count();
    if len == 0 {
        return Err("must not be empty");
    }
    if len > 63 {
        return Err("must be at most 63 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err("may contain only lowercase letters, digits and '-'");
    }
    if name.starts_with('-') {
        return Err("must start with a lowercase letter or a digit");
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        // Digits alone address a deployment by id.
        return Err("must contain a letter or '-', not only digits");
    }
    Ok(())
}

/// `512M`, `1G`: a positive number of mebi- or gibibytes.
fn is_memory_limit(s: &str) -> bool {
    let Some(number) = s.strip_suffix('M').or_else(|| s.strip_suffix('G')) else {
        return false;
    };
    !number.is_empty()
        && number.len() <= 6
        && number.bytes().all(|b| b.is_ascii_digit())
        && !number.starts_with('0')
}

/// A DNS host name such as `shop.example.com`.
fn is_host_name(s: &str) -> bool {
    s.len() <= 253
        && s.contains('.')
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// An environment variable name: letters, digits and `_`, not starting with a digit.
fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn branch(body: &Map<String, Value>, p: &mut Problems) -> Option<String> {
    let branch = string(body, "branch", p)?;
    if branch.is_empty() || branch.len() > 255 || branch.chars().any(char::is_whitespace) {
        p.add(
            "branch",
            "must be a non-empty Git branch name without spaces (at most 255 characters)",
        );
        return None;
    }
    Some(branch.to_owned())
}

fn domain(body: &Map<String, Value>, p: &mut Problems) -> Option<String> {
    let domain = string(body, "domain", p)?.to_ascii_lowercase();
    if !is_host_name(&domain) {
        p.add("domain", "must be a host name such as shop.example.com");
        return None;
    }
    Some(domain)
}

fn env_vars(body: &Map<String, Value>, p: &mut Problems) -> Option<BTreeMap<String, String>> {
    let value = given(body, "env_vars")?;
    let Value::Object(map) = value else {
        p.add("env_vars", "must be an object of string values");
        return None;
    };
    let mut vars = BTreeMap::new();
    for (key, value) in map {
        if !is_env_name(key) {
            p.add(
                "env_vars",
                format!(
                    "'{key}' is not a valid variable name (letters, digits and '_', not starting with a digit)"
                ),
            );
        }
        match value {
            Value::String(s) => {
                vars.insert(key.clone(), s.clone());
            }
            _ => p.add("env_vars", format!("the value of '{key}' must be a string")),
        }
    }
    Some(vars)
}

/// A validated `POST deployments/` body.
#[derive(Debug, Clone)]
pub(crate) struct NewDeployment {
    pub(crate) name: String,
    pub(crate) repo_url: String,
    pub(crate) branch: String,
    pub(crate) project_type: String,
    pub(crate) environment: Environment,
    pub(crate) python_version: Option<String>,
    pub(crate) database_type: Option<Engine>,
    pub(crate) domain: Option<String>,
    pub(crate) ssl_enabled: bool,
    pub(crate) memory_limit: Option<String>,
    pub(crate) env_vars: BTreeMap<String, String>,
}

/// Validates a create body; every problem is reported at once.
pub(crate) fn new_deployment(body: &Map<String, Value>) -> Result<NewDeployment, ApiError> {
    let mut p = Problems::default();

    let name = match string(body, "name", &mut p) {
        None if given(body, "name").is_none() => {
            p.add("name", "this field is required");
            None
        }
        None => None,
        Some(name) => match check_name(name) {
            Ok(()) => Some(name.to_owned()),
            Err(why) => {
                p.add("name", why);
                None
            }
        },
    };

    let repo_url = match string(body, "repo_url", &mut p) {
        None if given(body, "repo_url").is_none() => {
            p.add("repo_url", "this field is required");
            None
        }
        Some("") => {
            p.add("repo_url", "must not be empty");
            None
        }
        other => other.map(str::to_owned),
    };

    let branch = branch(body, &mut p).unwrap_or_else(|| "main".to_owned());

    let project_type = match string(body, "project_type", &mut p) {
        None => "django".to_owned(),
        Some(t)
            if !t.is_empty()
                && t.len() <= 32
                && t.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) =>
        {
            t.to_owned()
        }
        Some(_) => {
            p.add(
                "project_type",
                "must be a short lowercase word such as django, python, nodejs, static, docker",
            );
            "django".to_owned()
        }
    };

    let environment = match string(body, "environment", &mut p) {
        None => Environment::Production,
        Some(e) => Environment::parse(e).unwrap_or_else(|| {
            p.add("environment", Environment::one_of());
            Environment::Production
        }),
    };

    let python_version = match string(body, "python_version", &mut p) {
        None if matches!(project_type.as_str(), "django" | "python") => Some("3.11".to_owned()),
        None => None,
        Some(v) if PYTHON_VERSIONS.contains(&v) => Some(v.to_owned()),
        Some(_) => {
            p.add(
                "python_version",
                format!("must be one of: {}", PYTHON_VERSIONS.join(", ")),
            );
            None
        }
    };

    let database_type = match string(body, "database_type", &mut p) {
        None => None,
        Some(e) => Engine::parse(e).or_else(|| {
            p.add("database_type", Engine::one_of());
            None
        }),
    };

    let domain = domain(body, &mut p);

    let ssl_enabled = match given(body, "ssl_enabled") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            p.add("ssl_enabled", "must be true or false");
            true
        }
    };

    let memory_limit = match string(body, "memory_limit", &mut p) {
        None => None,
        Some(m) if is_memory_limit(m) => Some(m.to_owned()),
        Some(_) => {
            p.add(
                "memory_limit",
                "must be a size in M or G, such as \"512M\" or \"1G\"",
            );
            None
        }
    };

    let env_vars = env_vars(body, &mut p).unwrap_or_default();

    let (Some(name), Some(repo_url)) = (name, repo_url) else {
        return Err(p
            .finish(())
            .err()
            .unwrap_or_else(|| ApiError::field("name", "this field is required")));
    };
    p.finish(NewDeployment {
        name,
        repo_url,
        branch,
        project_type,
        environment,
        python_version,
        database_type,
        domain,
        ssl_enabled,
        memory_limit,
        env_vars,
    })
}

/// A validated `PUT deployments/{id}/` body; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub(crate) struct Update {
    pub(crate) branch: Option<String>,
    /// `Some(None)`: clear the domain.
    pub(crate) domain: Option<Option<String>>,
    pub(crate) env_vars: Option<BTreeMap<String, String>>,
}

/// Validates an update body.
pub(crate) fn update(body: &Map<String, Value>) -> Result<Update, ApiError> {
    let mut p = Problems::default();
    let branch = branch(body, &mut p);
    let domain = match body.get("domain") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(_) => domain(body, &mut p).map(Some),
    };
    let env_vars = env_vars(body, &mut p);
    p.finish(Update {
        branch,
        domain,
        env_vars,
    })
}

/// Validates a scale body: `{"instances": 1..=10}`.
pub(crate) fn instances(body: &Map<String, Value>) -> Result<u32, ApiError> {
    const RANGE: &str = "must be an integer from 1 to 10";
    match given(body, "instances") {
        None => Err(ApiError::field("instances", "this field is required")),
        Some(v) => match v.as_u64() {
            Some(n @ 1..=10) => Ok(n as u32),
            _ => Err(ApiError::field("instances", RANGE)),
        },
    }
}

/// A parsed query string (first value of each name wins; empty values count as absent).
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    /// Parses the query of `uri`.
    pub(crate) fn of(uri: &Uri) -> Result<Query, ApiError> {
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::field("query", format!("malformed query string: {e}")))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    fn integer(&self, name: &str, min: i64, max: i64, p: &mut Problems) -> Option<i64> {
        let raw = self.get(name)?;
        match raw.trim().parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ if max == i64::MAX => {
                p.add(name, format!("must be an integer of at least {min}"));
                None
            }
            _ => {
                p.add(name, format!("must be an integer from {min} to {max}"));
                None
            }
        }
    }

    fn one_of<T>(
        &self,
        name: &str,
        parse: fn(&str) -> Option<T>,
        allowed: fn() -> String,
        p: &mut Problems,
    ) -> Option<T> {
        let raw = self.get(name)?;
        let parsed = parse(raw);
        if parsed.is_none() {
            p.add(name, allowed());
        }
        parsed
    }
}

/// Parses an RFC 3339 timestamp, forgiving a `+` that a query string turned into a space.
pub(crate) fn timestamp(raw: &str) -> Option<Ts> {
    let parse = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    parse(raw).or_else(|| parse(&raw.replace(' ', "+")))
}

/// Query of `GET deployments/`.
#[derive(Debug)]
pub(crate) struct ListQuery {
    pub(crate) status: Option<Status>,
    pub(crate) environment: Option<Environment>,
    pub(crate) project_type: Option<String>,
    pub(crate) search: Option<String>,
    pub(crate) page: u32,
    pub(crate) per_page: u32,
}

/// Validates the query of `GET deployments/`.
pub(crate) fn list_query(q: &Query) -> Result<ListQuery, ApiError> {
    let mut p = Problems::default();
    let status = q.one_of("status", Status::parse, Status::one_of, &mut p);
    let environment = q.one_of(
        "environment",
        Environment::parse,
        Environment::one_of,
        &mut p,
    );
    let page = q.integer("page", 1, i64::MAX, &mut p).unwrap_or(1);
    let per_page = q.integer("per_page", 1, 100, &mut p).unwrap_or(20);
    p.finish(ListQuery {
        status,
        environment,
        project_type: q.get("project_type").map(str::to_owned),
        search: q.get("search").map(str::to_lowercase),
        page: u32::try_from(page).unwrap_or(u32::MAX),
        per_page: u32::try_from(per_page).unwrap_or(20),
    })
}

/// Query of `GET deployments/{id}/logs/`.
#[derive(Debug)]
pub(crate) struct LogQuery {
    pub(crate) log_type: LogType,
    pub(crate) lines: usize,
    pub(crate) level: Option<Level>,
    pub(crate) since: Option<Ts>,
}

/// Validates the query of `GET deployments/{id}/logs/`.
pub(crate) fn log_query(q: &Query) -> Result<LogQuery, ApiError> {
    let mut p = Problems::default();
    let log_type = q
        .one_of("type", LogType::parse, LogType::one_of, &mut p)
        .unwrap_or(LogType::Application);
    let lines = q.integer("lines", 1, 1000, &mut p).unwrap_or(100);
    let level = q.one_of("level", Level::parse, Level::one_of, &mut p);
    let since = q.get("since").and_then(|raw| {
        let parsed = timestamp(raw);
        if parsed.is_none() {
            p.add(
                "since",
                "must be an RFC 3339 timestamp such as 2025-01-31T12:00:00Z",
            );
        }
        parsed
    });
    p.finish(LogQuery {
        log_type,
        lines: usize::try_from(lines).unwrap_or(100),
        level,
        since,
    })
}

/// Query of `GET monitoring/metrics/`.
#[derive(Debug)]
pub(crate) struct MetricsQuery {
    pub(crate) period: Period,
    pub(crate) deployment_id: Option<i64>,
}

/// Validates the query of `GET monitoring/metrics/`.
pub(crate) fn metrics_query(q: &Query) -> Result<MetricsQuery, ApiError> {
    let mut p = Problems::default();
    let period = q
        .one_of("period", Period::parse, Period::one_of, &mut p)
        .unwrap_or(Period::Day);
    let deployment_id = q.integer("deployment_id", 1, i64::MAX, &mut p);
    p.finish(MetricsQuery {
        period,
        deployment_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn details(e: ApiError) -> BTreeMap<String, Vec<String>> {
        e.details.unwrap_or_default()
    }

    #[test]
    fn names() {
        assert!(check_name("shop-api").is_ok());
        assert!(check_name("1st").is_ok());
        assert!(check_name(&"a".repeat(63)).is_ok());
        assert!(check_name(&"a".repeat(64)).is_err());
        assert!(check_name("").is_err());
        assert!(check_name("-x").is_err());
        assert!(check_name("Shop").is_err());
        assert!(check_name("2048").is_err());
        assert!(check_name("2048-x").is_ok());
        assert!(check_name("shop_api").is_err());
    }

    #[test]
    fn memory_limits() {
        for ok in ["512M", "1G", "64M", "16G"] {
            assert!(is_memory_limit(ok), "{ok}");
        }
        for bad in ["", "M", "512", "512m", "0M", "1.5G", "1T", "-1G", "1GB"] {
            assert!(!is_memory_limit(bad), "{bad}");
        }
    }

    #[test]
    fn create_defaults() {
        let new = new_deployment(&obj(json!({"name": "a", "repo_url": "x"}))).unwrap();
        assert_eq!(new.branch, "main");
        assert_eq!(new.project_type, "django");
        assert_eq!(new.environment, Environment::Production);
        assert_eq!(new.python_version.as_deref(), Some("3.11"));
        assert!(new.ssl_enabled);
        assert!(new.env_vars.is_empty());
    }

    #[test]
    fn create_reports_every_field() {
        let e = new_deployment(&obj(json!({
            "environment": "prod", "python_version": "3.8", "database_type": "oracle",
            "memory_limit": "lots", "env_vars": {"A": 1}, "ssl_enabled": "yes",
            "branch": "", "domain": "not a domain"
        })))
        .unwrap_err();
        let d = details(e);
        for field in [
            "name",
            "repo_url",
            "environment",
            "python_version",
            "database_type",
            "memory_limit",
            "env_vars",
            "ssl_enabled",
            "branch",
            "domain",
        ] {
            assert!(d.contains_key(field), "{field} missing from {d:?}");
        }
    }

    #[test]
    fn timestamps_accept_z_offset_fraction_and_a_mangled_plus() {
        for s in [
            "2025-01-31T12:00:00Z",
            "2025-01-31T12:00:00.123Z",
            "2025-01-31T12:00:00+00:00",
            "2025-01-31T12:00:00 00:00",
        ] {
            assert!(timestamp(s).is_some(), "{s}");
        }
        assert!(timestamp("yesterday").is_none());
    }

    #[test]
    fn instances_range() {
        assert_eq!(instances(&obj(json!({"instances": 3}))).unwrap(), 3);
        for bad in [
            json!({}),
            json!({"instances": 0}),
            json!({"instances": 11}),
            json!({"instances": "3"}),
            json!({"instances": 2.5}),
        ] {
            assert!(instances(&obj(bad)).is_err());
        }
    }
}
