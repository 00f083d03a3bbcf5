//! The control panel backend against the testkit's mock of the shipped panel over loopback
//! HTTP: login and CSRF, the request budget, the cache, re-login, and an honest error for
//! everything the panel cannot do.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use webops_client::*;
use webops_mcp_testkit::{
    MockPanel, PANEL_2FA_PASSWORD, PANEL_2FA_USER, PANEL_PASSWORD, PANEL_USER, PanelSeed,
};

async fn demo() -> MockPanel {
    MockPanel::builder()
        .seed(PanelSeed::Demo)
        .start()
        .await
        .unwrap()
}

fn client(mock: &MockPanel, flavor: Flavor, password: &str) -> AnyClient {
    Client::builder()
        .base_url(mock.base_url())
        .flavor(flavor)
        .credentials(PANEL_USER, password)
        .max_retries(0)
        .build_any()
        .unwrap()
}

/// `METHOD path` of every request the mock saw.
fn seen(mock: &MockPanel) -> Vec<String> {
    mock.requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

async fn id_of(api: &AnyClient, name: &str) -> i64 {
    api.find_deployment(name).await.unwrap().unwrap().id
}

#[tokio::test]
async fn auto_probes_once_logs_in_and_lists() {
    let mock = demo().await;
    let api = client(&mock, Flavor::Auto, PANEL_PASSWORD);
    assert!(api.flavor_in_use().is_none());
    let page = api
        .list_deployments(&DeploymentFilter::new())
        .await
        .unwrap();
    let names: Vec<&str> = page.items.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["shop", "api-worker", "blog"]);
    assert!(
        page.items
            .iter()
            .all(|d| d.environment.as_str() == NO_ENVIRONMENT)
    );
    let (flavor, why) = api.flavor_in_use().unwrap();
    assert_eq!(flavor, ApiFlavor::Panel);
    assert!(why.contains("GET /api/status/"), "{why}");
    assert_eq!(
        seen(&mock),
        [
            "GET /api/v1/status/",
            "GET /api/status/",
            "GET /auth/login/",
            "POST /auth/login/",
            "GET /api/deployments/",
        ]
    );
    // The login form and every later request carry what Django's CSRF check needs.
    let requests = mock.requests();
    let login = &requests[3];
    assert!(login.body.contains("remember_me=on"), "{}", login.body);
    assert!(login.header("referer").is_some());
    // Warm: served from the cache, no request at all.
    api.list_deployments(&DeploymentFilter::new().status(DeploymentStatus::Running))
        .await
        .unwrap();
    assert_eq!(mock.requests().len(), 5);
    let capabilities = api.capabilities().await.unwrap();
    assert_eq!(capabilities.flavor, ApiFlavor::Panel);
    assert!(!capabilities.environments && !capabilities.scaling);
    assert_eq!(mock.requests().len(), 5);
}

#[tokio::test]
async fn details_logs_and_databases_in_the_crate_shapes() {
    let mock = demo().await;
    let api = client(&mock, Flavor::Panel, PANEL_PASSWORD);
    let id = id_of(&api, "blog").await;
    let detail = api.get_deployment(id).await.unwrap();
    assert_eq!(detail.name, "blog");
    assert_eq!(detail.env_vars.get("DEBUG"), Some("True"));
    assert_eq!(detail.env_vars.get("WORKERS"), Some("2"));
    assert!(
        seen(&mock).contains(&"GET /api/deployments/blog/".to_owned()),
        "{:?}",
        seen(&mock)
    );

    // The panel answers oldest first and `tail` takes the oldest: the client cuts the newest.
    let all = api
        .logs(id, &LogQuery::new().log_type(LogType::Deployment))
        .await
        .unwrap();
    let two = api
        .logs(id, &LogQuery::new().log_type(LogType::Deployment).lines(2))
        .await
        .unwrap();
    assert_eq!(two.logs.len(), 2);
    assert_eq!(two.logs, all.logs[all.logs.len() - 2..]);
    assert!(two.logs[0].timestamp <= two.logs[1].timestamp);
    let errors = api
        .logs(
            id_of(&api, "api-worker").await,
            &LogQuery::new().log_type(LogType::Error),
        )
        .await
        .unwrap();
    assert!(!errors.logs.is_empty());
    assert!(errors.logs.iter().all(|e| e.level == LogLevel::Error));
    let error = api
        .logs(id, &LogQuery::new().log_type(LogType::Application))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert!(
        error.message().contains("deployment"),
        "{}",
        error.message()
    );

    let env = api.repo_env(id).await.unwrap();
    assert!(env.get("SECRET_KEY").is_some());
    let checks = api.project_checks(id).await.unwrap();
    assert!(checks.iter().any(|c| c.security_risk), "{checks:?}");
    let databases = api.databases().await.unwrap();
    assert_eq!(databases.len(), 2);
    let health = api.system_health().await.unwrap();
    assert!(health.services.contains_key("background worker (celery)"));
    let metrics = api.metrics(MetricsPeriod::Day, None).await.unwrap();
    assert!(
        metrics
            .points
            .windows(2)
            .all(|w| w[0].timestamp <= w[1].timestamp)
    );
}

