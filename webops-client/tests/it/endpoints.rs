//! Every endpoint of the client against the testkit's mock WebOps over loopback HTTP: the
//! request it sends (path, query, headers, body) and what it makes of the answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::{self, client, hits, requests_to};
use chrono::Utc;
use webops_client::*;
use webops_mcp_testkit::{MockWebOps, SeedDatabase, SeedDeployment};

/// Four deployments with distinct statuses, environments and types, some logs and a database.
async fn seeded() -> MockWebOps {
    MockWebOps::builder()
        .deployment(
            SeedDeployment::new("shop")
                .status("running")
                .environment("production")
                .project_type("django")
                .instances(2),
        )
        .deployment(
            SeedDeployment::new("shop-api")
                .status("running")
                .environment("staging")
                .project_type("python")
                .env_var("SECRET_KEY", "not-a-real-secret")
                .log("application", "info", "worker started")
                .log("application", "error", "payment gateway timed out")
                .log("application", "info", "request served")
                .log("access", "info", "GET /health 200"),
        )
        .deployment(
            SeedDeployment::new("shop-api-v2")
                .status("stopped")
                .environment("development")
                .project_type("nodejs"),
        )
        .deployment(
            SeedDeployment::new("blog")
                .status("failed")
                .environment("production")
                .project_type("django"),
        )
        .database(
            SeedDatabase::new("shop-db", "postgresql")
                .public(true)
                .ssl_required(false)
                .deployment("shop"),
        )
        .start()
        .await
        .unwrap()
}

fn names(deployments: &[Deployment]) -> BTreeSet<&str> {
    deployments.iter().map(|d| d.name.as_str()).collect()
}

async fn id_of(client: &Client, name: &str) -> i64 {
    client
        .resolve(&DeploymentRef::from(name))
        .await
        .unwrap_or_else(|e| panic!("resolve {name}: {e}"))
}

/// Polls until the deployment reaches `status` (the mock's lifecycle steps take ~20 ms).
async fn wait_for(client: &Client, id: i64, status: DeploymentStatus) -> DeploymentDetail {
    for _ in 0..500 {
        let detail = client.get_deployment(id).await.unwrap();
        if detail.status == status {
            return detail;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("deployment {id} never reached {status}");
}

#[tokio::test]
async fn status_is_fetched_without_a_token() {
    let mock = MockWebOps::start().await;
    let anonymous = Client::builder().base_url(mock.base_url()).build().unwrap();
    let status = anonymous.status().await.unwrap();
    assert_eq!(status.status, "ok");
    assert!(!status.version.is_empty());

    // Even a client with a token does not send it to `status/`.
    client(&mock).status().await.unwrap();
    let sent = requests_to(&mock, "GET", "status/");
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|r| r.header("authorization").is_none()));
}

#[tokio::test]
async fn every_other_request_carries_the_bearer_token_and_user_agent() {
    let mock = MockWebOps::start().await;
    let default_agent = client(&mock);
    default_agent
        .list_deployments(&DeploymentFilter::new())
        .await
        .unwrap();
    let custom = common::builder(&mock)
        .user_agent("ops-bot/2.0")
        .build()
        .unwrap();
    custom.databases().await.unwrap();

    let list = &requests_to(&mock, "GET", "deployments/")[0];
    assert_eq!(
        list.header("authorization"),
        Some(format!("Bearer {}", mock.token()).as_str())
    );
    assert!(
        list.header("user-agent")
            .unwrap()
            .starts_with("webops-client/")
    );
    assert_eq!(list.header("accept"), Some("application/json"));
    let dbs = &requests_to(&mock, "GET", "databases/")[0];
    assert_eq!(dbs.header("user-agent"), Some("ops-bot/2.0"));
    assert!(dbs.header("authorization").is_some());
}

