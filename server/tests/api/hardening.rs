//! Body limits, malformed cookies, and the security headers on every response.

use reqwest::{header, StatusCode};

use crate::helpers::*;

#[tokio::test]
async fn oversized_bodies_are_413_before_anything_is_parsed() {
    let app = spawn_app().await;
    let huge = "x".repeat(20 * 1024);
    let response = app.login_attempt("alice", &huge).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_body(response).await.0, "too_large");

    // Chunked, with no Content-Length to check up front.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..40).map(|_| Ok(vec![b'a'; 1024])).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = reqwest::Client::new()
        .post(app.url("/api/register"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// Sends `body_len` bytes of body to `/api/login` over a blocking socket on its own thread, as
/// a simple client does (Python's `http.client`): headers, then the whole body without waiting
/// for an answer, then reads the answer. Returns its status line, or the error the client saw
/// (a reset while sending loses the answer).
fn raw_upload(addr: std::net::SocketAddr, chunked: bool, body_len: usize) -> String {
    use std::io::{Read, Write};

    let mut socket = std::net::TcpStream::connect(addr).expect("connect");
    let _ = socket.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {body_len}")
    };
    let head = format!(
        "POST /api/login HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n{framing}\r\n\r\n"
    );
    let chunk = vec![b'a'; 16 * 1024];
    let mut write = || -> std::io::Result<()> {
        socket.write_all(head.as_bytes())?;
        let mut sent = 0;
        while sent < body_len {
            let n = chunk.len().min(body_len - sent);
            if chunked {
                socket.write_all(format!("{n:x}\r\n").as_bytes())?;
                socket.write_all(&chunk[..n])?;
                socket.write_all(b"\r\n")?;
            } else {
                socket.write_all(&chunk[..n])?;
            }
            sent += n;
            // A client over a real network sends at its own pace: the server is ready to answer
            // long before the body is all there.
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        if chunked {
            socket.write_all(b"0\r\n\r\n")?;
        }
        Ok(())
    };
    // Like http.client: a failed write (the server reset the connection) is the end.
    if let Err(error) = write() {
        return format!("error while sending: {error}");
    }
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match socket.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(error) if answer.is_empty() => return format!("error: {error}"),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("error: empty answer")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_still_sending_a_large_body_gets_its_413() {
    let app = spawn_app().await;
    // 30 clients at once, each on its own thread sending 1 MiB, with and without Content-Length.
    let addr = app.addr;
    let uploads: Vec<_> = (0..30)
        .map(|i| std::thread::spawn(move || raw_upload(addr, i % 2 == 1, 1024 * 1024)))
        .collect();
    let answers = tokio::task::spawn_blocking(move || {
        uploads
            .into_iter()
            .map(|upload| upload.join().expect("client thread"))
            .collect::<Vec<_>>()
    })
    .await
    .expect("clients");
    for (i, answer) in answers.iter().enumerate() {
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "upload {i}: {answer} (all: {answers:?})"
        );
    }
    // The server is fine afterwards.
    assert_eq!(app.me(None).await, None);
}

#[tokio::test]
async fn malformed_oversized_or_duplicated_cookies_are_no_session_never_5xx() {
    let app = spawn_app().await;
    let cookie = app.register("alice").await;
    let long = "A".repeat(4000);
    for header_value in [
        format!("{COOKIE}=%%%"),
        format!("{COOKIE}={long}"),
        format!("{COOKIE}="),
        format!("{COOKIE}=garbage; {COOKIE}=more-garbage"),
        "=; ;;; =x".to_owned(),
    ] {
        let response = reqwest::Client::new()
            .get(app.url("/api/me"))
            .header(header::COOKIE, header_value.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{header_value:.60}");
        assert_eq!(response.text().await.unwrap(), "null", "{header_value:.60}");
    }
    // Non-ASCII bytes (obs-text) in the value.
    let response = reqwest::Client::new()
        .get(app.url("/api/me"))
        .header(
            header::COOKIE,
            header::HeaderValue::from_bytes(b"signoff_session=\xc3\xa9\xff").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // A valid cookie is still honoured.
    assert_eq!(app.me(Some(&cookie)).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn security_headers_are_on_every_response() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/api/me",
        "/healthz",
        "/pkg/missing.js",
        "/no-such-page",
    ] {
        let response = app.get(path, None).await;
        assert_eq!(
            header_value(&response, "x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            header_value(&response, "referrer-policy").as_deref(),
            Some("no-referrer"),
            "{path}"
        );
        let csp = header_value(&response, "content-security-policy").expect("CSP");
        for directive in [
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(
            header_value(&response, "strict-transport-security").is_none(),
            "no HSTS over plain HTTP"
        );
    }
}

#[tokio::test]
async fn the_page_allows_only_its_own_nonced_scripts() {
    let app = spawn_app().await;
    let response = app.get("/", None).await;
    let csp = header_value(&response, "content-security-policy").unwrap();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a nonce in the page CSP")
        .to_owned();
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let html = response.text().await.unwrap();
    let scripts = html.matches("<script").count();
    assert!(scripts > 0);
    assert_eq!(
        html.matches(&format!("nonce=\"{nonce}\"")).count(),
        scripts,
        "{html}"
    );
    // A fresh nonce per response.
    let again = header_value(&app.get("/", None).await, "content-security-policy").unwrap();
    assert_ne!(again, csp);
}

#[tokio::test]
async fn hsts_is_sent_when_cookies_are_secure() {
    let app = spawn_app_with(&[("COOKIE_SECURE", "true")]).await;
    let response = app.get("/api/me", None).await;
    let hsts = header_value(&response, "strict-transport-security").expect("HSTS");
    assert!(hsts.starts_with("max-age="), "{hsts}");
}

#[tokio::test]
async fn logout_asks_the_browser_to_clear_site_data_but_not_the_cache() {
    let app = spawn_app().await;
    let cookie = app.register("alice").await;
    let response = app.post("/api/logout", &[], Some(&cookie)).await;
    assert_eq!(
        header_value(&response, "clear-site-data").as_deref(),
        Some("\"cookies\", \"storage\"")
    );
}

#[tokio::test]
async fn database_down_during_login_is_503_and_sets_no_session() {
    let app = spawn_app().await;
    app.register("alice").await;
    app.db.close().await;
    let response = app.login_attempt("alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(session_set_cookie(&response).is_none());
}
