//! Configuration: precedence (defaults < file < environment < flags), unknown keys, every
//! validation error, the anonymous identity's loopback rule, and `check-config` redaction.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::common::{TempDir, cheap_argon2id, command, fixture};
use webops_client::Flavor;
use webops_mcp_core::Permission;
use webops_mcp_server::{Config, Error, Transport, key_digest};
use webops_mcp_testkit::{MockPanel, MockWebOps, PANEL_PASSWORD, PANEL_USER, PanelSeed, Seed};

fn errors_of(result: Result<Config, Error>) -> Vec<String> {
    match result {
        Err(Error::Config(errors)) => errors,
        Err(other) => panic!("expected configuration errors, got {other}"),
        Ok(_) => panic!("expected configuration errors, got a valid configuration"),
    }
}

fn argon2i_hash(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2i, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"webops-test-salt").unwrap();
    argon
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

fn one_error(toml: &str) -> String {
    let errors = errors_of(Config::loader().toml(toml).load());
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors.into_iter().next().unwrap()
}

#[test]
fn defaults_without_any_input() {
    let config = Config::loader().load().unwrap();
    assert_eq!(config.webops.api_url, "http://localhost:8000");
    assert_eq!(config.webops.api_version, "v1");
    assert_eq!(config.webops.api_key, None);
    assert_eq!(config.webops.timeout, Duration::from_secs(30));
    assert_eq!(config.webops.max_retries, 3);
    assert_eq!(config.security.rate_limit_per_minute, 100);
    assert_eq!(config.security.max_concurrent_requests, 50);
    assert!(config.security.audit_logging);
    assert_eq!(config.security.audit_log, None);
    assert!(!config.security.read_only);
    assert_eq!(config.stdio.user_id, "local");
    assert!(config.stdio.permissions.contains(Permission::DeployDelete));
    assert_eq!(config.http.bind.to_string(), "127.0.0.1:8080");
    assert!(!config.http.metrics_require_auth);
    assert!(config.http.trusted_proxies.is_empty());
    assert_eq!(config.http.request_timeout, Duration::from_secs(660));
    assert_eq!(config.http.read_timeout, Duration::from_secs(30));
    assert!(!config.auth.any_method());
    assert!(matches!(config.check_http_auth(), Err(Error::NoHttpAuth)));
}

#[test]
fn file_overrides_defaults_env_overrides_file_flags_override_env() {
    let toml = r#"
[webops]
api_url = "http://file.example:8000"
api_version = "v2"
api_key = "file-key"
timeout_secs = 5
max_retries = 1

[security]
rate_limit_per_minute = 7
read_only = false

[http]
bind = "127.0.0.1:9000"
"#;
    let from_file = Config::loader().toml(toml).load().unwrap();
    assert_eq!(from_file.webops.api_url, "http://file.example:8000");
    assert_eq!(from_file.webops.api_version, "v2");
    assert_eq!(from_file.webops.api_key.as_deref(), Some("file-key"));
    assert_eq!(from_file.webops.timeout, Duration::from_secs(5));
    assert_eq!(from_file.webops.max_retries, 1);
    assert_eq!(from_file.security.rate_limit_per_minute, 7);
    assert_eq!(from_file.http.bind.to_string(), "127.0.0.1:9000");

    let with_env = Config::loader()
        .toml(toml)
        .env("WEBOPS_API_URL", "https://env.example")
        .env("WEBOPS_API_VERSION", "v3")
        .env("WEBOPS_API_KEY", "env-key")
        .env("UNRELATED", "ignored")
        .load()
        .unwrap();
    assert_eq!(with_env.webops.api_url, "https://env.example");
    assert_eq!(with_env.webops.api_version, "v3");
    assert_eq!(with_env.webops.api_key.as_deref(), Some("env-key"));
    // The environment leaves what it does not name alone.
    assert_eq!(with_env.webops.timeout, Duration::from_secs(5));

    let with_flags = Config::loader()
        .toml(toml)
        .env("WEBOPS_API_URL", "https://env.example")
        .bind("127.0.0.1:9100")
        .read_only(true)
        .demo(true)
        .load()
        .unwrap();
    assert_eq!(with_flags.http.bind.to_string(), "127.0.0.1:9100");
    assert!(with_flags.security.read_only);
    assert!(with_flags.demo);
    assert_eq!(with_flags.webops.api_url, "https://env.example");
}

