//! `[telemetry]`: OpenTelemetry export of traces (and, if asked, of audit records) over
//! OTLP/HTTP; off unless an endpoint is set, in the file or in the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT`.

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::env;

/// The default `[telemetry] service_name`.
pub(crate) const DEFAULT_SERVICE_NAME: &str = "webops-mcp";

/// The longest `[telemetry] service_name`.
const MAX_SERVICE_NAME: usize = 255;

/// `[telemetry]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TelemetrySettings {
    /// The base URL of an OTLP/HTTP receiver (an OpenTelemetry Collector, an agent, a
    /// vendor's endpoint), e.g. `http://otel-collector:4318`; traces go to `/v1/traces` below
    /// it, audit records to `/v1/logs`. `None`: nothing is exported, nothing is traced.
    pub otlp_endpoint: Option<Url>,
    /// `service.name` of everything exported.
    pub service_name: String,
    /// Also export every audit record as an OpenTelemetry log record (the local audit log
    /// stays the source of truth).
    pub export_audit: bool,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            otlp_endpoint: None,
            service_name: DEFAULT_SERVICE_NAME.to_owned(),
            export_audit: false,
        }
    }
}

impl TelemetrySettings {
    /// Whether anything is exported.
    pub fn enabled(&self) -> bool {
        self.otlp_endpoint.is_some()
    }

    /// The URL of one signal below the endpoint: `signal` is `traces` or `logs`.
    pub(crate) fn signal_url(&self, signal: &str) -> Option<String> {
        let base = self.otlp_endpoint.as_ref()?;
        Some(format!(
            "{}/v1/{signal}",
            base.as_str().trim_end_matches('/')
        ))
    }
}

/// `[telemetry]` as the file holds it.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TelemetryFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) otlp_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) service_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) export_audit: Option<bool>,
}

impl TelemetryFile {
    /// The effective settings in the file's shape.
    pub(super) fn view(telemetry: &TelemetrySettings) -> TelemetryFile {
        TelemetryFile {
            otlp_endpoint: telemetry.otlp_endpoint.as_ref().map(ToString::to_string),
            service_name: Some(telemetry.service_name.clone()),
            export_audit: Some(telemetry.export_audit),
        }
    }
}

/// `[telemetry]` from the file and the environment (`OTEL_EXPORTER_OTLP_ENDPOINT` and
/// `OTEL_SERVICE_NAME` beat the file; empty counts as unset).
pub(super) fn merge_telemetry(
    file: TelemetryFile,
    endpoint_env: Option<&str>,
    service_env: Option<&str>,
    errors: &mut Vec<String>,
) -> TelemetrySettings {
    let mut telemetry = TelemetrySettings::default();
    let (endpoint, origin) = match (set(endpoint_env), set(file.otlp_endpoint.as_deref())) {
        (Some(value), _) => (Some(value), env::OTLP_ENDPOINT),
        (None, Some(value)) => (Some(value), "[telemetry] otlp_endpoint"),
        (None, None) => (None, ""),
    };
    if let Some(endpoint) = endpoint {
        match endpoint_url(endpoint) {
            Ok(url) => telemetry.otlp_endpoint = Some(url),
            Err(why) => errors.push(format!(
                "{origin}: {why}; write the base URL of an OTLP/HTTP receiver, e.g. \
                 \"http://otel-collector:4318\" (traces go to /v1/traces below it)"
            )),
        }
    }
    let (service, origin) = match (set(service_env), set(file.service_name.as_deref())) {
        (Some(value), _) => (Some(value), env::SERVICE_NAME),
        (None, Some(value)) => (Some(value), "[telemetry] service_name"),
        (None, None) => (None, ""),
    };
    if let Some(service) = service {
        if service.len() <= MAX_SERVICE_NAME && !service.chars().any(char::is_control) {
            service.clone_into(&mut telemetry.service_name);
        } else {
            errors.push(format!(
                "{origin}: the service name must be at most {MAX_SERVICE_NAME} bytes without \
                 control characters"
            ));
        }
    }
    telemetry.export_audit = file.export_audit.unwrap_or(false);
    telemetry
}

/// A value that is set: trimmed, empty counts as unset.
fn set(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// An `http://` or `https://` URL naming a host, without credentials, query or fragment.
fn endpoint_url(text: &str) -> Result<Url, String> {
    // A value with a user part is not echoed: it may hold a password.
    let shown = if text.contains('@') {
        "the value (not shown)".to_owned()
    } else {
        format!("{text:?}")
    };
    let url = Url::parse(text).map_err(|e| format!("{shown} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "{shown} must start with http:// or https:// and name a host"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: the user part may hold a secret.
        return Err(
            "the URL must not contain a user name or password (send credentials as headers: \
             OTEL_EXPORTER_OTLP_HEADERS)"
                .to_owned(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{shown} must not have a query or fragment"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge(file: TelemetryFile, endpoint: Option<&str>) -> (TelemetrySettings, Vec<String>) {
        let mut errors = Vec::new();
        let telemetry = merge_telemetry(file, endpoint, None, &mut errors);
        (telemetry, errors)
    }

    #[test]
    fn off_by_default_and_the_environment_beats_the_file() {
        let (telemetry, errors) = merge(TelemetryFile::default(), None);
        assert!(errors.is_empty());
        assert_eq!(telemetry, TelemetrySettings::default());
        assert!(!telemetry.enabled());
        assert_eq!(telemetry.signal_url("traces"), None);

        let file = || TelemetryFile {
            otlp_endpoint: Some("http://file:4318".into()),
            ..TelemetryFile::default()
        };
        let (telemetry, _) = merge(file(), Some(" http://env:4318/ "));
        assert_eq!(
            telemetry.signal_url("traces").as_deref(),
            Some("http://env:4318/v1/traces")
        );
        let (telemetry, _) = merge(file(), Some(""));
        assert_eq!(
            telemetry.signal_url("logs").as_deref(),
            Some("http://file:4318/v1/logs")
        );
        let mut errors = Vec::new();
        let named = TelemetryFile {
            service_name: Some("file-name".into()),
            ..TelemetryFile::default()
        };
        let telemetry = merge_telemetry(named, None, Some("from-env"), &mut errors);
        assert_eq!(telemetry.service_name, "from-env");
        assert!(errors.is_empty());
    }

    #[test]
    fn a_path_below_the_endpoint_is_kept() {
        let file = TelemetryFile {
            otlp_endpoint: Some("https://otlp.example.com/otlp".into()),
            ..TelemetryFile::default()
        };
        let (telemetry, errors) = merge(file, None);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            telemetry.signal_url("traces").as_deref(),
            Some("https://otlp.example.com/otlp/v1/traces")
        );
    }

    #[test]
    fn bad_endpoints_and_names_are_errors_that_show_no_credentials() {
        for bad in [
            "otel-collector:4318",
            "ftp://collector",
            "http://user:s3cret@collector:4318",
            "collector:s3cret@host",
            "http://collector:4318/?key=1",
            "not a url",
        ] {
            let (_, errors) = merge(TelemetryFile::default(), Some(bad));
            assert_eq!(errors.len(), 1, "{bad}");
            assert!(errors[0].starts_with(env::OTLP_ENDPOINT), "{}", errors[0]);
            assert!(!errors[0].contains("s3cret"), "{}", errors[0]);
        }
        let mut errors = Vec::new();
        let file = TelemetryFile {
            service_name: Some("bad\nname".into()),
            ..TelemetryFile::default()
        };
        merge_telemetry(file, None, None, &mut errors);
        assert!(
            errors[0].starts_with("[telemetry] service_name"),
            "{errors:?}"
        );
    }
}
