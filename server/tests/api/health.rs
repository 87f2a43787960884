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

/// The real `server` binary on a fresh SQLite file and a random port, with its log captured.
struct LoggedServer {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    base: String,
    _dir: tempfile::TempDir,
}

impl LoggedServer {
    /// `rust_log` must let `server`'s info lines through: start-up waits for "listening on".
    async fn start(rust_log: &str) -> Self {
        use std::io::{BufRead, BufReader};

        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/s.db", dir.path().display()),
            )
            .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", rust_log)
            // No sweep during the test: its statements would mix with the request's.
            .env("SESSION_SWEEP_INTERVAL", "3600")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("server binary starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(strip_ansi(&line));
            }
        });
        let addr = loop {
            let line = lines
                .recv_timeout(std::time::Duration::from_secs(30))
                .expect("server logs");
            if let Some(at) = line.find("listening on http://") {
                break line[at + "listening on http://".len()..].trim().to_owned();
            }
        };
        Self {
            child,
            lines,
            base: format!("http://{addr}"),
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What was logged since the last call, after letting stragglers arrive.
    async fn drain(&self) -> Vec<String> {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        self.lines.try_iter().collect()
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the real binary with debug logging through a sign-in and sign-out and checks that no
/// session id appears in what it logs.
#[tokio::test]
async fn logs_never_contain_a_session_id() {
    let server = LoggedServer::start("debug").await;
    let client = reqwest::Client::new();
    let form = [("username", "alice"), ("password", PASSWORD)];
    let registered = client
        .post(server.url("/api/register"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let first = session_cookie(&registered).unwrap();
    let login = client
        .post(server.url("/api/login"))
        .header("cookie", format!("{COOKIE}={first}"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let second = session_cookie(&login).unwrap();
    client
        .post(server.url("/api/logout"))
        .header("cookie", format!("{COOKIE}={second}"))
        .send()
        .await
        .unwrap();
    client
        .get(server.url("/api/me"))
        .header("cookie", format!("{COOKIE}={second}"))
        .send()
        .await
        .unwrap();
    let log = server.drain().await;
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

/// A signed-in request reads its session and its user in one statement (the session store hands
/// the user to the auth layer), not one statement each. Counted from sqlx's statement log and
/// the log of Signoff's own SQLite session read (`signoff::session_read`).
#[tokio::test]
async fn a_signed_in_request_reads_the_database_once() {
    let server =
        LoggedServer::start("warn,server=info,sqlx::query=debug,signoff::session_read=debug").await;
    let client = reqwest::Client::new();
    let registered = client
        .post(server.url("/api/register"))
        .form(&[("username", "alice"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = session_cookie(&registered).unwrap();
    server.drain().await;

    for _ in 0..3 {
        let me: serde_json::Value = client
            .get(server.url("/api/me"))
            .header("cookie", format!("{COOKIE}={cookie}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["username"], "alice");
        let statements: Vec<String> = server
            .drain()
            .await
            .into_iter()
            .filter(|line| line.contains("sqlx::query") || line.contains("signoff::session_read"))
            .collect();
        assert_eq!(statements.len(), 1, "{statements:#?}");
        assert!(statements[0].contains("JOIN users"), "{statements:#?}");
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
