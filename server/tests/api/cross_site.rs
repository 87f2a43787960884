//! Cross-site request refusal on every state-changing call (login CSRF included), POST only.

use reqwest::StatusCode;

use crate::helpers::*;

const STATE_CHANGING: &[&str] = &[
    "/api/register",
    "/api/login",
    "/api/logout",
    "/api/logout_all",
    "/api/revoke_session",
    "/api/change_password",
];

#[tokio::test]
async fn foreign_origin_or_cross_site_fetch_is_403_and_changes_nothing() {
    let app = spawn_app().await;
    let cookie = app.register("alice").await;
    let foreign: &[&[(&str, &str)]] = &[
        &[("origin", "https://evil.example")],
        &[("origin", "null")],
        &[("sec-fetch-site", "cross-site")],
        // A sibling subdomain is same-site but not same-origin.
        &[("sec-fetch-site", "same-site")],
        &[("origin", "null"), ("sec-fetch-site", "cross-site")],
        &[
            ("origin", &format!("http://{}", app.addr)),
            ("sec-fetch-site", "cross-site"),
        ],
    ];
    for path in STATE_CHANGING {
        for headers in foreign {
            let form = [
                ("username", "mallory"),
                ("password", PASSWORD),
                ("id", "x"),
                ("current_password", PASSWORD),
                ("new_password", "a brand new passphrase"),
            ];
            let response = app.post_with(path, &form, Some(&cookie), headers).await;
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{path} {headers:?}"
            );
            assert_eq!(error_body(response).await.0, "cross_site");
        }
    }
    assert_eq!(
        app.me(Some(&cookie)).await.as_deref(),
        Some("alice"),
        "still signed in"
    );
    let login = app.login_attempt("mallory", PASSWORD).await;
    assert_eq!(
        login.status(),
        StatusCode::UNAUTHORIZED,
        "mallory was never registered"
    );
}

#[tokio::test]
async fn same_origin_and_headerless_clients_are_allowed() {
    let app = spawn_app().await;
    let own = format!("http://{}", app.addr);
    let cookie = app.register("alice").await;
    for headers in [
        vec![("origin", own.as_str())],
        vec![("origin", own.as_str()), ("sec-fetch-site", "same-origin")],
        vec![("sec-fetch-site", "same-origin")],
        vec![("sec-fetch-site", "none")],
        // Chromium's native form post from a page with `Referrer-Policy: no-referrer`.
        vec![("origin", "null"), ("sec-fetch-site", "same-origin")],
        vec![],
    ] {
        let response = app
            .post_with(
                "/api/login",
                &[("username", "alice"), ("password", PASSWORD)],
                None,
                &headers,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{headers:?}");
    }
    let response = app
        .post_with("/api/logout", &[], Some(&cookie), &[("origin", &own)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn configured_site_origin_is_the_one_accepted() {
    let app = spawn_app_with(&[("SITE_ORIGIN", "https://signoff.example")]).await;
    let allowed = app
        .post_with(
            "/api/register",
            &[("username", "alice"), ("password", PASSWORD)],
            None,
            &[("origin", "https://signoff.example")],
        )
        .await;
    assert_eq!(allowed.status(), StatusCode::OK);
    let host_match = app
        .post_with(
            "/api/login",
            &[("username", "alice"), ("password", PASSWORD)],
            None,
            &[("origin", &format!("http://{}", app.addr))],
        )
        .await;
    assert_eq!(host_match.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn state_changes_accept_post_only() {
    let app = spawn_app().await;
    let cookie = app.register("alice").await;
    for path in STATE_CHANGING {
        let response = app
            .get(
                &format!("{path}?username=alice&password=x&id=x"),
                Some(&cookie),
            )
            .await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }
    assert_eq!(app.me(Some(&cookie)).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn no_cors_header_ever_allows_another_origin() {
    let app = spawn_app().await;
    let cookie = app.register("alice").await;
    let response = reqwest::Client::new()
        .get(app.url("/api/me"))
        .header("origin", "https://evil.example")
        .header("cookie", format!("{COOKIE}={cookie}"))
        .send()
        .await
        .unwrap();
    assert!(response
        .headers()
        .keys()
        .all(|name| !name.as_str().starts_with("access-control-")));
    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, app.url("/api/logout"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight
        .headers()
        .keys()
        .all(|name| !name.as_str().starts_with("access-control-")));
}
