//! `spawn_app()` and the HTTP helpers the tests share.

use std::{net::SocketAddr, path::PathBuf};

use app::db::Database;
use reqwest::{header, Response, StatusCode};
use serde_json::Value;
use server::{config::Settings, startup::Application};
use tempfile::TempDir;
use tokio::{sync::oneshot, task::JoinHandle};

pub const COOKIE: &str = "signoff_session";
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub addr: SocketAddr,
    pub db: Database,
    pub db_path: PathBuf,
    client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    // Keeps the database file alive for the app's lifetime (and for a restart on the same file).
    _dir: Option<TempDir>,
}

/// Starts the server on a random port with a new, empty SQLite database.
pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("signoff.db");
    let mut app = spawn_app_on(path, &[]).await;
    app._dir = Some(dir);
    app
}

/// Starts the server with a new, empty SQLite database and extra environment settings.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("signoff.db");
    let mut app = spawn_app_on(path, extra).await;
    app._dir = Some(dir);
    app
}

/// Starts the server on the given SQLite file with extra environment settings.
pub async fn spawn_app_on(db_path: PathBuf, extra: &[(&str, &str)]) -> TestApp {
    let url = format!("sqlite://{}", db_path.display());
    let site_root = db_path
        .parent()
        .expect("db has a directory")
        .display()
        .to_string();
    let mut vars: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), url),
        ("LEPTOS_SITE_ADDR".into(), "127.0.0.1:0".into()),
        ("LEPTOS_SITE_ROOT".into(), site_root),
    ];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let settings = Settings::from_lookup(|name| {
        vars.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    })
    .expect("test settings are valid");

    let app = Application::build(settings).await.expect("app builds");
    let addr = app.local_addr();
    let db = app.state().db.clone();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        db,
        db_path,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        shutdown: Some(tx),
        server: Some(server),
        _dir: None,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the server gracefully and waits for it; the database file stays.
    pub async fn stop(&mut self) -> Option<TempDir> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran");
        }
        self.db.close().await;
        self._dir.take()
    }

    /// POSTs a form (the server functions' input encoding), with an optional session cookie.
    pub async fn post(&self, path: &str, form: &[(&str, &str)], cookie: Option<&str>) -> Response {
        self.post_with(path, form, cookie, &[]).await
    }

    /// Like [`post`](Self::post), with extra request headers.
    pub async fn post_with(
        &self,
        path: &str,
        form: &[(&str, &str)],
        cookie: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = self
            .client
            .post(self.url(path))
            .header(header::ACCEPT, "application/json")
            .form(form);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, format!("{COOKIE}={cookie}"));
        }
        request.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, format!("{COOKIE}={cookie}"));
        }
        request.send().await.expect("request sent")
    }

    /// Signs `name` in (password [`PASSWORD`]) and returns the new session cookie value.
    pub async fn login(&self, name: &str) -> String {
        let response = self
            .post(
                "/api/login",
                &[("username", name), ("password", PASSWORD)],
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "login {name}");
        session_cookie(&response).expect("login sets a session cookie")
    }

    /// `GET` a JSON endpoint with a cookie, expecting 200.
    pub async fn get_json(&self, path: &str, cookie: Option<&str>) -> Value {
        let response = self.get(path, cookie).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.expect("json")
    }

    /// Registers `name` and returns its session cookie value.
    pub async fn register(&self, name: &str) -> String {
        let response = self
            .post(
                "/api/register",
                &[("username", name), ("password", PASSWORD)],
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "register {name}");
        session_cookie(&response).expect("register sets a session cookie")
    }

    /// `GET /api/me` with `cookie`: the user's name, or `None` when signed out.
    pub async fn me(&self, cookie: Option<&str>) -> Option<String> {
        let response = self.get("/api/me", cookie).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("json");
        body.get("username")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// How many rows the session store holds for this cookie value.
    pub async fn session_rows(&self, cookie: &str) -> i64 {
        match &self.db {
            Database::Sqlite(pool) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM tower_sessions WHERE id = ?")
                    .bind(cookie)
                    .fetch_one(pool)
                    .await
                    .expect("count")
            }
        }
    }
}

/// Every `Set-Cookie` header of a response.
pub fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect()
}

/// The `Set-Cookie` for the session cookie, if any.
pub fn session_set_cookie(response: &Response) -> Option<String> {
    let prefix = format!("{COOKIE}=");
    let mine: Vec<String> = set_cookies(response)
        .into_iter()
        .filter(|c| c.starts_with(&prefix))
        .collect();
    assert!(mine.len() <= 1, "at most one session Set-Cookie: {mine:?}");
    mine.into_iter().next()
}

/// The value of a non-empty session cookie the response sets.
pub fn session_cookie(response: &Response) -> Option<String> {
    let header = session_set_cookie(response)?;
    let value = header
        .split(';')
        .next()?
        .trim_start_matches(&format!("{COOKIE}="))
        .to_owned();
    (!value.is_empty()).then_some(value)
}

/// The cookie attributes, lower-cased, without the name=value pair.
pub fn attributes(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

pub fn cache_control(response: &Response) -> Option<String> {
    header_value(response, "cache-control")
}

pub fn header_value(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii").to_owned())
}

/// An error body: (`code`, `message`).
pub async fn error_body(response: Response) -> (String, String) {
    let body: Value = response.json().await.expect("error body is JSON");
    (
        body["code"].as_str().expect("code").to_owned(),
        body["message"].as_str().expect("message").to_owned(),
    )
}
