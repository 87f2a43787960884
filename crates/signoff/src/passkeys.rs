//! Passkeys (WebAuthn Level 3, through `webauthn-rs`): adding, listing, renaming and removing an
//! account's passkeys, signing in with one (a discoverable credential: no name typed), creating
//! an account with a passkey only, and confirming who you are with one (`stepup`).
//!
//! Every ceremony is two calls, `…/start` and `…/finish`. Its state (the challenge and what the
//! authenticator must prove) is kept in the session's data on the server, never in the browser,
//! and is good for one finish: `start` also writes a ticket row (`passkey_ceremonies`), and
//! `finish` deletes it before anything is verified. Fifty copies of one assertion sent at once
//! find one ticket between them: one session.
//!
//! The relying party is the site: its id is the host of `SITE_ORIGIN` (or `localhost` for a
//! server on a loopback address in development; WebAuthn refuses IP addresses), and only that
//! origin's pages may use the passkeys ([`crate::webauthn::Passkeys::new`]).
//!
//! Where a passkey's removal ends its sessions is `lifecycle::way_in_removed`, beside every
//! other end of a session.

use axum::{
    body::Bytes,
    extract::{ConnectInfo, Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use base64::Engine;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, DiscoverableAuthentication, Passkey,
    PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    Uuid, WebauthnError,
};

pub use crate::session::{SessionPasskey, PASSKEY_KEY as SESSION_KEY};
pub use crate::webauthn::forget_expired;
use crate::webauthn::CEREMONY_TIMEOUT;

use crate::{
    audit,
    backend::NewPasskey,
    db::Database,
    error::AppError,
    lifecycle::{self, Via},
    names, now_ms, on_db,
    session::WayIn,
    stepup, throttle,
    wire::{PasskeyInfo, User},
    AuthSession, RequestMeta, Signoff, UserRecord,
};

/// The session data key of the ceremony in progress ([`Ceremony`]).
const CEREMONY_KEY: &str = "signoff.passkey_ceremony";
/// The longest name a passkey may have.
const NAME_MAX_CHARS: usize = 64;
/// Passkeys one account may have: enough for every device a person owns, and a bound on what
/// a stolen session could add before anyone notices.
const MAX_PER_ACCOUNT: i64 = 20;

/// A ceremony in progress, in the session's data. `ticket` is its row in `passkey_ceremonies`.
#[derive(Serialize, Deserialize)]
enum Ceremony {
    /// Adding a passkey to the signed-in account.
    Add {
        ticket: String,
        user_id: i64,
        handle: Uuid,
        state: PasskeyRegistration,
    },
    /// Creating an account whose only way in is this passkey.
    Create {
        ticket: String,
        username: String,
        handle: Uuid,
        state: PasskeyRegistration,
    },
    /// Signing in with any passkey of this site.
    SignIn {
        ticket: String,
        state: DiscoverableAuthentication,
    },
    /// The signed-in person confirming who they are with one of the account's passkeys.
    Confirm {
        ticket: String,
        user_id: i64,
        state: PasskeyAuthentication,
    },
}

impl Ceremony {
    fn ticket(&self) -> &str {
        match self {
            Ceremony::Add { ticket, .. }
            | Ceremony::Create { ticket, .. }
            | Ceremony::SignIn { ticket, .. }
            | Ceremony::Confirm { ticket, .. } => ticket,
        }
    }
}

/// A stored passkey row.
#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    user_id: i64,
    passkey: String,
    name: String,
    kind: Option<String>,
    sign_count: i64,
    created_ms: i64,
    last_used_ms: Option<i64>,
}

impl Row {
    fn info(&self) -> PasskeyInfo {
        PasskeyInfo {
            id: self.id,
            name: self.name.clone(),
            kind: self.kind.clone(),
            created_at: crate::rfc3339_ms(self.created_ms),
            last_used_at: self.last_used_ms.map(crate::rfc3339_ms),
        }
    }

    fn passkey(&self) -> Result<Passkey, AppError> {
        serde_json::from_str(&self.passkey).map_err(|error| {
            tracing::error!(passkey = self.id, %error, "a stored passkey could not be read");
            AppError::internal()
        })
    }
}

