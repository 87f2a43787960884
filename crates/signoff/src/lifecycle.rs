//! Where sessions start and end. **This is where logout happens**: every way a session ends is
//! one function here, from the deleted rows to the cookie removal and the news sent to the
//! session's other open pages, and the one sequence they share is [`end_session`]:
//!
//! | way | function | server function (`auth/logout.rs`, `auth/account.rs`) |
//! |---|---|---|
//! | Sign out | [`sign_out`] | `POST /api/logout` |
//! | Sign out everywhere | [`sign_out_everywhere`] | `POST /api/logout_all` |
//! | Sign out one session | [`revoke`] | `POST /api/revoke_session` |
//! | Sign out of the provider too | [`sign_out_of_provider_too`] | `POST /api/logout_provider` |
//! | A password change ends the others | [`password_changed`] | `POST /api/change_password` |
//! | A password reset ends them all | [`password_reset`] | `POST /api/password/reset` (`pages.rs`) |
//! | Unlinking a provider, or removing a passkey, ends the sessions signed in with it | [`way_in_removed`] | `POST /api/unlink_provider`, `POST /api/passkeys/remove` (`passkeys.rs`) |
//! | The provider ends sessions | [`end_provider_sessions`] | `POST /api/oidc/<id>/backchannel-logout` |
//! | Signing in as someone else replaces the session | [`start_session`] | sign-in, registration, single sign-on, passkeys |
//!
//! These are plain functions of the request's [`AuthSession`], the [`Signoff`] and the client's
//! [`RequestMeta`]: no Leptos context. What the response must carry when the request's own session
//! ends (the removal cookie and `Clear-Site-Data`) is returned in [`Ended::headers`]; the server
//! functions apply it. How the news reaches other tabs and devices is `live.rs`; the provider's
//! logout token is checked in `ssr/oidc/backchannel.rs`.

use http::{header, HeaderName, HeaderValue};

use super::{
    audit,
    backend::PasswordCommit,
    hub::SessionsEnded,
    notices,
    oidc::{self, SessionProvider},
    AuthSession, RequestMeta, UserRecord,
};
use crate::wire::EndReason;
use crate::{
    error::AppError,
    session::{self, WayIn},
    signoff::Signoff,
    stepup,
};

/// How a person signed in, remembered by the session: a provider's session can be ended by the
/// provider or by unlinking it, a passkey's by removing the passkey.
#[derive(Debug)]
pub enum Via {
    /// A password (or a new account's first sign-in).
    Password,
    /// An OpenID Provider (`oidc::flow`).
    Provider(SessionProvider),
    /// A passkey (`passkeys`).
    Passkey(session::SessionPasskey),
}

/// Signs `user` in on a session with a new id, and records it, with how they signed in.
pub async fn start_session(
    auth: &mut AuthSession,
    user: &UserRecord,
    state: &Signoff,
    meta: &RequestMeta,
    via: Via,
) -> Result<(), AppError> {
    // A new id at every sign-in defeats session fixation. axum-login re-keys only a session that is
    // not yet authenticated, so signing in as B over A's session would keep A's id: when the
    // request came with a session, re-key it here. (A new visitor's session is re-keyed by
    // axum-login itself.)
    // The session being replaced, if it belonged to someone else: its open pages (other tabs of
    // this browser) must hear that it ended, or they would go on showing the previous user.
    let replaced = auth
        .user
        .as_ref()
        .filter(|previous| previous.id != user.id)
        .map(|previous| previous.id)
        .zip(super::current_handle(auth));
    if auth.session.id().is_some() {
        auth.session.cycle_id().await?;
    }
    auth.login(user).await?;
    session::mark_started(&auth.session, &state.sessions, meta.user_agent.as_deref()).await?;
    // Every sign-in is a proof of identity (`stepup`).
    stepup::proved(&auth.session).await?;
    // The session keeps its data across the new id: what a previous provider or passkey
    // sign-in left in it must not outlive this sign-in.
    auth.session.remove_value(oidc::SESSION_KEY).await?;
    auth.session.remove_value(session::PASSKEY_KEY).await?;
    let detail = match via {
        Via::Password => None,
        Via::Provider(via) => {
            let name = state.oidc.name_of(&via.provider);
            auth.session.insert(oidc::SESSION_KEY, via).await?;
            Some(name)
        }
        Via::Passkey(passkey) => {
            auth.session.insert(session::PASSKEY_KEY, passkey).await?;
            Some("a passkey".to_owned())
        }
    };
    if let Some((previous_user, handle)) = replaced {
        state
            .events
            .publish(SessionsEnded::one(
                previous_user,
                handle.clone(),
                Some(handle),
                EndReason::Replaced,
            ))
            .await;
    }
    // The new id is only assigned when the session is saved, after this function; the audit
    // trail links later events of this session by its tag from then on.
    audit::record_detail(
        &state.db,
        audit::Event::LoginSucceeded,
        Some(user.id),
        None,
        meta.ip,
        detail.as_deref(),
    )
    .await;
    Ok(())
}

