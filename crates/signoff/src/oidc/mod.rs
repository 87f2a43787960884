//! Single sign-on through OpenID Providers: the configured providers, their discovery documents
//! and signing keys (fetched when first needed, refreshed on key rotation), and the HTTP calls
//! Signoff makes to them. The browser-facing flow is `flow`, the provider's logout call is
//! `backchannel`, the token rules are `token`, accounts linked to providers are `identities`.
//! Where the sessions end is, as always, `auth/logout.rs`.

pub mod backchannel;
pub mod flow;
pub mod identities;
pub mod token;

use std::{sync::Arc, time::Duration};

// tokio's clock: the cache's unit tests run on a paused one.
use tokio::time::Instant;

use jsonwebtoken::jwk::JwkSet;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tokio::sync::watch;

use crate::wire::ProviderInfo;

/// The route of the back-channel logout endpoint (register `<origin>/api/oidc/<id>/backchannel-logout`).
pub const BACKCHANNEL_LOGOUT_PATH: &str = "/api/oidc/{provider}/backchannel-logout";

/// Whether a request path is a back-channel logout call (exempt from the cross-site guard).
pub fn is_backchannel_logout(path: &str) -> bool {
    path.strip_prefix("/api/oidc/")
        .and_then(|rest| rest.strip_suffix("/backchannel-logout"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// One provider as configured (`OIDC_PROVIDERS` and `OIDC_<ID>_*`; see the README).
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderSettings {
    /// Lower-case letters, digits, `-` and `_`: part of the provider's URLs here.
    pub id: String,
    /// What the page calls it: "Sign in with {name}".
    pub name: String,
    /// Exactly as the provider states it in its discovery document and tokens.
    pub issuer: String,
    /// The client id registered at the provider.
    pub client_id: String,
    /// The client secret registered at the provider (never logged).
    pub client_secret: String,
    /// Always includes `openid`.
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// The parts of a discovery document Signoff uses (OpenID Connect Discovery 1.0 §3).
#[derive(Clone, Debug, Deserialize)]
pub struct Metadata {
    /// The issuer identifier; must equal the configured one.
    pub issuer: String,
    /// Where people are sent to sign in.
    pub authorization_endpoint: String,
    /// Where the code is exchanged for tokens.
    pub token_endpoint: String,
    /// The provider's signing keys.
    pub jwks_uri: String,
    #[serde(default)]
    /// RP-initiated logout ("Sign out of NAME too"), if offered.
    pub end_session_endpoint: Option<String>,
    #[serde(default)]
    /// The UserInfo endpoint, if offered.
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    /// How clients may authenticate at the token endpoint.
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    /// Whether the provider sends `iss` with the code (RFC 9207).
    pub authorization_response_iss_parameter_supported: bool,
}

/// Why a provider could not be used just now. Shown to people as "{name} is unavailable".
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("request to {url} failed: {detail}")]
    /// A request to the provider failed.
    Http {
        /// The endpoint.
        url: String,
        /// What went wrong.
        detail: String,
    },
    #[error("{0}")]
    /// The provider answered something unusable.
    Invalid(String),
}

/// How long a discovery document is used before it is fetched again.
const METADATA_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// After a failed fetch, further requests fail at once for this long instead of each waiting on
/// an unreachable provider.
const FAILURE_BACKOFF: Duration = Duration::from_secs(5);
/// Keys are fetched again when a token names an unknown one (rotation), at most this often: a
/// stream of tokens with made-up key ids cannot make Signoff hammer the provider.
const KEYS_MIN_REFRESH: Duration = Duration::from_secs(10);
/// And at least this often, so a withdrawn key stops being accepted.
const KEYS_TTL: Duration = Duration::from_secs(60 * 60);
/// How long a discovery document or a key set is still used while refreshing it fails: past
/// this, a provider that stays unreachable (or a document it withdrew) is an error, not a value
/// trusted for ever.
const MAX_STALE: Duration = Duration::from_secs(24 * 60 * 60);
/// The largest document read from a provider.
const MAX_RESPONSE_BYTES: usize = 512 * 1024;

/// The configured providers, with what has been learnt of each. Cloning is one reference count.
#[derive(Clone, Debug, Default)]
pub struct Providers(Arc<Vec<Provider>>);

impl Providers {
    /// `origin` is the site's public origin, from which the redirect URIs are made.
    /// Fails only if the HTTP client cannot be set up (TLS: the system's trust store cannot be
    /// read), which is a broken machine, not a setting.
    pub fn new(settings: Vec<ProviderSettings>, origin: &str) -> Result<Self, TlsSetupError> {
        let http = http_client()?;
        let origin = origin.trim_end_matches('/');
        Ok(Self(Arc::new(
            settings
                .into_iter()
                .map(|settings| Provider {
                    redirect_uri: format!("{origin}/api/oidc/{}/callback", settings.id),
                    post_logout_redirect_uri: format!("{origin}/?signed-out"),
                    settings,
                    http: http.clone(),
                    metadata: Cache::default(),
                    keys: Cache::default(),
                })
                .collect(),
        )))
    }

    /// The provider with this id.
    pub fn get(&self, id: &str) -> Option<&Provider> {
        self.0.iter().find(|provider| provider.settings.id == id)
    }

    /// Whether single sign-on is configured at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every configured provider, in the configured order.
    pub fn iter(&self) -> impl Iterator<Item = &Provider> {
        self.0.iter()
    }

    /// The display name of a provider id; the id itself if it is no longer configured.
    pub fn name_of(&self, id: &str) -> String {
        self.get(id)
            .map_or_else(|| id.to_owned(), |provider| provider.settings.name.clone())
    }

    /// Origins the page's forms may be sent on to (CSP `form-action`): a sign-in form posts here
    /// and is redirected to the provider; "Sign out of NAME too" without JavaScript likewise.
    pub fn form_action_sources(&self) -> Vec<String> {
        let mut sources: Vec<String> = Vec::new();
        for provider in self.iter() {
            let mut urls = vec![provider.settings.issuer.clone()];
            if let Some(cached) = provider.metadata.peek() {
                urls.push(cached.authorization_endpoint.clone());
                urls.extend(cached.end_session_endpoint.clone());
            }
            for url in urls {
                if let Some(origin) = origin_of(&url) {
                    if !sources.contains(&origin) {
                        sources.push(origin);
                    }
                }
            }
        }
        sources
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// A value fetched from the provider: what is known, and the fetch under way if any. Its lock
/// is a plain mutex held for a few instructions, never across a network call: one request
/// fetches while the others use the previous value (if it is not too old) or wait for the
/// result on a channel.
#[derive(Debug)]
struct Cache<T> {
    state: std::sync::Mutex<CacheState<T>>,
}

#[derive(Debug)]
struct CacheState<T> {
    value: Option<Arc<T>>,
    fetched: Option<Instant>,
    failed: Option<Instant>,
    /// The result of the fetch under way, for those who wait on it.
    fetching: Option<watch::Receiver<Option<Fetched<T>>>>,
}

type Fetched<T> = Result<Arc<T>, String>;

impl<T> Default for Cache<T> {
    fn default() -> Self {
        Self {
            state: std::sync::Mutex::new(CacheState {
                value: None,
                fetched: None,
                failed: None,
                fetching: None,
            }),
        }
    }
}

/// What a caller does after looking at the cache.
enum Role<'a, T> {
    Done(Result<Arc<T>, ProviderError>),
    Wait(watch::Receiver<Option<Fetched<T>>>),
    Fetch(FetchGuard<'a, T>),
}

/// The one fetch under way; if its request is dropped before the result, the next caller
/// fetches again.
struct FetchGuard<'a, T> {
    cache: &'a Cache<T>,
    tx: watch::Sender<Option<Fetched<T>>>,
    done: bool,
}

impl<T> Drop for FetchGuard<'_, T> {
    fn drop(&mut self) {
        if !self.done {
            self.cache.lock().fetching = None;
            // Wakes the waiters with an error rather than leaving them on a dead channel.
            let _ = self
                .tx
                .send(Some(Err("the fetch was abandoned".to_owned())));
        }
    }
}

impl<T> Cache<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState<T>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The value held now, however old (for the page's CSP, which never waits).
    fn peek(&self) -> Option<Arc<T>> {
        self.lock().value.clone()
    }

    /// The value if it is younger than `max_age`; else `fetch`ed anew. One fetch at a time:
    /// while it runs, others use the previous value if it is younger than [`MAX_STALE`], or
    /// wait for the result. After a failure the previous value (within [`MAX_STALE`]) stays in
    /// use, and no fetch is tried again for [`FAILURE_BACKOFF`]: a provider that is down costs
    /// one request's wait, not every request's.
    async fn get(
        &self,
        max_age: Duration,
        fetch: impl std::future::Future<Output = Result<T, ProviderError>>,
        provider: &str,
        what: &str,
    ) -> Result<Arc<T>, ProviderError> {
        let role = self.role(max_age, what);
        let mut guard = match role {
            Role::Done(result) => return result,
            Role::Wait(mut rx) => {
                let result = rx
                    .wait_for(Option::is_some)
                    .await
                    .map(|result| result.clone())
                    .ok()
                    .flatten();
                return match result {
                    Some(Ok(value)) => Ok(value),
                    Some(Err(error)) => Err(ProviderError::Invalid(error)),
                    None => Err(ProviderError::Invalid(format!(
                        "the provider's {what} could not be fetched"
                    ))),
                };
            }
            Role::Fetch(guard) => guard,
        };
        // No lock is held here: the others are not blocked by a slow provider.
        let result = fetch.await.map(Arc::new);
        let stale = {
            let mut state = self.lock();
            state.fetching = None;
            match &result {
                Ok(value) => {
                    state.value = Some(Arc::clone(value));
                    state.fetched = Some(Instant::now());
                    state.failed = None;
                    None
                }
                Err(_) => {
                    state.failed = Some(Instant::now());
                    usable(&state, MAX_STALE)
                }
            }
        };
        guard.done = true;
        let _ = guard.tx.send(Some(match &result {
            Ok(value) => Ok(Arc::clone(value)),
            Err(error) => Err(error.to_string()),
        }));
        match (result, stale) {
            (Ok(value), _) => Ok(value),
            (Err(error), Some(value)) => {
                tracing::warn!(provider, %error, "could not refresh the provider's {what}; using the previous one");
                Ok(value)
            }
            (Err(error), None) => Err(error),
        }
    }

    /// Decides, under the lock and without waiting, what this caller does.
    fn role(&self, max_age: Duration, what: &str) -> Role<'_, T> {
        let mut state = self.lock();
        if let Some(value) = usable(&state, max_age) {
            return Role::Done(Ok(value));
        }
        let stale = usable(&state, MAX_STALE);
        if state
            .failed
            .is_some_and(|at| at.elapsed() < FAILURE_BACKOFF)
        {
            return Role::Done(stale.ok_or_else(|| {
                ProviderError::Invalid(format!("the provider's {what} failed to load moments ago"))
            }));
        }
        if let Some(rx) = state.fetching.clone() {
            return match stale {
                Some(value) => Role::Done(Ok(value)),
                None => Role::Wait(rx),
            };
        }
        let (tx, rx) = watch::channel(None);
        state.fetching = Some(rx);
        drop(state);
        Role::Fetch(FetchGuard {
            cache: self,
            tx,
            done: false,
        })
    }
}

/// The value in `state` if it was fetched less than `max_age` ago.
fn usable<T>(state: &CacheState<T>, max_age: Duration) -> Option<Arc<T>> {
    state
        .value
        .clone()
        .filter(|_| state.fetched.is_some_and(|at| at.elapsed() < max_age))
}

#[derive(Debug)]
/// One configured provider, with its discovery and keys cached.
pub struct Provider {
    /// Its configuration.
    pub settings: ProviderSettings,
    /// Where the provider sends the browser back (`/api/oidc/<id>/callback`); register it there.
    pub redirect_uri: String,
    /// Where the provider sends the browser after "Sign out of NAME too"; register it there.
    pub post_logout_redirect_uri: String,
    http: reqwest::Client,
    metadata: Cache<Metadata>,
    keys: Cache<JwkSet>,
}

impl Provider {
    /// What the browser is told of it (id and name).
    pub fn info(&self) -> ProviderInfo {
        ProviderInfo {
            id: self.settings.id.clone(),
            name: self.settings.name.clone(),
        }
    }

    /// The discovery document, fetched on first use and once a day after that.
    pub async fn metadata(&self) -> Result<Arc<Metadata>, ProviderError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.settings.issuer.trim_end_matches('/')
        );
        let fetch = async {
            let metadata = self.get_json::<Metadata>(&url).await?;
            self.checked(metadata)
        };
        self.metadata
            .get(METADATA_TTL, fetch, &self.settings.id, "discovery document")
            .await
    }

    /// Discovery §4.3: the document's issuer is exactly the configured one; its endpoints are
    /// HTTPS (plain HTTP only when the issuer itself is a loopback address, as in tests).
    fn checked(&self, metadata: Metadata) -> Result<Metadata, ProviderError> {
        if metadata.issuer != self.settings.issuer {
            return Err(ProviderError::Invalid(format!(
                "the discovery document names the issuer {:?}, not {:?}",
                metadata.issuer, self.settings.issuer
            )));
        }
        let loopback = is_loopback_http(&self.settings.issuer);
        let endpoints = [
            Some(&metadata.authorization_endpoint),
            Some(&metadata.token_endpoint),
            Some(&metadata.jwks_uri),
            metadata.end_session_endpoint.as_ref(),
            metadata.userinfo_endpoint.as_ref(),
        ];
        for endpoint in endpoints.into_iter().flatten() {
            let secure =
                endpoint.starts_with("https://") || (loopback && is_loopback_http(endpoint));
            if !secure || reqwest::Url::parse(endpoint).is_err() {
                return Err(ProviderError::Invalid(format!(
                    "the discovery document's endpoint {endpoint:?} is not an HTTPS URL"
                )));
            }
        }
        Ok(metadata)
    }

    /// The provider's published keys. `refresh`: the caller met a key id it does not know, so
    /// fetch again unless that was done moments ago.
    pub async fn keys(&self, refresh: bool) -> Result<Arc<JwkSet>, ProviderError> {
        let metadata = self.metadata().await?;
        let max_age = if refresh { KEYS_MIN_REFRESH } else { KEYS_TTL };
        let fetch = self.get_json::<JwkSet>(&metadata.jwks_uri);
        self.keys
            .get(max_age, fetch, &self.settings.id, "keys")
            .await
    }

    /// Verifies a token's signature against the provider's keys, fetching them again once if it
    /// names a key not seen yet (the provider rotated its keys).
    pub async fn verify(
        &self,
        token: &str,
    ) -> Result<
        (
            jsonwebtoken::Header,
            serde_json::Map<String, serde_json::Value>,
        ),
        VerifyError,
    > {
        // Cheap checks first: a malformed token or a refused algorithm costs no fetch.
        token::header(token)?;
        let keys = self.keys(false).await?;
        match token::verify(token, &keys) {
            Err(token::TokenError::UnknownKey) => {
                let keys = self.keys(true).await?;
                Ok(token::verify(token, &keys)?)
            }
            other => Ok(other?),
        }
    }

    /// Exchanges an authorization code (with its PKCE verifier) at the token endpoint and returns
    /// the ID token, and the access token if one came with it.
    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: &str,
    ) -> Result<(String, Option<String>), ProviderError> {
        let metadata = self.metadata().await?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_verifier", verifier),
        ];
        let mut request = self.http.post(&metadata.token_endpoint);
        // client_secret_basic unless the provider says it takes only client_secret_post.
        let post_only = metadata
            .token_endpoint_auth_methods_supported
            .as_ref()
            .is_some_and(|methods| {
                !methods.iter().any(|m| m == "client_secret_basic")
                    && methods.iter().any(|m| m == "client_secret_post")
            });
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        if post_only {
            fields.push(("client_id", &self.settings.client_id));
            fields.push(("client_secret", &self.settings.client_secret));
        } else {
            // RFC 6749 §2.3.1: both are form-urlencoded before they go into Basic.
            request = request.basic_auth(
                form_encode(&self.settings.client_id),
                Some(form_encode(&self.settings.client_secret)),
            );
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            id_token: Option<String>,
            access_token: Option<String>,
        }
        #[derive(Deserialize)]
        struct ErrorResponse {
            error: String,
        }
        let url = metadata.token_endpoint.clone();
        let response = request
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&fields)
            .send()
            .await
            .map_err(|error| http_error(&url, error))?;
        let status = response.status();
        let body = read_limited(response, &url).await?;
        if !status.is_success() {
            let error = serde_json::from_slice::<ErrorResponse>(&body)
                .map(|e| e.error)
                .unwrap_or_else(|_| status.to_string());
            return Err(ProviderError::Invalid(format!(
                "the token endpoint refused the code: {error}"
            )));
        }
        let response = serde_json::from_slice::<TokenResponse>(&body)
            .map_err(|_| ProviderError::Invalid("the token response is not JSON".into()))?;
        let id_token = response
            .id_token
            .ok_or_else(|| ProviderError::Invalid("the token response has no id_token".into()))?;
        Ok((id_token, response.access_token))
    }

    /// The UserInfo claims (Core §5.3), for providers that keep the profile out of the ID token.
    /// `None` when there is no endpoint or it fails: the ID token alone signs the person in.
    pub async fn userinfo(
        &self,
        access_token: &str,
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        let metadata = self.metadata().await.ok()?;
        let url = metadata.userinfo_endpoint.as_deref()?;
        let response = self
            .http
            .get(url)
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        let body = read_limited(response, url).await.ok()?;
        serde_json::from_slice(&body).ok()
    }

    async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, ProviderError> {
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|error| http_error(url, error))?;
        if !response.status().is_success() {
            return Err(ProviderError::Http {
                url: url.to_owned(),
                detail: response.status().to_string(),
            });
        }
        let body = read_limited(response, url).await?;
        serde_json::from_slice(&body).map_err(|error| ProviderError::Http {
            url: url.to_owned(),
            detail: format!("not the expected JSON: {error}"),
        })
    }
}

