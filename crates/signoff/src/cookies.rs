//! Signoff's cookies on the wire: the one place their `Set-Cookie` values are written (the
//! session cookie, the device cookie, the form-error flash), and the reading of raw `Cookie`
//! headers for the few places that must see every occurrence of a name (a jar keeps only one).
//!
//! Every cookie Signoff sets is `HttpOnly`, `SameSite=Lax`, `Path=/` and has no `Domain`. In the
//! secure mode (`COOKIE_SECURE=true`) it is also `Secure` and its name carries the `__Host-`
//! prefix, and so does every removal of it: browsers refuse a `__Host-` cookie without `Secure`
//! (RFC 6265bis, cookie prefixes), so a removal without it leaves the cookie in place.

use std::time::Duration;

use http::HeaderMap;

/// One of Signoff's cookies, in one cookie mode: its name and how its `Set-Cookie` is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppCookie {
    name: &'static str,
    secure: bool,
}

impl AppCookie {
    /// The session cookie: `signoff_session`, or `__Host-signoff_session` when secure.
    pub const fn session(secure: bool) -> Self {
        Self::named("signoff_session", "__Host-signoff_session", secure)
    }

    /// The device cookie a client gets at its first sign-in (`auth::ssr::trust`).
    pub const fn device(secure: bool) -> Self {
        Self::named("signoff_device", "__Host-signoff_device", secure)
    }

    /// The short-lived cookie that carries a form error to the next page (`landing`).
    pub const fn flash(secure: bool) -> Self {
        Self::named("signoff_flash", "__Host-signoff_flash", secure)
    }

    const fn named(plain: &'static str, host: &'static str, secure: bool) -> Self {
        Self {
            name: if secure { host } else { plain },
            secure,
        }
    }

    /// The cookie's name in this mode.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The `Set-Cookie` value that sets the cookie to `value` (cookie-safe text: ids, tokens,
    /// hex) for `max_age`, or for the browser session when `None`.
    pub fn set(&self, value: &str, max_age: Option<Duration>) -> String {
        let max_age = max_age.map_or(String::new(), |age| format!("; Max-Age={}", age.as_secs()));
        format!("{}={value}{max_age}{}", self.name, self.attributes())
    }

    /// The flash cookie's `Set-Cookie` that carries a form's error to the next page render.
    pub fn flash_of(error: &signoff_types::FormError, secure: bool) -> String {
        Self::flash(secure).set(
            &error.encode(),
            Some(Duration::from_secs(
                signoff_types::landing::FLASH_MAX_AGE_SECS,
            )),
        )
    }

    /// The `Set-Cookie` value that makes the browser forget the cookie: same name and `Path`
    /// (RFC 6265 §5.3 replaces a cookie only when name, domain and path match), an empty value,
    /// `Max-Age=0` and an `Expires` in the past (for clients that ignore `Max-Age`), and `Secure`
    /// in the secure mode.
    pub fn removal(&self) -> String {
        format!(
            "{}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT{}",
            self.name,
            self.attributes()
        )
    }

    /// The removal as a header value (always valid: built from fixed text).
    pub fn removal_header(&self) -> http::HeaderValue {
        http::HeaderValue::from_str(&self.removal())
            .unwrap_or_else(|_| http::HeaderValue::from_static("invalid=; Max-Age=0"))
    }

    /// The attributes every Signoff cookie carries.
    fn attributes(&self) -> &'static str {
        if self.secure {
            "; Path=/; HttpOnly; SameSite=Lax; Secure"
        } else {
            "; Path=/; HttpOnly; SameSite=Lax"
        }
    }
}

/// The cookie name a `Set-Cookie` value sets.
pub fn set_cookie_name(set_cookie: &str) -> Option<&str> {
    set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(name, _)| name.trim())
}

/// Every value sent under `name`, in order, across all `Cookie` headers.
pub fn values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    pairs(headers).filter_map(move |(key, value)| (key == name).then_some(value))
}

/// Every `name=value` pair of the request's `Cookie` headers (pairs without `=` are skipped).
pub fn pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_occurrence_across_headers_is_seen() {
        let mut headers = HeaderMap::new();
        headers.append(http::header::COOKIE, "a=1; b=2;; junk".parse().unwrap());
        headers.append(http::header::COOKIE, "a=3".parse().unwrap());
        assert_eq!(values(&headers, "a").collect::<Vec<_>>(), ["1", "3"]);
        assert_eq!(values(&headers, "b").collect::<Vec<_>>(), ["2"]);
        assert_eq!(pairs(&headers).count(), 3);
    }

    /// What a browser needs to accept a cookie and, later, its removal (RFC 6265bis prefixes).
    fn assert_well_formed(set_cookie: &str, secure: bool) {
        let attributes: Vec<String> = set_cookie
            .split(';')
            .skip(1)
            .map(|a| a.trim().to_ascii_lowercase())
            .collect();
        let name = set_cookie_name(set_cookie).unwrap();
        assert_eq!(name.starts_with("__Host-"), secure, "{set_cookie}");
        assert_eq!(
            attributes.contains(&"secure".into()),
            secure,
            "{set_cookie}"
        );
        assert!(attributes.contains(&"path=/".into()), "{set_cookie}");
        assert!(attributes.contains(&"httponly".into()), "{set_cookie}");
        assert!(attributes.contains(&"samesite=lax".into()), "{set_cookie}");
        assert!(
            !attributes.iter().any(|a| a.starts_with("domain")),
            "{set_cookie}"
        );
    }

    #[test]
    fn every_cookie_and_its_removal_is_well_formed_in_both_modes() {
        for secure in [false, true] {
            for cookie in [
                AppCookie::session(secure),
                AppCookie::device(secure),
                AppCookie::flash(secure),
            ] {
                let set = cookie.set("abc", Some(Duration::from_secs(60)));
                assert_well_formed(&set, secure);
                assert!(
                    set.starts_with(&format!("{}=abc; Max-Age=60;", cookie.name())),
                    "{set}"
                );
                let removal = cookie.removal();
                assert_well_formed(&removal, secure);
                assert!(
                    removal.starts_with(&format!("{}=;", cookie.name())),
                    "{removal}"
                );
                assert!(removal.contains("; Max-Age=0;"), "{removal}");
                assert_eq!(cookie.removal_header().to_str().unwrap(), removal);
                assert_eq!(set_cookie_name(&removal), Some(cookie.name()));
            }
        }
    }
}