/// `SELECT` of [`Row`]'s columns from `passkeys p`, followed by the rest of the query.
macro_rules! select_rows {
    ($rest:literal) => {
        concat!(
            "SELECT p.id, p.user_id, p.passkey, p.name, p.kind, p.sign_count, p.created_ms, \
             p.last_used_ms FROM passkeys p ",
            $rest
        )
    };
}

// ---- The HTTP calls -------------------------------------------------------------------------

/// What every call here starts from: the client and the session, and the body (bounded by
/// `guard`), read as JSON.
struct Call {
    meta: RequestMeta,
    auth: AuthSession,
    body: Bytes,
}

impl Call {
    async fn of(state: &Signoff, request: Request) -> Result<Self, AppError> {
        let peer = request
            .extensions()
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|ConnectInfo(addr)| *addr);
        let meta = RequestMeta::of(request.headers(), peer, &state.trusted_proxies);
        let auth = request
            .extensions()
            .get::<AuthSession>()
            .cloned()
            .ok_or_else(|| {
                tracing::error!("auth layer missing from the passkey routes");
                AppError::internal()
            })?;
        let body = axum::body::to_bytes(request.into_body(), crate::guard::API_BODY_LIMIT)
            .await
            .map_err(|_| AppError::too_large(crate::guard::API_BODY_LIMIT))?;
        Ok(Self { meta, auth, body })
    }

    /// The body as `T`; an empty body reads as `{}`. Malformed: 400, never a 5xx.
    fn json<T: DeserializeOwned>(&self) -> Result<T, AppError> {
        let body: &[u8] = match self.body.iter().all(u8::is_ascii_whitespace) {
            true => b"{}",
            false => &self.body,
        };
        serde_json::from_slice(body).map_err(|error| {
            tracing::info!(%error, "refused a malformed passkey request");
            AppError::invalid_input("The passkey data could not be read. Please try again.")
        })
    }
}

/// Answers a call: its value as JSON, or the usual JSON error.
fn answer<T: Serialize>(result: Result<T, AppError>) -> Response {
    match result {
        Ok(value) => (StatusCode::OK, Json(value)).into_response(),
        Err(error) => error.into_response(),
    }
}

/// `POST /api/passkeys/add/start`: the options for `navigator.credentials.create()`, to add a
/// passkey to the signed-in account. Needs a fresh proof of identity (`stepup`).
pub async fn add_start(State(state): State<Signoff>, request: Request) -> Response {
    answer(
        async {
            let call = Call::of(&state, request).await?;
            let user = crate::require_user(&call.auth)?;
            stepup::require_fresh(&call.auth, state.sessions.step_up_max_age).await?;
            let rows = rows_of(&state.db, user.id).await?;
            if rows.len() as i64 >= MAX_PER_ACCOUNT {
                return Err(AppError::invalid_input(format!(
                    "An account can have at most {MAX_PER_ACCOUNT} passkeys. Remove one first."
                )));
            }
            let handle = handle_of(&state.db, user.id).await?;
            // The account's passkeys are excluded: an authenticator that holds one already
            // says so instead of making a second.
            let exclude = rows
                .iter()
                .map(|row| row.passkey().map(|passkey| passkey.cred_id().clone()))
                .collect::<Result<Vec<_>, _>>()?;
            let (options, registration) = state
                .passkeys
                .webauthn
                .start_passkey_registration(handle, &user.username, &user.username, Some(exclude))
                .map_err(ceremony_error)?;
            set_ceremony(&state, &call.auth, |ticket| Ceremony::Add {
                ticket,
                user_id: user.id,
                handle,
                state: registration,
            })
            .await?;
            Ok(discoverable(options))
        }
        .await,
    )
}

