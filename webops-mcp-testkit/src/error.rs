//! The API's error answer: an HTTP status and the contract's error envelope.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::fault::code_for;

/// Field name → messages, the `details` of a validation error.
pub(crate) type Details = BTreeMap<String, Vec<String>>;

/// An error answer of the mock API.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    pub(crate) details: Option<Details>,
    pub(crate) retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status` (its code follows from the status) and `message`.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// 400 `VALIDATION_ERROR` with per-field `details`.
    pub(crate) fn validation(details: Details) -> ApiError {
        let fields: Vec<&str> = details.keys().map(String::as_str).collect();
        ApiError {
            details: Some(details.clone()),
            ..ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("Invalid input: {}", fields.join(", ")),
            )
        }
    }

    /// 400 `VALIDATION_ERROR` for a single field.
    pub(crate) fn field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::validation(BTreeMap::from([(field.to_owned(), vec![message.into()])]))
    }

    /// 404 `RESOURCE_NOT_FOUND`.
    pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 409 `CONFLICT`.
    pub(crate) fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    /// 429 `RATE_LIMIT_EXCEEDED` with `Retry-After`.
    pub(crate) fn rate_limited(retry_after: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Request was throttled. Expected available in {retry_after} seconds."),
            )
        }
    }

    /// The contract's error code.
    pub(crate) fn code(&self) -> &'static str {
        code_for(self.status)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code(), "message": self.message});
        if let (Some(details), Some(object)) = (&self.details, error.as_object_mut()) {
            object.insert("details".to_owned(), json!(details));
        }
        let mut response =
            (self.status, Json(json!({"success": false, "error": error}))).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"webops\""),
            );
        }
        response
    }
}

/// Collects validation problems field by field.
#[derive(Debug, Default)]
pub(crate) struct Problems(Details);

impl Problems {
    /// Notes a problem with `field`.
    pub(crate) fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }

    /// `Ok(value)` when nothing was noted, else the validation error.
    pub(crate) fn finish<T>(self, value: T) -> Result<T, ApiError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ApiError::validation(self.0))
        }
    }
}
