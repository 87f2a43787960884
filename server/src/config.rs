//! Settings, read once from the environment at start-up: Signoff's own (`signoff::Config`),
//! the server's limits and Leptos' options. A bad value stops start-up with a message that names
//! the variable.

use std::net::SocketAddr;

use leptos::config::{Env, LeptosOptions};
pub use signoff::config::ConfigError;
use signoff::config::Vars;

use crate::serve::ServerLimits;

#[derive(Clone, Debug)]
pub struct Settings {
    /// Signoff's settings: database, sessions, throttling, proxies, single sign-on.
    pub signoff: signoff::Config,
    pub leptos_options: LeptosOptions,
    /// Connection cap and timeouts against clients that hold sockets.
    pub limits: ServerLimits,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can supply variables without touching the
    /// process environment. An empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars::new(&lookup);
        let mut signoff = signoff::Config::from_vars(&vars)?;

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
        // Event streams get a quarter of the connection slots unless told otherwise.
        if vars.get("EVENT_STREAM_MAX_TOTAL").is_none() {
            signoff.max_streams = ServerLimits::default_stream_budget(max_connections);
        }
        let limits = ServerLimits {
            max_connections,
            max_connections_per_client,
            header_read_timeout: vars.seconds(
                "SERVER_HEADER_READ_TIMEOUT",
                limit_defaults.header_read_timeout,
            )?,
            idle_timeout: vars.seconds("SERVER_IDLE_TIMEOUT", limit_defaults.idle_timeout)?,
        };

        let env = match vars
            .get("LEPTOS_ENV")
            .as_deref()
            .map(str::to_ascii_lowercase)
        {
            // A release build is what gets deployed: production unless told otherwise.
            // `cargo leptos watch` and `serve` build in debug, and say so themselves.
            None if cfg!(debug_assertions) => Env::DEV,
            None => Env::PROD,
            Some(value) if value == "dev" || value == "development" => Env::DEV,
            Some(value) if value == "prod" || value == "production" => Env::PROD,
            Some(_) => return Err(vars.invalid("LEPTOS_ENV", "expected DEV or PROD")),
        };
        let leptos_options = LeptosOptions::builder()
            .output_name(
                vars.get("LEPTOS_OUTPUT_NAME")
                    .unwrap_or_else(|| "signoff".into()),
            )
            .site_root(
                vars.get("LEPTOS_SITE_ROOT")
                    .unwrap_or_else(|| "target/site".into()),
            )
            .site_pkg_dir(
                vars.get("LEPTOS_SITE_PKG_DIR")
                    .unwrap_or_else(|| "pkg".into()),
            )
            .site_addr(vars.parsed("LEPTOS_SITE_ADDR", SocketAddr::from(([127, 0, 0, 1], 3000)))?)
            .reload_port(vars.parsed("LEPTOS_RELOAD_PORT", 3001u32)?)
            .env(env)
            .build();

        // Served beyond loopback, the site's public origin must be said: passkeys are bound to
        // its host (the WebAuthn relying party id), and single sign-on's redirect URIs are made
        // from it. On loopback (development) it defaults to where the server listens.
        if signoff.site_origin.is_none() && !leptos_options.site_addr.ip().is_loopback() {
            return Err(vars.invalid(
                "SITE_ORIGIN",
                "must be set when the server listens beyond loopback: passkeys are bound to its \
                 host, and single sign-on's redirect URIs are made from it \
                 (e.g. https://app.example.com)",
            ));
        }

        Ok(Settings {
            signoff,
            leptos_options,
            limits,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, time::Duration};

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
        assert_eq!(s.signoff.database_url, "sqlite://data/signoff.db");
        assert_eq!(s.signoff.sessions.idle_timeout, Duration::from_secs(1800));
        assert_eq!(
            s.signoff.sessions.absolute_timeout,
            Duration::from_secs(43200)
        );
        assert!(!s.signoff.sessions.cookie_secure);
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
            ("SITE_ORIGIN", "https://app.example.com"),
            ("DATABASE_URL", "sqlite://x.db"),
        ])
        .unwrap();
        assert_eq!(s.signoff.sessions.idle_timeout, Duration::from_secs(60));
        assert_eq!(
            s.signoff.sessions.absolute_timeout,
            Duration::from_secs(600)
        );
        assert!(s.signoff.sessions.cookie_secure);
        assert_eq!(s.leptos_options.site_addr.port(), 8080);
        assert_eq!(s.signoff.database_url, "sqlite://x.db");
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
            // Passkeys' relying party id is the host: not an IP address, no path.
            ("SITE_ORIGIN", "https://203.0.113.7"),
            ("SITE_ORIGIN", "https://app.example.com/signoff"),
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
        assert_eq!(s.signoff.oidc.len(), 2);
        assert_eq!(s.signoff.oidc[0].name, "Corp SSO");
        assert_eq!(s.signoff.oidc[0].scopes, ["openid", "profile", "email"]);
        assert_eq!(s.signoff.oidc[1].id, "my-idp");
        assert_eq!(s.signoff.oidc[1].name, "my-idp");
        assert_eq!(s.signoff.oidc[1].scopes, ["openid", "email"]);
        assert!(
            !format!("{:?}", s.signoff.oidc[0]).contains("s3cret"),
            "the secret is redacted"
        );
        assert!(settings(&[]).unwrap().signoff.oidc.is_empty());

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

    #[test]
    fn the_site_origin_is_needed_beyond_loopback() {
        // Passkeys are bound to the site's host: without SITE_ORIGIN a server on all interfaces
        // cannot know it.
        let error = settings(&[("LEPTOS_SITE_ADDR", "0.0.0.0:3000")]).unwrap_err();
        assert_eq!(error.variable, "SITE_ORIGIN");
        assert!(settings(&[
            ("LEPTOS_SITE_ADDR", "0.0.0.0:3000"),
            ("SITE_ORIGIN", "https://app.example.com")
        ])
        .is_ok());
        // Development: loopback, with or without a loopback origin.
        assert!(settings(&[]).is_ok());
        assert!(settings(&[("SITE_ORIGIN", "http://127.0.0.1:8080")]).is_ok());
    }
}
