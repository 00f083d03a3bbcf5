//! The credential commands of the binary: `hash-key` and `hash-password`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::process::Stdio;

use crate::common::command;
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use webops_mcp_server::{API_KEY_PREFIX, Config, key_digest};

#[test]
fn hash_key_prints_a_fresh_key_its_digest_and_a_working_snippet() {
    let run = || {
        let output = command().arg("hash-key").output().unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    let first = run();
    let key = first
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(API_KEY_PREFIX))
        .unwrap()
        .to_owned();
    assert_eq!(key.len(), API_KEY_PREFIX.len() + 64);
    let digest = hex::encode(key_digest(&key));
    assert!(first.contains(&digest), "{first}");

    // The snippet is valid configuration for that key.
    let snippet = &first[first.find("[[auth.api_keys]]").unwrap()..];
    let config = Config::loader().toml(snippet).load().unwrap();
    assert_eq!(hex::encode(config.auth.api_keys[0].digest), digest);

    let second = run();
    assert!(!second.contains(&key), "every run makes a new key");
}

#[test]
fn hash_password_reads_stdin_and_prints_an_argon2id_hash() {
    let mut child = command()
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"s3cret pass\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let hash = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let parsed = PasswordHash::new(&hash).unwrap();
    let argon = argon2::Argon2::default();
    assert!(argon.verify_password(b"s3cret pass", &parsed).is_ok());
    assert!(argon.verify_password(b"s3cret pass\n", &parsed).is_err());

    // And the configuration accepts it.
    let toml = format!(
        "[[auth.basic]]\nusername = \"ops\"\npassword_hash = \"{hash}\"\npermissions = [\"admin:*\"]\n"
    );
    assert_eq!(
        Config::loader().toml(toml).load().unwrap().auth.basic.len(),
        1
    );
}

#[test]
fn hash_password_refuses_an_empty_password() {
    let output = command()
        .arg("hash-password")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no password"));
}

#[test]
fn version_and_unknown_commands() {
    let output = command().arg("--version").output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains(env!("CARGO_PKG_VERSION")));
    let output = command().arg("serve-everything").output().unwrap();
    assert!(!output.status.success());
}
