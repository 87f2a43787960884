//! `GET /api/events`: every kind of session end reaches that session's open streams, and only
//! those; a dead cookie cannot open one; a stream never keeps a session alive.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

const SOON: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_stream_needs_a_live_session() {
    let app = spawn_app().await;
    let anonymous = app.events(None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let cookie = app.register("alice").await;
    let open = app.events(Some(&cookie)).await;
    assert_eq!(open.status(), StatusCode::OK);
    assert_eq!(
        header_value(&open, "content-type").as_deref(),
        Some("text/event-stream")
    );
    assert_eq!(cache_control(&open).as_deref(), Some("no-store"));
    drop(open);

    app.post("/api/logout", &[], Some(&cookie)).await;
    let replayed = app.events(Some(&cookie)).await;
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED, "old cookie");
    assert_eq!(app.session_rows(&cookie).await, 0, "and nothing revived");
}

#[tokio::test]
async fn sign_out_reaches_every_tab_of_the_session_and_closes_their_streams() {
    let app = spawn_app().await;
    let cookie = app.register("alice").await;
    let mut tab1 = app.open_events(&cookie).await;
    let mut tab2 = app.open_events(&cookie).await;

    let response = app.post("/api/logout", &[], Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::OK);
    for tab in [&mut tab1, &mut tab2] {
        assert_eq!(
            tab.ended(SOON).await,
            json!({"reason": "signed_out", "same_session": true})
        );
        assert!(tab.closed().await, "the stream ends after the news");
    }
}

#[tokio::test]
async fn revoking_a_session_reaches_that_device_only() {
    let app = spawn_app().await;
    let laptop = app.register("alice").await;
    let phone = app.login("alice").await;
    let bob = app.register("bob").await;
    let mut laptop_events = app.open_events(&laptop).await;
    let mut phone_events = app.open_events(&phone).await;
    let mut bob_events = app.open_events(&bob).await;

    let phone_handle = app.handle_of(&phone).await;
    let response = app
        .post(
            "/api/revoke_session",
            &[("id", &phone_handle)],
            Some(&laptop),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        phone_events.ended(SOON).await,
        json!({"reason": "revoked", "same_session": false})
    );

    // The laptop heard nothing: the first thing it hears is its own sign-out everywhere.
    assert!(
        laptop_events
            .next_event(Duration::from_millis(300))
            .await
            .is_none(),
        "the revoking session's stream stays quiet"
    );
    app.post("/api/logout_all", &[], Some(&laptop)).await;
    assert_eq!(
        laptop_events.ended(SOON).await,
        json!({"reason": "signed_out_everywhere", "same_session": true})
    );
    assert!(
        bob_events
            .next_event(Duration::from_millis(300))
            .await
            .is_none(),
        "another user's stream stays quiet"
    );
}

#[tokio::test]
async fn signing_out_everywhere_reaches_every_device() {
    let app = spawn_app().await;
    let laptop = app.register("alice").await;
    let phone = app.login("alice").await;
    let tablet = app.login("alice").await;
    let mut phone_events = app.open_events(&phone).await;
    let mut tablet_events = app.open_events(&tablet).await;

    app.post("/api/logout_all", &[], Some(&laptop)).await;
    for events in [&mut phone_events, &mut tablet_events] {
        assert_eq!(
            events.ended(SOON).await,
            json!({"reason": "signed_out_everywhere", "same_session": false})
        );
    }
}

#[tokio::test]
async fn a_password_change_ends_the_other_devices_streams_not_its_own() {
    let app = spawn_app().await;
    let laptop = app.register("alice").await;
    let phone = app.login("alice").await;
    let mut laptop_events = app.open_events(&laptop).await;
    let mut phone_events = app.open_events(&phone).await;

    let changed = app
        .post(
            "/api/change_password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "another long passphrase"),
            ],
            Some(&laptop),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(
        phone_events.ended(SOON).await,
        json!({"reason": "password_changed", "same_session": false})
    );
    assert!(
        laptop_events
            .next_event(Duration::from_millis(500))
            .await
            .is_none(),
        "the session that changed the password goes on"
    );
    let renewed = session_cookie(&changed).expect("a new id");
    app.open_events(&renewed).await;
}

#[tokio::test]
async fn expiry_is_pushed_and_an_open_stream_does_not_extend_the_session() {
    let app = spawn_app_with(&[("SESSION_IDLE_TIMEOUT", "2")]).await;
    let cookie = app.register("alice").await;
    let started = Instant::now();
    let mut events = app.open_events(&cookie).await;
    // A page that keeps reconnecting is not a person using the site.
    // Reopened up to 1.5 s in: counted as activity, they would push the expiry to 3.5 s.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let again = app.events(Some(&cookie)).await;
        assert_eq!(again.status(), StatusCode::OK);
    }
    assert_eq!(
        events.ended(SOON).await,
        json!({"reason": "expired", "same_session": false})
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(3_000),
        "the expiry was pushed when it happened, not later: {elapsed:?}"
    );
    assert_eq!(app.me(Some(&cookie)).await, None);
}

#[tokio::test]
async fn shutting_down_ends_open_streams() {
    let mut app = spawn_app().await;
    let cookie = app.register("alice").await;
    let mut events = app.open_events(&cookie).await;
    tokio::time::timeout(SOON, app.stop())
        .await
        .expect("shutdown is not held up by an open stream");
    assert!(events.closed().await);
}

#[tokio::test]
async fn signing_in_as_someone_else_over_a_session_reaches_its_other_tabs() {
    let app = spawn_app().await;
    app.register("bob").await;
    let alice = app.register("alice").await;
    // Two tabs of alice's browser, sharing her cookie.
    let mut tab1 = app.open_events(&alice).await;
    let mut tab2 = app.open_events(&alice).await;

    // A third tab (same cookie) signs in as bob.
    let response = app.login_over("bob", &alice).await;
    assert_eq!(response.status(), StatusCode::OK);
    for tab in [&mut tab1, &mut tab2] {
        assert_eq!(
            tab.ended(SOON).await,
            json!({"reason": "replaced", "same_session": true})
        );
    }

    // Signing in again as the same user is a renewal, not an end: no news.
    let bob = session_cookie(&response).expect("bob's cookie");
    let mut bob_tab = app.open_events(&bob).await;
    let again = app.login_over("bob", &bob).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(
        bob_tab
            .next_event(Duration::from_millis(500))
            .await
            .is_none(),
        "the same user's stream stays quiet"
    );
}