#[test]
fn jwt_secret_from_environment_enables_hs256_and_beats_the_file() {
    let config = Config::loader()
        .env("JWT_SECRET", "e".repeat(40))
        .load()
        .unwrap();
    let jwt = config.auth.jwt.as_ref().unwrap();
    assert_eq!(jwt.algorithm(), jsonwebtoken::Algorithm::HS256);
    assert!(config.check_http_auth().is_ok());

    // A too-short file secret is overridden by a good one from the environment.
    let config = Config::loader()
        .toml("[auth.jwt]\nsecret = \"short\"\naudience = \"https://x.example/mcp\"\n")
        .env("JWT_SECRET", "f".repeat(32))
        .load()
        .unwrap();
    assert_eq!(
        config.auth.jwt.unwrap().audience.as_deref(),
        Some("https://x.example/mcp")
    );
}

#[test]
fn unknown_keys_name_the_key_and_the_table() {
    let error = one_error("[security]\nrate_limit = 5\n");
    assert!(error.contains("`rate_limit`"), "{error}");
    assert!(error.contains("[security]"), "{error}");
    assert!(error.contains("line 2"), "{error}");
    assert!(
        error.contains("rate_limit_per_minute"),
        "lists allowed keys: {error}"
    );

    let error =
        one_error("[[auth.api_keys]]\nuser_id = \"x\"\nkey_sha256 = \"00\"\npermisions = []\n");
    assert!(error.contains("`permisions`"), "{error}");
    assert!(error.contains("[[auth.api_keys]] #1"), "{error}");

    let error = one_error("[auth.jwt]\nalgorithm = \"HS512\"\n");
    assert!(
        error.contains("`algorithm`") && error.contains("[auth.jwt]"),
        "{error}"
    );

    let error = one_error("[webhooks]\nurl = \"x\"\n");
    assert!(
        error.contains("`webhooks`") && error.contains("top level"),
        "{error}"
    );

    let error = one_error("verbose = true\n");
    assert!(error.contains("`verbose`"), "{error}");
}

#[test]
fn wrong_types_and_syntax_are_clear_and_never_show_secrets() {
    let error = one_error("[security]\nrate_limit_per_minute = \"lots\"\n");
    assert!(
        error.contains("[security]") && error.contains("invalid type"),
        "{error}"
    );

    let error = one_error("[webops]\napi_key = 987654321\n");
    assert!(
        error.contains("[webops]") && error.contains("secret"),
        "{error}"
    );
    assert!(!error.contains("987654321"), "{error}");

    let error = one_error("[webops\napi_url = 1\n");
    assert!(
        error.contains("TOML syntax error") && error.contains("line 1"),
        "{error}"
    );
}

