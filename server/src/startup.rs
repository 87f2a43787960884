//! Builds the application: database, session and auth layers, routes. `router` is apart from
//! serving so tests can drive it; `Application` binds a port (0 in tests) and serves.

use std::{future::Future, net::SocketAddr, time::Duration};

use app::{
    auth::{
        ssr::{backend::prefetched, hub::Hub, oidc, oidc::Providers, password::Hasher, Backend},
        wire::EVENTS_PATH,
    },
    db::{Database, DatabaseSetupError},
    error::AppError,
    session::{self, Store},
    shell,
    state::AppState,
};
use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use axum_login::AuthManager;
use leptos_axum::{AxumRouteListing, LeptosRoutes};
use leptos_router::{Method, SsrMode};
use signoff::{Signoff, SignoffInner};
use tokio::net::TcpListener;
use tower::{layer::layer_fn, ServiceBuilder};
use tower_http::{services::ServeDir, set_header::SetResponseHeaderLayer, trace::TraceLayer};

use crate::{body_deadline, config::Settings, forms, hardening, serve::ServerLimits};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] DatabaseSetupError),
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("could not prepare password hashing: {0}")]
    Hasher(AppError),
    #[error(transparent)]
    FileLimit(#[from] crate::serve::FileLimitError),
    #[error("could not give existing accounts their PRECIS names: {0}")]
    Names(String),
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    sweep_interval: Duration,
    limits: ServerLimits,
}

impl Application {
    /// Connects and migrates the database, binds the listener and builds the router.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        crate::serve::ensure_file_limit(&settings.limits, settings.pool.max_connections)?;
        let db = Database::connect(&settings.database_url, settings.pool).await?;
        db.migrate().await?;
        adopt_old_names(&db).await?;

        let addr = settings.leptos_options.site_addr;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Bind { addr, source })?;
        // With port 0 (tests) the OS picks one; Leptos must know the real address.
        let mut leptos_options = settings.leptos_options;
        if let Ok(bound) = listener.local_addr() {
            leptos_options.site_addr = bound;
        }

        // The redirect URIs registered at the providers: on the public origin when it is
        // configured, else on the address served (loopback; `config` insists on SITE_ORIGIN
        // otherwise).
        let origin = settings
            .site_origin
            .clone()
            .unwrap_or_else(|| format!("http://{}", leptos_options.site_addr));
        let signoff = Signoff::new(SignoffInner {
            oidc: Providers::new(settings.oidc, &origin),
            events: Hub::new(&db, settings.stream_lifetime, settings.limits.max_streams),
            store: Store::new(&db, &settings.sessions),
            db,
            sessions: settings.sessions,
            throttle: settings.throttle,
            site_origin: settings.site_origin,
            trusted_proxies: settings.trusted_proxies,
        });
        let state = AppState::new(leptos_options, signoff);
        let router = router(state.clone(), settings.limits).await?;
        Ok(Self {
            listener,
            router,
            state,
            sweep_interval: settings.sweep_interval,
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
        let sweeper = tokio::spawn(app::maintenance::sweep_expired(
            self.state.store.clone(),
            self.sweep_interval,
            self.state.throttle,
        ));
        let relay = tokio::spawn(self.state.events.clone().relay());
        // Open event streams would hold a graceful shutdown forever: end them first.
        let hub = self.state.events.clone();
        let shutdown = async move {
            shutdown.await;
            hub.close();
        };
        // Each request carries the peer address (audit trail, throttling); see `serve`.
        let trusted = self.state.trusted_proxies.clone();
        crate::serve::serve(self.listener, self.router, self.limits, trusted, shutdown).await;
        sweeper.abort();
        relay.abort();
        Ok(())
    }
}

