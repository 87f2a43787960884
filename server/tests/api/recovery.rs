//! E-mail addresses, "Forgot your password?" and the reset that ends every session, and the
//! notices (crates/signoff/src/recovery.rs, pages.rs, mail_tokens.rs, notices.rs), against the
//! real server, a real database (SQLite here; PostgreSQL with SIGNOFF_TEST_BACKEND=postgres) and
//! a real SMTP server.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use futures_util::future::join_all;
use reqwest::{header, Client, StatusCode};
use serde_json::Value;

use crate::{
    helpers::*,
    smtp::{Received, Smtp},
};

const NEW_PASSWORD: &str = "a brand new passphrase for this";
const MAIL_WAIT: Duration = Duration::from_secs(10);

async fn app_with_mail(smtp: &Smtp, extra: &[(&str, &str)]) -> TestApp {
    let url = smtp.url();
    let mut vars = vec![
        ("SMTP_URL", url.as_str()),
        ("MAIL_FROM", "Signoff Test <no-reply@signoff.test>"),
        ("MAIL_RETRY_MAX_DELAY", "1"),
    ];
    vars.extend_from_slice(extra);
    spawn_app_with(&vars).await
}

/// The mail's text, with quoted-printable soft breaks and escapes undone.
fn decoded(mail: &Received) -> String {
    let data = mail.data.replace("=\r\n", "");
    let mut out = String::with_capacity(data.len());
    let bytes = data.as_bytes();
    let mut i = 0;
    let mut raw = Vec::new();
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&data[i + 1..i + 3], 16) {
                raw.push(byte);
                i += 3;
                continue;
            }
        }
        raw.push(bytes[i]);
        i += 1;
    }
    out.push_str(&String::from_utf8_lossy(&raw));
    out
}

/// The token of the first `path?token=…` link in `mail`.
fn token_in(mail: &Received, path: &str) -> String {
    let text = decoded(mail);
    let marker = format!("{path}?token=");
    let at = text
        .find(&marker)
        .unwrap_or_else(|| panic!("a {path} link in: {text}"));
    text[at + marker.len()..].chars().take(43).collect()
}

fn subject(mail: &Received) -> String {
    mail.header("Subject").unwrap_or_default()
}

/// Mails to `to`, by subject, once `count` mails in all arrived.
async fn mails_to(smtp: &Smtp, count: usize, to: &str) -> Vec<Received> {
    smtp.wait_for(count, MAIL_WAIT)
        .await
        .into_iter()
        .filter(|mail| mail.rcpt_tos.iter().any(|rcpt| rcpt == to))
        .collect()
}

