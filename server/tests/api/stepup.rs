//! A fresh proof of identity before changing the ways in (crates/signoff/src/stepup.rs), unlinking
//! a provider ending the sessions signed in through it, and an account made by a provider setting
//! its first password, against the real server and the test OpenID Provider.

use std::time::Duration;

use reqwest::StatusCode;

use crate::{
    helpers::*,
    idp::{client_id, spawn_with, Browser, Idp, PROVIDER},
};

/// A short window, so the tests can outlive it.
const STEP_UP: (&str, &str) = ("STEP_UP_MAX_AGE", "2");

async fn app(idp: &Idp) -> TestApp {
    let app = spawn_with(idp, &TestDb::new().await, &[STEP_UP]).await;
    idp.register(&[&app], &client_id()).await;
    app
}

/// Waits past the window, using the session all the while: use does not make it fresh.
async fn outlive_the_window(app: &TestApp, cookie: &str) {
    // Proofs are kept in whole seconds: a window of 2 s has surely passed after 3.5 s.
    for _ in 0..7 {
        assert!(app.me(Some(cookie)).await.is_some());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn a_stale_session_can_neither_link_nor_unlink_until_it_confirms_it_is_you() {
    let idp = Idp::start();
    let app = app(&idp).await;
    let browser = Browser::new();
    let response = browser
        .post_api(
            &app.url("/api/register"),
            &[("username", "olga"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = browser.session(&app).expect("signed in");
    // What the page asks before leaving to link a provider: fresh now, stale after the window.
    assert_eq!(
        browser.get_api(&app.url("/api/step_up")).await.status(),
        StatusCode::OK
    );
    outlive_the_window(&app, &cookie).await;
    let response = browser.get_api(&app.url("/api/step_up")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_body(response).await.0, "reauthentication_required");
    let response = Browser::new().get_api(&app.url("/api/step_up")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Linking: back to the page with the reason, never to the provider.
    let response = browser
        .post_form(&app.url(&format!("/api/oidc/{PROVIDER}/link")), &[])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(header_value(&response, "location").as_deref(), Some("/"));
    // Unlinking: 403 with its own code, whatever is linked.
    let response = browser
        .post_api(&app.url("/api/unlink_provider"), &[("provider", PROVIDER)])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (code, message) = error_body(response).await;
    assert_eq!(code, "reauthentication_required");
    assert!(message.contains("Confirm it's you"), "{message}");

    // "Confirm it's you": a wrong password changes nothing, the right one opens the window.
    let response = browser
        .post_api(
            &app.url("/api/confirm_identity"),
            &[("password", "not the password")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_body(response).await.0, "wrong_password");
    let page = browser.get(&app.url("/confirm")).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page
        .text()
        .await
        .expect("html")
        .contains("/api/confirm_identity"));
    let response = browser
        .post_api(&app.url("/api/confirm_identity"), &[("password", PASSWORD)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        browser.get_api(&app.url("/api/step_up")).await.status(),
        StatusCode::OK
    );
    let action = browser.to_provider_login(&app, "link").await;
    let page = browser.provider_login(&action, "olga-at-idp").await;
    assert_eq!(page.url().path(), "/");
    let methods = app.get_json("/api/sign_in_methods", Some(&cookie)).await;
    assert_eq!(methods["providers"][0]["linked"], true, "{methods}");
    let response = browser
        .post_api(&app.url("/api/unlink_provider"), &[("provider", PROVIDER)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn unlinking_a_provider_ends_the_sessions_signed_in_through_it() {
    let idp = Idp::start();
    let app = app(&idp).await;
    let owner = Browser::new();
    owner
        .post_api(
            &app.url("/api/register"),
            &[("username", "pia"), ("password", PASSWORD)],
        )
        .await;
    let owner_cookie = owner.session(&app).expect("signed in");
    let action = owner.to_provider_login(&app, "link").await;
    owner.provider_login(&action, "pia-at-idp").await;
    // Signed in through the provider elsewhere, page open; and with the password elsewhere.
    let via_provider = Browser::new().sign_in(&app, "pia-at-idp").await;
    let with_password = app.login("pia").await;
    let mut provider_page = app.open_events(&via_provider).await;

    // The owner proves it again (the window is short) and unlinks.
    let response = owner
        .post_api(&app.url("/api/confirm_identity"), &[("password", PASSWORD)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = owner
        .post_api(&app.url("/api/unlink_provider"), &[("provider", PROVIDER)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let ended = provider_page.ended(Duration::from_secs(5)).await;
    assert_eq!(ended["reason"], "provider_unlinked", "{ended}");
    assert!(ended["provider"].is_string(), "{ended}");
    assert_eq!(app.me(Some(&via_provider)).await, None);
    assert_eq!(app.me(Some(&with_password)).await.as_deref(), Some("pia"));
    assert_eq!(app.me(Some(&owner_cookie)).await.as_deref(), Some("pia"));
}

#[tokio::test]
async fn an_account_made_by_a_provider_sets_a_first_password_after_a_fresh_sign_in() {
    let idp = Idp::start();
    let app = app(&idp).await;
    let browser = Browser::new();
    let cookie = browser.sign_in(&app, "quinn").await;
    let me = app.get_json("/api/me", Some(&cookie)).await;
    assert_eq!(me["no_password"], true, "{me}");
    let name = me["username"].as_str().expect("a name").to_owned();
    let response = browser
        .post_api(
            &app.url("/api/change_password"),
            &[("current_password", ""), ("new_password", PASSWORD)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let me = app
        .get_json("/api/me", Some(&browser.session(&app).expect("signed in")))
        .await;
    assert!(me.get("no_password").is_none(), "{me}");
    assert_eq!(
        app.login_attempt(&name, PASSWORD).await.status(),
        StatusCode::OK
    );

    // Another one, too late: "Confirm it's you" (a new sign-in with the provider).
    let late = Browser::new();
    let late_cookie = late.sign_in(&app, "rosa").await;
    outlive_the_window(&app, &late_cookie).await;
    let response = late
        .post_api(
            &app.url("/api/change_password"),
            &[("current_password", ""), ("new_password", PASSWORD)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_body(response).await.0, "reauthentication_required");
    let page = late.get(&app.url("/confirm")).await;
    assert!(page
        .text()
        .await
        .expect("html")
        .contains(&format!("/api/oidc/{PROVIDER}/start")));
    // A new sign-in with the provider is the proof (here from a browser with no provider session
    // yet, which the test provider needs to show its login page again).
    let again = Browser::new();
    again.sign_in(&app, "rosa").await;
    let response = again
        .post_api(
            &app.url("/api/change_password"),
            &[("current_password", ""), ("new_password", PASSWORD)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}
