//! The template's Leptos app, built on Signoff's crates: the HTML shell (with the page's
//! Content-Security-Policy), the root component, and the app's state. Accounts are
//! `signoff_leptos`'s; server-only code is compiled with the `ssr` feature and never reaches the
//! wasm bundle.

#[cfg(feature = "ssr")]
pub mod state;

use leptos::prelude::*;

/// The HTML document around [`App`], rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let stylesheet = format!("/{}/{}.css", options.site_pkg_dir, options.output_name);
    #[cfg(feature = "ssr")]
    set_page_csp(&options);
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

/// Whether this server runs under `cargo leptos watch` (read once).
#[cfg(feature = "ssr")]
static UNDER_WATCH: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| std::env::var_os("LEPTOS_WATCH").is_some());

/// The page's Content-Security-Policy. Leptos gives each page render a fresh nonce and puts it on
/// its inline hydration scripts; only scripts with it (and our own files) may run.
#[cfg(feature = "ssr")]
fn set_page_csp(options: &LeptosOptions) {
    use leptos::nonce::use_nonce;
    let (Some(response), Some(nonce)) =
        (use_context::<leptos_axum::ResponseOptions>(), use_nonce())
    else {
        return;
    };
    // `cargo leptos watch` reloads the page over a websocket on the reload port. It sets
    // `LEPTOS_WATCH` for the server it runs, and only then does `AutoReload` add its script:
    // the same test, so no other server (debug or release) lets the page open a websocket.
    let live_reload = if *UNDER_WATCH {
        format!(
            " ws://127.0.0.1:{port} ws://localhost:{port}",
            port = options.reload_port
        )
    } else {
        String::new()
    };
    // A sign-in with a provider posts here and is redirected there, and browsers hold the
    // redirect of a form post to `form-action` too: the providers' origins are allowed.
    let providers: String = use_context::<signoff::Signoff>()
        .map(|state| state.oidc.form_action_sources())
        .unwrap_or_default()
        .iter()
        .map(|origin| format!(" {origin}"))
        .collect();
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'{live_reload}; \
         frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'self'{providers}"
    );
    if let Ok(value) = http::HeaderValue::from_str(&policy) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
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
            <signoff_leptos::ui::AccountPanel />
        </main>
    }
}