#[test]
fn every_validation_error_is_reported_and_clear() {
    let toml = format!(
        r#"
[webops]
api_url = "ftp://nowhere"
timeout_secs = 0

[security]
rate_limit_per_minute = 0
max_concurrent_requests = 0

[stdio]
permissions = ["deploy:reed"]

[http]
bind = "localhost:http"
allowed_origins = ["app.example.com"]

[[auth.api_keys]]
user_id = "short-digest"
key_sha256 = "abc123"
permissions = ["deploy:read"]

[[auth.api_keys]]
user_id = "bad-permission"
key_sha256 = "{digest}"
permissions = ["deploy:launch"]

[[auth.basic]]
username = "bcrypt-user"
password_hash = "$2b$12$abcdefghijklmnopqrstuu5xS1b0p7lC6RQx7J8k1nzPZ6PmHKm9S"
permissions = ["deploy:read"]

[[auth.basic]]
username = "argon2i-user"
password_hash = "{argon2i}"
permissions = ["deploy:read"]

[auth.oauth]
resource = "mcp.example.com"
authorization_servers = []
"#,
        digest = hex::encode(key_digest("k")),
        argon2i = argon2i_hash("pw"),
    );
    let errors = errors_of(Config::loader().toml(toml).load());
    let all = errors.join("\n");
    let expect = [
        "[webops] api_url must be an http:// or https:// URL",
        "[webops] timeout_secs must be at least 1",
        "[security] rate_limit_per_minute must be at least 1",
        "[security] max_concurrent_requests must be at least 1",
        "[stdio] permissions: unknown permission 'deploy:reed'",
        "--bind",
        "[http] allowed_origins",
        "short-digest\"): key_sha256 must be 64 hex digits",
        "bad-permission\"): unknown permission 'deploy:launch'; allowed:",
        "bcrypt-user\"): password_hash is not a PHC string",
        "argon2i-user\"): password_hash must be an argon2id hash",
        "[auth.oauth] needs [auth.jwt]",
        "[auth.oauth] resource must be an absolute",
        "[auth.oauth] authorization_servers must name at least one",
    ];
    for needle in expect {
        // `--bind` only appears for flags; the file's bind is reported as "[http] bind".
        let needle = if needle == "--bind" {
            "[http] bind: \"localhost:http\" is not a socket address"
        } else {
            needle
        };
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    assert_eq!(errors.len(), expect.len(), "{all}");
}

#[test]
fn jwt_key_errors() {
    let dir = TempDir::new();
    let error = one_error(&format!(
        "[auth.jwt]\nsecret = \"{}\"\npublic_key_pem_file = \"{}\"\n",
        "s".repeat(40),
        fixture("rs256-public.pem").display()
    ));
    assert!(error.contains("not both"), "{error}");

    let missing = dir.join("missing.pem");
    let error = one_error(&format!(
        "[auth.jwt]\npublic_key_pem_file = \"{}\"\n",
        missing.display()
    ));
    assert!(
        error.contains("cannot read public_key_pem_file") && error.contains("missing.pem"),
        "{error}"
    );

    let garbage = dir.write(
        "garbage.pem",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    );
    let error = one_error(&format!(
        "[auth.jwt]\npublic_key_pem_file = \"{}\"\n",
        garbage.display()
    ));
    assert!(error.contains("holds no RSA or EC"), "{error}");

    let error = one_error("[auth.jwt]\nsecret = \"too-short\"\n");
    assert!(error.contains("at least 32"), "{error}");
    assert!(
        !error.contains("too-short"),
        "never shows the secret: {error}"
    );

    let error = one_error("[auth.jwt]\nissuer = \"https://auth.example\"\n");
    assert!(error.contains("needs a key"), "{error}");

    // Both PEM kinds load and fix their algorithm.
    for (file, alg) in [
        ("rs256-public.pem", jsonwebtoken::Algorithm::RS256),
        ("es256-public.pem", jsonwebtoken::Algorithm::ES256),
    ] {
        let config = Config::loader()
            .toml(format!(
                "[auth.jwt]\npublic_key_pem_file = \"{}\"\n",
                fixture(file).display()
            ))
            .load()
            .unwrap();
        assert_eq!(config.auth.jwt.unwrap().algorithm(), alg);
    }
}

#[test]
fn relative_paths_resolve_against_the_config_file() {
    let dir = TempDir::new();
    std::fs::copy(fixture("es256-public.pem"), dir.join("jwt.pem")).unwrap();
    let file = dir.write(
        "webops-mcp.toml",
        "[security]\naudit_log = \"logs/audit.jsonl\"\n[auth.jwt]\npublic_key_pem_file = \"jwt.pem\"\n",
    );
    let config = Config::loader().file(&file).load().unwrap();
    assert_eq!(
        config.security.audit_log.unwrap(),
        dir.path().join("logs/audit.jsonl")
    );
    assert_eq!(config.source.as_deref(), Some(file.as_path()));
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let error = Config::loader()
        .file("/nonexistent/webops-mcp.toml")
        .load()
        .unwrap_err()
        .to_string();
    assert!(error.contains("/nonexistent/webops-mcp.toml"), "{error}");
}

#[test]
fn anonymous_identity_needs_a_loopback_bind() {
    let toml = "[auth]\nanonymous_permissions = [\"deploy:read\"]\n";
    let config = Config::loader().toml(toml).load().unwrap();
    assert!(config.auth.anonymous_permissions.is_some());
    assert!(config.check_http_auth().is_ok());

    let errors = errors_of(Config::loader().toml(toml).bind("0.0.0.0:8080").load());
    assert!(
        errors[0].contains("anonymous_permissions is only allowed on a loopback"),
        "{errors:?}"
    );

    let errors = errors_of(
        Config::loader()
            .toml(format!("{toml}[http]\nbind = \"192.0.2.1:8080\"\n"))
            .load(),
    );
    assert!(errors[0].contains("loopback"), "{errors:?}");

    // An empty list is the default: off.
    let config = Config::loader()
        .toml("[auth]\nanonymous_permissions = []\n")
        .bind("0.0.0.0:8080")
        .load()
        .unwrap();
    assert!(config.auth.anonymous_permissions.is_none());
}

#[test]
fn debug_output_hides_secrets() {
    let hash = cheap_argon2id("pw");
    let config = Config::loader()
        .toml(format!(
            "[webops]\napi_key = \"upstream-secret-value\"\n[auth.jwt]\nsecret = \"{}\"\n[[auth.basic]]\nusername = \"u\"\npassword_hash = \"{hash}\"\n",
            "jwt-secret-value-".repeat(3)
        ))
        .load()
        .unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("upstream-secret-value"), "{debug}");
    assert!(!debug.contains("jwt-secret-value"), "{debug}");
    assert!(!debug.contains(&hash), "{debug}");
    let toml = config.to_redacted_toml();
    assert!(!toml.contains("upstream-secret-value") && !toml.contains("jwt-secret-value"));
    assert!(!toml.contains(&hash));
    assert!(toml.contains("<redacted>"));
}

