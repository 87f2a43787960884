//! Passkeys (crates/signoff/src/passkeys.rs) against the real server, with a software
//! authenticator that produces real WebAuthn data (`authenticator.rs`): adding, signing in by a
//! discoverable credential, the sessions list, renaming, removing (which ends the sessions
//! signed in with it), accounts with a passkey only and their last way in, the fresh proof, and
//! hostile input with many requests in flight. On SQLite and on PostgreSQL.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{authenticator::SoftPasskey, helpers::*};

/// The origin the pages are at: WebAuthn refuses IP addresses, so a server on loopback is the
/// relying party `localhost` on its port.
fn origin(app: &TestApp) -> String {
    format!("http://localhost:{}", app.addr.port())
}

/// Starts a ceremony: its options, and the session cookie it is kept in (the given one, or the
/// new anonymous session the call made).
async fn start(app: &TestApp, path: &str, body: Value, cookie: Option<&str>) -> (Value, String) {
    let response = app.post_json(path, &body, cookie).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let new_cookie = session_cookie(&response);
    let options: Value = response.json().await.expect("options JSON");
    // A new cookie when the call made a session (the given one had ended, or there was none).
    let cookie = new_cookie
        .or(cookie.map(str::to_owned))
        .expect("a session holds the ceremony");
    (options, cookie)
}

/// Adds a passkey to the account signed in on `cookie`.
pub(crate) async fn add_passkey(app: &TestApp, cookie: &str, name: &str) -> (SoftPasskey, Value) {
    let (options, _) = start(app, "/api/passkeys/add/start", json!({}), Some(cookie)).await;
    assert_eq!(
        options["publicKey"]["authenticatorSelection"]["residentKey"], "required",
        "a discoverable credential is asked for: {options}"
    );
    let (passkey, credential) = SoftPasskey::create(&options, &origin(app));
    assert_eq!(passkey.rp_id, "localhost");
    let response = app
        .post_json(
            "/api/passkeys/add/finish",
            &json!({ "name": name, "credential": credential }),
            Some(cookie),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "add/finish");
    let info: Value = response.json().await.expect("json");
    (passkey, info)
}

/// Signs in with `passkey` from a new browser: the response of the finish, and the cookie.
pub(crate) async fn sign_in(
    app: &TestApp,
    passkey: &mut SoftPasskey,
) -> (reqwest::Response, String) {
    let (options, cookie) = start(app, "/api/passkeys/signin/start", json!({}), None).await;
    assert!(
        options["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "a discoverable sign-in names no credential: {options}"
    );
    let assertion = passkey.get(&options);
    let response = app
        .post_json(
            "/api/passkeys/signin/finish",
            &json!({ "credential": assertion }),
            Some(&cookie),
        )
        .await;
    (response, cookie)
}

/// An account with no password and one passkey, signed in: its cookie and passkey.
async fn passkey_only_account(app: &TestApp, name: &str) -> (String, SoftPasskey) {
    let (options, cookie) = start(
        app,
        "/api/passkeys/create/start",
        json!({ "username": name }),
        None,
    )
    .await;
    let (passkey, credential) = SoftPasskey::create(&options, &origin(app));
    let response = app
        .post_json(
            "/api/passkeys/create/finish",
            &json!({ "name": "Laptop", "credential": credential }),
            Some(&cookie),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "create/finish");
    let signed_in = session_cookie(&response).expect("a new session id");
    assert_ne!(signed_in, cookie, "a sign-in gets a new session id");
    let me = app.get_json("/api/me", Some(&signed_in)).await;
    assert_eq!(me["username"], name);
    assert_eq!(me["no_password"], true);
    (signed_in, passkey)
}

async fn sessions_of(app: &TestApp, user: &str) -> i64 {
    signoff::on_db!(&app.db, |pool| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM tower_sessions s JOIN users u ON u.id = s.user_id \
             WHERE u.username = $1",
        )
        .bind(user)
        .fetch_one(pool)
        .await
        .expect("count")
    })
}

