//! `spawn_app()` and the HTTP helpers the tests share.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use reqwest::{header, Response, StatusCode};
use serde_json::Value;
use server::{config::Settings, startup::Application};
use signoff::db::Database;
use tempfile::TempDir;
use tokio::{sync::oneshot, task::JoinHandle};

pub const COOKIE: &str = "signoff_session";
/// The session cookie's name when `COOKIE_SECURE=true` (the `__Host-` prefix).
pub const SECURE_COOKIE: &str = "__Host-signoff_session";
pub const PASSWORD: &str = "correct horse battery staple";
/// What Chromium sends with a native form post from the app's own page (`Origin: null` under
/// `Referrer-Policy: no-referrer`).
pub const BROWSER_FORM: &[(&str, &str)] = &[
    (
        "accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ),
    ("origin", "null"),
    ("sec-fetch-site", "same-origin"),
    ("sec-fetch-mode", "navigate"),
    ("sec-fetch-dest", "document"),
];
/// For tests that load a server from one address on purpose (hundreds of requests in flight
/// from one client): lifts that address's share of the connection slots, which would otherwise
/// refuse them before they reach what the test is about. The share itself is tested in
/// `abuse::one_address_cannot_hold_the_server_and_a_full_server_refuses_fast`.
pub const ONE_CLIENT_LOAD: (&str, &str) = ("SERVER_MAX_CONNECTIONS_PER_CLIENT", "100000");

pub struct TestApp {
    pub addr: SocketAddr,
    pub db: Database,
    /// The database this app runs on; pass it to `spawn_app_on` for another instance on the
    /// same data.
    pub test_db: TestDb,
    client: reqwest::Client,
    /// The session cookie's name for this app's settings.
    cookie_name: &'static str,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// A fresh, empty database for one test, on the backend the run selects:
/// `SIGNOFF_TEST_BACKEND=postgres` (with `TEST_DATABASE_URL` naming a server; `make test` sets
/// both) or SQLite by default. Removed when the last clone is dropped.
#[derive(Clone)]
pub struct TestDb(Arc<TestDbInner>);

struct TestDbInner {
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    /// The temporary directory holding the SQLite file; removed on drop.
    Sqlite(#[allow(dead_code)] TempDir),
    Postgres {
        admin_url: String,
        name: String,
    },
}

/// Whether this run tests against PostgreSQL.
pub fn postgres_run() -> bool {
    std::env::var("SIGNOFF_TEST_BACKEND").is_ok_and(|backend| backend == "postgres")
}

impl TestDb {
    pub async fn new() -> TestDb {
        if postgres_run() {
            Self::postgres().await
        } else {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}/signoff.db", dir.path().display());
            TestDb(Arc::new(TestDbInner {
                url,
                cleanup: Cleanup::Sqlite(dir),
            }))
        }
    }

    async fn postgres() -> TestDb {
        use sqlx::Connection;
        let admin_url = std::env::var("TEST_DATABASE_URL")
            .expect("SIGNOFF_TEST_BACKEND=postgres needs TEST_DATABASE_URL (make test sets it up)");
        // `SIGNOFF_TEST_RUN` (set by `make test`) groups one run's databases for cleanup.
        let run = std::env::var("SIGNOFF_TEST_RUN").unwrap_or_else(|_| "adhoc".into());
        let name = format!("signoff_test_{run}_{}", unique_suffix());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "PostgreSQL at TEST_DATABASE_URL is unreachable: {error}. \
                     Run scripts/ensure-postgres.sh or point TEST_DATABASE_URL at a server."
                )
            });
        // The name is made by this file (a prefix and a counter), never read from outside.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let _ = admin.close().await;
        TestDb(Arc::new(TestDbInner {
            url: with_database(&admin_url, &name),
            cleanup: Cleanup::Postgres { admin_url, name },
        }))
    }

    pub fn url(&self) -> &str {
        &self.0.url
    }
}

