//! What every request can reach: built once at start-up, passed through axum and Leptos context.

use std::{ops::Deref, sync::Arc};

use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;

use crate::{
    auth::ssr::{client_addr::Cidr, events::Hub, oidc::Providers, throttle::ThrottleSettings},
    db::Database,
    session::{SessionSettings, Store},
};

/// The application state. Cloning is one reference count: axum clones the state for every
/// middleware and handler call of every request, and copying the fields each time (Leptos'
/// options alone hold a dozen shared strings) was 6% of `GET /api/me`'s CPU (perf).
#[derive(Clone, Debug)]
pub struct AppState(Arc<AppStateInner>);

impl AppState {
    pub fn new(inner: AppStateInner) -> Self {
        Self(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

#[derive(Debug)]
pub struct AppStateInner {
    pub leptos_options: LeptosOptions,
    pub db: Database,
    /// The session store, built once: the session layer reads through it, and handlers list and
    /// end sessions with it. It owns the per-request read's connections (`session_read`).
    pub store: Store,
    pub sessions: SessionSettings,
    pub throttle: ThrottleSettings,
    /// The site's public origin (`SITE_ORIGIN`, e.g. `https://app.example.com`). When unset, a
    /// request's `Origin` must match its own `Host`.
    pub site_origin: Option<String>,
    /// Tells open pages, on every instance, that their session ended.
    pub events: Hub,
    /// Peers whose forwarding headers name the client (`TRUSTED_PROXIES`); empty: none.
    pub trusted_proxies: Vec<Cidr>,
    /// The OpenID Providers people may sign in with (`OIDC_PROVIDERS`); empty: none.
    pub oidc: Providers,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl FromRef<AppState> for SessionSettings {
    fn from_ref(state: &AppState) -> Self {
        state.sessions
    }
}
