//! The app's state: Leptos' options beside [`Signoff`]. Handlers take whichever part they need
//! (`State<Signoff>`, `State<LeptosOptions>`) through `FromRef`; Signoff's own code never sees
//! this type, so another app puts Signoff beside its own state the same way.

use std::{ops::Deref, sync::Arc};

use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;

use signoff::Signoff;

/// Cloning is one reference count (see [`Signoff`]).
#[derive(Clone, Debug)]
pub struct AppState(Arc<AppStateInner>);

#[derive(Debug)]
struct AppStateInner {
    leptos_options: LeptosOptions,
    signoff: Signoff,
}

impl AppState {
    pub fn new(leptos_options: LeptosOptions, signoff: Signoff) -> Self {
        Self(Arc::new(AppStateInner {
            leptos_options,
            signoff,
        }))
    }

    pub fn leptos_options(&self) -> &LeptosOptions {
        &self.0.leptos_options
    }
}

/// The template's own handlers read Signoff's parts straight off the app state.
impl Deref for AppState {
    type Target = Signoff;

    fn deref(&self) -> &Signoff {
        &self.0.signoff
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.0.leptos_options.clone()
    }
}

impl FromRef<AppState> for Signoff {
    fn from_ref(state: &AppState) -> Self {
        state.0.signoff.clone()
    }
}
