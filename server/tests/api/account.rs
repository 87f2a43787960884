//! The Security page's API: listing and revoking sessions, signing out everywhere, changing the
//! password, recent activity.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn sessions_are_listed_with_public_handles_and_the_current_one_marked() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/api/sessions", None).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let laptop = app.register("alice").await;
    let phone = app.login("alice").await;
    let list = app.get_json("/api/sessions", Some(&laptop)).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    let current: Vec<&Value> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    for session in list {
        let id = session["id"].as_str().unwrap();
        assert_ne!(id, laptop, "a handle is never the cookie value");
        assert_ne!(id, phone);
        assert!(session["created_at"].as_str().unwrap().ends_with('Z'));
        assert!(session["last_seen_at"].is_string());
        assert!(session.get("user_agent").is_some());
    }
    // The other user's sessions are not listed.
    app.register("bob").await;
    assert_eq!(
        app.get_json("/api/sessions", Some(&laptop))
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn revoking_a_session_ends_it_and_only_it() {
    let app = spawn_app().await;
    let laptop = app.register("alice").await;
    let phone = app.login("alice").await;
    let tablet = app.login("alice").await;
    // The phone's handle, which the laptop then revokes.
    let handle = app.handle_of(&phone).await;
    let response = app
        .post("/api/revoke_session", &[("id", &handle)], Some(&laptop))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.session_rows(&phone).await, 0);
    assert_eq!(app.me(Some(&phone)).await, None);
    assert_eq!(app.me(Some(&laptop)).await.as_deref(), Some("alice"));
    assert_eq!(app.me(Some(&tablet)).await.as_deref(), Some("alice"));

    // Twice, garbage, or another user's session: 404, nothing changes.
    let bob = app.register("bob").await;
    let bob_handle = app.get_json("/api/sessions", Some(&bob)).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for id in [handle.as_str(), "nonsense", bob_handle.as_str(), ""] {
        let response = app
            .post("/api/revoke_session", &[("id", id)], Some(&laptop))
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{id:?}");
        let (code, _) = error_body(response).await;
        assert_eq!(code, "not_found");
    }
    assert_eq!(app.me(Some(&bob)).await.as_deref(), Some("bob"));
    assert_eq!(
        app.post("/api/revoke_session", &[("id", "x")], None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn revoking_the_current_session_signs_out_with_the_cookie_removed() {
    let app = spawn_app().await;
    let cookie = app.register("alice").await;
    let handle = app.get_json("/api/sessions", Some(&cookie)).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .post("/api/revoke_session", &[("id", &handle)], Some(&cookie))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(attributes(&session_set_cookie(&response).unwrap()).contains(&"max-age=0".into()));
    assert_eq!(app.me(Some(&cookie)).await, None);
}

#[tokio::test]
async fn logout_all_ends_every_session_of_the_user_and_no_one_elses() {
    let app = spawn_app().await;
    let laptop = app.register("alice").await;
    let phone = app.login("alice").await;
    let bob = app.register("bob").await;
    let response = app.post("/api/logout_all", &[], Some(&laptop)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(attributes(&session_set_cookie(&response).unwrap()).contains(&"max-age=0".into()));
    assert_eq!(
        header_value(&response, "clear-site-data").as_deref(),
        Some("\"cookies\", \"storage\"")
    );
    for cookie in [&laptop, &phone] {
        assert_eq!(app.session_rows(cookie).await, 0);
        assert_eq!(app.me(Some(cookie)).await, None);
    }
    assert_eq!(app.me(Some(&bob)).await.as_deref(), Some("bob"));
    assert_eq!(
        app.post("/api/logout_all", &[], None).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn wrong_current_password_changes_nothing() {
    let app = spawn_app().await;
    let laptop = app.register("alice").await;
    let phone = app.login("alice").await;
    let response = app
        .post(
            "/api/change_password",
            &[
                ("current_password", "not my password at all"),
                ("new_password", "a brand new passphrase"),
            ],
            Some(&laptop),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_body(response).await.0, "wrong_password");
    assert_eq!(app.me(Some(&phone)).await.as_deref(), Some("alice"));
    app.login("alice").await; // the old password still works
}

#[tokio::test]
async fn new_password_must_follow_the_rules() {
    let app = spawn_app().await;
    let cookie = app.register("alice").await;
    for weak in ["too short", "passwordpassword", "123456789012345"] {
        let response = app
            .post(
                "/api/change_password",
                &[("current_password", PASSWORD), ("new_password", weak)],
                Some(&cookie),
            )
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{weak}");
        assert_eq!(error_body(response).await.0, "invalid_input");
    }
    app.login("alice").await;
}

#[tokio::test]
async fn password_change_ends_other_sessions_and_rotates_this_one() {
    let app = spawn_app().await;
    let laptop = app.register("alice").await;
    let phone = app.login("alice").await;
    let new_password = "an entirely new passphrase";
    let response = app
        .post(
            "/api/change_password",
            &[
                ("current_password", PASSWORD),
                ("new_password", new_password),
            ],
            Some(&laptop),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let rotated = session_cookie(&response).expect("a new id for this session");
    assert_ne!(rotated, laptop);
    assert_eq!(app.session_rows(&laptop).await, 0);
    assert_eq!(app.session_rows(&phone).await, 0);
    assert_eq!(app.me(Some(&phone)).await, None);
    assert_eq!(app.me(Some(&laptop)).await, None);
    assert_eq!(app.me(Some(&rotated)).await.as_deref(), Some("alice"));

    let old = app.login_attempt("alice", PASSWORD).await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let new = app.login_attempt("alice", new_password).await;
    assert_eq!(new.status(), StatusCode::OK);
}

#[tokio::test]
async fn recent_activity_records_the_events_with_hashed_session_ids() {
    let app = spawn_app().await;
    let laptop = app.register("alice").await;
    let bad = app.login_attempt("ALICE", "wrong but long enough").await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let phone = app.login("alice").await;
    app.post("/api/logout", &[], Some(&phone)).await;

    let events = app.get_json("/api/activity", Some(&laptop)).await;
    let names: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "logout",
            "login_succeeded",
            "login_failed",
            "login_succeeded",
            "account_created"
        ]
    );
    let logout = &events[0];
    assert_eq!(logout["ip"], "127.0.0.1");
    let tag = logout["session"].as_str().unwrap();
    assert_eq!(tag.len(), 16);
    assert!(!phone.contains(tag) && tag != phone, "a hash, not the id");
    assert_eq!(
        app.get("/api/activity", None).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // No raw session id anywhere in the audit table.
    let tags = app.audit_tags().await;
    assert!(!tags.is_empty());
    for tag in tags {
        assert_ne!(tag, laptop);
        assert_ne!(tag, phone);
    }
}
