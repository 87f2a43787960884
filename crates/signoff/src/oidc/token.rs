//! The provider's signed tokens: verifying a JWS against the provider's JWKS, and the rules of
//! the two kinds Signoff accepts, the ID token (OpenID Connect Core 1.0 §3.1.3.7) and the logout
//! token (OpenID Connect Back-Channel Logout 1.0 §2.6). Pure functions over the token, the keys
//! and the clock, so that every rule has a unit test; fetching the keys is `super::Provider`'s.

use jsonwebtoken::{
    jwk::{AlgorithmParameters, JwkSet, PublicKeyUse},
    Algorithm, DecodingKey, Header, Validation,
};
use serde_json::{Map, Value};

/// The back-channel logout event's member of a logout token's `events` claim.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Clock difference tolerated between the provider and this server, each way.
pub const LEEWAY_SECS: i64 = 60;
/// How old a logout token may be (`iat`) and still be accepted. The provider sends it at the
/// moment of logout; an older one is stale or replayed from long ago.
pub const LOGOUT_TOKEN_MAX_AGE_SECS: i64 = 5 * 60;
/// Tokens are a few kilobytes; anything much larger is refused before it is decoded.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a token was refused. The message is what the back-channel endpoint answers with
/// (`error_description`) and what the log says; it never contains the token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed signed JWT")]
    /// The token is not a well-formed signed JWT.
    Malformed,
    #[error("the token's algorithm {0:?} is not accepted")]
    /// The token's algorithm … is not accepted.
    Algorithm(String),
    #[error("the token is signed with a key the provider does not publish")]
    /// The token is signed with a key the provider does not publish.
    UnknownKey,
    #[error("the token's signature does not verify")]
    /// The token's signature does not verify.
    Signature,
    #[error("the token's `typ` is {0:?}, expected \"logout+jwt\"")]
    /// The token's `typ` is …, expected "logout+jwt".
    Type(String),
    #[error("the token's issuer is not this provider")]
    /// The token's issuer is not this provider.
    Issuer,
    #[error("the token is not addressed to this client")]
    /// The token is not addressed to this client.
    Audience,
    #[error("the token has expired")]
    /// The token has expired.
    Expired,
    #[error("the token was issued in the future or too long ago")]
    /// The token was issued in the future or too long ago.
    IssuedAt,
    #[error("the token's nonce does not match this sign-in")]
    /// The token's nonce does not match this sign-in.
    Nonce,
    #[error("the token lacks the claim `{0}`")]
    /// The token lacks the claim `…`.
    Missing(&'static str),
    #[error("a logout token must not contain a nonce")]
    /// A logout token must not contain a nonce.
    HasNonce,
    #[error("the token's `events` claim is not a back-channel logout event")]
    /// The token's `events` claim is not a back-channel logout event.
    Events,
    #[error("a logout token must name a `sub` or a `sid`")]
    /// A logout token must name a `sub` or a `sid`.
    NoSubject,
}

/// Algorithms accepted for the provider's signatures: asymmetric only. `none` is never accepted,
/// and neither is HMAC: a key published in a JWKS would then be a shared secret anyone could
/// sign with (algorithm confusion).
const ACCEPTED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The token's header, read without trusting it (to pick a key).
pub fn header(token: &str) -> Result<Header, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    if !ACCEPTED.contains(&header.alg) {
        return Err(TokenError::Algorithm(format!("{:?}", header.alg)));
    }
    Ok(header)
}

/// Verifies the signature with the matching key of `keys` and returns the claims, unchecked.
/// [`TokenError::UnknownKey`] means no published key fits: the caller may fetch the JWKS again
/// (the provider rotated its keys) and retry once.
pub fn verify(token: &str, keys: &JwkSet) -> Result<(Header, Map<String, Value>), TokenError> {
    let header = header(token)?;
    let mut validation = Validation::new(header.alg);
    // Only the signature here: the claims are checked by the rules below, with our own errors.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let mut candidates = keys.keys.iter().filter(|jwk| {
        let kid_fits = match (&header.kid, &jwk.common.key_id) {
            (Some(kid), Some(key_id)) => kid == key_id,
            // A token without `kid` may use any key (Core §10.1: the provider has just one).
            (None, _) => true,
            (Some(_), None) => false,
        };
        let use_fits = !matches!(
            jwk.common.public_key_use,
            Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
        );
        let alg_fits = jwk
            .common
            .key_algorithm
            .is_none_or(|alg| format!("{alg:?}") == format!("{:?}", header.alg));
        let asymmetric = !matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_));
        kid_fits && use_fits && alg_fits && asymmetric
    });
    let mut tried = false;
    for jwk in candidates.by_ref() {
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        tried = true;
        if let Ok(data) = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation) {
            return Ok((data.header, data.claims));
        }
    }
    if tried {
        Err(TokenError::Signature)
    } else {
        Err(TokenError::UnknownKey)
    }
}

