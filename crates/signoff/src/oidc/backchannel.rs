//! `POST /api/oidc/<id>/backchannel-logout`: the provider tells Signoff that a person's session
//! there ended (OpenID Connect Back-Channel Logout 1.0). A server-to-server call with a signed
//! logout token in a form body, no cookie and no browser: it is exempt from the cross-site guard
//! (`server/src/hardening.rs`) and from nothing else (body cap, timeouts, connection cap).
//!
//! The token is checked completely (`token::check_logout_token`), its `jti` may be used once
//! across all instances, and the sessions it names end through `auth/logout.rs`, which also
//! pushes the end to their open pages. Answers as §2.8 says: 200 when done (also when no session
//! matched: the person may have signed out here already), 400 with an OAuth error body for a
//! token that is refused; always `Cache-Control: no-store`.

use axum::{
    extract::{FromRequest, Path, Request, State},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Form, Json,
};
use serde::{Deserialize, Serialize};

use super::{identities, token, VerifyError};
use crate::{
    lifecycle::{end_provider_sessions, ProviderEnded},
    now_ms,
    session::{ProviderLogout, ProviderSessions},
    signoff::Signoff,
};

#[derive(Deserialize)]
struct LogoutRequest {
    logout_token: String,
}

/// The error body of §2.8 (OAuth 2.0's `error` and `error_description`).
#[derive(Debug, Serialize)]
struct LogoutError {
    error: &'static str,
    error_description: String,
}

/// How the endpoint can fail, each with its status: the one mapping for this endpoint, whose
/// error format is the spec's rather than `AppError`'s.
#[derive(Debug)]
enum Refusal {
    /// A missing or refused token, or a replay (400).
    Invalid(String),
    /// No such provider here (404).
    UnknownProvider,
    /// The provider's keys or the database could not be reached; the token was not judged (503).
    Unavailable,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, error, description) = match self {
            Refusal::Invalid(description) => {
                (StatusCode::BAD_REQUEST, "invalid_request", description)
            }
            Refusal::UnknownProvider => (
                StatusCode::NOT_FOUND,
                "invalid_request",
                "no such identity provider here".to_owned(),
            ),
            Refusal::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the logout could not be processed now; nothing was changed".to_owned(),
            ),
        };
        no_store(
            (
                status,
                Json(LogoutError {
                    error,
                    error_description: description,
                }),
            )
                .into_response(),
        )
    }
}

/// `POST /api/oidc/<id>/backchannel-logout`: the provider's logout call (OpenID Connect Back-Channel Logout 1.0). 200 when the token is valid, whatever it ended; 400 with an error body otherwise.
pub async fn logout(
    State(state): State<Signoff>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    match handle(&state, &id, request).await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(refusal) => refusal.into_response(),
    }
}

async fn handle(state: &Signoff, id: &str, request: Request) -> Result<(), Refusal> {
    let provider = state.oidc.get(id).ok_or(Refusal::UnknownProvider)?;
    let Form(LogoutRequest { logout_token }) = Form::<LogoutRequest>::from_request(request, state)
        .await
        .map_err(|_| {
            Refusal::Invalid(
                "expected a form body (application/x-www-form-urlencoded) with logout_token".into(),
            )
        })?;
    let refuse = |error: token::TokenError| {
        tracing::warn!(provider = %id, %error, "refused a logout token");
        Refusal::Invalid(error.to_string())
    };
    let (header, claims) = provider
        .verify(&logout_token)
        .await
        .map_err(|error| match error {
            VerifyError::Token(error) => refuse(error),
            VerifyError::Provider(error) => {
                tracing::warn!(provider = %id, %error, "could not load the provider's keys");
                Refusal::Unavailable
            }
        })?;
    let claims = token::check_logout_token(
        &header,
        &claims,
        &provider.settings.issuer,
        &provider.settings.client_id,
        now_ms() / 1000,
    )
    .map_err(refuse)?;

    let user_id = match &claims.subject {
        Some(subject) => identities::user_id_of(&state.db, &provider.settings.issuer, subject)
            .await
            .map_err(|error| {
                tracing::error!(%error, "could not look up the identity of a logout token");
                Refusal::Unavailable
            })?,
        None => None,
    };
    let logout = ProviderLogout {
        issuer: &provider.settings.issuer,
        jti: &claims.jti,
        remember_until_ms: claims.usable_until.saturating_mul(1000),
        target: ProviderSessions {
            provider: id,
            sid: claims.sid.as_deref(),
            user_id,
            subject_given: claims.subject.is_some(),
        },
    };
    match end_provider_sessions(state, provider, &logout).await {
        Ok(ProviderEnded::Sessions(_)) => Ok(()),
        Ok(ProviderEnded::Replayed) => {
            tracing::warn!(provider = %id, "refused a replayed logout token");
            Err(Refusal::Invalid("the logout token was already used".into()))
        }
        Err(_) => Err(Refusal::Unavailable),
    }
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