#[tokio::test]
async fn what_the_panel_cannot_do_is_an_honest_error() {
    let mock = demo().await;
    let api = client(&mock, Flavor::Panel, PANEL_PASSWORD);
    let id = id_of(&api, "blog").await;

    let error = api
        .list_deployments(&DeploymentFilter::new().environment(Environment::Production))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert!(error.message().contains("no environments"));
    assert_eq!(
        api.scale(id, 2).await.unwrap_err().kind(),
        ErrorKind::Unsupported
    );

    // stop answers a 500 traceback: the error says nothing changed and quotes the panel.
    let before = mock.requests().len();
    let error = api.stop(id).await.unwrap_err();
    assert_eq!(error.code(), Some("ACTION_FAILED"));
    assert!(
        error.message().contains("did not happen"),
        "{}",
        error.message()
    );
    assert!(
        error.message().contains("still running"),
        "{}",
        error.message()
    );
    let quoted = error.upstream_text().unwrap();
    assert!(
        quoted.contains("ValueError") && !quoted.contains('\n'),
        "{quoted}"
    );
    assert_eq!(mock.deployment_status("blog").as_deref(), Some("running"));
    // The stop itself (never retried) and one read to check the status.
    assert_eq!(mock.requests().len() - before, 2);

    let started = api.start(id_of(&api, "shop").await).await.unwrap();
    assert_eq!(started.status, DeploymentStatus::Running);

    // Options the panel cannot honour are refused by name before anything is sent.
    let before = mock.requests().len();
    let new =
        NewDeployment::new("fresh", "https://example.com/a.git").environment(Environment::Staging);
    let error = api.create_deployment(&new, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert!(error.message().contains("environment"));
    let error = api
        .create_deployment(
            &NewDeployment::new("x/y", "https://example.com/a.git"),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Validation);
    assert_eq!(mock.requests().len(), before);
}

#[tokio::test]
async fn create_then_delete_is_only_requested() {
    let mock = demo().await;
    let api = client(&mock, Flavor::Panel, PANEL_PASSWORD);
    let new = NewDeployment::new("fresh", "https://example.com/acme/fresh.git").branch("main");
    let created = api
        .create_deployment(&new, Some("key".into()))
        .await
        .unwrap();
    assert_eq!(created.name, "fresh");
    let creates = mock
        .requests()
        .iter()
        .filter(|r| r.path == "/api/deployments/create/")
        .count();
    assert_eq!(creates, 1);
    // The new deployment is found at once: the create emptied the cache.
    assert_eq!(id_of(&api, "fresh").await, created.id);
    let again = api.create_deployment(&new, None).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Conflict);

    let deleted = api.delete_deployment(created.id).await.unwrap();
    assert!(!deleted.deleted, "the panel only queues a delete");
    assert_eq!(mock.is_deleted("fresh"), Some(true));
    // The panel keeps listing it.
    assert!(api.find_deployment("fresh").await.unwrap().is_some());
}