/// `POST /api/passkeys/add/finish` `{"name": "…", "credential": {…}}`: stores the new passkey
/// under its name (empty: one is made from its kind).
pub async fn add_finish(State(state): State<Signoff>, request: Request) -> Response {
    answer(
        async {
            #[derive(Deserialize)]
            struct Body {
                #[serde(default)]
                name: String,
                credential: RegisterPublicKeyCredential,
            }
            let call = Call::of(&state, request).await?;
            let user = crate::require_user(&call.auth)?;
            stepup::require_fresh(&call.auth, state.sessions.step_up_max_age).await?;
            let body: Body = call.json()?;
            let name = passkey_name(&body.name)?;
            let Ceremony::Add {
                user_id,
                state: registration,
                ..
            } = take_ceremony(&state, &call.auth, |c| matches!(c, Ceremony::Add { .. })).await?
            else {
                return Err(no_ceremony());
            };
            if user_id != user.id {
                return Err(no_ceremony());
            }
            let passkey = state
                .passkeys
                .webauthn
                .finish_passkey_registration(&body.credential, &registration)
                .map_err(|error| refused("registration", error))?;
            let row = insert(
                &state.db,
                user.id,
                &to_store(&passkey, &body.credential, name)?,
            )
            .await?;
            audit::record_detail(
                &state.db,
                audit::Event::PasskeyAdded,
                Some(user.id),
                None,
                call.meta.ip,
                Some(&row.name),
            )
            .await;
            tracing::info!(user_id = user.id, passkey = row.id, "passkey added");
            Ok(row.info())
        }
        .await,
    )
}

/// An account's passkeys, oldest first (`GET /api/passkeys`, a server function of
/// `signoff-leptos`, so that the page renders them on the server).
pub async fn list(db: &Database, user_id: i64) -> Result<Vec<PasskeyInfo>, AppError> {
    Ok(rows_of(db, user_id).await?.iter().map(Row::info).collect())
}

