//! Single sign-on against a real OpenID Provider (`idp.rs`): the code flow, accounts and links,
//! back-channel logout with every token rule, replays under concurrency, and RP-initiated logout.
//! On SQLite and, in `make unit-postgres`, on PostgreSQL.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    helpers::{cache_control, spawn_app, TestDb, ONE_CLIENT_LOAD, PASSWORD},
    idp::{
        app_with_idp, backchannel, client_id, now_secs, provider_columns, sid_of, spawn_with,
        Browser, Idp, PROVIDER, PROVIDER_NAME,
    },
};

#[tokio::test]
async fn signing_in_with_a_provider_creates_an_account_on_a_new_session_id() {
    let (app, _idp) = app_with_idp().await;
    let browser = Browser::new();
    let action = browser.to_provider_login(&app, "start").await;
    // The pending sign-in lives in a pre-login session.
    let pre_login = browser.session(&app).expect("a pre-login session");
    let page = browser.provider_login(&action, "alice").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.url().path(), "/");
    let cookie = browser.session(&app).expect("a session");
    assert_ne!(cookie, pre_login, "a new session id at sign-in");
    assert_eq!(
        app.me(Some(&pre_login)).await,
        None,
        "the pre-login id is dead"
    );
    assert_eq!(app.me(Some(&cookie)).await.as_deref(), Some("alice"));
    let (provider, sid) = provider_columns(&app, &cookie).await;
    assert_eq!(provider.as_deref(), Some(PROVIDER));
    assert!(sid.is_some(), "the provider's sid is remembered");

    // The sessions list and the activity say where it came from.
    let sessions = app.get_json("/api/sessions", Some(&cookie)).await;
    assert_eq!(sessions[0]["provider"], PROVIDER_NAME);
    let activity = app.get_json("/api/activity", Some(&cookie)).await;
    let events: Vec<(&str, &str)> = activity
        .as_array()
        .expect("list")
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap_or(""),
                e["detail"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        events.contains(&("login_succeeded", PROVIDER_NAME)),
        "{events:?}"
    );
    assert!(
        events.contains(&("account_created", PROVIDER_NAME)),
        "{events:?}"
    );

    // The ID token stays on the server: nothing the browser can read carries it.
    let methods = app.get_json("/api/sign_in_methods", Some(&cookie)).await;
    assert_eq!(methods["session_provider"]["name"], PROVIDER_NAME);
    assert_eq!(methods["has_password"], false);
    assert!(!methods.to_string().contains("eyJ"), "{methods}");
}

