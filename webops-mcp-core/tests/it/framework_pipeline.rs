//! The registry and the call pipeline: build errors, definitions, the order of the gates,
//! every validation class, cancellation and the shape of results.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::*;
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use webops_mcp_core::{
    Access, BuildError, MemorySink, Permission, RegistryBuilder, SecurityConfig, Tool, ToolContext,
    ToolError, ToolErrorKind, ToolOutput, WebOpsMcpServer,
};

fn server_with(
    tools: impl FnOnce(
        webops_mcp_core::WebOpsMcpServerBuilder,
    ) -> webops_mcp_core::WebOpsMcpServerBuilder,
    security: SecurityConfig,
) -> (WebOpsMcpServer, Arc<MemorySink>) {
    let sink = Arc::new(MemorySink::new());
    let server = tools(builder(&sink, security)).build().unwrap();
    (server, sink)
}

fn outcomes(sink: &MemorySink) -> Vec<String> {
    sink.records()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------- build errors

#[test]
fn duplicate_names_are_a_build_error() {
    let err = RegistryBuilder::new()
        .tool(Logs::default())
        .tool(Fails)
        .tool(Logs::default())
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::DuplicateTool { ref name } if name == "test_get_logs"));
    assert!(err.to_string().contains("test_get_logs"));
}

/// Output with a hand-written schema that is not valid JSON Schema.
#[derive(Serialize)]
struct BadSchemaOutput {}

impl JsonSchema for BadSchemaOutput {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "BadSchemaOutput".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "object", "properties": {"x": {"type": "bogus"}}})
    }
}

impl ToolOutput for BadSchemaOutput {
    fn to_text(&self) -> String {
        String::new()
    }
}

struct BadOutputSchema;

#[async_trait]
impl Tool for BadOutputSchema {
    type Args = NoArgs;
    type Output = BadSchemaOutput;
    const NAME: &'static str = "bad_schema";
    const TITLE: &'static str = "Bad";
    const DESCRIPTION: &'static str = "Has an invalid output schema.";
    const ACCESS: Access = Access::Read;
    const PERMISSIONS: &'static [Permission] = &[];
    async fn call(&self, _: &ToolContext, _: NoArgs) -> Result<BadSchemaOutput, ToolError> {
        Ok(BadSchemaOutput {})
    }
}

struct StringArgs;

#[async_trait]
impl Tool for StringArgs {
    type Args = String;
    type Output = Said;
    const NAME: &'static str = "string_args";
    const TITLE: &'static str = "String";
    const DESCRIPTION: &'static str = "Takes a bare string.";
    const ACCESS: Access = Access::Read;
    const PERMISSIONS: &'static [Permission] = &[];
    async fn call(&self, _: &ToolContext, s: String) -> Result<Said, ToolError> {
        Ok(Said { said: s })
    }
}

struct NoDescription;

#[async_trait]
impl Tool for NoDescription {
    type Args = NoArgs;
    type Output = Said;
    const NAME: &'static str = "no_description";
    const TITLE: &'static str = "Nothing";
    const DESCRIPTION: &'static str = "  ";
    const ACCESS: Access = Access::Read;
    const PERMISSIONS: &'static [Permission] = &[];
    async fn call(&self, _: &ToolContext, _: NoArgs) -> Result<Said, ToolError> {
        Ok(Said {
            said: String::new(),
        })
    }
}

struct BadName;

#[async_trait]
impl Tool for BadName {
    type Args = NoArgs;
    type Output = Said;
    const NAME: &'static str = "bad name!";
    const TITLE: &'static str = "Bad name";
    const DESCRIPTION: &'static str = "Has a name clients reject.";
    const ACCESS: Access = Access::Read;
    const PERMISSIONS: &'static [Permission] = &[];
    async fn call(&self, _: &ToolContext, _: NoArgs) -> Result<Said, ToolError> {
        Ok(Said {
            said: String::new(),
        })
    }
}

#[test]
fn bad_schemas_descriptions_and_names_are_build_errors() {
    let err = RegistryBuilder::new()
        .tool(BadOutputSchema)
        .build()
        .unwrap_err();
    assert!(
        matches!(err, BuildError::InvalidSchema { ref tool, which: "output", .. } if tool == "bad_schema"),
        "{err}"
    );
    let err = RegistryBuilder::new().tool(StringArgs).build().unwrap_err();
    assert!(
        matches!(err, BuildError::InvalidSchema { which: "input", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("\"type\": \"object\""), "{err}");
    let err = RegistryBuilder::new()
        .tool(NoDescription)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::EmptyDescription { .. }), "{err}");
    let err = RegistryBuilder::new().tool(BadName).build().unwrap_err();
    assert!(matches!(err, BuildError::InvalidToolName { .. }), "{err}");
}