#[test]
fn resources_turns_change_notifications_on_within_its_ranges() {
    let off = Config::loader().load().unwrap();
    assert!(!off.resources.notifications());
    let toml = "[resources]\npoll_interval_secs = 30\nmax_subscriptions = 4\n";
    let on = Config::loader().toml(toml).load().unwrap();
    assert_eq!(on.resources.poll_interval, Duration::from_secs(30));
    assert_eq!(on.resources.max_subscriptions, 4);
    // The server built from it offers `subscribe`; without it, it does not.
    for (config, subscribe) in [(&on, Some(true)), (&off, None)] {
        let server = webops_mcp_server::build_server(config, Transport::Stdio).unwrap();
        let info = rmcp::ServerHandler::get_info(&server.mcp_handler());
        let resources = info.capabilities.resources.unwrap();
        assert_eq!(resources.subscribe, subscribe);
    }
    for (toml, says) in [
        (
            "[resources]\npoll_interval_secs = 3601\n",
            "[resources] poll_interval_secs",
        ),
        (
            "[resources]\nmax_subscriptions = 0\n",
            "[resources] max_subscriptions",
        ),
        ("[resources]\npoll_every = 5\n", "unknown key"),
    ] {
        let error = one_error(toml);
        assert!(error.contains(says), "{toml}: {error}");
    }
}

#[test]
fn check_config_prints_the_effective_configuration_redacted() {
    let dir = TempDir::new();
    let hash = cheap_argon2id("pw");
    let file = dir.write(
        "webops-mcp.toml",
        &format!(
            r#"
[webops]
api_url = "http://file.example:8000"
api_key = "file-upstream-secret"

[[auth.api_keys]]
user_id = "ci-bot"
key_sha256 = "{}"
permissions = ["deploy:read", "logs:read"]

[auth.jwt]
secret = "file-jwt-secret-0123456789abcdef0123456789"

[[auth.basic]]
username = "admin"
password_hash = "{hash}"
permissions = ["admin:*"]
"#,
            hex::encode(key_digest("some-key"))
        ),
    );
    let output = command()
        .args(["check-config", "--config"])
        .arg(&file)
        .env("WEBOPS_API_URL", "https://env.example")
        .env("WEBOPS_API_KEY", "env-upstream-secret")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    // Environment beats the file.
    assert!(
        stdout.contains("api_url = \"https://env.example\""),
        "{stdout}"
    );
    assert!(stdout.contains("ci-bot"), "{stdout}");
    assert!(stdout.contains("<redacted>"), "{stdout}");
    for secret in [
        "file-upstream-secret",
        "env-upstream-secret",
        "file-jwt-secret",
        hash.as_str(),
    ] {
        assert!(!stdout.contains(secret), "{secret} shown:\n{stdout}");
        assert!(!stderr.contains(secret), "{secret} shown:\n{stderr}");
    }

    // The file can also be named by WEBOPS_MCP_CONFIG; --read-only is a flag.
    let output = command()
        .args(["check-config", "--read-only"])
        .env("WEBOPS_MCP_CONFIG", &file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(
        stdout.contains("api_url = \"http://file.example:8000\""),
        "{stdout}"
    );
    assert!(stdout.contains("read_only = true"), "{stdout}");
}

#[test]
fn check_config_fails_on_an_invalid_file() {
    let dir = TempDir::new();
    let file = dir.write(
        "bad.toml",
        "[security]\nrate_limit = 5\n[stdio]\npermissions = [\"root\"]\n",
    );
    let output = command()
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`rate_limit`") && stderr.contains("[security]"),
        "{stderr}"
    );
}

#[test]
fn oauth_metadata_needs_jwt_verification() {
    let oauth = "[auth.oauth]\nresource = \"https://mcp.example.com/mcp\"\n\
                 authorization_servers = [\"https://auth.example.com\"]\n";
    let error = one_error(oauth);
    assert!(
        error.contains("[auth.oauth] needs [auth.jwt]") && error.contains("public_key_pem_file"),
        "{error}"
    );
    // A key without an audience is not enough: tokens must be checked to be for this server.
    let pem = format!(
        "{oauth}[auth.jwt]\npublic_key_pem_file = \"{}\"\n",
        fixture("rs256-public.pem").display()
    );
    let audience = "audience = \"https://mcp.example.com/mcp\"\n";
    for (toml, secret) in [
        (pem.clone(), None),
        (format!("{pem}audience = \" \"\n"), None),
        (oauth.to_owned(), Some("s".repeat(40))),
    ] {
        let mut loader = Config::loader().toml(toml);
        if let Some(secret) = secret {
            loader = loader.env("JWT_SECRET", secret);
        }
        let errors = errors_of(loader.load());
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0].contains("[auth.oauth] needs [auth.jwt] audience")
                && errors[0].contains("https://mcp.example.com/mcp"),
            "{errors:#?}"
        );
    }
    // With a key and an audience, from the file or with JWT_SECRET, it is fine.
    let config = Config::loader()
        .toml(format!("{pem}{audience}"))
        .load()
        .unwrap();
    assert!(config.auth.oauth.is_some() && config.auth.jwt.is_some());
    let config = Config::loader()
        .toml(format!("{oauth}[auth.jwt]\n{audience}"))
        .env("JWT_SECRET", "s".repeat(40))
        .load()
        .unwrap();
    assert!(config.auth.oauth.is_some() && config.auth.jwt.is_some());
    // A JWT table with its own error is reported once, not again by [auth.oauth].
    let error = one_error(&format!(
        "{oauth}[auth.jwt]\nsecret = \"short\"\n{audience}"
    ));
    assert!(error.contains("at least 32"), "{error}");
}

