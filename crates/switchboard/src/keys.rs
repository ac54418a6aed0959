//! Public keys for tokens from an identity provider: PEM files read at start (`jwt_public_keys`),
//! and a JWKS (`jwks_url`) fetched at start, every `jwks_refresh_ms`, and again when a token names
//! a key id the set does not have, at most once per `jwks_cooldown_ms` so that made-up key ids
//! cannot make the server hammer its identity provider.
//!
//! Only signature keys of the allowed asymmetric algorithms are kept: symmetric (`oct`) keys,
//! encryption keys and keys for other algorithms in a key set are ignored, so a key set can never
//! introduce an HMAC key or widen the accepted algorithms.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse},
};
use parking_lot::RwLock;

/// Largest key set document read, in bytes.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Most keys kept from one key set.
const MAX_KEYS: usize = 64;

/// The asymmetric algorithms a deployment may allow (`jwt_algorithms`).
pub const ASYMMETRIC: &[Algorithm] = &[
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

/// The kind of key material, which decides the algorithms a key can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    /// An EC key; the curve is known for JWKs, not for PEM files.
    Ec(Option<Curve>),
    Ed25519,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
}

/// One verification key.
#[derive(Clone)]
pub struct PublicKey {
    /// Key id: the JWK's `kid`; for a PEM file, none (it is tried for any `kid`).
    pub kid: Option<String>,
    /// The JWK's `alg`, when it names one: the key then verifies only that algorithm.
    alg: Option<Algorithm>,
    kind: KeyKind,
    /// The key itself.
    pub key: DecodingKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kind", &self.kind)
            .finish()
    }
}

impl PublicKey {
    /// Whether this key may verify a token whose header says `alg`.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        if self.alg.is_some_and(|a| a != alg) {
            return false;
        }
        matches!(
            (self.kind, alg),
            (
                KeyKind::Rsa,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512,
            ) | (KeyKind::Ec(None | Some(Curve::P256)), Algorithm::ES256)
                | (KeyKind::Ec(None | Some(Curve::P384)), Algorithm::ES384)
                | (KeyKind::Ed25519, Algorithm::EdDSA)
        )
    }

    /// A public key from a PEM file (RSA, EC or Ed25519 `PUBLIC KEY`).
    pub fn from_pem_file(path: &Path) -> Result<PublicKey, String> {
        let pem = std::fs::read(path)
            .map_err(|e| format!("jwt_public_keys: cannot read {}: {e}", path.display()))?;
        let (kind, key) = if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
            (KeyKind::Rsa, key)
        } else if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
            (KeyKind::Ec(None), key)
        } else if let Ok(key) = DecodingKey::from_ed_pem(&pem) {
            (KeyKind::Ed25519, key)
        } else {
            return Err(format!(
                "jwt_public_keys: {} is not an RSA, EC or Ed25519 public key in PEM",
                path.display()
            ));
        };
        Ok(PublicKey {
            kid: None,
            alg: None,
            kind,
            key,
        })
    }

    /// The key of a JWK, or `None` when the key set entry is not a usable signature key for one
    /// of `allowed`.
    pub fn from_jwk(jwk: &Jwk, allowed: &[Algorithm]) -> Option<PublicKey> {
        if matches!(
            jwk.common.public_key_use,
            Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
        ) {
            return None;
        }
        let alg = match jwk.common.key_algorithm {
            None => None,
            Some(a) => Some(signature_algorithm(a)?),
        };
        let kind = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => KeyKind::Rsa,
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P256 => KeyKind::Ec(Some(Curve::P256)),
                EllipticCurve::P384 => KeyKind::Ec(Some(Curve::P384)),
                _ => return None,
            },
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                KeyKind::Ed25519
            }
            // Symmetric keys are never taken from a key set.
            AlgorithmParameters::OctetKey(_) | AlgorithmParameters::OctetKeyPair(_) => {
                return None;
            }
        };
        let key = DecodingKey::from_jwk(jwk).ok()?;
        let key = PublicKey {
            kid: jwk.common.key_id.clone(),
            alg,
            kind,
            key,
        };
        allowed.iter().any(|a| key.accepts(*a)).then_some(key)
    }
}

/// The signature algorithm a JWK's `alg` names; `None` for encryption and unknown algorithms.
fn signature_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Parses a key set document, keeping the usable keys (at most [`MAX_KEYS`]).
pub fn parse_jwks(body: &[u8], allowed: &[Algorithm]) -> Result<Vec<PublicKey>, String> {
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
    }
    let set: Set = serde_json::from_slice(body).map_err(|e| format!("not a JWKS document: {e}"))?;
    Ok(set
        .keys
        .into_iter()
        // One malformed or unsupported entry does not spoil the others.
        .filter_map(|v| serde_json::from_value::<Jwk>(v).ok())
        .filter_map(|jwk| PublicKey::from_jwk(&jwk, allowed))
        .take(MAX_KEYS)
        .collect())
}

