use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn login_made_in_a_server_function_is_persisted() {
    // axum-login#144: a login performed through `leptos_axum::extract` must reach the store.
    let app = spawn_app().await;
    app.register("alice").await;
    let response = app.login_attempt("alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(cache_control(&response).as_deref(), Some("no-store"));
    let cookie = session_cookie(&response).expect("login sets a cookie");
    assert_eq!(app.session_rows(&cookie).await, 1);
    assert_eq!(app.me(Some(&cookie)).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn login_rotates_the_session_id_and_kills_the_old_one() {
    let app = spawn_app().await;
    let before = app.register("alice").await;
    let response = app.login_over("alice", &before).await;
    assert_eq!(response.status(), StatusCode::OK);
    let after = session_cookie(&response).expect("new cookie");
    assert_ne!(before, after, "login must issue a new id");
    assert_eq!(app.session_rows(&before).await, 0, "old row deleted");
    assert_eq!(app.me(Some(&before)).await, None, "old id is dead");
    assert_eq!(app.me(Some(&after)).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn signing_in_as_someone_else_over_a_live_session_rotates_too() {
    // axum-login alone keeps the id when the session is already authenticated.
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    app.register("bob").await;
    let response = app.login_over("bob", &alice).await;
    assert_eq!(response.status(), StatusCode::OK);
    let bob = session_cookie(&response).expect("new cookie");
    assert_ne!(alice, bob);
    assert_eq!(app.me(Some(&alice)).await, None);
    assert_eq!(app.me(Some(&bob)).await.as_deref(), Some("bob"));
}

#[tokio::test]
async fn every_bad_credential_gets_the_same_401() {
    let app = spawn_app().await;
    app.register("alice").await;
    let mut answers = Vec::new();
    for (username, password) in [
        ("alice", "wrong password, long enough"),
        ("nobody", PASSWORD),
        ("alice", ""),
        ("alice", &"x".repeat(500)),
    ] {
        let response = app.login_attempt(username, password).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{username}");
        assert!(session_cookie(&response).is_none(), "no session on failure");
        answers.push(error_body(response).await);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(answers[0].0, "invalid_credentials");
}

#[tokio::test]
async fn username_matching_ignores_case_and_surrounding_space() {
    let app = spawn_app().await;
    app.register("Alice").await;
    let response = app.login_attempt("  aLICE ", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn malformed_login_is_400() {
    let app = spawn_app().await;
    let response = app.post("/api/login", &[("username", "alice")], None).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (code, _) = error_body(response).await;
    assert_eq!(code, "invalid_input");
}