/// `POST /api/passkeys/rename` `{"id": 1, "name": "…"}`. A name is not a way in: no fresh
/// proof needed.
pub async fn rename(State(state): State<Signoff>, request: Request) -> Response {
    answer(
        async {
            #[derive(Deserialize)]
            struct Body {
                id: i64,
                name: String,
            }
            let call = Call::of(&state, request).await?;
            let user = crate::require_user(&call.auth)?;
            let body: Body = call.json()?;
            let name = passkey_name(&body.name)?;
            let renamed = on_db!(&state.db, |pool| {
                sqlx::query("UPDATE passkeys SET name = $1 WHERE id = $2 AND user_id = $3")
                    .bind(&name)
                    .bind(body.id)
                    .bind(user.id)
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
            if renamed == 0 {
                return Err(AppError::not_found("passkey"));
            }
            row(&state.db, user.id, body.id)
                .await?
                .map(|row| row.info())
                .ok_or_else(|| AppError::not_found("passkey"))
        }
        .await,
    )
}

/// What removing a passkey came to.
#[derive(Debug, Serialize, Deserialize)]
pub struct Removed {
    /// How many sessions signed in with it were ended (the one asking is kept).
    pub sessions_ended: usize,
}

/// `POST /api/passkeys/remove` `{"id": 1}`: removes the passkey, unless it is the account's
/// last way in (409), and ends the sessions signed in with it. Needs a fresh proof.
pub async fn remove(State(state): State<Signoff>, request: Request) -> Response {
    answer(
        async {
            #[derive(Deserialize)]
            struct Body {
                id: i64,
            }
            let call = Call::of(&state, request).await?;
            let user = crate::require_user(&call.auth)?;
            stepup::require_fresh(&call.auth, state.sessions.step_up_max_age).await?;
            let body: Body = call.json()?;
            let name = match delete(&state.db, user.id, body.id).await? {
                Deleted::Done(name) => name,
                Deleted::NotFound => return Err(AppError::not_found("passkey")),
                Deleted::LastWayIn => {
                    return Err(AppError::invalid_input(
                        "This passkey is your account's only way in. Set a password or add \
                         another passkey first.",
                    ))
                }
            };
            let ended = lifecycle::way_in_removed(
                &call.auth,
                &state,
                user.id,
                WayIn::Passkey(body.id),
                &name,
            )
            .await?;
            audit::record_detail(
                &state.db,
                audit::Event::PasskeyRemoved,
                Some(user.id),
                None,
                call.meta.ip,
                Some(&name),
            )
            .await;
            Ok(Removed {
                sessions_ended: ended,
            })
        }
        .await,
    )
}

/// `POST /api/passkeys/signin/start`: the options for `navigator.credentials.get()` with no
/// account named: the browser offers the site's passkeys (by a button, or in the username
/// field's autofill with `mediation: "conditional"`, which the page adds).
pub async fn sign_in_start(State(state): State<Signoff>, request: Request) -> Response {
    answer(
        async {
            let call = Call::of(&state, request).await?;
            let (mut options, authentication) = state
                .passkeys
                .webauthn
                .start_discoverable_authentication()
                .map_err(ceremony_error)?;
            // The page chooses the mediation (a button is a modal request, autofill is
            // conditional); the options say nothing of it.
            options.mediation = None;
            set_ceremony(&state, &call.auth, |ticket| Ceremony::SignIn {
                ticket,
                state: authentication,
            })
            .await?;
            Ok(options)
        }
        .await,
    )
}

/// `POST /api/passkeys/signin/finish` `{"credential": {…}}`: checks the assertion and signs its
/// account in on a new session. Counted like a sign-in (per client address) until it succeeds.
pub async fn sign_in_finish(State(state): State<Signoff>, request: Request) -> Response {
    answer(
        async {
            let mut call = Call::of(&state, request).await?;
            let credential: PublicKeyCredential = credential_of(&call)?;
            let Ceremony::SignIn {
                state: authentication,
                ..
            } = take_ceremony(&state, &call.auth, |c| matches!(c, Ceremony::SignIn { .. })).await?
            else {
                return Err(no_ceremony());
            };
            let buckets = throttle::passkey_buckets(&state.throttle, call.meta.ip);
            let reservation = throttle::reserve(&state.db, &state.throttle, &buckets).await?;
            let (user_handle, credential_id) = state
                .passkeys
                .webauthn
                .identify_discoverable_authentication(&credential)
                .map_err(|error| refused("sign-in", error))?;
            let owner = Owner::Handle(user_handle);
            let Some(row) = row_by_credential(&state.db, credential_id, owner).await? else {
                tracing::info!("a passkey sign-in named a credential not registered here");
                audit::record(
                    &state.db,
                    audit::Event::LoginFailed,
                    None,
                    None,
                    call.meta.ip,
                )
                .await;
                return Err(not_recognised());
            };
            let result = state
                .passkeys
                .webauthn
                .finish_discoverable_authentication_v2(&credential, authentication, row.passkey()?)
                .map_err(|error| {
                    let refused = refused("sign-in", error);
                    tracing::warn!(
                        user_id = row.user_id,
                        passkey = row.id,
                        "passkey sign-in refused"
                    );
                    refused
                });
            let result = match result {
                Ok(result) => result,
                Err(error) => {
                    audit_failure(&state, &row, &call.meta).await;
                    return Err(error);
                }
            };
            if let Err(error) = record_use(&state.db, &row, &result).await {
                audit_failure(&state, &row, &call.meta).await;
                return Err(error);
            }
            let user = user_of(&state, row.user_id).await?;
            reservation.succeeded(&state.db).await;
            let via = Via::Passkey(SessionPasskey { id: row.id });
            lifecycle::start_session(&mut call.auth, &user, &state, &call.meta, via).await?;
            Ok(User::from(&user))
        }
        .await,
    )
}

/// `POST /api/passkeys/create/start` `{"username": "…"}`: the options to create an account
/// whose only way in is a passkey. The name is checked (and must be free) now, and again when
/// the account is made. Counted against the registration limit per client address.
pub async fn create_start(State(state): State<Signoff>, request: Request) -> Response {
    answer(
        async {
            #[derive(Deserialize)]
            struct Body {
                username: String,
            }
            let call = Call::of(&state, request).await?;
            let body: Body = call.json()?;
            let name = names::new_name(&body.username)?;
            let buckets = throttle::register_buckets(&state.throttle, call.meta.ip);
            let _counted = throttle::reserve(&state.db, &state.throttle, &buckets).await?;
            if let Some(clash) = names::holder(&state.db, &name).await? {
                return Err(clash.into());
            }
            let handle = Uuid::new_v4();
            let (options, registration) = state
                .passkeys
                .webauthn
                .start_passkey_registration(handle, &name.display, &name.display, None)
                .map_err(ceremony_error)?;
            set_ceremony(&state, &call.auth, |ticket| Ceremony::Create {
                ticket,
                username: name.display,
                handle,
                state: registration,
            })
            .await?;
            Ok(discoverable(options))
        }
        .await,
    )
}

/// `POST /api/passkeys/create/finish` `{"name": "…", "credential": {…}}`: creates the account
/// with the passkey, in one transaction, and signs it in.
pub async fn create_finish(State(state): State<Signoff>, request: Request) -> Response {
    answer(
        async {
            #[derive(Deserialize)]
            struct Body {
                #[serde(default)]
                name: String,
                credential: RegisterPublicKeyCredential,
            }
            let mut call = Call::of(&state, request).await?;
            let body: Body = call.json()?;
            let passkey_label = passkey_name(&body.name)?;
            let Ceremony::Create {
                username,
                handle,
                state: registration,
                ..
            } = take_ceremony(&state, &call.auth, |c| matches!(c, Ceremony::Create { .. })).await?
            else {
                return Err(no_ceremony());
            };
            let name = names::new_name(&username)?;
            let passkey = state
                .passkeys
                .webauthn
                .finish_passkey_registration(&body.credential, &registration)
                .map_err(|error| refused("registration", error))?;
            let stored = to_store(&passkey, &body.credential, passkey_label)?;
            let (user, passkey_id) = state
                .backend
                .register_with_passkey(&name, handle.to_string(), stored)
                .await?;
            audit::record(
                &state.db,
                audit::Event::AccountCreated,
                Some(user.id),
                None,
                call.meta.ip,
            )
            .await;
            let via = Via::Passkey(SessionPasskey { id: passkey_id });
            lifecycle::start_session(&mut call.auth, &user, &state, &call.meta, via).await?;
            Ok(User::from(&user))
        }
        .await,
    )
}

/// `POST /api/passkeys/confirm/start`: the options to confirm who you are with one of the
/// signed-in account's passkeys (`stepup`). 400 if it has none.
pub async fn confirm_start(State(state): State<Signoff>, request: Request) -> Response {
    answer(
        async {
            let call = Call::of(&state, request).await?;
            let user = crate::require_user(&call.auth)?;
            let passkeys = rows_of(&state.db, user.id)
                .await?
                .iter()
                .map(Row::passkey)
                .collect::<Result<Vec<_>, _>>()?;
            if passkeys.is_empty() {
                return Err(AppError::invalid_input("This account has no passkey."));
            }
            let (options, authentication) = state
                .passkeys
                .webauthn
                .start_passkey_authentication(&passkeys)
                .map_err(ceremony_error)?;
            set_ceremony(&state, &call.auth, |ticket| Ceremony::Confirm {
                ticket,
                user_id: user.id,
                state: authentication,
            })
            .await?;
            Ok(options)
        }
        .await,
    )
}

/// `POST /api/passkeys/confirm/finish` `{"credential": {…}}`: a passkey of this account proved
/// who is here; the session may change the ways in for `STEP_UP_MAX_AGE`.
pub async fn confirm_finish(State(state): State<Signoff>, request: Request) -> Response {
    answer(
        async {
            let call = Call::of(&state, request).await?;
            let user = crate::require_user(&call.auth)?;
            let credential: PublicKeyCredential = credential_of(&call)?;
            let Ceremony::Confirm {
                user_id,
                state: authentication,
                ..
            } = take_ceremony(&state, &call.auth, |c| {
                matches!(c, Ceremony::Confirm { .. })
            })
            .await?
            else {
                return Err(no_ceremony());
            };
            if user_id != user.id {
                return Err(no_ceremony());
            }
            let buckets = throttle::passkey_buckets(&state.throttle, call.meta.ip);
            let reservation = throttle::reserve(&state.db, &state.throttle, &buckets).await?;
            let owner = Owner::Account(user.id);
            let Some(row) = row_by_credential(&state.db, &credential.raw_id, owner).await? else {
                return Err(not_recognised());
            };
            let result = state
                .passkeys
                .webauthn
                .finish_passkey_authentication(&credential, &authentication)
                .map_err(|error| refused("confirmation", error))?;
            record_use(&state.db, &row, &result).await?;
            reservation.succeeded(&state.db).await;
            stepup::proved(&call.auth.session).await?;
            Ok(serde_json::json!({ "confirmed": true }))
        }
        .await,
    )
}

// ---- The ceremony's single use --------------------------------------------------------------

async fn new_ticket(db: &Database) -> Result<String, AppError> {
    let ticket = crate::oidc::random_token(24)?;
    let expires = now_ms() + CEREMONY_TIMEOUT.as_millis() as i64;
    on_db!(db, |pool| {
        sqlx::query("INSERT INTO passkey_ceremonies (id, expires_ms) VALUES ($1, $2)")
            .bind(&ticket)
            .bind(expires)
            .execute(pool)
            .await
            .map(|_| ())
    })?;
    Ok(ticket)
}

/// Uses a ticket: true for the one caller that deleted its unexpired row.
async fn use_ticket(db: &Database, ticket: &str) -> Result<bool, AppError> {
    let used = on_db!(db, |pool| {
        sqlx::query("DELETE FROM passkey_ceremonies WHERE id = $1 AND expires_ms > $2")
            .bind(ticket)
            .bind(now_ms())
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(used == 1)
}

/// Starts a ceremony in this session, replacing any other in progress: `ceremony` makes it
/// with its new single-use ticket.
async fn set_ceremony(
    state: &Signoff,
    auth: &AuthSession,
    ceremony: impl FnOnce(String) -> Ceremony,
) -> Result<(), AppError> {
    let ticket = new_ticket(&state.db).await?;
    if let Ok(Some(previous)) = auth.session.remove::<Ceremony>(CEREMONY_KEY).await {
        use_ticket(&state.db, previous.ticket()).await?;
    }
    auth.session.insert(CEREMONY_KEY, ceremony(ticket)).await?;
    Ok(())
}

/// Takes this session's ceremony out, if it is the kind `wanted`, and uses its ticket. Anything
/// else (none, another kind, a ticket used or expired) is 400: start again.
async fn take_ceremony(
    state: &Signoff,
    auth: &AuthSession,
    wanted: impl Fn(&Ceremony) -> bool,
) -> Result<Ceremony, AppError> {
    let ceremony = auth
        .session
        .get::<Ceremony>(CEREMONY_KEY)
        .await
        .ok()
        .flatten()
        .filter(|ceremony| wanted(ceremony))
        .ok_or_else(no_ceremony)?;
    auth.session.remove_value(CEREMONY_KEY).await?;
    if !use_ticket(&state.db, ceremony.ticket()).await? {
        tracing::info!("a passkey ceremony was finished twice, or too late");
        return Err(no_ceremony());
    }
    Ok(ceremony)
}

// ---- Storage --------------------------------------------------------------------------------

async fn rows_of(db: &Database, user_id: i64) -> Result<Vec<Row>, AppError> {
    Ok(on_db!(db, |pool| {
        sqlx::query_as(select_rows!("WHERE p.user_id = $1 ORDER BY p.id"))
            .bind(user_id)
            .fetch_all(pool)
            .await
    })?)
}

async fn row(db: &Database, user_id: i64, id: i64) -> Result<Option<Row>, AppError> {
    Ok(on_db!(db, |pool| {
        sqlx::query_as(select_rows!("WHERE p.id = $1 AND p.user_id = $2"))
            .bind(id)
            .bind(user_id)
            .fetch_optional(pool)
            .await
    })?)
}

/// Whose passkey a credential must be.
enum Owner {
    /// The account with this WebAuthn user handle: a credential presented with another
    /// account's handle is not that account's (sign-in, where the authenticator names it).
    Handle(Uuid),
    /// The signed-in account (confirming who is there).
    Account(i64),
}

/// The passkey with this credential id, if it is `owner`'s.
async fn row_by_credential(
    db: &Database,
    credential_id: &[u8],
    owner: Owner,
) -> Result<Option<Row>, AppError> {
    let key = credential_key(credential_id);
    let sql = match owner {
        Owner::Handle(_) => select_rows!(
            "JOIN users u ON u.id = p.user_id \
             WHERE p.credential_id = $1 AND u.webauthn_handle = $2"
        ),
        Owner::Account(_) => select_rows!("WHERE p.credential_id = $1 AND p.user_id = $2"),
    };
    Ok(on_db!(db, |pool| {
        let query = sqlx::query_as(sql).bind(&key);
        match &owner {
            Owner::Handle(handle) => query.bind(handle.to_string()),
            Owner::Account(user_id) => query.bind(*user_id),
        }
        .fetch_optional(pool)
        .await
    })?)
}

/// The account's WebAuthn user handle, made at its first passkey.
async fn handle_of(db: &Database, user_id: i64) -> Result<Uuid, AppError> {
    let fresh = Uuid::new_v4().to_string();
    // Set only if unset: two first passkeys at once agree on one handle.
    on_db!(db, |pool| {
        sqlx::query(
            "UPDATE users SET webauthn_handle = $1 WHERE id = $2 AND webauthn_handle IS NULL",
        )
        .bind(&fresh)
        .bind(user_id)
        .execute(pool)
        .await
        .map(|_| ())
    })?;
    let stored: Option<String> = on_db!(db, |pool| {
        sqlx::query_scalar("SELECT webauthn_handle FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_one(pool)
            .await
    })?;
    stored
        .and_then(|text| Uuid::parse_str(&text).ok())
        .ok_or_else(AppError::internal)
}

/// Adds `passkey` to `user_id`'s account. Returns its row.
async fn insert(db: &Database, user_id: i64, passkey: &NewPasskey) -> Result<Row, AppError> {
    let inserted = on_db!(db, |pool| async {
        let mut connection = pool.acquire().await?;
        passkey.insert((&mut *connection).into(), user_id).await
    }
    .await);
    let id = match inserted {
        Ok(id) => id,
        // The same credential registered before, to this account or another.
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
            return Err(AppError::invalid_input(
                "This passkey is registered already.",
            ))
        }
        Err(error) => return Err(error.into()),
    };
    row(db, user_id, id).await?.ok_or_else(AppError::internal)
}

/// What [`delete`] came to.
enum Deleted {
    Done(String),
    NotFound,
    LastWayIn,
}

/// Deletes one of the account's passkeys while another way in remains. The account's row is
/// locked first, as `oidc::identities::unlink` does: two removals at once (of two passkeys, or a
/// passkey and a provider) cannot each leave the other as the last way in.
async fn delete(db: &Database, user_id: i64, id: i64) -> Result<Deleted, AppError> {
    Ok(on_db!(db, |pool| async {
        let mut tx = pool.begin().await?;
        sqlx::query("UPDATE users SET failed_logins = failed_logins WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let name: Option<String> =
            sqlx::query_scalar("SELECT name FROM passkeys WHERE id = $1 AND user_id = $2")
                .bind(id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(name) = name else {
            return Ok(Deleted::NotFound);
        };
        let others: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM passkeys WHERE user_id = $1 AND id <> $2) \
             + (SELECT COUNT(*) FROM oidc_identities WHERE user_id = $1) \
             + (SELECT COUNT(*) FROM users WHERE id = $1 AND password_hash <> '')",
        )
        .bind(user_id)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if others == 0 {
            return Ok(Deleted::LastWayIn);
        }
        sqlx::query("DELETE FROM passkeys WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<Deleted, sqlx::Error>(Deleted::Done(name))
    }
    .await)?)
}

/// How many passkeys an account has (its ways in).
pub async fn count(db: &Database, user_id: i64) -> Result<i64, sqlx::Error> {
    on_db!(db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM passkeys WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(pool)
            .await
    })
}

/// Records a successful use: the new signature counter and the credential's state. A counter
/// that did not go up (while either is non-zero) is a cloned authenticator, refused: the check
/// is in the UPDATE itself, so two uses with the same counter at once cannot both pass.
async fn record_use(
    db: &Database,
    row: &Row,
    result: &AuthenticationResult,
) -> Result<(), AppError> {
    let mut passkey = row.passkey()?;
    passkey.update_credential(result);
    let stored = serde_json::to_string(&passkey).map_err(|_| AppError::internal())?;
    let counter = i64::from(result.counter());
    let now = now_ms();
    let updated = on_db!(db, |pool| {
        sqlx::query(
            "UPDATE passkeys SET passkey = $1, sign_count = $2, last_used_ms = $3 \
             WHERE id = $4 AND (($2 = 0 AND sign_count = 0) OR sign_count < $2)",
        )
        .bind(&stored)
        .bind(counter)
        .bind(now)
        .bind(row.id)
        .execute(pool)
        .await?
        .rows_affected()
    });
    if updated == 0 {
        tracing::warn!(
            user_id = row.user_id,
            passkey = row.id,
            stored = row.sign_count,
            presented = counter,
            "refused a passkey whose signature counter did not go up: a cloned authenticator?"
        );
        return Err(not_recognised());
    }
    Ok(())
}

async fn user_of(state: &Signoff, user_id: i64) -> Result<UserRecord, AppError> {
    use axum_login::AuthnBackend;
    state
        .backend
        .get_user(&user_id)
        .await?
        .ok_or_else(not_recognised)
}

async fn audit_failure(state: &Signoff, row: &Row, meta: &RequestMeta) {
    audit::record_detail(
        &state.db,
        audit::Event::LoginFailed,
        Some(row.user_id),
        None,
        meta.ip,
        Some("passkey"),
    )
    .await;
}

// ---- Small pieces ---------------------------------------------------------------------------

/// How a credential id is stored and looked up: base64url, no padding.
fn credential_key(id: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

/// The registration options, asking for a discoverable credential: signing in with a passkey
/// names no account, so the authenticator must keep the account's handle with the credential.
/// (webauthn-rs asks for a server-side credential by default; what the server verifies does not
/// change.)
fn discoverable(mut options: CreationChallengeResponse) -> CreationChallengeResponse {
    use webauthn_rs_proto::{ResidentKeyRequirement, UserVerificationPolicy};
    let selection = options
        .public_key
        .authenticator_selection
        .get_or_insert_with(Default::default);
    selection.resident_key = Some(ResidentKeyRequirement::Required);
    selection.require_resident_key = true;
    selection.user_verification = UserVerificationPolicy::Required;
    options
}

/// What is stored of a newly registered passkey: webauthn-rs's serialised form, its credential
/// id, its name, and its kind as far as the registration tells: a security key (USB, NFC,
/// Bluetooth), a passkey synced between devices (backup eligible), or one kept on this device.
fn to_store(
    passkey: &Passkey,
    credential: &RegisterPublicKeyCredential,
    name: String,
) -> Result<NewPasskey, AppError> {
    use webauthn_rs_proto::AuthenticatorTransport as T;
    // The credential's flags are not public in webauthn-rs; its serialised form has them.
    let serialised = serde_json::to_value(passkey).map_err(|_| AppError::internal())?;
    let transports = credential
        .response
        .transports
        .as_deref()
        .unwrap_or_default();
    let kind = if transports
        .iter()
        .any(|t| matches!(t, T::Usb | T::Nfc | T::Ble))
    {
        Some("Security key".into())
    } else {
        let synced = serialised.pointer("/cred/backup_eligible");
        synced
            .and_then(serde_json::Value::as_bool)
            .map(|synced| match synced {
                true => "Synced passkey".into(),
                false => "This device only".into(),
            })
    };
    Ok(NewPasskey {
        credential_id: credential_key(passkey.cred_id()),
        passkey: serialised.to_string(),
        name,
        kind,
    })
}

fn passkey_name(typed: &str) -> Result<String, AppError> {
    let name = typed.trim();
    if name.chars().any(char::is_control) {
        return Err(AppError::invalid_input(
            "A passkey's name cannot contain control characters.",
        ));
    }
    if name.chars().count() > NAME_MAX_CHARS {
        return Err(AppError::invalid_input(format!(
            "A passkey's name can be at most {NAME_MAX_CHARS} characters."
        )));
    }
    Ok(match name.is_empty() {
        true => "Passkey".into(),
        false => name.to_owned(),
    })
}

fn credential_of(call: &Call) -> Result<PublicKeyCredential, AppError> {
    #[derive(Deserialize)]
    struct Body {
        credential: PublicKeyCredential,
    }
    call.json::<Body>().map(|body| body.credential)
}

fn no_ceremony() -> AppError {
    AppError::invalid_input(
        "This passkey request has expired or was already used. Please try again.",
    )
}

fn not_recognised() -> AppError {
    AppError::new(
        crate::ErrorCode::InvalidCredentials,
        "That passkey was not recognised. Try another way to sign in.",
    )
}

/// A ceremony could not start: the server's fault.
fn ceremony_error(error: WebauthnError) -> AppError {
    tracing::error!(%error, "could not start a passkey ceremony");
    AppError::internal()
}

/// The browser's answer failed verification: the client's fault, logged with the reason.
fn refused(what: &str, error: WebauthnError) -> AppError {
    tracing::warn!(%error, "refused a passkey {what}");
    match what {
        "registration" => {
            AppError::invalid_input("The passkey could not be verified. Please try again.")
        }
        _ => not_recognised(),
    }
}
