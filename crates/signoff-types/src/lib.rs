//! What a Signoff server and the browser share: plain data, so that either side can use it
//! without reaching into the other. This crate imports nothing else of Signoff's.
//!
//! ```
//! use signoff_types::{validate, AppError, ErrorCode, User};
//!
//! let user: User = serde_json::from_str(r#"{"id":7,"username":"alice"}"#).unwrap();
//! assert_eq!(user.username, "alice");
//! let refused: AppError = validate::new_password("too short").unwrap_err();
//! assert_eq!(refused.code, ErrorCode::InvalidInput);
//! ```
//!
//! Features add what one side needs (`server-fn`, `http`, `axum`, `ssr`); with none it builds for
//! `wasm32-unknown-unknown` on serde alone.

#![warn(missing_docs)]

pub mod error;
pub mod landing;
pub mod validate;
pub mod wire;

pub use error::{AppError, ErrorCode};
pub use landing::{FormError, Landing};
pub use wire::{
    ActivityEntry, EndReason, ProviderInfo, ProviderMethod, SessionEndedEvent, SessionInfo,
    SignInMethods, TabMessage, User, EVENTS_PATH, TAB_CHANNEL,
};
