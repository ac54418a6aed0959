//! The API's own credentials: access tokens and refresh tokens.
//!
//! An access token is a short-lived HS256 JWT with `aud` [`AUDIENCE`], signed with a key derived
//! from the server's secret for this one use. Room tokens are signed with the secret itself and
//! carry no `aud`, so neither can pass for the other: an access token fails the room verifier's
//! signature check (another key), its audience check (a room token must have none) and its claims
//! (no `room`), and a room token fails this module's key and audience.
//!
//! A refresh token is 32 random bytes (base64url); the store keeps its SHA-256. Each use
//! replaces it (rotation); presenting a spent one again revokes every token descended from the
//! same login (see `switchboard_store::Store::rotate_refresh`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchboard_protocol::SignalError;

/// The `aud` of access tokens.
pub const AUDIENCE: &str = "switchboard:api";

/// What the key of access tokens is derived with.
const KEY_LABEL: &[u8] = b"switchboard api access tokens v1";

#[derive(Debug, Serialize, Deserialize)]
struct AccessClaims {
    sub: String,
    aud: String,
    iat: u64,
    exp: u64,
}

/// Mints and checks access tokens.
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl AccessTokens {
    /// Tokens valid for `ttl`, keyed by `secret` (the server's).
    pub fn new(secret: &[u8], ttl: Duration) -> AccessTokens {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
        mac.update(KEY_LABEL);
        let key = mac.finalize().into_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        validation.leeway = 5;
        AccessTokens {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation,
            ttl,
        }
    }

    /// How long a token lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A token for `user`.
    pub fn mint(&self, user: &str) -> Result<String, SignalError> {
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = AccessClaims {
            sub: user.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat,
            exp: iat + self.ttl.as_secs().max(1),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| SignalError::Internal)
    }

    /// The user an access token was minted for.
    pub fn verify(&self, token: &str) -> Result<String, SignalError> {
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims.sub)
            .map_err(|e| {
                SignalError::Unauthorized(match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                        "access token expired; refresh it".into()
                    }
                    _ => "not a valid access token".into(),
                })
            })
    }
}

/// A new refresh token and the hash the store keeps.
pub fn new_refresh() -> (String, Vec<u8>) {
    let bytes: [u8; 32] = rand::random();
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = refresh_hash(&token);
    (token, hash)
}

/// The hash of a presented refresh token.
pub fn refresh_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use switchboard_protocol::Role;

    use super::*;
    use crate::auth::{Signer, Verifier};

    const SECRET: &[u8] = b"tokens-test-secret-0123456789abcdef";

    #[test]
    fn access_and_room_tokens_never_pass_for_each_other() {
        let access = AccessTokens::new(SECRET, Duration::from_secs(60));
        let token = access.mint("u1").unwrap();
        assert_eq!(access.verify(&token).unwrap(), "u1");
        let room_verifier = Verifier::new(SECRET);
        assert!(
            room_verifier.verify(&token).is_err(),
            "an access token joins no room"
        );
        let room_token = Signer::new(SECRET)
            .mint("u1", "standup", Role::Host, None, Duration::from_secs(60))
            .unwrap();
        assert!(room_verifier.verify(&room_token).is_ok());
        assert!(
            access.verify(&room_token).is_err(),
            "a room token is no access token"
        );
        let other = AccessTokens::new(b"another secret", Duration::from_secs(60));
        assert!(other.verify(&token).is_err());
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let (a, hash) = new_refresh();
        let (b, _) = new_refresh();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(refresh_hash(&a), hash);
    }
}
