//! Tokens: JWT verification into an [`Identity`], and minting for `switchboard token`.
//!
//! HS256 with the server's secret is always accepted. A deployment may also trust tokens from its
//! identity provider, signed with RS256, ES256 or EdDSA (`jwt_algorithms`), verified against PEM
//! files (`jwt_public_keys`) and/or a JWKS (`jwks_url`, see [`crate::keys`]).
//!
//! The header's `alg` picks the key, never the other way round: an `HS256` header is checked only
//! against the HMAC secret, an asymmetric one only against public keys of the matching type, so
//! neither `alg: none` nor algorithm confusion (an HMAC over a public key, an `RS256` header over
//! an HMAC made with the secret) can pass.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use switchboard_core::Identity;
use switchboard_protocol::{Role, RoomGrant, SignalError};

use crate::{
    config::Config,
    keys::{ASYMMETRIC, Jwks, PublicKey},
    verified::{self, VerifiedTokens},
};

/// The claims switchboard reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Issued at, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Room grant: an id, or a prefix ending in `*`.
    pub room: String,
    /// `host` or `guest` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A lobby token (share code of a room whose lobby is on): its session may only `knock`
    /// until a host admits it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lobby: bool,
}

/// Longest `sub` and `name` accepted, in bytes.
const MAX_CLAIM_BYTES: usize = 256;

/// Checks tokens: HS256 against the server's secret, and asymmetric ones against the configured
/// public keys.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
    public: Option<PublicKeys>,
    /// HS256 tokens already verified (see [`crate::verified`]).
    verified: VerifiedTokens,
}

/// The asymmetric side of a [`Verifier`].
struct PublicKeys {
    /// `jwt_algorithms`: the header algorithms accepted.
    algorithms: Vec<Algorithm>,
    /// Claims checks (`exp`, `sub`, `jwt_issuer`, `jwt_audience`); `algorithms` is set per token.
    validation: Validation,
    /// Keys from `jwt_public_keys`.
    files: Vec<PublicKey>,
    /// The key set at `jwks_url`.
    jwks: Option<Arc<Jwks>>,
}

/// Why [`Verifier::check`] did not produce an identity.
enum TokenRefusal {
    /// The token names a key id the key set does not have (yet).
    UnknownKid,
    Invalid(SignalError),
}

impl From<SignalError> for TokenRefusal {
    fn from(e: SignalError) -> Self {
        TokenRefusal::Invalid(e)
    }
}

fn base_validation(alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.set_required_spec_claims(&["exp", "sub"]);
    validation.leeway = 30;
    validation
}

impl Verifier {
    /// A verifier for HS256 tokens signed with `secret`.
    pub fn new(secret: &[u8]) -> Self {
        Verifier {
            key: DecodingKey::from_secret(secret),
            validation: base_validation(Algorithm::HS256),
            public: None,
            verified: VerifiedTokens::new(verified::CAPACITY),
        }
    }

