//! The one error type of Signoff's server functions, and the one place that maps it to an HTTP status.
//!
//! On the wire an error is JSON: `{"code":"invalid_input","message":"…"}`. The `code` is the stable
//! contract for programs; the `message` is written for people and shown as is in the UI.

use serde::{Deserialize, Serialize};
#[cfg(feature = "server-fn")]
use server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
    Bytes, Encodes,
};

/// What went wrong, as a client can act on it. Each code has exactly one HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request was malformed or a field failed validation (400).
    InvalidInput,
    /// Nobody is signed in, but the call needs a user (401).
    NotSignedIn,
    /// Wrong username or password; deliberately says no more than that (401).
    InvalidCredentials,
    /// The username is already registered (409).
    UsernameTaken,
    /// The current password given to confirm a change is wrong (400).
    WrongPassword,
    /// A cross-site request to a state-changing endpoint (403).
    CrossSite,
    /// The change needs a fresh proof of identity first (403): `POST /api/confirm_identity`, or a
    /// new sign-in, then the same call again.
    ReauthenticationRequired,
    /// No such thing among the user's own (404).
    NotFound,
    /// The request body is over the limit (413).
    TooLarge,
    /// The request body did not arrive in time (408).
    RequestTimeout,
    /// Too many failed sign-ins; `retry_after` says when to try again (429).
    TooManyAttempts,
    /// The database did not answer; nothing was changed (503).
    Unavailable,
    /// A bug or an unexpected failure; details are in the server log only (500).
    Internal,
    /// Client side only: the server could not be reached or answered garbage.
    Network,
}

/// The error every server function returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    /// What went wrong, for programs: the stable part of the contract.
    pub code: ErrorCode,
    /// What went wrong, for people: shown as is in the UI.
    pub message: String,
    /// Seconds until a throttled client may try again (also sent as `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl AppError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The change needs a fresh proof of identity (403): the last one is older than the window.
    pub fn reauthentication_required(minutes: u64) -> Self {
        Self::new(
            ErrorCode::ReauthenticationRequired,
            format!(
                "Confirm it's you: changing how you sign in needs your password (or a new \
                 sign-in) within the last {minutes} minutes."
            ),
        )
    }

    /// The current password given to confirm a change is wrong (400).
    pub fn wrong_password() -> Self {
        Self::new(
            ErrorCode::WrongPassword,
            "Your current password is not correct.",
        )
    }

    /// A cross-site request to a state-changing endpoint (403).
    pub fn cross_site() -> Self {
        Self::new(
            ErrorCode::CrossSite,
            "Cross-site requests may not change anything here.",
        )
    }

    /// No such `what` among the user's own (404).
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("No such {what}."))
    }

    /// The request body did not arrive in time (408).
    pub fn request_timeout() -> Self {
        Self::new(
            ErrorCode::RequestTimeout,
            "The request took too long to arrive. Nothing was changed.",
        )
    }

    /// The request body is over `limit_bytes` (413).
    pub fn too_large(limit_bytes: usize) -> Self {
        Self::new(
            ErrorCode::TooLarge,
            format!("The request is larger than {limit_bytes} bytes."),
        )
    }

    /// Too many failed sign-ins; try again in `retry_after_secs` (429, `Retry-After`).
    pub fn too_many_attempts(retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs.max(1)),
            ..Self::new(
                ErrorCode::TooManyAttempts,
                "Too many failed sign-in attempts. Wait a few minutes and try again.",
            )
        }
    }

    /// Over the cap of open event streams for a session or user (429).
    pub fn too_many_streams() -> Self {
        Self {
            retry_after: Some(30),
            ..Self::new(
                ErrorCode::TooManyAttempts,
                "Too many pages of this account are open at once.",
            )
        }
    }

    /// The instance's budget of event streams is used up (503): live updates wait, ordinary
    /// requests are still served.
    pub fn streams_full() -> Self {
        Self {
            retry_after: Some(30),
            ..Self::new(
                ErrorCode::Unavailable,
                "Live updates are busy on this server; the page will try again shortly.",
            )
        }
    }

    /// Malformed input or a field that failed its rule (400); `message` says which and why.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    /// The call needs a signed-in user (401).
    pub fn not_signed_in() -> Self {
        Self::new(ErrorCode::NotSignedIn, "You are not signed in.")
    }

    /// One message for every credential failure, so that a response never tells whether the
    /// username exists.
    pub fn invalid_credentials() -> Self {
        Self::new(ErrorCode::InvalidCredentials, "Wrong username or password.")
    }

    /// The username belongs to another account (409).
    pub fn username_taken() -> Self {
        Self::new(
            ErrorCode::UsernameTaken,
            "That username is taken. Choose another one.",
        )
    }

    /// A name that reads like an account's (UTS #39 confusables): taken too, as people read it.
    pub fn username_lookalike() -> Self {
        Self::new(
            ErrorCode::UsernameTaken,
            "That username looks the same as one already taken. Choose another one.",
        )
    }

    /// The database did not answer; nothing was changed (503).
    pub fn unavailable() -> Self {
        Self::new(
            ErrorCode::Unavailable,
            "The service is temporarily unavailable. Nothing was changed; please try again.",
        )
    }

    /// Too much expensive work queued (password hashing): shed, with a hint when to come back.
    pub fn busy() -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(
                ErrorCode::Unavailable,
                "The server is busy. Nothing was changed; please try again in a moment.",
            )
        }
    }

    /// Browser side only: the server could not be reached, or answered garbage.
    pub fn network() -> Self {
        Self::new(
            ErrorCode::Network,
            "Could not reach the server. Check your connection and try again.",
        )
    }

    /// A bug or an unexpected failure (500); the details are in the server log only.
    pub fn internal() -> Self {
        Self::new(
            ErrorCode::Internal,
            "Something went wrong on our side. Please try again.",
        )
    }
}

