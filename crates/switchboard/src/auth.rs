//! Tokens: HS256 JWT verification into an [`Identity`], and minting for `switchboard token`.
//!
//! Only HS256 is accepted: a token whose header names any other algorithm (including `none`, or
//! RS256 signed with the HMAC secret as a public key) is rejected before its signature is checked.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use switchboard_core::Identity;
use switchboard_protocol::{Role, RoomGrant, SignalError};

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
}

/// Longest `sub` and `name` accepted, in bytes.
const MAX_CLAIM_BYTES: usize = 256;

/// Checks tokens against the server's secret.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl Verifier {
    /// A verifier for HS256 tokens signed with `secret`.
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 30;
        Verifier {
            key: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// The identity a token proves, or `unauthorized` with a reason that reveals nothing secret.
    pub fn verify(&self, token: &str) -> Result<Identity, SignalError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
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
        Ok(Identity {
            user: claims.sub.into(),
            role: claims.role.unwrap_or_default(),
            name: claims.name,
            grant: RoomGrant::parse(&claims.room)?,
        })
    }
}

fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "token expired".into(),
        K::ImmatureSignature => "token not valid yet".into(),
        K::InvalidSignature => "token signature does not verify".into(),
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
        RoomGrant::parse(room)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            sub: user.to_owned(),
            exp: now + ttl.as_secs().max(1),
            iat: Some(now),
            room: room.to_owned(),
            role: Some(role),
            name,
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
    fn bearer_header_wins_over_query() {
        let mut h = HeaderMap::new();
        assert_eq!(token_from(&h, Some("q")), Some("q"));
        h.insert("authorization", "Bearer hdr".parse().unwrap());
        assert_eq!(token_from(&h, Some("q")), Some("hdr"));
        assert_eq!(token_from(&HeaderMap::new(), Some("")), None);
    }
}
