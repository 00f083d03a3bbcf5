//! `[resources]`: resource change notifications. A subscribed resource is read again every
//! `poll_interval_secs` and its subscriber told when it changed; `0` (the default) turns them
//! off, and the server then does not offer `subscribe`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use webops_mcp_core::ResourceConfig;

/// The longest `[resources] poll_interval_secs`: an hour.
const MAX_POLL_INTERVAL_SECS: u64 = 3600;

/// The most `[resources] max_subscriptions` allows.
const MAX_SUBSCRIPTIONS: usize = 1000;

/// `[resources]` as the file holds it.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResourcesFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) poll_interval_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) max_subscriptions: Option<usize>,
}

impl ResourcesFile {
    /// The effective settings in the file's shape.
    pub(super) fn view(resources: &ResourceConfig) -> ResourcesFile {
        ResourcesFile {
            poll_interval_secs: Some(resources.poll_interval.as_secs()),
            max_subscriptions: Some(resources.max_subscriptions),
        }
    }
}

/// `[resources]` from the file; a value out of range is an error naming the key and its range.
pub(super) fn merge_resources(file: ResourcesFile, errors: &mut Vec<String>) -> ResourceConfig {
    let mut resources = ResourceConfig::default();
    if let Some(secs) = file.poll_interval_secs {
        if secs <= MAX_POLL_INTERVAL_SECS {
            resources = resources.poll_interval(Duration::from_secs(secs));
        } else {
            errors.push(format!(
                "[resources] poll_interval_secs must be between 0 (no change notifications) and \
                 {MAX_POLL_INTERVAL_SECS}, not {secs}"
            ));
        }
    }
    if let Some(max) = file.max_subscriptions {
        if (1..=MAX_SUBSCRIPTIONS).contains(&max) {
            resources = resources.max_subscriptions(max);
        } else {
            errors.push(format!(
                "[resources] max_subscriptions must be between 1 and {MAX_SUBSCRIPTIONS}, not {max}"
            ));
        }
    }
    resources
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_checked_by_range() {
        let mut errors = Vec::new();
        let off = merge_resources(ResourcesFile::default(), &mut errors);
        assert!(!off.notifications() && errors.is_empty());
        let on = merge_resources(
            ResourcesFile {
                poll_interval_secs: Some(30),
                max_subscriptions: Some(4),
            },
            &mut errors,
        );
        assert_eq!(on.poll_interval, Duration::from_secs(30));
        assert_eq!(on.max_subscriptions, 4);
        assert!(errors.is_empty());
        merge_resources(
            ResourcesFile {
                poll_interval_secs: Some(3601),
                max_subscriptions: Some(0),
            },
            &mut errors,
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].contains("poll_interval_secs") && errors[1].contains("max_subscriptions")
        );
    }
}