#[tokio::test]
async fn the_same_subject_finds_the_same_account_and_names_stay_unique() {
    let (app, _idp) = app_with_idp().await;
    // A password account already holds the name "bob".
    app.register("bob").await;
    let first = Browser::new().sign_in(&app, "bob").await;
    let second = Browser::new().sign_in(&app, "bob").await;
    assert_eq!(app.me(Some(&first)).await.as_deref(), Some("bob-2"));
    assert_eq!(
        app.me(Some(&second)).await.as_deref(),
        Some("bob-2"),
        "found by subject"
    );
    // The provider-made account has no password: none signs in to it.
    let response = app.login_attempt("bob-2", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn state_is_single_use_and_bound_to_the_browser_that_started() {
    let (app, idp) = app_with_idp().await;
    let browser = Browser::new();
    let action = browser.to_provider_login(&app, "start").await;
    // Stop at the provider's answer: the callback URL with its code and state.
    let mut response = browser.post_form(&action, &[("username", "carol")]).await;
    let callback = loop {
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .expect("the provider redirects");
        let next = response.url().join(&location).expect("url");
        if next.path().ends_with("/callback") {
            break next.to_string();
        }
        response = browser.get(next.as_str()).await;
    };
    // Another browser cannot use it (login CSRF: the state is not in its session).
    let stranger = Browser::new();
    let landed = stranger.follow(stranger.get(&callback).await).await;
    assert_eq!(landed.url().path(), "/");
    assert_eq!(stranger.session(&app), None, "no session for the stranger");
    let html = landed.text().await.expect("html");
    assert!(
        html.contains("expired or was already used"),
        "the page says why"
    );

    // The right browser can, once.
    let landed = browser.follow(browser.get(&callback).await).await;
    assert_eq!(landed.url().path(), "/");
    let cookie = browser.session(&app).expect("signed in");
    assert_eq!(app.me(Some(&cookie)).await.as_deref(), Some("carol"));
    let again = browser.follow(browser.get(&callback).await).await;
    let html = again.text().await.expect("html");
    assert!(
        html.contains("expired or was already used"),
        "a state works once"
    );
    drop(idp);
}

#[tokio::test]
async fn a_logout_token_typed_jwt_or_untyped_is_accepted_as_older_providers_send_it() {
    let (app, idp) = app_with_idp().await;
    // Keycloak before 25 and Authentik before 2025.12 type it `JWT`; some send no `typ`.
    for (typ, name) in [(Some("JWT"), "gail"), (None, "hank")] {
        let cookie = Browser::new().sign_in(&app, name).await;
        let sid = sid_of(&app, &cookie).await;
        let claims = json!({"iss": idp.issuer, "aud": client_id(), "iat": now_secs(),
            "jti": format!("typed-{name}"), "sid": sid,
            "events": {crate::idp::BACKCHANNEL_EVENT: {}}});
        let response = backchannel(&app, &idp.sign(typ, &claims)).await;
        assert_eq!(response.status(), StatusCode::OK, "typ {typ:?}");
        assert_eq!(
            app.me(Some(&cookie)).await,
            None,
            "typ {typ:?}: session ended"
        );
    }
}

#[tokio::test]
async fn signing_out_at_the_provider_ends_the_session_and_tells_its_open_page() {
    let (app, idp) = app_with_idp().await;
    let browser = Browser::new();
    let cookie = browser.sign_in(&app, "dave").await;
    let mut stream = app.open_events(&cookie).await;

    let started = Instant::now();
    let page = browser.sign_out_at_provider(&idp).await;
    assert_eq!(
        page.status(),
        StatusCode::OK,
        "the provider's signed-out page"
    );
    let ended = stream.ended(Duration::from_secs(5)).await;
    let elapsed = started.elapsed();
    assert_eq!(ended["reason"], "provider_logout");
    assert_eq!(ended["provider"], PROVIDER_NAME);
    assert_eq!(
        app.me(Some(&cookie)).await,
        None,
        "the cookie is signed out"
    );
    assert_eq!(app.session_rows(&cookie).await, 0, "the row is deleted");
    println!("provider logout to session-ended event: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    let activity = app
        .get_json(
            "/api/activity",
            Some(&Browser::new().sign_in(&app, "dave").await),
        )
        .await;
    assert!(
        activity
            .as_array()
            .expect("list")
            .iter()
            .any(|e| e["event"] == "provider_logout" && e["detail"] == PROVIDER_NAME),
        "{activity}"
    );
}

#[tokio::test]
async fn hostile_logout_tokens_are_refused_and_end_nothing() {
    let (app, idp) = app_with_idp().await;
    let cookie = Browser::new().sign_in(&app, "erin").await;
    let sid = sid_of(&app, &cookie).await;
    let now = now_secs();
    let other_key = Idp::start();
    let mut cases: Vec<(&str, String)> = vec![
        (
            "another audience",
            idp.logout_token(Some(&sid), None, json!({"aud": "someone-else"})),
        ),
        (
            "another issuer",
            idp.logout_token(Some(&sid), None, json!({"iss": "http://127.0.0.1:1"})),
        ),
        (
            "expired",
            idp.logout_token(
                Some(&sid),
                None,
                json!({"exp": now - 100, "iat": now - 200}),
            ),
        ),
        (
            "issued long ago",
            idp.logout_token(Some(&sid), None, json!({"iat": now - 3600, "exp": null})),
        ),
        (
            "issued in the future",
            idp.logout_token(Some(&sid), None, json!({"iat": now + 3600})),
        ),
        (
            "with a nonce",
            idp.logout_token(Some(&sid), None, json!({"nonce": "n"})),
        ),
        (
            "without events",
            idp.logout_token(Some(&sid), None, json!({"events": null})),
        ),
        (
            "another event",
            idp.logout_token(Some(&sid), None, json!({"events": {"urn:other": {}}})),
        ),
        (
            "without jti",
            idp.logout_token(Some(&sid), None, json!({"jti": null})),
        ),
        (
            "neither sub nor sid",
            idp.logout_token(None, None, json!({})),
        ),
        ("typed as an access token", {
            let claims = json!({"iss": idp.issuer, "aud": client_id(), "iat": now, "jti": "t1",
                "sid": sid, "events": {crate::idp::BACKCHANNEL_EVENT: {}}});
            idp.sign(Some("at+jwt"), &claims)
        }),
        ("an ID token typed JWT", {
            let claims = json!({"iss": idp.issuer, "aud": client_id(), "iat": now,
                "exp": now + 300, "jti": "t5", "sid": sid, "sub": "erin", "nonce": "n1"});
            idp.sign(Some("JWT"), &claims)
        }),
        ("a bad signature", {
            // Signed by another key under the provider's key id.
            let token = idp.logout_token(Some(&sid), None, json!({}));
            let forged = other_key.logout_token(Some(&sid), None, json!({}));
            let (head, _) = token.rsplit_once('.').expect("jws");
            let (_, signature) = forged.rsplit_once('.').expect("jws");
            format!("{head}.{signature}")
        }),
        ("signed by a key the provider does not publish", {
            let claims = json!({"iss": idp.issuer, "aud": client_id(), "iat": now, "jti": "t2",
                "sid": sid, "events": {crate::idp::BACKCHANNEL_EVENT: {}}});
            other_key.sign(Some("logout+jwt"), &claims)
        }),
        ("unsigned", {
            use base64::Engine;
            let b64 =
                |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
            format!(
                "{}.{}.",
                b64(json!({"alg": "none", "typ": "logout+jwt"})),
                b64(
                    json!({"iss": idp.issuer, "aud": client_id(), "iat": now, "jti": "t3",
                    "sid": sid, "events": {crate::idp::BACKCHANNEL_EVENT: {}}})
                )
            )
        }),
        ("garbage", "not.a.token".to_owned()),
        ("empty", String::new()),
    ];
    // HMAC with the client secret: algorithm confusion must not work.
    cases.push(("HMAC with the client secret", {
        let claims = json!({"iss": idp.issuer, "aud": client_id(), "iat": now, "jti": "t4",
            "sid": sid, "events": {crate::idp::BACKCHANNEL_EVENT: {}}});
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some("logout+jwt".into());
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"test-client-secret-123").expect("key"),
        )
        .expect("sign")
    }));
    for (case, token) in &cases {
        let response = backchannel(&app, token).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        assert_eq!(
            cache_control(&response).as_deref(),
            Some("no-store"),
            "{case}"
        );
        let body: Value = response.json().await.expect("an error body");
        assert_eq!(body["error"], "invalid_request", "{case}: {body}");
        assert!(body["error_description"].is_string(), "{case}: {body}");
        // Each refused for its own reason, not by some earlier rule.
        let expected = match *case {
            "another audience" => "not addressed to this client",
            "another issuer" => "issuer",
            "expired" => "expired",
            "issued long ago" | "issued in the future" => "issued",
            "with a nonce" => "nonce",
            "without events" | "another event" => "events",
            "without jti" => "jti",
            "neither sub nor sid" => "`sub` or a `sid`",
            "typed as an access token" => "typ",
            "an ID token typed JWT" => "nonce",
            "a bad signature" => "signature does not verify",
            "signed by a key the provider does not publish" => "does not publish",
            "HMAC with the client secret" => "HS256",
            _ => "well-formed",
        };
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(description.contains(expected), "{case}: {description}");
        assert_eq!(
            app.me(Some(&cookie)).await.as_deref(),
            Some("erin"),
            "{case} ended nothing"
        );
    }
    // Not a form at all.
    let response = reqwest::Client::new()
        .post(app.url(&format!("/api/oidc/{PROVIDER}/backchannel-logout")))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // A proper one works, once.
    let token = idp.logout_token(Some(&sid), None, json!({}));
    assert_eq!(backchannel(&app, &token).await.status(), StatusCode::OK);
    assert_eq!(app.me(Some(&cookie)).await, None);
    let replay = backchannel(&app, &token).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST, "a replayed jti");
    let body: Value = replay.json().await.expect("body");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or("")
            .contains("already used"),
        "{body}"
    );
}

