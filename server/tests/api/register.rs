use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn register_creates_the_user_and_signs_in() {
    let app = spawn_app().await;
    let response = app.register_attempt("alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(cache_control(&response).as_deref(), Some("no-store"));
    let set_cookie = session_set_cookie(&response).expect("session cookie set");
    let attrs = attributes(&set_cookie);
    assert!(attrs.contains(&"httponly".into()), "{set_cookie}");
    assert!(attrs.contains(&"samesite=lax".into()), "{set_cookie}");
    assert!(attrs.contains(&"path=/".into()), "{set_cookie}");
    assert!(
        !attrs.iter().any(|a| a.starts_with("domain")),
        "{set_cookie}"
    );
    assert!(
        !attrs.contains(&"secure".into()),
        "COOKIE_SECURE defaults to false"
    );
    let cookie = session_cookie(&response).expect("cookie value");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["username"], "alice");
    assert!(body["id"].as_i64().is_some());
    assert_eq!(
        body.as_object().unwrap().len(),
        2,
        "only id and username: {body}"
    );

    assert_eq!(app.me(Some(&cookie)).await.as_deref(), Some("alice"));
    assert_eq!(app.session_rows(&cookie).await, 1);
}

#[tokio::test]
async fn cookie_is_secure_when_configured() {
    let app = spawn_app_with(&[("COOKIE_SECURE", "true")]).await;
    let response = app.register_attempt("alice", PASSWORD).await;
    let set_cookie = session_set_cookie(&response).unwrap();
    assert!(
        attributes(&set_cookie).contains(&"secure".into()),
        "{set_cookie}"
    );
}

#[tokio::test]
async fn usernames_are_trimmed_and_unique_regardless_of_case() {
    let app = spawn_app().await;
    let response = app.register_attempt("  Bob ", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["username"], "Bob");

    for taken in ["bob", " BOB ", "Bob"] {
        let response = app.register_attempt(taken, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::CONFLICT, "{taken:?}");
        assert!(session_cookie(&response).is_none());
        let (code, _) = error_body(response).await;
        assert_eq!(code, "username_taken");
    }
}

#[tokio::test]
async fn invalid_input_is_400_with_a_json_message_and_changes_nothing() {
    let app = spawn_app().await;
    let long = "x".repeat(129);
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "short password",
            vec![("username", "alice"), ("password", "fourteen chars")],
        ),
        (
            "long password",
            vec![("username", "alice"), ("password", &long)],
        ),
        (
            "short username",
            vec![("username", "al"), ("password", PASSWORD)],
        ),
        (
            "blank username",
            vec![("username", "   "), ("password", PASSWORD)],
        ),
        (
            "odd username",
            vec![("username", "al<script>"), ("password", PASSWORD)],
        ),
        ("missing password", vec![("username", "alice")]),
        ("empty body", vec![]),
    ];
    for (what, form) in cases {
        let response = app.post("/api/register", &form, None).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
        assert!(session_cookie(&response).is_none(), "{what}: no session");
        let (code, message) = error_body(response).await;
        assert_eq!(code, "invalid_input", "{what}");
        assert!(!message.is_empty(), "{what}");
    }
    // Nothing was created: the name is still free.
    let response = app.register_attempt("alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn password_length_counts_unicode_characters() {
    let app = spawn_app().await;
    // 16 characters but 44 bytes: accepted. Any characters, spaces included.
    let response = app
        .post(
            "/api/register",
            &[
                ("username", "carol"),
                ("password", "日本語 のパスワードです、はい!"),
            ],
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"id": body["id"], "username": "carol"}));
}

#[tokio::test]
async fn malformed_bodies_are_400_never_500() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let form = "application/x-www-form-urlencoded";
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "invalid UTF-8",
            form,
            b"username=\xff\xfe&password=x".to_vec(),
        ),
        ("bad escape", form, b"username=%ZZ&password=%".to_vec()),
        (
            "duplicated field",
            form,
            b"username=a&username=b&password=x".to_vec(),
        ),
        (
            "JSON instead of a form",
            "application/json",
            br#"{"username":1}"#.to_vec(),
        ),
        (
            "binary noise",
            "application/octet-stream",
            vec![0, 159, 146, 150, 255],
        ),
    ];
    for (what, content_type, body) in cases {
        let response = client
            .post(app.url("/api/register"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
        let (code, _) = error_body(response).await;
        assert_eq!(code, "invalid_input", "{what}");
    }
}
