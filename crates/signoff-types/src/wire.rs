//! What the server and the browser both speak: the JSON bodies of the API, the session-ended
//! event and the tab channel's messages, and their paths. Plain data (serde only), so that either
//! side can use it without reaching into the other: this is the bottom of the `auth` module
//! graph, and imports nothing of Signoff's.

use serde::{Deserialize, Serialize};

/// The signed-in user as the browser sees it. The stored row (with the password hash) is
/// `ssr::UserRecord` and never leaves the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The account's id (`users.id`).
    pub id: i64,
    /// The name as the account chose it (its display form).
    pub username: String,
    /// The name of the identity provider this session was signed in through (single sign-on),
    /// if any; the page offers "Sign out of NAME too". Absent from the JSON for a password session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The account has no password (made by a provider): the Security section offers "Set a
    /// password" instead of "Change password". Absent from the JSON when it has one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_password: bool,
}

/// One of the user's sessions, as `GET /api/sessions` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// A public handle (a hash of the session id): enough to revoke it, never enough to use it.
    pub id: String,
    /// Whether this is the session of the request that asked.
    pub current: bool,
    /// RFC 3339, UTC.
    pub created_at: Option<String>,
    /// RFC 3339, UTC; accurate to the session's refresh interval (at most a minute).
    pub last_seen_at: Option<String>,
    /// The browser's `User-Agent` when the session started, if it sent one.
    pub user_agent: Option<String>,
    /// The provider the session was signed in through (its display name), if any.
    #[serde(default)]
    pub provider: Option<String>,
    /// The name of the passkey the session was signed in with, if it was ("Signed in with a
    /// passkey"). Absent when it was not, or when that passkey has since been removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey: Option<String>,
}

/// One of the account's passkeys, as `GET /api/passkeys` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyInfo {
    /// Its id here (to rename or remove it).
    pub id: i64,
    /// The name its owner gave it.
    pub name: String,
    /// The authenticator's kind when the registration told: "Synced passkey", "This device
    /// only" or "Security key".
    #[serde(default)]
    pub kind: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC; absent until it is first used to sign in or confirm.
    #[serde(default)]
    pub last_used_at: Option<String>,
}

/// One security event of the user's, as "Recent activity" shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityEntry {
    /// RFC 3339, UTC.
    pub at: String,
    /// `login_succeeded`, `login_failed`, `logout`, `session_revoked`, `logout_everywhere`,
    /// `password_changed`, `account_created`, `provider_linked`, `provider_unlinked`,
    /// `provider_logout` or `logout_at_provider`.
    pub event: String,
    /// Hash tag of the session concerned (not its id).
    pub session: Option<String>,
    /// The client's address, as the server saw it (behind trusted proxies: the forwarded one).
    pub ip: Option<String>,
    /// What else it concerns: the provider of a provider sign-in, link, unlink or logout.
    #[serde(default)]
    pub detail: Option<String>,
}

/// A configured OpenID Provider, as the page names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// Part of its URLs here (`/api/oidc/<id>/…`).
    pub id: String,
    /// "Sign in with {name}".
    pub name: String,
}

/// One provider and whether the signed-in account is linked to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderMethod {
    /// The provider.
    pub provider: ProviderInfo,
    /// Whether the account can sign in with it.
    pub linked: bool,
}

/// How the signed-in account can sign in, and how this session did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInMethods {
    /// Every configured provider, linked or not (empty: single sign-on is not configured).
    pub providers: Vec<ProviderMethod>,
    /// Whether the account has a password (an account made through a provider has none).
    pub has_password: bool,
    /// The provider this session was signed in through, if any.
    pub session_provider: Option<ProviderInfo>,
    /// How many passkeys the account has (each is a way in).
    #[serde(default)]
    pub passkeys: u32,
}

impl SignInMethods {
    /// Whether unlinking `provider` would leave the account another way in.
    pub fn can_unlink(&self, provider: &str) -> bool {
        self.has_password
            || self.passkeys > 0
            || self
                .providers
                .iter()
                .any(|method| method.linked && method.provider.id != provider)
    }
}