#[tokio::test]
async fn a_logout_token_replayed_by_hundreds_at_once_on_two_instances_works_once() {
    // Hundreds in flight from this one address: lift its connection share on both.
    let idp = Idp::start();
    let a = spawn_with(&idp, &TestDb::new().await, &[ONE_CLIENT_LOAD]).await;
    let b = spawn_with(&idp, &a.test_db, &[ONE_CLIENT_LOAD]).await;
    idp.register(&[&a, &b], &client_id()).await;
    let cookie = Browser::new().sign_in(&a, "frank").await;
    let sid = sid_of(&a, &cookie).await;
    let token = idp.logout_token(Some(&sid), None, json!({}));
    let client = reqwest::Client::new();
    let requests = (0..200).map(|i| {
        let url = if i % 2 == 0 { &a } else { &b }
            .url(&format!("/api/oidc/{PROVIDER}/backchannel-logout"));
        let request = client.post(url).form(&[("logout_token", token.as_str())]);
        async move { request.send().await.map(|r| r.status()) }
    });
    let statuses = futures_util::future::join_all(requests).await;
    let ok = statuses
        .iter()
        .filter(|s| matches!(s, Ok(StatusCode::OK)))
        .count();
    let refused = statuses
        .iter()
        .filter(|s| matches!(s, Ok(StatusCode::BAD_REQUEST)))
        .count();
    assert_eq!((ok, refused), (1, 199), "{statuses:?}");
    assert_eq!(a.me(Some(&cookie)).await, None);
}

