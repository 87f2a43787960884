//! Where a form posted without JavaScript lands, and what the page says when it gets there.
//!
//! With JavaScript every form is intercepted and nothing navigates. Without it (or before the
//! wasm has loaded) the browser posts the form itself to its server function. The server answers
//! such a post with `303 See Other` to the page (`server/src/forms.rs`), so the person lands
//! back on the app: signed in, signed out, or with the error shown in the form that failed.
//!
//! * An **error** travels in a short-lived cookie that only the server sets, never in the URL:
//!   nobody can craft a link that puts their words on this page. The page render reads it once
//!   and removes it. It is `signoff_flash`, or `__Host-signoff_flash` with `Secure` in the secure
//!   cookie mode, so that a sibling subdomain cannot write one (the core's cookie writer).
//! * **"You signed out."** travels as a fixed flag in the URL (`/?signed-out`), because the
//!   sign-out response asks the browser to clear the site's cookies (`Clear-Site-Data`).
//!
//! This module is shared by the server (which writes both) and the page (which reads them).

use serde::{Deserialize, Serialize};

/// How long an unread form error is kept (the redirect is followed at once).
pub const FLASH_MAX_AGE_SECS: u64 = 60;
/// The query flag of the page a native sign-out lands on.
pub const SIGNED_OUT_FLAG: &str = "signed-out";
/// The longest message a flash may carry: AppError messages are short sentences.
const MESSAGE_MAX_BYTES: usize = 512;

/// The forms that post natively, by their server function's endpoint (`/api/<endpoint>`).
pub const FORM_ENDPOINTS: [&str; 10] = [
    "login",
    "register",
    "logout",
    "logout_all",
    "revoke_session",
    "change_password",
    "logout_provider",
    "unlink_provider",
    // Not server functions: the single sign-on flow (`auth::ssr::oidc::flow`) lands with these
    // when signing in, or linking a provider, did not work out.
    OIDC_LOGIN,
    OIDC_LINK,
];
/// The "form" of a failed sign-in through a provider.
pub const OIDC_LOGIN: &str = "oidc_login";
/// The "form" of a failed link of a provider to the signed-in account.
pub const OIDC_LINK: &str = "oidc_link";

/// What the page shows on arrival after a native form post, and the single sign-on providers
/// it offers (read with it, once per page render, so that they cost no request of their own).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Landing {
    /// The person just signed out here.
    pub signed_out: bool,
    /// The form post that failed, and why.
    pub error: Option<FormError>,
    /// "Sign in with NAME" for each of these (none: single sign-on is not configured).
    #[serde(default)]
    pub providers: Vec<crate::wire::ProviderInfo>,
}

/// A form post that failed: which form, and the error's message (already written for people).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormError {
    /// One of [`FORM_ENDPOINTS`].
    pub endpoint: String,
    /// Why it failed, written for people (at most 512 bytes).
    pub message: String,
}

impl FormError {
    /// A new error for the form that posted to `endpoint`; unknown endpoints are `None`.
    pub fn new(endpoint: &str, message: &str) -> Option<Self> {
        let endpoint = FORM_ENDPOINTS
            .into_iter()
            .find(|known| *known == endpoint)?;
        let mut message = message.to_owned();
        if message.len() > MESSAGE_MAX_BYTES {
            let mut end = MESSAGE_MAX_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        Some(Self {
            endpoint: endpoint.to_owned(),
            message,
        })
    }

    /// The cookie value: hex of `endpoint\nmessage` (cookie-safe, no quoting rules to get wrong).
    pub fn encode(&self) -> String {
        format!("{}\n{}", self.endpoint, self.message)
            .bytes()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// Reads a cookie value written by [`FormError::encode`]. Anything else is `None`.
    pub fn decode(value: &str) -> Option<Self> {
        if !value.len().is_multiple_of(2) || value.len() > 2 * (MESSAGE_MAX_BYTES + 32) {
            return None;
        }
        let bytes = (0..value.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(value.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        let text = String::from_utf8(bytes).ok()?;
        let (endpoint, message) = text.split_once('\n')?;
        if message.is_empty() || message.chars().any(char::is_control) {
            return None;
        }
        Self::new(endpoint, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_errors_round_trip_and_junk_is_refused() {
        let error = FormError::new("login", "Wrong username or password.").unwrap();
        assert_eq!(FormError::decode(&error.encode()), Some(error));
        let unicode = FormError::new("register", "Nom d’utilisateur pris — « ça »").unwrap();
        assert_eq!(FormError::decode(&unicode.encode()), Some(unicode));
        assert_eq!(FormError::new("elsewhere", "x"), None);
        for junk in [
            "",
            "abc",
            "zz",
            "6c6f67696e",
            "6c6f67696e0a",
            "6c6f67696e0a07",
        ] {
            assert_eq!(FormError::decode(junk), None, "{junk}");
        }
        let long = FormError::new("login", &"é".repeat(1000)).unwrap();
        assert!(long.message.len() <= MESSAGE_MAX_BYTES);
        assert_eq!(FormError::decode(&long.encode()), Some(long));
    }
}