#[cfg(feature = "http")]
impl ErrorCode {
    /// The status code of each error: the only mapping from errors to HTTP in Signoff.
    pub fn status(self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorCode::NotSignedIn | ErrorCode::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ErrorCode::UsernameTaken => StatusCode::CONFLICT,
            ErrorCode::WrongPassword => StatusCode::BAD_REQUEST,
            ErrorCode::CrossSite | ErrorCode::ReauthenticationRequired => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal | ErrorCode::Network => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[cfg(feature = "http")]
impl AppError {
    fn retry_after_header(&self) -> Option<http::HeaderValue> {
        self.retry_after.map(http::HeaderValue::from)
    }
}

/// For errors raised outside server functions (middleware): the same status, headers and body.
#[cfg(feature = "axum")]
impl axum::response::IntoResponse for AppError {
    fn into_response(self) -> axum::response::Response {
        let mut response = (self.code.status(), axum::Json(&self)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
        if let Some(retry_after) = self.retry_after_header() {
            headers.insert(http::header::RETRY_AFTER, retry_after);
        }
        response
    }
}

#[cfg(feature = "server-fn")]
impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // Raised on the server while decoding the request: the client sent bad input.
            ServerFnErrorErr::Args(detail) => {
                Self::invalid_input(format!("Malformed request: {detail}"))
            }
            ServerFnErrorErr::MissingArg(field) => {
                Self::invalid_input(format!("Malformed request: missing field `{field}`"))
            }
            // On the server, a body that cannot be decoded (invalid UTF-8, say) is bad input.
            #[cfg(feature = "ssr")]
            ServerFnErrorErr::Deserialization(detail) => {
                Self::invalid_input(format!("Malformed request: {detail}"))
            }
            // In the browser: the request never got an answer, or not one we understand.
            #[cfg(not(feature = "ssr"))]
            ServerFnErrorErr::Deserialization(_) => Self::network(),
            ServerFnErrorErr::Request(_) => Self::network(),
            other => {
                #[cfg(feature = "ssr")]
                tracing::error!(error = %other, "server function failed outside its body");
                #[cfg(not(feature = "ssr"))]
                let _ = other;
                Self::internal()
            }
        }
    }

    /// Called exactly once for every error response a server function sends, inside the request's
    /// reactive owner: that makes it the single place where the error's status is set, whether
    /// the error came from our code or from the framework (for example an undecodable body).
    fn ser(&self) -> Bytes {
        #[cfg(feature = "ssr")]
        if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(self.code.status());
            if let Some(retry_after) = self.retry_after_header() {
                response.insert_header(http::header::RETRY_AFTER, retry_after);
            }
        }
        JsonEncoding::encode(self).unwrap_or_else(|_| {
            Bytes::from_static(br#"{"code":"internal","message":"Internal error"}"#)
        })
    }
}

// The core's storage errors. These `From`s live here, beside `AppError`, because Rust's orphan
// rule allows them only in the crate of the error or of the trait.

/// A database error is a 503 "nothing was changed": every statement of a request either ran in
/// its transaction or not at all. The details go to the log, never to the client.
#[cfg(feature = "store")]
impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        tracing::error!(%error, "database error");
        AppError::unavailable()
    }
}

/// Session errors are store errors (the database) or (de)serialisation of Signoff's own data.
#[cfg(feature = "store")]
impl From<tower_sessions::session::Error> for AppError {
    fn from(error: tower_sessions::session::Error) -> Self {
        tracing::error!(%error, "session store error");
        AppError::unavailable()
    }
}

/// axum-login's errors are the session's or the users backend's (whose error maps to this one).
#[cfg(feature = "store")]
impl<B> From<axum_login::Error<B>> for AppError
where
    B: axum_login::AuthnBackend,
    AppError: From<B::Error>,
{
    fn from(error: axum_login::Error<B>) -> Self {
        match error {
            axum_login::Error::Session(error) => error.into(),
            axum_login::Error::Backend(error) => error.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_code_and_message() {
        let json = serde_json::to_string(&AppError::username_taken()).unwrap();
        assert_eq!(
            json,
            r#"{"code":"username_taken","message":"That username is taken. Choose another one."}"#
        );
    }

    #[cfg(feature = "server-fn")]
    #[test]
    fn decode_errors_are_bad_input_not_internal() {
        let e = AppError::from_server_fn_error(ServerFnErrorErr::Args("x".into()));
        assert_eq!(e.code, ErrorCode::InvalidInput);
        let e = AppError::from_server_fn_error(ServerFnErrorErr::MissingArg("password".into()));
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.contains("password"));
    }
}