/// A key set fetched from `jwks_url` and kept fresh.
pub struct Jwks {
    url: String,
    client: reqwest::Client,
    allowed: Vec<Algorithm>,
    keys: RwLock<Arc<[PublicKey]>>,
    cooldown: Duration,
    /// When the last refresh for an unknown key id started; also serializes such refreshes, so
    /// concurrent requests with the same new key id cause one fetch.
    on_demand: tokio::sync::Mutex<Option<Instant>>,
}

impl Jwks {
    /// A key set at `url` (http or https), fetched with `timeout`; nothing is fetched yet.
    pub fn new(
        url: &str,
        timeout: Duration,
        cooldown: Duration,
        allowed: Vec<Algorithm>,
    ) -> Result<Jwks, String> {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!("jwks_url must be an http(s) URL, not `{url}`"));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("jwks_url: cannot build an HTTP client: {e}"))?;
        Ok(Jwks {
            url: url.to_owned(),
            client,
            allowed,
            keys: RwLock::new(Arc::from(Vec::new())),
            cooldown,
            on_demand: tokio::sync::Mutex::new(None),
        })
    }

    /// The keys of the last successful fetch.
    pub fn keys(&self) -> Arc<[PublicKey]> {
        self.keys.read().clone()
    }

    /// Fetches the key set now and replaces the cached keys; on failure the old keys stay.
    pub async fn refresh(&self) -> Result<usize, String> {
        let result = self.fetch().await;
        match &result {
            Ok(keys) => {
                let count = keys.len();
                *self.keys.write() = Arc::from(keys.clone());
                tracing::info!(
                    event = "auth.jwks_refreshed",
                    keys = count,
                    "key set fetched"
                );
                Ok(count)
            }
            Err(e) => {
                tracing::warn!(event = "auth.jwks_error", error = %e, "key set fetch failed; keeping the previous keys");
                Err(e.clone())
            }
        }
    }

    async fn fetch(&self) -> Result<Vec<PublicKey>, String> {
        let mut response = self
            .client
            .get(&self.url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {}: {e}", self.url))?;
        if !response.status().is_success() {
            return Err(format!("GET {}: HTTP {}", self.url, response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("GET {}: {e}", self.url))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!(
                    "GET {}: key set over {MAX_JWKS_BYTES} bytes",
                    self.url
                ));
            }
            body.extend_from_slice(&chunk);
        }
        parse_jwks(&body, &self.allowed)
    }

    /// A refresh because a token named an unknown key id, unless one ran less than the cooldown
    /// ago. Waits for a refresh another request started.
    pub async fn refresh_for_unknown_kid(&self) {
        let mut last = self.on_demand.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.cooldown) {
            return;
        }
        *last = Some(Instant::now());
        let _ = self.refresh().await;
    }

    /// [`Jwks::refresh_for_unknown_kid`] in the background, for callers that cannot wait.
    pub fn refresh_for_unknown_kid_later(self: &Arc<Self>) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let jwks = self.clone();
            runtime.spawn(async move { jwks.refresh_for_unknown_kid().await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_sets_keep_only_allowed_signature_keys() {
        let doc = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "oaep", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "rs", "alg": "RS256", "use": "sig", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AQAB", "y": "AQAB"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "weird"},
        ]});
        let allowed = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];
        let keys = parse_jwks(doc.to_string().as_bytes(), &allowed).unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k.kid.as_deref().unwrap()).collect();
        assert_eq!(kids, ["rs", "ed"]);
        assert!(keys[0].accepts(Algorithm::RS256));
        assert!(!keys[0].accepts(Algorithm::RS512), "the JWK's alg pins it");
        assert!(!keys[0].accepts(Algorithm::HS256));
        assert!(keys[1].accepts(Algorithm::EdDSA));
        assert!(!keys[1].accepts(Algorithm::ES256));
        assert!(parse_jwks(b"{}", &allowed).is_err());
    }

    #[test]
    fn only_http_urls() {
        let d = Duration::from_secs(1);
        assert!(Jwks::new("file:///etc/jwks.json", d, d, vec![]).is_err());
        assert!(Jwks::new("https://idp.example/jwks.json", d, d, vec![]).is_ok());
    }
}