/// Who and which session [`end_session`] ended, and what the response must carry.
#[derive(Debug, Default)]
pub struct Ended {
    /// Who was signed in to the ended session, if anyone.
    pub user_id: Option<i64>,
    /// The public handle of the session, if there was one.
    pub handle: Option<String>,
    /// The hashed tag of the session (for logs and the audit trail), if there was one.
    pub tag: Option<String>,
    /// Headers for the response to this request: the removal cookie and `Clear-Site-Data` when
    /// the request's own session ended, nothing when another session did.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// The whole sign-out sequence for the session in hand, in order:
///
/// 1. **Log the user out** (axum-login): the user is dropped from this request.
/// 2. **Destroy the session**: axum-login's `logout` is tower-sessions' `flush`, which empties the
///    session, `DELETE`s its row and forgets its id, so nothing later in this request can save it
///    again (and the store never re-creates a deleted row; see `session::Store`).
/// 3. **Clear the cookie**: a removal `Set-Cookie` with the same name, `Path` and attributes
///    (`Secure` in the secure mode, which a `__Host-` name needs or browsers ignore it), an empty
///    value and `Max-Age=0`: `session::removal_cookie`. It is sent whether or not the request's
///    cookie was read (a request with two session cookies has none, yet its sign-out must clear
///    the one it owns). The session layer, seeing the session emptied, queues a removal of its
///    own; `session::session_cookie_on_the_wire` makes sure one well-formed removal goes out.
///    `Clear-Site-Data: "cookies", "storage"` tells the browser to drop the rest of the site's
///    cookies and storage too (not `"cache"`: Chrome stalls on it). Each of the two is enough on
///    its own: a proxy may strip `Clear-Site-Data`, and an old browser ignores it. Both are in
///    [`Ended::headers`], for the caller to send.
/// 4. **Tell the session's other pages** (other tabs holding the same cookie, on any instance):
///    their event streams get `session-ended` with `reason`.
///
/// If step 2 fails the error is returned before step 3: the session still exists on the server,
/// and the client must hear that sign-out failed rather than see its cookie vanish.
pub async fn end_session(
    auth: &mut AuthSession,
    state: &Signoff,
    reason: EndReason,
) -> Result<Ended, AppError> {
    let tag = auth.session.id().map(|id| session::tag(&id));
    let handle = super::current_handle(auth);

    let user = auth.logout().await?;

    let headers = vec![
        (header::SET_COOKIE, session::removal_cookie(&state.sessions)),
        (
            HeaderName::from_static("clear-site-data"),
            HeaderValue::from_static("\"cookies\", \"storage\""),
        ),
    ];
    tracing::info!(
        user_id = user.as_ref().map(|user| user.id),
        session = tag.as_deref().unwrap_or("none"),
        "signed out"
    );
    if let (Some(user), Some(handle)) = (&user, &handle) {
        state
            .events
            .publish(SessionsEnded::one(
                user.id,
                handle.clone(),
                Some(handle.clone()),
                reason,
            ))
            .await;
    }
    Ok(Ended {
        user_id: user.map(|user| user.id),
        handle,
        tag,
        headers,
    })
}

/// Sign out: ends the session in hand. Idempotent: with no session there is nothing to end, and
/// the removal cookie goes out all the same.
pub async fn sign_out(
    auth: &mut AuthSession,
    state: &Signoff,
    meta: &RequestMeta,
) -> Result<Ended, AppError> {
    let ended = end_session(auth, state, EndReason::SignedOut).await?;
    if let Some(user_id) = ended.user_id {
        audit::record(
            &state.db,
            audit::Event::Logout,
            Some(user_id),
            ended.tag.as_deref(),
            meta.ip,
        )
        .await;
    }
    Ok(ended)
}

/// Sign out everywhere: every session of `user` ends, this one included.
pub async fn sign_out_everywhere(
    auth: &mut AuthSession,
    state: &Signoff,
    user: &UserRecord,
    meta: &RequestMeta,
) -> Result<Ended, AppError> {
    let others = state.store.delete_for_user(user.id, None).await?;
    let ended = end_session(auth, state, EndReason::SignedOutEverywhere).await?;
    // This session's pages were told by `end_session`; now every other session's.
    state
        .events
        .publish(SessionsEnded::all_but(
            user.id,
            ended.handle.clone(),
            EndReason::SignedOutEverywhere,
        ))
        .await;
    tracing::info!(
        user_id = user.id,
        sessions = others,
        "signed out everywhere"
    );
    audit::record(
        &state.db,
        audit::Event::LogoutEverywhere,
        Some(user.id),
        ended.tag.as_deref(),
        meta.ip,
    )
    .await;
    Ok(ended)
}

/// Ends one of `user`'s sessions by its public handle. The session in hand is signed out, cookie
/// and all; another one is deleted and its pages told. 404 for a handle that is not one of the
/// user's live sessions.
pub async fn revoke(
    auth: &mut AuthSession,
    state: &Signoff,
    user: &UserRecord,
    handle: &str,
    meta: &RequestMeta,
) -> Result<Ended, AppError> {
    let tag = handle.get(..16).map(str::to_owned);
    let current = super::current_handle(auth);
    let ended = if current.as_deref() == Some(handle) {
        end_session(auth, state, EndReason::Revoked).await?
    } else if state.store.delete_by_handle(user.id, handle).await? {
        state
            .events
            .publish(SessionsEnded::one(
                user.id,
                handle.to_owned(),
                current,
                EndReason::Revoked,
            ))
            .await;
        Ended::default()
    } else {
        return Err(AppError::not_found("session"));
    };
    audit::record(
        &state.db,
        audit::Event::SessionRevoked,
        Some(user.id),
        tag.as_deref(),
        meta.ip,
    )
    .await;
    Ok(ended)
}

/// "Sign out of NAME too": ends the session in hand exactly as [`sign_out`] does, before anything
/// is asked of the provider, then returns the provider's `end_session_endpoint` URL (with
/// `id_token_hint` and the registered `post_logout_redirect_uri`) for the browser to go to.
/// `None` when the session did not come from a provider, or the provider cannot be reached or has
/// no such endpoint: the session is ended all the same.
pub async fn sign_out_of_provider_too(
    auth: &mut AuthSession,
    state: &Signoff,
    meta: &RequestMeta,
) -> Result<(Ended, Option<String>), AppError> {
    // Read before the session's data is destroyed with it.
    let via = auth
        .session
        .get::<SessionProvider>(oidc::SESSION_KEY)
        .await?;
    // The session ends first, always: the provider may be slow or down (its discovery document
    // fetched on the way), and a client that gives up meanwhile must not leave it alive.
    let ended = end_session(auth, state, EndReason::SignedOut).await?;
    let url = match &via {
        Some(via) => oidc::flow::end_session_url(&state.oidc, via).await,
        None => None,
    };
    if let Some(user_id) = ended.user_id {
        let name = via.as_ref().map(|via| state.oidc.name_of(&via.provider));
        audit::record_detail(
            &state.db,
            if url.is_some() {
                audit::Event::LogoutAtProvider
            } else {
                audit::Event::Logout
            },
            Some(user_id),
            ended.tag.as_deref(),
            meta.ip,
            name.as_deref(),
        )
        .await;
    }
    Ok((ended, url))
}

/// A changed password (already checked and hashed into `updated`): the new hash and stamp and
/// the end of every other session in one transaction, so the answer (200, or 503 "nothing was
/// changed") is the truth; then their pages are told, and this session continues under a new id
/// (the privilege changed) with its deadline kept (re-keying must not extend it).
pub async fn password_changed(
    auth: &mut AuthSession,
    state: &Signoff,
    updated: &UserRecord,
    meta: &RequestMeta,
) -> Result<(), AppError> {
    let keep = super::current_handle(auth);
    let origin = notices::Origin::of(&state.recovery.site, meta);
    let notice = |to: &str| notices::password_changed(to, &updated.username, &origin);
    let ended = auth
        .backend
        .commit_password(
            updated,
            PasswordCommit {
                keep: keep.as_deref(),
                notice: Some((state.mailer.from(), &notice)),
                ..PasswordCommit::default()
            },
        )
        .await?
        .unwrap_or(0);
    state.mailer.wake();
    state
        .events
        .publish(SessionsEnded::all_but(
            updated.id,
            keep.clone(),
            EndReason::PasswordChanged,
        ))
        .await;
    auth.session.cycle_id().await?;
    auth.login(updated).await?;
    session::keep_deadline(&auth.session, &state.sessions).await?;
    // The current password (or, for a first one, a fresh proof) was just given.
    stepup::proved(&auth.session).await?;
    tracing::info!(
        user_id = updated.id,
        other_sessions_ended = ended,
        "password changed"
    );
    audit::record(
        &state.db,
        audit::Event::PasswordChanged,
        Some(updated.id),
        keep.as_deref().and_then(|h| h.get(..16)),
        meta.ip,
    )
    .await;
    Ok(())
}

/// A password reset through a mailed link (the token and the new password are checked by
/// `recovery::reset`, which hashed it into `updated`): the new hash and stamp, the token used,
/// every session of the account deleted and the notice written, in one transaction; then every
/// open page of the account, on every instance, hears "Your password was reset", and the person
/// who reset it is signed in on a new session. `None` when the token could not be used (used or
/// expired meanwhile): nothing changed.
pub async fn password_reset(
    auth: &mut AuthSession,
    state: &Signoff,
    updated: &UserRecord,
    token: &str,
    meta: &RequestMeta,
) -> Result<Option<()>, AppError> {
    let origin = notices::Origin::of(&state.recovery.site, meta);
    let notice = |to: &str| notices::password_reset(to, &updated.username, &origin);
    let Some(ended) = auth
        .backend
        .commit_password(
            updated,
            PasswordCommit {
                keep: None,
                reset_token: Some(token),
                notice: Some((state.mailer.from(), &notice)),
            },
        )
        .await?
    else {
        return Ok(None);
    };
    state.mailer.wake();
    state
        .events
        .publish(SessionsEnded::all_but(
            updated.id,
            None,
            EndReason::PasswordReset,
        ))
        .await;
    tracing::info!(
        user_id = updated.id,
        sessions_ended = ended,
        "password reset"
    );
    audit::record(
        &state.db,
        audit::Event::PasswordReset,
        Some(updated.id),
        None,
        meta.ip,
    )
    .await;
    start_session(auth, updated, state, meta, Via::Password).await?;
    Ok(Some(()))
}

/// A way in was removed from `user_id`'s account by the session in hand (a provider unlinked,
/// a passkey removed; `name` is what people call it): every other session signed in with it
/// ends, on every instance, and their open pages reset saying which. The session that removed
/// it stays (it has just proved who it is). Returns how many ended.
pub async fn way_in_removed(
    auth: &AuthSession,
    state: &Signoff,
    user_id: i64,
    way_in: WayIn<'_>,
    name: &str,
) -> Result<usize, AppError> {
    let keep = super::current_handle(auth);
    let ended = state
        .store
        .delete_signed_in_with(user_id, way_in, keep.as_deref())
        .await?;
    let reason = match way_in {
        WayIn::Provider(_) => EndReason::ProviderUnlinked,
        WayIn::Passkey(_) => EndReason::PasskeyRemoved,
    };
    for handle in &ended {
        state
            .events
            .publish(SessionsEnded::way_in_removed(
                user_id,
                handle.clone(),
                keep.clone(),
                reason,
                name.to_owned(),
            ))
            .await;
    }
    tracing::info!(
        user_id,
        ?way_in,
        sessions = ended.len(),
        "a way in was removed; its sessions ended"
    );
    Ok(ended.len())
}

/// What a back-channel logout ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ProviderEnded {
    /// The token's `jti` was used before: nothing was ended.
    Replayed,
    /// These sessions ended (possibly none: the person had signed out here already).
    Sessions(usize),
}