#[test]
fn zero_concurrency_is_a_build_error() {
    let sink = Arc::new(MemorySink::new());
    let err = builder(&sink, SecurityConfig::default().max_concurrent_requests(0))
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::Config(_)), "{err}");
}

// ---------------------------------------------------------------- definitions

#[test]
fn definitions_have_schemas_docs_defaults_and_derived_annotations() {
    let registry = RegistryBuilder::new()
        .tool(Logs::default())
        .tool(Configure)
        .tool(Destroy)
        .build()
        .unwrap();
    let logs = registry.definition("test_get_logs").unwrap();
    let input = &logs.input_schema;
    assert_eq!(input["type"], "object");
    assert!(input.get("title").is_none(), "root title is noise");
    assert!(
        input.get("$defs").is_none(),
        "subschemas are inlined: {input}"
    );
    assert_eq!(input["required"], json!(["deployment_id"]));
    assert_eq!(input["additionalProperties"], false);
    let lines = &input["properties"]["lines"];
    assert_eq!(lines["default"], 100);
    assert_eq!(lines["minimum"], 10);
    assert_eq!(lines["maximum"], 1000);
    assert_eq!(lines["description"], "How many of the newest lines.");
    assert_eq!(input["properties"]["log_type"]["default"], "application");
    assert_eq!(logs.output_schema["type"], "object");
    assert_eq!(
        logs.output_schema["properties"]["said"]["description"],
        "What the tool says."
    );

    let hints = |name: &str| {
        let a = registry.definition(name).unwrap().annotations;
        (
            a.read_only_hint,
            a.destructive_hint,
            a.idempotent_hint,
            a.open_world_hint,
        )
    };
    assert_eq!(hints("test_get_logs"), (true, false, true, true));
    assert_eq!(hints("test_configure"), (false, false, false, true));
    assert_eq!(hints("test_destroy"), (false, true, false, true));

    let wire = serde_json::to_value(logs).unwrap();
    for key in [
        "name",
        "title",
        "description",
        "inputSchema",
        "outputSchema",
        "annotations",
    ] {
        assert!(wire.get(key).is_some(), "{key} missing in {wire}");
    }
    assert_eq!(wire["annotations"]["readOnlyHint"], true);
    assert_eq!(wire["annotations"]["openWorldHint"], true);
    assert_eq!(wire["permissions"], json!(["logs:read"]));
    assert_eq!(wire["access"], "read");
}

#[test]
fn listing_shows_only_what_the_caller_may_call() {
    let registry = RegistryBuilder::new()
        .tool(Logs::default())
        .tool(Configure)
        .tool(Destroy)
        .build()
        .unwrap();
    let names = |perms: &[&str], read_only| {
        registry
            .definitions_for(&identity("u", perms), read_only)
            .into_iter()
            .map(|d| d.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&[], false), Vec::<&str>::new());
    assert_eq!(names(&["logs:read"], false), ["test_get_logs"]);
    assert_eq!(
        names(&["deploy:delete"], false),
        Vec::<&str>::new(),
        "needs both"
    );
    assert_eq!(
        names(&["deploy:*"], false),
        ["test_configure", "test_destroy"]
    );
    assert_eq!(
        names(&["admin:*"], false),
        ["test_get_logs", "test_configure", "test_destroy"]
    );
    assert_eq!(names(&["admin:*"], true), ["test_get_logs"]);
}

#[test]
fn server_lists_tools_per_identity_and_mode() {
    let (server, _) = server_with(
        |b| b.tool(Logs::default()).tool(Configure),
        SecurityConfig::default().read_only(true),
    );
    let all: Vec<_> = server.tools().into_iter().map(|d| d.name).collect();
    assert_eq!(all, ["test_get_logs"]);
    let mine: Vec<_> = server
        .tools_for(&identity("u", &["deploy:create"]))
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert!(mine.is_empty());
}

#[test]
fn builtin_tools_build_with_custom_ones() {
    let sink = Arc::new(MemorySink::new());
    let server = WebOpsMcpServer::builder()
        .api(Arc::new(webops_client::MockWebOpsApi::new()))
        .audit_sink(sink)
        .tool(Logs::default())
        .build()
        .unwrap();
    let names: Vec<_> = server.tools().into_iter().map(|d| d.name).collect();
    for builtin in [
        "webops_deploy_app",
        "webops_get_status",
        "webops_list_deployments",
        "webops_get_logs",
        "webops_manage_service",
        "webops_security_audit",
        "webops_system_health",
        "webops_delete_deployment",
        "test_get_logs",
    ] {
        assert!(names.contains(&builtin), "{builtin} missing from {names:?}");
    }
    let delete = server
        .registry()
        .definition("webops_delete_deployment")
        .unwrap();
    assert!(delete.annotations.destructive_hint);
}

