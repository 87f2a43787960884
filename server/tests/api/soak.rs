//! `make soak`: a bounded load test on loopback. Two instances share one database; simulated
//! users sign in on one, use the app on either, sign out, and check the old cookie is dead.
//! Ends with zero 5xx and the session table back to its baseline. Ignored by `make test`.
//! `SOAK_USERS` (200) and `SOAK_SECONDS` (120) size it.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use reqwest::StatusCode;

use crate::helpers::*;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    server_errors: AtomicU64,
    sign_ins: AtomicU64,
    sign_outs: AtomicU64,
    resurrected: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "load test: run with `make soak`"]
async fn soak_two_instances_many_users() {
    let users = env_u64("SOAK_USERS", 200) as usize;
    let seconds = env_u64("SOAK_SECONDS", 120);
    // Every simulated user signs up from this one address.
    let a = Arc::new(
        spawn_app_with(&[
            ("DATABASE_MAX_CONNECTIONS", "16"),
            ("REGISTER_MAX_PER_WINDOW", "100000"),
            ONE_CLIENT_LOAD,
            ("LOGIN_MAX_FAILURES", "100000"),
        ])
        .await,
    );
    let b = Arc::new(
        spawn_app_on(
            &a.test_db,
            &[
                ("DATABASE_MAX_CONNECTIONS", "16"),
                ("LOGIN_MAX_FAILURES", "100000"),
                ONE_CLIENT_LOAD,
            ],
        )
        .await,
    );
    let names: Vec<String> = (0..users).map(|i| format!("soak{i}")).collect();
    for name in &names {
        let cookie = a.register(name).await;
        a.post("/api/logout", &[], Some(&cookie)).await;
    }
    let baseline = a.db.session_row_count().await.unwrap();
    eprintln!("soak: {users} users, {seconds} s, 2 instances, baseline {baseline} session rows");

    let counts = Arc::new(Counts::default());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        let (a, b, counts) = (a.clone(), b.clone(), counts.clone());
        tasks.push(tokio::spawn(async move {
            let (first, second) = if i % 2 == 0 { (a, b) } else { (b, a) };
            let count = |status: StatusCode| {
                counts.requests.fetch_add(1, Ordering::Relaxed);
                if status.is_server_error() {
                    counts.server_errors.fetch_add(1, Ordering::Relaxed);
                    eprintln!("soak: {status}");
                }
            };
            while Instant::now() < deadline {
                let login = first.login_attempt(&name, PASSWORD).await;
                count(login.status());
                let Some(cookie) = session_cookie(&login) else {
                    continue;
                };
                counts.sign_ins.fetch_add(1, Ordering::Relaxed);
                for j in 0..5 {
                    let instance = if j % 2 == 0 { &first } else { &second };
                    let me = instance.get("/api/me", Some(&cookie)).await;
                    count(me.status());
                }
                let logout = second.post("/api/logout", &[], Some(&cookie)).await;
                count(logout.status());
                counts.sign_outs.fetch_add(1, Ordering::Relaxed);
                let replay = first.get("/api/me", Some(&cookie)).await;
                count(replay.status());
                if replay.text().await.unwrap_or_default() != "null" {
                    counts.resurrected.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let after = a.db.session_row_count().await.unwrap();
    let requests = counts.requests.load(Ordering::Relaxed);
    eprintln!(
        "soak: {requests} requests ({:.0}/s), {} sign-ins, {} sign-outs, {} 5xx, {} cookies alive \
         after sign-out, session rows {baseline} -> {after}",
        requests as f64 / seconds as f64,
        counts.sign_ins.load(Ordering::Relaxed),
        counts.sign_outs.load(Ordering::Relaxed),
        counts.server_errors.load(Ordering::Relaxed),
        counts.resurrected.load(Ordering::Relaxed),
    );
    assert_eq!(counts.server_errors.load(Ordering::Relaxed), 0, "no 5xx");
    assert_eq!(
        counts.resurrected.load(Ordering::Relaxed),
        0,
        "no session outlives its sign-out"
    );
    assert_eq!(after, baseline, "no leaked sessions");
    assert!(counts.sign_ins.load(Ordering::Relaxed) > 0);
}
