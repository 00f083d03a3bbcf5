//! The one writer of the Prometheus text exposition format (version 0.0.4) in the workspace:
//! `# HELP` and `# TYPE` lines of a metric family and its sample lines, label values escaped.
//! Core's [`crate::Metrics`] and the server's HTTP and process metrics both write through it.

use std::fmt::{Display, Write as _};

/// The `# TYPE` of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A value that only goes up.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Buckets, sum and count of observations.
    Histogram,
}

impl MetricKind {
    fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// Appends metric families to a `String` in the Prometheus text format.
#[derive(Debug)]
pub struct PrometheusWriter<'a> {
    out: &'a mut String,
}

impl<'a> PrometheusWriter<'a> {
    /// A writer appending to `out`.
    pub fn new(out: &'a mut String) -> Self {
        PrometheusWriter { out }
    }

    /// The `# HELP` and `# TYPE` lines that open the family `name`.
    pub fn family(&mut self, name: &str, kind: MetricKind, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    /// One sample line, `name{label="value",...} value` (no braces without labels); label
    /// values are escaped.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, label_value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{label}=\"{}\"", escape(label_value));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// A family of one unlabelled sample: its `# HELP`, `# TYPE` and value.
    pub fn single(&mut self, name: &str, kind: MetricKind, help: &str, value: impl Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// Escapes a label value: backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn families_and_samples() {
        let mut out = String::new();
        let mut w = PrometheusWriter::new(&mut out);
        w.family("x_total", MetricKind::Counter, "Xs.");
        w.sample("x_total", &[("a", "1"), ("b", "q\"")], 3);
        w.single("up", MetricKind::Gauge, "Up.", 1.5);
        assert_eq!(
            out,
            "# HELP x_total Xs.\n# TYPE x_total counter\nx_total{a=\"1\",b=\"q\\\"\"} 3\n\
             # HELP up Up.\n# TYPE up gauge\nup 1.5\n"
        );
    }
}
