//! Logs of a deployment: the query of `GET deployments/{id}/logs/` and its answer.

use super::*;

/// Query of `GET deployments/{id}/logs/`.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct LogQuery {
    /// Which stream (server default application).
    pub log_type: Option<LogType>,
    /// How many of the newest lines, 1..=1000 (server default 100).
    pub lines: Option<u32>,
    /// Only this level.
    pub level: Option<LogLevel>,
    /// Only lines at or after this time.
    pub since: Option<Timestamp>,
}

impl LogQuery {
    /// The server's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Which stream.
    pub fn log_type(mut self, log_type: LogType) -> Self {
        self.log_type = Some(log_type);
        self
    }
    /// How many lines.
    pub fn lines(mut self, lines: u32) -> Self {
        self.lines = Some(lines);
        self
    }
    /// Only this level.
    pub fn level(mut self, level: LogLevel) -> Self {
        self.level = Some(level);
        self
    }
    /// Only lines since.
    pub fn since(mut self, since: Timestamp) -> Self {
        self.since = Some(since);
        self
    }
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LogEntry {
    /// When.
    #[serde(deserialize_with = "crate::types::time::deserialize")]
    pub timestamp: Timestamp,
    /// Severity.
    pub level: LogLevel,
    /// The text (untrusted: written by the app).
    pub message: String,
    /// Which component wrote it.
    #[serde(default)]
    pub source: String,
}

/// Answer of `GET deployments/{id}/logs/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Logs {
    /// The lines, oldest first.
    pub logs: Vec<LogEntry>,
    /// Lines in the stream in all.
    #[serde(default)]
    pub total_lines: u64,
    /// Whether the stream is still being written.
    #[serde(default)]
    pub is_live: bool,
}
