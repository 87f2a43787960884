//! The machine's ceiling for `make bench`: an axum route that does no I/O, served the way the
//! real server is (one tokio runtime, loopback). Whatever Signoff reaches, it cannot beat this.
//!
//! `cargo run --release -p server --example ceiling -- 127.0.0.1:3200`

use axum::{routing::get, Router};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3200".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let app = Router::new().route("/", get(|| async { "null" }));
    axum::serve(listener, app).await
}