/// What Signoff takes from a valid ID token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdClaims {
    /// The `sub` claim: the account at the provider.
    pub subject: String,
    /// The provider's session id, if it sends one (needed to match a back-channel logout by `sid`).
    pub sid: Option<String>,
    /// The `preferred_username` claim, if any.
    pub preferred_username: Option<String>,
    /// The `email` claim, if any.
    pub email: Option<String>,
    /// The `name` claim, if any.
    pub name: Option<String>,
}

impl IdClaims {
    /// Takes the profile from UserInfo claims, which count only for the same subject (Core
    /// §5.3.2: "the sub Claim in the UserInfo Response MUST be verified to exactly match").
    pub fn merge_userinfo(&mut self, info: &Map<String, Value>) {
        if text(info, "sub") != Some(self.subject.as_str()) {
            return;
        }
        let take = |name: &str| text(info, name).map(str::to_owned);
        self.preferred_username = self
            .preferred_username
            .take()
            .or_else(|| take("preferred_username"));
        self.email = self.email.take().or_else(|| take("email"));
        self.name = self.name.take().or_else(|| take("name"));
    }
}

/// The rules of an ID token from the token endpoint (Core §3.1.3.7): issuer exact, audience
/// containing our client id (and `azp` equal to it when there are several), not expired, not
/// issued in the future, and the nonce of this sign-in.
pub fn check_id_token(
    claims: &Map<String, Value>,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now: i64,
) -> Result<IdClaims, TokenError> {
    check_issuer_and_audience(claims, issuer, client_id)?;
    let exp = int(claims, "exp").ok_or(TokenError::Missing("exp"))?;
    if exp + LEEWAY_SECS <= now {
        return Err(TokenError::Expired);
    }
    let iat = int(claims, "iat").ok_or(TokenError::Missing("iat"))?;
    if iat > now + LEEWAY_SECS {
        return Err(TokenError::IssuedAt);
    }
    let given = text(claims, "nonce").ok_or(TokenError::Missing("nonce"))?;
    if !constant_time_eq(given.as_bytes(), nonce.as_bytes()) {
        return Err(TokenError::Nonce);
    }
    let subject = text(claims, "sub")
        .filter(|sub| !sub.is_empty())
        .ok_or(TokenError::Missing("sub"))?;
    Ok(IdClaims {
        subject: subject.to_owned(),
        sid: text(claims, "sid").map(str::to_owned),
        preferred_username: text(claims, "preferred_username").map(str::to_owned),
        email: text(claims, "email").map(str::to_owned),
        name: text(claims, "name").map(str::to_owned),
    })
}

/// What a valid logout token names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogoutClaims {
    /// The `sub` claim, if any.
    pub subject: Option<String>,
    /// The `sid` claim, if any.
    pub sid: Option<String>,
    /// The token's id, remembered so that it is used once.
    pub jti: String,
    /// Until when the token could be accepted (Unix seconds): how long its `jti` is remembered.
    pub usable_until: i64,
}

/// The rules of a logout token (Back-Channel Logout §2.6): signed (checked by [`verify`]),
/// typed `logout+jwt` (or untyped, or plain `JWT`: see below), issuer exact, audience ours,
/// issued recently, not expired if it says when, the back-channel logout event, no `nonce`, a
/// `jti`, and a `sub` or a `sid`.
pub fn check_logout_token(
    header: &Header,
    claims: &Map<String, Value>,
    issuer: &str,
    client_id: &str,
    now: i64,
) -> Result<LogoutClaims, TokenError> {
    let typ = header.typ.as_deref().unwrap_or_default();
    // The media type is case-insensitive and may carry the "application/" prefix (RFC 7515 §4.1.9).
    let is = |name: &str| {
        typ.eq_ignore_ascii_case(name) || typ.eq_ignore_ascii_case(&format!("application/{name}"))
    };
    // §2.6 only recommends `logout+jwt`: Keycloak before 25 and Authentik before 2025.12 send
    // `JWT`, and some send no `typ`. Those are accepted because the rules below still tell a
    // logout token from an ID token (the `events` member, no `nonce`); any other explicit type
    // (an access token's `at+jwt`, …) is refused.
    let typ_ok = is("logout+jwt") || is("jwt") || typ.is_empty();
    if !typ_ok {
        return Err(TokenError::Type(typ.to_owned()));
    }
    check_issuer_and_audience(claims, issuer, client_id)?;
    let iat = int(claims, "iat").ok_or(TokenError::Missing("iat"))?;
    if iat > now + LEEWAY_SECS || iat + LOGOUT_TOKEN_MAX_AGE_SECS + LEEWAY_SECS < now {
        return Err(TokenError::IssuedAt);
    }
    let exp = int(claims, "exp");
    if exp.is_some_and(|exp| exp + LEEWAY_SECS <= now) {
        return Err(TokenError::Expired);
    }
    if claims.contains_key("nonce") {
        return Err(TokenError::HasNonce);
    }
    let event = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|events| events.get(BACKCHANNEL_LOGOUT_EVENT));
    if !event.is_some_and(Value::is_object) {
        return Err(TokenError::Events);
    }
    let jti = text(claims, "jti")
        .filter(|jti| !jti.is_empty() && jti.len() <= 256)
        .ok_or(TokenError::Missing("jti"))?;
    let nonempty = |name| text(claims, name).filter(|v| !v.is_empty() && v.len() <= 1024);
    let subject = nonempty("sub").map(str::to_owned);
    let sid = nonempty("sid").map(str::to_owned);
    if subject.is_none() && sid.is_none() {
        return Err(TokenError::NoSubject);
    }
    let accepted_until = iat + LOGOUT_TOKEN_MAX_AGE_SECS + LEEWAY_SECS;
    Ok(LogoutClaims {
        subject,
        sid,
        jti: jti.to_owned(),
        usable_until: exp.map_or(accepted_until, |exp| exp.max(accepted_until)),
    })
}

