use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn healthz_follows_the_database() {
    let app = spawn_app().await;
    let response = app.get("/healthz", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "ok");
    app.db.close().await;
    assert_eq!(
        app.get("/healthz", None).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn database_down_is_503_json_not_500() {
    let app = spawn_app().await;
    let cookie = app.register("alice").await;
    app.db.close().await;
    for response in [
        app.get("/api/me", Some(&cookie)).await,
        app.post(
            "/api/login",
            &[("username", "alice"), ("password", PASSWORD)],
            None,
        )
        .await,
    ] {
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let (code, message) = error_body(response).await;
        assert_eq!(code, "unavailable");
        assert!(!message.contains("sqlx"), "no internals leak: {message}");
    }
}

#[tokio::test]
async fn unknown_api_path_is_a_client_error() {
    let app = spawn_app().await;
    let response = app.post("/api/nope", &[], None).await;
    assert!(response.status().is_client_error(), "{}", response.status());
}

#[test]
fn bad_configuration_stops_start_up_naming_the_variable() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .env("SESSION_IDLE_TIMEOUT", "half an hour")
        .env("DATABASE_URL", "sqlite::memory:")
        .output()
        .expect("server binary runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SESSION_IDLE_TIMEOUT"), "{stderr}");
}