impl Drop for TestDbInner {
    /// Drops the test database on a detached thread. Never blocks: this runs on the test's
    /// runtime, which may still own the client side of a connection handshake; blocking it would
    /// leave that backend stuck in authentication, and every DROP DATABASE on the server waiting
    /// for it (up to PostgreSQL's 60 s `authentication_timeout`). Whatever a finished process
    /// leaves behind, `make test` drops by the run's name prefix.
    fn drop(&mut self) {
        let Cleanup::Postgres { admin_url, name } = &self.cleanup else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                use sqlx::Connection;
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(drop))
                        .execute(&mut admin)
                        .await;
                }
            });
        });
    }
}

/// A PostgreSQL URL with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(base, query)| (base, Some(query)));
    let (server, _) = base.rsplit_once('/').expect("a database URL has a path");
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Starts the server on a random port with a new, empty database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the server with a new, empty database and extra environment settings.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    spawn_app_on(&TestDb::new().await, extra).await
}

/// Starts the server on the given database with extra environment settings.
pub async fn spawn_app_on(test_db: &TestDb, extra: &[(&str, &str)]) -> TestApp {
    let mut vars: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), test_db.url().to_owned()),
        ("LEPTOS_SITE_ADDR".into(), "127.0.0.1:0".into()),
        // No static files in these tests; any existing directory will do.
        (
            "LEPTOS_SITE_ROOT".into(),
            std::env::temp_dir().display().to_string(),
        ),
    ];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let settings = Settings::from_lookup(|name| {
        vars.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    })
    .expect("test settings are valid");

    let cookie_name = if settings.signoff.sessions.cookie_secure {
        SECURE_COOKIE
    } else {
        COOKIE
    };
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
        test_db: test_db.clone(),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        cookie_name,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the server gracefully and waits for it; the database stays.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran");
        }
        self.db.close().await;
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
            request = request.header(header::COOKIE, format!("{}={cookie}", self.cookie_name));
        }
        request.send().await.expect("request sent")
    }

    /// POSTs a JSON body (`fetch` with `application/json`, as the passkey calls are made), with
    /// an optional session cookie.
    pub async fn post_json(&self, path: &str, body: &Value, cookie: Option<&str>) -> Response {
        self.post_raw(path, body.to_string().into_bytes(), cookie)
            .await
    }

    /// POSTs these exact bytes as `application/json`.
    pub async fn post_raw(&self, path: &str, body: Vec<u8>, cookie: Option<&str>) -> Response {
        let mut request = self
            .client
            .post(self.url(path))
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, format!("{}={cookie}", self.cookie_name));
        }
        request.send().await.expect("request sent")
    }

    /// A native form post as Chromium sends it ([`BROWSER_FORM`]), with exactly `cookies` (a raw
    /// `Cookie` header; empty for none). The answer is not followed (a 303 lands on the page).
    pub async fn submit_form(&self, path: &str, form: &[(&str, &str)], cookies: &str) -> Response {
        let mut request = self.client.post(self.url(path)).form(form);
        for (name, value) in BROWSER_FORM {
            request = request.header(*name, *value);
        }
        if !cookies.is_empty() {
            request = request.header(header::COOKIE, cookies);
        }
        request.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, format!("{}={cookie}", self.cookie_name));
        }
        request.send().await.expect("request sent")
    }

    /// `POST /api/login` with these credentials and no cookie.
    pub async fn login_attempt(&self, username: &str, password: &str) -> Response {
        self.post(
            "/api/login",
            &[("username", username), ("password", password)],
            None,
        )
        .await
    }

    /// `POST /api/login` as `username` (password [`PASSWORD`]) from a browser that already holds
    /// session `cookie`: signing in again, or as someone else, over a live session.
    pub async fn login_over(&self, username: &str, cookie: &str) -> Response {
        self.post(
            "/api/login",
            &[("username", username), ("password", PASSWORD)],
            Some(cookie),
        )
        .await
    }

    /// `POST /api/change_password` from [`PASSWORD`] to `new_password` with session `cookie`.
    pub async fn change_password(&self, cookie: &str, new_password: &str) -> Response {
        self.post(
            "/api/change_password",
            &[
                ("current_password", PASSWORD),
                ("new_password", new_password),
            ],
            Some(cookie),
        )
        .await
    }

    /// `POST /api/register` with these credentials and no cookie.
    pub async fn register_attempt(&self, username: &str, password: &str) -> Response {
        self.post(
            "/api/register",
            &[("username", username), ("password", password)],
            None,
        )
        .await
    }

    /// Signs `name` in (password [`PASSWORD`]) and returns the new session cookie value.
    pub async fn login(&self, name: &str) -> String {
        let response = self.login_attempt(name, PASSWORD).await;
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
        let response = self.register_attempt(name, PASSWORD).await;
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
        signoff::on_db!(&self.db, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM tower_sessions WHERE id = $1")
                .bind(cookie)
                .fetch_one(pool)
                .await
                .expect("count")
        })
    }

    /// Every session tag in the audit trail.
    pub async fn audit_tags(&self) -> Vec<String> {
        let tags: Vec<Option<String>> = signoff::on_db!(&self.db, |pool| {
            sqlx::query_scalar("SELECT session_tag FROM audit_events")
                .fetch_all(pool)
                .await
                .expect("audit tags")
        });
        tags.into_iter().flatten().collect()
    }
}

