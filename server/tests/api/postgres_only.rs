//! Tests that need a networked PostgreSQL: a database outage while requests run, and recovery;
//! news that crosses instances.
//! The SQLite run skips this module by name (`--skip postgres_only`); run alone without
//! PostgreSQL they fail with instructions, never pass silently.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use reqwest::StatusCode;

use serde_json::json;

use crate::{
    helpers::*,
    passkeys::{add_passkey, sign_in},
    proxy,
};

fn require_postgres() {
    assert!(
        postgres_run(),
        "postgres_only tests need SIGNOFF_TEST_BACKEND=postgres and TEST_DATABASE_URL \
         (run `make unit-postgres`)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_outage_is_503_and_recovery_keeps_everyone_signed_in() {
    require_postgres();
    let db = TestDb::new().await;
    // Migrate through a direct connection first, then run the app through the proxy.
    drop(spawn_app_on(&db, &[]).await);
    let proxy = proxy::Proxy::start(proxy::upstream(db.url())).await;
    let url = proxy::via(db.url(), proxy.addr);
    let app = Arc::new(
        spawn_app_on(
            &db,
            &[
                ("DATABASE_URL", url.as_str()),
                ("DATABASE_ACQUIRE_TIMEOUT", "1"),
            ],
        )
        .await,
    );
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;

    // Background traffic for the whole test: it must never see a 5xx other than 503.
    let running = Arc::new(AtomicBool::new(true));
    let statuses: Arc<Mutex<Vec<u16>>> = Arc::default();
    let mut load = Vec::new();
    for i in 0..4 {
        let (app, running, statuses, cookie) = (
            app.clone(),
            running.clone(),
            statuses.clone(),
            alice.clone(),
        );
        load.push(tokio::spawn(async move {
            while running.load(Ordering::SeqCst) {
                let status = if i % 2 == 0 {
                    app.get("/api/me", Some(&cookie)).await.status()
                } else {
                    app.get("/", Some(&cookie)).await.status()
                };
                statuses.lock().unwrap().push(status.as_u16());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    proxy.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.get("/healthz", None).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let me = app.get("/api/me", Some(&alice)).await;
    assert_eq!(me.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_body(me).await.0, "unavailable");
    let logout = app.post("/api/logout", &[], Some(&bob)).await;
    assert_eq!(
        logout.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "sign-out reports failure"
    );
    assert!(session_cookie(&logout).is_none());
    let login = app.login_attempt("alice", PASSWORD).await;
    assert_eq!(login.status(), StatusCode::SERVICE_UNAVAILABLE);
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    proxy.restore();
    let mut healthy = false;
    for _ in 0..50 {
        if app.get("/healthz", None).await.status() == StatusCode::OK {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(healthy, "the app recovers when the database returns");
    running.store(false, Ordering::SeqCst);
    for task in load {
        task.await.unwrap();
    }

    // Nothing was lost, nobody has to sign in again, and the failed sign-out can be retried.
    assert_eq!(app.me(Some(&alice)).await.as_deref(), Some("alice"));
    assert_eq!(app.me(Some(&bob)).await.as_deref(), Some("bob"));
    assert_eq!(
        app.post("/api/logout", &[], Some(&bob)).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.me(Some(&bob)).await, None);

    let statuses = statuses.lock().unwrap().clone();
    assert!(statuses.contains(&503), "the outage was seen by the load");
    assert!(statuses.contains(&200));
    let bad: Vec<&u16> = statuses
        .iter()
        .filter(|s| **s >= 500 && **s != 503)
        .collect();
    assert!(bad.is_empty(), "unexpected 5xx during the outage: {bad:?}");
}

/// Two instances: a revocation made on A reaches a stream held open on B, through
/// PostgreSQL's LISTEN/NOTIFY. Prints how long it took.
#[tokio::test]
async fn a_revocation_on_one_instance_reaches_a_stream_on_the_other() {
    require_postgres();
    let a = spawn_app().await;
    let b = spawn_app_on(&a.test_db, &[]).await;
    let laptop = a.register("alice").await;
    let phone = b.login("alice").await;
    let mut phone_on_b = b.open_events(&phone).await;

    let mut samples = Vec::new();
    let handle = a.handle_of(&phone).await;
    let started = std::time::Instant::now();
    let response = a
        .post("/api/revoke_session", &[("id", &handle)], Some(&laptop))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        phone_on_b.ended(Duration::from_secs(5)).await,
        serde_json::json!({"reason": "revoked", "same_session": false})
    );
    samples.push(started.elapsed());

    // Sign out everywhere on B reaches the laptop's stream on A.
    let mut laptop_on_a = a.open_events(&laptop).await;
    let tablet = b.login("alice").await;
    let started = std::time::Instant::now();
    b.post("/api/logout_all", &[], Some(&tablet)).await;
    assert_eq!(
        laptop_on_a.ended(Duration::from_secs(5)).await,
        serde_json::json!({"reason": "signed_out_everywhere", "same_session": false})
    );
    samples.push(started.elapsed());
    println!("cross-instance fan-out, request sent to event received: {samples:?}");
}

/// Notifications sent while an instance's listener is reconnecting are lost; the instance then
/// tells its streams to re-read their sessions, so the news still arrives.
#[tokio::test]
async fn a_listener_that_lost_its_connection_catches_up() {
    require_postgres();
    let app = spawn_app().await;
    let cookie = app.register("alice").await;
    let mut events = app.open_events(&cookie).await;

    // End the session behind the server's back (no notification at all), then cut the
    // listener's connection.
    let signoff::db::Database::Postgres(pool) = &app.db else {
        unreachable!("postgres run");
    };
    sqlx::query("DELETE FROM tower_sessions WHERE id = $1")
        .bind(&cookie)
        .execute(pool)
        .await
        .expect("delete the row");
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(pool)
    .await
    .expect("terminate the listener");
    assert_eq!(cut, vec![true], "exactly one listener connection");

    assert_eq!(
        events.ended(Duration::from_secs(10)).await,
        serde_json::json!({"reason": "ended", "same_session": false})
    );
}

/// A provider's back-channel logout reaches instance A; the session's page holds its stream on
/// instance B. B must push the end at once (through NOTIFY), not at its next re-read.
#[tokio::test]
async fn a_provider_logout_on_one_instance_reaches_a_stream_on_the_other() {
    use crate::idp::{app_with_idp, backchannel, sid_of, spawn_with, Browser};
    require_postgres();
    let (a, idp) = app_with_idp().await;
    let b = spawn_with(&idp, &a.test_db, &[]).await;
    let cookie = Browser::new().sign_in(&a, "pat").await;
    let mut stream = b.open_events(&cookie).await;
    // The provider's logout token for this session (signed with the provider's key), sent to
    // A as the provider sends it.
    let sid = sid_of(&a, &cookie).await;
    let token = idp.logout_token(Some(&sid), None, serde_json::json!({}));
    let started = std::time::Instant::now();
    assert_eq!(backchannel(&a, &token).await.status(), StatusCode::OK);
    let ended = stream.ended(Duration::from_secs(5)).await;
    let elapsed = started.elapsed();
    assert_eq!(ended["reason"], "provider_logout");
    println!("back-channel logout on A → session-ended on B: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert_eq!(b.me(Some(&cookie)).await, None);
}

/// Removing a passkey ends its sessions "on every instance": the passkey is removed on A while
/// the page of a session signed in with it is held open by B (another process on the same
/// database); B hears it through PostgreSQL and tells the page. (SQLite is one process.)
#[tokio::test]
async fn removing_a_passkey_on_one_instance_resets_its_page_held_by_another() {
    require_postgres();
    let a = spawn_app_with(&[ONE_CLIENT_LOAD]).await;
    let b = spawn_app_on(&a.test_db, &[ONE_CLIENT_LOAD]).await;
    let owner = a.register("rita").await;
    let (mut passkey, info) = add_passkey(&a, &owner, "Tablet").await;
    let (response, _) = sign_in(&a, &mut passkey).await;
    assert_eq!(response.status(), StatusCode::OK);
    let on_passkey = session_cookie(&response).expect("signed in");
    assert_eq!(b.me(Some(&on_passkey)).await.as_deref(), Some("rita"));

    let mut page = b.open_events(&on_passkey).await;
    let sent = std::time::Instant::now();
    let response = a
        .post_json(
            "/api/passkeys/remove",
            &json!({ "id": info["id"] }),
            Some(&owner),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let ended = page.ended(Duration::from_secs(5)).await;
    println!(
        "passkey removed on A → its page on B told: {:?}",
        sent.elapsed()
    );
    assert_eq!(ended["reason"], "passkey_removed");
    assert_eq!(ended["provider"], "Tablet");
    assert_eq!(b.me(Some(&on_passkey)).await, None);
    assert_eq!(b.me(Some(&owner)).await.as_deref(), Some("rita"));
}