#[test]
fn loader_debug_hides_the_toml_text_and_environment_values() {
    let text = "[webops]\napi_key = \"loader-secret-value\"\n";
    let loader = Config::loader()
        .toml(text)
        .env("WEBOPS_API_KEY", "env-secret-value")
        .bind("127.0.0.1:9000");
    let debug = format!("{loader:?}");
    assert!(!debug.contains("loader-secret-value"), "{debug}");
    assert!(!debug.contains("env-secret-value"), "{debug}");
    assert!(
        debug.contains(&format!("<{} bytes>", text.len())),
        "{debug}"
    );
    assert!(
        debug.contains("WEBOPS_API_KEY") && debug.contains("127.0.0.1:9000"),
        "{debug}"
    );
}

#[test]
fn allowed_origins_take_explicit_ports_and_any_port() {
    let config = Config::loader()
        .toml(
            "[http]\nallowed_origins = [\"https://app.example.com:443\", \
             \"http://localhost:*\", \"http://[::1]:*\", \"https://legacy.example.com\", \"null\"]\n",
        )
        .load()
        .unwrap();
    assert_eq!(
        config.http.allowed_origins,
        [
            "https://app.example.com:443",
            "http://localhost:*",
            "http://[::1]:*",
            "https://legacy.example.com",
            "null"
        ]
    );
    for bad in [
        "app.example.com:*",
        "https://app.example.com:443:*",
        "https://app.example.com/path:*",
        "https://app.example.com/path",
        "ftp://app.example.com:*",
        "https://:*",
    ] {
        let error = one_error(&format!("[http]\nallowed_origins = [\"{bad}\"]\n"));
        assert!(
            error.contains("[http] allowed_origins") && error.contains(":*"),
            "{bad}: {error}"
        );
    }
}

#[test]
fn trusted_proxies_and_timeouts_are_read_and_checked() {
    let config = Config::loader()
        .toml(
            "[http]\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\", \"fd00::/8\", \"172.18.5.9/16\"]\n\
             request_timeout_secs = 900\nread_timeout_secs = 10\n",
        )
        .load()
        .unwrap();
    let proxies: Vec<String> = config
        .http
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        proxies,
        ["10.0.0.0/8", "192.0.2.7/32", "fd00::/8", "172.18.0.0/16"]
    );
    assert_eq!(config.http.request_timeout, Duration::from_secs(900));
    assert_eq!(config.http.read_timeout, Duration::from_secs(10));
    let toml = config.to_redacted_toml();
    assert!(
        toml.contains("trusted_proxies = [") && toml.contains("\"10.0.0.0/8\""),
        "{toml}"
    );
    assert!(toml.contains("request_timeout_secs = 900"), "{toml}");
    assert!(toml.contains("read_timeout_secs = 10"), "{toml}");

    let errors = errors_of(
        Config::loader()
            .toml(
                "[http]\ntrusted_proxies = [\"10.0.0.0/33\", \"proxy.example\"]\n\
                 request_timeout_secs = 0\nread_timeout_secs = 0\n",
            )
            .load(),
    );
    let all = errors.join("\n");
    for needle in [
        "[http] trusted_proxies: \"10.0.0.0/33\" is not an IP address or CIDR network",
        "[http] trusted_proxies: \"proxy.example\"",
        "[http] request_timeout_secs must be at least 1",
        "[http] read_timeout_secs must be at least 1",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    assert_eq!(errors.len(), 4, "{all}");
}

