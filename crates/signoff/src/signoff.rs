//! [`Signoff`]: everything Signoff's server side needs at run time, built once at start-up by
//! [`Signoff::connect`] from a [`Config`]. It knows nothing of Leptos: an app keeps it beside its
//! own state and hands it to axum handlers (`State<Signoff>`, through `FromRef`) and to server
//! functions (Leptos context).

use std::{ops::Deref, sync::Arc, time::Duration};

use crate::{
    backend::Backend,
    client_addr::Cidr,
    db::{Database, DatabaseSetupError, PoolSettings, DEFAULT_DATABASE_URL},
    error::AppError,
    hub::{Hub, STREAM_MAX_LIFETIME},
    mail::{MailSettings, Mailer},
    oidc::{ProviderSettings, Providers},
    password::Hasher,
    session::{SessionSettings, Store},
    throttle::ThrottleSettings,
};

/// What [`Signoff::connect`] builds Signoff from. `Config::default()` is the embedded setup: a
/// SQLite file created on first start (`data/signoff.db`), the cookie without `Secure` (set
/// `sessions.cookie_secure` behind HTTPS), no proxies trusted, no single sign-on.
#[derive(Clone, Debug)]
pub struct Config {
    /// `sqlite://path` (created if missing) or `postgres://…`.
    pub database_url: String,
    /// The connection pool's limits.
    pub pool: PoolSettings,
    /// Timeouts and the cookie mode.
    pub sessions: SessionSettings,
    /// Failed sign-ins and registrations allowed per window.
    pub throttle: ThrottleSettings,
    /// Peers whose forwarding headers name the client; empty: none.
    pub trusted_proxies: Vec<Cidr>,
    /// The site's public origin (`https://app.example.com`), when a proxy changes `Host`.
    pub site_origin: Option<String>,
    /// How long a page's event stream stays open before it reconnects.
    pub stream_lifetime: Duration,
    /// Event streams this instance holds at most, all users together.
    pub max_streams: usize,
    /// How long a request body may take to arrive, in all (408 after).
    pub body_timeout: Duration,
    /// How often expired sessions, attempts and tokens are swept.
    pub sweep_interval: Duration,
    /// OpenID Providers for single sign-on; empty: none.
    pub oidc: Vec<ProviderSettings>,
    /// How mail leaves: SMTP, or the log when no server is set.
    pub mail: MailSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            pool: PoolSettings::default(),
            sessions: SessionSettings::default(),
            throttle: ThrottleSettings::default(),
            trusted_proxies: Vec::new(),
            site_origin: None,
            stream_lifetime: STREAM_MAX_LIFETIME,
            max_streams: 256,
            body_timeout: Duration::from_secs(10),
            sweep_interval: Duration::from_secs(60),
            oidc: Vec::new(),
            mail: MailSettings::default(),
        }
    }
}

