//! Signoff's Leptos app: the HTML shell, the root component, and the account feature.
//! Server-only modules are compiled with the `ssr` feature and never reach the wasm bundle.

pub mod auth;
pub mod error;

#[cfg(feature = "ssr")]
pub mod db;
#[cfg(feature = "ssr")]
pub mod session;
#[cfg(feature = "ssr")]
pub mod state;

use leptos::prelude::*;

/// The HTML document around [`App`], rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let stylesheet = format!("/{}/{}.css", options.site_pkg_dir, options.output_name);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <title>"Signoff"</title>
                <link rel="stylesheet" href=stylesheet />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    // Effects run only in the browser, after hydration: this marks the moment the page became
    // interactive (end-to-end tests wait for it before clicking).
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <main class="page">
            <header class="masthead">
                <h1>"Signoff"</h1>
                <p class="tagline">"Session authentication with logout done right."</p>
            </header>
            <auth::ui::AccountPanel />
        </main>
    }
}