#[test]
fn check_config_fails_when_http_would_refuse_to_start_unless_stdio_only() {
    let dir = TempDir::new();
    let file = dir.write(
        "stdio.toml",
        "[stdio]\nuser_id = \"me\"\npermissions = [\"deploy:read\"]\n",
    );
    let output = command()
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("would refuse to start") && stderr.contains("check-config --stdio"),
        "{stderr}"
    );
    // The configuration is still printed.
    assert!(String::from_utf8_lossy(&output.stdout).contains("user_id = \"me\""));

    let output = command()
        .args(["check-config", "--stdio", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // --demo makes its own keys, so http would start.
    let output = command()
        .args(["check-config", "--demo", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(output.status.success());
}

#[test]
fn flavor_login_budget_and_cache_are_read_and_the_environment_wins() {
    let defaults = Config::loader().load().unwrap();
    assert_eq!(defaults.webops.flavor, Flavor::Auto);
    assert_eq!(defaults.webops.username, None);
    assert_eq!(defaults.webops.password, None);
    assert_eq!(defaults.webops.budget.requests, 20);
    assert_eq!(defaults.webops.budget.window, Duration::from_secs(60));
    assert_eq!(defaults.webops.cache_ttl, Duration::from_secs(10));
    assert!(!defaults.has_webops_credentials());

    let toml = r#"
[webops]
flavor = "panel"
username = "file-user"
password = "file-panel-password"
budget_requests = 0
budget_window_secs = 30
cache_ttl_secs = 0
"#;
    let from_file = Config::loader().toml(toml).load().unwrap();
    assert_eq!(from_file.webops.flavor, Flavor::Panel);
    assert_eq!(from_file.webops.username.as_deref(), Some("file-user"));
    assert_eq!(
        from_file.webops.password.as_deref(),
        Some("file-panel-password")
    );
    assert_eq!(
        from_file.webops.budget.requests, 0,
        "0 turns the budget off"
    );
    assert_eq!(from_file.webops.budget.window, Duration::from_secs(30));
    assert_eq!(from_file.webops.cache_ttl, Duration::ZERO);
    assert!(from_file.has_webops_credentials());

    let with_env = Config::loader()
        .toml(toml)
        .env("WEBOPS_API_FLAVOR", "v1")
        .env("WEBOPS_USERNAME", "env-user")
        .env("WEBOPS_PASSWORD", "env-panel-password")
        .load()
        .unwrap();
    assert_eq!(with_env.webops.flavor, Flavor::V1);
    assert_eq!(with_env.webops.username.as_deref(), Some("env-user"));
    assert_eq!(
        with_env.webops.password.as_deref(),
        Some("env-panel-password")
    );
    // The environment leaves what it does not name alone.
    assert_eq!(with_env.webops.budget.window, Duration::from_secs(30));

    // An empty flavour in the environment counts as unset; empty credentials remove the
    // file's, like an empty WEBOPS_API_KEY.
    let emptied = Config::loader()
        .toml(toml)
        .env("WEBOPS_API_FLAVOR", " ")
        .env("WEBOPS_USERNAME", "")
        .env("WEBOPS_PASSWORD", "")
        .load()
        .unwrap();
    assert_eq!(emptied.webops.flavor, Flavor::Panel);
    assert_eq!(emptied.webops.username, None);
    assert_eq!(emptied.webops.password, None);

    // Every flavour name is accepted, from the file and from the environment.
    for (name, flavor) in [
        ("auto", Flavor::Auto),
        ("v1", Flavor::V1),
        ("panel", Flavor::Panel),
    ] {
        let config = Config::loader()
            .toml(format!("[webops]\nflavor = \"{name}\"\n"))
            .load()
            .unwrap();
        assert_eq!(config.webops.flavor, flavor);
        let config = Config::loader()
            .env("WEBOPS_API_FLAVOR", name)
            .load()
            .unwrap();
        assert_eq!(config.webops.flavor, flavor);
    }
}

#[test]
fn flavor_and_login_errors_say_what_is_allowed() {
    let error = one_error("[webops]\nflavor = \"django\"\n");
    assert!(
        error.contains("[webops] flavor") && error.contains("\"django\""),
        "{error}"
    );
    assert!(
        error.contains("auto, v1, panel"),
        "lists the values: {error}"
    );

    let errors = errors_of(Config::loader().env("WEBOPS_API_FLAVOR", "rest").load());
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].contains("auto, v1, panel") && errors[0].contains("WEBOPS_API_FLAVOR"),
        "{errors:#?}"
    );

    let error = one_error("[webops]\nusername = \"alice\"\n");
    assert!(
        error.contains("username is set but password is not"),
        "{error}"
    );
    let errors = errors_of(
        Config::loader()
            .env("WEBOPS_PASSWORD", "lonely-password-value")
            .load(),
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].contains("password is set but username is not"),
        "{errors:#?}"
    );
    assert!(!errors[0].contains("lonely-password-value"), "{errors:#?}");

    let error = one_error("[webops]\nbudget_window_secs = 0\n");
    assert!(
        error.contains("budget_window_secs must be at least 1"),
        "{error}"
    );

    // A password of the wrong type is a secret too: its value is not shown.
    let error = one_error("[webops]\nusername = \"a\"\npassword = 4242424242\n");
    assert!(
        error.contains("[webops]") && error.contains("secret"),
        "{error}"
    );
    assert!(!error.contains("4242424242"), "{error}");

    let error = one_error("[webops]\nbudget = 5\n");
    assert!(
        error.contains("`budget`") && error.contains("budget_requests"),
        "{error}"
    );

    // All of them at once.
    let errors = errors_of(
        Config::loader()
            .toml("[webops]\nflavor = \"x\"\nbudget_window_secs = 0\nusername = \"u\"\n")
            .load(),
    );
    assert_eq!(errors.len(), 3, "{errors:#?}");
}