/// Why [`Signoff::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Database(#[from] DatabaseSetupError),
    /// Accounts from before the name rules could not be adopted.
    #[error("could not give existing accounts their PRECIS names: {0}")]
    Names(#[source] sqlx::Error),
    /// Password hashing could not be prepared.
    #[error("could not prepare password hashing: {0}")]
    Hasher(AppError),
    /// The site's origin cannot be a WebAuthn relying party (passkeys).
    #[error(transparent)]
    Passkeys(#[from] crate::webauthn::PasskeySetupError),
    /// TLS for the identity providers could not be set up.
    #[error(transparent)]
    Tls(#[from] crate::oidc::TlsSetupError),
}

/// Signoff's run-time state. Cloning is one reference count: axum clones the state for every
/// middleware and handler call of every request, and copying the fields each time was measurable
/// (6% of `GET /api/me`'s CPU, perf, when Leptos' options were among them).
#[derive(Clone, Debug)]
pub struct Signoff(Arc<SignoffInner>);

impl Signoff {
    /// Builds Signoff from its parts (tests; [`Signoff::connect`] is the usual way).
    pub fn new(inner: SignoffInner) -> Self {
        Self(Arc::new(inner))
    }

    /// Opens the database (creating a SQLite file on first start), applies the migrations,
    /// adopts accounts from before the name rules, and builds the store, the users backend,
    /// the hub and the providers. `served_at` is the origin the app is reached at when
    /// `config.site_origin` is not set (the providers' redirect URIs are made from it).
    pub async fn connect(config: Config, served_at: &str) -> Result<Self, ConnectError> {
        let db = Self::open_database(&config).await?;
        let hasher = Hasher::new().await.map_err(ConnectError::Hasher)?;
        let origin = config
            .site_origin
            .clone()
            .unwrap_or_else(|| served_at.trim_end_matches('/').to_owned());
        Ok(Self::new(SignoffInner {
            oidc: Providers::new(config.oidc, &origin)?,
            passkeys: crate::webauthn::Passkeys::new(&origin)?,
            recovery: crate::mail_tokens::Recovery::new(&origin),
            events: Hub::new(&db, config.stream_lifetime, config.max_streams),
            store: Store::new(&db, &config.sessions),
            mailer: Mailer::new(db.clone(), &config.mail),
            backend: Backend::new(db.clone(), hasher),
            db,
            sessions: config.sessions,
            throttle: config.throttle,
            site_origin: config.site_origin,
            trusted_proxies: config.trusted_proxies,
            body_timeout: config.body_timeout,
            sweep_interval: config.sweep_interval,
        }))
    }

    /// Opens the database, applies the migrations, and gives accounts made before the name rules
    /// their keys (before anything looks a name up). [`Signoff::connect`] starts with this;
    /// maintenance commands that need only the database use it alone.
    pub async fn open_database(config: &Config) -> Result<Database, ConnectError> {
        let db = Database::connect(&config.database_url, config.pool).await?;
        db.migrate().await?;
        let adopted = crate::names::adopt_old_names(&db)
            .await
            .map_err(ConnectError::Names)?;
        if adopted.accounts > 0 {
            tracing::info!(
                accounts = adopted.accounts,
                renamed = adopted.renamed,
                lookalikes = adopted.lookalikes,
                "gave existing accounts their PRECIS names"
            );
        }
        Ok(db)
    }

    /// What runs beside the server for as long as it serves: the sweep of expired rows, the mail
    /// outbox's worker, and on PostgreSQL the relay of other instances' ended sessions to this one's streams. Spawn it,
    /// and abort it at shutdown after [`Signoff::close`].
    pub async fn background(self) {
        let sweep = crate::maintenance::sweep_expired(
            self.store.clone(),
            self.sweep_interval,
            self.throttle,
        );
        let relay = self.events.clone().relay();
        let mail = self.mailer.clone().run();
        tokio::join!(sweep, relay, mail);
    }

    /// Ends every open event stream, so that a graceful shutdown can finish.
    pub fn close(&self) {
        self.events.close();
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
    /// The database (SQLite or PostgreSQL).
    pub db: Database,
    /// The users backend (axum-login), with its password hasher.
    pub backend: Backend,
    /// The session store, built once: the session layer reads through it, and handlers list and
    /// end sessions with it. It owns the per-request read's connections (`session_read`).
    pub store: Store,
    /// Timeouts and the cookie mode.
    pub sessions: SessionSettings,
    /// Failed sign-ins and registrations allowed per window.
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
    /// The WebAuthn relying party (passkeys): the site's origin and host.
    pub passkeys: crate::webauthn::Passkeys,
    /// The mail outbox's worker (`SMTP_URL`, `MAIL_FROM`).
    pub mailer: Mailer,
    /// The mailed-link flows (password reset, address confirmation): the site's origin for the
    /// links, and the bound on reset requests being looked up at once.
    pub recovery: crate::mail_tokens::Recovery,
    /// How long a request body may take to arrive, in all (`guard`: 408 after).
    pub body_timeout: Duration,
    /// How often [`Signoff::background`] sweeps expired rows.
    pub sweep_interval: Duration,
}
