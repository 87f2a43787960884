//! Signoff's core: session authentication for axum apps, with sign-out done right. Server only,
//! and no Leptos: the sessions (store, layer, per-request read, sweep), the users backend and
//! password hashing, throttling and trusted clients, the audit trail, the hub that tells open
//! pages their session ended (LISTEN/NOTIFY on PostgreSQL), single sign-on (OpenID Connect, with
//! back-channel logout), and [`lifecycle`]: where every session starts and ends, as plain
//! functions that return what the HTTP layer must send.
//!
//! # Quick start
//!
//! Connect (this creates the SQLite file and applies the migrations), mount Signoff around the
//! routes that use sessions, and run its background work:
//!
//! ```no_run
//! use axum::{routing::get, Router};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = signoff::Config::from_env()?; // or signoff::Config::default()
//! let signoff = signoff::Signoff::connect(config, "http://127.0.0.1:3000").await?;
//! tokio::spawn(signoff.clone().background());
//!
//! let pages: Router<signoff::Signoff> = Router::new().route("/", get(|| async { "hello" }));
//! let app = signoff::router::harden(signoff::router::with_sessions(pages, &signoff), &signoff)
//!     .with_state(signoff.clone());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(
//!     listener,
//!     app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
//! )
//! .await?;
//! # Ok(()) }
//! ```
//!
//! A handler signs its request's session out with one call, and sends what it returns:
//!
//! ```no_run
//! # async fn handler(
//! #     signoff: signoff::Signoff,
//! #     auth: &mut signoff::AuthSession,
//! #     meta: &signoff::RequestMeta,
//! # ) -> Result<(), signoff::AppError> {
//! // Log out, destroy the session row, tell its other pages, and get back what the answer
//! // must carry (the removal cookie, `Clear-Site-Data`).
//! let ended = signoff::lifecycle::sign_out(auth, &signoff, meta).await?;
//! # let _ = ended; Ok(()) }
//! ```
//!
//! The Leptos integration (server functions, components) is the `signoff-leptos` crate; this
//! workspace's `app` and `server` are the template of an app built on both.

#![warn(missing_docs)]

pub mod attempts;
pub mod audit;
pub mod backend;
pub mod body_deadline;
pub mod client_addr;
pub mod common_passwords;
pub mod config;
pub mod cookies;
pub mod db;
pub mod guard;
pub mod html;
pub mod hub;
pub mod lifecycle;
pub mod mail;
pub mod mail_tokens;
pub mod maintenance;
mod migrations;
pub mod names;
pub mod notices;
pub mod oidc;
pub mod pages;
pub mod passkeys;
pub mod password;
pub mod recovery;
pub mod router;
pub mod session;
pub mod session_read;
pub mod signoff;
pub mod stepup;
pub mod stream;
pub mod throttle;
pub mod trust;
pub mod webauthn;

/// What server and browser share (`signoff-types`), re-exported at the paths the core uses.
pub use signoff_types::{error, landing, validate, wire};

pub use backend::{AuthSession, Backend, Credentials, UserRecord};
pub use client_addr::RequestMeta;
pub use config::ConfigError;
pub use error::{AppError, ErrorCode};
pub use signoff::{Config, ConnectError, Signoff, SignoffInner};

/// The current time in Unix milliseconds (the unit of Signoff's own timestamp columns).
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The signed-in user of this request, or 401.
pub fn require_user(auth: &AuthSession) -> Result<UserRecord, AppError> {
    auth.user.clone().ok_or_else(AppError::not_signed_in)
}

/// The current session's public handle and log tag, if it has an id.
pub fn current_handle(auth: &AuthSession) -> Option<String> {
    auth.session.id().map(|id| session::handle(&id))
}

/// Unix milliseconds as RFC 3339 UTC ("2026-11-25T03:33:23.123Z").
pub fn rfc3339_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Unix seconds as RFC 3339 UTC.
pub fn rfc3339_s(secs: i64) -> String {
    rfc3339_ms(secs.saturating_mul(1000))
}