#[test]
fn the_panel_password_is_a_secret_in_debug_and_redacted_toml() {
    let config = Config::loader()
        .toml("[webops]\nflavor = \"panel\"\nusername = \"alice\"\npassword = \"file-panel-secret\"\n")
        .env("WEBOPS_PASSWORD", "env-panel-secret")
        .load()
        .unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("panel-secret"), "{debug}");
    let toml = config.to_redacted_toml();
    assert!(!toml.contains("panel-secret"), "{toml}");
    assert!(toml.contains("password = \"<redacted>\""), "{toml}");
    assert!(toml.contains("username = \"alice\""), "{toml}");
    assert!(toml.contains("flavor = \"panel\""), "{toml}");
    assert!(toml.contains("budget_requests = 20"), "{toml}");
    assert!(toml.contains("budget_window_secs = 60"), "{toml}");
    assert!(toml.contains("cache_ttl_secs = 10"), "{toml}");
    // The redacted view is itself a valid configuration of the same shape.
    let reread = Config::loader().toml(toml).load().unwrap();
    assert_eq!(reread.webops.flavor, Flavor::Panel);
    assert_eq!(reread.webops.username.as_deref(), Some("alice"));

    let loader = Config::loader().env("WEBOPS_PASSWORD", "env-panel-secret");
    let debug = format!("{loader:?}");
    assert!(!debug.contains("panel-secret"), "{debug}");
}

#[test]
fn check_config_redacts_the_panel_password_and_names_a_configured_flavor() {
    let dir = TempDir::new();
    let file = dir.write(
        "panel.toml",
        "[webops]\napi_url = \"http://127.0.0.1:9\"\nflavor = \"panel\"\nusername = \"ops\"\npassword = \"file-panel-secret\"\n",
    );
    let output = command()
        .args(["check-config", "--stdio", "--config"])
        .arg(&file)
        .env("WEBOPS_PASSWORD", "env-panel-secret")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("# webops flavour: panel (configured)"),
        "{stdout}"
    );
    assert!(stdout.contains("password = \"<redacted>\""), "{stdout}");
    assert!(stdout.contains("username = \"ops\""), "{stdout}");
    for shown in [&stdout, &stderr] {
        assert!(!shown.contains("panel-secret"), "password shown:\n{shown}");
    }
    // A login counts as credentials: no warning about missing ones.
    assert!(!stderr.contains("no WebOps credentials"), "{stderr}");

    // Without any credentials the warning names both ways to give them.
    let output = command()
        .args(["check-config", "--stdio"])
        .env("WEBOPS_API_FLAVOR", "v1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.contains("# webops flavour: v1 (configured)"),
        "{stdout}"
    );
    assert!(
        stderr.contains("WEBOPS_API_KEY") && stderr.contains("WEBOPS_USERNAME and WEBOPS_PASSWORD"),
        "{stderr}"
    );

    // An unknown flavour in the environment stops check-config with the allowed values.
    let output = command()
        .args(["check-config", "--stdio"])
        .env("WEBOPS_API_FLAVOR", "graphql")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("auto, v1, panel"), "{stderr}");
}

/// Runs `check-config --stdio` against `api_url` with flavour `auto` and returns its
/// `# webops flavour:` line.
async fn probed_flavour_line(api_url: &str) -> String {
    let mut command = tokio::process::Command::from(command());
    let output = command
        .args(["check-config", "--stdio"])
        .env("WEBOPS_API_URL", api_url)
        .env("WEBOPS_USERNAME", PANEL_USER)
        .env("WEBOPS_PASSWORD", PANEL_PASSWORD)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains(PANEL_PASSWORD), "{stdout}");
    assert!(!stderr.contains(PANEL_PASSWORD), "{stderr}");
    stdout
        .lines()
        .find(|l| l.starts_with("# webops flavour: "))
        .unwrap_or_else(|| panic!("no flavour line:\n{stdout}"))
        .to_owned()
}

