//! Settings, read once from the environment at start-up. A bad value stops start-up with a message
//! that names the variable.

use std::{net::SocketAddr, str::FromStr, time::Duration};

use app::{
    auth::ssr::{
        client_addr::Cidr,
        oidc::{is_loopback_http, ProviderSettings},
        throttle::ThrottleSettings,
    },
    db::{PoolSettings, DEFAULT_DATABASE_URL},
    session::SessionSettings,
};
use leptos::config::{Env, LeptosOptions};

use crate::serve::ServerLimits;

#[derive(Clone, Debug)]
pub struct Settings {
    pub database_url: String,
    pub pool: PoolSettings,
    pub sessions: SessionSettings,
    /// How often expired session rows are deleted (`SESSION_SWEEP_INTERVAL` seconds, 60).
    pub sweep_interval: Duration,
    pub throttle: ThrottleSettings,
    /// `TRUSTED_PROXIES`: comma-separated CIDRs whose `Forwarded`/`X-Forwarded-For` count.
    pub trusted_proxies: Vec<Cidr>,
    /// `SITE_ORIGIN`: the public origin, when a proxy changes the `Host` header.
    pub site_origin: Option<String>,
    pub leptos_options: LeptosOptions,
    /// Connection cap and timeouts against clients that hold sockets.
    pub limits: ServerLimits,
    /// How long an event stream stays open before the page reconnects
    /// (`EVENT_STREAM_MAX_LIFETIME` seconds, 900).
    pub stream_lifetime: Duration,
    /// OpenID Providers for single sign-on (`OIDC_PROVIDERS`, `OIDC_<ID>_*`); empty: none.
    pub oidc: Vec<ProviderSettings>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{variable}={value:?} is invalid: {reason}")]
pub struct ConfigError {
    pub variable: String,
    pub value: String,
    pub reason: String,
}

/// The longest timeout accepted, so that a typo (extra zeros) is caught rather than obeyed.
const MAX_TIMEOUT_SECS: u64 = 366 * 24 * 60 * 60;

impl Settings {
    /// What Signoff is built from: the settings above that are Signoff's.
    pub fn signoff(&self) -> signoff::Config {
        signoff::Config {
            database_url: self.database_url.clone(),
            pool: self.pool,
            sessions: self.sessions,
            throttle: self.throttle,
            trusted_proxies: self.trusted_proxies.clone(),
            site_origin: self.site_origin.clone(),
            stream_lifetime: self.stream_lifetime,
            max_streams: self.limits.max_streams,
            body_timeout: self.limits.body_timeout,
            sweep_interval: self.sweep_interval,
            oidc: self.oidc.clone(),
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can supply variables without touching the
    /// process environment. An empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let vars = Vars { get: &get };

        let defaults = SessionSettings::default();
        let sessions = SessionSettings {
            idle_timeout: vars.seconds("SESSION_IDLE_TIMEOUT", defaults.idle_timeout)?,
            absolute_timeout: vars
                .seconds("SESSION_ABSOLUTE_TIMEOUT", defaults.absolute_timeout)?,
            cookie_secure: vars.boolean("COOKIE_SECURE", defaults.cookie_secure)?,
        };

        let throttle_defaults = ThrottleSettings::default();
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
        let throttle = ThrottleSettings {
            max_failures,
            window: vars.seconds("LOGIN_THROTTLE_WINDOW", throttle_defaults.window)?,
            account_lock,
            max_registrations,
        };
        let trusted_proxies = match get("TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|cidr| cidr.parse::<Cidr>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|reason| vars.invalid("TRUSTED_PROXIES", reason))?,
        };
        let site_origin = match get("SITE_ORIGIN") {
            None => None,
            Some(origin) if origin.starts_with("https://") || origin.starts_with("http://") => {
                Some(origin.trim_end_matches('/').to_owned())
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

        let limit_defaults = ServerLimits::default();
        let max_connections: usize =
            vars.parsed("SERVER_MAX_CONNECTIONS", limit_defaults.max_connections)?;
        if max_connections == 0 {
            return Err(vars.invalid("SERVER_MAX_CONNECTIONS", "must be at least 1"));
        }
        let max_connections_per_client: usize = vars.parsed(
            "SERVER_MAX_CONNECTIONS_PER_CLIENT",
            ServerLimits::default_share(max_connections),
        )?;
        if max_connections_per_client == 0 {
            return Err(vars.invalid("SERVER_MAX_CONNECTIONS_PER_CLIENT", "must be at least 1"));
        }
        let max_streams: usize = vars.parsed(
            "EVENT_STREAM_MAX_TOTAL",
            ServerLimits::default_stream_budget(max_connections),
        )?;
        if max_streams == 0 {
            return Err(vars.invalid("EVENT_STREAM_MAX_TOTAL", "must be at least 1"));
        }
        let limits = ServerLimits {
            max_connections,
            max_connections_per_client,
            max_streams,
            header_read_timeout: vars.seconds(
                "SERVER_HEADER_READ_TIMEOUT",
                limit_defaults.header_read_timeout,
            )?,
            idle_timeout: vars.seconds("SERVER_IDLE_TIMEOUT", limit_defaults.idle_timeout)?,
            body_timeout: vars.seconds("SERVER_BODY_TIMEOUT", limit_defaults.body_timeout)?,
        };

        let env = match get("LEPTOS_ENV").as_deref().map(str::to_ascii_lowercase) {
            // A release build is what gets deployed: production unless told otherwise.
            // `cargo leptos watch` and `serve` build in debug, and say so themselves.
            None if cfg!(debug_assertions) => Env::DEV,
            None => Env::PROD,
            Some(value) if value == "dev" || value == "development" => Env::DEV,
            Some(value) if value == "prod" || value == "production" => Env::PROD,
            Some(_) => return Err(vars.invalid("LEPTOS_ENV", "expected DEV or PROD")),
        };
        let leptos_options = LeptosOptions::builder()
            .output_name(get("LEPTOS_OUTPUT_NAME").unwrap_or_else(|| "signoff".into()))
            .site_root(get("LEPTOS_SITE_ROOT").unwrap_or_else(|| "target/site".into()))
            .site_pkg_dir(get("LEPTOS_SITE_PKG_DIR").unwrap_or_else(|| "pkg".into()))
            .site_addr(vars.parsed("LEPTOS_SITE_ADDR", SocketAddr::from(([127, 0, 0, 1], 3000)))?)
            .reload_port(vars.parsed("LEPTOS_RELOAD_PORT", 3001u32)?)
            .env(env)
            .build();

        let oidc = providers(&vars)?;
        if !oidc.is_empty() && site_origin.is_none() && !leptos_options.site_addr.ip().is_loopback()
        {
            return Err(vars.invalid(
                "SITE_ORIGIN",
                "must be set when OIDC_PROVIDERS is: the redirect URIs registered at the \
                 providers are made from it (e.g. https://app.example.com)",
            ));
        }

        Ok(Settings {
            oidc,
            database_url: get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
            pool,
            sessions,
            sweep_interval: vars.seconds("SESSION_SWEEP_INTERVAL", Duration::from_secs(60))?,
            throttle,
            trusted_proxies,
            site_origin,
            leptos_options,
            limits,
            stream_lifetime: vars.seconds(
                "EVENT_STREAM_MAX_LIFETIME",
                app::auth::ssr::hub::STREAM_MAX_LIFETIME,
            )?,
        })
    }
}

/// The scopes asked for when `OIDC_<ID>_SCOPES` is not set.
const DEFAULT_SCOPES: &str = "openid profile email";

/// `OIDC_PROVIDERS=corp,partner`, then for each id `OIDC_CORP_ISSUER`, `OIDC_CORP_CLIENT_ID`,
/// `OIDC_CORP_CLIENT_SECRET` (required), `OIDC_CORP_NAME` (default: the id) and
/// `OIDC_CORP_SCOPES` (default: "openid profile email"). The id's `-` becomes `_` in the names.
fn providers(vars: &Vars<'_>) -> Result<Vec<ProviderSettings>, ConfigError> {
    const LIST: &str = "OIDC_PROVIDERS";
    let Some(list) = (vars.get)(LIST) else {
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
            (vars.get)(&variable)
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
        let scopes: Vec<String> = (vars.get)(&name("SCOPES"))
            .unwrap_or_else(|| DEFAULT_SCOPES.to_owned())
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if !scopes.iter().any(|scope| scope == "openid") {
            return Err(vars.invalid(&name("SCOPES"), "must include openid"));
        }
        providers.push(ProviderSettings {
            id: id.to_owned(),
            name: (vars.get)(&name("NAME")).map_or_else(|| id.to_owned(), |n| n.trim().to_owned()),
            issuer,
            client_id,
            client_secret,
            scopes,
        });
    }
    Ok(providers)
}

struct Vars<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl Vars<'_> {
    fn invalid(&self, variable: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            variable: variable.to_owned(),
            value: (self.get)(variable).unwrap_or_default(),
            reason: reason.into(),
        }
    }

    fn parsed<T: FromStr>(&self, variable: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match (self.get)(variable) {
            None => Ok(default),
            Some(value) => value
                .trim()
                .parse()
                .map_err(|error: T::Err| self.invalid(variable, error.to_string())),
        }
    }

    fn seconds(&self, variable: &str, default: Duration) -> Result<Duration, ConfigError> {
        let secs: u64 = self.parsed(variable, default.as_secs())?;
        if secs == 0 || secs > MAX_TIMEOUT_SECS {
            return Err(self.invalid(
                variable,
                format!("expected whole seconds from 1 to {MAX_TIMEOUT_SECS}"),
            ));
        }
        Ok(Duration::from_secs(secs))
    }

    fn boolean(&self, variable: &str, default: bool) -> Result<bool, ConfigError> {
        match (self.get)(variable).map(|v| v.trim().to_ascii_lowercase()) {
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

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.database_url, "sqlite://data/signoff.db");
        assert_eq!(s.sessions.idle_timeout, Duration::from_secs(1800));
        assert_eq!(s.sessions.absolute_timeout, Duration::from_secs(43200));
        assert!(!s.sessions.cookie_secure);
        assert_eq!(s.leptos_options.site_addr.to_string(), "127.0.0.1:3000");
        assert_eq!(&*s.leptos_options.site_root, "target/site");
    }

    #[test]
    fn values_are_read() {
        let s = settings(&[
            ("SESSION_IDLE_TIMEOUT", "60"),
            ("SESSION_ABSOLUTE_TIMEOUT", "600"),
            ("COOKIE_SECURE", "true"),
            ("LEPTOS_SITE_ADDR", "0.0.0.0:8080"),
            ("DATABASE_URL", "sqlite://x.db"),
        ])
        .unwrap();
        assert_eq!(s.sessions.idle_timeout, Duration::from_secs(60));
        assert_eq!(s.sessions.absolute_timeout, Duration::from_secs(600));
        assert!(s.sessions.cookie_secure);
        assert_eq!(s.leptos_options.site_addr.port(), 8080);
        assert_eq!(s.database_url, "sqlite://x.db");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("SESSION_IDLE_TIMEOUT", "soon"),
            ("SESSION_IDLE_TIMEOUT", "0"),
            ("SESSION_ABSOLUTE_TIMEOUT", "-5"),
            ("SESSION_ABSOLUTE_TIMEOUT", "99999999999"),
            ("COOKIE_SECURE", "maybe"),
            ("LEPTOS_SITE_ADDR", "localhost"),
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("LEPTOS_ENV", "staging"),
            ("LOGIN_MAX_FAILURES", "0"),
            ("LOGIN_THROTTLE_WINDOW", "x"),
            ("SITE_ORIGIN", "example.com"),
            ("SESSION_SWEEP_INTERVAL", "0"),
            ("OIDC_PROVIDERS", "Corp"),
            ("OIDC_PROVIDERS", "a,a"),
        ] {
            let error = settings(&[(name, value)]).unwrap_err();
            assert_eq!(error.variable, name);
            assert!(error.to_string().starts_with(name), "{error}");
        }
    }