#[tokio::test]
async fn a_trailing_slash_on_the_base_url_is_tolerated() {
    let mock = MockWebOps::start().await;
    let client = common::builder(&mock)
        .base_url(format!("{}/", mock.base_url()))
        .build()
        .unwrap();
    client.status().await.unwrap();
    assert_eq!(hits(&mock, "GET", "status/"), 1);
}

#[tokio::test]
async fn list_applies_each_filter_with_the_contract_names() {
    let mock = seeded().await;
    let client = client(&mock);
    let list = |filter: DeploymentFilter| {
        let client = client.clone();
        async move { client.list_deployments(&filter).await.unwrap() }
    };

    let all = list(DeploymentFilter::new()).await;
    assert_eq!(
        names(&all.items),
        BTreeSet::from(["shop", "shop-api", "shop-api-v2", "blog"])
    );
    assert_eq!(all.pagination.total, 4);

    let running = list(DeploymentFilter::new().status(DeploymentStatus::Running)).await;
    assert_eq!(names(&running.items), BTreeSet::from(["shop", "shop-api"]));
    let failed = list(DeploymentFilter::new().status(DeploymentStatus::Failed)).await;
    assert_eq!(names(&failed.items), BTreeSet::from(["blog"]));

    let staging = list(DeploymentFilter::new().environment(Environment::Staging)).await;
    assert_eq!(names(&staging.items), BTreeSet::from(["shop-api"]));

    let node = list(DeploymentFilter::new().project_type("nodejs")).await;
    assert_eq!(names(&node.items), BTreeSet::from(["shop-api-v2"]));

    let search = list(DeploymentFilter::new().search("shop-api")).await;
    assert_eq!(
        names(&search.items),
        BTreeSet::from(["shop-api", "shop-api-v2"])
    );

    let combined = list(
        DeploymentFilter::new()
            .environment(Environment::Production)
            .status(DeploymentStatus::Running),
    )
    .await;
    assert_eq!(names(&combined.items), BTreeSet::from(["shop"]));

    let page2 = list(DeploymentFilter::new().per_page(3).page(2)).await;
    assert_eq!(page2.items.len(), 1);
    assert_eq!(page2.pagination.page, 2);
    assert_eq!(page2.pagination.per_page, 3);
    assert_eq!(page2.pagination.total, 4);
    assert_eq!(page2.pagination.total_pages, 2);

    let queries: Vec<String> = requests_to(&mock, "GET", "deployments/")
        .into_iter()
        .map(|r| r.query.unwrap_or_default())
        .collect();
    for expected in [
        "status=running",
        "status=failed",
        "environment=staging",
        "project_type=nodejs",
        "search=shop-api",
        "per_page=3",
        "page=2",
    ] {
        assert!(
            queries
                .iter()
                .any(|q| q.split('&').any(|kv| kv == expected)),
            "{expected} not in {queries:?}"
        );
    }
    assert_eq!(queries[0], "", "an empty filter sends no query");
}

#[tokio::test]
async fn list_all_walks_every_page() {
    let mock = MockWebOps::builder()
        .generated_deployments(250)
        .start()
        .await
        .unwrap();
    let client = client(&mock);

    let all = client
        .list_all_deployments(&DeploymentFilter::new(), None)
        .await
        .unwrap();
    assert_eq!(all.len(), 250);
    let ids: BTreeSet<i64> = all.iter().map(|d| d.id).collect();
    assert_eq!(ids.len(), 250, "no deployment twice");
    let sent = requests_to(&mock, "GET", "deployments/");
    assert_eq!(sent.len(), 3);
    for (n, request) in sent.iter().enumerate() {
        let query = request.query.clone().unwrap_or_default();
        assert!(query.contains("per_page=100"), "{query}");
        assert!(query.contains(&format!("page={}", n + 1)), "{query}");
    }

    mock.clear_requests();
    let some = client
        .list_all_deployments(&DeploymentFilter::new(), Some(120))
        .await
        .unwrap();
    assert_eq!(some.len(), 120);
    assert_eq!(hits(&mock, "GET", "deployments/"), 2);
}

