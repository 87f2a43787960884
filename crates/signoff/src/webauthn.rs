//! The WebAuthn relying party of the site (passkeys): built once at start-up from the site's
//! origin, and the sweep of ceremonies that can no longer finish. The ceremonies themselves are
//! `passkeys`.

use std::time::Duration;

use webauthn_rs::prelude::{Url, Webauthn, WebauthnBuilder};

use crate::{db::Database, now_ms, on_db};

/// How long a ceremony may take, from `start` to `finish` (WebAuthn's recommended timeout for
/// the authenticator, plus a little for the network).
pub const CEREMONY_TIMEOUT: Duration = Duration::from_secs(300);

/// The relying party: the one `Webauthn` of this site.
#[derive(Debug)]
pub struct Passkeys {
    pub(crate) webauthn: Webauthn,
    rp_id: String,
}

/// Why the relying party could not be set up from the site's origin.
#[derive(Debug, thiserror::Error)]
#[error("passkeys need the site's origin as http(s)://domain[:port] ({0})")]
pub struct PasskeySetupError(String);

impl Passkeys {
    /// The relying party of `origin` (`SITE_ORIGIN`, or where the server is reached): its host
    /// is the relying party id. A loopback address (development, tests) becomes `localhost` on
    /// the same port, since WebAuthn refuses IP addresses; any other IP address is refused
    /// (`config` stops start-up on it first).
    pub fn new(origin: &str) -> Result<Self, PasskeySetupError> {
        let mut url = Url::parse(origin).map_err(|error| PasskeySetupError(error.to_string()))?;
        let host = match url.host() {
            Some(url::Host::Domain(domain)) => domain.to_owned(),
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => "localhost".to_owned(),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => "localhost".to_owned(),
            _ => return Err(PasskeySetupError("not a domain name".into())),
        };
        url.set_host(Some(&host))
            .map_err(|error| PasskeySetupError(error.to_string()))?;
        let webauthn = WebauthnBuilder::new(&host, &url)
            .and_then(|builder| builder.rp_name(&host).timeout(CEREMONY_TIMEOUT).build())
            .map_err(|error| PasskeySetupError(error.to_string()))?;
        Ok(Self {
            webauthn,
            rp_id: host,
        })
    }

    /// The relying party id (the site's host).
    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }
}

/// Forgets tickets whose ceremony can no longer finish (the sweep).
pub async fn forget_expired(db: &Database) -> Result<u64, sqlx::Error> {
    on_db!(db, |pool| {
        sqlx::query("DELETE FROM passkey_ceremonies WHERE expires_ms <= $1")
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    })
}
