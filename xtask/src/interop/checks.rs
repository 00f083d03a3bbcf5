//! [`Checks`]: named checks whose failures are collected and reported together.

use anyhow::{Result, bail};

/// Named checks: each one runs, failures are collected and reported together.
#[derive(Default)]
pub(crate) struct Checks {
    passed: usize,
    failed: Vec<String>,
}

impl Checks {
    pub(crate) fn run(&mut self, name: &str, check: impl FnOnce() -> Result<()>) {
        match check() {
            Ok(()) => {
                self.passed += 1;
                eprintln!("  ok    {name}");
            }
            Err(e) => {
                eprintln!("  FAIL  {name}: {e:#}");
                self.failed.push(format!("{name}: {e:#}"));
            }
        }
    }

    /// Counts checks that ran elsewhere (and printed their own lines): `passed` of them passed,
    /// each of `failed` (named, with why) failed.
    pub(crate) fn absorb(&mut self, passed: usize, failed: Vec<String>) {
        self.passed += passed;
        self.failed.extend(failed);
    }

    /// How many checks passed and failed so far.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.passed, self.failed.len())
    }

    pub(crate) fn finish(self, what: &str) -> Result<()> {
        if self.failed.is_empty() {
            eprintln!("{what}: all {} checks passed", self.passed);
            return Ok(());
        }
        bail!(
            "{what}: {} of {} checks failed:\n  {}",
            self.failed.len(),
            self.passed + self.failed.len(),
            self.failed.join("\n  ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_collect_failures() {
        let mut checks = Checks::default();
        checks.run("passes", || Ok(()));
        checks.run("fails", || bail!("broken"));
        let error = checks.finish("demo").unwrap_err().to_string();
        assert!(error.contains("1 of 2 checks failed"), "{error}");
        assert!(error.contains("fails: broken"), "{error}");
    }
}