/// A token that could not be verified: refused, or the provider's keys could not be had.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    /// The token itself was refused.
    Token(#[from] token::TokenError),
    #[error(transparent)]
    /// The provider's keys could not be had.
    Provider(#[from] ProviderError),
}

async fn read_limited(
    mut response: reqwest::Response,
    url: &str,
) -> Result<Vec<u8>, ProviderError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| http_error(url, error))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(ProviderError::Http {
                url: url.to_owned(),
                detail: "response too large".into(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// TLS could not be set up for the providers' client.
#[derive(Debug, thiserror::Error)]
#[error("could not set up the HTTP client (TLS) for the identity providers: {0}")]
pub struct TlsSetupError(String);

/// The one HTTP client of every provider: reqwest's rustls (aws-lc-rs) with the system's trust
/// store (rustls-platform-verifier), so a provider behind a company's own CA works once the CA is
/// installed on the machine.
fn http_client() -> Result<reqwest::Client, TlsSetupError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        // A provider's endpoints answer directly; a redirect is not followed anywhere.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("signoff")
        .build()
        .map_err(|error| TlsSetupError(error.to_string()))
}

fn http_error(url: &str, error: reqwest::Error) -> ProviderError {
    ProviderError::Http {
        url: url.to_owned(),
        detail: error.to_string(),
    }
}

/// `application/x-www-form-urlencoded` of one value.
fn form_encode(value: &str) -> String {
    reqwest::Url::parse_with_params("x:", [("v", value)])
        .ok()
        .and_then(|url| url.query().map(|q| q.trim_start_matches("v=").to_owned()))
        .unwrap_or_default()
}

/// `http://` to a loopback address (127.0.0.0/8, `localhost`, `[::1]`).
pub fn is_loopback_http(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else {
        return false;
    };
    let host = url.host_str().unwrap_or_default();
    url.scheme() == "http"
        && (host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()))
}

/// What a session signed in through a provider remembers of it, in the session's data on the
/// server (never sent to the browser): which provider, the provider's session id (`sid`, for
/// back-channel logout) and the ID token (the `id_token_hint` of "Sign out of NAME too").
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionProvider {
    /// The provider's id.
    pub provider: String,
    /// The provider's session id, if it sent one.
    pub sid: Option<String>,
    /// The ID token, for `id_token_hint`.
    pub id_token: String,
}

/// The provider the session in hand was signed in through, as the page names it. Reads only
/// the session already loaded; nothing at all when no provider is configured.
pub async fn session_provider(
    auth: &super::backend::AuthSession,
    providers: &Providers,
) -> Result<Option<ProviderInfo>, crate::error::AppError> {
    if providers.is_empty() {
        return Ok(None);
    }
    Ok(auth
        .session
        .get::<SessionProvider>(SESSION_KEY)
        .await?
        .and_then(|via| providers.get(&via.provider))
        .map(Provider::info))
}

/// The session data key of [`SessionProvider`]; `session::Store` copies `provider` and `sid`
/// into their own columns.
pub const SESSION_KEY: &str = "signoff.oidc";

/// `n` random bytes from the operating system, base64url without padding.
pub fn random_token(n: usize) -> Result<String, crate::error::AppError> {
    use base64::Engine;
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|error| {
        tracing::error!(%error, "no randomness from the operating system");
        crate::error::AppError::internal()
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The PKCE S256 challenge of a verifier (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn failing() -> Result<u32, ProviderError> {
        Err(ProviderError::Invalid("down".into()))
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_fetch_holds_no_one_who_has_a_usable_value() {
        let cache = Arc::new(Cache::<u32>::default());
        let first = cache.get(Duration::from_secs(60), async { Ok(1) }, "p", "keys");
        assert_eq!(*first.await.unwrap(), 1);
        tokio::time::advance(Duration::from_secs(61)).await;
        // One request refreshes against a provider that never answers…
        let slow = tokio::spawn({
            let cache = Arc::clone(&cache);
            async move {
                cache
                    .get(Duration::from_secs(60), std::future::pending(), "p", "keys")
                    .await
            }
        });
        tokio::task::yield_now().await;
        // …and the next is answered at once with the previous value, without waiting on it.
        let next = cache.get(Duration::from_secs(60), async { Ok(2) }, "p", "keys");
        let answer = futures::FutureExt::now_or_never(next).expect("not held by the fetch");
        assert_eq!(*answer.unwrap(), 1);
        slow.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_share_one_fetch_and_an_abandoned_one_is_retried() {
        let cache = Arc::new(Cache::<u32>::default());
        let (done, result) = tokio::sync::oneshot::channel::<u32>();
        let leader = tokio::spawn({
            let cache = Arc::clone(&cache);
            async move {
                let fetch = async { Ok(result.await.unwrap_or(0)) };
                cache.get(Duration::from_secs(60), fetch, "p", "keys").await
            }
        });
        tokio::task::yield_now().await;
        let follower = tokio::spawn({
            let cache = Arc::clone(&cache);
            async move {
                let fetch = async { panic!("a second fetch while one is under way") };
                cache.get(Duration::from_secs(60), fetch, "p", "keys").await
            }
        });
        tokio::task::yield_now().await;
        done.send(7).unwrap();
        assert_eq!(*leader.await.unwrap().unwrap(), 7);
        assert_eq!(*follower.await.unwrap().unwrap(), 7);

        // A fetch whose request is dropped: the next caller fetches again.
        let cache = Cache::<u32>::default();
        let abandoned = cache.get(Duration::from_secs(60), std::future::pending(), "p", "keys");
        assert!(futures::FutureExt::now_or_never(abandoned).is_none());
        let again = cache.get(Duration::from_secs(60), async { Ok(9) }, "p", "keys");
        assert_eq!(*again.await.unwrap(), 9);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_value_has_a_maximum_age() {
        let cache = Cache::<u32>::default();
        let first = cache.get(Duration::from_secs(60), async { Ok(1) }, "p", "keys");
        assert_eq!(*first.await.unwrap(), 1);
        // Refreshing fails: the previous value stays in use for a while…
        tokio::time::advance(Duration::from_secs(120)).await;
        assert_eq!(
            *cache
                .get(Duration::from_secs(60), failing(), "p", "keys")
                .await
                .unwrap(),
            1
        );
        // …but not for ever.
        tokio::time::advance(MAX_STALE).await;
        assert!(cache
            .get(Duration::from_secs(60), failing(), "p", "keys")
            .await
            .is_err());
    }

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn loopback_http_only() {
        assert!(is_loopback_http("http://127.0.0.1:4000"));
        assert!(is_loopback_http("http://127.0.0.2/x"));
        assert!(is_loopback_http("http://localhost:1"));
        assert!(is_loopback_http("http://[::1]:8080"));
        assert!(!is_loopback_http("http://idp.example.com"));
        assert!(!is_loopback_http("https://127.0.0.1"));
        assert!(!is_loopback_http("http://127.0.0.1.evil.test"));
    }

    #[test]
    fn form_encoding_of_client_credentials() {
        assert_eq!(form_encode("a b+c:d"), "a+b%2Bc%3Ad");
        assert_eq!(form_encode("plain"), "plain");
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("https://idp.example.com/oauth2/auth?x=1").as_deref(),
            Some("https://idp.example.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:4000/auth").as_deref(),
            Some("http://127.0.0.1:4000")
        );
        assert_eq!(origin_of("not a url"), None);
    }
}