#[tokio::test]
async fn a_logout_by_subject_ends_every_provider_session_of_the_account_and_only_those() {
    let (app, idp) = app_with_idp().await;
    // A password account that has linked the provider: its password session is not the
    // provider's to end, its provider session is.
    let linker = Browser::new();
    linker
        .post_api(
            &app.url("/api/register"),
            &[("username", "gina"), ("password", PASSWORD)],
        )
        .await;
    let password_session = linker.session(&app).expect("signed in");
    let action = linker.to_provider_login(&app, "link").await;
    linker.provider_login(&action, "gina-idp").await;
    let gina_via_provider = Browser::new().sign_in(&app, "gina-idp").await;
    assert_eq!(
        app.me(Some(&gina_via_provider)).await.as_deref(),
        Some("gina")
    );
    let token = idp.logout_token(None, Some("gina-idp"), json!({}));
    assert_eq!(backchannel(&app, &token).await.status(), StatusCode::OK);
    assert_eq!(app.me(Some(&gina_via_provider)).await, None);
    assert_eq!(
        app.me(Some(&password_session)).await.as_deref(),
        Some("gina")
    );

    let one = Browser::new().sign_in(&app, "hank").await;
    let two = Browser::new().sign_in(&app, "hank").await;
    let other = Browser::new().sign_in(&app, "ivan").await;
    let token = idp.logout_token(None, Some("hank"), json!({}));
    assert_eq!(backchannel(&app, &token).await.status(), StatusCode::OK);
    assert_eq!(app.me(Some(&one)).await, None);
    assert_eq!(app.me(Some(&two)).await, None);
    assert_eq!(
        app.me(Some(&other)).await.as_deref(),
        Some("ivan"),
        "another person's"
    );
    // A subject nobody here is linked to: 200, nothing ends.
    let token = idp.logout_token(None, Some("nobody"), json!({}));
    assert_eq!(backchannel(&app, &token).await.status(), StatusCode::OK);
    assert_eq!(app.me(Some(&other)).await.as_deref(), Some("ivan"));
}