#[tokio::test]
async fn login_failures_say_exactly_what_is_wrong() {
    let mock = demo().await;
    let api = client(&mock, Flavor::Panel, "not-the-password");
    let error = api
        .list_deployments(&DeploymentFilter::new())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
    assert_eq!(error.code(), Some("PANEL_LOGIN"));
    assert!(
        error.message().contains("wrong user name or password"),
        "{}",
        error.message()
    );
    assert!(!error.message().contains("not-the-password"));
    assert_eq!(seen(&mock), ["GET /auth/login/", "POST /auth/login/"]);
    // Asked again at once: the same clear error, and the panel is not asked again.
    let again = api.databases().await.unwrap_err();
    assert!(
        again.message().contains("wrong user name or password"),
        "{}",
        again.message()
    );
    assert!(
        again.message().contains("from a login attempt"),
        "{}",
        again.message()
    );
    assert_eq!(mock.requests().len(), 2);

    let two_factor = Client::builder()
        .base_url(mock.base_url())
        .flavor(Flavor::Panel)
        .credentials(PANEL_2FA_USER, PANEL_2FA_PASSWORD)
        .build_any()
        .unwrap();
    let error = two_factor.databases().await.unwrap_err();
    assert!(
        error.message().contains("two-factor"),
        "{}",
        error.message()
    );

    let nobody = Client::builder()
        .base_url(mock.base_url())
        .flavor(Flavor::Panel)
        .build_any()
        .unwrap();
    let error = nobody.databases().await.unwrap_err();
    assert!(
        error.message().contains("WEBOPS_USERNAME"),
        "{}",
        error.message()
    );
    let shown = format!("{:?}", client(&mock, Flavor::Panel, "hunter2-secret"));
    assert!(!shown.contains("hunter2-secret"), "{shown}");
}

#[tokio::test]
async fn an_ended_session_is_renewed_once_by_one_login() {
    let mock = demo().await;
    let api = Arc::new(client(&mock, Flavor::Panel, PANEL_PASSWORD));
    // Many calls at once: one login.
    let calls = (0..6).map(|_| {
        let api = api.clone();
        tokio::spawn(async move { api.databases().await })
    });
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let logins = |mock: &MockPanel| {
        mock.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/auth/login/")
            .count()
    };
    assert_eq!(logins(&mock), 1);
    mock.end_sessions();
    api.databases().await.unwrap();
    assert_eq!(logins(&mock), 2);
}

#[tokio::test]
async fn the_budget_answers_before_the_panel_would_refuse() {
    let mock = demo().await;
    let api = Client::builder()
        .base_url(mock.base_url())
        .flavor(Flavor::Panel)
        .credentials(PANEL_USER, PANEL_PASSWORD)
        .budget(8, Duration::from_secs(60))
        .build_any()
        .unwrap();
    let mut refused = None;
    for _ in 0..10 {
        if let Err(e) = api.databases().await {
            refused = Some(e);
            break;
        }
    }
    let error = refused.expect("the budget refuses the ninth request");
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert!(
        error
            .message()
            .starts_with("WebOps rate budget exhausted, retry in ")
    );
    assert!(error.retry_after().unwrap() > Duration::from_secs(50));
    // 2 for the login and 6 reads: nothing more reached the panel, and it never said 429.
    assert_eq!(mock.requests().len(), 8);
    assert!(mock.requests().iter().all(|r| r.status != 429));
}

#[tokio::test]
async fn the_default_budget_never_meets_the_panels_429() {
    let mock = demo().await;
    let api = client(&mock, Flavor::Panel, PANEL_PASSWORD);
    let id = id_of(&api, "blog").await;
    let mut budget_refusals = 0;
    for _ in 0..50 {
        match api.get_deployment(id).await {
            Ok(_) => {}
            Err(e) if e.code() == Some("BUDGET_EXHAUSTED") => budget_refusals += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(budget_refusals > 0);
    assert!(mock.requests().iter().all(|r| r.status != 429));
    assert_eq!(mock.requests().len(), 20);
}
