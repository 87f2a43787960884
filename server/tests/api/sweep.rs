//! The expiry sweep at scale: a large backlog of expired sessions goes away in bounded batches
//! while sign-ins and sign-outs keep their usual latency (both backends; on SQLite one statement
//! over the backlog held the write lock for seconds).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use signoff::session::{SessionSettings, Store};

use crate::helpers::*;

/// Expired rows put in front of the sweep.
const BACKLOG: i64 = 300_000;

async fn insert_expired_backlog(app: &TestApp) {
    let long_ago = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    let sql = if postgres_run() {
        "INSERT INTO tower_sessions (id, data, expiry_date) \
         SELECT 'expired-' || i, '\\x00'::bytea, $1 FROM generate_series(1, $2) AS i"
    } else {
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2) \
         INSERT INTO tower_sessions (id, data, expiry_date) SELECT 'expired-' || i, x'00', $1 FROM n"
    };
    let inserted = signoff::on_db!(&app.db, |pool| {
        sqlx::query(sql)
            .bind(long_ago)
            .bind(BACKLOG)
            .execute(pool)
            .await
            .expect("the backlog")
            .rows_affected()
    });
    assert_eq!(inserted, BACKLOG as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_backlog_of_expired_sessions_is_swept_without_being_felt() {
    let app = spawn_app_with(&[("LOGIN_MAX_FAILURES", "10000")]).await;
    app.register("alice").await;
    // The usual latency first.
    let mut usual = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        let cookie = app.login("alice").await;
        let out = app.post("/api/logout", &[], Some(&cookie)).await;
        assert_eq!(out.status(), StatusCode::OK);
        usual = usual.max(started.elapsed());
    }
    insert_expired_backlog(&app).await;

    // The real store's sweep, on the app's database, while sign-ins and sign-outs go on.
    let store = Store::new(&app.db, &SessionSettings::default());
    let sweep_started = Instant::now();
    let sweep = tokio::spawn(async move { store.delete_expired().await });
    let mut worst = Duration::ZERO;
    let mut rounds = 0;
    while !sweep.is_finished() {
        let started = Instant::now();
        let login = app.login_attempt("alice", PASSWORD).await;
        assert_eq!(login.status(), StatusCode::OK, "a sign-in during the sweep");
        let cookie = session_cookie(&login).expect("a session");
        let out = app.post("/api/logout", &[], Some(&cookie)).await;
        assert_eq!(out.status(), StatusCode::OK, "a sign-out during the sweep");
        worst = worst.max(started.elapsed());
        rounds += 1;
    }
    let swept = sweep.await.expect("sweep task").expect("sweep");
    println!(
        "[sweep] {} expired rows in {} batches over {:?}; the longest batch took {:?}; \
         sign-in + sign-out during it: worst {worst:?} over {rounds} rounds (usual worst {usual:?})",
        swept.rows,
        swept.batches,
        sweep_started.elapsed(),
        swept.longest_batch
    );
    assert_eq!(swept.rows, BACKLOG as u64);
    let left: i64 = signoff::on_db!(&app.db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM tower_sessions WHERE id LIKE 'expired-%'")
            .fetch_one(pool)
            .await
            .expect("count")
    });
    assert_eq!(left, 0, "expired rows left");
    assert!(rounds > 0, "the sweep ended before any request could run");
    assert!(
        worst < usual + Duration::from_millis(500),
        "the sweep was felt: worst {worst:?}, usual {usual:?}"
    );
}
