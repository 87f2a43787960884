//! A real OpenID Provider for the tests (`scripts/idp/idp.mjs`, npm `oidc-provider`), a
//! cookie-keeping browser that walks the sign-in flow through it, and tokens signed with the
//! provider's own key for the hostile cases.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{cookie::CookieStore, header, Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_on, TestApp, TestDb};

/// The provider id the test apps configure.
pub const PROVIDER: &str = "test";
pub const PROVIDER_NAME: &str = "Test IdP";
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

pub struct Idp {
    child: Child,
    pub issuer: String,
    pub port: u16,
    /// The provider's signing key, as a private JWK and as PEM.
    pub jwk: Value,
    pem: String,
}

impl Idp {
    /// Starts a provider on a free loopback port with a fresh signing key.
    pub fn start() -> Idp {
        Self::start_with(0, None)
    }

    /// On `port` (0: any), signing with `key` (a private JWK) if given.
    pub fn start_with(port: u16, key: Option<&Value>) -> Idp {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/idp");
        assert!(
            std::path::Path::new(dir)
                .join("node_modules/oidc-provider")
                .exists(),
            "the test provider is not installed: run scripts/ensure-tools.sh (make test does)"
        );
        let mut command = Command::new("node");
        command
            .arg("idp.mjs")
            .current_dir(dir)
            .env("IDP_PORT", port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let key_file = key.map(|key| {
            let mut file = tempfile::NamedTempFile::new().expect("key file");
            file.write_all(key.to_string().as_bytes())
                .expect("write key");
            file
        });
        if let Some(file) = &key_file {
            command.env("IDP_KEY_FILE", file.path());
        }
        let mut child = command.spawn().expect("node runs the test provider");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the provider says where it listens");
        let info: Value = serde_json::from_str(&line).expect("the provider's start-up line");
        Idp {
            child,
            issuer: info["issuer"].as_str().expect("issuer").to_owned(),
            port: info["port"].as_u64().expect("port") as u16,
            jwk: info["key"].clone(),
            pem: info["pem"].as_str().expect("pem").to_owned(),
        }
    }

    /// Stops the provider (its port becomes free).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The settings that configure `app` with this provider.
    pub fn settings(&self) -> Vec<(String, String)> {
        vec![
            ("OIDC_PROVIDERS".into(), PROVIDER.into()),
            ("OIDC_TEST_ISSUER".into(), self.issuer.clone()),
            ("OIDC_TEST_CLIENT_ID".into(), client_id()),
            (
                "OIDC_TEST_CLIENT_SECRET".into(),
                "test-client-secret-123".into(),
            ),
            ("OIDC_TEST_NAME".into(), PROVIDER_NAME.into()),
        ]
    }

    /// Registers `apps` (instances of one site, sharing the client) as the provider's client:
    /// their callbacks and post-logout URIs, the first one's back-channel logout URI.
    pub async fn register(&self, apps: &[&TestApp], client_id: &str) {
        self.register_as(apps, client_id, PROVIDER).await;
    }

    /// [`Idp::register`] for the app's provider id `provider`.
    pub async fn register_as(&self, apps: &[&TestApp], client_id: &str, provider: &str) {
        let uris = |path: &str| -> Vec<String> { apps.iter().map(|app| app.url(path)).collect() };
        let metadata = json!({
            "client_id": client_id,
            "client_secret": "test-client-secret-123",
            "redirect_uris": uris(&format!("/api/oidc/{provider}/callback")),
            "post_logout_redirect_uris": uris("/?signed-out"),
            "backchannel_logout_uri": apps[0].url(&format!("/api/oidc/{provider}/backchannel-logout")),
            "backchannel_logout_session_required": true,
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
        });
        let response = reqwest::Client::new()
            .post(format!("{}/__harness/clients", self.issuer))
            .json(&metadata)
            .send()
            .await
            .expect("register the client");
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    /// A token signed with the provider's own key (or `with_pem`'s), with the provider's key id.
    pub fn sign(&self, typ: Option<&str>, claims: &Value) -> String {
        self.sign_with(&self.pem, typ, claims)
    }

    pub fn sign_with(&self, pem: &str, typ: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = typ.map(str::to_owned);
        header.kid = self.jwk["kid"].as_str().map(str::to_owned);
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("RSA key");
        jsonwebtoken::encode(&header, claims, &key).expect("sign")
    }

    /// A proper logout token for `sid` (claims may be changed or removed, `null`, by `extra`).
    pub fn logout_token(&self, sid: Option<&str>, sub: Option<&str>, extra: Value) -> String {
        let now = now_secs();
        let mut claims = json!({
            "iss": self.issuer,
            "aud": client_id(),
            "iat": now,
            "exp": now + 120,
            "jti": format!("jti-{}", unique()),
            "events": { BACKCHANNEL_EVENT: {} },
        });
        if let Some(sid) = sid {
            claims["sid"] = json!(sid);
        }
        if let Some(sub) = sub {
            claims["sub"] = json!(sub);
        }
        for (key, value) in extra.as_object().cloned().unwrap_or_default() {
            if value.is_null() {
                claims.as_object_mut().expect("object").remove(&key);
            } else {
                claims[key] = value;
            }
        }
        self.sign(Some("logout+jwt"), &claims)
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The client id the test apps use.
pub fn client_id() -> String {
    "signoff-test".to_owned()
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed) + (now_secs() as u64) * 1_000_000
}

/// A provider, and an app configured with it and registered at it.
pub async fn app_with_idp() -> (TestApp, Idp) {
    let idp = Idp::start();
    let app = spawn_with(&idp, &TestDb::new().await, &[]).await;
    idp.register(&[&app], &client_id()).await;
    (app, idp)
}

/// An instance configured with `idp` on `db`, with `extra` settings.
pub async fn spawn_with(idp: &Idp, db: &TestDb, extra: &[(&str, &str)]) -> TestApp {
    let settings = idp.settings();
    let mut vars: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    vars.extend_from_slice(extra);
    spawn_app_on(db, &vars).await
}

/// The provider and the provider's session id (`sid`) of a session, as the store keeps them.
pub async fn provider_columns(app: &TestApp, cookie: &str) -> (Option<String>, Option<String>) {
    signoff::on_db!(&app.db, |pool| {
        sqlx::query_as("SELECT oidc_provider, oidc_sid FROM tower_sessions WHERE id = $1")
            .bind(cookie)
            .fetch_one(pool)
            .await
            .expect("the session row")
    })
}

/// The provider's session id of a session signed in through it.
pub async fn sid_of(app: &TestApp, cookie: &str) -> String {
    provider_columns(app, cookie)
        .await
        .1
        .expect("a provider session has its sid")
}

/// Posts a logout token to `app`'s back-channel logout endpoint, as the provider does.
pub async fn backchannel(app: &TestApp, token: &str) -> Response {
    app.post(
        &format!("/api/oidc/{PROVIDER}/backchannel-logout"),
        &[("logout_token", token)],
        None,
    )
    .await
}

/// A browser: keeps cookies (the app's and the provider's, both on 127.0.0.1) and follows
/// redirects step by step, like a person's would.
pub struct Browser {
    client: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(Arc::clone(&jar))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        Self { client, jar }
    }

    /// Follows redirects to the end (at most 20) and returns the last response.
    pub async fn follow(&self, mut response: Response) -> Response {
        for _ in 0..20 {
            if !response.status().is_redirection() {
                return response;
            }
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .expect("a redirect has a Location");
            let next = response.url().join(location).expect("a valid Location");
            response = self.get(next.as_str()).await;
        }
        panic!("too many redirects");
    }

    pub async fn get(&self, url: &str) -> Response {
        self.client
            .get(url)
            .header(header::ACCEPT, "text/html")
            .send()
            .await
            .expect("GET")
    }

    /// A `GET` server function call from the app's page (it asks for JSON; a browser's navigation
    /// asks for HTML and is sent back to the page instead).
    pub async fn get_api(&self, url: &str) -> Response {
        self.client
            .get(url)
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .expect("GET")
    }

    /// A form post, as a browser sends it from a page of the same origin.
    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Response {
        self.client
            .post(url)
            .header(header::ACCEPT, "text/html")
            .header("sec-fetch-site", "same-origin")
            .form(form)
            .send()
            .await
            .expect("POST")
    }

    /// A `fetch` from the app's page (what the wasm's server function calls send).
    pub async fn post_api(&self, url: &str, form: &[(&str, &str)]) -> Response {
        self.client
            .post(url)
            .header(header::ACCEPT, "application/json")
            .header("sec-fetch-site", "same-origin")
            .form(form)
            .send()
            .await
            .expect("POST")
    }

    /// The app's session cookie in this browser.
    pub fn session(&self, app: &TestApp) -> Option<String> {
        let url = reqwest::Url::parse(&app.url("/")).expect("url");
        let cookies = self.jar.cookies(&url)?;
        cookies
            .to_str()
            .ok()?
            .split("; ")
            .find_map(|pair| pair.strip_prefix("signoff_session="))
            .map(str::to_owned)
    }

    /// Starts "Sign in with the test provider" (`path`: `start`, or `link` when signed in) and
    /// stops at the provider's login page; returns that page's form action.
    pub async fn to_provider_login(&self, app: &TestApp, path: &str) -> String {
        self.to_login_of(app, PROVIDER, path).await
    }

    /// [`Browser::to_provider_login`] for the app's provider id `provider`.
    pub async fn to_login_of(&self, app: &TestApp, provider: &str, path: &str) -> String {
        let response = self
            .post_form(&app.url(&format!("/api/oidc/{provider}/{path}")), &[])
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "start redirects");
        let page = self.follow(response).await;
        assert_eq!(page.status(), StatusCode::OK, "the provider's login page");
        let base = page.url().clone();
        let html = page.text().await.expect("html");
        let action = html
            .split("action=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a login form");
        base.join(action).expect("a form action").to_string()
    }

    /// Signs in at the provider as `username` from its login page (`action`), and follows the
    /// provider back to the app. Returns the app's last response (its page).
    pub async fn provider_login(&self, action: &str, username: &str) -> Response {
        let response = self.post_form(action, &[("username", username)]).await;
        self.follow(response).await
    }

    /// The whole sign-in through the provider as `username`; returns the new session cookie.
    pub async fn sign_in(&self, app: &TestApp, username: &str) -> String {
        let action = self.to_provider_login(app, "start").await;
        let page = self.provider_login(&action, username).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.url().path(), "/", "back on the app's page");
        self.session(app).expect("signed in: a session cookie")
    }

    /// Signs out at the provider itself (its end-session page, "Yes, sign me out"), as a person
    /// would from another tab: the provider then calls back-channel logout.
    pub async fn sign_out_at_provider(&self, idp: &Idp) -> Response {
        let page = self.get(&format!("{}/session/end", idp.issuer)).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.expect("html");
        self.confirm_provider_logout(&html).await
    }

    /// Submits the provider's "Sign out?" form.
    pub async fn confirm_provider_logout(&self, html: &str) -> Response {
        let field = |name: &str| {
            html.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map(str::to_owned)
        };
        let action = field("action").expect("the logout form's action");
        let xsrf = html
            .split("name=\"xsrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the logout form's xsrf");
        let response = self
            .post_form(&action, &[("xsrf", xsrf), ("logout", "yes")])
            .await;
        self.follow(response).await
    }
}
