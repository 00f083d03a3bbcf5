//! Human confirmation over Streamable HTTP with the production defaults (`[confirmations]`
//! unset): a 2025-11-25 client with an elicitation handler (decline, wrong name, accept), a
//! client without elicitation, the production write policy, the 2026-07-28 round trip with
//! a sealed `requestState` (replay, a target changed in between, tampering), and dry runs.
//! What reached WebOps is read from the mock's request log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ClientConfig,
    ElicitRequestParams, ElicitResult, ElicitationAction, Implementation, InputRequest,
    ProtocolVersion,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, ErrorData, RoleClient};
use serde_json::{Value, json};

use crate::common::{
    ADMIN_KEY, ALL_TOOLS, TestServer, bearer, connect, sorted, text_of, tool_names,
};

/// A person at an MCP client that declares form elicitation: answers from a script, and
/// remembers what they were shown.
#[derive(Clone, Default)]
struct Person {
    answers: Arc<Mutex<VecDeque<ElicitResult>>>,
    shown: Arc<Mutex<Vec<String>>>,
}

impl Person {
    fn answering(answers: impl IntoIterator<Item = ElicitResult>) -> Person {
        Person {
            answers: Arc::new(Mutex::new(answers.into_iter().collect())),
            shown: Arc::default(),
        }
    }

    fn shown(&self) -> Vec<String> {
        self.shown.lock().unwrap().clone()
    }
}

fn typed(name: &str) -> ElicitResult {
    let mut answer = ElicitResult::new(ElicitationAction::Accept);
    answer.content = Some(json!({ "name": name }));
    answer
}

fn declined() -> ElicitResult {
    ElicitResult::new(ElicitationAction::Decline)
}

impl ClientHandler for Person {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder().enable_elicitation().build(),
            Implementation::new("person-test", "1.0.0"),
        )
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        if let ElicitRequestParams::FormElicitationParams { message, .. } = request {
            self.shown.lock().unwrap().push(message);
        }
        let answer = self.answers.lock().unwrap().pop_front();
        // Asked more often than the test expected: dismiss.
        Ok(answer.unwrap_or_else(|| ElicitResult::new(ElicitationAction::Cancel)))
    }
}

async fn person_client(
    server: &TestServer,
    person: &Person,
    lifecycle: ClientLifecycleMode,
) -> RunningService<RoleClient, Person> {
    let (name, value) = bearer(ADMIN_KEY);
    let headers = [(name.parse().unwrap(), value.parse().unwrap())].into();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.url()).custom_headers(headers),
    );
    person
        .clone()
        .serve_with_lifecycle(transport, lifecycle)
        .await
        .unwrap()
}

fn modern() -> ClientLifecycleMode {
    ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    }
}

fn params(tool: &str, arguments: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(tool.to_owned())
        .with_arguments(arguments.as_object().cloned().unwrap())
}

