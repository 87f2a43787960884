use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn healthz_follows_the_database() {
    let app = spawn_app().await;
    let response = app.get("/healthz", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "ok");
    app.db.close().await;
    assert_eq!(
        app.get("/healthz", None).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn database_down_is_503_json_not_500() {
    let app = spawn_app().await;
    let cookie = app.register("alice").await;
    app.db.close().await;
    for response in [
        app.get("/api/me", Some(&cookie)).await,
        app.login_attempt("alice", PASSWORD).await,
    ] {
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let (code, message) = error_body(response).await;
        assert_eq!(code, "unavailable");
        assert!(!message.contains("sqlx"), "no internals leak: {message}");
    }
}

#[tokio::test]
async fn unknown_api_path_is_a_client_error() {
    let app = spawn_app().await;
    let response = app.post("/api/nope", &[], None).await;
    assert!(response.status().is_client_error(), "{}", response.status());
}

#[test]
fn bad_configuration_stops_start_up_naming_the_variable() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .env("SESSION_IDLE_TIMEOUT", "half an hour")
        .env("DATABASE_URL", "sqlite::memory:")
        .output()
        .expect("server binary runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SESSION_IDLE_TIMEOUT"), "{stderr}");
}

/// Runs the real binary with debug logging through a sign-in and sign-out and checks that no
/// session id appears in what it logs.
#[tokio::test]
async fn logs_never_contain_a_session_id() {
    use std::io::{BufRead, BufReader};

    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/s.db", dir.path().display()),
        )
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "debug")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("server binary starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let addr = loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("server logs");
        let plain = strip_ansi(&line);
        log.push(plain.clone());
        if let Some(at) = plain.find("listening on http://") {
            break plain[at + "listening on http://".len()..].trim().to_owned();
        }
    };
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let form = [("username", "alice"), ("password", PASSWORD)];
    let registered = client
        .post(format!("{base}/api/register"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let first = session_cookie(&registered).unwrap();
    let login = client
        .post(format!("{base}/api/login"))
        .header("cookie", format!("{COOKIE}={first}"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let second = session_cookie(&login).unwrap();
    client
        .post(format!("{base}/api/logout"))
        .header("cookie", format!("{COOKIE}={second}"))
        .send()
        .await
        .unwrap();
    client
        .get(format!("{base}/api/me"))
        .header("cookie", format!("{COOKIE}={second}"))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let _ = child.kill();
    let _ = child.wait();
    while let Ok(line) = rx.try_recv() {
        log.push(strip_ansi(&line));
    }
    assert!(
        log.iter().any(|l| l.contains("signed out")),
        "the sign-out was logged"
    );
    for line in &log {
        assert!(
            !line.contains(&first) && !line.contains(&second),
            "session id in log: {line}"
        );
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