fn check_issuer_and_audience(
    claims: &Map<String, Value>,
    issuer: &str,
    client_id: &str,
) -> Result<(), TokenError> {
    if text(claims, "iss") != Some(issuer) {
        return Err(TokenError::Issuer);
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err(TokenError::Missing("aud")),
    };
    if !audiences.contains(&client_id) {
        return Err(TokenError::Audience);
    }
    // Several audiences: the token must say it was issued to us (Core §3.1.3.7, items 4 and 5).
    if audiences.len() > 1 && text(claims, "azp") != Some(client_id) {
        return Err(TokenError::Audience);
    }
    if let Some(azp) = text(claims, "azp") {
        if azp != client_id {
            return Err(TokenError::Audience);
        }
    }
    Ok(())
}

fn int(claims: &Map<String, Value>, name: &str) -> Option<i64> {
    let value = claims.get(name)?;
    // NumericDate may be fractional (RFC 7519 §2).
    value.as_i64().or_else(|| value.as_f64().map(|f| f as i64))
}

/// A text claim. One with a control character counts as absent: no provider issues such ids,
/// and they would otherwise reach the database (PostgreSQL refuses a NUL byte in text).
fn text<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|text| !text.chars().any(char::is_control))
}

/// Compares secrets without an early exit on the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use crate::oidc::token::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn logout(extra: Value) -> Map<String, Value> {
        let mut base = claims(json!({
            "iss": "https://idp.test",
            "aud": "client",
            "iat": NOW,
            "jti": "j1",
            "sid": "s1",
            "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
        }));
        for (key, value) in claims(extra) {
            if value.is_null() {
                base.remove(&key);
            } else {
                base.insert(key, value);
            }
        }
        base
    }

    fn typed(typ: &str) -> Header {
        Header {
            typ: Some(typ.to_owned()),
            ..Header::new(Algorithm::RS256)
        }
    }

    fn check(extra: Value) -> Result<LogoutClaims, TokenError> {
        check_logout_token(
            &typed("logout+jwt"),
            &logout(extra),
            "https://idp.test",
            "client",
            NOW,
        )
    }

    #[test]
    fn a_proper_logout_token_is_accepted() {
        let ok = check(json!({})).unwrap();
        assert_eq!(ok.sid.as_deref(), Some("s1"));
        assert_eq!(ok.jti, "j1");
        assert!(ok.usable_until >= NOW + LOGOUT_TOKEN_MAX_AGE_SECS);
        assert!(check(json!({"sid": null, "sub": "alice"})).is_ok());
        assert!(check(json!({"aud": ["other", "client"], "azp": "client"})).is_ok());
    }

    #[test]
    fn every_logout_token_rule_refuses() {
        assert_eq!(
            check(json!({"iss": "https://evil.test"})),
            Err(TokenError::Issuer)
        );
        assert_eq!(check(json!({"aud": "other"})), Err(TokenError::Audience));
        assert_eq!(
            check(json!({"aud": ["other", "client"]})),
            Err(TokenError::Audience)
        );
        assert_eq!(check(json!({"aud": null})), Err(TokenError::Missing("aud")));
        assert_eq!(check(json!({"iat": null})), Err(TokenError::Missing("iat")));
        assert_eq!(check(json!({"iat": NOW + 3600})), Err(TokenError::IssuedAt));
        assert_eq!(check(json!({"iat": NOW - 3600})), Err(TokenError::IssuedAt));
        assert_eq!(check(json!({"exp": NOW - 3600})), Err(TokenError::Expired));
        assert_eq!(check(json!({"nonce": "n"})), Err(TokenError::HasNonce));
        assert_eq!(check(json!({"events": null})), Err(TokenError::Events));
        assert_eq!(
            check(json!({"events": {"other": {}}})),
            Err(TokenError::Events)
        );
        assert_eq!(
            check(json!({"events": {BACKCHANNEL_LOGOUT_EVENT: "x"}})),
            Err(TokenError::Events)
        );
        assert_eq!(check(json!({"jti": null})), Err(TokenError::Missing("jti")));
        assert_eq!(check(json!({"sid": null})), Err(TokenError::NoSubject));
        // Control characters (a NUL would reach the database) make a claim count as absent.
        assert_eq!(
            check(json!({"jti": "a\u{0}b"})),
            Err(TokenError::Missing("jti"))
        );
        assert_eq!(
            check(json!({"sid": "s\u{0}", "sub": null})),
            Err(TokenError::NoSubject)
        );
        let check_typed = |typ: &str, extra: Value| {
            check_logout_token(
                &typed(typ),
                &logout(extra),
                "https://idp.test",
                "client",
                NOW,
            )
        };
        for typ in ["at+jwt", "application/at+jwt", "secevent+jwt", "jose"] {
            assert_eq!(
                check_typed(typ, json!({})),
                Err(TokenError::Type(typ.to_owned()))
            );
        }
        // What older providers send: accepted when every other rule holds…
        for typ in ["JWT", "jwt", "application/jwt", ""] {
            assert!(check_typed(typ, json!({})).is_ok(), "{typ:?}");
            // …and an ID token posted as a logout token is still refused.
            assert_eq!(
                check_typed(typ, json!({"events": null})),
                Err(TokenError::Events)
            );
            assert_eq!(
                check_typed(typ, json!({"nonce": "n1"})),
                Err(TokenError::HasNonce)
            );
        }
        assert!(check_logout_token(
            &typed("application/logout+jwt"),
            &logout(json!({})),
            "https://idp.test",
            "client",
            NOW
        )
        .is_ok());
    }

    #[test]
    fn id_token_rules() {
        let good = claims(json!({
            "iss": "https://idp.test", "aud": "client", "sub": "alice",
            "exp": NOW + 300, "iat": NOW, "nonce": "n1", "sid": "s1",
        }));
        let check = |extra: Value| {
            let mut token = good.clone();
            for (key, value) in claims(extra) {
                if value.is_null() {
                    token.remove(&key);
                } else {
                    token.insert(key, value);
                }
            }
            check_id_token(&token, "https://idp.test", "client", "n1", NOW)
        };
        let ok = check(json!({})).unwrap();
        assert_eq!(
            (ok.subject.as_str(), ok.sid.as_deref()),
            ("alice", Some("s1"))
        );
        assert_eq!(check(json!({"nonce": "n2"})), Err(TokenError::Nonce));
        assert_eq!(
            check(json!({"nonce": null})),
            Err(TokenError::Missing("nonce"))
        );
        assert_eq!(check(json!({"exp": NOW - 3600})), Err(TokenError::Expired));
        assert_eq!(check(json!({"iat": NOW + 3600})), Err(TokenError::IssuedAt));
        assert_eq!(check(json!({"aud": "other"})), Err(TokenError::Audience));
        assert_eq!(check(json!({"azp": "other"})), Err(TokenError::Audience));
        assert_eq!(
            check(json!({"iss": "https://idp.test/"})),
            Err(TokenError::Issuer)
        );
        assert_eq!(check(json!({"sub": ""})), Err(TokenError::Missing("sub")));
    }

    #[test]
    fn userinfo_counts_only_for_the_same_subject() {
        let mut claims = IdClaims {
            subject: "alice".into(),
            sid: None,
            preferred_username: None,
            email: None,
            name: None,
        };
        claims.merge_userinfo(&self::claims(
            json!({"sub": "mallory", "preferred_username": "boss"}),
        ));
        assert_eq!(claims.preferred_username, None);
        claims.merge_userinfo(&self::claims(
            json!({"sub": "alice", "preferred_username": "al"}),
        ));
        assert_eq!(claims.preferred_username.as_deref(), Some("al"));
    }

    #[test]
    fn unsigned_and_symmetric_tokens_are_refused_before_any_key() {
        // {"alg":"none"} . {} . (no signature)
        assert_eq!(
            header("eyJhbGciOiJub25lIn0.e30."),
            Err(TokenError::Malformed)
        );
        // {"alg":"HS256"}
        assert_eq!(
            header("eyJhbGciOiJIUzI1NiJ9.e30.c2ln"),
            Err(TokenError::Algorithm("HS256".into()))
        );
        assert_eq!(header("not a token"), Err(TokenError::Malformed));
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(header(&huge), Err(TokenError::Malformed));
    }
}
