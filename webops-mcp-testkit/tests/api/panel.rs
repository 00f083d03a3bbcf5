//! The panel flavour (`MockPanel`): login, CSRF, sessions, rate limit and the JSON views.

use std::process::Stdio;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, redirect};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use webops_mcp_testkit::{
    MockPanel, PANEL_2FA_PASSWORD, PANEL_2FA_USER, PANEL_PASSWORD, PANEL_USER, PanelBuilder,
    PanelSeed,
};

use crate::common::{Answer, answer};

/// The cookies a client holds.
#[derive(Debug, Clone, Default)]
struct Jar {
    csrftoken: Option<String>,
    sessionid: Option<String>,
}

impl Jar {
    fn header(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = &self.csrftoken {
            parts.push(format!("csrftoken={t}"));
        }
        if let Some(s) = &self.sessionid {
            parts.push(format!("sessionid={s}"));
        }
        parts.join("; ")
    }

    /// Takes the `Set-Cookie`s of an answer.
    fn update(&mut self, headers: &HeaderMap) {
        for (name, value) in set_cookies(headers) {
            match name.as_str() {
                "csrftoken" => self.csrftoken = Some(value),
                "sessionid" => self.sessionid = Some(value),
                _ => {}
            }
        }
    }
}

/// `(name, value)` of every `Set-Cookie`.
fn set_cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| {
            let first = v.to_str().ok()?.split(';').next()?;
            let (n, v) = first.split_once('=')?;
            Some((n.to_owned(), v.to_owned()))
        })
        .collect()
}

/// The full `Set-Cookie` line of cookie `name`.
fn set_cookie_line(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_default()
        .to_owned()
}

struct Panel {
    mock: MockPanel,
    http: reqwest::Client,
}

impl Panel {
    /// The demo panel without a rate limit.
    async fn demo() -> Panel {
        Panel::with(MockPanel::builder().seed(PanelSeed::Demo).rate_limit(None)).await
    }

