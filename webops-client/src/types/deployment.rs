//! A deployment as the API shows it: list row, detail, health, env vars; and how a caller
//! names one ([`DeploymentRef`]).

use super::*;
use crate::decode::REDACTED;

/// The user who deployed something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UserRef {
    /// User id.
    pub id: i64,
    /// User name.
    pub username: String,
}

/// Detailed health checks, present on [`DeploymentDetail`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HealthChecks {
    /// The app answers HTTP.
    pub http_response: bool,
    /// The app reaches its database.
    pub database_connection: bool,
    /// Enough disk space.
    pub disk_space: bool,
}

impl HealthChecks {
    /// Names of the checks that failed, in declaration order.
    pub fn failed(&self) -> Vec<&'static str> {
        [
            ("http_response", self.http_response),
            ("database_connection", self.database_connection),
            ("disk_space", self.disk_space),
        ]
        .into_iter()
        .filter(|(_, ok)| !ok)
        .map(|(name, _)| name)
        .collect()
    }
}

/// Health of one deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeploymentHealth {
    /// Whether the last check passed.
    pub is_healthy: bool,
    /// Seconds since the app last started.
    #[serde(default)]
    pub uptime_seconds: i64,
    /// When the last check ran.
    #[serde(default, deserialize_with = "crate::types::time::deserialize_opt")]
    pub last_check: Option<Timestamp>,
    /// The individual checks (detail view only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<HealthChecks>,
}

/// A deployment as listed by `GET deployments/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Deployment {
    /// Numeric id, used in paths.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Lifecycle state.
    pub status: DeploymentStatus,
    /// Environment (defaults to production when the server omits it).
    #[serde(default)]
    pub environment: Environment,
    /// `django`, `python`, `nodejs`, `static`, `docker`, ...
    #[serde(default)]
    pub project_type: String,
    /// Git repository URL.
    pub repo_url: String,
    /// Git branch.
    pub branch: String,
    /// Custom domain.
    #[serde(default)]
    pub domain: Option<String>,
    /// Public URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Internal port.
    #[serde(default)]
    pub port: Option<i64>,
    /// Whether TLS is enabled.
    #[serde(default)]
    pub ssl_enabled: bool,
    /// Python version, e.g. `"3.11"`.
    #[serde(default)]
    pub python_version: Option<String>,
    /// Attached database engine.
    #[serde(default)]
    pub database_type: Option<DatabaseType>,
    /// Memory limit, e.g. `"512M"`.
    #[serde(default)]
    pub memory_limit: Option<String>,
    /// Number of instances (1..10).
    #[serde(default = "one")]
    pub instances: u32,
    /// Creation time.
    #[serde(deserialize_with = "crate::types::time::deserialize")]
    pub created_at: Timestamp,
    /// Last change.
    #[serde(deserialize_with = "crate::types::time::deserialize")]
    pub updated_at: Timestamp,
    /// Who deployed it.
    pub deployed_by: UserRef,
    /// Health summary.
    pub health: DeploymentHealth,
}

fn one() -> u32 {
    1
}

/// Environment variables of a deployment. Values are secrets: `Debug` shows only the names.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EnvVars(pub BTreeMap<String, String>);

impl EnvVars {
    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Iterates over `(name, value)` pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for EnvVars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, REDACTED)))
            .finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EnvVars {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        EnvVars(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// Runtime metrics of one deployment (detail view).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeploymentMetrics {
    /// CPU usage, percent.
    #[serde(default)]
    pub cpu_usage: f64,
    /// Memory usage, percent.
    #[serde(default)]
    pub memory_usage: f64,
    /// Requests in the last 24 hours.
    #[serde(default)]
    pub request_count_24h: i64,
    /// Share of requests that failed, 0.0..=1.0.
    #[serde(default)]
    pub error_rate: f64,
}

/// `GET deployments/{id}/`: a deployment with its env vars and metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeploymentDetail {
    /// The fields shared with [`Deployment`].
    #[serde(flatten)]
    pub deployment: Deployment,
    /// Environment variables (secret values).
    #[serde(default)]
    pub env_vars: EnvVars,
    /// Runtime metrics.
    #[serde(default)]
    pub metrics: DeploymentMetrics,
}

impl std::ops::Deref for DeploymentDetail {
    type Target = Deployment;
    fn deref(&self) -> &Deployment {
        &self.deployment
    }
}

