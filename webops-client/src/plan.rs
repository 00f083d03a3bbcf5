//! Describing a change without making it: [`Change`] names one, [`WebOpsApi::describe`]
//! answers the [`PlannedRequest`] the client would send for it (method, path, body with
//! secret values masked). Dry runs and confirmations show it.
//!
//! [`WebOpsApi::describe`]: crate::WebOpsApi::describe

use serde::Serialize;
use serde_json::{Value, json};

use crate::decode::REDACTED;
use crate::types::NewDeployment;

/// A change a caller may make to the platform.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Change<'a> {
    /// Create a deployment.
    Create(&'a NewDeployment),
    /// Start, stop or restart deployment `id`, named `name`.
    Action {
        /// The deployment's id.
        id: i64,
        /// Its name (the control panel addresses deployments by name).
        name: &'a str,
        /// `start`, `stop` or `restart`.
        verb: &'static str,
    },
    /// Set the instances of deployment `id`.
    Scale {
        /// The deployment's id.
        id: i64,
        /// Its name.
        name: &'a str,
        /// The new number of instances.
        instances: u32,
    },
    /// Delete deployment `id`.
    Delete {
        /// The deployment's id.
        id: i64,
        /// Its name.
        name: &'a str,
    },
}

/// One request as the client would send it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct PlannedRequest {
    /// HTTP method.
    pub method: &'static str,
    /// Path under the WebOps base URL.
    pub path: String,
    /// JSON body, environment variable values masked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

impl PlannedRequest {
    /// A request without a body.
    pub fn new(method: &'static str, path: impl Into<String>) -> Self {
        PlannedRequest {
            method,
            path: path.into(),
            body: None,
        }
    }

    /// With a JSON body; the values of an `env_vars` object are masked.
    pub fn with_body(mut self, mut body: Value) -> Self {
        if let Some(Value::Object(vars)) = body.get_mut("env_vars") {
            for value in vars.values_mut() {
                *value = Value::from(REDACTED);
            }
        }
        self.body = Some(body);
        self
    }
}

/// The request the REST API v1 client sends for `change` (paths under `api/<version>/`).
pub(crate) fn v1_request(change: &Change<'_>) -> PlannedRequest {
    match *change {
        Change::Create(new) => PlannedRequest::new("POST", "deployments/")
            .with_body(serde_json::to_value(new).unwrap_or(Value::Null)),
        Change::Action { id, verb, .. } => {
            PlannedRequest::new("POST", format!("deployments/{id}/{verb}/"))
        }
        Change::Scale { id, instances, .. } => {
            PlannedRequest::new("POST", format!("deployments/{id}/scale/"))
                .with_body(json!({ "instances": instances }))
        }
        Change::Delete { id, .. } => PlannedRequest::new("DELETE", format!("deployments/{id}/")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::types::EnvVars;

    #[test]
    fn env_values_are_masked_and_v1_paths_use_ids() {
        let mut new = NewDeployment::new("shop", "https://example.com/shop.git");
        new.env_vars = Some(EnvVars(BTreeMap::from([(
            "API_KEY".to_owned(),
            "sk-live-secret".to_owned(),
        )])));
        let planned = v1_request(&Change::Create(&new));
        assert_eq!(planned.method, "POST");
        assert_eq!(planned.path, "deployments/");
        let body = planned.body.unwrap();
        assert_eq!(body["env_vars"]["API_KEY"], REDACTED);
        assert_eq!(body["name"], "shop");
        let stop = v1_request(&Change::Action {
            id: 7,
            name: "shop",
            verb: "stop",
        });
        assert_eq!(stop.path, "deployments/7/stop/");
        assert!(stop.body.is_none());
    }
}
