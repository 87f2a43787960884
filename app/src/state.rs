//! What every request can reach: built once at start-up, passed through axum and Leptos context.

use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;

use crate::{db::Database, session::SessionSettings};

#[derive(Clone, Debug)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: Database,
    pub sessions: SessionSettings,
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