/// The rule every deployment name follows, as a regular expression: lowercase letters,
/// digits and hyphens, 1 to 63 characters, starting with a letter. [`is_deployment_name`]
/// checks it without a regex engine.
pub const DEPLOYMENT_NAME_PATTERN: &str = "^[a-z][a-z0-9-]{0,62}$";

/// The rule of a reference given as a string, as a regular expression: an id's digits (no
/// sign, leading zero or space) or a name following [`DEPLOYMENT_NAME_PATTERN`].
pub const DEPLOYMENT_REF_PATTERN: &str = "^([1-9][0-9]*|[a-z][a-z0-9-]{0,62})$";

/// The words of [`DEPLOYMENT_NAME_RULE`], as a literal both rules are made of.
macro_rules! name_rule {
    () => {
        "lowercase letters, digits and hyphens, 1 to 63 characters, starting with a letter"
    };
}

/// The deployment name rule in words, for messages that say what is allowed.
pub const DEPLOYMENT_NAME_RULE: &str = name_rule!();

/// The reference rule in words ([`DEPLOYMENT_REF_PATTERN`] and the id's minimum), for
/// messages that say what is allowed.
pub const DEPLOYMENT_REF_RULE: &str = concat!(
    "a numeric id (an integer of at least 1, or its digits as a string with no sign, leading ",
    "zero or space) or an exact deployment name (",
    name_rule!(),
    ")"
);

/// Whether `name` follows [`DEPLOYMENT_NAME_PATTERN`].
pub fn is_deployment_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    matches!(bytes.first(), Some(b'a'..=b'z'))
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
}

/// A deployment named by numeric id or by name.
///
/// From a string, [`str::parse`] is the strict reading: a positive id written as digits with
/// no sign, leading zero or space, or else an exact name following
/// [`DEPLOYMENT_NAME_PATTERN`]; anything else is an [`InvalidDeploymentRef`]. Nothing is
/// trimmed or guessed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeploymentRef {
    /// The numeric id.
    Id(i64),
    /// The unique name.
    Name(String),
}

impl fmt::Display for DeploymentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeploymentRef::Id(id) => write!(f, "{id}"),
            DeploymentRef::Name(name) => f.write_str(name),
        }
    }
}

impl From<i64> for DeploymentRef {
    fn from(id: i64) -> Self {
        DeploymentRef::Id(id)
    }
}

/// The lenient, infallible reading, exact as well: a positive id's canonical digits are an
/// id, every other string is a name as given (never trimmed), which finds nothing unless a
/// deployment has exactly that name. Use [`str::parse`] to refuse what is neither.
impl From<&str> for DeploymentRef {
    fn from(s: &str) -> Self {
        match canonical_id(s) {
            Some(Ok(id)) => DeploymentRef::Id(id),
            _ => DeploymentRef::Name(s.to_owned()),
        }
    }
}

impl From<String> for DeploymentRef {
    fn from(s: String) -> Self {
        match canonical_id(&s) {
            Some(Ok(id)) => DeploymentRef::Id(id),
            _ => DeploymentRef::Name(s),
        }
    }
}

impl FromStr for DeploymentRef {
    type Err = InvalidDeploymentRef;

    fn from_str(s: &str) -> Result<Self, InvalidDeploymentRef> {
        match canonical_id(s) {
            Some(Ok(id)) => Ok(DeploymentRef::Id(id)),
            Some(Err(())) => Err(InvalidDeploymentRef::new(s, "it is too large for an id")),
            None if is_deployment_name(s) => Ok(DeploymentRef::Name(s.to_owned())),
            None => Err(InvalidDeploymentRef::new(s, why_not(s))),
        }
    }
}

/// `Some(Ok(id))` for the digits of a positive id (no sign, leading zero or space),
/// `Some(Err(()))` for such digits beyond `i64`, `None` for anything else.
fn canonical_id(s: &str) -> Option<Result<i64, ()>> {
    let bytes = s.as_bytes();
    let canonical =
        matches!(bytes.first(), Some(b'1'..=b'9')) && bytes.iter().all(u8::is_ascii_digit);
    canonical.then(|| s.parse::<i64>().map_err(|_| ()))
}

