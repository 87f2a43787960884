//! Session lifecycle: timeouts enforced on the server, the sweeper, never adopting a foreign id,
//! and no resurrection of a destroyed session by requests in flight.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn idle_timeout_ends_an_unused_session_whatever_the_cookie_says() {
    let app = spawn_app_with(&[("SESSION_IDLE_TIMEOUT", "2")]).await;
    let response = app.register_attempt("alice", PASSWORD).await;
    let set_cookie = session_set_cookie(&response).unwrap();
    let max_age: i64 = attributes(&set_cookie)
        .iter()
        .find_map(|a| a.strip_prefix("max-age=").map(|v| v.parse().unwrap()))
        .expect("Max-Age");
    assert!(
        (1..=2).contains(&max_age),
        "cookie lifetime follows the idle timeout: {set_cookie}"
    );
    let cookie = session_cookie(&response).unwrap();
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    // A client that ignores Max-Age and sends the cookie anyway is still signed out.
    assert_eq!(app.me(Some(&cookie)).await, None);
}

#[tokio::test]
async fn activity_within_the_idle_window_keeps_a_session_alive() {
    let app = spawn_app_with(&[("SESSION_IDLE_TIMEOUT", "3")]).await;
    let cookie = app.register("alice").await;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        assert_eq!(app.me(Some(&cookie)).await.as_deref(), Some("alice"));
    }
}

#[tokio::test]
async fn absolute_timeout_ends_even_an_active_session() {
    let app = spawn_app_with(&[
        ("SESSION_IDLE_TIMEOUT", "60"),
        ("SESSION_ABSOLUTE_TIMEOUT", "3"),
    ])
    .await;
    let cookie = app.register("alice").await;
    let mut signed_in = Vec::new();
    for _ in 0..5 {
        signed_in.push(app.me(Some(&cookie)).await.is_some());
        tokio::time::sleep(Duration::from_millis(1_000)).await;
    }
    assert!(signed_in[0], "{signed_in:?}");
    assert_eq!(app.me(Some(&cookie)).await, None, "{signed_in:?}");
}

#[tokio::test]
async fn expired_rows_are_swept_without_any_request() {
    let app = spawn_app_with(&[
        ("SESSION_IDLE_TIMEOUT", "1"),
        ("SESSION_SWEEP_INTERVAL", "1"),
    ])
    .await;
    app.register("alice").await;
    app.register("bob").await;
    assert_eq!(app.db.session_row_count().await.unwrap(), 2);
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    assert_eq!(app.db.session_row_count().await.unwrap(), 0);
}

#[tokio::test]
async fn an_id_the_server_never_issued_is_never_adopted() {
    let app = spawn_app().await;
    app.register("alice").await;
    // Well-formed but unknown (an attacker planting a fixed id before the victim signs in).
    let planted = "AAAAAAAAAAAAAAAAAAAAAA";
    let response = app
        .post(
            "/api/login",
            &[("username", "alice"), ("password", PASSWORD)],
            Some(planted),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let issued = session_cookie(&response).unwrap();
    assert_ne!(issued, planted);
    assert_eq!(app.session_rows(planted).await, 0);
    assert_eq!(app.me(Some(planted)).await, None);
}

/// Many requests in flight with a session while it is signed out: none may write it back.
/// An idle timeout under 30 s makes every request a writer (the expiry refresh saves each time),
/// which is the worst case for resurrection.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logout_racing_many_requests_leaves_no_survivor() {
    let app = std::sync::Arc::new(spawn_app_with(&[("SESSION_IDLE_TIMEOUT", "20")]).await);
    app.register("alice").await;
    let baseline = app.db.session_row_count().await.unwrap();
    let rounds = 25;
    let mut survivors = 0;
    for round in 0..rounds {
        let cookie = app.login("alice").await;
        let mut tasks = Vec::new();
        for i in 0..40 {
            let app = app.clone();
            let cookie = cookie.clone();
            tasks.push(tokio::spawn(async move {
                if i == 20 {
                    let response = app.post("/api/logout", &[], Some(&cookie)).await;
                    assert!(response.status().is_success());
                } else {
                    let _ = app.get("/api/me", Some(&cookie)).await;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        if app.session_rows(&cookie).await != 0 || app.me(Some(&cookie)).await.is_some() {
            survivors += 1;
            eprintln!("round {round}: session survived logout");
        }
    }
    assert_eq!(
        survivors, 0,
        "sessions resurrected in {survivors} of {rounds} rounds"
    );
    assert_eq!(app.db.session_row_count().await.unwrap(), baseline);
}

#[tokio::test]
async fn session_ids_carry_128_random_bits() {
    let app = spawn_app().await;
    app.register("alice").await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..40 {
        let id = app.login("alice").await;
        // 16 bytes, base64url without padding.
        assert_eq!(id.len(), 22, "{id}");
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{id}"
        );
        assert!(seen.insert(id), "ids never repeat");
    }
    // Every bit position varies across ids (a constant prefix would show up here).
    let first = seen.iter().next().unwrap().clone();
    assert!(seen.iter().any(|id| id[..4] != first[..4]));
}

#[tokio::test]
async fn a_session_id_in_the_url_is_ignored() {
    let app = spawn_app().await;
    let cookie = app.register("alice").await;
    for query in [
        format!("/api/me?{COOKIE}={cookie}"),
        format!("/api/me?id={cookie}"),
        format!("/api/me;{COOKIE}={cookie}"),
    ] {
        let response = app.get(&query, None).await;
        assert!(
            response.status().is_success() || response.status().is_client_error(),
            "{query}"
        );
        if response.status().is_success() {
            assert_eq!(response.text().await.unwrap(), "null", "{query}");
        }
    }
}

/// The user behind a session is read afresh with the session on every request, never kept from
/// an earlier one: when the user's session stamp changes underneath (a password change on another
/// instance, an operator), the very next request finds the session's stamp stale and ends it.
#[tokio::test]
async fn a_changed_session_stamp_ends_the_session_at_the_next_request() {
    let app = spawn_app().await;
    let cookie = app.register("alice").await;
    assert_eq!(app.me(Some(&cookie)).await.as_deref(), Some("alice"));
    let updated = signoff::on_db!(&app.db, |pool| {
        sqlx::query("UPDATE users SET session_stamp = 'rotated' WHERE username_key = 'alice'")
            .execute(pool)
            .await
            .expect("update the stamp")
            .rows_affected()
    });
    assert_eq!(updated, 1);
    assert_eq!(app.me(Some(&cookie)).await, None);
    assert_eq!(
        app.session_rows(&cookie).await,
        0,
        "the stale session is gone"
    );
}

/// Session storage never holds a copy of the password hash: what a session remembers of its user
/// is a random stamp, which is worth nothing to someone who reads the table.
#[tokio::test]
async fn session_rows_never_hold_the_password_hash() {
    let app = spawn_app().await;
    let cookie = app.register("alice").await;
    let (hash, data): (String, Vec<u8>) = signoff::on_db!(&app.db, |pool| {
        sqlx::query_as(
            "SELECT u.password_hash, s.data FROM users u JOIN tower_sessions s ON s.user_id = u.id",
        )
        .fetch_one(pool)
        .await
        .expect("the session row")
    });
    assert!(hash.starts_with("$argon2id$"));
    let data = String::from_utf8_lossy(&data);
    assert!(
        !data.contains(&hash),
        "the session data holds the password hash"
    );
    assert!(!data.contains("argon2"), "{data}");
    assert_eq!(app.me(Some(&cookie)).await.as_deref(), Some("alice"));
}