/// Why a session ended: carried by the server's `session-ended` event and by the tab channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// `POST /api/logout` (only a holder of the cookie can do that: another tab of this browser).
    SignedOut,
    /// `POST /api/revoke_session` from another session.
    Revoked,
    /// `POST /api/logout_all`.
    SignedOutEverywhere,
    /// `POST /api/change_password` from another session.
    PasswordChanged,
    /// The idle or absolute timeout passed.
    Expired,
    /// The session is gone and the server cannot tell why (it may have missed the event).
    Ended,
    /// A request with this session's cookie signed in as another user, so the session was
    /// replaced by a new one (another tab or window of this browser).
    Replaced,
    /// The OpenID Provider the session was signed in through ended it (back-channel logout: the
    /// person signed out there, or an administrator ended their access).
    ProviderLogout,
    /// The password was reset through a mailed link: every session of the account ended.
    PasswordReset,
    /// The provider this session was signed in through was unlinked from the account.
    ProviderUnlinked,
    /// The passkey the session was signed in with was removed from the account.
    PasskeyRemoved,
}

impl EndReason {
    /// Every reason, for exhaustive checks.
    pub const ALL: [EndReason; 11] = [
        EndReason::SignedOut,
        EndReason::Revoked,
        EndReason::SignedOutEverywhere,
        EndReason::PasswordChanged,
        EndReason::Expired,
        EndReason::Ended,
        EndReason::Replaced,
        EndReason::ProviderLogout,
        EndReason::PasswordReset,
        EndReason::ProviderUnlinked,
        EndReason::PasskeyRemoved,
    ];

    /// The reason as the wire spells it (`signed_out`, `revoked`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::SignedOut => "signed_out",
            EndReason::Revoked => "revoked",
            EndReason::SignedOutEverywhere => "signed_out_everywhere",
            EndReason::PasswordChanged => "password_changed",
            EndReason::Expired => "expired",
            EndReason::Ended => "ended",
            EndReason::Replaced => "replaced",
            EndReason::ProviderLogout => "provider_logout",
            EndReason::PasswordReset => "password_reset",
            EndReason::ProviderUnlinked => "provider_unlinked",
            EndReason::PasskeyRemoved => "passkey_removed",
        }
    }

    /// Reads a reason written by [`EndReason::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.as_str() == text)
    }

    /// What a page says when its session was ended by someone else. `same_browser` is true when
    /// the session that did it is this one (so it was another tab of this browser).
    pub fn notice(self, same_browser: bool) -> &'static str {
        match (self, same_browser) {
            (EndReason::SignedOut, _) | (EndReason::Revoked, true) => {
                "You signed out in another tab."
            }
            (EndReason::SignedOutEverywhere, true) => "You signed out everywhere from another tab.",
            (EndReason::SignedOutEverywhere, false) => {
                "You signed out everywhere from another device."
            }
            (EndReason::Revoked, false) => "This session was ended from another device.",
            (EndReason::PasswordChanged, _) => {
                "Your password was changed on another device, so this session was ended."
            }
            (EndReason::Expired, _) => "Your session expired. Please sign in again.",
            (EndReason::Ended, _) => "Your session has ended. Please sign in again.",
            (EndReason::Replaced, _) => {
                "You signed in as another user in another tab or window, so this page was reset."
            }
            (EndReason::ProviderLogout, _) => {
                "You were signed out by your identity provider. Please sign in again."
            }
            (EndReason::PasswordReset, _) => {
                "Your password was reset, so every session was signed out. Please sign in again."
            }
            (EndReason::ProviderUnlinked, _) => {
                "Signed out: the provider this session used was unlinked from your account."
            }
            (EndReason::PasskeyRemoved, _) => {
                "Signed out: the passkey this session used was removed from your account."
            }
        }
    }

    /// The notice, naming the provider when the end came from one.
    pub fn notice_from(self, same_browser: bool, provider: Option<&str>) -> String {
        match (self, provider) {
            (EndReason::ProviderLogout, Some(name)) => {
                format!("You were signed out by {name}. Please sign in again.")
            }
            (EndReason::ProviderUnlinked, Some(name)) => {
                format!("Signed out: {name} was unlinked from your account.")
            }
            (EndReason::PasskeyRemoved, Some(name)) => {
                format!("Signed out: the passkey \u{201c}{name}\u{201d} was removed.")
            }
            _ => self.notice(same_browser).to_owned(),
        }
    }
}

