//! Tool selection as the production binary does it: `--tools`, `--toolsets`, both, the
//! `[tools]` table (and the flags replacing it), `--read-only` on top of a selection, unknown
//! names failing at start with every valid name, and each tool's permissions in its `_meta`.
//! Most tests run `webops-mcp stdio --demo` with a real rmcp client on the child's stdio.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;

use crate::common::{
    self, ADMIN_KEY, ALL_TOOLS, READ_TOOLS, TempDir, TestServer, VIEWER_KEY, bearer, call, sorted,
    text_of,
};
use rmcp::model::{CallToolRequestParams, ClientConfig, ErrorCode};
use rmcp::service::{RoleClient, RunningService};
use rmcp::{ServiceError, ServiceExt as _};
use serde_json::json;
use webops_mcp_server::Config;

/// The toolset names, as documented.
const TOOLSETS: [&str; 4] = ["observe", "deploy", "security", "admin"];

/// The tools of the `observe` toolset.
const OBSERVE: [&str; 4] = [
    "webops_list_deployments",
    "webops_get_status",
    "webops_get_logs",
    "webops_system_health",
];

/// A running `webops-mcp stdio --demo` and the client connected to it.
struct StdioServer {
    client: RunningService<RoleClient, ClientConfig>,
    _child: tokio::process::Child,
}

impl StdioServer {
    /// Starts `webops-mcp stdio --demo ARGS` with the configuration environment cleared
    /// and connects a client (which declares no elicitation).
    async fn start(args: &[&str]) -> StdioServer {
        let mut child = common::spawn_stdio_demo(args, Stdio::null());
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let client = ClientConfig::default()
            .serve((stdout, stdin))
            .await
            .unwrap_or_else(|e| panic!("webops-mcp stdio --demo {args:?} did not start: {e}"));
        StdioServer {
            client,
            _child: child,
        }
    }

    /// The sorted names of the tools listed.
    async fn tool_names(&self) -> Vec<String> {
        common::tool_names(&self.client).await
    }

