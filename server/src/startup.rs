//! Builds the application: database, session and auth layers, routes. `router` is apart from
//! serving so tests can drive it; `Application` binds a port (0 in tests) and serves.

use std::{future::Future, net::SocketAddr, time::Duration};

use app::{shell, state::AppState};
use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use leptos_axum::{AxumRouteListing, LeptosRoutes};
use leptos_router::{Method, SsrMode};
use signoff::{ConnectError, Signoff};
use tokio::net::TcpListener;
use tower_http::{services::ServeDir, trace::TraceLayer};

use crate::{config::Settings, serve::ServerLimits};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Signoff(#[from] ConnectError),
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    FileLimit(#[from] crate::serve::FileLimitError),
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    limits: ServerLimits,
}

impl Application {
    /// Binds the listener, connects Signoff (the database, its migrations, the adoption of old
    /// names) and builds the router.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        crate::serve::ensure_file_limit(&settings.limits, settings.signoff.pool.max_connections)?;
        let addr = settings.leptos_options.site_addr;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Bind { addr, source })?;
        // With port 0 (tests) the OS picks one; Leptos must know the real address.
        let mut leptos_options = settings.leptos_options.clone();
        if let Ok(bound) = listener.local_addr() {
            leptos_options.site_addr = bound;
        }
        // The redirect URIs registered at the providers are on SITE_ORIGIN when it is set, else
        // on the address served (loopback; `config` insists on SITE_ORIGIN otherwise).
        let served_at = format!("http://{}", leptos_options.site_addr);
        let signoff = Signoff::connect(settings.signoff, &served_at).await?;
        let state = AppState::new(leptos_options, signoff);
        let router = router(state.clone());
        Ok(Self {
            listener,
            router,
            state,
            limits: settings.limits,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.state.leptos_options().site_addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let background = tokio::spawn(Signoff::clone(&self.state).background());
        // Open event streams would hold a graceful shutdown forever: end them first.
        let signoff = Signoff::clone(&self.state);
        let shutdown = async move {
            shutdown.await;
            signoff.close();
        };
        // Each request carries the peer address (audit trail, throttling); see `serve`.
        let trusted = self.state.trusted_proxies.clone();
        crate::serve::serve(self.listener, self.router, self.limits, trusted, shutdown).await;
        background.abort();
        Ok(())
    }
}

/// The whole HTTP surface: the page and the server functions, with Signoff mounted around
/// them (`signoff_leptos::ssr::router` gives the layers and their order); static files and
/// `/healthz` sit outside the session layers: they neither read nor extend a session.
pub fn router(state: AppState) -> Router {
    let options = state.leptos_options().clone();
    let pkg_dir = format!("{}/{}", options.site_root, options.site_pkg_dir);
    // One page, rendered in `Async` mode: the server waits for the user resource and sends the
    // finished HTML, so the first paint already shows the right state (even with JS off), instead
    // of a "Loading…" placeholder swapped by a streamed script.
    let routes = vec![AxumRouteListing::new(
        "/".to_owned(),
        SsrMode::Async,
        [Method::Get],
        vec![],
    )];
    let signoff = Signoff::clone(&state);
    let provide = signoff_leptos::ssr::provide(&signoff);
    let pages = Router::new()
        .leptos_routes_with_context(&state, routes, provide.clone(), {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(provide, shell));
    let outside = Router::new().route("/healthz", get(healthz)).nest_service(
        &format!("/{}", options.site_pkg_dir),
        ServeDir::new(pkg_dir),
    );
    signoff_leptos::ssr::router(pages, outside, &signoff)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// `GET /healthz`: 200 when the database answers within two seconds, 503 otherwise.
async fn healthz(State(state): State<AppState>) -> Response {
    let ok = matches!(
        tokio::time::timeout(Duration::from_secs(2), state.db.ping()).await,
        Ok(Ok(()))
    );
    let (status, body) = if ok {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
    };
    (status, [(header::CACHE_CONTROL, "no-store")], body).into_response()
}