    #[test]
    fn providers_are_read_with_clear_errors() {
        let full = [
            ("OIDC_PROVIDERS", "corp, my-idp"),
            ("OIDC_CORP_ISSUER", "https://idp.example.com"),
            ("OIDC_CORP_CLIENT_ID", "signoff"),
            ("OIDC_CORP_CLIENT_SECRET", "s3cret"),
            ("OIDC_CORP_NAME", "Corp SSO"),
            ("OIDC_MY_IDP_ISSUER", "http://127.0.0.1:4000"),
            ("OIDC_MY_IDP_CLIENT_ID", "c"),
            ("OIDC_MY_IDP_CLIENT_SECRET", "s"),
            ("OIDC_MY_IDP_SCOPES", "openid email"),
        ];
        let s = settings(&full).unwrap();
        assert_eq!(s.oidc.len(), 2);
        assert_eq!(s.oidc[0].name, "Corp SSO");
        assert_eq!(s.oidc[0].scopes, ["openid", "profile", "email"]);
        assert_eq!(s.oidc[1].id, "my-idp");
        assert_eq!(s.oidc[1].name, "my-idp");
        assert_eq!(s.oidc[1].scopes, ["openid", "email"]);
        assert!(
            !format!("{:?}", s.oidc[0]).contains("s3cret"),
            "the secret is redacted"
        );
        assert!(settings(&[]).unwrap().oidc.is_empty());

        let without = |name: &str| -> Vec<(&str, &str)> {
            full.iter().copied().filter(|(k, _)| *k != name).collect()
        };
        let with = |name: &'static str, value: &'static str| -> Vec<(&'static str, &'static str)> {
            let mut vars: Vec<_> = full.iter().copied().filter(|(k, _)| *k != name).collect();
            vars.push((name, value));
            vars
        };
        for missing in [
            "OIDC_CORP_ISSUER",
            "OIDC_CORP_CLIENT_ID",
            "OIDC_MY_IDP_CLIENT_SECRET",
        ] {
            let error = settings(&without(missing)).unwrap_err();
            assert_eq!(error.variable, missing, "{error}");
        }
        for (name, value) in [
            ("OIDC_CORP_ISSUER", "http://idp.example.com"),
            ("OIDC_CORP_ISSUER", "https://idp.example.com/?x=1"),
            ("OIDC_CORP_SCOPES", "profile email"),
        ] {
            let error = settings(&with(name, value)).unwrap_err();
            assert_eq!(error.variable, name, "{error}");
        }
        // Served on all interfaces: the redirect URIs need the public origin.
        let error = settings(&with("LEPTOS_SITE_ADDR", "0.0.0.0:3000")).unwrap_err();
        assert_eq!(error.variable, "SITE_ORIGIN");
        let mut public = with("LEPTOS_SITE_ADDR", "0.0.0.0:3000");
        public.push(("SITE_ORIGIN", "https://app.example.com"));
        assert!(settings(&public).is_ok());
    }
}