#[tokio::test]
async fn find_matches_names_exactly_and_resolve_turns_names_into_ids() {
    let mock = seeded().await;
    let client = client(&mock);

    let found = client.find_deployment("shop-api").await.unwrap().unwrap();
    assert_eq!(found.name, "shop-api");
    let shop = client.find_deployment("shop").await.unwrap().unwrap();
    assert_eq!(shop.name, "shop", "not shop-api or shop-api-v2");
    // "shop-ap" is a substring of two names but the name of none.
    assert!(client.find_deployment("shop-ap").await.unwrap().is_none());
    assert!(client.find_deployment("nothing").await.unwrap().is_none());

    let id = client
        .resolve(&DeploymentRef::from("shop-api"))
        .await
        .unwrap();
    assert_eq!(id, found.id);
    assert_eq!(
        client.resolve(&DeploymentRef::from("42")).await.unwrap(),
        42
    );

    let missing = client
        .resolve(&DeploymentRef::from("ghost-app"))
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    assert!(missing.message().contains("ghost-app"), "{missing}");
}

#[tokio::test]
async fn get_returns_the_detail_view() {
    let mock = seeded().await;
    let client = client(&mock);
    let id = id_of(&client, "shop-api").await;

    let detail = client.get_deployment(id).await.unwrap();
    assert_eq!(detail.id, id);
    assert_eq!(detail.name, "shop-api");
    assert_eq!(detail.status, DeploymentStatus::Running);
    assert_eq!(detail.environment, Environment::Staging);
    assert_eq!(detail.project_type, "python");
    assert_eq!(detail.env_vars.get("SECRET_KEY"), Some("not-a-real-secret"));
    assert!(detail.health.checks.is_some());
    assert!(!format!("{detail:?}").contains("not-a-real-secret"));
    assert_eq!(hits(&mock, "GET", &format!("deployments/{id}/")), 1);
}

#[tokio::test]
async fn create_without_a_key_sends_the_body_and_runs_the_lifecycle() {
    let mock = MockWebOps::start().await;
    let client = client(&mock);
    let new = NewDeployment::new("todo-app", "https://github.com/example/todo.git")
        .branch("develop")
        .environment(Environment::Staging)
        .python_version("3.12")
        .database_type(DatabaseType::Postgresql)
        .memory_limit("512M")
        .env_vars([("DEBUG", "False")].into_iter().collect());

    let created = client.create_deployment(&new, None).await.unwrap();
    assert_eq!(created.name, "todo-app");
    assert_eq!(created.status, DeploymentStatus::Pending);
    assert_eq!(mock.deployment_count(), 1);

    let sent = &requests_to(&mock, "POST", "deployments/")[0];
    assert!(sent.header("idempotency-key").is_none());
    assert_eq!(sent.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(body["name"], "todo-app");
    assert_eq!(body["repo_url"], "https://github.com/example/todo.git");
    assert_eq!(body["branch"], "develop");
    assert_eq!(body["environment"], "staging");
    assert_eq!(body["python_version"], "3.12");
    assert_eq!(body["database_type"], "postgresql");
    assert_eq!(body["memory_limit"], "512M");
    assert_eq!(body["env_vars"]["DEBUG"], "False");
    assert!(body.get("domain").is_none(), "unset fields are left out");

    let running = wait_for(&client, created.id, DeploymentStatus::Running).await;
    assert_eq!(running.branch, "develop");
    assert_eq!(running.python_version.as_deref(), Some("3.12"));
    let log = client
        .logs(created.id, &LogQuery::new().log_type(LogType::Deployment))
        .await
        .unwrap();
    assert!(
        !log.logs.is_empty(),
        "the lifecycle writes deployment lines"
    );
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_deployment() {
    let mock = MockWebOps::start().await;
    let client = client(&mock);
    let new = NewDeployment::new("once", "https://github.com/example/once.git");

    let first = client
        .create_deployment(&new, Some("key-123".into()))
        .await
        .unwrap();
    let second = client
        .create_deployment(&new, Some("key-123".into()))
        .await
        .unwrap();
    assert_eq!(first.id, second.id);
    assert_eq!(mock.deployment_count(), 1);
    let sent = requests_to(&mock, "POST", "deployments/");
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter()
            .all(|r| r.header("idempotency-key") == Some("key-123"))
    );

    let bad = client
        .create_deployment(&new, Some("bad\nkey".into()))
        .await
        .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::Validation);
    assert_eq!(mock.requests().len(), 2, "an invalid key is never sent");
}