/// The data of a `session-ended` event: `{"reason": "revoked", "same_session": false}`, with
/// `"provider": "Name"` when an OpenID Provider ended it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEndedEvent {
    /// Why it ended.
    pub reason: EndReason,
    /// Whether the request that ended it carried this very session (another tab, same cookie).
    pub same_session: bool,
    /// The display name of the provider that ended it (back-channel logout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

/// What one tab tells the others on the `BroadcastChannel`. Plain strings, so any page of the
/// site (or a test) can read and write them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TabMessage {
    /// Someone signed in in another tab: read the user again.
    SignedIn,
    /// This browser's session ended, and why.
    SignedOut(EndReason),
    /// The session continues under a new id (password changed here): reconnect the stream.
    Renewed,
}

impl TabMessage {
    /// The message as the channel carries it (`signed_in`, `signed_out:<reason>`, `renewed`).
    pub fn encode(self) -> String {
        match self {
            TabMessage::SignedIn => "signed_in".into(),
            TabMessage::SignedOut(reason) => format!("signed_out:{}", reason.as_str()),
            TabMessage::Renewed => "renewed".into(),
        }
    }

    /// Reads a message written by [`TabMessage::encode`]; anything else is `None`.
    pub fn decode(text: &str) -> Option<Self> {
        match text {
            "signed_in" => Some(TabMessage::SignedIn),
            "renewed" => Some(TabMessage::Renewed),
            _ => text
                .strip_prefix("signed_out:")
                .and_then(EndReason::parse)
                .map(TabMessage::SignedOut),
        }
    }
}

/// The `BroadcastChannel` name the app's tabs share.
pub const TAB_CHANNEL: &str = "signoff";
/// Where a signed-in page listens for its session's end.
pub const EVENTS_PATH: &str = "/api/events";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tab_messages_round_trip_and_junk_is_ignored() {
        for message in [
            TabMessage::SignedIn,
            TabMessage::Renewed,
            TabMessage::SignedOut(EndReason::SignedOutEverywhere),
        ] {
            assert_eq!(TabMessage::decode(&message.encode()), Some(message));
        }
        assert_eq!(TabMessage::decode("signed_out:nonsense"), None);
        assert_eq!(TabMessage::decode(""), None);
    }

    #[test]
    fn event_data_is_the_documented_json() {
        let event = SessionEndedEvent {
            reason: EndReason::PasswordChanged,
            same_session: false,
            provider: None,
        };
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            r#"{"reason":"password_changed","same_session":false}"#
        );
        let from_provider = SessionEndedEvent {
            reason: EndReason::ProviderLogout,
            same_session: false,
            provider: Some("Corp".into()),
        };
        let json = serde_json::to_string(&from_provider).unwrap();
        assert_eq!(
            json,
            r#"{"reason":"provider_logout","same_session":false,"provider":"Corp"}"#
        );
        assert_eq!(
            EndReason::ProviderLogout.notice_from(false, Some("Corp")),
            "You were signed out by Corp. Please sign in again."
        );
        for reason in EndReason::ALL {
            assert_eq!(EndReason::parse(reason.as_str()), Some(reason));
            let quoted = serde_json::to_string(&reason).unwrap();
            assert_eq!(quoted, format!("\"{}\"", reason.as_str()));
        }
    }
}
