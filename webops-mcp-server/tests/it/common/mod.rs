//! Shared helpers of the server's end-to-end tests: temporary directories, an in-process
//! server in front of the mock WebOps API, MCP clients with credentials, and JWT makers.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use argon2::password_hash::{PasswordHasher, SaltString};
use http::{HeaderName, HeaderValue};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig, ProtocolVersion};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientLifecycleMode, ClientServiceExt};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use webops_mcp_server::{
    Config, ConfigLoader, Error, HttpApp, Transport, build_server, key_digest,
};
use webops_mcp_testkit::{MockWebOps, Seed};

/// The eight built-in tools.
pub const ALL_TOOLS: [&str; 8] = [
    "webops_deploy_app",
    "webops_get_status",
    "webops_list_deployments",
    "webops_get_logs",
    "webops_manage_service",
    "webops_security_audit",
    "webops_system_health",
    "webops_delete_deployment",
];

/// The tools an admin's HTTP client sees when it declares no elicitation: by default a
/// delete needs a person's confirmation, which such a client cannot give, so it is not offered.
pub fn tools_without_elicitation() -> Vec<&'static str> {
    ALL_TOOLS
        .into_iter()
        .filter(|t| *t != "webops_delete_deployment")
        .collect()
}

/// The tools that only read.
pub const READ_TOOLS: [&str; 5] = [
    "webops_get_status",
    "webops_list_deployments",
    "webops_get_logs",
    "webops_security_audit",
    "webops_system_health",
];

/// Keys of the standard test configuration.
pub const ADMIN_KEY: &str = "wmcp_test-admin-key-0123456789abcdef0123456789abcdef";
pub const VIEWER_KEY: &str = "wmcp_test-viewer-key-0123456789abcdef0123456789abcde";
pub const DEPLOY_READ_KEY: &str = "wmcp_test-deploy-read-key-0123456789abcdef01234567";

/// The HS256 secret of the standard test configuration.
pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef0123456789abcdef";
pub const JWT_ISSUER: &str = "https://auth.test.example";
pub const JWT_AUDIENCE: &str = "https://mcp.test.example/mcp";

/// Basic user of the standard test configuration.
pub const BASIC_USER: &str = "alice";
pub const BASIC_PASSWORD: &str = "correct horse battery staple";

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "webops-mcp-test-{}-{}-{}",
            std::process::id(),
            nanos,
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A cheap argon2id PHC hash (small memory cost, so debug-build tests stay fast; the server
/// verifies with the parameters the hash names).
pub fn cheap_argon2id(password: &str) -> String {
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"webops-test-salt").unwrap();
    argon
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

/// The `[[auth.api_keys]]` tables of the admin, viewer and deploy-read keys, and a basic user.
pub fn standard_auth_toml() -> String {
    format!(
        r#"
[[auth.api_keys]]
user_id = "admin"
key_sha256 = "{}"
permissions = ["admin:*"]

[[auth.api_keys]]
user_id = "viewer"
key_sha256 = "{}"
permissions = ["deploy:read", "logs:read", "system:read"]

[[auth.api_keys]]
user_id = "deploy-reader"
key_sha256 = "{}"
permissions = ["deploy:read"]

[[auth.basic]]
username = "{BASIC_USER}"
password_hash = "{}"
permissions = ["deploy:read"]
"#,
        hex::encode(key_digest(ADMIN_KEY)),
        hex::encode(key_digest(VIEWER_KEY)),
        hex::encode(key_digest(DEPLOY_READ_KEY)),
        cheap_argon2id(BASIC_PASSWORD),
    )
}

/// `[auth.jwt]` with the HS256 secret, issuer and audience.
pub fn hs256_toml() -> String {
    format!(
        "\n[auth.jwt]\nsecret = \"{JWT_SECRET}\"\nissuer = \"{JWT_ISSUER}\"\naudience = \"{JWT_AUDIENCE}\"\n"
    )
}

/// `[auth.jwt]` with a PEM public key.
pub fn pem_jwt_toml(public_key: &Path) -> String {
    format!(
        "\n[auth.jwt]\npublic_key_pem_file = \"{}\"\nissuer = \"{JWT_ISSUER}\"\naudience = \"{JWT_AUDIENCE}\"\n",
        public_key.display()
    )
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Standard claims: subject, issuer, audience, expiry in an hour, plus `extra`.
pub fn claims(sub: &str, extra: Value) -> Value {
    let mut claims = json!({
        "sub": sub,
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "iat": now(),
        "exp": now() + 3600,
    });
    if let (Some(map), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            map.insert(k.clone(), v.clone());
        }
    }
    claims
}

/// A JWT signed with `alg` and `key`.
pub fn jwt(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
}

/// An HS256 token with the test secret.
pub fn hs256(claims: &Value) -> String {
    jwt(
        Algorithm::HS256,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
        claims,
    )
}

/// An unsigned token (`alg: none`).
pub fn unsigned_jwt(claims: &Value) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    )
}

/// A server in front of a fresh mock WebOps API, on 127.0.0.1:0.
pub struct TestServer {
    pub addr: SocketAddr,
    pub mock: Option<MockWebOps>,
    pub dir: TempDir,
    pub config: Config,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), Error>>,
}

/// How to start a [`TestServer`].
pub struct ServerOptions {
    pub toml: String,
    /// Point the client here instead of at a fresh mock.
    pub api_url: Option<String>,
    pub step_delay: std::time::Duration,
    pub loader: fn(ConfigLoader) -> ConfigLoader,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            toml: standard_auth_toml(),
            api_url: None,
            step_delay: std::time::Duration::from_millis(20),
            loader: |l| l,
        }
    }
}

