//! Signoff's settings from the environment: [`Config::from_env`]. A bad value stops start-up
//! with a message that names the variable. An app that reads more variables of its own uses
//! [`Vars`] for the same rules (an empty value counts as unset; timeouts in whole seconds).

use std::{str::FromStr, time::Duration};

use lettre::message::Mailbox;

use crate::{
    client_addr::Cidr,
    db::{PoolSettings, DEFAULT_DATABASE_URL},
    hub::STREAM_MAX_LIFETIME,
    mail::{MailSettings, SmtpUrl},
    oidc::{is_loopback_http, ProviderSettings},
    session::SessionSettings,
    throttle::ThrottleSettings,
    Config,
};

/// A variable with a value that cannot be used, and why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{variable}={value:?} is invalid: {reason}")]
pub struct ConfigError {
    /// The variable's name.
    pub variable: String,
    /// Its value.
    pub value: String,
    /// What is expected instead.
    pub reason: String,
}

/// The longest timeout accepted, so that a typo (extra zeros) is caught rather than obeyed.
const MAX_TIMEOUT_SECS: u64 = 366 * 24 * 60 * 60;

impl Config {
    /// Reads Signoff's variables from the process environment (the README's Configuration
    /// table): `DATABASE_*`, `SESSION_*`, `COOKIE_SECURE`, `LOGIN_*`, `REGISTER_MAX_PER_WINDOW`,
    /// `TRUSTED_PROXIES`, `SITE_ORIGIN`, `EVENT_STREAM_*`, `SERVER_BODY_TIMEOUT`, `OIDC_*`,
    /// `SMTP_URL`, `MAIL_*`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup`, so tests can supply them without touching the
    /// process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::from_vars(&Vars::new(&lookup))
    }

    /// Reads the variables from `vars`.
    pub fn from_vars(vars: &Vars<'_>) -> Result<Self, ConfigError> {
        let defaults = Config::default();
        let sessions = SessionSettings {
            idle_timeout: vars.seconds("SESSION_IDLE_TIMEOUT", defaults.sessions.idle_timeout)?,
            absolute_timeout: vars.seconds(
                "SESSION_ABSOLUTE_TIMEOUT",
                defaults.sessions.absolute_timeout,
            )?,
            cookie_secure: vars.boolean("COOKIE_SECURE", defaults.sessions.cookie_secure)?,
            step_up_max_age: vars.seconds("STEP_UP_MAX_AGE", defaults.sessions.step_up_max_age)?,
        };

        let throttle_defaults = defaults.throttle;
        let max_failures: u32 =
            vars.parsed("LOGIN_MAX_FAILURES", throttle_defaults.max_failures)?;
        if max_failures == 0 {
            return Err(vars.invalid("LOGIN_MAX_FAILURES", "must be at least 1"));
        }
        let account_lock: u32 =
            vars.parsed("LOGIN_ACCOUNT_LOCK", throttle_defaults.account_lock)?;
        if !(1..=100).contains(&account_lock) {
            return Err(vars.invalid("LOGIN_ACCOUNT_LOCK", "must be 1 to 100 (NIST SP 800-63B-4)"));
        }
        let max_registrations: u32 = vars.parsed(
            "REGISTER_MAX_PER_WINDOW",
            throttle_defaults.max_registrations,
        )?;
        if max_registrations == 0 {
            return Err(vars.invalid("REGISTER_MAX_PER_WINDOW", "must be at least 1"));
        }
        let max_mail_links: u32 =
            vars.parsed("MAIL_LINKS_PER_WINDOW", throttle_defaults.max_mail_links)?;
        if max_mail_links == 0 {
            return Err(vars.invalid("MAIL_LINKS_PER_WINDOW", "must be at least 1"));
        }
        let throttle = ThrottleSettings {
            max_failures,
            window: vars.seconds("LOGIN_THROTTLE_WINDOW", throttle_defaults.window)?,
            account_lock,
            max_registrations,
            max_mail_links,
        };
        let trusted_proxies = match vars.get("TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|cidr| cidr.parse::<Cidr>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|reason| vars.invalid("TRUSTED_PROXIES", reason))?,
        };
        let site_origin = match vars.get("SITE_ORIGIN") {
            None => None,
            Some(origin) if origin.starts_with("https://") || origin.starts_with("http://") => {
                let origin = origin.trim_end_matches('/').to_owned();
                // Passkeys' relying party id is the host (`passkeys::Passkeys::new`): WebAuthn
                // refuses IP addresses, and a path or query would not be an origin at all.
                // A loopback address is accepted for development (passkeys then use
                // `localhost`).
                crate::webauthn::Passkeys::new(&origin).map_err(|_| {
                    vars.invalid(
                        "SITE_ORIGIN",
                        "expected http(s)://host[:port] with a domain name (passkeys' relying \
                         party id is the host; WebAuthn refuses IP addresses)",
                    )
                })?;
                match url::Url::parse(&origin) {
                    Ok(url) if url.path() == "/" && url.query().is_none() => Some(origin),
                    _ => {
                        return Err(vars.invalid(
                            "SITE_ORIGIN",
                            "expected http(s)://host[:port], with no path",
                        ))
                    }
                }
            }
            Some(_) => {
                return Err(vars.invalid("SITE_ORIGIN", "expected http(s)://host[:port]"));
            }
        };

        let pool_defaults = PoolSettings::default();
        let max_connections: u32 =
            vars.parsed("DATABASE_MAX_CONNECTIONS", pool_defaults.max_connections)?;
        if max_connections == 0 {
            return Err(vars.invalid("DATABASE_MAX_CONNECTIONS", "must be at least 1"));
        }
        let pool = PoolSettings {
            max_connections,
            acquire_timeout: vars
                .seconds("DATABASE_ACQUIRE_TIMEOUT", pool_defaults.acquire_timeout)?,
        };
        let max_streams: usize = vars.parsed("EVENT_STREAM_MAX_TOTAL", defaults.max_streams)?;
        if max_streams == 0 {
            return Err(vars.invalid("EVENT_STREAM_MAX_TOTAL", "must be at least 1"));
        }

        Ok(Config {
            oidc: providers(vars)?,
            database_url: vars
                .get("DATABASE_URL")
                .unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
            pool,
            sessions,
            throttle,
            trusted_proxies,
            site_origin,
            stream_lifetime: vars.seconds("EVENT_STREAM_MAX_LIFETIME", STREAM_MAX_LIFETIME)?,
            max_streams,
            body_timeout: vars.seconds("SERVER_BODY_TIMEOUT", defaults.body_timeout)?,
            sweep_interval: vars.seconds("SESSION_SWEEP_INTERVAL", defaults.sweep_interval)?,
            mail: mail(vars)?,
        })
    }
}

