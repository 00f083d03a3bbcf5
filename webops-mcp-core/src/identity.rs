//! Who is calling: [`Permission`], [`PermissionSet`] and [`Identity`].

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One permission of the design brief. `admin:*` grants all; `deploy:*` grants every
/// `deploy:` permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Permission {
    /// `deploy:read`: view deployments.
    DeployRead,
    /// `deploy:create`: create deployments.
    DeployCreate,
    /// `deploy:manage`: start, stop, restart, scale.
    DeployManage,
    /// `deploy:delete`: delete deployments.
    DeployDelete,
    /// `system:read`: platform health and metrics.
    SystemRead,
    /// `security:audit`: run security audits.
    SecurityAudit,
    /// `logs:read`: read deployment logs.
    LogsRead,
}

impl Permission {
    /// Every concrete permission.
    pub const ALL: &'static [Permission] = &[
        Permission::DeployRead,
        Permission::DeployCreate,
        Permission::DeployManage,
        Permission::DeployDelete,
        Permission::SystemRead,
        Permission::SecurityAudit,
        Permission::LogsRead,
    ];

    /// The permission's string, e.g. `deploy:read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::DeployRead => "deploy:read",
            Permission::DeployCreate => "deploy:create",
            Permission::DeployManage => "deploy:manage",
            Permission::DeployDelete => "deploy:delete",
            Permission::SystemRead => "system:read",
            Permission::SecurityAudit => "security:audit",
            Permission::LogsRead => "logs:read",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A permission string that is not one of the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown permission '{0}'; allowed: deploy:read, deploy:create, deploy:manage, \
     deploy:delete, deploy:*, system:read, security:audit, logs:read, admin:*"
)]
pub struct UnknownPermission(pub String);

/// A set of permissions, parsed from strings with wildcards expanded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionSet(BTreeSet<Permission>);

impl PermissionSet {
    /// No permissions.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Every permission (`admin:*`).
    pub fn all() -> Self {
        Permission::ALL.iter().copied().collect()
    }

    /// Parses permission strings (`deploy:read`, `deploy:*`, `admin:*`, ...); an unknown
    /// string is an error naming it. Space-separated strings (an OAuth `scope`) are split.
    pub fn parse<I, S>(strings: I) -> Result<Self, UnknownPermission>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = BTreeSet::new();
        for s in strings {
            for word in s.as_ref().split_whitespace() {
                match word {
                    "admin:*" => set.extend(Permission::ALL.iter().copied()),
                    "deploy:*" => set.extend([
                        Permission::DeployRead,
                        Permission::DeployCreate,
                        Permission::DeployManage,
                        Permission::DeployDelete,
                    ]),
                    other => {
                        let p = Permission::ALL
                            .iter()
                            .copied()
                            .find(|p| p.as_str() == other)
                            .ok_or_else(|| UnknownPermission(other.to_owned()))?;
                        set.insert(p);
                    }
                }
            }
        }
        Ok(PermissionSet(set))
    }

    /// Whether `permission` is held.
    pub fn contains(&self, permission: Permission) -> bool {
        self.0.contains(&permission)
    }

    /// Whether every one of `required` is held.
    pub fn contains_all(&self, required: &[Permission]) -> bool {
        required.iter().all(|p| self.0.contains(p))
    }

    /// The permissions of `required` that are not held.
    pub fn missing(&self, required: &[Permission]) -> Vec<Permission> {
        required
            .iter()
            .copied()
            .filter(|p| !self.0.contains(p))
            .collect()
    }

    /// Iterates in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = Permission> + '_ {
        self.0.iter().copied()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        PermissionSet(iter.into_iter().collect())
    }
}

impl FromStr for PermissionSet {
    type Err = UnknownPermission;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PermissionSet::parse([s])
    }
}

impl Serialize for PermissionSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|p| p.as_str()))
    }
}

impl<'de> Deserialize<'de> for PermissionSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let strings = Vec::<String>::deserialize(deserializer)?;
        PermissionSet::parse(strings).map_err(serde::de::Error::custom)
    }
}

/// How a caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthMethod {
    /// The stdio transport: the identity comes from configuration.
    Stdio,
    /// An API key (`Authorization: Bearer` or `X-API-Key`).
    ApiKey,
    /// A JWT bearer token.
    Jwt,
    /// HTTP Basic.
    Basic,
    /// The explicit anonymous identity (loopback only; for the conformance suite).
    Anonymous,
    /// An embedding application set the identity itself.
    Embedded,
}

impl AuthMethod {
    /// A stable snake_case name, for audit records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Stdio => "stdio",
            AuthMethod::ApiKey => "api_key",
            AuthMethod::Jwt => "jwt",
            AuthMethod::Basic => "basic",
            AuthMethod::Anonymous => "anonymous",
            AuthMethod::Embedded => "embedded",
        }
    }
}

/// An authenticated caller: who, how, and what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Identity {
    /// Stable user id (API key owner, JWT `sub`, basic username, ...).
    pub user_id: String,
    /// How they authenticated.
    pub auth_method: AuthMethod,
    /// What they may do.
    pub permissions: PermissionSet,
}

impl Identity {
    /// A new identity.
    pub fn new(
        user_id: impl Into<String>,
        auth_method: AuthMethod,
        permissions: PermissionSet,
    ) -> Self {
        Identity {
            user_id: user_id.into(),
            auth_method,
            permissions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_expand() {
        let all = PermissionSet::parse(["admin:*"]).unwrap();
        assert_eq!(all, PermissionSet::all());
        let deploy = PermissionSet::parse(["deploy:*"]).unwrap();
        assert!(deploy.contains(Permission::DeployDelete));
        assert!(!deploy.contains(Permission::LogsRead));
    }

    #[test]
    fn scope_strings_split_and_unknown_is_error() {
        let set = PermissionSet::parse(["deploy:read logs:read"]).unwrap();
        assert!(set.contains_all(&[Permission::DeployRead, Permission::LogsRead]));
        let err = PermissionSet::parse(["deploy:reed"]).unwrap_err();
        assert!(err.to_string().contains("deploy:reed"));
        assert!(err.to_string().contains("allowed"));
    }
}