/// Registers `name`, adds and confirms `address`; returns the session cookie.
async fn account_with_address(app: &TestApp, smtp: &Smtp, name: &str, address: &str) -> String {
    let cookie = app.register(name).await;
    let before = smtp.received().len();
    let response = request_address(app, &cookie, address, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let mails = mails_to(smtp, before + 1, address).await;
    let mail = mails.last().expect("the confirmation mail");
    assert_eq!(subject(mail), "Confirm your e-mail address");
    let token = token_in(mail, "/verify-email");
    let response = app
        .post("/api/email/verify", &[("token", &token)], Some(&cookie))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    cookie
}

async fn request_address(
    app: &TestApp,
    cookie: &str,
    address: &str,
    password: &str,
) -> reqwest::Response {
    app.post(
        "/api/email/change",
        &[("email", address), ("current_password", password)],
        Some(cookie),
    )
    .await
}

async fn confirmed_address(app: &TestApp, name: &str) -> Option<String> {
    signoff::on_db!(&app.db, |pool| {
        sqlx::query_scalar::<_, Option<String>>("SELECT email FROM users WHERE username = $1")
            .bind(name)
            .fetch_one(pool)
            .await
            .expect("the account")
    })
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    signoff::on_db!(&app.db, |pool| {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(pool)
            .await
            .expect("count")
    })
}

async fn forgot(app: &TestApp, account: &str) -> reqwest::Response {
    app.post("/api/password/forgot", &[("account", account)], None)
        .await
}

/// Asks for a reset of `name` and returns the token mailed to `address`.
async fn reset_token(app: &TestApp, smtp: &Smtp, account: &str, address: &str) -> String {
    let before = smtp.received().len();
    assert_eq!(forgot(app, account).await.status(), StatusCode::ACCEPTED);
    let mails = mails_to(smtp, before + 1, address).await;
    let mail = mails
        .iter()
        .rev()
        .find(|mail| subject(mail) == "Reset your password")
        .expect("the reset mail");
    token_in(mail, "/reset")
}

#[tokio::test]
async fn an_address_counts_once_confirmed_by_its_link_which_works_once() {
    let smtp = Smtp::start();
    let app = app_with_mail(&smtp, &[]).await;
    let cookie = app.register("ann").await;

    let response = request_address(&app, &cookie, "Ann@Example.COM", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let mails = smtp.wait_for(1, MAIL_WAIT).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(
        mail.rcpt_tos,
        ["Ann@example.com"],
        "the domain in lower case"
    );
    assert_eq!(subject(mail), "Confirm your e-mail address");
    assert!(mail.header("Message-ID").is_some() && mail.header("Date").is_some());
    assert!(mail.data.contains("text/plain") && mail.data.contains("text/html"));
    assert_eq!(
        confirmed_address(&app, "ann").await,
        None,
        "not before it is confirmed"
    );

    let token = token_in(mail, "/verify-email");
    // Opening the link (a mail scanner does) shows a form and uses nothing.
    for _ in 0..2 {
        let page = app.get(&format!("/verify-email?token={token}"), None).await;
        assert_eq!(page.status(), StatusCode::OK);
        let csp = header_value(&page, "content-security-policy").expect("a CSP");
        assert!(
            csp.contains("default-src 'none'") && !csp.contains("script"),
            "{csp}"
        );
        let html = page.text().await.expect("html");
        assert!(html.contains("Ann@example.com") && html.contains("method=\"post\""));
    }
    let response = app
        .post("/api/email/verify", &[("token", &token)], Some(&cookie))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["email"], "Ann@example.com");
    assert_eq!(
        confirmed_address(&app, "ann").await.as_deref(),
        Some("Ann@example.com")
    );
    // Once.
    let again = app
        .post("/api/email/verify", &[("token", &token)], Some(&cookie))
        .await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    let (code, message) = error_body(again).await;
    assert_eq!(code, "invalid_input");
    assert!(message.contains("This link does not work"), "{message}");
    let page = app.get(&format!("/verify-email?token={token}"), None).await;
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(page
        .text()
        .await
        .expect("html")
        .contains("This link does not work"));
}

#[tokio::test]
async fn bad_addresses_and_a_wrong_password_get_400_and_send_nothing() {
    let smtp = Smtp::start();
    let app = app_with_mail(&smtp, &[]).await;
    let cookie = app.register("bob").await;
    let long = format!("{}@example.com", "a".repeat(250));
    for bad in [
        "bob@example.com\r\nBcc: victim@example.com",
        "bob@example.com\nSubject: hi",
        "not an address",
        "bob@",
        long.as_str(),
        "",
    ] {
        let response = request_address(&app, &cookie, bad, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        let (code, _) = error_body(response).await;
        assert_eq!(code, "invalid_input", "{bad:?}");
    }
    let response = request_address(&app, &cookie, "bob@example.com", "not my password").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_body(response).await.0, "wrong_password");
    // Not signed in: 401.
    let response = app
        .post(
            "/api/email/change",
            &[("email", "bob@example.com"), ("current_password", PASSWORD)],
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM mail_outbox").await, 0);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM mail_tokens").await, 0);
    // Bad input to the other forms: 400, never a 500.
    for (path, form) in [
        ("/api/password/forgot", vec![("account", "x\r\ny")]),
        ("/api/password/forgot", vec![("nothing", "")]),
        ("/api/password/reset", vec![("token", "short")]),
        ("/api/email/verify", vec![]),
    ] {
        let response = app.post(path, &form, None).await;
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{path} {form:?}"
        );
        assert_eq!(error_body(response).await.0, "invalid_input");
    }
}