    async fn with(builder: PanelBuilder) -> Panel {
        Panel {
            mock: builder.start().await.unwrap(),
            http: reqwest::Client::builder()
                .redirect(redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.mock.base_url())
    }

    /// Sends a request with the jar's cookies, `Accept: application/json`, and on unsafe
    /// methods `X-CSRFToken` from the jar; a JSON body if given.
    async fn send(&self, method: Method, path: &str, jar: &Jar, body: Option<Value>) -> Answer {
        let unsafe_method = !matches!(method, Method::GET | Method::HEAD);
        let mut request = self
            .http
            .request(method, self.url(path))
            .header("accept", "application/json")
            .header("cookie", jar.header());
        if unsafe_method && let Some(t) = &jar.csrftoken {
            request = request.header("x-csrftoken", t);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request).await
    }

    async fn get(&self, path: &str, jar: &Jar) -> Answer {
        self.send(Method::GET, path, jar, None).await
    }

    /// `GET /auth/login/`: a jar holding the fresh `csrftoken`.
    async fn login_page(&self) -> (Answer, Jar) {
        let page = answer(self.http.get(self.url("/auth/login/"))).await;
        let mut jar = Jar::default();
        jar.update(&page.headers);
        (page, jar)
    }

    /// `POST /auth/login/` with the jar's token in the form.
    async fn post_login(&self, jar: &Jar, user: &str, password: &str) -> Answer {
        let token = jar.csrftoken.clone().unwrap_or_default();
        let body = format!(
            "csrfmiddlewaretoken={token}&username={user}&password={password}&remember_me=on"
        );
        answer(
            self.http
                .post(self.url("/auth/login/"))
                .header("cookie", jar.header())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }

    /// Logs in; returns the jar after the login.
    async fn login(&self, user: &str, password: &str) -> Jar {
        let (_, mut jar) = self.login_page().await;
        let answer = self.post_login(&jar, user, password).await;
        assert_eq!(answer.status, 302, "{}", answer.text);
        jar.update(&answer.headers);
        jar
    }

    async fn alice(&self) -> Jar {
        self.login(PANEL_USER, PANEL_PASSWORD).await
    }
}

fn names(list: &Value) -> Vec<&str> {
    list["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn login_sets_a_session_and_rotates_the_csrf_token() {
    let panel = Panel::demo().await;
    let (page, jar) = panel.login_page().await;
    assert_eq!(page.status, 200);
    let t1 = jar.csrftoken.clone().unwrap();
    assert_eq!(t1.len(), 32);
    assert!(set_cookie_line(&page.headers, "csrftoken").contains("Max-Age=31449600; Path=/"));
    assert!(page.text.contains("name=\"csrfmiddlewaretoken\""));

    let login = panel.post_login(&jar, PANEL_USER, PANEL_PASSWORD).await;
    assert_eq!(login.status, 302);
    assert_eq!(login.header("location"), Some("/"));
    let session = set_cookie_line(&login.headers, "sessionid");
    assert!(
        session.contains("HttpOnly") && session.contains("Max-Age=1209600"),
        "{session}"
    );
    let mut after = jar.clone();
    after.update(&login.headers);
    let t2 = after.csrftoken.clone().unwrap();
    assert_eq!(t2.len(), 32);
    assert_ne!(t1, t2, "login rotates csrftoken");

    let list = panel.get("/api/deployments/", &after).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(names(&list.json), ["shop", "api-worker", "blog"]);
    assert_eq!(
        list.json["pagination"],
        json!({"page": 1, "per_page": 20, "total": 3, "pages": 1})
    );

    // The pre-login token no longer passes once the cookie is t2.
    let mut stale = after.clone();
    let mut request = panel
        .http
        .post(panel.url("/api/deployments/blog/start/"))
        .header("cookie", stale.header())
        .header("x-csrftoken", &t1);
    let old = answer(request).await;
    assert_eq!(old.status, 403);
    stale.csrftoken = Some(t2);
    request = panel
        .http
        .post(panel.url("/api/deployments/blog/start/"))
        .header("cookie", stale.header())
        .header("x-csrftoken", stale.csrftoken.clone().unwrap());
    assert_eq!(answer(request).await.status, 200);
}

#[tokio::test]
async fn login_next_wrong_password_and_missing_csrf() {
    let panel = Panel::demo().await;
    let (_, jar) = panel.login_page().await;
    let wrong = panel.post_login(&jar, PANEL_USER, "nope").await;
    assert_eq!(wrong.status, 200);
    assert!(wrong.text.contains("<form"));
    assert!(
        set_cookies(&wrong.headers)
            .iter()
            .all(|(n, _)| n != "sessionid")
    );

    let no_csrf = answer(
        panel
            .http
            .post(panel.url("/auth/login/"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("username={PANEL_USER}&password={PANEL_PASSWORD}")),
    )
    .await;
    assert_eq!(no_csrf.status, 403);
    assert!(no_csrf.text.contains("CSRF verification failed"));

    let token = jar.csrftoken.clone().unwrap();
    let next = answer(
        panel
            .http
            .post(panel.url("/auth/login/?next=/api/deployments/"))
            .header("cookie", jar.header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "csrfmiddlewaretoken={token}&username={PANEL_USER}&password={PANEL_PASSWORD}"
            )),
    )
    .await;
    assert_eq!(next.status, 302);
    assert_eq!(next.header("location"), Some("/api/deployments/"));
    // Without remember_me the session cookie lasts for the browser session.
    assert!(!set_cookie_line(&next.headers, "sessionid").contains("Max-Age"));
}

#[tokio::test]
async fn anonymous_gets_redirect_and_bearer_tokens_are_ignored() {
    let panel = Panel::demo().await;
    let anon = answer(
        panel
            .http
            .get(panel.url("/api/deployments/?page=2"))
            .bearer_auth("some-token"),
    )
    .await;
    assert_eq!(anon.status, 302);
    assert_eq!(
        anon.header("location"),
        Some("/auth/login/?next=/api/deployments/%3Fpage%3D2")
    );
    assert!(anon.text.is_empty());
    let post = answer(
        panel
            .http
            .post(panel.url("/api/deployments/create/"))
            .bearer_auth("some-token")
            .json(&json!({"name": "x", "repo_url": "https://github.com/a/x"})),
    )
    .await;
    assert_eq!(post.status, 403);
    assert!(post.text.contains("CSRF verification failed"));
    // The status endpoint needs nothing.
    let status = panel.get("/api/status/", &Jar::default()).await;
    assert_eq!(status.status, 200);
    assert_eq!(status.json["status"], "ok");
}

#[tokio::test]
async fn unsafe_requests_need_the_csrf_header_and_no_foreign_origin() {
    let panel = Panel::demo().await;
    let jar = panel.alice().await;
    let no_header = answer(
        panel
            .http
            .post(panel.url("/api/deployments/blog/start/"))
            .header("cookie", jar.header()),
    )
    .await;
    assert_eq!(no_header.status, 403);
    assert!(no_header.text.contains("CSRF verification failed"));

    let foreign = answer(
        panel
            .http
            .post(panel.url("/api/deployments/blog/start/"))
            .header("cookie", jar.header())
            .header("x-csrftoken", jar.csrftoken.clone().unwrap())
            .header("origin", "http://evil.example"),
    )
    .await;
    assert_eq!(foreign.status, 403);

    let own = answer(
        panel
            .http
            .post(panel.url("/api/deployments/api-worker/start/"))
            .header("cookie", jar.header())
            .header("x-csrftoken", jar.csrftoken.clone().unwrap())
            .header("origin", panel.mock.base_url()),
    )
    .await;
    assert_eq!(own.status, 200, "{}", own.text);
    assert_eq!(
        own.json,
        json!({"message": "Deployment api-worker started", "status": "running"})
    );
    assert_eq!(
        panel.mock.deployment_status("api-worker").as_deref(),
        Some("running")
    );
    let recorded = panel.mock.requests();
    let last = recorded.last().unwrap();
    assert_eq!(last.path, "/api/deployments/api-worker/start/");
    assert_eq!(last.status, 200);
    assert!(last.header("x-csrftoken").is_some());
}

#[tokio::test]
async fn the_21st_request_in_a_window_gets_429_with_retry_after() {
    let panel = Panel::with(MockPanel::builder().seed(PanelSeed::Demo)).await;
    let jar = panel.alice().await; // two requests
    for i in 0..18 {
        let ok = panel.get("/api/deployments/", &jar).await;
        assert_eq!(ok.status, 200, "request {}", i + 3);
    }
    let limited = panel.get("/api/deployments/", &jar).await;
    assert_eq!(limited.status, 429);
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(limited.json["error"], "Global rate limit exceeded");
    assert_eq!(
        limited.json["message"],
        "Too many requests from this IP address"
    );
    assert_eq!(limited.json["retry_after"], retry);
    // Rejected requests do not count; HTML outside /api/ for a browser.
    let page = answer(
        panel
            .http
            .get(panel.url("/auth/login/"))
            .header("accept", "text/html"),
    )
    .await;
    assert_eq!(page.status, 429);
    assert!(page.text.contains("Rate Limit Exceeded"));
    // /static/ is exempt; another X-Forwarded-For is another client.
    let assets = answer(panel.http.get(panel.url("/static/app.css"))).await;
    assert_eq!(assets.status, 404);
    let other = answer(
        panel
            .http
            .get(panel.url("/api/status/"))
            .header("x-forwarded-for", "203.0.113.7, 10.0.0.1"),
    )
    .await;
    assert_eq!(other.status, 200);
}

#[tokio::test]
async fn delete_is_soft_and_the_name_stays_taken() {
    let panel = Panel::demo().await;
    let jar = panel.alice().await;
    let wrong = panel
        .send(Method::POST, "/api/deployments/shop/delete/", &jar, None)
        .await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("DELETE"));
    assert!(wrong.text.is_empty());

    let deleted = panel
        .send(Method::DELETE, "/api/deployments/shop/delete/", &jar, None)
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(
        deleted.json,
        json!({"message": "Deployment shop delete queued"})
    );
    assert_eq!(panel.mock.is_deleted("shop"), Some(true));

    let list = panel.get("/api/deployments/", &jar).await;
    let shop = list.json["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "shop")
        .unwrap();
    assert_eq!(shop["status"], "pending");
    assert!(shop.get("is_deleted").is_none());
    assert_eq!(panel.get("/api/deployments/shop/", &jar).await.status, 200);

    let again = panel
        .send(
            Method::POST,
            "/api/deployments/create/",
            &jar,
            Some(json!({"name": "shop", "repo_url": "https://github.com/alice/shop.git"})),
        )
        .await;
    assert_eq!(again.status, 400);
    assert_eq!(
        again.json,
        json!({"error": "Deployment shop already exists"})
    );
    let second = panel
        .send(Method::DELETE, "/api/deployments/shop/delete/", &jar, None)
        .await;
    assert_eq!(second.status, 200);
}

#[tokio::test]
async fn stop_and_restart_fail_with_a_plain_text_500() {
    let panel = Panel::demo().await;
    let jar = panel.alice().await;
    let stop = panel
        .send(Method::POST, "/api/deployments/blog/stop/", &jar, None)
        .await;
    assert_eq!(stop.status, 500);
    assert!(
        stop.header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(
        stop.text
            .starts_with("ValueError at /api/deployments/blog/stop/\n"),
        "{}",
        stop.text
    );
    assert!(
        stop.text
            .contains("Unknown Celery task: apps.deployments.tasks.stop_deployment")
    );
    let restart = panel
        .send(Method::POST, "/api/deployments/blog/restart/", &jar, None)
        .await;
    assert_eq!(restart.status, 500);
    assert!(
        restart
            .text
            .contains("apps.deployments.tasks.restart_deployment")
    );
    let missing = panel
        .send(Method::POST, "/api/deployments/nope/stop/", &jar, None)
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json, json!({"error": "Deployment nope not found"}));
    assert_eq!(
        panel.mock.deployment_status("blog").as_deref(),
        Some("running")
    );
}

#[tokio::test]
async fn logs_are_oldest_first_and_tail_keeps_the_oldest() {
    let panel = Panel::demo().await;
    let jar = panel.alice().await;
    let all = panel.get("/api/deployments/blog/logs/", &jar).await;
    let logs = all.json["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 5);
    assert_eq!(logs[0]["message"], "Starting deployment process");
    assert_eq!(logs[4]["message"], "Deployment prepared successfully");
    let times: Vec<&str> = logs
        .iter()
        .map(|l| l["created_at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    let tail = panel.get("/api/deployments/blog/logs/?tail=2", &jar).await;
    assert_eq!(tail.json["logs"].as_array().unwrap().as_slice(), &logs[..2]);
    let zero = panel.get("/api/deployments/blog/logs/?tail=0", &jar).await;
    assert_eq!(zero.json, json!({"logs": []}));
    for bad in ["abc", "-1"] {
        let answer = panel
            .get(&format!("/api/deployments/blog/logs/?tail={bad}"), &jar)
            .await;
        assert_eq!(answer.status, 500, "tail={bad}");
    }
}

#[tokio::test]
async fn two_factor_users_go_to_verify_without_a_session() {
    let panel = Panel::demo().await;
    let (_, mut jar) = panel.login_page().await;
    let login = panel
        .post_login(&jar, PANEL_2FA_USER, PANEL_2FA_PASSWORD)
        .await;
    assert_eq!(login.status, 302);
    assert_eq!(login.header("location"), Some("/auth/2fa/verify/"));
    jar.update(&login.headers);
    let list = panel.get("/api/deployments/", &jar).await;
    assert_eq!(list.status, 302);

    assert!(panel.mock.set_two_factor(PANEL_2FA_USER, false));
    let bob = panel.login(PANEL_2FA_USER, PANEL_2FA_PASSWORD).await;
    let list = panel.get("/api/deployments/", &bob).await;
    assert_eq!(names(&list.json), ["bob-site"]);
    // alice's deployments are not bob's.
    let other = panel.get("/api/deployments/blog/", &bob).await;
    assert_eq!(other.status, 404);
    assert_eq!(other.json, json!({"error": "Deployment blog not found"}));
}

#[tokio::test]
async fn logout_ends_only_that_session() {
    let panel = Panel::demo().await;
    let first = panel.alice().await;
    let second = panel.alice().await;
    let out = panel.get("/auth/logout/", &first).await;
    assert_eq!(out.status, 302);
    assert_eq!(out.header("location"), Some("/auth/login/"));
    assert_eq!(panel.get("/api/deployments/", &first).await.status, 302);
    assert_eq!(panel.get("/api/deployments/", &second).await.status, 200);
    panel.mock.end_sessions();
    assert_eq!(panel.get("/api/deployments/", &second).await.status, 302);
}

#[tokio::test]
async fn create_runs_the_deploy_inline() {
    let panel = Panel::demo().await;
    let jar = panel.alice().await;
    let create =
        |body: Value| panel.send(Method::POST, "/api/deployments/create/", &jar, Some(body));
    let made = create(json!({
        "name": "docs", "repo_url": "https://github.com/alice/docs.git",
        "env_vars": {"DEBUG": "False", "N": 1}
    }))
    .await;
    assert_eq!(made.status, 201, "{}", made.text);
    assert_eq!(made.json["status"], "pending");
    assert_eq!(made.json["message"], "Deployment queued successfully");
    let logs = panel.get("/api/deployments/docs/logs/", &jar).await;
    let messages: Vec<&str> = logs.json["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.contains(&"Deployment prepared successfully"),
        "{messages:?}"
    );
    assert!(
        messages
            .last()
            .unwrap()
            .starts_with("Failed to install Nginx config")
    );
    let detail = panel.get("/api/deployments/docs/", &jar).await;
    assert_eq!(detail.json["status"], "pending");
    assert_eq!(detail.json["env_vars"], json!({"DEBUG": "False", "N": 1}));
    assert!(detail.json["port"].is_u64());

    let broken = create(json!({
        "name": "gone", "repo_url": "https://git.unreachable.example/alice/gone.git"
    }))
    .await;
    assert_eq!(broken.status, 201);
    assert_eq!(
        panel.mock.deployment_status("gone").as_deref(),
        Some("failed")
    );
    let logs = panel.get("/api/deployments/gone/logs/", &jar).await;
    assert!(
        logs.json["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["level"] == "error")
    );
    let validate = panel
        .get("/api/deployments/gone/project/validate/", &jar)
        .await;
    assert_eq!(validate.status, 400);
    assert_eq!(
        validate.json["error"],
        "Repository not cloned yet. Deploy first."
    );

    let missing = create(json!({"name": "x"})).await;
    assert_eq!(
        missing.json,
        json!({"error": "Missing required fields: name, repo_url"})
    );
    let form = answer(
        panel
            .http
            .post(panel.url("/api/deployments/create/"))
            .header("cookie", jar.header())
            .header("x-csrftoken", jar.csrftoken.clone().unwrap())
            .header("content-type", "application/x-www-form-urlencoded")
            .body("name=x&repo_url=y"),
    )
    .await;
    assert_eq!(form.status, 400);
    assert_eq!(form.json, json!({"error": "Invalid JSON"}));

    let slash = create(json!({"name": "x/y", "repo_url": "https://github.com/a/b.git"})).await;
    assert_eq!(slash.status, 201);
    let unreachable = panel.get("/api/deployments/x%2Fy/", &jar).await;
    assert_eq!(unreachable.status, 404);
}

#[tokio::test]
async fn slashes_unknown_routes_and_methods() {
    let panel = Panel::demo().await;
    let jar = panel.alice().await;
    let no_slash = panel.get("/api/deployments?page=1", &jar).await;
    assert_eq!(no_slash.status, 301);
    assert_eq!(
        no_slash.header("location"),
        Some("/api/deployments/?page=1")
    );
    let post = panel
        .send(
            Method::POST,
            "/api/deployments/create",
            &jar,
            Some(json!({})),
        )
        .await;
    assert_eq!(post.status, 500);
    assert!(
        post.text
            .starts_with("RuntimeError at /api/deployments/create")
    );
    let unknown = panel.get("/api/v1/deployments/", &jar).await;
    assert_eq!(unknown.status, 404);
    assert!(
        unknown
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let put = panel
        .send(Method::PUT, "/api/deployments/blog/", &jar, None)
        .await;
    assert_eq!(put.status, 405);
    assert_eq!(put.header("allow"), Some("GET"));
}

#[tokio::test]
async fn pagination_and_filters_keep_their_quirks() {
    let panel = Panel::demo().await;
    let jar = panel.alice().await;
    let last = panel
        .get("/api/deployments/?page=99&per_page=1", &jar)
        .await;
    assert_eq!(names(&last.json), ["blog"]);
    assert_eq!(
        last.json["pagination"],
        json!({"page": 99, "per_page": 1, "total": 3, "pages": 3})
    );
    let negative = panel
        .get("/api/deployments/?page=-1&per_page=2", &jar)
        .await;
    assert_eq!(names(&negative.json), ["blog"]);
    for bad in ["per_page=abc", "page=abc", "per_page=0", "per_page=-1"] {
        let answer = panel.get(&format!("/api/deployments/?{bad}"), &jar).await;
        assert_eq!(answer.status, 500, "{bad}");
        assert!(
            answer
                .header("content-type")
                .unwrap()
                .starts_with("text/plain")
        );
    }
    let failed = panel.get("/api/deployments/?status=failed", &jar).await;
    assert_eq!(names(&failed.json), ["api-worker"]);
    let bogus = panel.get("/api/deployments/?status=bogus", &jar).await;
    assert_eq!(bogus.json["deployments"], json!([]));
    assert_eq!(bogus.json["pagination"]["pages"], 1);
}

#[tokio::test]
async fn details_env_and_project_validation_show_secrets() {
    let panel = Panel::demo().await;
    let jar = panel.alice().await;
    let blog = panel.get("/api/deployments/blog/", &jar).await;
    assert_eq!(blog.json["env_vars"]["DEBUG"], "True");
    assert!(blog.json["env_vars"]["SECRET_KEY"].is_string());
    let env = panel.get("/api/deployments/blog/env/", &jar).await;
    assert_eq!(env.json["env_vars"]["SECRET_KEY"], "dotenv-secret-4b1d");
    assert_eq!(env.json["env_vars"]["SITE_NAME"], "Alice writes");
    let none = panel.get("/api/deployments/shop/env/", &jar).await;
    assert_eq!(none.json, json!({"env_vars": {}}));
    let check = panel
        .get("/api/deployments/blog/project/validate/", &jar)
        .await;
    assert_eq!(check.json["success"], true);
    assert!(
        check.json["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["details"]["security_risk"] == true)
    );
}

#[tokio::test]
async fn databases_mask_the_connection_string_only() {
    let panel = Panel::demo().await;
    let jar = panel.alice().await;
    let list = panel.get("/api/databases/", &jar).await;
    assert_eq!(list.json["count"], 2);
    assert!(list.json["databases"][0]["dependency_status"]["all_installed"].is_boolean());
    let db = panel.get("/api/databases/blog-db/", &jar).await;
    assert_eq!(
        db.json["connection_string"],
        "postgresql://blog_user:****@localhost:5432/blog_db"
    );
    assert!(
        db.json["connection_uri"]
            .as_str()
            .unwrap()
            .contains("blog-db-pass")
    );
    assert_eq!(db.json["deployment"]["name"], "blog");
    let missing = panel.get("/api/databases/nope/", &jar).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json, json!({"error": "Database nope not found"}));
}

#[tokio::test]
async fn monitoring_answers_from_stored_samples() {
    let panel = Panel::demo().await;
    let jar = panel.alice().await;
    let current = panel.get("/monitoring/api/metrics/current/", &jar).await;
    let at =
        chrono::DateTime::parse_from_rfc3339(current.json["timestamp"].as_str().unwrap()).unwrap();
    assert!(chrono::Utc::now().signed_duration_since(at) > chrono::Duration::minutes(5));
    assert!(current.json["load_average"]["1m"].is_f64());
    let history = panel
        .get("/monitoring/api/metrics/history/?hours=24", &jar)
        .await;
    let stamps = history.json["timestamps"].as_array().unwrap();
    assert_eq!(stamps.len(), 2);
    assert!(stamps[0].as_str() > stamps[1].as_str(), "newest first");
    assert_eq!(stamps[0], current.json["timestamp"]);
    assert_eq!(history.json["cpu"].as_array().unwrap().len(), 2);
    let empty = panel
        .get("/monitoring/api/metrics/history/?hours=0", &jar)
        .await;
    assert_eq!(empty.json["timestamps"], json!([]));
    let bad = panel
        .get("/monitoring/api/metrics/history/?hours=abc", &jar)
        .await;
    assert_eq!(bad.status, 500);
    let health = panel.get("/monitoring/api/system/health/", &jar).await;
    assert_eq!(health.json["healthy"], false);
    assert_eq!(
        health.json["deployments"]["total_checked"], 2,
        "running: blog, bob-site"
    );
    let summary = panel.get("/monitoring/api/system/summary/", &jar).await;
    assert!(summary.json["resources"]["cpu_percent"].is_f64());
}

#[tokio::test]
async fn the_binary_serves_the_panel_flavour() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_webops-mock"))
        .args(["--bind", "127.0.0.1:0", "--flavor", "panel"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push_str(&line);
            if let Some(rest) = line.split("base_url=").nth(1) {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("webops-mock exited without announcing its address");
    })
    .await
    .unwrap();
    assert!(
        seen.contains(PANEL_USER) && seen.contains(PANEL_PASSWORD),
        "{seen}"
    );
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let http = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap();
    let status = http.get(format!("{url}/api/status/")).send().await.unwrap();
    assert_eq!(status.status(), 200);
    let list = http
        .get(format!("{url}/api/deployments/"))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 302);
    child.kill().await.unwrap();
}