    /// A verifier for HS256 tokens signed with `secret` and, when `config` names public keys or a
    /// key set, for tokens of `jwt_algorithms`. Reads the PEM files; fetches nothing yet (see
    /// [`Verifier::refresh_keys`]).
    pub fn from_config(config: &Config, secret: &[u8]) -> Result<Self, String> {
        let mut verifier = Verifier::new(secret);
        if config.jwks_url.is_none() && config.jwt_public_keys.is_empty() {
            return Ok(verifier);
        }
        let algorithms = config
            .jwt_algorithms
            .iter()
            .map(|name| {
                name.parse::<Algorithm>()
                    .ok()
                    .filter(|a| ASYMMETRIC.contains(a))
                    .ok_or_else(|| {
                        format!("jwt_algorithms: `{name}` is not an accepted asymmetric algorithm")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if algorithms.is_empty() {
            return Err("jwt_algorithms must name at least one algorithm".into());
        }
        let mut validation = base_validation(algorithms[0]);
        let mut required = vec!["exp", "sub"];
        if let Some(iss) = &config.jwt_issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        match &config.jwt_audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        let files = config
            .jwt_public_keys
            .iter()
            .map(|path| PublicKey::from_pem_file(path))
            .collect::<Result<Vec<_>, _>>()?;
        let jwks = match &config.jwks_url {
            Some(url) => Some(Arc::new(Jwks::new(
                url,
                Duration::from_millis(config.jwks_timeout_ms),
                Duration::from_millis(config.jwks_cooldown_ms),
                algorithms.clone(),
            )?)),
            None => None,
        };
        verifier.public = Some(PublicKeys {
            algorithms,
            validation,
            files,
            jwks,
        });
        Ok(verifier)
    }

    /// The key set, when `jwks_url` is configured.
    pub fn jwks(&self) -> Option<&Arc<Jwks>> {
        self.public.as_ref().and_then(|p| p.jwks.as_ref())
    }

    /// Fetches the key set now, if there is one (bounded by `jwks_timeout_ms`).
    pub async fn refresh_keys(&self) -> Result<(), String> {
        match self.jwks() {
            Some(jwks) => jwks.refresh().await.map(|_| ()),
            None => Ok(()),
        }
    }

    /// The identity a token proves, or `unauthorized` with a reason that reveals nothing secret.
    ///
    /// A token naming a key id the key set does not have is refused, and a refresh of the key set
    /// starts in the background (at most once per `jwks_cooldown_ms`); [`Verifier::verify_async`]
    /// waits for that refresh instead.
    pub fn verify(&self, token: &str) -> Result<Identity, SignalError> {
        match self.check(token, false) {
            Ok(identity) => Ok(identity),
            Err(TokenRefusal::Invalid(e)) => Err(e),
            Err(TokenRefusal::UnknownKid) => {
                if let Some(jwks) = self.jwks() {
                    jwks.refresh_for_unknown_kid_later();
                }
                Err(unknown_kid())
            }
        }
    }

    /// [`Verifier::verify`], but a token naming an unknown key id waits for a refresh of the key
    /// set (unless one ran less than `jwks_cooldown_ms` ago) and is checked again.
    pub async fn verify_async(&self, token: &str) -> Result<Identity, SignalError> {
        self.verify_presented(token, false).await
    }

    /// [`Verifier::verify_async`] for a token its client presents with every request (the HTTP
    /// transports' polls and posts): an HS256 token is kept once verified (see
    /// [`crate::verified`]). A WebSocket presents its token once, so it is not kept: that would
    /// only add to every idle session's memory.
    pub async fn verify_repeated(&self, token: &str) -> Result<Identity, SignalError> {
        self.verify_presented(token, true).await
    }

    async fn verify_presented(&self, token: &str, keep: bool) -> Result<Identity, SignalError> {
        match self.check(token, keep) {
            Ok(identity) => Ok(identity),
            Err(TokenRefusal::Invalid(e)) => Err(e),
            Err(TokenRefusal::UnknownKid) => {
                if let Some(jwks) = self.jwks() {
                    jwks.refresh_for_unknown_kid().await;
                }
                self.check(token, keep).map_err(|r| match r {
                    TokenRefusal::Invalid(e) => e,
                    TokenRefusal::UnknownKid => unknown_kid(),
                })
            }
        }
    }

    /// Verifies `token`, found among the kept ones or in full; `keep` keeps an HS256 token
    /// verified in full.
    fn check(&self, token: &str, keep: bool) -> Result<Identity, TokenRefusal> {
        let now = unix_now();
        if let Some(identity) = self.verified.get(token, now) {
            return Ok(identity);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            SignalError::Unauthorized(match e.kind() {
                jsonwebtoken::errors::ErrorKind::Json(_) => {
                    "token header is malformed or names an algorithm that is not accepted".into()
                }
                _ => describe(&e),
            })
        })?;
        if header.alg == Algorithm::HS256 {
            let (identity, exp) = decode(token, &self.key, &self.validation)?;
            if keep {
                let until = exp.saturating_add(self.validation.leeway);
                self.verified.insert(token, &identity, until, now);
            }
            return Ok(identity);
        }
        let Some(public) = &self.public else {
            return Err(not_accepted().into());
        };
        if !public.algorithms.contains(&header.alg) {
            return Err(not_accepted().into());
        }
        let jwks_keys = public.jwks.as_ref().map(|j| j.keys());
        let from_set = jwks_keys.iter().flat_map(|keys| keys.iter());
        let mut candidates: Vec<&PublicKey> = match &header.kid {
            Some(kid) => from_set
                .filter(|k| k.kid.as_deref() == Some(kid.as_str()))
                .collect(),
            None => from_set.collect(),
        };
        candidates.extend(public.files.iter());
        candidates.retain(|k| k.accepts(header.alg));
        if candidates.is_empty() {
            return Err(if header.kid.is_some() && public.jwks.is_some() {
                TokenRefusal::UnknownKid
            } else {
                SignalError::Unauthorized("no key accepts this token's algorithm".into()).into()
            });
        }
        let mut validation = public.validation.clone();
        validation.algorithms = vec![header.alg];
        let mut last = None;
        for key in candidates {
            match decode(token, &key.key, &validation) {
                Ok((identity, _)) => return Ok(identity),
                // Another key may have signed it; any other failure is about the token itself.
                Err(SignalError::Unauthorized(m)) if m == BAD_SIGNATURE => last = Some(m),
                Err(e) => return Err(e.into()),
            }
        }
        Err(SignalError::Unauthorized(last.unwrap_or_else(|| BAD_SIGNATURE.into())).into())
    }
}

const BAD_SIGNATURE: &str = "token signature does not verify";

fn not_accepted() -> SignalError {
    SignalError::Unauthorized("token algorithm not accepted".into())
}

fn unknown_kid() -> SignalError {
    SignalError::Unauthorized("token key id (`kid`) is not in the key set".into())
}

/// Checks the signature and claims of `token` with one key, and reads the identity and the
/// token's `exp`.
fn decode(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
) -> Result<(Identity, u64), SignalError> {
    let data = jsonwebtoken::decode::<Claims>(token, key, validation)
        .map_err(|e| SignalError::Unauthorized(describe(&e)))?;
    let claims = data.claims;
    if claims.sub.is_empty() || claims.sub.len() > MAX_CLAIM_BYTES {
        return Err(SignalError::Unauthorized(
            "`sub` must be 1 to 256 bytes".into(),
        ));
    }
    if claims
        .name
        .as_ref()
        .is_some_and(|n| n.len() > MAX_CLAIM_BYTES)
    {
        return Err(SignalError::Unauthorized(
            "`name` must be at most 256 bytes".into(),
        ));
    }
    let identity = Identity {
        user: claims.sub.into(),
        role: claims.role.unwrap_or_default(),
        name: claims.name,
        grant: RoomGrant::parse(&claims.room)?,
        lobby: claims.lobby,
        // Set by the transport, which knows the connection.
        address: None,
        // Set by the server when it opens a session (TURN credentials).
        ice_servers: Vec::new(),
    };
    Ok((identity, claims.exp))
}

/// Now, in Unix seconds, as `exp` counts.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "token expired".into(),
        K::ImmatureSignature => "token not valid yet".into(),
        K::InvalidSignature => BAD_SIGNATURE.into(),
        K::InvalidIssuer => "token issuer (`iss`) not accepted".into(),
        K::InvalidAudience => "token audience (`aud`) not accepted".into(),
        K::InvalidAlgorithm | K::InvalidAlgorithmName => "token algorithm not accepted".into(),
        K::MissingRequiredClaim(c) => format!("token lacks the `{c}` claim"),
        K::Json(_) => "token claims are malformed (need sub, exp, room)".into(),
        _ => "token is malformed".into(),
    }
}

/// Signs tokens with the server's secret.
pub struct Signer {
    key: EncodingKey,
}

impl Signer {
    /// A signer for `secret`.
    pub fn new(secret: &[u8]) -> Self {
        Signer {
            key: EncodingKey::from_secret(secret),
        }
    }