#[tokio::test]
async fn update_changes_branch_domain_and_env_vars() {
    let mock = seeded().await;
    let client = client(&mock);
    let id = id_of(&client, "shop").await;

    let update = DeploymentUpdate::new()
        .branch("release")
        .domain("shop.example.com")
        .env_vars([("FEATURE_X", "on")].into_iter().collect());
    let updated = client.update_deployment(id, &update).await.unwrap();
    assert_eq!(updated.branch, "release");
    assert_eq!(updated.domain.as_deref(), Some("shop.example.com"));
    assert_eq!(updated.env_vars.get("FEATURE_X"), Some("on"));

    let sent = &requests_to(&mock, "PUT", &format!("deployments/{id}/"))[0];
    let body: serde_json::Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"branch": "release", "domain": "shop.example.com",
                           "env_vars": {"FEATURE_X": "on"}})
    );
    assert_eq!(client.get_deployment(id).await.unwrap().branch, "release");
}

#[tokio::test]
async fn delete_removes_the_deployment() {
    let mock = seeded().await;
    let client = client(&mock);
    let id = id_of(&client, "blog").await;

    let deleted = client.delete_deployment(id).await.unwrap();
    assert_eq!(deleted.id, id);
    assert!(deleted.deleted);
    assert_eq!(mock.deployment_count(), 3);
    let gone = client.get_deployment(id).await.unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::NotFound);
    assert_eq!(gone.status(), Some(404));
    assert_eq!(gone.code(), Some("RESOURCE_NOT_FOUND"));
}

#[tokio::test]
async fn start_stop_restart_redeploy_and_scale() {
    let mock = seeded().await;
    let client = client(&mock);
    let id = id_of(&client, "shop").await;

    let stopped = client.stop(id).await.unwrap();
    assert_eq!(
        (stopped.id, stopped.status.clone()),
        (id, DeploymentStatus::Stopped)
    );
    assert_eq!(
        client.get_deployment(id).await.unwrap().status,
        DeploymentStatus::Stopped
    );

    let started = client.start(id).await.unwrap();
    assert_eq!(started.status, DeploymentStatus::Running);

    let restarted = client.restart(id).await.unwrap();
    assert_eq!(restarted.status, DeploymentStatus::Running);

    let scaled = client.scale(id, 4).await.unwrap();
    assert_eq!((scaled.id, scaled.instances), (id, 4));
    assert_eq!(client.get_deployment(id).await.unwrap().instances, 4);
    let sent = &requests_to(&mock, "POST", &format!("deployments/{id}/scale/"))[0];
    let body: serde_json::Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(body, serde_json::json!({"instances": 4}));

    let redeployed = client.redeploy(id).await.unwrap();
    assert_ne!(redeployed.status, DeploymentStatus::Stopped);
    wait_for(&client, id, DeploymentStatus::Running).await;

    for verb in ["stop", "start", "restart", "scale", "redeploy"] {
        assert_eq!(
            hits(&mock, "POST", &format!("deployments/{id}/{verb}/")),
            1,
            "{verb}"
        );
    }
}

