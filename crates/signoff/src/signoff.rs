//! [`Signoff`]: everything Signoff's server side needs at run time, built once at start-up. It
//! knows nothing of Leptos: an app keeps it beside its own state (see `state.rs`) and hands it to
//! axum handlers (`State<Signoff>`, through `FromRef`) and to server functions (Leptos context).

use std::{ops::Deref, sync::Arc};

use crate::{
    client_addr::Cidr,
    db::Database,
    hub::Hub,
    oidc::Providers,
    session::{SessionSettings, Store},
    throttle::ThrottleSettings,
};

/// Signoff's run-time state. Cloning is one reference count: axum clones the state for every
/// middleware and handler call of every request, and copying the fields each time was measurable
/// (6% of `GET /api/me`'s CPU, perf, when Leptos' options were among them).
#[derive(Clone, Debug)]
pub struct Signoff(Arc<SignoffInner>);

impl Signoff {
    pub fn new(inner: SignoffInner) -> Self {
        Self(Arc::new(inner))
    }
}

impl Deref for Signoff {
    type Target = SignoffInner;

    fn deref(&self) -> &SignoffInner {
        &self.0
    }
}

/// The parts of [`Signoff`].
#[derive(Debug)]
pub struct SignoffInner {
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