    /// A token for `user` in `room` valid for `ttl` from now.
    pub fn mint(
        &self,
        user: &str,
        room: &str,
        role: Role,
        name: Option<String>,
        ttl: Duration,
    ) -> Result<String, SignalError> {
        self.mint_as(user, room, role, name, ttl, false)
    }

    /// [`Signer::mint`], for a lobby token when `lobby` is set (its session may only `knock`).
    pub fn mint_as(
        &self,
        user: &str,
        room: &str,
        role: Role,
        name: Option<String>,
        ttl: Duration,
        lobby: bool,
    ) -> Result<String, SignalError> {
        RoomGrant::parse(room)?;
        let now = unix_now();
        let claims = Claims {
            sub: user.to_owned(),
            exp: now + ttl.as_secs().max(1),
            iat: Some(now),
            room: room.to_owned(),
            role: Some(role),
            name,
            lobby,
        };
        self.sign(&claims)
    }

    /// Signs arbitrary claims (tests use it for expired or odd tokens).
    pub fn sign(&self, claims: &Claims) -> Result<String, SignalError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.key)
            .map_err(|_| SignalError::Internal)
    }
}

/// The token of a request: `Authorization: Bearer` first, then the `token` query parameter.
pub fn token_from<'a>(headers: &'a HeaderMap, query_token: Option<&'a str>) -> Option<&'a str> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    bearer.or(query_token).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    const SECRET: &[u8] = b"test-secret-test-secret-test-sec";

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn minted_tokens_verify() {
        let t = Signer::new(SECRET)
            .mint(
                "u1",
                "r-*",
                Role::Host,
                Some("Ann".into()),
                Duration::from_secs(60),
            )
            .unwrap();
        let id = Verifier::new(SECRET).verify(&t).unwrap();
        assert_eq!(&*id.user, "u1");
        assert_eq!(id.role, Role::Host);
        assert_eq!(id.name.as_deref(), Some("Ann"));
        assert_eq!(id.grant, RoomGrant::Prefix("r-".into()));
    }

    #[test]
    fn rejects_wrong_key_expired_none_and_confusion() {
        let v = Verifier::new(SECRET);
        let other = Signer::new(b"another-secret-another-secret-xx")
            .mint("u", "r", Role::Guest, None, Duration::from_secs(60))
            .unwrap();
        assert!(v.verify(&other).is_err());
        let expired = Signer::new(SECRET)
            .sign(&Claims {
                sub: "u".into(),
                exp: 1000,
                iat: None,
                room: "r".into(),
                role: None,
                name: None,
                lobby: false,
            })
            .unwrap();
        assert_eq!(v.verify(&expired).unwrap_err().to_string(), "token expired");
        let payload = b64(r#"{"sub":"u","exp":99999999999,"room":"r"}"#);
        let none = format!("{}.{payload}.", b64(r#"{"alg":"none","typ":"JWT"}"#));
        assert!(v.verify(&none).is_err());
        // An RS256 header over an HMAC signature made with the secret: algorithm confusion.
        let header = b64(r#"{"alg":"RS256","typ":"JWT"}"#);
        let valid = Signer::new(SECRET)
            .mint("u", "r", Role::Guest, None, Duration::from_secs(60))
            .unwrap();
        let sig = valid.rsplit('.').next().unwrap();
        assert!(v.verify(&format!("{header}.{payload}.{sig}")).is_err());
        assert!(v.verify("garbage").is_err());
        assert!(v.verify("").is_err());
    }

    #[test]
    fn requires_room_and_valid_grant() {
        #[derive(Serialize)]
        struct NoRoom {
            sub: &'static str,
            exp: u64,
        }
        let key = EncodingKey::from_secret(SECRET);
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &NoRoom {
                sub: "u",
                exp: 99_999_999_999,
            },
            &key,
        )
        .unwrap();
        assert!(Verifier::new(SECRET).verify(&t).is_err());
        assert!(
            Signer::new(SECRET)
                .mint("u", "bad room", Role::Guest, None, Duration::from_secs(5))
                .is_err()
        );
    }

    #[test]
    fn a_verified_token_is_kept_and_nothing_else_passes_for_it() {
        let v = Verifier::new(SECRET);
        let t = Signer::new(SECRET)
            .mint("u1", "r1", Role::Host, None, Duration::from_secs(60))
            .unwrap();
        assert_eq!(&*v.verify(&t).unwrap().user, "u1");
        assert!(v.verified.is_empty(), "a token presented once is not kept");
        assert_eq!(&*v.check(&t, true).ok().unwrap().user, "u1");
        assert_eq!(v.verified.len(), 1);
        assert_eq!(&*v.verify(&t).unwrap().user, "u1");
        // The same header and claims with another signature, and a token of another secret.
        let at = t.len() - 10;
        let swapped = if &t[at..=at] == "A" { "B" } else { "A" };
        let forged = format!("{}{swapped}{}", &t[..at], &t[at + 1..]);
        assert!(v.check(&forged, true).is_err());
        let other = Signer::new(b"another-secret-another-secret-an")
            .mint("u1", "r1", Role::Host, None, Duration::from_secs(60))
            .unwrap();
        assert!(v.check(&other, true).is_err());
        assert_eq!(v.verified.len(), 1);
    }

    #[test]
    fn bearer_header_wins_over_query() {
        let mut h = HeaderMap::new();
        assert_eq!(token_from(&h, Some("q")), Some("q"));
        h.insert("authorization", "Bearer hdr".parse().unwrap());
        assert_eq!(token_from(&h, Some("q")), Some("hdr"));
        assert_eq!(token_from(&HeaderMap::new(), Some("")), None);
    }
}