#[tokio::test]
async fn a_passkey_is_added_used_to_sign_in_listed_renamed_and_removed_ending_its_sessions() {
    let app = spawn_app().await;
    let owner = app.register("paula").await;
    let (mut passkey, info) = add_passkey(&app, &owner, "  Phone  ").await;
    assert_eq!(info["name"], "Phone");
    assert_eq!(info["kind"], "This device only");
    assert!(info["last_used_at"].is_null());

    // Sign in with it from another browser: no name typed.
    let (response, anonymous) = sign_in(&app, &mut passkey).await;
    assert_eq!(response.status(), StatusCode::OK);
    let on_passkey = session_cookie(&response).expect("signed in");
    assert_ne!(on_passkey, anonymous, "a new session id");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["username"], "paula");
    assert_eq!(app.me(Some(&on_passkey)).await.as_deref(), Some("paula"));

    // The sessions list says how it signed in; recent activity too.
    let sessions = app.get_json("/api/sessions", Some(&owner)).await;
    let names: Vec<&Value> = sessions
        .as_array()
        .expect("list")
        .iter()
        .map(|s| &s["passkey"])
        .collect();
    assert!(names.contains(&&json!("Phone")), "{sessions}");
    assert!(names.contains(&&Value::Null), "{sessions}");
    let activity = app.get_json("/api/activity", Some(&owner)).await;
    assert!(
        activity
            .as_array()
            .expect("list")
            .iter()
            .any(|e| e["event"] == "login_succeeded" && e["detail"] == "a passkey"),
        "{activity}"
    );
    let listed = app.get_json("/api/passkeys", Some(&owner)).await;
    assert!(listed[0]["last_used_at"].is_string(), "{listed}");

    // Rename: the name only, and only one's own.
    let id = info["id"].as_i64().expect("id");
    let response = app
        .post_json(
            "/api/passkeys/rename",
            &json!({ "id": id, "name": "Work phone" }),
            Some(&owner),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let stranger = app.register("mallory").await;
    let response = app
        .post_json(
            "/api/passkeys/rename",
            &json!({ "id": id, "name": "mine" }),
            Some(&stranger),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = app
        .post_json(
            "/api/passkeys/remove",
            &json!({ "id": id }),
            Some(&stranger),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // Remove it from the password session: the passkey's session ends, its page hears why.
    let mut page = app.open_events(&on_passkey).await;
    let sent = std::time::Instant::now();
    let response = app
        .post_json("/api/passkeys/remove", &json!({ "id": id }), Some(&owner))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let removed: Value = response.json().await.expect("json");
    assert_eq!(removed["sessions_ended"], 1);
    let ended = page.ended(Duration::from_secs(5)).await;
    println!("passkey removed → its page told: {:?}", sent.elapsed());
    assert_eq!(ended["reason"], "passkey_removed");
    assert_eq!(ended["provider"], "Work phone");
    assert_eq!(app.session_rows(&on_passkey).await, 0);
    assert_eq!(app.me(Some(&on_passkey)).await, None);
    assert_eq!(app.me(Some(&owner)).await.as_deref(), Some("paula"));

    // And it no longer signs anyone in.
    let (response, _) = sign_in(&app, &mut passkey).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (code, _) = error_body(response).await;
    assert_eq!(code, "invalid_credentials");
}

#[tokio::test]
async fn fifty_copies_of_one_assertion_at_once_make_exactly_one_session() {
    let app = spawn_app_with(&[ONE_CLIENT_LOAD]).await;
    let (owner, mut passkey) = passkey_only_account(&app, "quinn").await;
    let before = sessions_of(&app, "quinn").await;
    assert_eq!(before, 1);
    let _ = owner;

    let (options, cookie) = start(&app, "/api/passkeys/signin/start", json!({}), None).await;
    let assertion = json!({ "credential": passkey.get(&options) });
    let answers = join_all(
        (0..50).map(|_| app.post_json("/api/passkeys/signin/finish", &assertion, Some(&cookie))),
    )
    .await;
    let statuses: Vec<StatusCode> = answers.iter().map(|r| r.status()).collect();
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses.iter().filter(|s| s.is_client_error()).count();
    println!("50 copies of one assertion: {ok} signed in, {refused} refused (4xx)");
    assert_eq!(ok, 1, "{statuses:?}");
    assert_eq!(refused, 49, "{statuses:?}");
    assert_eq!(sessions_of(&app, "quinn").await, before + 1);

    // The same assertion later, in a new ceremony of the same browser: its challenge is not
    // the new one.
    let (_, cookie) = start(&app, "/api/passkeys/signin/start", json!({}), Some(&cookie)).await;
    let response = app
        .post_json("/api/passkeys/signin/finish", &assertion, Some(&cookie))
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sessions_of(&app, "quinn").await, before + 1);
}

#[tokio::test]
async fn hostile_passkey_input_gets_a_4xx_and_no_session() {
    let app = spawn_app_with(&[ONE_CLIENT_LOAD]).await;
    let (_, mut passkey) = passkey_only_account(&app, "rosa").await;
    let (_, mut other) = passkey_only_account(&app, "sven").await;
    let sessions = || async { sessions_of(&app, "rosa").await + sessions_of(&app, "sven").await };
    let before = sessions().await;

    let app = &app;
    let refused = |response: reqwest::Response, what: &'static str| async move {
        let status = response.status();
        assert!(status.is_client_error(), "{what}: {status}");
        // The anonymous session that held the ceremony may be written back; it is not signed in.
        if let Some(cookie) = session_cookie(&response) {
            assert_eq!(app.me(Some(&cookie)).await, None, "{what}: no session");
        }
        let (code, message) = error_body(response).await;
        println!("{what}: {status} {code}: {message}");
    };

    // A finish with no ceremony.
    let (options, cookie) = start(app, "/api/passkeys/signin/start", json!({}), None).await;
    let good = passkey.get(&options);
    refused(
        app.post_json(
            "/api/passkeys/signin/finish",
            &json!({ "credential": good }),
            None,
        )
        .await,
        "no ceremony",
    )
    .await;

    // Malformed and truncated bodies, each in a ceremony of its own.
    let mut truncated = good.to_string();
    truncated.truncate(truncated.len() / 2);
    let mut short_signature = good.clone();
    short_signature["response"]["signature"] = json!("AAAA");
    let mut not_base64 = good.clone();
    not_base64["response"]["authenticatorData"] = json!("%%%");
    let mut short_auth_data = good.clone();
    short_auth_data["response"]["authenticatorData"] = json!("AAAA");
    let mut bad_client_data = good.clone();
    bad_client_data["response"]["clientDataJSON"] = json!("bm90IGpzb24");
    let mut bad_handle = good.clone();
    bad_handle["response"]["userHandle"] = json!("AAAA");
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON", b"{\"credential\":".to_vec()),
        ("truncated JSON", truncated.into_bytes()),
        ("no credential", b"{}".to_vec()),
        ("wrong types", b"{\"credential\":{\"id\":5}}".to_vec()),
        (
            "short signature",
            json!({ "credential": short_signature })
                .to_string()
                .into_bytes(),
        ),
        (
            "not base64",
            json!({ "credential": not_base64 }).to_string().into_bytes(),
        ),
        (
            "short authenticator data",
            json!({ "credential": short_auth_data })
                .to_string()
                .into_bytes(),
        ),
        (
            "client data not JSON",
            json!({ "credential": bad_client_data })
                .to_string()
                .into_bytes(),
        ),
        (
            "user handle not a UUID",
            json!({ "credential": bad_handle }).to_string().into_bytes(),
        ),
    ];
    for (what, body) in bodies {
        let (_, cookie) = start(app, "/api/passkeys/signin/start", json!({}), None).await;
        refused(
            app.post_raw("/api/passkeys/signin/finish", body, Some(&cookie))
                .await,
            what,
        )
        .await;
    }

    // A challenge from another session: the assertion answers `cookie`'s ceremony.
    let (_, elsewhere) = start(app, "/api/passkeys/signin/start", json!({}), None).await;
    refused(
        app.post_json(
            "/api/passkeys/signin/finish",
            &json!({ "credential": good }),
            Some(&elsewhere),
        )
        .await,
        "another session's challenge",
    )
    .await;

    // A credential of one account presented with another account's user handle.
    let (options, mixed_cookie) = start(app, "/api/passkeys/signin/start", json!({}), None).await;
    let mut mixed = passkey.get(&options);
    mixed["response"]["userHandle"] = json!(base64_url(&other.user_handle));
    refused(
        app.post_json(
            "/api/passkeys/signin/finish",
            &json!({ "credential": mixed }),
            Some(&mixed_cookie),
        )
        .await,
        "a credential of another account",
    )
    .await;

    // A signature by another account's key over this credential's id.
    let (options, forged_cookie) = start(app, "/api/passkeys/signin/start", json!({}), None).await;
    let mut forged = other.get(&options);
    forged["id"] = json!(base64_url(&passkey.credential_id));
    forged["rawId"] = forged["id"].clone();
    forged["response"]["userHandle"] = json!(base64_url(&passkey.user_handle));
    refused(
        app.post_json(
            "/api/passkeys/signin/finish",
            &json!({ "credential": forged }),
            Some(&forged_cookie),
        )
        .await,
        "signed by another key",
    )
    .await;

    // The good one still works once, then a counter that goes backwards is refused.
    let response = app
        .post_json(
            "/api/passkeys/signin/finish",
            &json!({ "credential": good }),
            Some(&cookie),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "the genuine assertion");
    // A clone of the authenticator, behind the original: it presents counter 1, which the
    // genuine assertion (the first of this credential to be verified) used already.
    passkey.counter = 0;
    let (response, _) = sign_in(app, &mut passkey).await;
    assert_eq!(passkey.counter, 1);
    refused(response, "a counter that did not go up").await;

    // An oversized body: 413 before anything is parsed.
    let (_, cookie) = start(app, "/api/passkeys/signin/start", json!({}), None).await;
    let huge = json!({ "credential": { "id": "A".repeat(40_000) } });
    let response = app
        .post_json("/api/passkeys/signin/finish", &huge, Some(&cookie))
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Registration: hostile names and credentials.
    let owner = app.register("tilda").await;
    let (options, _) = start(app, "/api/passkeys/add/start", json!({}), Some(&owner)).await;
    let (_, credential) = SoftPasskey::create(&options, "http://evil.example");
    let client_error = |response: reqwest::Response, what: &'static str| async move {
        let status = response.status();
        assert!(status.is_client_error(), "{what}: {status}");
        let (code, message) = error_body(response).await;
        println!("{what}: {status} {code}: {message}");
    };
    client_error(
        app.post_json(
            "/api/passkeys/add/finish",
            &json!({ "name": "x", "credential": credential }),
            Some(&owner),
        )
        .await,
        "a registration from another origin",
    )
    .await;
    let (options, _) = start(app, "/api/passkeys/add/start", json!({}), Some(&owner)).await;
    let (_, credential) = SoftPasskey::create(&options, &origin(app));
    for (what, name) in [
        ("a name too long", "n".repeat(65)),
        ("a control character", "a\u{7}b".into()),
    ] {
        client_error(
            app.post_json(
                "/api/passkeys/add/finish",
                &json!({ "name": name, "credential": credential }),
                Some(&owner),
            )
            .await,
            what,
        )
        .await;
    }

    assert_eq!(app.get_json("/api/passkeys", Some(&owner)).await, json!([]));
    assert_eq!(sessions().await, before + 1, "one session: the genuine one");
}

