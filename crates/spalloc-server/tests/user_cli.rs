//! `spalloc-server user ...` run as a real process against a state file,
//! checked by opening the same file with the accounts module.

use spalloc_server::accounts::{Accounts, Role};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn now() -> i64 {
    spalloc_server::clock::now() as i64
}

/// A fresh directory holding a config file; returns the config path.
fn config(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spalloc-user-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("server.toml");
    std::fs::write(&path, "port = 0\n").expect("config");
    path
}

/// Runs `spalloc-server ARGS...` with `stdin` piped in.
fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spalloc-server"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).expect("writes stdin");
    }
    child.wait_with_output().expect("runs")
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn accounts(config: &Path) -> Accounts {
    Accounts::open(&spalloc_server::store::default_state_path(config)).expect("opens")
}

#[test]
fn a_user_added_from_the_command_line_logs_in_with_the_password_from_stdin() {
    let cfg = config("add");
    let c = cfg.to_str().expect("utf-8 path");
    ok(&run(
        &[
            "user", "add", "alice", "--role", "admin", "--group", "wheel", "--config", c,
        ],
        "s3cret\n",
    ));
    let a = accounts(&cfg);
    let identity = a.check_password("alice", "s3cret", now()).expect("logs in");
    assert_eq!(identity.role, Role::Admin);
    assert_eq!(identity.groups, ["wheel"]);

    let listed = ok(&run(&["user", "list", "--config", c], ""));
    let line = listed
        .lines()
        .find(|l| l.starts_with("alice"))
        .expect("alice listed");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields, ["alice", "admin", "enabled", "yes", "wheel"]);
}

#[test]
fn adding_an_existing_user_or_naming_no_server_fails_with_a_message() {
    let cfg = config("twice");
    let c = cfg.to_str().expect("utf-8 path");
    ok(&run(&["user", "add", "bob", "--config", c], "pw\n"));
    let again = run(&["user", "add", "bob", "--config", c], "pw\n");
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let nowhere = run(&["user", "list"], "");
    assert_eq!(nowhere.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nowhere.stderr).contains("--config"));

    let empty = run(&["user", "add", "carol", "--config", c], "\n");
    assert_eq!(empty.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("empty"));

    let bad_role = run(
        &["user", "add", "dave", "--role", "root", "--config", c],
        "pw\n",
    );
    assert_eq!(bad_role.status.code(), Some(2), "a usage error");
}

#[test]
fn a_token_printed_by_the_command_line_authenticates_until_revoked() {
    let cfg = config("token");
    let c = cfg.to_str().expect("utf-8 path");
    ok(&run(&["user", "add", "alice", "--config", c], "pw\n"));
    let token = ok(&run(
        &["user", "token", "alice", "--label", "ci", "--config", c],
        "",
    ));
    let token = token.trim();
    let a = accounts(&cfg);
    let (identity, id) = a.check_token(token, now()).expect("reads").expect("valid");
    assert_eq!(identity.user, "alice");

    let listed = ok(&run(&["user", "tokens", "alice", "--config", c], ""));
    assert!(listed
        .lines()
        .any(|l| l.starts_with(&id.0.to_string()) && l.contains("ci")));

    ok(&run(
        &["user", "revoke", "alice", &id.0.to_string(), "--config", c],
        "",
    ));
    assert_eq!(a.check_token(token, now()).expect("reads"), None);
    let again = run(
        &["user", "revoke", "alice", &id.0.to_string(), "--config", c],
        "",
    );
    assert_eq!(again.status.code(), Some(1));
}

#[test]
fn disable_passwd_and_role_take_effect_in_the_state_file() {
    let cfg = config("change");
    let c = cfg.to_str().expect("utf-8 path");
    ok(&run(&["user", "add", "alice", "--config", c], "old\n"));
    let a = accounts(&cfg);
    let t = now();

    ok(&run(&["user", "passwd", "alice", "--config", c], "new\n"));
    assert!(a.check_password("alice", "new", t).is_ok());
    assert!(a.check_password("alice", "old", t).is_err());

    ok(&run(
        &["user", "role", "alice", "reader", "--config", c],
        "",
    ));
    assert_eq!(
        a.check_password("alice", "new", t).expect("logs in").role,
        Role::Reader
    );

    ok(&run(&["user", "disable", "alice", "--config", c], ""));
    assert!(a.check_password("alice", "new", t).is_err());
    let listed = ok(&run(&["user", "list", "--config", c], ""));
    assert!(listed.contains("disabled"));
    ok(&run(&["user", "enable", "alice", "--config", c], ""));
    assert!(a.check_password("alice", "new", t).is_ok());

    let missing = run(&["user", "disable", "nobody", "--config", c], "");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nobody"));
}