#[tokio::test]
async fn logs_honour_type_lines_level_and_since() {
    let mock = seeded().await;
    let client = client(&mock);
    let id = id_of(&client, "shop-api").await;
    let logs = |query: LogQuery| {
        let client = client.clone();
        async move { client.logs(id, &query).await.unwrap() }
    };

    let app = logs(LogQuery::new()).await;
    let messages: Vec<&str> = app.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "worker started",
            "payment gateway timed out",
            "request served"
        ]
    );

    let access = logs(LogQuery::new().log_type(LogType::Access)).await;
    assert_eq!(access.logs.len(), 1);
    assert_eq!(access.logs[0].message, "GET /health 200");

    let newest = logs(LogQuery::new().lines(2)).await;
    let messages: Vec<&str> = newest.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(messages, ["payment gateway timed out", "request served"]);

    let errors = logs(LogQuery::new().level(LogLevel::Error)).await;
    assert_eq!(errors.logs.len(), 1);
    assert_eq!(errors.logs[0].level, LogLevel::Error);

    let future = Utc::now() + chrono::Duration::hours(1);
    assert!(logs(LogQuery::new().since(future)).await.logs.is_empty());
    let past = Utc::now() - chrono::Duration::days(3650);
    assert_eq!(logs(LogQuery::new().since(past)).await.logs.len(), 3);

    let queries: Vec<String> = requests_to(&mock, "GET", &format!("deployments/{id}/logs/"))
        .into_iter()
        .map(|r| r.query.unwrap_or_default())
        .collect();
    assert_eq!(queries[0], "");
    assert_eq!(queries[1], "type=access");
    assert_eq!(queries[2], "lines=2");
    assert_eq!(queries[3], "level=error");
    assert!(queries[4].starts_with("since="), "{}", queries[4]);
}

#[tokio::test]
async fn databases_are_listed_with_their_extension_fields() {
    let mock = seeded().await;
    let client = client(&mock);
    let dbs = client.databases().await.unwrap();
    let db = dbs.iter().find(|d| d.name == "shop-db").unwrap();
    assert_eq!(db.engine, DatabaseType::Postgresql);
    assert_eq!(db.publicly_accessible, Some(true));
    assert_eq!(db.ssl_required, Some(false));
    assert_eq!(db.deployment.as_ref().unwrap().name, "shop");
}

#[tokio::test]
async fn system_health_counts_the_deployments() {
    let mock = seeded().await;
    let client = client(&mock);
    let health = client.system_health().await.unwrap();
    assert_eq!(health.deployments.total, 4);
    assert_eq!(health.deployments.running, 2);
    assert_eq!(health.deployments.stopped, 1);
    assert_eq!(health.deployments.failed, 1);
    assert!(!health.services.is_empty());
    assert!(matches!(
        health.overall_status,
        OverallStatus::Healthy | OverallStatus::Degraded | OverallStatus::Unhealthy
    ));
}

#[tokio::test]
async fn metrics_for_a_period_and_a_deployment() {
    let mock = seeded().await;
    let client = client(&mock);
    let id = id_of(&client, "shop").await;

    let day = client.metrics(MetricsPeriod::Day, None).await.unwrap();
    assert_eq!(day.period, MetricsPeriod::Day);
    assert!(!day.points.is_empty());
    let hour = client.metrics(MetricsPeriod::Hour, Some(id)).await.unwrap();
    assert_eq!(hour.period, MetricsPeriod::Hour);
    assert!(!hour.points.is_empty());

    let queries: Vec<String> = requests_to(&mock, "GET", "monitoring/metrics/")
        .into_iter()
        .map(|r| r.query.unwrap_or_default())
        .collect();
    assert_eq!(queries[0], "period=24h");
    assert_eq!(queries[1], format!("period=1h&deployment_id={id}"));
}

#[tokio::test]
async fn one_client_serves_many_tasks_at_once() {
    let mock = seeded().await;
    let client = client(&mock);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.list_deployments(&DeploymentFilter::new()).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().items.len(), 4);
    }
    assert_eq!(hits(&mock, "GET", "deployments/"), 16);
}