#[tokio::test]
async fn the_last_way_in_stays_even_under_concurrent_removals() {
    let app = spawn_app_with(&[ONE_CLIENT_LOAD]).await;
    let (cookie, _) = passkey_only_account(&app, "uma").await;
    let listed = app.get_json("/api/passkeys", Some(&cookie)).await;
    let only = listed[0]["id"].as_i64().expect("id");
    let response = app
        .post_json(
            "/api/passkeys/remove",
            &json!({ "id": only }),
            Some(&cookie),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (_, message) = error_body(response).await;
    assert!(message.contains("only way in"), "{message}");

    // Five more passkeys, then all six removed at once, twenty times each: one must stay.
    for n in 0..5 {
        add_passkey(&app, &cookie, &format!("key {n}")).await;
    }
    let ids: Vec<i64> = app
        .get_json("/api/passkeys", Some(&cookie))
        .await
        .as_array()
        .expect("list")
        .iter()
        .map(|p| p["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids.len(), 6);
    let bodies: Vec<Value> = ids
        .iter()
        .cycle()
        .take(120)
        .map(|id| json!({ "id": id }))
        .collect();
    let answers = join_all(
        bodies
            .iter()
            .map(|body| app.post_json("/api/passkeys/remove", body, Some(&cookie))),
    )
    .await;
    let statuses: Vec<StatusCode> = answers.iter().map(|r| r.status()).collect();
    assert!(
        statuses
            .iter()
            .all(|s| s.is_success() || s.is_client_error()),
        "{statuses:?}"
    );
    let left = app.get_json("/api/passkeys", Some(&cookie)).await;
    println!(
        "120 removals of 6 passkeys at once: {} done, 1 left: {}",
        statuses.iter().filter(|s| s.is_success()).count(),
        left.as_array().map_or(0, Vec::len)
    );
    assert_eq!(left.as_array().map(Vec::len), Some(1), "{left}");
}

#[tokio::test]
async fn adding_or_removing_a_passkey_needs_a_fresh_proof_and_a_passkey_gives_one() {
    let app = spawn_app_with(&[("STEP_UP_MAX_AGE", "2")]).await;
    let (cookie, mut passkey) = passkey_only_account(&app, "vera").await;
    for _ in 0..7 {
        assert!(app.me(Some(&cookie)).await.is_some());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let response = app
        .post_json("/api/passkeys/add/start", &json!({}), Some(&cookie))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (code, _) = error_body(response).await;
    assert_eq!(code, "reauthentication_required");
    let response = app
        .post_json("/api/passkeys/remove", &json!({ "id": 1 }), Some(&cookie))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // Confirm with the passkey: a wrong answer changes nothing, the right one opens the window.
    let (options, _) = start(
        &app,
        "/api/passkeys/confirm/start",
        json!({}),
        Some(&cookie),
    )
    .await;
    let mut wrong = passkey.get(&options);
    wrong["response"]["signature"] = json!("MEUCIQ");
    let response = app
        .post_json(
            "/api/passkeys/confirm/finish",
            &json!({ "credential": wrong }),
            Some(&cookie),
        )
        .await;
    assert!(response.status().is_client_error());
    let response = app
        .post_json("/api/passkeys/add/start", &json!({}), Some(&cookie))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let (options, _) = start(
        &app,
        "/api/passkeys/confirm/start",
        json!({}),
        Some(&cookie),
    )
    .await;
    let assertion = passkey.get(&options);
    let response = app
        .post_json(
            "/api/passkeys/confirm/finish",
            &json!({ "credential": assertion }),
            Some(&cookie),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    add_passkey(&app, &cookie, "Second").await;

    // Another person's session cannot finish this account's confirmation.
    let stranger = app.register("walt").await;
    let (options, _) = start(
        &app,
        "/api/passkeys/confirm/start",
        json!({}),
        Some(&cookie),
    )
    .await;
    let assertion = passkey.get(&options);
    let response = app
        .post_json(
            "/api/passkeys/confirm/finish",
            &json!({ "credential": assertion }),
            Some(&stranger),
        )
        .await;
    assert!(response.status().is_client_error());
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn a_passkey_is_a_way_in_that_lets_a_provider_account_unlink_its_provider() {
    use crate::idp::{client_id, spawn_with, Browser, Idp, PROVIDER};
    // The larger steps on the heap: unoptimised, this test's future outgrows the test thread's
    // stack.
    let idp = Idp::start();
    let app = Box::pin(spawn_with(&idp, &TestDb::new().await, &[])).await;
    idp.register(&[&app], &client_id()).await;
    let browser = Browser::new();
    let cookie = Box::pin(browser.sign_in(&app, "xena")).await;
    let methods = app.get_json("/api/sign_in_methods", Some(&cookie)).await;
    assert_eq!(methods["has_password"], false, "{methods}");
    assert_eq!(methods["passkeys"], 0, "{methods}");

    // Its provider is its only way in: unlinking is refused.
    let response = app
        .post(
            "/api/unlink_provider",
            &[("provider", PROVIDER)],
            Some(&cookie),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // With a passkey, the provider can go, and the passkey is then the last way in.
    Box::pin(add_passkey(&app, &cookie, "Phone")).await;
    let methods = app.get_json("/api/sign_in_methods", Some(&cookie)).await;
    assert_eq!(methods["passkeys"], 1, "{methods}");
    let response = app
        .post(
            "/api/unlink_provider",
            &[("provider", PROVIDER)],
            Some(&cookie),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let id = app.get_json("/api/passkeys", Some(&cookie)).await[0]["id"].clone();
    let response = app
        .post_json("/api/passkeys/remove", &json!({ "id": id }), Some(&cookie))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (_, message) = error_body(response).await;
    assert!(message.contains("only way in"), "{message}");
}
