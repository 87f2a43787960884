//! Serves the minimal app: `DATABASE_URL` (default: a SQLite file under `data/`) and
//! `MINIMAL_ADDR` (default `127.0.0.1:3010`).

use std::net::SocketAddr;

use leptos::prelude::LeptosOptions;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::var("MINIMAL_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3010".into())
        .parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let config = signoff::Config {
        database_url: std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "sqlite://data/minimal.db".into()),
        ..signoff::Config::default()
    };
    let signoff = signoff::Signoff::connect(config, &format!("http://{addr}")).await?;
    tokio::spawn(signoff.clone().background());
    let options = LeptosOptions::builder()
        .output_name("minimal")
        .site_addr(addr)
        .build();
    let app = minimal::router(signoff, options);
    println!("minimal: listening on http://{addr}");
    // Signoff reads the client's address (throttling, the audit trail) from the connection.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
