use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn logout_destroys_the_row_clears_the_cookie_and_the_old_cookie_is_dead() {
    let app = spawn_app().await;
    let cookie = app.register("alice").await;
    assert_eq!(app.session_rows(&cookie).await, 1);

    let response = app.post("/api/logout", &[], Some(&cookie)).await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(cache_control(&response).as_deref(), Some("no-store"));
    let removal = session_set_cookie(&response).expect("a removal cookie");
    assert!(removal.starts_with(&format!("{COOKIE}=;")), "{removal}");
    let attrs = attributes(&removal);
    assert!(attrs.contains(&"max-age=0".into()), "{removal}");
    assert!(
        attrs.contains(&"path=/".into()),
        "same Path as the session cookie: {removal}"
    );

    assert_eq!(app.session_rows(&cookie).await, 0, "store row deleted");
    assert_eq!(app.db.session_row_count().await.unwrap(), 0);
    // Replaying the old cookie: signed out, and told to drop it.
    let replay = app.get("/api/me", Some(&cookie)).await;
    let removal = session_set_cookie(&replay).expect("replay is told to drop the cookie");
    assert!(attributes(&removal).contains(&"max-age=0".into()));
    assert_eq!(app.me(Some(&cookie)).await, None);
}

#[tokio::test]
async fn logout_is_idempotent_and_safe_without_a_session() {
    let app = spawn_app().await;
    let cookie = app.register("alice").await;
    for (what, cookie) in [
        ("first", Some(cookie.as_str())),
        ("again", Some(cookie.as_str())),
        ("no cookie", None),
        ("garbage cookie", Some("not-a-session-id")),
        ("unknown id", Some("AAAAAAAAAAAAAAAAAAAAAA")),
    ] {
        let response = app.post("/api/logout", &[], cookie).await;
        assert!(
            response.status().is_success(),
            "{what}: {}",
            response.status()
        );
        assert!(
            session_cookie(&response).is_none(),
            "{what}: no live cookie"
        );
    }
}

#[tokio::test]
async fn logout_accepts_post_only() {
    let app = spawn_app().await;
    let cookie = app.register("alice").await;
    let response = app.get("/api/logout", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(app.me(Some(&cookie)).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn logout_ends_only_the_current_session() {
    let app = spawn_app().await;
    let laptop = app.register("alice").await;
    let phone = session_cookie(&app.login_attempt("alice", PASSWORD).await).unwrap();
    app.post("/api/logout", &[], Some(&laptop)).await;
    assert_eq!(app.me(Some(&laptop)).await, None);
    assert_eq!(app.me(Some(&phone)).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn logout_that_cannot_reach_the_database_reports_failure() {
    let app = spawn_app().await;
    let cookie = app.register("alice").await;
    app.db.close().await;
    let response = app.post("/api/logout", &[], Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(session_cookie(&response).is_none());
    let (code, _) = error_body(response).await;
    assert_eq!(code, "unavailable");
}

#[tokio::test]
async fn logout_removal_cookie_also_works_with_secure_cookies() {
    let app = spawn_app_with(&[("COOKIE_SECURE", "true")]).await;
    let cookie = app.register("alice").await;
    let response = app.post("/api/logout", &[], Some(&cookie)).await;
    assert!(response.status().is_success());
    let removal = session_set_cookie(&response).expect("removal cookie");
    let attrs = attributes(&removal);
    assert!(
        removal.starts_with(&format!("{SECURE_COOKIE}=;")),
        "{removal}"
    );
    assert!(
        attrs.contains(&"max-age=0".into()) && attrs.contains(&"path=/".into()),
        "{removal}"
    );
    assert_eq!(app.session_rows(&cookie).await, 0);
}