// ---------------------------------------------------------------- pipeline order

#[tokio::test]
async fn unknown_tool_names_it_and_lists_the_callers_tools() {
    let (server, sink) = server_with(
        |b| b.tool(Logs::default()).tool(Configure),
        SecurityConfig::default(),
    );
    let result = server
        .handle_tool_call("webops_nope", json!({}), &identity("u", &["logs:read"]))
        .await;
    assert!(result.is_error);
    assert!(result.structured_content.is_none());
    assert_eq!(
        result.text(),
        "unknown tool 'webops_nope'; available tools: test_get_logs"
    );
    assert_eq!(outcomes(&sink), ["unknown_tool"]);
}

#[tokio::test]
async fn read_only_comes_before_permissions() {
    let (server, sink) = server_with(
        |b| b.tool(Logs::default()).tool(Configure),
        SecurityConfig::default().read_only(true),
    );
    let result = server
        .handle_tool_call(
            "test_configure",
            json!({"app_name": "x"}),
            &identity("u", &["logs:read"]),
        )
        .await;
    assert_eq!(result.error_kind, Some(ToolErrorKind::PermissionDenied));
    let text = result.text();
    assert!(text.contains("read-only"), "{text}");
    assert!(
        text.contains("test_get_logs"),
        "the remaining tools: {text}"
    );
    assert_eq!(outcomes(&sink), ["denied"]);
}

