//! The minimal app against a real server on a random port and a fresh SQLite file: what another
//! app gets from Signoff — sign-in, its own members-only server function, and sign-out that
//! answers without a redirect and leaves the cookie and the session gone.
#![cfg(feature = "ssr")]

use std::net::SocketAddr;

use leptos::prelude::LeptosOptions;
use reqwest::{header, StatusCode};

struct Minimal {
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Minimal {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let config = signoff::Config {
            database_url: format!("sqlite://{}/minimal.db", dir.path().display()),
            ..signoff::Config::default()
        };
        let signoff = signoff::Signoff::connect(config, &format!("http://{addr}"))
            .await
            .expect("Signoff connects");
        let options = LeptosOptions::builder()
            .output_name("minimal")
            .site_addr(addr)
            .build();
        let app = minimal::router(signoff, options);
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            _dir: dir,
        }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, format!("signoff_session={cookie}"));
        }
        request.send().await.expect("request sent")
    }

    async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
        cookie: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header(header::ACCEPT, "application/json")
            .form(form);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, format!("signoff_session={cookie}"));
        }
        request.send().await.expect("request sent")
    }
}

/// The values of the response's `signoff_session` cookies, as sent on the wire.
fn session_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter(|value| value.starts_with("signoff_session="))
        .map(str::to_owned)
        .collect()
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, value)| value.to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn sign_in_members_only_and_sign_out_without_a_redirect() {
    let app = Minimal::start().await;

    // The app's own pages render, with Signoff's panel on the home page.
    let home = app.get("/", None).await;
    assert_eq!(home.status(), StatusCode::OK);
    let html = home.text().await.expect("page");
    assert!(html.contains("An app of its own"), "{html}");
    assert!(
        html.contains("Create account"),
        "Signoff's panel is on the page"
    );

    // The members-only server function refuses a stranger.
    let refused = app.get("/api/members_note", None).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let page = app.get("/members", None).await.text().await.expect("page");
    assert!(page.contains("You are not signed in."), "{page}");

    // Signoff's own server functions are served from its crate.
    let password = "a long enough passphrase";
    let created = app
        .post(
            "/api/register",
            &[("username", "ada"), ("password", password)],
            None,
        )
        .await;
    assert_eq!(created.status(), StatusCode::OK);
    let cookie = cookie_value(session_cookies(&created).first().expect("a session cookie"));

    let note = app.get("/api/members_note", Some(&cookie)).await;
    assert_eq!(note.status(), StatusCode::OK);
    assert!(note.text().await.expect("body").contains("ada"));
    let page = app
        .get("/members", Some(&cookie))
        .await
        .text()
        .await
        .expect("page");
    assert!(
        page.contains("Welcome to the members") && page.contains("ada"),
        "{page}"
    );

    // Sign-out: 200 with no redirect, the cookie removed on the wire, the session destroyed.
    let out = app.post("/api/logout", &[], Some(&cookie)).await;
    assert_eq!(out.status(), StatusCode::OK);
    assert!(out.headers().get(header::LOCATION).is_none(), "no redirect");
    let removals = session_cookies(&out);
    assert_eq!(removals.len(), 1, "{removals:?}");
    assert!(removals[0].starts_with("signoff_session=;"), "{removals:?}");
    assert!(removals[0].contains("Max-Age=0"), "{removals:?}");
    assert!(out.headers().get("clear-site-data").is_some());

    // The old cookie is worth nothing now.
    let after = app.get("/api/members_note", Some(&cookie)).await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    let me = app.get("/api/me", Some(&cookie)).await;
    assert_eq!(me.text().await.expect("body"), "null");
}
