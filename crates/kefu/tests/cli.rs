//! The `kefu` command line: migrate, user add, and what serve prints.

mod common;

use std::{io::Write, process::Stdio};

use common::{Process, temp_dir};
use serde_json::json;

fn kefu(data_dir: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kefu"));
    command
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("KEFU_DATABASE_URL")
        .env("KEFU_LOG", "warn");
    command
}

#[test]
fn migrate_creates_the_schema_and_is_idempotent() {
    let dir = temp_dir();
    for _ in 0..2 {
        let out = kefu(&dir).arg("migrate").output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("up to date"));
    }
    assert!(dir.join("kefu.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_add_reads_the_password_from_stdin_and_the_user_can_log_in() {
    let dir = temp_dir();
    let mut child = kefu(&dir)
        .args([
            "user",
            "add",
            "--role",
            "agent",
            "--username",
            "Carol",
            "--display-name",
            "Carol C",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created agent carol"));

    // The same username again is refused with a clear message.
    let mut again = kefu(&dir)
        .args([
            "user",
            "add",
            "--role",
            "agent",
            "--username",
            "carol",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    again
        .stdin
        .take()
        .unwrap()
        .write_all(b"another password")
        .unwrap();
    let out = again.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("taken"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let server = Process::spawn(&dir, None);
    let response = reqwest::Client::new()
        .post(format!("{}/api/login", server.base))
        .json(&json!({"username": "carol", "password": "a long password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["user"]["displayName"], "Carol C");
    assert_eq!(body["user"]["role"], "agent");
}

#[test]
fn a_password_on_the_command_line_is_not_accepted() {
    let out = kefu(&temp_dir())
        .args(["user", "add", "--role", "agent", "--username", "dave"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "--password-stdin is required");
}

#[test]
fn serve_prints_where_to_go_and_how_to_log_in() {
    let dir = temp_dir();
    let mut child = kefu(&dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--demo"])
        .env_remove("KEFU_ADMIN_PASSWORD")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let banner: Vec<String> = (0..7)
        .map_while(|_| lines.next().and_then(Result::ok))
        .collect();
    child.kill().unwrap();
    child.wait().unwrap();
    let banner = banner.join("\n");
    assert!(
        banner.contains("kefu listening on http://127.0.0.1:"),
        "{banner}"
    );
    assert!(banner.contains("/console"), "{banner}");
    assert!(
        banner.contains("user admin, password "),
        "a generated admin password is shown once: {banner}"
    );
    assert!(
        banner.contains("demo agent: user alice, password "),
        "{banner}"
    );
    let logins = std::fs::read_to_string(dir.join("demo-logins")).unwrap();
    assert!(logins.starts_with("alice "));
}
