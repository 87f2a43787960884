//! A Leptos app of its own — a home page and a members-only page — that uses Signoff for sign-in,
//! a members-only server function and sign-out. Everything about accounts is Signoff's: this
//! file is only the app.

// Signoff's account panel has a deep view type: rendering it on the server computes layouts past
// the compiler's default query depth of 128 (README, "Use Signoff in your own Leptos app").
#![recursion_limit = "256"]

use leptos::prelude::*;
use leptos_router::{
    components::{Route, Router, Routes, A},
    path,
};
use signoff_types::AppError;

/// The HTML document around [`App`].
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <title>"Minimal"</title>
                <HydrationScripts options />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Two pages. Signoff's `AccountPanel` (sign-in, create account, "Signed in as", Sign out, the
/// Security section) sits on the home page.
#[component]
pub fn App() -> impl IntoView {
    view! {
        <Router>
            <nav>
                <A href="/">"Home"</A>
                " · "
                <A href="/members">"Members"</A>
            </nav>
            <main>
                <Routes fallback=|| "Not found.">
                    <Route path=path!("/") view=HomePage />
                    <Route path=path!("/members") view=MembersPage />
                </Routes>
            </main>
        </Router>
    }
}

#[component]
fn HomePage() -> impl IntoView {
    view! {
        <h1>"Minimal"</h1>
        <p>"An app of its own, with Signoff for its accounts."</p>
        <signoff_leptos::ui::AccountPanel />
    }
}

/// `GET /api/members_note`: for signed-in people only (401 otherwise).
#[server(prefix = "/api", endpoint = "members_note", input = leptos::server_fn::codec::GetUrl)]
pub async fn members_note() -> Result<String, AppError> {
    let auth = signoff_leptos::ssr::auth_session().await?;
    let user = signoff::require_user(&auth)?;
    Ok(format!("Welcome to the members' room, {}.", user.username))
}

#[component]
fn MembersPage() -> impl IntoView {
    let note = Resource::new(|| (), |_| members_note());
    view! {
        <h1>"Members only"</h1>
        <Suspense fallback=|| "Loading…">
            {move || {
                note.get()
                    .map(|note| match note {
                        Ok(text) => view! { <p class="note">{text}</p> }.into_any(),
                        Err(error) => view! { <p class="refused">{error.message}</p> }.into_any(),
                    })
            }}
        </Suspense>
    }
}

/// The browser's entry point (the `hydrate` build).
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    leptos::mount::hydrate_body(App);
}

#[cfg(feature = "ssr")]
pub use server::{router, AppState};

#[cfg(feature = "ssr")]
mod server {
    use axum::{extract::FromRef, Router};
    use leptos::prelude::*;
    use leptos_axum::{generate_route_list, LeptosRoutes};
    use signoff::Signoff;

    /// The app's state: Leptos' options beside Signoff's.
    #[derive(Clone, FromRef)]
    pub struct AppState {
        pub leptos_options: LeptosOptions,
        pub signoff: Signoff,
    }

    /// The pages and server functions, with Signoff mounted around them.
    pub fn router(signoff: Signoff, leptos_options: LeptosOptions) -> Router {
        let provide = signoff_leptos::ssr::provide(&signoff);
        let state = AppState {
            leptos_options: leptos_options.clone(),
            signoff: signoff.clone(),
        };
        let pages = Router::new()
            .leptos_routes_with_context(&state, generate_route_list(super::App), provide.clone(), {
                move || super::shell(leptos_options.clone())
            })
            .fallback(leptos_axum::file_and_error_handler_with_context::<
                AppState,
                _,
            >(provide, super::shell));
        signoff_leptos::ssr::router(pages, Router::new(), &signoff).with_state(state)
    }
}