#[tokio::test]
async fn the_back_channel_passes_the_cross_site_guard_but_not_the_body_cap() {
    let (app, idp) = app_with_idp().await;
    let cookie = Browser::new().sign_in(&app, "jane").await;
    let sid = sid_of(&app, &cookie).await;
    let token = idp.logout_token(Some(&sid), None, json!({}));
    let cross_site = [
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://evil.test"),
    ];
    let path = format!("/api/oidc/{PROVIDER}/backchannel-logout");
    // Not exempt: any other /api path.
    let refused = app
        .post_with("/api/logout", &[], Some(&cookie), &cross_site)
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let response = app
        .post_with(&path, &[("logout_token", &token)], None, &cross_site)
        .await;
    assert_eq!(response.status(), StatusCode::OK, "a server-to-server call");
    assert_eq!(app.me(Some(&cookie)).await, None);
    let huge = "a".repeat(20 * 1024);
    let response = app.post(&path, &[("logout_token", &huge)], None).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // A provider that is not configured.
    let response = app
        .post(
            "/api/oidc/nope/backchannel-logout",
            &[("logout_token", &token)],
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn signing_out_of_the_provider_too_ends_here_first_then_there() {
    let (app, idp) = app_with_idp().await;
    let browser = Browser::new();
    let cookie = browser.sign_in(&app, "kim").await;
    let response = browser
        .post_api(&app.url("/api/logout_provider"), &[])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let url: Option<String> = response.json().await.expect("json");
    let url = url.expect("the provider's end-session URL");
    // Signoff's own session ended already, before the browser goes anywhere.
    assert_eq!(app.session_rows(&cookie).await, 0);
    assert_eq!(app.me(Some(&cookie)).await, None);
    let parsed = reqwest::Url::parse(&url).expect("url");
    assert_eq!(parsed.path(), "/session/end");
    let query: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
    assert!(query["id_token_hint"].starts_with("eyJ"));
    assert_eq!(query["post_logout_redirect_uri"], app.url("/?signed-out"));
    assert_eq!(query["client_id"], client_id());

    // At the provider: confirm, and land back on the app's signed-out page.
    let page = browser.get(&url).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    let landed = browser.confirm_provider_logout(&html).await;
    assert_eq!(landed.url().as_str(), app.url("/?signed-out"));
    assert_eq!(landed.status(), StatusCode::OK);
    // And the provider session is gone: signing in again asks for the login.
    let action = browser.to_provider_login(&app, "start").await;
    assert!(action.contains("/interaction/"));
    drop(idp);
}

#[tokio::test]
async fn a_password_account_links_and_unlinks_a_provider() {
    let (app, _idp) = app_with_idp().await;
    let browser = Browser::new();
    // Signed in with a password in this browser (its cookie in the browser's jar).
    let response = browser
        .post_api(
            &app.url("/api/register"),
            &[("username", "liam"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = browser.session(&app).expect("signed in");
    let action = browser.to_provider_login(&app, "link").await;
    let page = browser.provider_login(&action, "liam-at-idp").await;
    assert_eq!(page.url().path(), "/");
    let cookie_after = browser.session(&app).expect("still signed in");
    assert_eq!(cookie_after, cookie, "linking does not sign in anew");
    let methods = app.get_json("/api/sign_in_methods", Some(&cookie)).await;
    assert_eq!(methods["providers"][0]["linked"], true, "{methods}");
    assert_eq!(methods["has_password"], true);

    // The provider now signs in to the same account.
    let via_provider = Browser::new().sign_in(&app, "liam-at-idp").await;
    assert_eq!(app.me(Some(&via_provider)).await.as_deref(), Some("liam"));

    // Another account cannot take that identity.
    let other = Browser::new();
    other
        .post_api(
            &app.url("/api/register"),
            &[("username", "mona"), ("password", PASSWORD)],
        )
        .await;
    let action = other.to_provider_login(&app, "link").await;
    let page = other.provider_login(&action, "liam-at-idp").await;
    let html = page.text().await.expect("html");
    assert!(
        html.contains("already linked to another account"),
        "the page says why"
    );

    // Unlink, while the password remains.
    let response = browser
        .post_api(&app.url("/api/unlink_provider"), &[("provider", PROVIDER)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let methods = app.get_json("/api/sign_in_methods", Some(&cookie)).await;
    assert_eq!(methods["providers"][0]["linked"], false);
    let again = browser
        .post_api(&app.url("/api/unlink_provider"), &[("provider", PROVIDER)])
        .await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    // A provider-only account cannot unlink its last way in.
    let only = Browser::new();
    only.sign_in(&app, "nina").await;
    let response = only
        .post_api(&app.url("/api/unlink_provider"), &[("provider", PROVIDER)])
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn key_rotation_is_followed_at_a_bounded_rate() {
    let mut idp = Idp::start();
    let app = spawn_with(&idp, &crate::helpers::TestDb::new().await, &[]).await;
    idp.register(&[&app], &client_id()).await;
    let cookie = Browser::new().sign_in(&app, "olga").await;
    let sid = sid_of(&app, &cookie).await;
    let fetched_keys = Instant::now();

    // The provider restarts with a new key on the same address.
    let port = idp.port;
    idp.stop();
    let mut new_key = Idp::start().jwk.clone();
    new_key["kid"] = json!("rotated-key");
    let rotated = Idp::start_with(port, Some(&new_key));
    rotated.register(&[&app], &client_id()).await;
    let token = rotated.logout_token(Some(&sid), None, json!({}));
    // Keys are fetched again for an unknown key id, but not more than every ten seconds.
    if fetched_keys.elapsed() < Duration::from_secs(8) {
        assert_eq!(
            backchannel(&app, &token).await.status(),
            StatusCode::BAD_REQUEST
        );
    }
    tokio::time::sleep(
        Duration::from_secs(10).saturating_sub(fetched_keys.elapsed()) + Duration::from_millis(200),
    )
    .await;
    let token = rotated.logout_token(Some(&sid), None, json!({}));
    assert_eq!(backchannel(&app, &token).await.status(), StatusCode::OK);
    assert_eq!(app.me(Some(&cookie)).await, None);
}

#[tokio::test]
async fn an_unreachable_provider_is_a_clear_error_and_nothing_changes() {
    // A provider whose address answers nothing.
    let mut idp = Idp::start();
    let app = spawn_with(&idp, &crate::helpers::TestDb::new().await, &[]).await;
    idp.stop();
    let browser = Browser::new();
    let response = browser
        .post_form(&app.url(&format!("/api/oidc/{PROVIDER}/start")), &[])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/");
    let page = browser.follow(response).await;
    let html = page.text().await.expect("html");
    assert!(
        html.contains("Test IdP is not available right now"),
        "the page says why"
    );
    let response = backchannel(&app, &idp.logout_token(Some("s"), None, json!({}))).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn without_providers_nothing_changes() {
    let app = spawn_app().await;
    assert_eq!(app.get_json("/api/providers", None).await, json!([]));
    let page = app.get("/", None).await.text().await.expect("html");
    assert!(!page.contains("Sign in with"));
    let response = app
        .post(
            "/api/oidc/test/backchannel-logout",
            &[("logout_token", "x")],
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // Starting a sign-in with a provider that is not configured lands back on the page.
    let response = Browser::new()
        .post_form(&app.url("/api/oidc/test/start"), &[])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/");
}

#[tokio::test]
async fn starting_sign_ins_is_never_throttled_but_failed_code_exchanges_are() {
    let idp = Idp::start();
    let app = spawn_with(
        &idp,
        &crate::helpers::TestDb::new().await,
        &[
            ("REGISTER_MAX_PER_WINDOW", "1"),
            ("LOGIN_MAX_FAILURES", "2"),
        ],
    )
    .await;
    idp.register(&[&app], &client_id()).await;
    let start = format!("/api/oidc/{PROVIDER}/start");
    // Cancelled sign-ins, double clicks, a whole office behind one address: starts cost
    // nothing, and none is refused (three per address were, before).
    let starts = (0..12).map(|_| async {
        let browser = Browser::new();
        let response = browser.post_form(&app.url(&start), &[]).await;
        response.headers()["location"]
            .to_str()
            .map(str::to_owned)
            .unwrap_or_default()
    });
    for location in futures_util::future::join_all(starts).await {
        assert!(
            location.starts_with(&idp.issuer),
            "to the provider: {location}"
        );
    }
    Browser::new().sign_in(&app, "quinn").await;

    // Code exchanges that fail are counted per browser session: the third is refused before
    // the provider is asked.
    let browser = Browser::new();
    let mut answers = Vec::new();
    for _ in 0..3 {
        let response = browser.post_form(&app.url(&start), &[]).await;
        let location =
            reqwest::Url::parse(response.headers()["location"].to_str().expect("a location"))
                .expect("a URL");
        let state = location
            .query_pairs()
            .find(|(key, _)| key == "state")
            .map(|(_, value)| value.into_owned())
            .expect("a state");
        let callback = reqwest::Url::parse_with_params(
            &app.url(&format!("/api/oidc/{PROVIDER}/callback")),
            &[
                ("state", state.as_str()),
                ("code", "not-a-code-the-provider-issued"),
                ("iss", idp.issuer.as_str()),
            ],
        )
        .expect("callback URL");
        let landed = browser.follow(browser.get(callback.as_str()).await).await;
        answers.push(landed.text().await.expect("html"));
    }
    assert!(!answers[0].contains("Too many"), "{}", answers[0]);
    assert!(!answers[1].contains("Too many"), "{}", answers[1]);
    assert!(
        answers[2].contains("Too many sign-ins with"),
        "{}",
        answers[2]
    );
    // Another browser at the same address is not affected (the address has a high ceiling).
    Browser::new().sign_in(&app, "quinn").await;
}

#[tokio::test]
async fn signing_out_of_the_provider_too_works_without_javascript() {
    let (app, idp) = app_with_idp().await;
    let browser = Browser::new();
    let cookie = browser.sign_in(&app, "rita").await;
    // A native form post (the wasm not loaded, or JavaScript off).
    let response = browser
        .post_form(&app.url("/api/logout_provider"), &[])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        location.starts_with(&format!("{}/session/end?", idp.issuer)),
        "{location}"
    );
    assert_eq!(app.session_rows(&cookie).await, 0, "signed out here first");
    // A password session has no provider to go to: it lands signed out.
    let other = Browser::new();
    other
        .post_api(
            &app.url("/api/register"),
            &[("username", "sam"), ("password", PASSWORD)],
        )
        .await;
    let response = other.post_form(&app.url("/api/logout_provider"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/?signed-out");
}

#[tokio::test]
async fn concurrent_unlinks_never_leave_an_account_without_a_way_in() {
    // Two providers; an account with no password, linked to both.
    let (one, two) = (Idp::start(), Idp::start());
    let secret = "test-client-secret-123";
    let id = client_id();
    let app = crate::helpers::spawn_app_with(&[
        ("OIDC_PROVIDERS", "test,second"),
        ("OIDC_TEST_ISSUER", &one.issuer),
        ("OIDC_TEST_CLIENT_ID", &id),
        ("OIDC_TEST_CLIENT_SECRET", secret),
        ("OIDC_SECOND_ISSUER", &two.issuer),
        ("OIDC_SECOND_CLIENT_ID", &id),
        ("OIDC_SECOND_CLIENT_SECRET", secret),
    ])
    .await;
    one.register_as(&[&app], &id, "test").await;
    two.register_as(&[&app], &id, "second").await;
    let browser = Browser::new();
    browser.sign_in(&app, "uma").await;
    let action = browser.to_login_of(&app, "second", "link").await;
    browser.provider_login(&action, "uma-two").await;
    let cookie = browser.session(&app).expect("signed in");
    let methods = app.get_json("/api/sign_in_methods", Some(&cookie)).await;
    assert_eq!(methods["providers"][1]["linked"], true, "{methods}");

    // Both unlinked at once, many times over: one may go, never both.
    let url = app.url("/api/unlink_provider");
    let (browser, url) = (&browser, &url);
    let unlinks = (0..40).map(|i| async move {
        let provider = if i % 2 == 0 { "test" } else { "second" };
        browser
            .post_api(url, &[("provider", provider)])
            .await
            .status()
    });
    let statuses = futures_util::future::join_all(unlinks).await;
    let done = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(done, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| [200, 400, 404].contains(&s.as_u16())),
        "{statuses:?}"
    );
    let methods = app.get_json("/api/sign_in_methods", Some(&cookie)).await;
    let linked = methods["providers"]
        .as_array()
        .expect("list")
        .iter()
        .filter(|p| p["linked"] == true)
        .count();
    assert_eq!(linked, 1, "one way in remains: {methods}");
}

#[tokio::test]
async fn the_absolute_timeout_holds_through_the_single_sign_on_routes() {
    let idp = Idp::start();
    let app = spawn_with(
        &idp,
        &TestDb::new().await,
        &[
            ("SESSION_ABSOLUTE_TIMEOUT", "4"),
            ("SESSION_IDLE_TIMEOUT", "60"),
        ],
    )
    .await;
    idp.register(&[&app], &client_id()).await;
    let started = Instant::now();
    let browser = Browser::new();
    let response = browser
        .post_api(
            &app.url("/api/register"),
            &[("username", "nora"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = browser.session(&app).expect("signed in");
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    // Linking a provider writes the session twice (the pending sign-in, then taking it out),
    // near the end of its absolute timeout.
    let action = browser.to_provider_login(&app, "link").await;
    let page = browser.provider_login(&action, "nora-at-idp").await;
    assert_eq!(page.url().path(), "/");
    assert_eq!(app.me(Some(&cookie)).await.as_deref(), Some("nora"));
    // Past the deadline by more than the second SQLite's text comparison of expiries blurs.
    tokio::time::sleep(
        Duration::from_secs(4).saturating_sub(started.elapsed()) + Duration::from_millis(1_600),
    )
    .await;
    assert_eq!(
        app.me(Some(&cookie)).await,
        None,
        "the session outlived its absolute timeout"
    );
}

#[tokio::test]
async fn sign_out_of_the_provider_too_ends_the_session_before_asking_the_provider() {
    let (a, mut idp) = app_with_idp().await;
    // A second instance that has never fetched the provider's discovery document.
    let b = spawn_with(&idp, &a.test_db, &[]).await;
    let cookie = Browser::new().sign_in(&a, "olga").await;
    // The provider stops answering: its port takes connections and says nothing.
    idp.stop();
    let _silent =
        std::net::TcpListener::bind(("127.0.0.1", idp.port)).expect("the provider's port");
    // A client that gives up after a second, long before the provider would be given up on.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("client");
    let _ = client
        .post(b.url("/api/logout_provider"))
        .header("accept", "application/json")
        .header("cookie", format!("{}={cookie}", crate::helpers::COOKIE))
        .send()
        .await;
    assert_eq!(
        a.session_rows(&cookie).await,
        0,
        "the session waited on the provider"
    );
    assert_eq!(a.me(Some(&cookie)).await, None);
}