impl TestServer {
    /// The standard configuration plus `extra_toml`.
    pub async fn start(extra_toml: &str) -> TestServer {
        Self::start_with(ServerOptions {
            toml: format!("{}\n{extra_toml}", standard_auth_toml()),
            ..ServerOptions::default()
        })
        .await
    }

    pub async fn start_with(options: ServerOptions) -> TestServer {
        let dir = TempDir::new();
        let (mock, api_url) = match options.api_url {
            Some(url) => (None, url),
            None => {
                let mock = MockWebOps::builder()
                    .seed(Seed::Demo)
                    .step_delay(options.step_delay)
                    .start()
                    .await
                    .unwrap();
                let url = mock.base_url();
                (Some(mock), url)
            }
        };
        let audit = dir.join("audit.jsonl");
        let toml = format!(
            "[security]\naudit_log = \"{}\"\n{}",
            audit.display(),
            options.toml
        );
        let loader = Config::loader()
            .toml(toml)
            .env("WEBOPS_API_URL", api_url)
            .env("WEBOPS_API_KEY", webops_mcp_testkit::TEST_TOKEN);
        let config = (options.loader)(loader).load().unwrap();
        let server = build_server(&config, Transport::Http).unwrap();
        let app = HttpApp::new(&config, server);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.serve(listener, shutdown.clone()));
        TestServer {
            addr,
            mock,
            dir,
            config,
            shutdown,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }

    /// Stops the server and waits for it.
    pub async fn stop(self) -> Result<(), Error> {
        self.shutdown.cancel();
        self.task.await.unwrap()
    }

    /// Fires the shutdown and hands back the server task.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    pub async fn join(self) -> Result<(), Error> {
        self.task.await.unwrap()
    }
}

/// An MCP client.
pub type Client = RunningService<RoleClient, ClientConfig>;

/// An MCP client with these headers, using the legacy `initialize` handshake.
pub async fn connect(url: &str, headers: &[(&str, &str)]) -> Client {
    try_connect(url, headers, ClientLifecycleMode::Initialize)
        .await
        .unwrap()
}

/// An MCP client with these headers, using the modern stateless lifecycle (2026-07-28).
pub async fn connect_modern(url: &str, headers: &[(&str, &str)]) -> Client {
    try_connect(
        url,
        headers,
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
    )
    .await
    .unwrap()
}

pub async fn try_connect(
    url: &str,
    headers: &[(&str, &str)],
    lifecycle: ClientLifecycleMode,
) -> Result<Client, rmcp::service::ClientInitializeError> {
    let mut map = HashMap::new();
    for (name, value) in headers {
        map.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).custom_headers(map),
    );
    ClientConfig::default()
        .serve_with_lifecycle(transport, lifecycle)
        .await
}

/// `Authorization: Bearer <token>`.
pub fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

/// `Authorization: Basic ...`.
pub fn basic(user: &str, password: &str) -> (&'static str, String) {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    ("authorization", format!("Basic {encoded}"))
}

/// The names of the tools `client` sees, sorted.
pub async fn tool_names<H: rmcp::ClientHandler>(
    client: &RunningService<RoleClient, H>,
) -> Vec<String> {
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    names
}

/// Sorted copy of a list of names.
pub fn sorted(names: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    names.sort();
    names
}

/// Calls `tool` with `arguments` (a JSON object).
pub async fn call(client: &Client, tool: &str, arguments: Value) -> CallToolResult {
    let arguments = arguments.as_object().cloned().unwrap_or_default();
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
        .unwrap_or_else(|e| panic!("calling {tool}: {e}"))
}

/// The text blocks of a result, joined.
pub fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The JSON-RPC `initialize` request body of a legacy client.
pub fn initialize_body() -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "raw-test", "version": "1.0"}
        }
    })
}

/// POSTs `body` to `/mcp` with `headers` (plus the MCP Accept and Content-Type).
pub async fn post_mcp(url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> reqwest::Response {
    let client = reqwest::Client::new();
    let mut request = client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// The `WWW-Authenticate` values of a response.
pub fn challenges(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// Path of the built binary.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_webops-mcp")
}

/// A `Command` for the binary with the configuration environment cleared.
pub fn command() -> std::process::Command {
    let mut command = std::process::Command::new(binary());
    for name in configuration_env() {
        command.env_remove(name);
    }
    command
}

/// Every environment variable the binary's configuration reads (the server's own
/// `ENV_VARS` and `CONFIG_ENV_VAR`), plus `RUST_LOG`: what a test clears so the
/// developer's environment cannot leak in.
pub fn configuration_env() -> impl Iterator<Item = &'static str> {
    use webops_mcp_server::config::{CONFIG_ENV_VAR, ENV_VARS};
    ENV_VARS.into_iter().chain([CONFIG_ENV_VAR, "RUST_LOG"])
}

/// The production binary as `webops-mcp stdio --demo ARGS` with piped stdin and stdout,
/// `stderr` as given, none of the developer's configuration, killed when dropped.
pub fn spawn_stdio_demo(args: &[&str], stderr: std::process::Stdio) -> tokio::process::Child {
    let mut command = tokio::process::Command::new(binary());
    for name in configuration_env() {
        command.env_remove(name);
    }
    command
        .args(["stdio", "--demo"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}
