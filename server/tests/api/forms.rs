//! Form posts without JavaScript, as a browser sends them (`Accept: text/html`, form-encoded,
//! Chromium's `Origin: null` under `Referrer-Policy: no-referrer`, `Sec-Fetch-Site`): each one
//! lands back on the page with `303 See Other`, signed in, signed out, or with its error shown.

use reqwest::{header, redirect::Policy, Client, Response, StatusCode};

use crate::helpers::*;

/// A browser that does not follow redirects, so each answer can be inspected.
fn browser() -> Client {
    Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// `GET` a page as a browser would: its headers and its HTML.
async fn page(app: &TestApp, path: &str, cookies: &str) -> (header::HeaderMap, String) {
    let mut request = browser().get(app.url(path)).header("accept", "text/html");
    if !cookies.is_empty() {
        request = request.header(header::COOKIE, cookies);
    }
    let response = request.send().await.expect("request sent");
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    (headers, response.text().await.expect("page"))
}

fn location(response: &Response) -> Option<String> {
    header_value(response, "location")
}

/// The `name=value` of the flash cookie a response sets, if any.
fn flash(response: &Response) -> Option<String> {
    set_cookies(response)
        .into_iter()
        .find(|cookie| cookie.starts_with("signoff_flash="))
        .and_then(|cookie| cookie.split(';').next().map(str::to_owned))
}

#[tokio::test]
async fn create_account_sign_out_and_sign_in_again_without_javascript() {
    let app = spawn_app().await;
    let form = [("username", "alice"), ("password", PASSWORD)];

    let created = app.submit_form("/api/register", &form, "").await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&created).as_deref(), Some("/"));
    assert_eq!(cache_control(&created).as_deref(), Some("no-store"));
    let cookie = session_cookie(&created).expect("signed in by the form post");
    let (_, signed_in) = page(&app, "/", &format!("{COOKIE}={cookie}")).await;
    assert!(signed_in.contains("Signed in as"), "{signed_in}");

    let out = app
        .submit_form("/api/logout", &[], &format!("{COOKIE}={cookie}"))
        .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&out).as_deref(), Some("/?signed-out"));
    let removal = session_set_cookie(&out).expect("the cookie is removed");
    assert!(
        attributes(&removal).contains(&"max-age=0".to_owned()),
        "{removal}"
    );
    assert!(header_value(&out, "clear-site-data").is_some());
    assert_eq!(app.session_rows(&cookie).await, 0, "the row is deleted");
    let (_, signed_out) = page(&app, "/?signed-out", "").await;
    assert!(signed_out.contains("You signed out."), "{signed_out}");
    assert!(signed_out.contains("action=\"/api/login\""));

    let again = app.submit_form("/api/login", &form, "").await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&again).as_deref(), Some("/"));
    let cookie = session_cookie(&again).expect("signed in again");
    assert_eq!(app.me(Some(&cookie)).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn a_failed_form_post_shows_its_error_once_in_its_form() {
    let app = spawn_app().await;
    app.register("alice").await;

    let failed = app
        .submit_form(
            "/api/login",
            &[
                ("username", "alice"),
                ("password", "not the password at all"),
            ],
            "",
        )
        .await;
    assert_eq!(failed.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&failed).as_deref(), Some("/"));
    assert!(session_cookie(&failed).is_none(), "not signed in");
    let flash = flash(&failed).expect("the error travels in a cookie");
    let set = set_cookies(&failed).join("\n");
    assert!(
        set.contains("HttpOnly") && set.contains("Max-Age=60"),
        "{set}"
    );

    let (shown, body) = page(&app, "/", &flash).await;
    assert!(body.contains("Wrong username or password."), "{body}");
    let removed = shown
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|cookie| cookie.starts_with("signoff_flash="))
        .expect("the page removes the flash");
    assert!(removed.contains("Max-Age=0"), "{removed}");

    // A flash the server did not write (another endpoint, junk) shows nothing.
    let forged = "signoff_flash=6576696c0a596f7572206163636f756e7420697320636c6f736564";
    let (_, body) = page(&app, "/", forged).await;
    assert!(!body.contains("Your account is closed"), "{body}");

    let short = app
        .submit_form(
            "/api/register",
            &[("username", "bob"), ("password", "short")],
            "",
        )
        .await;
    let (_, body) = page(&app, "/", &flash_of(&short)).await;
    assert!(
        body.contains("Password must be at least 15 characters long."),
        "{body}"
    );
}

fn flash_of(response: &Response) -> String {
    flash(response).expect("a flash cookie")
}

#[tokio::test]
async fn scripts_and_other_sites_get_no_redirect() {
    let app = spawn_app().await;
    // The server function client asks for data: it gets the JSON answer as before.
    let scripted = app
        .post_with(
            "/api/login",
            &[("username", "nobody"), ("password", PASSWORD)],
            None,
            &[("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(scripted.status(), StatusCode::UNAUTHORIZED);

    // A cross-site form post stays a plain 403 and leaves no flash behind.
    let mut request = browser()
        .post(app.url("/api/login"))
        .form(&[("username", "alice"), ("password", PASSWORD)]);
    for (name, value) in [
        ("accept", "text/html"),
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        request = request.header(name, value);
    }
    let refused = request.send().await.expect("sent");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(flash(&refused).is_none());
}