    /// The JSON-RPC error of calling `tool`, which must fail as a protocol error.
    async fn call_error(&self, tool: &str) -> rmcp::ErrorData {
        let err = self
            .client
            .call_tool(CallToolRequestParams::new(tool.to_owned()))
            .await
            .unwrap_err();
        match err {
            ServiceError::McpError(error) => error,
            other => panic!("calling {tool}: expected a JSON-RPC error, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_keeps_exactly_the_named_tools_and_the_rest_are_unknown() {
    let server = StdioServer::start(&["--tools", "webops_get_status,webops_deploy_app"]).await;
    assert_eq!(
        server.tool_names().await,
        sorted(&["webops_get_status", "webops_deploy_app"])
    );
    let ok = call(
        &server.client,
        "webops_get_status",
        json!({"deployment_id": "shop-api"}),
    )
    .await;
    assert_ne!(ok.is_error, Some(true), "{}", text_of(&ok));

    let error = server.call_error("webops_list_deployments").await;
    assert_eq!(
        error.code,
        ErrorCode::INVALID_PARAMS,
        "like an unknown tool"
    );
    assert_eq!(
        error.message,
        "unknown tool 'webops_list_deployments'; available tools: webops_deploy_app, \
         webops_get_status"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toolsets_keeps_exactly_their_tools() {
    let server = StdioServer::start(&["--toolsets", "observe,security"]).await;
    let mut want = OBSERVE.to_vec();
    want.push("webops_security_audit");
    assert_eq!(server.tool_names().await, sorted(&want));
    let error = server.call_error("webops_delete_deployment").await;
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_and_toolsets_together_are_the_union() {
    let server = StdioServer::start(&[
        "--tools",
        "webops_delete_deployment",
        "--toolsets",
        "deploy",
        "--tools",
        "webops_get_logs",
    ])
    .await;
    assert_eq!(
        server.tool_names().await,
        sorted(&[
            "webops_delete_deployment",
            "webops_deploy_app",
            "webops_manage_service",
            "webops_get_logs",
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tools_table_selects_and_either_flag_replaces_it() {
    let dir = TempDir::new();
    let file = dir.write(
        "webops-mcp.toml",
        "[tools]\nenabled = [\"webops_system_health\"]\ntoolsets = [\"security\"]\n",
    );
    let file = file.to_str().unwrap();
    let server = StdioServer::start(&["--config", file]).await;
    assert_eq!(
        server.tool_names().await,
        sorted(&["webops_system_health", "webops_security_audit"])
    );
    let server = StdioServer::start(&["--config", file, "--toolsets", "admin"]).await;
    assert_eq!(
        server.tool_names().await,
        sorted(&["webops_delete_deployment"]),
        "--toolsets replaces the file's enabled too"
    );
    let server = StdioServer::start(&["--config", file, "--tools", "webops_get_logs"]).await;
    assert_eq!(server.tool_names().await, sorted(&["webops_get_logs"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_still_hides_the_selected_tools_that_change_something() {
    let server = StdioServer::start(&["--read-only", "--toolsets", "deploy,observe"]).await;
    assert_eq!(server.tool_names().await, sorted(&OBSERVE));
    // Selected but hidden: it exists, and read-only mode refuses it as a tool error.
    let refused = call(
        &server.client,
        "webops_manage_service",
        json!({"deployment_id": "shop-api", "action": "restart"}),
    )
    .await;
    assert_eq!(refused.is_error, Some(true));
    assert!(
        text_of(&refused).contains("read-only"),
        "{}",
        text_of(&refused)
    );

    let server = StdioServer::start(&["--read-only", "--tools", "webops_deploy_app"]).await;
    assert!(server.tool_names().await.is_empty());
}

/// Runs the binary with `args` (stdin closed) and returns its exit status and stderr.
fn run(args: &[&str]) -> (std::process::ExitStatus, String) {
    let output = common::command()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Whether `stderr` names every tool and every toolset.
fn lists_every_valid_name(stderr: &str) {
    for name in ALL_TOOLS.iter().chain(&TOOLSETS) {
        assert!(stderr.contains(name), "{name} is not listed:\n{stderr}");
    }
}

#[test]
fn unknown_names_fail_at_start_and_list_every_valid_tool_and_toolset() {
    let dir = TempDir::new();
    let file = dir.write("bad.toml", "[tools]\nenabled = [\"webops_get_stats\"]\n");
    let file = file.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &["stdio", "--demo", "--tools", "webops_get_stats"],
            "--tools: unknown tool \"webops_get_stats\"",
        ),
        (
            &["stdio", "--demo", "--toolsets", "observe,ops"],
            "--toolsets: unknown toolset \"ops\"",
        ),
        (
            &["stdio", "--demo", "--tools", "observe"],
            "(\"observe\" is a toolset, not a tool)",
        ),
        (
            &["stdio", "--demo", "--config", file],
            "[tools] enabled: unknown tool \"webops_get_stats\"",
        ),
        (
            &["http", "--demo", "--bind", "127.0.0.1:0", "--tools", "nope"],
            "--tools: unknown tool \"nope\"",
        ),
        (
            &["check-config", "--stdio", "--config", file],
            "[tools] enabled: unknown tool \"webops_get_stats\"",
        ),
    ];
    for (args, message) in cases {
        let (status, stderr) = run(args);
        assert!(!status.success(), "{args:?} started");
        assert_eq!(status.code(), Some(1), "{args:?}");
        assert!(stderr.contains(message), "{args:?}:\n{stderr}");
        lists_every_valid_name(&stderr);
    }
}

#[test]
fn a_selection_of_nothing_is_an_error_not_every_tool() {
    let (status, stderr) = run(&["stdio", "--demo", "--tools", ","]);
    assert!(!status.success());
    assert!(
        stderr.contains("--tools and --toolsets select no tool"),
        "{stderr}"
    );
    lists_every_valid_name(&stderr);
    let err = Config::loader()
        .toml("[tools]\nenabled = []\n")
        .load()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[tools] enabled and [tools] toolsets select no tool"),
        "{err}"
    );
    let err = Config::loader()
        .toml("[tools]\ntools = [\"webops_get_logs\"]\n")
        .load()
        .unwrap_err()
        .to_string();
    assert!(err.contains("in [tools]: unknown key `tools`"), "{err}");
}

#[test]
fn check_config_shows_the_selection() {
    let config = Config::loader()
        .toml("[tools]\nenabled = [\" webops_get_logs \"]\ntoolsets = [\"admin\", \"observe\"]\n")
        .load()
        .unwrap();
    let shown = config.to_redacted_toml();
    assert!(
        shown.contains(
            "[tools]\nenabled = [\"webops_get_logs\"]\ntoolsets = [\n    \"observe\",\n    \"admin\",\n]"
        ) || shown.contains(
            "[tools]\nenabled = [\"webops_get_logs\"]\ntoolsets = [\"observe\", \"admin\"]"
        ),
        "{shown}"
    );
    let everything = Config::loader().load().unwrap();
    assert!(everything.tools.is_all());
    assert!(!everything.to_redacted_toml().contains("enabled"));
}

/// The permission each tool needs, from the README's table (not from the code).
const PERMISSIONS: [(&str, &str); 8] = [
    ("webops_deploy_app", "deploy:create"),
    ("webops_get_status", "deploy:read"),
    ("webops_list_deployments", "deploy:read"),
    ("webops_get_logs", "logs:read"),
    ("webops_manage_service", "deploy:manage"),
    ("webops_security_audit", "security:audit"),
    ("webops_system_health", "system:read"),
    ("webops_delete_deployment", "deploy:delete"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tool_names_its_permissions_in_its_meta() {
    let server = StdioServer::start(&[]).await;
    let tools = server.client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), PERMISSIONS.len());
    for tool in tools {
        let (_, permission) = PERMISSIONS
            .iter()
            .find(|(name, _)| *name == tool.name)
            .unwrap_or_else(|| panic!("unexpected tool {}", tool.name));
        let meta = serde_json::to_value(&tool.meta).unwrap();
        assert_eq!(
            meta,
            json!({"io.webops-mcp/permissions": [permission]}),
            "{}",
            tool.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_the_selection_applies_to_every_caller() {
    let server = TestServer::start("[tools]\ntoolsets = [\"observe\", \"deploy\"]\n").await;
    let admin = bearer(ADMIN_KEY);
    let admin = common::connect(&server.url(), &[(admin.0, &admin.1)]).await;
    let mut want = OBSERVE.to_vec();
    want.extend(["webops_deploy_app", "webops_manage_service"]);
    assert_eq!(common::tool_names(&admin).await, sorted(&want));
    let viewer = bearer(VIEWER_KEY);
    let viewer = common::connect(&server.url(), &[(viewer.0, &viewer.1)]).await;
    let seen = common::tool_names(&viewer).await;
    let read: Vec<&str> = READ_TOOLS
        .into_iter()
        .filter(|t| OBSERVE.contains(t))
        .collect();
    assert_eq!(seen, sorted(&read), "the viewer's permissions still apply");
    admin.cancel().await.unwrap();
    viewer.cancel().await.unwrap();
    server.stop().await.unwrap();
}

#[test]
fn the_documented_toolsets_are_those_of_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    let text = std::fs::read_to_string(path).unwrap();
    let table: Vec<(String, Vec<String>)> = text
        .lines()
        .skip_while(|line| *line != "| toolset | tools |")
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').collect();
            let unquote = |s: &str| s.trim().trim_matches('`').to_owned();
            (
                unquote(cells[0]),
                cells[1].split(',').map(unquote).collect(),
            )
        })
        .collect();
    let code: Vec<(String, Vec<String>)> = webops_mcp_core::Toolset::ALL
        .iter()
        .map(|set| {
            let tools = set.tools().iter().map(|t| (*t).to_owned()).collect();
            (set.as_str().to_owned(), tools)
        })
        .collect();
    assert_eq!(table, code, "docs/configuration.md's toolset table");
    assert_eq!(
        code.iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>(),
        TOOLSETS
    );
}
