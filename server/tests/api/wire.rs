//! Every `Set-Cookie` as it goes on the wire, in both cookie modes: every way a session ends
//! removes the cookie with a removal a browser accepts (in the secure mode, `__Host-` with
//! `Secure`), and every other cookie Signoff sets (a new session, the device cookie, the
//! form-error flash) is well formed too. These read the raw headers, never a builder: the session
//! layer writes removals of its own, and only the wire shows which one wins.

use reqwest::{header, redirect::Policy, Client, Response, StatusCode};

use crate::helpers::*;

/// Both cookie modes: plain (`http://` development) and secure (`COOKIE_SECURE=true`, HTTPS).
const MODES: [bool; 2] = [false, true];

async fn app_in(secure: bool) -> TestApp {
    spawn_app_with(&[("COOKIE_SECURE", if secure { "true" } else { "false" })]).await
}

fn session_name(secure: bool) -> &'static str {
    if secure {
        SECURE_COOKIE
    } else {
        COOKIE
    }
}

/// Checks every `Set-Cookie` of `response` and returns the session one, if any. A cookie of
/// Signoff's is `HttpOnly`, `SameSite=Lax`, `Path=/`, has no `Domain`, and in the secure mode
/// carries the `__Host-` prefix; a `__Host-` cookie (set or removed) must carry `Secure`, or
/// browsers refuse it. At most one session `Set-Cookie` per response.
fn checked(response: &Response, secure: bool, what: &str) -> Option<String> {
    let all = set_cookies(response);
    for cookie in &all {
        let name = cookie.split('=').next().unwrap_or_default();
        let attributes = attributes(cookie);
        if name.starts_with("__Host-") {
            assert!(
                attributes.contains(&"secure".to_owned()),
                "{what}: a __Host- cookie without Secure is refused by browsers: {cookie}"
            );
        }
        assert!(
            attributes.contains(&"path=/".to_owned()),
            "{what}: {cookie}"
        );
        assert!(
            !attributes.iter().any(|a| a.starts_with("domain")),
            "{what}: {cookie}"
        );
        assert!(
            attributes.contains(&"httponly".to_owned()),
            "{what}: {cookie}"
        );
        assert!(
            attributes.contains(&"samesite=lax".to_owned()),
            "{what}: {cookie}"
        );
        assert_eq!(
            name.starts_with("__Host-"),
            secure,
            "{what}: the secure mode, and only it, uses the __Host- prefix: {cookie}"
        );
        assert_eq!(
            attributes.contains(&"secure".to_owned()),
            secure,
            "{what}: {cookie}"
        );
    }
    let sessions: Vec<&String> = all
        .iter()
        .filter(|c| c.starts_with(&format!("{}=", session_name(secure))))
        .collect();
    assert!(
        sessions.len() <= 1,
        "{what}: at most one session Set-Cookie per response: {sessions:?}"
    );
    sessions.first().map(|c| (*c).clone())
}

/// Checks the response and that it removes the session cookie.
fn removes_the_cookie(response: &Response, secure: bool, what: &str) {
    let removal = checked(response, secure, what)
        .unwrap_or_else(|| panic!("{what}: no removal of the session cookie"));
    assert!(
        removal.starts_with(&format!("{}=;", session_name(secure))),
        "{what}: {removal}"
    );
    assert!(
        attributes(&removal).contains(&"max-age=0".to_owned()),
        "{what}: {removal}"
    );
}

/// Checks the response and returns the new session id it sets.
fn sets_a_session(response: &Response, secure: bool, what: &str) -> String {
    let set =
        checked(response, secure, what).unwrap_or_else(|| panic!("{what}: no session cookie set"));
    let value = set
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, value)| value.to_owned())
        .unwrap_or_default();
    assert!(!value.is_empty(), "{what}: {set}");
    value
}