#[tokio::test]
async fn an_address_in_use_is_not_given_away_and_its_owner_is_told() {
    let smtp = Smtp::start();
    let app = app_with_mail(&smtp, &[]).await;
    account_with_address(&app, &smtp, "carol", "carol@example.com").await;
    let dave = app.register("dave").await;

    let before = smtp.received().len();
    let response = request_address(&app, &dave, "carol@EXAMPLE.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED, "the same answer");
    let mails = mails_to(&smtp, before + 1, "carol@example.com").await;
    let told = mails.last().expect("a mail to the address");
    assert_eq!(subject(told), "Your e-mail address is already in use");
    assert!(!decoded(told).contains("token="), "no link that confirms");
    assert_eq!(confirmed_address(&app, "dave").await, None);
    assert_eq!(
        confirmed_address(&app, "carol").await.as_deref(),
        Some("carol@example.com")
    );
}

#[tokio::test]
async fn a_link_for_another_account_or_purpose_or_past_its_time_changes_nothing() {
    let smtp = Smtp::start();
    let app = app_with_mail(&smtp, &[]).await;
    let erin = app.register("erin").await;
    let frank = app.register("frank").await;
    assert_eq!(
        request_address(&app, &erin, "erin@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let mail = smtp.wait_for(1, MAIL_WAIT).await.remove(0);
    let token = token_in(&mail, "/verify-email");

    // Erin's link, opened while Frank is signed in.
    let response = app
        .post("/api/email/verify", &[("token", &token)], Some(&frank))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(confirmed_address(&app, "frank").await, None);
    assert_eq!(confirmed_address(&app, "erin").await, None);
    // A confirmation link is no reset link.
    let response = app
        .post(
            "/api/password/reset",
            &[("token", &token), ("new_password", NEW_PASSWORD)],
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        app.login_attempt("erin", PASSWORD).await.status(),
        StatusCode::OK
    );

    // Past its time.
    signoff::on_db!(&app.db, |pool| {
        sqlx::query("UPDATE mail_tokens SET expires_ms = 1")
            .execute(pool)
            .await
            .expect("age the link")
            .rows_affected()
    });
    let response = app
        .post("/api/email/verify", &[("token", &token)], Some(&erin))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(confirmed_address(&app, "erin").await, None);
    // Unknown tokens, well formed or not, get the same page.
    for token in ["A".repeat(43), "nope".to_owned(), "%00".to_owned()] {
        let page = app.get(&format!("/reset?token={token}"), None).await;
        assert_eq!(page.status(), StatusCode::BAD_REQUEST, "{token}");
        assert!(page
            .text()
            .await
            .expect("html")
            .contains("This link does not work"));
    }
}

#[tokio::test]
async fn forgot_answers_the_same_for_every_name_and_mails_only_a_confirmed_address() {
    let smtp = Smtp::start();
    let app = app_with_mail(&smtp, &[]).await;
    account_with_address(&app, &smtp, "gina", "gina@example.com").await;
    app.register("hank").await; // no address
    let before = smtp.received().len();

    let mut answers = Vec::new();
    for account in [
        "gina",
        "gina@EXAMPLE.com",
        "hank",
        "nobody",
        "nobody@example.com",
    ] {
        let started = Instant::now();
        let response = forgot(&app, account).await;
        let took = started.elapsed();
        let status = response.status();
        let body = response.text().await.expect("body");
        answers.push((status, body, took));
    }
    for (status, body, _) in &answers {
        assert_eq!(*status, StatusCode::ACCEPTED);
        assert_eq!(*body, answers[0].1, "one answer for every name");
    }
    // The lookup runs after the answer: no name takes longer to answer than another by more
    // than the noise of a database write (the reservation every request makes).
    let times: Vec<u128> = answers
        .iter()
        .map(|(_, _, took)| took.as_millis())
        .collect();
    eprintln!("forgot answer times (ms): {times:?}");

    // Two reset mails to Gina (by name, by address), none for the others.
    let mails = smtp.wait_for(before + 2, MAIL_WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let resets: Vec<Received> = smtp
        .received()
        .into_iter()
        .skip(before)
        .filter(|mail| subject(mail) == "Reset your password")
        .collect();
    assert_eq!(resets.len(), 2, "{mails:?}");
    assert!(resets
        .iter()
        .all(|mail| mail.rcpt_tos == ["gina@example.com"]));
    assert_eq!(smtp.received().len(), before + 2);
}

#[tokio::test]
async fn a_reset_ends_every_session_tells_their_pages_and_signs_in_anew() {
    let smtp = Smtp::start();
    let app = app_with_mail(&smtp, &[]).await;
    let laptop = account_with_address(&app, &smtp, "ivy", "ivy@example.com").await;
    let phone = app.login("ivy").await;
    let mut laptop_page = app.open_events(&laptop).await;
    let mut phone_page = app.open_events(&phone).await;

    let older = reset_token(&app, &smtp, "ivy", "ivy@example.com").await;
    let token = reset_token(&app, &smtp, "ivy@example.com", "ivy@example.com").await;
    assert_ne!(older, token);

    // The page shows the form and uses nothing; a password that breaks the rules uses nothing.
    let page = app.get(&format!("/reset?token={token}"), None).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(html.contains("autocomplete=\"new-password\"") && html.contains("ivy"));
    let response = app
        .post(
            "/api/password/reset",
            &[("token", &token), ("new_password", "short")],
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.me(Some(&laptop)).await.as_deref(), Some("ivy"));

    let started = Instant::now();
    let response = app
        .post(
            "/api/password/reset",
            &[("token", &token), ("new_password", NEW_PASSWORD)],
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let new_session = session_cookie(&response).expect("signed in with a new session");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["username"], "ivy");
    for page in [&mut laptop_page, &mut phone_page] {
        let ended = page.ended(Duration::from_secs(5)).await;
        assert_eq!(ended["reason"], "password_reset", "{ended}");
    }
    eprintln!(
        "reset to both pages told: {} ms",
        started.elapsed().as_millis()
    );
    // The rows are gone from the server, not only outdated by the new stamp (read before any
    // request with those cookies could clean them up).
    assert_eq!(app.session_rows(&laptop).await, 0);
    assert_eq!(app.session_rows(&phone).await, 0);
    assert_eq!(app.me(Some(&laptop)).await, None);
    assert_eq!(app.me(Some(&phone)).await, None);
    assert_eq!(app.me(Some(&new_session)).await.as_deref(), Some("ivy"));
    assert_ne!(new_session, laptop);
    assert_ne!(new_session, phone);

    assert_eq!(
        app.login_attempt("ivy", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED,
        "the old password no longer works"
    );
    assert_eq!(
        app.login_attempt("ivy", NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
    // Once; and the other link still in the mailbox is void.
    for used in [&token, &older] {
        let response = app
            .post(
                "/api/password/reset",
                &[
                    ("token", used),
                    ("new_password", "yet another passphrase here"),
                ],
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
    assert_eq!(
        app.login_attempt("ivy", NEW_PASSWORD).await.status(),
        StatusCode::OK
    );

    // The notice, and the activity.
    let notices = mails_to(&smtp, smtp.received().len() + 1, "ivy@example.com").await;
    let notice = notices
        .iter()
        .find(|mail| subject(mail) == "Your password was reset")
        .expect("a notice");
    let text = decoded(notice);
    assert!(text.contains("127.0.0.1") && text.contains("UTC") && text.contains("/forgot"));
    let activity = app.get_json("/api/activity", Some(&new_session)).await;
    assert!(
        activity
            .as_array()
            .expect("list")
            .iter()
            .any(|entry| entry["event"] == "password_reset"),
        "{activity}"
    );
}

/// A browser without JavaScript: the forms are plain forms, answered with pages and redirects.
#[tokio::test]
async fn the_whole_reset_works_as_plain_forms() {
    let smtp = Smtp::start();
    let app = app_with_mail(&smtp, &[]).await;
    account_with_address(&app, &smtp, "jack", "jack@example.com").await;

    let page = app.get("/forgot", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page
        .text()
        .await
        .expect("html")
        .contains("action=\"/api/password/forgot\""));
    let before = smtp.received().len();
    let response = app
        .submit_form("/api/password/forgot", &[("account", "jack")], "")
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        header_value(&response, "location").as_deref(),
        Some("/forgot?sent")
    );
    let mails = mails_to(&smtp, before + 1, "jack@example.com").await;
    let token = token_in(mails.last().expect("mail"), "/reset");

    // A rule broken: the form again, with the error, and the link still works.
    let response = app
        .submit_form(
            "/api/password/reset",
            &[("token", &token), ("new_password", "password")],
            "",
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = response.text().await.expect("html");
    assert!(
        html.contains("role=\"alert\"") && html.contains(&token),
        "{html}"
    );

    let response = app
        .submit_form(
            "/api/password/reset",
            &[("token", &token), ("new_password", NEW_PASSWORD)],
            "",
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(header_value(&response, "location").as_deref(), Some("/"));
    let session = session_cookie(&response).expect("a session");
    assert_eq!(app.me(Some(&session)).await.as_deref(), Some("jack"));

    // Used: the one error page.
    let response = app
        .submit_form(
            "/api/password/reset",
            &[("token", &token), ("new_password", NEW_PASSWORD)],
            "",
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response
        .text()
        .await
        .expect("html")
        .contains("This link does not work"));
}

#[tokio::test]
async fn a_flood_of_reset_requests_issues_at_most_the_limit_of_links() {
    let smtp = Smtp::start();
    // Every request from one address is let through the address's bucket, so only the
    // account's limit (MAIL_LINKS_PER_WINDOW, 3) stands between the flood and the mailbox.
    let app = app_with_mail(&smtp, &[("LOGIN_MAX_FAILURES", "100000"), ONE_CLIENT_LOAD]).await;
    account_with_address(&app, &smtp, "kim", "kim@example.com").await;
    let before = smtp.received().len();

    let client = Client::new();
    let requests = (0..300).map(|_| {
        client
            .post(app.url("/api/password/forgot"))
            .header(header::ACCEPT, "application/json")
            .form(&[("account", "kim")])
            .send()
    });
    let answers = join_all(requests).await;
    let mut accepted = 0;
    for answer in answers {
        let status = answer.expect("an answer").status();
        assert!(
            status == StatusCode::ACCEPTED || status == StatusCode::SERVICE_UNAVAILABLE,
            "{status}"
        );
        accepted += usize::from(status == StatusCode::ACCEPTED);
    }
    // Wait for the lookups to finish: the count of links stops moving.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let links = count(
        &app,
        "SELECT COUNT(*) FROM mail_tokens WHERE purpose = 'reset'",
    )
    .await;
    eprintln!("flood: {accepted} of 300 accepted, {links} reset links issued");
    assert!(accepted >= 64, "{accepted}");
    assert_eq!(links, 3, "the account's limit, not the flood's size");
    smtp.wait_for(before + 3, MAIL_WAIT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(smtp.received().len(), before + 3);
}

#[tokio::test]
async fn a_reset_asked_while_the_mail_server_is_down_arrives_once_it_is_back() {
    let port = {
        let mut probe = Smtp::start();
        let port = probe.port;
        probe.stop();
        port
    };
    let test_db = TestDb::new().await;
    let url = format!("smtp://127.0.0.1:{port}");
    let vars = [
        ("SMTP_URL", url.as_str()),
        ("MAIL_FROM", "Signoff Test <no-reply@signoff.test>"),
        ("MAIL_RETRY_MAX_DELAY", "1"),
    ];
    // Two instances on one database (PostgreSQL in the PostgreSQL run; on SQLite, the same file).
    let first = spawn_app_on(&test_db, &vars).await;
    let second = spawn_app_on(&test_db, &vars).await;
    let cookie = first.register("lena").await;
    signoff::on_db!(&first.db, |pool| {
        sqlx::query("UPDATE users SET email = 'lena@example.com' WHERE username = 'lena'")
            .execute(pool)
            .await
            .expect("an address")
            .rows_affected()
    });
    drop(cookie);
    assert_eq!(forgot(&second, "lena").await.status(), StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        count(
            &first,
            "SELECT COUNT(*) FROM mail_outbox WHERE sent_ms IS NULL"
        )
        .await,
        1,
        "waiting in the outbox"
    );

    let smtp = Smtp::start_with(port, false);
    let mails = smtp.wait_for(1, MAIL_WAIT).await;
    assert_eq!(mails.len(), 1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(smtp.received().len(), 1, "exactly once, with two senders");
    let token = token_in(&smtp.received()[0], "/reset");
    let response = first
        .post(
            "/api/password/reset",
            &[("token", &token), ("new_password", NEW_PASSWORD)],
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "the link works");
}

#[tokio::test]
async fn notices_go_out_for_a_password_change_and_a_new_browser_only() {
    let smtp = Smtp::start();
    let app = app_with_mail(&smtp, &[]).await;
    let cookie = account_with_address(&app, &smtp, "max", "max@example.com").await;
    // A sign-in from here again (this network is known): no notice.
    let before = smtp.received().len();
    app.login("max").await;
    // From a browser and network the account has not seen: a notice.
    let stranger = Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7)))
        .build()
        .expect("client");
    let response = stranger
        .post(app.url("/api/login"))
        .header(header::ACCEPT, "application/json")
        .header(
            header::USER_AGENT,
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
        )
        .form(&[("username", "max"), ("password", PASSWORD)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(response.status(), StatusCode::OK);
    let mails = mails_to(&smtp, before + 1, "max@example.com").await;
    let notice = mails.last().expect("a notice");
    assert_eq!(subject(notice), "New sign-in to your account");
    let text = decoded(notice);
    assert!(
        text.contains("127.0.0.7") && text.contains("Firefox"),
        "{text}"
    );

    assert_eq!(
        app.change_password(&cookie, NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
    let mails = mails_to(&smtp, before + 2, "max@example.com").await;
    assert_eq!(
        subject(mails.last().expect("a notice")),
        "Your password was changed"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.received().len(), before + 2, "nothing else");
}

#[tokio::test]
async fn a_changed_address_is_told_to_the_old_one() {
    let smtp = Smtp::start();
    let app = app_with_mail(&smtp, &[]).await;
    let cookie = account_with_address(&app, &smtp, "nora", "nora@old.example").await;
    let before = smtp.received().len();
    assert_eq!(
        request_address(&app, &cookie, "nora@new.example", PASSWORD)
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let mail = mails_to(&smtp, before + 1, "nora@new.example")
        .await
        .remove(0);
    let token = token_in(&mail, "/verify-email");
    assert_eq!(
        app.post("/api/email/verify", &[("token", &token)], Some(&cookie))
            .await
            .status(),
        StatusCode::OK
    );
    let told = mails_to(&smtp, before + 2, "nora@old.example").await;
    let told = told.last().expect("a notice to the old address");
    assert_eq!(subject(told), "Your e-mail address was changed");
    assert!(decoded(told).contains("new.example"));
    assert_eq!(
        confirmed_address(&app, "nora").await.as_deref(),
        Some("nora@new.example")
    );
}
