//! Answers that can outgrow the answer budget ([`crate::tool::ToolContext::answer_budget`]):
//! [`fit`] finds the largest page that stays under it, and [`Cursor`] is the opaque token
//! that continues a list or a log where the page ended.

use std::borrow::Cow;
use std::ops::Deref;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::tool::{ToolError, ToolOutput, structured_json};

/// The output of `build(k)` for the largest `k` in `1..=len` whose answer fits in `budget`
/// bytes (`build(len)` when everything fits), written out. A page holds at least one item, so
/// reading on always advances; a single item over the budget is refused by the pipeline.
/// `tool` names the tool in the error of an output that cannot be serialized.
pub(crate) fn fit<O: ToolOutput>(
    tool: &str,
    len: usize,
    budget: usize,
    build: impl Fn(usize) -> O,
) -> Result<Written<O>, ToolError> {
    let write = |k| Written::new(tool, build(k));
    let all = write(len)?;
    if len <= 1 || all.answer_bytes() <= budget {
        return Ok(all);
    }
    // `fits` fits (or is the one-item floor), `over` does not; `best` is `fits` written.
    let (mut fits, mut over, mut best) = (1, len, None);
    while over - fits > 1 {
        let mid = fits + (over - fits) / 2;
        let page = write(mid)?;
        if page.answer_bytes() <= budget {
            (fits, best) = (mid, Some(page));
        } else {
            over = mid;
        }
    }
    best.map_or_else(|| write(fits), Ok)
}

/// A tool's output with its answer already written: its text, and its structured content as
/// JSON. [`fit`] measures a page by writing it, and the pipeline then copies what was written
/// rather than writing the page a second time. It reads as the output it holds, and its schema
/// is that output's.
#[derive(Debug)]
pub(crate) struct Written<O> {
    output: O,
    text: String,
    json: Box<RawValue>,
}

impl<O: ToolOutput> Written<O> {
    fn new(tool: &str, output: O) -> Result<Self, ToolError> {
        Ok(Written {
            text: output.to_text(),
            json: structured_json(tool, &output)?,
            output,
        })
    }
}

impl<O> Deref for Written<O> {
    type Target = O;

    fn deref(&self) -> &O {
        &self.output
    }
}

impl<O> Serialize for Written<O> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(s)
    }
}

impl<O: JsonSchema> JsonSchema for Written<O> {
    fn inline_schema() -> bool {
        O::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        O::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        O::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        O::json_schema(generator)
    }
}

impl<O: ToolOutput> ToolOutput for Written<O> {
    fn to_text(&self) -> String {
        self.text.clone()
    }

    fn answer_bytes(&self) -> usize {
        self.text.len() + self.json.get().len()
    }
}

/// Where a paged read goes on. Opaque to callers: base64url of this JSON, checked when it
/// comes back against the call it is given to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) enum Cursor {
    /// The rest of a `webops_get_logs` read.
    Logs(LogsCursor),
    /// The rest of a `webops_list_deployments` read.
    Deployments(DeploymentsCursor),
}

/// The rest of a log read: lines `next..end` of the log, counted from its oldest line (after
/// `since`), as the first page saw it. Logs only grow at their end, so these positions stay
/// put while the app writes on; `check` (a digest of line `next`) catches a log that was
/// rotated or rewritten in between.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogsCursor {
    /// The deployment's id.
    pub(crate) deployment: i64,
    /// The log type, as the API names it.
    pub(crate) log_type: String,
    /// The `since` bound of the first page (RFC 3339), if any.
    pub(crate) since: Option<String>,
    /// The first line not yet returned.
    pub(crate) next: u64,
    /// One past the last line of the read.
    pub(crate) end: u64,
    /// Digest of line `next` as the first page saw it.
    pub(crate) check: String,
}

/// The rest of a deployment list: the deployments after `after` (the last id returned), of
/// the same filters and the same `limit`, `returned` of which were already returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeploymentsCursor {
    /// The environment filter, as the API names it.
    pub(crate) environment: Option<String>,
    /// The status filter, as the tool names it.
    pub(crate) status: Option<String>,
    /// The `limit` of the first page.
    pub(crate) limit: u32,
    /// How many were returned so far.
    pub(crate) returned: u32,
    /// The id of the last one returned.
    pub(crate) after: i64,
}

/// The longest cursor accepted: far more than any this server writes.
const MAX_CURSOR_LEN: usize = 1024;

impl Cursor {
    /// The opaque token.
    pub(crate) fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// The cursor a token stands for, or an error that says where tokens come from.
    pub(crate) fn decode(token: &str) -> Result<Cursor, ToolError> {
        if token.len() > MAX_CURSOR_LEN {
            return Err(Cursor::invalid());
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| Cursor::invalid())?;
        serde_json::from_slice(&bytes).map_err(|_| Cursor::invalid())
    }

    /// The error for a token this server did not give out.
    pub(crate) fn invalid() -> ToolError {
        ToolError::invalid(
            "cursor is not one this server gave out; pass the next_cursor of the previous \
             answer unchanged, or leave cursor out to start from the beginning",
        )
    }
}

/// A cursor given to the wrong tool or for other arguments.
pub(crate) fn foreign_cursor(what: &str) -> ToolError {
    ToolError::invalid(format!(
        "this cursor continues another read ({what}); pass it with the same arguments as the \
         call that returned it, or leave cursor out to start from the beginning"
    ))
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;

    #[derive(Debug, Serialize, schemars::JsonSchema)]
    struct Items(Vec<String>);

    impl ToolOutput for Items {
        fn to_text(&self) -> String {
            self.0.join("\n")
        }
    }

    fn items(k: usize) -> Items {
        Items((0..k).map(|i| format!("item {i:04}")).collect())
    }

    #[test]
    fn fit_takes_the_largest_page_under_the_budget() {
        let fit = |len, budget| fit("t", len, budget, items).unwrap();
        assert_eq!(fit(10, 10_000).0.len(), 10);
        for budget in [40, 100, 333, 1000] {
            let page = fit(1000, budget);
            assert!(page.answer_bytes() <= budget, "{budget}");
            assert!(items(page.0.len() + 1).answer_bytes() > budget, "{budget}");
            // What was written is the page's text and JSON.
            assert_eq!(page.to_text(), items(page.0.len()).to_text());
            let json = serde_json::to_string(&*page).unwrap();
            assert_eq!(serde_json::to_string(&page).unwrap(), json);
            assert_eq!(page.answer_bytes(), items(page.0.len()).answer_bytes());
        }
        // At least one item, so that reading on advances.
        assert_eq!(fit(1000, 1).0.len(), 1);
        assert_eq!(fit(0, 1).0.len(), 0);
        assert_eq!(
            schemars::schema_for!(Written<Items>),
            schemars::schema_for!(Items)
        );
    }

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        let cursor = Cursor::Deployments(DeploymentsCursor {
            environment: Some("production".to_owned()),
            status: None,
            limit: 200,
            returned: 50,
            after: 77,
        });
        let token = cursor.encode();
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
        );
        assert_eq!(Cursor::decode(&token).unwrap(), cursor);
        for bad in ["", "%%%", "bm90IGpzb24", &"A".repeat(2000)] {
            let err = Cursor::decode(bad).unwrap_err();
            assert!(err.message().contains("next_cursor"), "{bad}");
        }
    }
}
