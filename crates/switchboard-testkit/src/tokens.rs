//! Tokens for the test servers: minted with the server's own signer and the test [`SECRET`], or
//! built by hand ([`forge`]) for the cases a correct signer cannot produce.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use switchboard::auth::{Claims, Signer};
use switchboard_protocol::Role;

use crate::unix_s;

/// The HS256 secret of every test server, in-process or the binary.
pub const SECRET: &str = "integration-test-secret-0123456789";

/// How long a minted token is valid: longer than any test.
pub const TTL: Duration = Duration::from_secs(600);

/// The signer of every test server.
pub fn signer() -> Signer {
    Signer::new(SECRET.as_bytes())
}

/// A valid token for `user`, granting `room` (a name or a `prefix-*` pattern) as `role`.
pub fn mint(user: &str, room: &str, role: Role) -> String {
    signer()
        .mint(user, room, role, None, TTL)
        .expect("a token for valid claims")
}

/// A well-signed token for `user` and `room` that expired an hour ago (past any leeway).
pub fn expired(user: &str, room: &str) -> String {
    signer()
        .sign(&Claims {
            sub: user.into(),
            exp: unix_s() - 3600,
            iat: None,
            room: room.into(),
            role: Some(Role::Host),
            name: None,
            lobby: false,
        })
        .expect("signed")
}

/// The claims of a valid host token for `user` and `room` as JSON, to sign by other means.
pub fn claims(user: &str, room: &str) -> Value {
    json!({"sub": user, "exp": unix_s() + TTL.as_secs(), "room": room, "role": "host"})
}

/// Base64url without padding, as JWTs and JWKs encode.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token built by hand: `header` and `claims` as given, signed with `sign` over
/// `header.claims`.
pub fn forge(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

/// The HS256 signature (HMAC-SHA256) of `input` under `key`, for [`forge`].
pub fn hs256(key: &[u8], input: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(input);
    mac.finalize().into_bytes().to_vec()
}