/// The whole HTTP surface. Layers, outermost first:
/// trace → security headers → cross-site refusal and `/api` body cap → native form posts land
/// on the page (`forms`) → the per-request owner
/// slot (`prefetched`) → store-failure-to-503 →
/// `Cache-Control: no-store` → the session cookie on the wire → duplicate session cookies
/// refused → cookies and session → sliding expiry → axum-login → pages and
/// `/api` server functions. Static files and `/healthz` sit outside the session layers: they
/// neither read nor extend a session.
/// Accounts made before the PRECIS name rules get their keys (`auth::ssr::names`), after the
/// schema migration that made room for them and before anything looks a name up.
pub async fn adopt_old_names(db: &Database) -> Result<(), StartupError> {
    let adopted = app::auth::ssr::names::adopt_old_names(db)
        .await
        .map_err(|error| StartupError::Names(error.to_string()))?;
    if adopted.accounts > 0 {
        tracing::info!(
            accounts = adopted.accounts,
            renamed = adopted.renamed,
            lookalikes = adopted.lookalikes,
            "gave existing accounts their PRECIS names"
        );
    }
    Ok(())
}

pub async fn router(state: AppState, limits: ServerLimits) -> Result<Router, StartupError> {
    let hasher = Hasher::new().await.map_err(StartupError::Hasher)?;
    let backend = Backend::new(state.db.clone(), hasher);
    let session_layer = session::layer(state.store.clone(), state.sessions);

    let session_stack = ServiceBuilder::new()
        // Lets the session read hand its owner to the auth layer (one read per request).
        .layer(middleware::from_fn(|request: Request, next: Next| {
            prefetched::scope(next.run(request))
        }))
        .layer(middleware::map_response(store_failure_is_unavailable))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        // The session cookie goes out once and well formed, whoever wrote it (the session layer
        // writes its own removals, without `Secure`).
        .layer(middleware::from_fn_with_state(
            state.sessions,
            session::session_cookie_on_the_wire,
        ))
        .layer(middleware::from_fn_with_state(
            state.sessions,
            session::refuse_duplicate_cookies,
        ))
        .layer(session_layer)
        .layer(middleware::from_fn_with_state(
            state.sessions,
            session::refresh_expiry,
        ))
        .layer(layer_fn(move |inner| {
            AuthManager::new(inner, backend.clone(), session::AUTH_DATA_KEY)
        }));

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

    Ok(Router::new()
        // Not a server function: an event stream the browser holds open (`auth::live`).
        .route(EVENTS_PATH, get(app::auth::ssr::stream::stream))
        // Single sign-on: redirects to the provider and back (`auth::ssr::oidc::flow`).
        .route(
            "/api/oidc/{provider}/start",
            post(oidc::flow::start_sign_in),
        )
        .route("/api/oidc/{provider}/link", post(oidc::flow::start_link))
        .route("/api/oidc/{provider}/callback", get(oidc::flow::callback))
        .leptos_routes_with_context(&state, routes, provide_signoff(&state), {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(provide_signoff(&state), shell))
        .layer(session_stack)
        .route("/healthz", get(healthz))
        // The provider's server-to-server logout call: no session, no cookie.
        .route(
            oidc::BACKCHANNEL_LOGOUT_PATH,
            post(oidc::backchannel::logout),
        )
        .nest_service(
            &format!("/{}", options.site_pkg_dir),
            ServeDir::new(pkg_dir),
        )
        .layer(middleware::from_fn_with_state(
            state.clone(),
            forms::land_native_forms,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            hardening::guard_api,
        ))
        // Outside the guard, which reads `/api` bodies: one that has not arrived whole within
        // `SERVER_BODY_TIMEOUT` ends in 408 instead of holding the connection.
        .layer(middleware::from_fn_with_state(
            limits.body_timeout,
            body_deadline::limit_body_time,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            hardening::security_headers,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state))
}

/// Server functions and the page find Signoff in Leptos context: Signoff's code never knows the
/// app's own state type.
fn provide_signoff(state: &AppState) -> impl Fn() + Clone + Send + Sync + 'static {
    let signoff = Signoff::clone(state);
    move || leptos::prelude::provide_context(signoff.clone())
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

/// tower-sessions and axum-login answer a failed store read or write with an empty 500. That is
/// the database being unavailable, not a bug: say so, in the same JSON shape as every other error.
async fn store_failure_is_unavailable(response: Response) -> Response {
    if response.status() == StatusCode::INTERNAL_SERVER_ERROR
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        return AppError::unavailable().into_response();
    }
    response
}
