//! Failed-login throttling (10 failures in 3 minutes per account and per address → 429) and
//! responses that do not reveal whether an account exists.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::*;

async fn assert_throttled(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = header_value(&response, "retry-after")
        .expect("Retry-After")
        .parse()
        .expect("Retry-After is whole seconds");
    assert!((1..=180).contains(&retry_after), "{retry_after}");
    let (code, _) = error_body(response).await;
    assert_eq!(code, "too_many_attempts");
}

#[tokio::test]
async fn ten_failures_for_an_account_lock_it_even_for_the_right_password() {
    let app = spawn_app().await;
    app.register("alice").await;
    for i in 0..10 {
        let response = app.login_attempt("alice", "wrong but long enough").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    assert_throttled(app.login_attempt("alice", PASSWORD).await).await;
    assert_throttled(app.login_attempt(" ALICE ", PASSWORD).await).await;
    // Existing sessions are unaffected; only sign-in is throttled.
}

#[tokio::test]
async fn successful_logins_do_not_count() {
    let app = spawn_app().await;
    app.register("alice").await;
    for _ in 0..15 {
        assert_eq!(
            app.login_attempt("alice", PASSWORD).await.status(),
            StatusCode::OK
        );
    }
    for _ in 0..9 {
        assert_eq!(
            app.login_attempt("alice", "wrong but long enough")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.login_attempt("alice", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_usernames_are_throttled_exactly_like_real_ones() {
    let app = spawn_app().await;
    for _ in 0..10 {
        assert_eq!(
            app.login_attempt("ghost", "wrong but long enough")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_throttled(app.login_attempt("ghost", PASSWORD).await).await;
}

#[tokio::test]
async fn one_address_guessing_many_accounts_is_throttled() {
    let app = spawn_app().await;
    app.register("alice").await;
    for i in 0..10 {
        let response = app
            .login_attempt(&format!("user{i}"), "wrong but long enough")
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // A fresh account name, but the same client address.
    assert_throttled(app.login_attempt("alice", PASSWORD).await).await;
}

#[tokio::test]
async fn throttling_expires_with_its_window() {
    let app = spawn_app_with(&[("LOGIN_MAX_FAILURES", "2"), ("LOGIN_THROTTLE_WINDOW", "2")]).await;
    app.register("alice").await;
    app.login_attempt("alice", "wrong but long enough").await;
    app.login_attempt("alice", "wrong but long enough").await;
    assert_throttled(app.login_attempt("alice", PASSWORD).await).await;
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert_eq!(
        app.login_attempt("alice", PASSWORD).await.status(),
        StatusCode::OK
    );
}

/// Unknown user and wrong password cost about the same time (a dummy Argon2 verification runs
/// for unknown users), so timing does not reveal which accounts exist.
#[tokio::test]
async fn unknown_user_and_wrong_password_take_similar_time() {
    let app = spawn_app_with(&[("LOGIN_MAX_FAILURES", "1000")]).await;
    app.register("alice").await;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..15 {
        let started = Instant::now();
        app.login_attempt("alice", "wrong but long enough").await;
        known.push(started.elapsed());
        let started = Instant::now();
        app.login_attempt(&format!("nobody{i}"), "wrong but long enough")
            .await;
        unknown.push(started.elapsed());
    }
    known.sort();
    unknown.sort();
    let (k, u) = (known[7].as_secs_f64(), unknown[7].as_secs_f64());
    let ratio = u / k;
    assert!(
        (0.5..2.0).contains(&ratio),
        "median known {k:.4}s, unknown {u:.4}s"
    );
}

/// Argon2 runs on the blocking pool: while a burst of sign-ins is hashing, the server still
/// answers other requests at once. With hashing on the async executor, `/healthz` would wait.
#[tokio::test]
async fn a_burst_of_logins_does_not_block_other_requests() {
    let app = std::sync::Arc::new(spawn_app_with(&[("LOGIN_MAX_FAILURES", "1000")]).await);
    app.register("alice").await;
    let logins: Vec<_> = (0..16)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                app.login_attempt("alice", "wrong but long enough").await;
                Instant::now()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let health = app.get("/healthz", None).await;
    let answered = Instant::now();
    assert_eq!(health.status(), StatusCode::OK);
    let mut last_login = answered;
    for login in logins {
        last_login = last_login.max(login.await.unwrap());
    }
    assert!(
        answered < last_login,
        "healthz waited for every hash to finish"
    );
}