/// Why `s` is neither an id nor a name.
fn why_not(s: &str) -> &'static str {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if s.is_empty() {
        "it is empty"
    } else if s.trim() != s || s.chars().any(char::is_whitespace) {
        "it contains spaces"
    } else if s.starts_with(['-', '+']) && digits(&s[1..]) {
        "an id has no sign"
    } else if digits(s) && s.bytes().all(|b| b == b'0') {
        "ids start at 1"
    } else if digits(s) {
        "an id has no leading zero"
    } else if s.chars().any(|c| c.is_ascii_uppercase()) {
        "names have no capital letters"
    } else if s.chars().count() > 63 {
        "names are at most 63 characters"
    } else {
        "it is not a name"
    }
}

/// A string that is neither a deployment id nor a deployment name; its message says what was
/// wrong and what is allowed, and shows at most the first 40 characters of the string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{shown} is not a deployment reference ({why}): give {DEPLOYMENT_REF_RULE}")]
#[non_exhaustive]
pub struct InvalidDeploymentRef {
    shown: String,
    why: &'static str,
}

impl InvalidDeploymentRef {
    fn new(s: &str, why: &'static str) -> Self {
        let mut shown: String = s.chars().take(40).collect();
        if shown.len() < s.len() {
            shown.push('…');
        }
        InvalidDeploymentRef {
            shown: format!("{shown:?}"),
            why,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_ref_reads_canonical_digits_as_id_and_never_trims() {
        assert_eq!(DeploymentRef::from("42"), DeploymentRef::Id(42));
        assert_eq!(
            DeploymentRef::from(" 7 "),
            DeploymentRef::Name(" 7 ".into())
        );
        assert_eq!(
            DeploymentRef::from("007"),
            DeploymentRef::Name("007".into())
        );
        assert_eq!(
            DeploymentRef::from("shop-api".to_owned()),
            DeploymentRef::Name("shop-api".into())
        );
        assert_eq!(DeploymentRef::from("-1"), DeploymentRef::Name("-1".into()));
    }

    #[test]
    fn deployment_ref_parse_takes_ids_and_names_and_refuses_the_rest() {
        assert_eq!("42".parse(), Ok(DeploymentRef::Id(42)));
        assert_eq!(
            "9223372036854775807".parse(),
            Ok(DeploymentRef::Id(i64::MAX))
        );
        assert_eq!(
            "shop-api".parse(),
            Ok(DeploymentRef::Name("shop-api".into()))
        );
        assert_eq!("a".parse(), Ok(DeploymentRef::Name("a".into())));
        let longest = format!("a{}", "b".repeat(62));
        assert_eq!(longest.parse(), Ok(DeploymentRef::Name(longest.clone())));
        for (bad, why) in [
            ("-1", "an id has no sign"),
            ("+5", "an id has no sign"),
            ("0", "ids start at 1"),
            ("000", "ids start at 1"),
            ("00101", "an id has no leading zero"),
            (" 00101", "it contains spaces"),
            (" shop", "it contains spaces"),
            ("shop ", "it contains spaces"),
            ("", "it is empty"),
            ("Shop", "names have no capital letters"),
            ("9223372036854775808", "too large"),
            ("1-shop", "it is not a name"),
            ("shop_api", "it is not a name"),
            ("sh\u{0}op", "it is not a name"),
            ("é", "it is not a name"),
        ] {
            let err = bad.parse::<DeploymentRef>().unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
            assert!(err.contains("give a numeric id"), "{err}");
            assert!(err.contains("starting with a letter"), "{err}");
        }
        let long = format!("a{}", "b".repeat(63));
        let err = long.parse::<DeploymentRef>().unwrap_err().to_string();
        assert!(err.contains("at most 63"), "{err}");
        assert!(err.contains('…') && !err.contains(&long), "{err}");
    }

    #[test]
    fn the_name_rule_matches_its_pattern() {
        for good in ["a", "shop-api", "a1", "z-", "game-2048"] {
            assert!(is_deployment_name(good), "{good}");
        }
        for bad in ["", "1a", "-a", "Shop", "a_b", "a.b", " a", "é"] {
            assert!(!is_deployment_name(bad), "{bad}");
        }
        assert!(is_deployment_name(&"a".repeat(63)));
        assert!(!is_deployment_name(&"a".repeat(64)));
    }

    #[test]
    fn env_vars_debug_hides_values() {
        let vars: EnvVars = [("SECRET_KEY", "hunter2")].into_iter().collect();
        let shown = format!("{vars:?}");
        assert!(shown.contains("SECRET_KEY"));
        assert!(!shown.contains("hunter2"));
    }
}