/// The provider ended sessions (OpenID Connect Back-Channel Logout; the token has been checked
/// by `ssr::oidc::backchannel`). Deletes the sessions it names and remembers its `jti` in one
/// transaction, then tells their open pages, on every instance, through the same path as every
/// other end: their event streams get `session-ended` with the provider's name. Nobody's cookie
/// is touched here: the browsers are not part of this request, and their next request finds no
/// session.
pub async fn end_provider_sessions(
    state: &Signoff,
    provider: &oidc::Provider,
    logout: &session::ProviderLogout<'_>,
) -> Result<ProviderEnded, AppError> {
    let Some(ended) = state.store.delete_for_provider_logout(logout).await? else {
        return Ok(ProviderEnded::Replayed);
    };
    let name = &provider.settings.name;
    for (user_id, handle) in &ended {
        state
            .events
            .publish(SessionsEnded::by_provider(
                *user_id,
                handle.clone(),
                name.clone(),
            ))
            .await;
    }
    let mut users: Vec<i64> = ended.iter().map(|(user_id, _)| *user_id).collect();
    users.sort_unstable();
    users.dedup();
    for user_id in users {
        audit::record_detail(
            &state.db,
            audit::Event::ProviderLogout,
            Some(user_id),
            None,
            None,
            Some(name),
        )
        .await;
    }
    tracing::info!(
        provider = %provider.settings.id,
        sessions = ended.len(),
        "provider ended sessions (back-channel logout)"
    );
    Ok(ProviderEnded::Sessions(ended.len()))
}
