//! Logging: `tracing` to stderr, filtered by `RUST_LOG`. Session ids never appear in logs; code
//! that must refer to a session logs `signoff::session::tag`, a one-way hash.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init() {
    // sqlx at info logs every statement; tower_sessions warns on each replayed dead cookie,
    // which after a logout is expected traffic, not an attack.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions_core=error"));
    let _ = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
