//! Helpers: a mock plus an HTTP client that speaks to it.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use webops_mcp_testkit::{MockBuilder, MockWebOps};

/// A generous bound for lifecycle waits: only reached when something is broken.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// What the mock answered.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) text: String,
    pub(crate) json: Value,
}

impl Answer {
    /// `error.code` of an error envelope.
    pub(crate) fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }

    /// `error.details[field]` of an error envelope.
    pub(crate) fn details(&self, field: &str) -> Vec<String> {
        self.json["error"]["details"][field]
            .as_array()
            .map(|a| a.iter().map(|m| m.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    }

    /// Asserts an error envelope with `status` and `code`.
    #[track_caller]
    pub(crate) fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.json["success"], false, "{}", self.text);
        assert_eq!(self.code(), code, "{}", self.text);
        assert!(
            self.json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}",
            self.text
        );
    }

    /// Asserts a success envelope with `status`; returns `data`.
    #[track_caller]
    pub(crate) fn data(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.json["success"], true, "{}", self.text);
        &self.json["data"]
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A running mock and a client.
pub(crate) struct Api {
    pub(crate) mock: MockWebOps,
    pub(crate) http: reqwest::Client,
    token: Option<String>,
}

impl Api {
    pub(crate) async fn start() -> Api {
        Api::with(MockWebOps::builder()).await
    }

    pub(crate) async fn with(builder: MockBuilder) -> Api {
        let mock = builder.start().await.unwrap();
        let token = Some(mock.token().to_owned());
        Api {
            mock,
            http: reqwest::Client::new(),
            token,
        }
    }

    /// The same mock seen with another token (`None`: no `Authorization` header).
    pub(crate) fn as_token(&self, token: Option<&str>) -> Caller<'_> {
        Caller {
            api: self,
            token: token.map(str::to_owned),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.mock.api_url(), path)
    }

    pub(crate) async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.as_token(self.token.as_deref())
            .send(method, path, body)
            .await
    }

    pub(crate) async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(body)).await
    }

    pub(crate) async fn delete(&self, path: &str) -> Answer {
        self.send(Method::DELETE, path, None).await
    }

    /// Creates a deployment; returns its id.
    pub(crate) async fn create(&self, name: &str, repo_url: &str) -> i64 {
        let answer = self
            .post("deployments/", json!({"name": name, "repo_url": repo_url}))
            .await;
        answer.data(201)["id"].as_i64().unwrap()
    }

    /// Creates a deployment and waits until it runs; returns its id.
    pub(crate) async fn running(&self, name: &str) -> i64 {
        let id = self
            .create(name, &format!("https://github.com/acme/{name}.git"))
            .await;
        assert!(self.mock.wait_for_status(id, "running", WAIT).await);
        id
    }

    /// The `status` of a deployment as the API shows it.
    pub(crate) async fn status_of(&self, id: i64) -> String {
        self.get(&format!("deployments/{id}/")).await.data(200)["status"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// Requests with a chosen token.
pub(crate) struct Caller<'a> {
    api: &'a Api,
    token: Option<String>,
}

impl Caller<'_> {
    pub(crate) async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self.api.http.request(method, self.api.url(path));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request).await
    }
}

/// Sends `request` and reads the answer (a body that is not JSON becomes `Value::Null`).
pub(crate) async fn answer(request: RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        json,
    }
}

/// Polls `check` (every 10 ms, at most [`WAIT`]) until it yields a value.
pub(crate) async fn eventually<T>(mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in time"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Like [`eventually`] for an async check.
pub(crate) async fn eventually_async<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in time"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