impl TestApp {
    /// `GET /api/events` with `cookie`.
    pub async fn events(&self, cookie: Option<&str>) -> Response {
        self.get("/api/events", cookie).await
    }

    /// Opens `/api/events` with `cookie` and waits for its `ready` event.
    pub async fn open_events(&self, cookie: &str) -> EventStream {
        let response = self.events(Some(cookie)).await;
        assert_eq!(response.status(), StatusCode::OK, "open /api/events");
        let mut stream = EventStream {
            response,
            buffer: String::new(),
        };
        let (name, _) = stream
            .next_event(Duration::from_secs(5))
            .await
            .expect("a ready event");
        assert_eq!(name, "ready");
        stream
    }

    /// The public handle of the session `cookie` holds (from `GET /api/sessions`).
    pub async fn handle_of(&self, cookie: &str) -> String {
        let sessions = self.get_json("/api/sessions", Some(cookie)).await;
        sessions
            .as_array()
            .expect("a list")
            .iter()
            .find(|s| s["current"] == true)
            .and_then(|s| s["id"].as_str())
            .expect("the current session is listed")
            .to_owned()
    }
}

/// A client of a `text/event-stream` response.
pub struct EventStream {
    response: Response,
    buffer: String,
}

impl EventStream {
    /// The next event as (`event`, `data`), skipping comments; `None` when the stream ends or
    /// nothing arrives `within`.
    pub async fn next_event(&mut self, within: Duration) -> Option<(String, String)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = String::new();
                for line in frame.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim());
                    }
                }
                if !name.is_empty() || !data.is_empty() {
                    return Some((name, data));
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Waits for `session-ended` and returns its JSON data.
    pub async fn ended(&mut self, within: Duration) -> Value {
        let (name, data) = self
            .next_event(within)
            .await
            .expect("a session-ended event in time");
        assert_eq!(name, "session-ended", "data: {data}");
        serde_json::from_str(&data).expect("JSON data")
    }

    /// Whether the server has closed the stream (within a second).
    pub async fn closed(&mut self) -> bool {
        matches!(
            tokio::time::timeout(Duration::from_secs(1), self.response.chunk()).await,
            Ok(Ok(None) | Err(_))
        )
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
    let mine: Vec<String> = set_cookies(response)
        .into_iter()
        .filter(|c| {
            c.starts_with(&format!("{COOKIE}=")) || c.starts_with(&format!("{SECURE_COOKIE}="))
        })
        .collect();
    assert!(mine.len() <= 1, "at most one session Set-Cookie: {mine:?}");
    mine.into_iter().next()
}

/// The value of a non-empty session cookie the response sets.
pub fn session_cookie(response: &Response) -> Option<String> {
    let header = session_set_cookie(response)?;
    let value = header.split(';').next()?.split_once('=')?.1.to_owned();
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