/// `SMTP_URL` (unset: mail goes to the log), `MAIL_FROM` (required with `SMTP_URL`) and
/// `MAIL_RETRY_MAX_DELAY`.
fn mail(vars: &Vars<'_>) -> Result<MailSettings, ConfigError> {
    let defaults = MailSettings::default();
    let smtp = match vars.get("SMTP_URL") {
        None => None,
        Some(url) => {
            Some(SmtpUrl::parse(url.trim()).map_err(|reason| vars.invalid("SMTP_URL", reason))?)
        }
    };
    let from = match vars.get("MAIL_FROM") {
        None if smtp.is_some() => {
            return Err(vars.invalid(
                "MAIL_FROM",
                "required with SMTP_URL: the sender, e.g. \"Example <no-reply@example.com>\"",
            ));
        }
        None => defaults.from,
        Some(from) => Mailbox::from_str(from.trim()).map_err(|error| {
            vars.invalid(
                "MAIL_FROM",
                format!("{error}; e.g. \"Example <no-reply@example.com>\""),
            )
        })?,
    };
    Ok(MailSettings {
        smtp,
        from,
        retry_max_delay: vars.seconds("MAIL_RETRY_MAX_DELAY", defaults.retry_max_delay)?,
    })
}

/// The scopes asked for when `OIDC_<ID>_SCOPES` is not set.
const DEFAULT_SCOPES: &str = "openid profile email";

