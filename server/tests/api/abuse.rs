//! Abuse under real concurrency: many requests in flight at once (not a loop), from many client
//! addresses (the loopback /8), on the backend of the run (SQLite, or PostgreSQL under
//! `make unit-postgres`).

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use futures_util::future::join_all;
use reqwest::{header, Client, StatusCode};

use crate::helpers::*;

/// A client whose connections come from `127.0.0.<n>` (a distinct client address).
fn client_from(n: u8) -> Client {
    Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn login_from(
    app: &TestApp,
    n: u8,
    username: &str,
    password: &str,
    cookies: Option<&str>,
) -> reqwest::Response {
    login_with(&client_from(n), app, username, password, cookies).await
}

/// A sign-in through `client`. Building a client costs milliseconds (reqwest 0.13 loads the
/// system's trust store each time; about 18 ms in a debug build): a flood builds its clients
/// first, or it measures the building rather than the server.
async fn login_with(
    client: &Client,
    app: &TestApp,
    username: &str,
    password: &str,
    cookies: Option<&str>,
) -> reqwest::Response {
    let mut request = client
        .post(app.url("/api/login"))
        .header(header::ACCEPT, "application/json")
        .form(&[("username", username), ("password", password)]);
    if let Some(cookies) = cookies {
        request = request.header(header::COOKIE, cookies);
    }
    request.send().await.expect("sent")
}

/// `name=value` of every cookie a response sets (for sending them back).
fn cookie_pairs(response: &reqwest::Response) -> String {
    set_cookies(response)
        .iter()
        .filter_map(|cookie| cookie.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

fn count(statuses: &[StatusCode], status: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_guesses_gets_at_most_the_limit_of_verifications() {
    let app = spawn_app().await;
    app.register("alice").await;
    // 100 wrong passwords at once, each from its own address (so only the account's own bucket
    // can stop them), then the right one.
    let guesses =
        (0..100u8).map(|i| login_from(&app, 10 + i, "alice", "wrong guess number one", None));
    let statuses: Vec<StatusCode> = join_all(guesses).await.iter().map(|r| r.status()).collect();
    let verified = count(&statuses, StatusCode::UNAUTHORIZED);
    println!("[abuse] 100 parallel guesses: {verified} verified, the rest refused");
    assert!(
        verified <= 10,
        "{verified} full verifications: {statuses:?}"
    );
    assert_eq!(
        verified + count(&statuses, StatusCode::TOO_MANY_REQUESTS),
        100,
        "{statuses:?}"
    );
    let right = login_from(&app, 200, "alice", PASSWORD, None).await;
    assert_eq!(
        right.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the account is throttled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_guesses_of_the_current_password_are_throttled_too() {
    let app = spawn_app().await;
    let cookie = app.register("alice").await;
    let guesses = (0..40).map(|_| {
        app.post(
            "/api/change_password",
            &[
                ("current_password", "not my password at all"),
                ("new_password", "a brand new passphrase here"),
            ],
            Some(&cookie),
        )
    });
    let statuses: Vec<StatusCode> = join_all(guesses).await.iter().map(|r| r.status()).collect();
    let verified = count(&statuses, StatusCode::BAD_REQUEST);
    assert!(verified <= 10, "{verified} verifications: {statuses:?}");
    assert_eq!(
        verified + count(&statuses, StatusCode::TOO_MANY_REQUESTS),
        40,
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strangers_cannot_lock_the_owner_out() {
    let app = spawn_app().await;
    app.register("alice").await;
    // The owner signs in from her laptop (127.0.0.2): it becomes known (cookie and network).
    let laptop = login_from(&app, 2, "alice", PASSWORD, None).await;
    assert_eq!(laptop.status(), StatusCode::OK);
    let device = cookie_pairs(&laptop)
        .split("; ")
        .find(|pair| pair.starts_with("signoff_device="))
        .expect("a device cookie")
        .to_owned();

    // Strangers fill the account's bucket, from 50 addresses at once.
    join_all((0..50u8).map(|i| login_from(&app, 100 + i, "alice", "guessing away here", None)))
        .await;
    let stranger = login_from(&app, 180, "alice", PASSWORD, None).await;
    assert_eq!(
        stranger.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "strangers are throttled"
    );

    // The owner still gets in: from her network, and with her device cookie from elsewhere.
    let home = login_from(&app, 2, "alice", PASSWORD, None).await;
    assert_eq!(home.status(), StatusCode::OK, "from the known network");
    let travelling = login_from(&app, 181, "alice", PASSWORD, Some(&device)).await;
    assert_eq!(
        travelling.status(),
        StatusCode::OK,
        "with the device cookie"
    );
    // A forged device cookie is just a stranger.
    let forged = login_from(&app, 182, "alice", PASSWORD, Some("signoff_device=forged")).await;
    assert_eq!(forged.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn consecutive_failures_close_the_account_to_strangers_until_an_operator_reopens_it() {
    let app = spawn_app_with(&[("LOGIN_ACCOUNT_LOCK", "5"), ("LOGIN_MAX_FAILURES", "1000")]).await;
    app.register("alice").await;
    assert_eq!(
        login_from(&app, 2, "alice", PASSWORD, None).await.status(),
        StatusCode::OK
    );
    for i in 0..5u8 {
        let wrong = login_from(&app, 50 + i, "alice", "wrong password again", None).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let stranger = login_from(&app, 60, "alice", PASSWORD, None).await;
    assert_eq!(
        stranger.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "closed to strangers"
    );
    assert!(header_value(&stranger, "retry-after").is_some());
    let owner = login_from(&app, 2, "alice", PASSWORD, None).await;
    assert_eq!(
        owner.status(),
        StatusCode::OK,
        "the known network still gets in"
    );
    // (A success resets the count: close it again for the operator's part.)
    for i in 0..5u8 {
        login_from(&app, 70 + i, "alice", "wrong password again", None).await;
    }
    assert_eq!(
        login_from(&app, 61, "alice", PASSWORD, None).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    // The real binary's operator command.
    let unlocked = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["unlock-account", "Alice"])
        .env("DATABASE_URL", app.test_db.url())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run server unlock-account");
    assert!(unlocked.status.success(), "{unlocked:?}");
    assert_eq!(
        login_from(&app, 61, "alice", PASSWORD, None).await.status(),
        StatusCode::OK,
        "reopened"
    );
    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["unlock-account", "nobody"])
        .env("DATABASE_URL", app.test_db.url())
        .output()
        .expect("run server unlock-account");
    assert!(!unknown.status.success(), "an unknown account is an error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registration_flood_is_throttled_and_a_bystander_signs_in_fast() {
    // The flood's connections past its address's share would be refused before registering:
    // this test is about the registration throttle behind that.
    let app = spawn_app_with(&[ONE_CLIENT_LOAD]).await;
    app.register("taken").await;
    app.register("bystander").await;
    // The usual time of the bystander's sign-in on this machine, now (the suite runs in
    // parallel: the same sign-in takes 50 ms alone and more while other tests start up).
    let started = Instant::now();
    assert_eq!(
        login_from(&app, 4, "bystander", PASSWORD, None)
            .await
            .status(),
        StatusCode::OK
    );
    let usual = started.elapsed();
    // One client (one address) floods: 1,000 registrations at once.
    let flood = tokio::spawn({
        let url = app.url("/api/register");
        async move {
            let client = client_from(9);
            let requests = (0..1000).map(|i| {
                let name = if i % 2 == 0 {
                    "taken".to_owned()
                } else {
                    format!("flood{i}")
                };
                client
                    .post(&url)
                    .header(header::ACCEPT, "application/json")
                    .form(&[("username", name.as_str()), ("password", PASSWORD)])
                    .send()
            });
            join_all(requests)
                .await
                .into_iter()
                .map(|r| r.map(|r| r.status()).unwrap_or(StatusCode::IM_A_TEAPOT))
                .collect::<Vec<_>>()
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let bystander = login_from(&app, 3, "bystander", PASSWORD, None).await;
    let took = started.elapsed();
    assert_eq!(bystander.status(), StatusCode::OK);
    let statuses = flood.await.expect("flood");
    println!(
        "[abuse] bystander sign-in during a 1,000-registration flood: {took:?} (usual {usual:?})"
    );
    let created = count(&statuses, StatusCode::OK);
    let conflicts = count(&statuses, StatusCode::CONFLICT);
    assert!(
        created + conflicts <= 10,
        "registrations per address: {statuses:?}"
    );
    assert_eq!(
        created + conflicts + count(&statuses, StatusCode::TOO_MANY_REQUESTS),
        1000,
        "every other one is 429: {statuses:?}"
    );
    // Alone this takes 45-90 ms on PostgreSQL. In full parallel runs on two cores it takes longer:
    // 0.47 and 0.71 s before the PRECIS name rules, and 1.1-1.4 s in about a third of runs since
    // (the usual sign-in just before: 40-50 ms). The cause is not found (not the throttle's lock
    // waits: trying the locks instead changed nothing). Two seconds still fails a bystander
    // starved for the flood's length, which is the property here.
    assert!(
        took < Duration::from_secs(2) || took < usual * 4,
        "bystander took {took:?} (usual {usual:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hashing_flood_is_shed_with_503_never_queued_without_bound() {
    let app = spawn_app_with(&[("LOGIN_MAX_FAILURES", "1000")]).await;
    // 400 sign-ins at once from 200 addresses, each a full hash (unknown names are verified
    // against a dummy hash): more than the queue holds.
    let clients: Vec<Client> = (0..200u8).map(|n| client_from(10 + n)).collect();
    let started = Instant::now();
    let app = &app;
    let clients = &clients;
    let attempts = (0..400u32).map(|i| {
        let name = format!("nobody{i}");
        async move {
            let client = &clients[(i % 200) as usize];
            let response = login_with(client, app, &name, "some password here", None).await;
            let retry = header_value(&response, "retry-after");
            (response.status(), retry)
        }
    });
    let answers = join_all(attempts).await;
    let took = started.elapsed();
    let shed: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    println!(
        "[abuse] 400 parallel hashes: {} shed with 503, all answered in {took:?}",
        shed.len()
    );
    assert!(!shed.is_empty(), "nothing was shed");
    assert!(
        shed.iter().all(|(_, retry)| retry.is_some()),
        "503 carries Retry-After"
    );
    assert!(
        answers.iter().all(|(status, _)| [
            StatusCode::UNAUTHORIZED,
            StatusCode::SERVICE_UNAVAILABLE
        ]
        .contains(status)),
        "{answers:?}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies_and_ipv6_per_64() {
    async fn fail_as(app: &TestApp, forwarded_for: &str) -> StatusCode {
        app.post_with(
            "/api/login",
            &[("username", "nobody"), ("password", "wrong password here")],
            None,
            &[("x-forwarded-for", forwarded_for)],
        )
        .await
        .status()
    }
    // Behind a trusted proxy (the test client is 127.0.0.1): each client has its own bucket,
    // and an IPv6 client is its /64.
    let app = spawn_app_with(&[
        ("TRUSTED_PROXIES", "127.0.0.1/32, ::1"),
        ("LOGIN_MAX_FAILURES", "3"),
    ])
    .await;
    for i in 0..3 {
        assert_eq!(
            fail_as(&app, &format!("2001:db8:1:2::{i}")).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        fail_as(&app, "2001:db8:1:2:ffff::9").await,
        StatusCode::TOO_MANY_REQUESTS,
        "the same /64"
    );
    // Another name, so the account's bucket does not decide: addresses are separate buckets.
    let other = |ip: &str| {
        let ip = ip.to_owned();
        let app = &app;
        async move {
            app.post_with(
                "/api/login",
                &[("username", "someone"), ("password", "wrong password here")],
                None,
                &[("x-forwarded-for", &ip)],
            )
            .await
            .status()
        }
    };
    assert_eq!(
        other("203.0.113.7").await,
        StatusCode::UNAUTHORIZED,
        "another client"
    );

    // Without trusted proxies, the header is ignored: everyone is the peer.
    let direct = spawn_app_with(&[("LOGIN_MAX_FAILURES", "3")]).await;
    for i in 0..3 {
        let status = direct
            .post_with(
                "/api/login",
                &[
                    ("username", format!("user{i}").as_str()),
                    ("password", "wrong password"),
                ],
                None,
                &[("x-forwarded-for", &format!("198.51.100.{i}"))],
            )
            .await
            .status();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let status = direct
        .post_with(
            "/api/login",
            &[("username", "user9"), ("password", "wrong password")],
            None,
            &[("x-forwarded-for", "198.51.100.99")],
        )
        .await
        .status();
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "one peer, one bucket"
    );
}

#[tokio::test]
async fn control_characters_and_overlong_names_are_400_before_the_database() {
    let app = spawn_app().await;
    for name in [
        "ali\0ce",
        "bob\u{7}",
        "x\ny",
        // Longer than any name, even one typed decomposed (an accent per letter).
        &"a".repeat(129),
        &"é".repeat(300),
    ] {
        let login = app.login_attempt(name, PASSWORD).await;
        assert_eq!(login.status(), StatusCode::BAD_REQUEST, "{name:?}");
        assert_eq!(error_body(login).await.0, "invalid_input");
        let register = app.register_attempt(name, PASSWORD).await;
        assert_eq!(register.status(), StatusCode::BAD_REQUEST, "{name:?}");
    }
    // A new name is counted after composition: 33 letters are too many to register, and only
    // the sign-in's generous bound keeps them from the database.
    let register = app.register_attempt(&"a".repeat(33), PASSWORD).await;
    assert_eq!(register.status(), StatusCode::BAD_REQUEST);
    let composed_max = "é".repeat(32);
    assert_eq!(
        app.register_attempt(&"e\u{301}".repeat(32), PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login_attempt(&composed_max, PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn several_session_cookies_are_no_session_and_sign_out_still_removes_it() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    for header in [
        format!("{COOKIE}={alice}; {COOKIE}={bob}"),
        format!("{COOKIE}=planted; {COOKIE}={bob}"),
    ] {
        let response = Client::new()
            .get(app.url("/api/me"))
            .header(header::COOKIE, &header)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.text().await.expect("body"), "null", "{header}");
    }
    let out = Client::new()
        .post(app.url("/api/logout"))
        .header(header::COOKIE, format!("{COOKIE}=planted; {COOKIE}={bob}"))
        .send()
        .await
        .expect("sent");
    assert!(out.status().is_success());
    let removal = session_set_cookie(&out).expect("a removal cookie");
    assert!(
        attributes(&removal).contains(&"max-age=0".to_owned()),
        "{removal}"
    );
    // One cookie is a session as usual.
    assert_eq!(app.me(Some(&bob)).await.as_deref(), Some("bob"));
}

#[tokio::test]
async fn a_secure_session_cookie_carries_the_host_prefix() {
    let app = spawn_app_with(&[("COOKIE_SECURE", "true")]).await;
    let response = app.register_attempt("alice", PASSWORD).await;
    let cookie = set_cookies(&response)
        .into_iter()
        .find(|c| c.starts_with("__Host-signoff_session="))
        .expect("a __Host- session cookie");
    let attributes = attributes(&cookie);
    assert!(attributes.contains(&"secure".to_owned()), "{cookie}");
    assert!(attributes.contains(&"path=/".to_owned()), "{cookie}");
    assert!(
        !attributes.iter().any(|a| a.starts_with("domain")),
        "{cookie}"
    );
}

#[tokio::test]
async fn event_streams_are_capped_per_session_and_end_after_their_lifetime() {
    let app = spawn_app_with(&[("EVENT_STREAM_MAX_LIFETIME", "1")]).await;
    let cookie = app.register("alice").await;
    let mut open = Vec::new();
    for _ in 0..8 {
        let stream = app.events(Some(&cookie)).await;
        assert_eq!(stream.status(), StatusCode::OK);
        open.push(stream);
    }
    let refused = app.events(Some(&cookie)).await;
    assert_eq!(
        refused.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "a ninth for one session"
    );
    assert!(header_value(&refused, "retry-after").is_some());
    // Each stream ends by itself after its lifetime (1 s here, plus up to 3 s of spread).
    let started = Instant::now();
    for mut stream in open {
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            while let Ok(Some(_)) = stream.chunk().await {}
        })
        .await;
        assert!(ended.is_ok(), "a stream outlived its lifetime");
    }
    println!(
        "[abuse] 8 streams ended by themselves within {:?}",
        started.elapsed()
    );
    assert_eq!(
        app.events(Some(&cookie)).await.status(),
        StatusCode::OK,
        "room again"
    );
}

#[tokio::test]
async fn event_streams_are_capped_per_user() {
    let app = spawn_app_with(&[("LOGIN_MAX_FAILURES", "1000")]).await;
    app.register("alice").await;
    let mut open = Vec::new();
    for _ in 0..4 {
        let cookie = app.login("alice").await;
        for _ in 0..8 {
            let stream = app.events(Some(&cookie)).await;
            assert_eq!(stream.status(), StatusCode::OK);
            open.push(stream);
        }
    }
    let cookie = app.login("alice").await;
    let refused = app.events(Some(&cookie)).await;
    assert_eq!(
        refused.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "a 33rd for one user"
    );
    drop(open);
}

/// A connection from `ip` (a loopback address: 127.0.0.2, 127.0.0.3, …).
async fn connect_from(app: &TestApp, ip: [u8; 4]) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(std::net::SocketAddr::from((ip, 0)))
        .expect("bind a loopback address");
    socket.connect(app.addr).await.expect("connect")
}

/// `GET /healthz` on a new connection from `ip`: the status line, and how long it took.
async fn health_from(app: &TestApp, ip: [u8; 4]) -> (String, Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = Instant::now();
    let mut socket = connect_from(app, ip).await;
    let _ = socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer)).await;
    let status = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("no answer")
        .to_owned();
    (status, started.elapsed())
}

#[tokio::test]
async fn one_address_cannot_hold_the_server_and_a_full_server_refuses_fast() {
    use tokio::io::AsyncReadExt;

    let app = spawn_app_with(&[
        ("SERVER_MAX_CONNECTIONS", "8"),
        ("SERVER_MAX_CONNECTIONS_PER_CLIENT", "4"),
        ("SERVER_HEADER_READ_TIMEOUT", "2"),
    ])
    .await;
    let started = Instant::now();
    // One address opens twice its share of sockets and sends nothing.
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(connect_from(&app, [127, 0, 0, 2]).await);
    }
    // Its share is held; the rest are answered 503 at once.
    let mut refused = 0;
    for socket in &mut idle {
        let mut buffer = [0u8; 512];
        if let Ok(Ok(read)) =
            tokio::time::timeout(Duration::from_millis(300), socket.read(&mut buffer)).await
        {
            let answer = String::from_utf8_lossy(&buffer[..read]);
            assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
            assert!(answer.contains("Retry-After: 1"), "{answer}");
            refused += 1;
        }
    }
    assert_eq!(refused, 4, "one address holds at most its share (4)");
    // Anyone else is served at once.
    let (status, took) = health_from(&app, [127, 0, 0, 3]).await;
    println!("[abuse] another client served in {took:?} while one address held 8 idle connections (share 4, cap 8)");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(took < Duration::from_millis(500), "{took:?}");

    // A second address fills the server: a newcomer is refused fast, never left hanging.
    for _ in 0..4 {
        idle.push(connect_from(&app, [127, 0, 0, 4]).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, took) = health_from(&app, [127, 0, 0, 3]).await;
    println!("[abuse] a full server refused a newcomer in {took:?}");
    assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    assert!(took < Duration::from_millis(500), "{took:?}");

    // The idle sockets reach their deadline and the server recovers at once.
    let recovered = loop {
        let (status, _) = health_from(&app, [127, 0, 0, 3]).await;
        if status.starts_with("HTTP/1.1 200") {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "never recovered: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("[abuse] served again {recovered:?} after the idle sockets were opened (SERVER_HEADER_READ_TIMEOUT=2)");
    drop(idle);
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app_with(&[("SERVER_BODY_TIMEOUT", "1")]).await;
    let mut socket = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    socket
        .write_all(
            b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 100\r\n\r\nusername=a",
        )
        .await
        .expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test]
async fn a_password_change_keeps_the_absolute_deadline() {
    let app = spawn_app_with(&[
        ("SESSION_ABSOLUTE_TIMEOUT", "4"),
        ("SESSION_IDLE_TIMEOUT", "60"),
    ])
    .await;
    let started = Instant::now();
    let cookie = app.register("alice").await;
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    // This request refreshes the expiry (to the absolute deadline); the change right after it
    // re-keys the session without a refresh of its own.
    assert_eq!(app.me(Some(&cookie)).await.as_deref(), Some("alice"));
    let changed = app
        .change_password(&cookie, "a brand new passphrase here")
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let renewed = session_cookie(&changed).expect("a new id");
    // Past the deadline by more than the second that SQLite's text comparison of expiries blurs.
    tokio::time::sleep(
        Duration::from_secs(4).saturating_sub(started.elapsed()) + Duration::from_millis(1_600),
    )
    .await;
    assert_eq!(
        app.me(Some(&renewed)).await,
        None,
        "the session outlived its absolute timeout"
    );
}

#[tokio::test]
async fn the_sweep_forgets_attempts_past_their_window_and_expired_trust() {
    let app = spawn_app_with(&[
        ("SESSION_SWEEP_INTERVAL", "1"),
        ("LOGIN_THROTTLE_WINDOW", "1"),
    ])
    .await;
    app.register("alice").await;
    assert_eq!(
        app.login_attempt("alice", "not the password at all")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    signoff::on_db!(&app.db, |pool| {
        sqlx::query("INSERT INTO trusted_clients (user_id, key_hash, expires_at) SELECT id, 'net:old', 1 FROM users")
            .execute(pool)
            .await
            .expect("an expired trust row")
            .rows_affected()
    });
    let counts = || async {
        signoff::on_db!(&app.db, |pool| {
            sqlx::query_as::<_, (i64, i64)>(
                "SELECT (SELECT COUNT(*) FROM login_failures), \
                 (SELECT COUNT(*) FROM trusted_clients WHERE key_hash = 'net:old')",
            )
            .fetch_one(pool)
            .await
            .expect("counts")
        })
    };
    let (failures, expired) = counts().await;
    assert!(failures > 0 && expired == 1, "{failures} {expired}");
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    assert_eq!(counts().await, (0, 0), "the sweep left old rows");
}

#[tokio::test]
async fn a_body_trickled_a_byte_at_a_time_gets_its_408_on_time() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app_with(&[("SERVER_BODY_TIMEOUT", "1")]).await;
    for path in ["/api/login"] {
        let mut socket = tokio::net::TcpStream::connect(app.addr)
            .await
            .expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: 1000\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).await.expect("write");
        let started = Instant::now();
        // One byte every 200 ms: a timer that restarts at every frame never fires.
        let mut answer = Vec::new();
        let mut buffer = [0u8; 1024];
        while started.elapsed() < Duration::from_secs(6) {
            if socket.write_all(b"a").await.is_err() {
                break;
            }
            match tokio::time::timeout(Duration::from_millis(200), socket.read(&mut buffer)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(read)) => answer.extend_from_slice(&buffer[..read]),
                Err(_) => {}
            }
            if !answer.is_empty() {
                break;
            }
        }
        let waited = started.elapsed();
        let answer = String::from_utf8_lossy(&answer);
        println!(
            "[abuse] a trickled body to {path} (SERVER_BODY_TIMEOUT=1) ended after {waited:?}"
        );
        if path == "/api/login" {
            assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer:?}");
        }
        assert!(
            waited < Duration::from_secs(3),
            "{path}: the trickle held the connection for {waited:?}"
        );
    }
}

#[tokio::test]
async fn event_streams_have_a_budget_of_their_own() {
    let app = spawn_app_with(&[("EVENT_STREAM_MAX_TOTAL", "2")]).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let first = app.open_events(&alice).await;
    let second = app.open_events(&alice).await;
    let refused = app.events(Some(&bob)).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header_value(&refused, "retry-after").as_deref(), Some("30"));
    // Ordinary requests are served as ever.
    assert_eq!(app.me(Some(&bob)).await.as_deref(), Some("bob"));
    // A stream that ends gives its place back.
    drop(first);
    let reopened = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let response = app.events(Some(&bob)).await;
            if response.status() == StatusCode::OK {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(reopened.is_ok(), "the budget was not given back");
    drop(second);
}

#[tokio::test]
async fn a_nul_byte_in_a_parameter_is_400_never_503() {
    let app = spawn_app().await;
    let cookie = app.register("alice").await;
    // PostgreSQL refuses a NUL byte in text: carried to it, these were 503s.
    for (path, field) in [
        ("/api/revoke_session", "id"),
        ("/api/unlink_provider", "provider"),
    ] {
        for value in ["0123456789abcdef\0", "\0", "a\u{1b}[31m"] {
            let response = app.post(path, &[(field, value)], Some(&cookie)).await;
            assert_eq!(
                response.status(),
                StatusCode::BAD_REQUEST,
                "{path} {value:?}"
            );
            assert_eq!(error_body(response).await.0, "invalid_input");
        }
    }
    // Nothing was changed, nothing broke.
    assert_eq!(app.me(Some(&cookie)).await.as_deref(), Some("alice"));
    assert_eq!(app.session_rows(&cookie).await, 1);
}