/// The requests that change something (anything but GET) the mock received.
fn writes(server: &TestServer) -> Vec<String> {
    server
        .mock
        .as_ref()
        .unwrap()
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn delete_shop() -> Value {
    json!({"deployment_id": "shop-api", "confirm_name": "shop-api"})
}

/// The audit records written so far.
fn audit(server: &TestServer) -> Vec<Value> {
    std::fs::read_to_string(server.audit_log())
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The text of a refusal; the audit record names its reason.
fn refused(result: &CallToolResult) -> String {
    let text = text_of(result);
    assert_eq!(result.is_error, Some(true), "{text}");
    assert!(text.starts_with("Refused"), "{text}");
    assert!(text.contains("Nothing was sent to WebOps"), "{text}");
    text
}

#[tokio::test]
async fn a_2025_client_asks_its_person_and_only_the_exact_name_deletes() {
    let server = TestServer::start("").await;
    let person = Person::answering([declined(), typed("shop"), typed("shop-api")]);
    let client = person_client(&server, &person, ClientLifecycleMode::Initialize).await;
    assert_eq!(
        tool_names(&client).await,
        sorted(&ALL_TOOLS),
        "a client that can ask sees delete"
    );

    let declined = client
        .call_tool(params("webops_delete_deployment", delete_shop()))
        .await;
    let text = refused(&declined.unwrap());
    assert!(text.contains("declined"), "{text}");
    let wrong = client
        .call_tool(params("webops_delete_deployment", delete_shop()))
        .await;
    let text = refused(&wrong.unwrap());
    assert!(text.contains("not the deployment's exact name"), "{text}");
    assert!(writes(&server).is_empty(), "{:?}", writes(&server));

    let done = client
        .call_tool(params("webops_delete_deployment", delete_shop()))
        .await
        .unwrap();
    assert_eq!(done.is_error, Some(false), "{}", text_of(&done));
    let id = done.structured_content.as_ref().unwrap()["deployment"]["id"].clone();
    assert_eq!(
        writes(&server),
        [format!("DELETE /api/v1/deployments/{id}/")]
    );

    // What the person saw: the blast radius, not just a name.
    let shown = person.shown();
    assert_eq!(shown.len(), 3);
    for part in [
        "shop-api",
        "production",
        "shop-db (postgresql)",
        "Would send: DELETE",
    ] {
        assert!(shown[0].contains(part), "{part} missing from: {}", shown[0]);
    }

    let records = audit(&server);
    let deletes: Vec<&Value> = records
        .iter()
        .filter(|r| r["tool"] == "webops_delete_deployment")
        .collect();
    assert_eq!(deletes.len(), 3, "one record per call");
    assert_eq!(deletes[0]["outcome"], "refused");
    assert_eq!(deletes[0]["reason"], "declined");
    assert_eq!(deletes[1]["reason"], "validation");
    assert_eq!(deletes[2]["outcome"], "ok");
    assert_eq!(deletes[2]["confirmation"]["via"], "elicitation");
    assert_eq!(
        deletes[2]["confirmation"]["digest"].as_str().unwrap().len(),
        64
    );
    client.cancel().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_that_cannot_ask_is_not_offered_delete_and_is_refused() {
    let server = TestServer::start("").await;
    let (name, value) = bearer(ADMIN_KEY);
    let client = connect(&server.url(), &[(name, &value)]).await;
    assert!(
        !tool_names(&client)
            .await
            .contains(&"webops_delete_deployment".to_owned())
    );
    let result = client
        .call_tool(params("webops_delete_deployment", delete_shop()))
        .await
        .unwrap();
    let text = refused(&result);
    assert!(text.contains("elicitation"), "{text}");
    assert!(text.contains("fallback = \"confirm_name\""), "{text}");
    assert!(writes(&server).is_empty());
    let last = audit(&server).pop().unwrap();
    assert_eq!(last["reason"], "no_elicitation");
    client.cancel().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn production_writes_ask_first_and_staging_ones_do_not() {
    let server = TestServer::start("").await;
    // Nothing scripted: a question would be dismissed, so a staging call must not ask.
    let person = Person::default();
    let client = person_client(&server, &person, ClientLifecycleMode::Initialize).await;
    let staging = client
        .call_tool(params(
            "webops_deploy_app",
            json!({"app_name": "staging-app", "repository": "https://github.com/acme/s.git",
                   "environment": "staging"}),
        ))
        .await
        .unwrap();
    assert_eq!(staging.is_error, Some(false), "{}", text_of(&staging));
    assert!(person.shown().is_empty());

    let production = client
        .call_tool(params(
            "webops_deploy_app",
            json!({"app_name": "prod-app", "repository": "https://github.com/acme/p.git"}),
        ))
        .await
        .unwrap();
    refused(&production);
    let stop = client
        .call_tool(params(
            "webops_manage_service",
            json!({"deployment_id": "shop-api", "action": "stop"}),
        ))
        .await
        .unwrap();
    refused(&stop);
    assert_eq!(person.shown().len(), 2);
    assert!(person.shown()[0].contains("prod-app"));
    assert_eq!(
        writes(&server),
        ["POST /api/v1/deployments/"],
        "only the staging deploy"
    );
    client.cancel().await.unwrap();
    server.stop().await.unwrap();
}

/// The first round of a 2026-07-28 call: the question and the sealed state.
async fn first_round(
    client: &RunningService<RoleClient, Person>,
    call: &CallToolRequestParams,
) -> (String, String) {
    match client.call_tool_once(call.clone()).await.unwrap() {
        CallToolResponse::InputRequired(ask) => {
            let requests = ask.input_requests.unwrap();
            let Some(InputRequest::Elicitation(question)) = requests.get("confirm") else {
                panic!("no confirmation question: {requests:?}");
            };
            let ElicitRequestParams::FormElicitationParams { message, .. } = &question.params
            else {
                panic!("not a form");
            };
            (message.clone(), ask.request_state.unwrap())
        }
        other => panic!("expected input_required, got {other:?}"),
    }
}

fn retry(
    call: &CallToolRequestParams,
    state: &str,
    answer: &ElicitResult,
) -> CallToolRequestParams {
    let responses: BTreeMap<String, Value> =
        [("confirm".to_owned(), serde_json::to_value(answer).unwrap())].into();
    let mut call = call.clone();
    call.request_state = Some(state.to_owned());
    call.input_responses = Some(responses);
    call
}

async fn complete(
    client: &RunningService<RoleClient, Person>,
    call: CallToolRequestParams,
) -> CallToolResult {
    match client.call_tool_once(call).await.unwrap() {
        CallToolResponse::Complete(result) => result,
        other => panic!("expected a result, got {other:?}"),
    }
}

#[tokio::test]
async fn a_2026_client_confirms_with_a_sealed_state_used_once() {
    let server = TestServer::start("").await;
    let person = Person::answering([typed("billing-portal")]);
    let client = person_client(&server, &person, modern()).await;
    let mock = server.mock.as_ref().unwrap();

    // The SDK's own driver: it answers the question with the handler and retries.
    let stop = params(
        "webops_manage_service",
        json!({"deployment_id": "billing-portal", "action": "restart"}),
    );
    let done = client.call_tool(stop.clone()).await.unwrap();
    assert_eq!(done.is_error, Some(false), "{}", text_of(&done));
    let id = mock.deployment_id("billing-portal").unwrap();
    assert_eq!(
        writes(&server),
        [format!("POST /api/v1/deployments/{id}/restart/")]
    );

    // By hand: the state is sealed, bound and single use.
    let call = params(
        "webops_manage_service",
        json!({"deployment_id": "search-api", "action": "stop"}),
    );
    let (question, state) = first_round(&client, &call).await;
    assert!(question.contains("search-api") && question.contains("production"));
    let tampered = format!("{}x", state);
    let forged = complete(&client, retry(&call, &tampered, &typed("search-api"))).await;
    refused(&forged);
    let other_args = params(
        "webops_manage_service",
        json!({"deployment_id": "shop-api", "action": "stop"}),
    );
    let moved = complete(&client, retry(&other_args, &state, &typed("shop-api"))).await;
    let text = refused(&moved);
    assert!(text.contains("does not belong to this call"), "{text}");
    let stopped = complete(&client, retry(&call, &state, &typed("search-api"))).await;
    assert_eq!(stopped.is_error, Some(false), "{}", text_of(&stopped));
    let replayed = complete(&client, retry(&call, &state, &typed("search-api"))).await;
    let text = refused(&replayed);
    assert!(text.contains("already used"), "{text}");
    let search = mock.deployment_id("search-api").unwrap();
    assert_eq!(
        writes(&server)
            .iter()
            .filter(|w| w.contains(&format!("/{search}/")))
            .count(),
        1,
        "stopped exactly once"
    );

    // The deployment changes between the two rounds: the confirmation is stale.
    let call = params(
        "webops_manage_service",
        json!({"deployment_id": "shop-api", "action": "restart"}),
    );
    let (_, state) = first_round(&client, &call).await;
    let shop = mock.deployment_id("shop-api").unwrap();
    assert!(mock.set_deployment_status(shop, "stopped"));
    let stale = complete(&client, retry(&call, &state, &typed("shop-api"))).await;
    let text = refused(&stale);
    assert!(text.contains("changed after the person saw it"), "{text}");
    assert!(
        !writes(&server)
            .iter()
            .any(|w| w.contains(&format!("/{shop}/")))
    );

    let reasons: Vec<Value> = audit(&server)
        .into_iter()
        .filter_map(|r| r.get("reason").cloned())
        .collect();
    assert_eq!(
        reasons,
        [
            json!("validation"),
            json!("validation"),
            json!("replayed"),
            json!("stale_confirmation")
        ]
    );
    let outcomes: Vec<Value> = audit(&server)
        .into_iter()
        .map(|r| r["outcome"].clone())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "input_required").count(),
        3,
        "one record per round: {outcomes:?}"
    );
    client.cancel().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_dry_run_of_every_write_tool_sends_no_write() {
    let server = TestServer::start("").await;
    let person = Person::default();
    let client = person_client(&server, &person, ClientLifecycleMode::Initialize).await;
    let calls = [
        (
            "webops_deploy_app",
            json!({"app_name": "dry-app", "repository": "https://github.com/acme/d.git", "dry_run": true}),
        ),
        (
            "webops_manage_service",
            json!({"deployment_id": "shop-api", "action": "stop", "dry_run": true}),
        ),
        (
            "webops_manage_service",
            json!({"deployment_id": "billing-portal", "action": "scale_down", "dry_run": true}),
        ),
        (
            "webops_delete_deployment",
            json!({"deployment_id": "shop-api", "confirm_name": "shop-api", "dry_run": true}),
        ),
    ];
    for (tool, arguments) in calls {
        let result = client.call_tool(params(tool, arguments)).await.unwrap();
        let text = text_of(&result);
        assert_eq!(result.is_error, Some(false), "{tool}: {text}");
        assert!(text.starts_with("Dry run: nothing was sent"), "{text}");
        let plan = &result.structured_content.as_ref().unwrap()["dry_run"];
        assert!(!plan["requests"].as_array().unwrap().is_empty(), "{plan}");
    }
    assert!(writes(&server).is_empty(), "{:?}", writes(&server));
    assert!(person.shown().is_empty(), "a dry run asks nobody");
    assert!(audit(&server).iter().all(|r| r["outcome"] == "dry_run"));
    client.cancel().await.unwrap();
    server.stop().await.unwrap();
}