/// `OIDC_PROVIDERS=corp,partner`, then for each id `OIDC_CORP_ISSUER`, `OIDC_CORP_CLIENT_ID`,
/// `OIDC_CORP_CLIENT_SECRET` (required), `OIDC_CORP_NAME` (default: the id) and
/// `OIDC_CORP_SCOPES` (default: "openid profile email"). The id's `-` becomes `_` in the names.
fn providers(vars: &Vars<'_>) -> Result<Vec<ProviderSettings>, ConfigError> {
    const LIST: &str = "OIDC_PROVIDERS";
    let Some(list) = vars.get(LIST) else {
        return Ok(Vec::new());
    };
    let ids: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .collect();
    let mut providers: Vec<ProviderSettings> = Vec::new();
    for (index, &id) in ids.iter().enumerate() {
        let valid_id = id.len() <= 32
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid_id {
            return Err(vars.invalid(
                LIST,
                format!(
                    "provider id {id:?}: use lower-case letters, digits, '-' and '_' (at most 32)"
                ),
            ));
        }
        if ids[..index].contains(&id) || ids[index + 1..].contains(&id) {
            return Err(vars.invalid(LIST, format!("provider id {id:?} is listed twice")));
        }
        let prefix = format!("OIDC_{}_", id.to_ascii_uppercase().replace('-', "_"));
        let name = |suffix: &str| format!("{prefix}{suffix}");
        let required = |suffix: &str| {
            let variable = name(suffix);
            vars.get(&variable)
                .map(|value| value.trim().to_owned())
                .ok_or_else(|| ConfigError {
                    reason: format!("required for the provider {id:?} listed in {LIST}"),
                    variable,
                    value: String::new(),
                })
        };
        let issuer = required("ISSUER")?;
        let issuer_ok = (issuer.starts_with("https://") || is_loopback_http(&issuer))
            && !issuer.contains(['?', '#']);
        if !issuer_ok {
            return Err(vars.invalid(
                &name("ISSUER"),
                "expected an https:// URL without query or fragment (http:// only on loopback)",
            ));
        }
        let client_id = required("CLIENT_ID")?;
        let client_secret = required("CLIENT_SECRET")?;
        let scopes: Vec<String> = vars
            .get(&name("SCOPES"))
            .unwrap_or_else(|| DEFAULT_SCOPES.to_owned())
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if !scopes.iter().any(|scope| scope == "openid") {
            return Err(vars.invalid(&name("SCOPES"), "must include openid"));
        }
        providers.push(ProviderSettings {
            id: id.to_owned(),
            name: vars
                .get(&name("NAME"))
                .map_or_else(|| id.to_owned(), |n| n.trim().to_owned()),
            issuer,
            client_id,
            client_secret,
            scopes,
        });
    }
    Ok(providers)
}

/// Environment variables as Signoff reads them: an empty value counts as unset, and a bad value
/// is a [`ConfigError`] that names the variable.
pub struct Vars<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Vars<'a> {
    /// Variables read through `lookup`.
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { lookup }
    }

    /// The variable's value, if it is set and not empty.
    pub fn get(&self, variable: &str) -> Option<String> {
        (self.lookup)(variable).filter(|value| !value.trim().is_empty())
    }

    /// An error for `variable`'s value.
    pub fn invalid(&self, variable: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            variable: variable.to_owned(),
            value: (self.lookup)(variable).unwrap_or_default(),
            reason: reason.into(),
        }
    }

    /// The variable parsed, or `default` when unset.
    pub fn parsed<T: FromStr>(&self, variable: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(variable) {
            None => Ok(default),
            Some(value) => value
                .trim()
                .parse()
                .map_err(|error: T::Err| self.invalid(variable, error.to_string())),
        }
    }

    /// Whole seconds from 1 to a year, or `default` when unset.
    pub fn seconds(&self, variable: &str, default: Duration) -> Result<Duration, ConfigError> {
        let secs: u64 = self.parsed(variable, default.as_secs())?;
        if secs == 0 || secs > MAX_TIMEOUT_SECS {
            return Err(self.invalid(
                variable,
                format!("expected whole seconds from 1 to {MAX_TIMEOUT_SECS}"),
            ));
        }
        Ok(Duration::from_secs(secs))
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), or `default` when unset.
    pub fn boolean(&self, variable: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(variable).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "true" | "1" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "false" | "0" | "no" | "off") => Ok(false),
            Some(_) => Err(self.invalid(variable, "expected true or false")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn no_variables_is_the_default_config() {
        let read = config(&[]).unwrap();
        let default = Config::default();
        assert_eq!(read.database_url, default.database_url);
        assert_eq!(read.sessions.idle_timeout, default.sessions.idle_timeout);
        assert_eq!(read.max_streams, default.max_streams);
        assert_eq!(read.body_timeout, default.body_timeout);
        assert_eq!(read.stream_lifetime, default.stream_lifetime);
        assert!(read.oidc.is_empty() && read.trusted_proxies.is_empty());
    }

    #[test]
    fn empty_values_count_as_unset_and_bad_ones_name_their_variable() {
        assert_eq!(
            config(&[("DATABASE_URL", " ")]).unwrap().database_url,
            DEFAULT_DATABASE_URL
        );
        let error = config(&[("EVENT_STREAM_MAX_TOTAL", "0")]).unwrap_err();
        assert_eq!(error.variable, "EVENT_STREAM_MAX_TOTAL");
        let error = config(&[("SERVER_BODY_TIMEOUT", "forever")]).unwrap_err();
        assert_eq!(error.variable, "SERVER_BODY_TIMEOUT");
    }
}