#[tokio::test]
async fn check_config_probes_the_server_once_for_the_auto_flavor() {
    let panel = MockPanel::builder()
        .seed(PanelSeed::Demo)
        .start()
        .await
        .unwrap();
    let line = probed_flavour_line(&panel.base_url()).await;
    assert!(
        line.starts_with("# webops flavour: panel (auto: "),
        "{line}"
    );
    assert!(line.contains("GET /api/status/"), "{line}");
    // The probe is anonymous: it never logs in.
    let paths: Vec<String> = panel.requests().into_iter().map(|r| r.path).collect();
    assert!(!paths.is_empty());
    assert!(paths.iter().all(|p| p.ends_with("/status/")), "{paths:?}");
    panel.shutdown().await;

    let v1 = MockWebOps::builder()
        .seed(Seed::Demo)
        .start()
        .await
        .unwrap();
    let line = probed_flavour_line(&v1.base_url()).await;
    assert!(line.starts_with("# webops flavour: v1 (auto: "), "{line}");
    assert!(line.contains("GET /api/v1/status/"), "{line}");
    v1.shutdown().await;

    // Nothing listens: the flavour is undetermined and check-config still succeeds.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let line = probed_flavour_line(&format!("http://{closed}")).await;
    assert!(
        line.starts_with("# webops flavour: undetermined (auto: "),
        "{line}"
    );
}

#[test]
fn repository_schemes_and_allowed_hosts_are_read_and_checked() {
    use webops_mcp_core::RepositoryScheme;

    let defaults = Config::loader().load().unwrap();
    assert_eq!(
        defaults.security.repositories.schemes,
        [RepositoryScheme::Https]
    );
    assert!(defaults.security.repositories.allowed_hosts.is_empty());
    let toml = defaults.to_redacted_toml();
    assert!(toml.contains("repository_schemes = [\"https\"]"), "{toml}");
    assert!(toml.contains("allowed_repository_hosts = []"), "{toml}");

    let config = Config::loader()
        .toml(
            "[webops]\nrepository_schemes = [\"https\", \"http\", \"scp\"]\n\
             allowed_repository_hosts = [\"127.0.0.1\", \"Git.Corp.Internal\", \"[fd00::1]\"]\n",
        )
        .load()
        .unwrap();
    let policy = &config.security.repositories;
    assert_eq!(
        policy.schemes,
        [
            RepositoryScheme::Https,
            RepositoryScheme::Http,
            RepositoryScheme::Scp
        ]
    );
    assert!(policy.allows_host("git.corp.internal"));
    assert!(policy.allows_host("fd00::1"));
    assert_eq!(config.security.to_core().repositories, *policy);
    let toml = config.to_redacted_toml();
    assert!(
        toml.contains("repository_schemes = [\n    \"https\",\n    \"http\",\n    \"scp\",\n]")
            || toml.contains("repository_schemes = [\"https\", \"http\", \"scp\"]"),
        "{toml}"
    );

    let errors = errors_of(
        Config::loader()
            .toml(
                "[webops]\nrepository_schemes = [\"https\", \"file\", \"HTTP\"]\n\
                 allowed_repository_hosts = [\"https://git.corp\", \"git.corp/x\", \"ok.corp\"]\n",
            )
            .load(),
    );
    let all = errors.join("\n");
    for needle in [
        "[webops] repository_schemes: unknown repository scheme \"file\"; allowed: \"https\", \"http\", \"ssh\", \"scp\"",
        "[webops] repository_schemes: unknown repository scheme \"HTTP\"",
        "[webops] allowed_repository_hosts: allowed repository host \"https://git.corp\" is not a host name or an IP address",
        "[webops] allowed_repository_hosts: allowed repository host \"git.corp/x\"",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    assert_eq!(errors.len(), 4, "{all}");
    assert!(
        one_error("[webops]\nrepository_schemes = []\n").contains(
            "[webops] repository_schemes must name at least one of \"https\", \"http\", \"ssh\", \"scp\""
        )
    );
    assert!(one_error("[webops]\nrepository_scheme = [\"https\"]\n").contains("unknown key"));
}

#[test]
fn the_answer_budget_is_read_and_checked() {
    assert_eq!(
        Config::loader().load().unwrap().security.max_answer_bytes,
        60_000
    );
    let config = Config::loader()
        .toml("[limits]\nmax_answer_bytes = 20000\n")
        .load()
        .unwrap();
    assert_eq!(config.security.max_answer_bytes, 20_000);
    assert_eq!(config.security.to_core().max_answer_bytes, 20_000);
    assert!(
        config
            .to_redacted_toml()
            .contains("max_answer_bytes = 20000")
    );
    for bytes in [0, 16_383, 10_000_001] {
        let error = one_error(&format!("[limits]\nmax_answer_bytes = {bytes}\n"));
        assert_eq!(
            error,
            format!("[limits] max_answer_bytes must be 16384 to 10000000, got {bytes}")
        );
    }
}