fn client() -> Client {
    Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn every_way_a_session_ends_sends_a_removal_browsers_accept() {
    for secure in MODES {
        let app = app_in(secure).await;
        let name = session_name(secure);
        let mode = if secure { "secure" } else { "plain" };

        // Sign-out with JavaScript, and its replay.
        let cookie = app.register("alice").await;
        let out = app.post("/api/logout", &[], Some(&cookie)).await;
        assert_eq!(out.status(), StatusCode::OK);
        removes_the_cookie(&out, secure, &format!("{mode} logout"));
        assert!(header_value(&out, "clear-site-data").is_some());
        let replay = app.get("/api/me", Some(&cookie)).await;
        removes_the_cookie(&replay, secure, &format!("{mode} a dead session's cookie"));

        // Sign out everywhere.
        let cookie = app.login("alice").await;
        let out = app.post("/api/logout_all", &[], Some(&cookie)).await;
        assert_eq!(out.status(), StatusCode::OK);
        removes_the_cookie(&out, secure, &format!("{mode} logout_all"));

        // Revoking the session in hand.
        let cookie = app.login("alice").await;
        let handle = app.handle_of(&cookie).await;
        let out = app
            .post("/api/revoke_session", &[("id", &handle)], Some(&cookie))
            .await;
        assert_eq!(out.status(), StatusCode::OK);
        removes_the_cookie(&out, secure, &format!("{mode} revoke the current session"));

        // "Sign out of NAME too" on a password session: an ordinary sign-out.
        let cookie = app.login("alice").await;
        let out = app.post("/api/logout_provider", &[], Some(&cookie)).await;
        assert_eq!(out.status(), StatusCode::OK);
        removes_the_cookie(&out, secure, &format!("{mode} logout_provider"));

        // Without JavaScript: the form posts land on the page, cookie removed.
        for endpoint in ["/api/logout", "/api/logout_all"] {
            let cookie = app.login("alice").await;
            let out = app
                .submit_form(endpoint, &[], &format!("{name}={cookie}"))
                .await;
            assert_eq!(out.status(), StatusCode::SEE_OTHER);
            removes_the_cookie(&out, secure, &format!("{mode} form {endpoint}"));
            assert_eq!(app.session_rows(&cookie).await, 0);
        }
        let cookie = app.login("alice").await;
        let handle = app.handle_of(&cookie).await;
        let out = app
            .submit_form(
                "/api/revoke_session",
                &[("id", &handle)],
                &format!("{name}={cookie}"),
            )
            .await;
        assert_eq!(out.status(), StatusCode::SEE_OTHER);
        removes_the_cookie(&out, secure, &format!("{mode} form revoke_session"));

        // A sign-out with two session cookies (one planted): no session, yet the cookie goes.
        let cookie = app.login("alice").await;
        let out = app
            .post_with(
                "/api/logout",
                &[],
                None,
                &[("cookie", &format!("{name}=planted; {name}={cookie}"))],
            )
            .await;
        assert!(out.status().is_success());
        removes_the_cookie(&out, secure, &format!("{mode} logout with duplicates"));

        // A session ended by a password change elsewhere: its next request drops the cookie.
        let other = app.login("alice").await;
        let cookie = app.login("alice").await;
        let changed = app
            .change_password(&cookie, "a brand new passphrase here")
            .await;
        assert_eq!(changed.status(), StatusCode::OK);
        let renewed = sets_a_session(&changed, secure, &format!("{mode} password change"));
        assert_ne!(renewed, cookie);
        let stale = app.get("/api/me", Some(&other)).await;
        removes_the_cookie(
            &stale,
            secure,
            &format!("{mode} a session the change ended"),
        );
    }
}

#[tokio::test]
async fn every_cookie_set_on_the_wire_is_well_formed() {
    for secure in MODES {
        let app = app_in(secure).await;
        let name = session_name(secure);
        let mode = if secure { "secure" } else { "plain" };

        // Registration and sign-in: the session cookie and the device cookie.
        let registered = app.register_attempt("alice", PASSWORD).await;
        sets_a_session(&registered, secure, &format!("{mode} register"));
        let login = app.login_attempt("alice", PASSWORD).await;
        let alice = sets_a_session(&login, secure, &format!("{mode} login"));
        let device = if secure {
            "__Host-signoff_device="
        } else {
            "signoff_device="
        };
        assert!(
            set_cookies(&login).iter().any(|c| c.starts_with(device)),
            "{mode}: the device cookie: {:?}",
            set_cookies(&login)
        );

        // Signing in as someone else over a live session: one new session cookie.
        app.register("bob").await;
        let switched = app.login_over("bob", &alice).await;
        assert_eq!(switched.status(), StatusCode::OK);
        let bob = sets_a_session(&switched, secure, &format!("{mode} user switch"));
        assert_ne!(bob, alice);

        // A form error travels in the flash cookie, and the page render removes it.
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
        checked(&failed, secure, &format!("{mode} failed form sign-in"));
        let flash_name = if secure {
            "__Host-signoff_flash"
        } else {
            "signoff_flash"
        };
        let flash = set_cookies(&failed)
            .into_iter()
            .find(|c| c.starts_with(&format!("{flash_name}=")))
            .expect("the flash cookie");
        let pair = flash.split(';').next().expect("name=value").to_owned();
        let page = client()
            .get(app.url("/"))
            .header(header::ACCEPT, "text/html")
            .header(header::COOKIE, &pair)
            .send()
            .await
            .expect("page");
        assert_eq!(page.status(), StatusCode::OK);
        checked(
            &page,
            secure,
            &format!("{mode} the page that reads the flash"),
        );
        let removal = set_cookies(&page)
            .into_iter()
            .find(|c| c.starts_with(&format!("{flash_name}=;")))
            .expect("the page removes the flash");
        assert!(attributes(&removal).contains(&"max-age=0".to_owned()));
        let body = page.text().await.expect("html");
        assert!(body.contains("Wrong username or password."), "{body}");

        // A native form sign-in lands with the new session cookie.
        let signed_in = app
            .submit_form(
                "/api/login",
                &[("username", "alice"), ("password", PASSWORD)],
                &format!("{name}={bob}"),
            )
            .await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        sets_a_session(
            &signed_in,
            secure,
            &format!("{mode} form sign-in over a session"),
        );
    }
}
