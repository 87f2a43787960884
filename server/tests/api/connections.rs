//! Connections that hold a slot without finishing a request: each has a deadline from the
//! accept (the bytes that tell HTTP/1 from HTTP/2 included), an idle limit once it has served,
//! and a head of at most 32 KiB. Raw sockets, as an attacker would hold them.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::*;

/// The HTTP/2 connection preface and an empty SETTINGS frame: a client speaking HTTP/2 with
/// prior knowledge, that then opens no stream.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const H2_EMPTY_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// How long until the server closes `socket` (reads until end of stream or error), at most
/// `within`; `None` if it is still open then.
async fn closed_after(socket: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    loop {
        let left = within.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, socket.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.addr).await.expect("connect")
}

#[tokio::test]
async fn a_silent_socket_and_a_partial_http2_preface_are_closed_on_time() {
    let app = spawn_app_with(&[("SERVER_HEADER_READ_TIMEOUT", "1")]).await;
    let mut silent = connect(&app).await;
    let mut partial = connect(&app).await;
    partial
        .write_all(&H2_PREFACE[..16])
        .await
        .expect("half a preface");
    let mut h2 = connect(&app).await;
    h2.write_all(H2_PREFACE).await.expect("preface");
    h2.write_all(H2_EMPTY_SETTINGS).await.expect("settings");

    let started = Instant::now();
    for (what, socket) in [
        ("a socket that sends nothing", &mut silent),
        ("half of the HTTP/2 preface", &mut partial),
        ("an HTTP/2 connection that opens no stream", &mut h2),
    ] {
        closed_after(socket, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("{what}: still open after 5 s"));
        let lived = started.elapsed();
        println!("[connections] {what} lived {lived:?} (SERVER_HEADER_READ_TIMEOUT=1)");
        assert!(lived < Duration::from_secs(3), "{what}: {lived:?}");
    }
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_but_a_stream_is_not() {
    let app = spawn_app_with(&[("SERVER_IDLE_TIMEOUT", "1")]).await;

    // HTTP/1.1 keep-alive: one request served, then nothing.
    let mut socket = connect(&app).await;
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let mut buffer = [0u8; 1024];
    let read = socket.read(&mut buffer).await.expect("response");
    assert!(buffer[..read].starts_with(b"HTTP/1.1 200"));
    let lived = closed_after(&mut socket, Duration::from_secs(5))
        .await
        .expect("the idle connection was not closed");
    println!("[connections] a kept-alive connection idle after its request lived {lived:?} (SERVER_IDLE_TIMEOUT=1)");
    assert!(lived < Duration::from_millis(2_500), "{lived:?}");

    // An event stream is a request in flight, however quiet: it outlives the idle limit and
    // still delivers.
    let cookie = app.register("alice").await;
    let mut stream = app.open_events(&cookie).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let out = app.post("/api/logout", &[], Some(&cookie)).await;
    assert_eq!(out.status(), StatusCode::OK);
    let ended = stream.ended(Duration::from_secs(5)).await;
    assert_eq!(ended["reason"], "signed_out");
}

#[tokio::test]
async fn a_request_head_over_32_kib_is_refused_with_431() {
    let app = spawn_app().await;
    let head = |pad: usize| {
        format!(
            "GET /api/me HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(pad)
        )
    };
    for (pad, status) in [(20 * 1024, "200"), (40 * 1024, "431"), (300 * 1024, "431")] {
        let mut socket = connect(&app).await;
        // A refused head may be answered before all of it is written.
        let _ = socket.write_all(head(pad).as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "a head with {pad} bytes of padding: {answer:?}"
        );
    }
}

/// Runs the real `server` binary under `ulimit` settings (a shell's), on a fresh SQLite file.
fn server_under(ulimit: &str, max_connections: &str) -> std::process::Child {
    let dir = tempfile::tempdir().expect("temp dir");
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{ulimit} && exec \"$0\""))
        .arg(env!("CARGO_BIN_EXE_server"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/s.db", dir.path().display()),
        )
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("SERVER_MAX_CONNECTIONS", max_connections)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sh runs");
    // The directory must outlive the process; the OS reclaims it with the test's temp files.
    std::mem::forget(dir);
    child
}

#[test]
fn start_up_raises_the_open_file_limit_or_refuses_clearly() {
    use std::io::{BufRead, BufReader};

    // A hard limit below what the cap needs: start-up stops and says what to change.
    let output = server_under("ulimit -n 400", "1024")
        .wait_with_output()
        .expect("server ran");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("SERVER_MAX_CONNECTIONS=1024") && stderr.contains("open files"),
        "{stderr}"
    );

    // A low soft limit under a high hard one: raised to what the cap needs, then served.
    let mut child = server_under("ulimit -Sn 128", "1024");
    let stderr = child.stderr.take().expect("piped");
    let mut lines = BufReader::new(stderr).lines();
    let listening = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains("listening on"));
    assert!(listening, "the server did not start");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id()))
        .expect("the process's limits");
    let _ = child.kill();
    let _ = child.wait();
    let soft: u64 = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|soft| soft.parse().ok())
        .expect("Max open files");
    println!("[connections] soft open-file limit raised from 128 to {soft}");
    assert!(soft >= 1024 + 64, "{limits}");
}
