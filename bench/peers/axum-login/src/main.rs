//! The stack a Rust user would pick instead of Signoff, for `make bench`: axum-login 0.18,
//! tower-sessions 0.14 and tower-sessions-sqlx-store 0.15, wired as axum-login's sqlite example
//! wires them (the store's own `migrate`, `SessionManagerLayer` with `with_secure(false)` and
//! `Expiry::OnInactivity`, `AuthManagerLayerBuilder`, password-auth's Argon2 defaults verified on
//! the blocking pool, `AuthSession::logout` to sign out). The only changes are the ones the
//! benchmark needs: Signoff's four endpoints and bodies, a 30-minute idle timeout like Signoff's,
//! and PostgreSQL as well as SQLite.
//!
//! `DATABASE_URL=sqlite://peer.db?mode=rwc` (or a `postgres://` URL) `PORT=3303 axum-login-peer`
//!
//! A benchmark peer, not part of Signoff: it does what the stock stack does, nothing more.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Form, Json, Router,
};
use axum_login::{
    tower_sessions::{ExpiredDeletion, Expiry, SessionManagerLayer, SessionStore},
    AuthManagerLayerBuilder, AuthUser, AuthnBackend, UserId,
};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, SqlitePool};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Debug, sqlx::FromRow)]
struct User {
    id: i64,
    username: String,
    password: String,
}

impl AuthUser for User {
    type Id = i64;

    fn id(&self) -> i64 {
        self.id
    }

    fn session_auth_hash(&self) -> &[u8] {
        // As in the example: the hash itself, so a password change ends older sessions.
        self.password.as_bytes()
    }
}

#[derive(Clone, Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// The users table on either backend (the example has SQLite only).
#[derive(Clone, Debug)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

macro_rules! on {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

#[derive(Clone, Debug)]
struct Backend {
    db: Db,
}

impl AuthnBackend for Backend {
    type User = User;
    type Credentials = Credentials;
    type Error = sqlx::Error;

    async fn authenticate(&self, creds: Credentials) -> Result<Option<User>, sqlx::Error> {
        let user: Option<User> = on!(&self.db, |pool| {
            sqlx::query_as("SELECT id, username, password FROM users WHERE username = $1")
                .bind(&creds.username)
                .fetch_optional(pool)
                .await?
        });
        tokio::task::spawn_blocking(move || {
            user.filter(|user| password_auth::verify_password(&creds.password, &user.password).is_ok())
        })
        .await
        .map_err(|error| sqlx::Error::Protocol(error.to_string()))
    }

    async fn get_user(&self, user_id: &UserId<Self>) -> Result<Option<User>, sqlx::Error> {
        on!(&self.db, |pool| {
            sqlx::query_as("SELECT id, username, password FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(pool)
                .await
        })
    }
}

type AuthSession = axum_login::AuthSession<Backend>;

#[derive(Serialize)]
struct PublicUser {
    id: i64,
    username: String,
}

impl From<&User> for PublicUser {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
        }
    }
}

fn failure(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "code": code, "message": message })),
    )
        .into_response()
}

async fn register(
    mut auth: AuthSession,
    State(db): State<Db>,
    Form(creds): Form<Credentials>,
) -> Response {
    let username = creds.username.trim().to_lowercase();
    if username.is_empty() || creds.password.len() < 15 {
        return failure(StatusCode::BAD_REQUEST, "invalid_input", "Invalid username or password.");
    }
    let Ok(hash) = tokio::task::spawn_blocking(move || password_auth::generate_hash(creds.password)).await
    else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let inserted: Result<Option<User>, sqlx::Error> = on!(&db, |pool| {
        sqlx::query_as(
            "INSERT INTO users (username, password) VALUES ($1, $2) ON CONFLICT DO NOTHING \
             RETURNING id, username, password",
        )
        .bind(&username)
        .bind(&hash)
        .fetch_optional(pool)
        .await
    });
    match inserted {
        Ok(Some(user)) => match auth.login(&user).await {
            Ok(()) => Json(PublicUser::from(&user)).into_response(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        },
        Ok(None) => failure(StatusCode::CONFLICT, "username_taken", "That username is taken."),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn login(mut auth: AuthSession, Form(creds): Form<Credentials>) -> Response {
    let creds = Credentials {
        username: creds.username.trim().to_lowercase(),
        password: creds.password,
    };
    match auth.authenticate(creds).await {
        Ok(Some(user)) => match auth.login(&user).await {
            Ok(()) => Json(PublicUser::from(&user)).into_response(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        },
        Ok(None) => failure(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "Wrong username or password.",
        ),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn me(auth: AuthSession) -> Json<Option<PublicUser>> {
    Json(auth.user.as_ref().map(PublicUser::from))
}

async fn logout(mut auth: AuthSession) -> Response {
    match auth.logout().await {
        Ok(_) => Json(None::<PublicUser>).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn app<S>(db: Db, store: S) -> Router
where
    S: SessionStore + Clone,
{
    let session_layer = SessionManagerLayer::new(store)
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(time::Duration::minutes(30)));
    let auth_layer = AuthManagerLayerBuilder::new(Backend { db: db.clone() }, session_layer).build();
    Router::new()
        .route("/api/register", post(register))
        .route("/api/login", post(login))
        .route("/api/me", get(me))
        .route("/api/logout", post(logout))
        .layer(auth_layer)
        .with_state(db)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://peer.db?mode=rwc".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3303".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    let every_minute = tokio::time::Duration::from_secs(60);
    let router = if url.starts_with("sqlite:") {
        let pool = SqlitePool::connect(&url).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, \
             username TEXT NOT NULL UNIQUE, password TEXT NOT NULL)",
        )
        .execute(&pool)
        .await?;
        let store = SqliteStore::new(pool.clone());
        store.migrate().await?;
        tokio::spawn(store.clone().continuously_delete_expired(every_minute));
        app(Db::Sqlite(pool), store)
    } else {
        let pool = PgPool::connect(&url).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS users (id BIGSERIAL PRIMARY KEY, \
             username TEXT NOT NULL UNIQUE, password TEXT NOT NULL)",
        )
        .execute(&pool)
        .await?;
        let store = PostgresStore::new(pool.clone());
        store.migrate().await?;
        tokio::spawn(store.clone().continuously_delete_expired(every_minute));
        app(Db::Postgres(pool), store)
    };
    println!("axum-login peer on http://127.0.0.1:{port}");
    axum::serve(listener, router).await?;
    Ok(())
}