#[tokio::test]
async fn permissions_come_before_the_rate_limit() {
    let logs = Logs::default();
    let (server, sink) = server_with(
        |b| b.tool(logs.clone()).tool(Destroy),
        SecurityConfig::default().rate_limit_per_minute(1),
    );
    let user = identity("carol", &["logs:read", "deploy:delete"]);
    for _ in 0..3 {
        let denied = server
            .handle_tool_call("test_destroy", json!({}), &user)
            .await;
        assert_eq!(denied.error_kind, Some(ToolErrorKind::PermissionDenied));
        let text = denied.text();
        assert!(text.contains("test_destroy"), "{text}");
        assert!(
            text.contains("requires deploy:read, deploy:delete"),
            "{text}"
        );
        assert!(text.contains("lacks deploy:read"), "{text}");
        assert!(!text.contains("lacks deploy:read, deploy:delete"), "{text}");
    }
    // Denied calls took no token: the one allowed call still runs.
    let ok = server
        .handle_tool_call("test_get_logs", json!({"deployment_id": 7}), &user)
        .await;
    assert!(!ok.is_error, "{}", ok.text());
    let limited = server
        .handle_tool_call("test_get_logs", json!({"deployment_id": 7}), &user)
        .await;
    assert_eq!(limited.error_kind, Some(ToolErrorKind::RateLimited));
    assert_eq!(
        outcomes(&sink),
        ["denied", "denied", "denied", "ok", "rate_limited"]
    );
    assert_eq!(logs.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn rate_limit_comes_before_concurrency_and_concurrency_before_validation() {
    let blocker = Blocker::default();
    let (server, sink) = server_with(
        |b| b.tool(blocker.clone()).tool(Logs::default()),
        SecurityConfig::default()
            .rate_limit_per_minute(2)
            .max_concurrent_requests(1)
            .busy_timeout(Duration::from_millis(20)),
    );
    let user = identity("dave", &["logs:read"]);
    let holder = {
        let server = server.clone();
        let user = user.clone();
        tokio::spawn(async move {
            server
                .handle_tool_call("test_block", json!({}), &user)
                .await
        })
    };
    blocker.wait_started(1).await;
    // The slot is taken: invalid arguments get Busy, not a validation error.
    let busy = server
        .handle_tool_call("test_get_logs", json!({"lines": "many"}), &user)
        .await;
    assert_eq!(
        busy.error_kind,
        Some(ToolErrorKind::Busy),
        "{}",
        busy.text()
    );
    assert!(busy.text().contains("server busy: 1 calls in flight"));
    // Tokens exhausted: rate limited at once, before waiting for a slot.
    let limited = server
        .handle_tool_call("test_get_logs", json!({"deployment_id": 1}), &user)
        .await;
    assert_eq!(limited.error_kind, Some(ToolErrorKind::RateLimited));
    blocker.release.add_permits(1);
    assert!(!holder.await.unwrap().is_error);
    assert_eq!(outcomes(&sink), ["busy", "rate_limited", "ok"]);
}

#[tokio::test]
async fn validation_comes_before_the_tool() {
    let logs = Logs::default();
    let (server, sink) = server_with(|b| b.tool(logs.clone()), SecurityConfig::default());
    let result = server
        .handle_tool_call(
            "test_get_logs",
            json!({"lines": 5}),
            &identity("u", &["logs:read"]),
        )
        .await;
    assert_eq!(result.error_kind, Some(ToolErrorKind::InvalidArguments));
    assert_eq!(logs.calls.load(Ordering::SeqCst), 0);
    assert_eq!(outcomes(&sink), ["invalid"]);
}

// ---------------------------------------------------------------- validation classes

async fn invalid(arguments: Value) -> String {
    let (server, _) = server_with(|b| b.tool(Logs::default()), SecurityConfig::default());
    let result = server
        .handle_tool_call("test_get_logs", arguments, &identity("u", &["logs:read"]))
        .await;
    assert_eq!(result.error_kind, Some(ToolErrorKind::InvalidArguments));
    assert!(result.structured_content.is_none());
    result.text()
}

#[tokio::test]
async fn the_briefs_example_message() {
    let text = invalid(json!({"deployment_id": 3, "lines": 5000, "log_type": "foo"})).await;
    assert_eq!(
        text,
        "invalid arguments for test_get_logs: /lines: 5000 is greater than the maximum of 1000; \
         /log_type: \"foo\" is not one of \"application\", \"access\", \"error\" or \"deployment\""
    );
}

#[tokio::test]
async fn missing_required_property_is_named() {
    let text = invalid(json!({})).await;
    assert_eq!(
        text,
        "invalid arguments for test_get_logs: /deployment_id: required property \
         \"deployment_id\" is missing (integer or string)"
    );
    // A missing `arguments` is `{}`.
    let (server, _) = server_with(|b| b.tool(Logs::default()), SecurityConfig::default());
    let null = server
        .handle_tool_call("test_get_logs", Value::Null, &identity("u", &["logs:read"]))
        .await;
    assert_eq!(null.text(), text);
}

#[tokio::test]
async fn wrong_types_say_what_was_expected() {
    let text = invalid(json!({"deployment_id": [1], "lines": "ten", "since": 5})).await;
    assert!(
        text.contains("/deployment_id: [1] is not valid: expected integer or string"),
        "{text}"
    );
    assert!(
        text.contains("/lines: expected an integer, got a string \"ten\""),
        "{text}"
    );
    assert!(
        text.contains("/since: expected a string, got an integer 5"),
        "{text}"
    );
    let text = invalid(json!("not an object")).await;
    assert!(
        text.contains("/: expected an object, got a string"),
        "{text}"
    );
}

#[tokio::test]
async fn out_of_range_names_the_bound() {
    let text = invalid(json!({"deployment_id": 1, "lines": 9})).await;
    assert!(
        text.ends_with("/lines: 9 is less than the minimum of 10"),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_enum_value_lists_the_allowed_ones() {
    let text = invalid(json!({"deployment_id": 1, "log_type": "debug"})).await;
    assert!(
        text.ends_with(
            "/log_type: \"debug\" is not one of \"application\", \"access\", \"error\" or \"deployment\""
        ),
        "{text}"
    );
}

#[tokio::test]
async fn extra_property_is_named_with_the_allowed_ones() {
    let text = invalid(json!({"deployment_id": 1, "lines_count": 20})).await;
    assert!(
        text.ends_with(
            "/: unknown property \"lines_count\"; allowed: \"deployment_id\", \"lines\", \
             \"log_type\", \"since\""
        ),
        "{text}"
    );
}

#[tokio::test]
async fn every_violation_is_reported() {
    let text = invalid(json!({"lines": 0, "log_type": 1, "extra": true})).await;
    for path in [
        "/deployment_id:",
        "/lines:",
        "/log_type:",
        "/: unknown property \"extra\"",
    ] {
        assert!(text.contains(path), "{path} missing in {text}");
    }
}

#[tokio::test]
async fn valid_arguments_reach_the_tool_with_defaults() {
    let (server, _) = server_with(|b| b.tool(Logs::default()), SecurityConfig::default());
    let result = server
        .handle_tool_call(
            "test_get_logs",
            json!({"deployment_id": "shop-api"}),
            &identity("u", &["logs:read"]),
        )
        .await;
    assert!(!result.is_error, "{}", result.text());
    assert_eq!(result.text(), "100 Application lines of shop-api");
    assert_eq!(
        result.structured_content,
        Some(json!({"said": "100 Application lines of shop-api"}))
    );
    let wire = serde_json::to_value(&result).unwrap();
    assert_eq!(
        wire,
        json!({
            "content": [{"type": "text", "text": "100 Application lines of shop-api"}],
            "isError": false,
            "structuredContent": {"said": "100 Application lines of shop-api"}
        })
    );
}

// ---------------------------------------------------------------- failures and cancellation

#[tokio::test]
async fn tool_errors_are_results_without_structured_content() {
    let (server, sink) = server_with(|b| b.tool(Fails), SecurityConfig::default());
    let result = server
        .handle_tool_call("test_fails", json!({}), &identity("u", &[]))
        .await;
    assert!(result.is_error);
    assert_eq!(result.error_kind, Some(ToolErrorKind::Conflict));
    assert!(result.structured_content.is_none());
    assert_eq!(result.text(), "shop-api is stopped; start it first");
    let wire = serde_json::to_value(&result).unwrap();
    assert!(wire.get("structuredContent").is_none(), "{wire}");
    assert_eq!(wire["isError"], true);
    let record = &sink.records()[0];
    assert_eq!(record["outcome"], "failed");
    assert_eq!(record["error"]["kind"], "conflict");
}

#[tokio::test]
async fn a_panicking_tool_is_an_internal_error() {
    let (server, sink) = server_with(|b| b.tool(Panics), SecurityConfig::default());
    let result = server
        .handle_tool_call("test_panics", json!({}), &identity("u", &[]))
        .await;
    assert_eq!(result.error_kind, Some(ToolErrorKind::Internal));
    assert!(result.text().contains("test_panics failed unexpectedly"));
    assert_eq!(outcomes(&sink), ["failed"]);
}

#[tokio::test]
async fn a_cancelled_call_ends_as_cancelled() {
    let blocker = Blocker::default();
    let (server, sink) = server_with(|b| b.tool(blocker.clone()), SecurityConfig::default());
    let cancel = CancellationToken::new();
    let call = {
        let server = server.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            server
                .handle_tool_call_with("test_block", json!({}), &identity("u", &[]), cancel, None)
                .await
        })
    };
    blocker.wait_started(1).await;
    cancel.cancel();
    let result = call.await.unwrap();
    assert_eq!(result.error_kind, Some(ToolErrorKind::Cancelled));
    assert!(result.text().contains("cancelled"));
    assert_eq!(
        blocker.finished.load(Ordering::SeqCst),
        0,
        "the tool was stopped"
    );
    assert_eq!(outcomes(&sink), ["cancelled"]);

    // Already cancelled: the tool does not even start.
    let result = server
        .handle_tool_call_with(
            "test_block",
            json!({}),
            &identity("u", &[]),
            cancel.clone(),
            None,
        )
        .await;
    assert_eq!(result.error_kind, Some(ToolErrorKind::Cancelled));
}

#[tokio::test]
async fn a_cancelled_change_runs_to_its_end_and_reports_what_happened() {
    let blocker = WriteBlocker::default();
    let (server, sink) = server_with(|b| b.tool(blocker.clone()), SecurityConfig::default());
    let cancel = CancellationToken::new();
    let call = {
        let server = server.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            server
                .handle_tool_call_with(
                    "test_block_write",
                    json!({}),
                    &identity("u", &[]),
                    cancel,
                    None,
                )
                .await
        })
    };
    blocker.0.wait_started(1).await;
    cancel.cancel();
    blocker.0.release.add_permits(1);
    let result = call.await.unwrap();
    // Not "cancelled": the change happened, and the caller and the audit log say so.
    assert!(!result.is_error, "{}", result.text());
    assert_eq!(result.text(), "released");
    assert_eq!(blocker.0.finished.load(Ordering::SeqCst), 1);
    assert_eq!(outcomes(&sink), ["ok"]);

    // Already cancelled before it started: the change does not even start.
    let result = server
        .handle_tool_call_with(
            "test_block_write",
            json!({}),
            &identity("u", &[]),
            cancel,
            None,
        )
        .await;
    assert_eq!(result.error_kind, Some(ToolErrorKind::Cancelled));
    assert_eq!(blocker.0.finished.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_dropped_call_is_still_audited_once() {
    let blocker = Blocker::default();
    let (server, sink) = server_with(|b| b.tool(blocker.clone()), SecurityConfig::default());
    let call = {
        let server = server.clone();
        tokio::spawn(async move {
            server
                .handle_tool_call("test_block", json!({}), &identity("u", &[]))
                .await
        })
    };
    blocker.wait_started(1).await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    let records = sink.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["outcome"], "cancelled");
}
