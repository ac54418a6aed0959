//! Tokens from an identity provider: RS256, ES256 and EdDSA verified against a JWKS served by a
//! local HTTP server (and against PEM files), key rotation and unknown `kid`s, wrong keys, expiry,
//! issuer and audience, and every algorithm-confusion attempt we know of. Keys are the committed
//! throwaway fixtures in `tests/fixtures/jwt`.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use parking_lot::Mutex;
use serde_json::{Value, json};
use switchboard_testkit::{
    Client, DEADLINE, SECRET, TestServer,
    http::assert_error,
    server::stub,
    tokens::{self, b64, forge, hs256},
    unix_s, ws_refusal,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("fixture")
}

/// A test key pair: `name` is the fixture stem (`rsa-a`, `ec-a`, `ed-a`, ...).
struct Key {
    name: &'static str,
    alg: Algorithm,
}

const RSA_A: Key = Key {
    name: "rsa-a",
    alg: Algorithm::RS256,
};
const RSA_B: Key = Key {
    name: "rsa-b",
    alg: Algorithm::RS256,
};
const EC_A: Key = Key {
    name: "ec-a",
    alg: Algorithm::ES256,
};
const ED_A: Key = Key {
    name: "ed-a",
    alg: Algorithm::EdDSA,
};
const ED_B: Key = Key {
    name: "ed-b",
    alg: Algorithm::EdDSA,
};

impl Key {
    fn encoding(&self) -> EncodingKey {
        let pem = read(&format!("{}.key.pem", self.name));
        match self.alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
            _ => EncodingKey::from_ed_pem(&pem),
        }
        .expect("private key")
    }

    /// The public JWK, published under `kid`.
    fn jwk(&self, kid: &str) -> Value {
        let mut jwk = if self.alg == Algorithm::EdDSA {
            // An Ed25519 SPKI is a fixed 12-byte prefix and the 32-byte public key.
            let pem = String::from_utf8(read(&format!("{}.pub.pem", self.name))).unwrap();
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap();
            json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&der[der.len() - 32..]), "alg": "EdDSA"})
        } else {
            serde_json::to_value(Jwk::from_encoding_key(&self.encoding(), self.alg).unwrap())
                .unwrap()
        };
        jwk["kid"] = kid.into();
        jwk["use"] = "sig".into();
        jwk
    }

    /// A token for `claims` signed with this key, with `kid` in the header.
    fn sign(&self, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.encoding()).unwrap()
    }
}

/// A host's claims for `r1`.
fn claims(user: &str) -> Value {
    tokens::claims(user, "r1")
}

/// A JWKS endpoint on 127.0.0.1:0 whose key set the test can swap, counting fetches.
struct KeySetServer {
    addr: SocketAddr,
    state: Arc<KeySetState>,
}

struct KeySetState {
    doc: Mutex<(StatusCode, Value)>,
    fetches: AtomicUsize,
}

impl KeySetServer {
    async fn start(keys: Vec<Value>) -> KeySetServer {
        async fn serve(State(state): State<Arc<KeySetState>>) -> impl IntoResponse {
            state.fetches.fetch_add(1, Ordering::SeqCst);
            let (status, doc) = state.doc.lock().clone();
            (status, Json(doc))
        }
        let state = Arc::new(KeySetState {
            doc: Mutex::new((StatusCode::OK, json!({ "keys": keys }))),
            fetches: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/.well-known/jwks.json", get(serve))
            .with_state(state.clone());
        KeySetServer {
            addr: stub(app).await,
            state,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.addr)
    }

    fn publish(&self, keys: Vec<Value>) {
        *self.state.doc.lock() = (StatusCode::OK, json!({ "keys": keys }));
    }

    fn fail(&self) {
        self.state.doc.lock().0 = StatusCode::INTERNAL_SERVER_ERROR;
    }

    fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }
}

/// A switchboard trusting `idp`'s key set (long cooldown, so on-demand refreshes are countable).
async fn server_for(
    idp: &KeySetServer,
    adjust: impl FnOnce(&mut switchboard::config::Config),
) -> TestServer {
    let url = idp.url();
    TestServer::start_with(move |c| {
        c.jwks_url = Some(url);
        c.jwks_cooldown_ms = 60_000;
        adjust(c);
    })
    .await
}

/// Opens a WebSocket session with `token` as a bearer token and joins `r1`.
async fn accepted(server: &TestServer, token: &str, peer: &str) -> Client {
    let auth = format!("Bearer {token}");
    let mut c = Client::connect_with_headers(&server.ws_url(), &[("authorization", &auth)]).await;
    c.join("r1", peer).await;
    c
}

/// The upgrade is refused with 401 `unauthorized`; returns the message.
async fn refused(server: &TestServer, token: &str) -> String {
    let auth = format!("Bearer {token}");
    let (status, body) = ws_refusal(&server.ws_url(), &[("authorization", &auth)]).await;
    assert_error((status, &body), 401, "unauthorized")
}

#[tokio::test]
async fn rs256_es256_and_eddsa_tokens_from_the_key_set_open_sessions() {
    let idp = KeySetServer::start(vec![RSA_A.jwk("r1"), EC_A.jwk("e1"), ED_A.jwk("d1")]).await;
    let server = server_for(&idp, |_| {}).await;
    assert_eq!(idp.fetches(), 1, "fetched once at start");

    let mut rsa = accepted(&server, &RSA_A.sign(Some("r1"), &claims("u-rsa")), "rsa").await;
    let _ec = accepted(&server, &EC_A.sign(Some("e1"), &claims("u-ec")), "ec").await;
    rsa.expect("peer_joined").await;
    let _ed = accepted(&server, &ED_A.sign(Some("d1"), &claims("u-ed")), "ed").await;
    rsa.expect("peer_joined").await;
    // Without a kid every key of the algorithm's type is tried.
    accepted(&server, &ED_A.sign(None, &claims("u-ed2")), "ed2").await;
    // HS256 tokens with the server's secret keep working.
    let hs = server.token("u-hs", "r1", switchboard_protocol::Role::Guest);
    accepted(&server, &hs, "hs").await;

    // The HTTP transports verify the same way.
    let response = reqwest::Client::new()
        .post(server.http("/v1/sessions"))
        .bearer_auth(RSA_A.sign(Some("r1"), &claims("u-http")))
        .timeout(DEADLINE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(idp.fetches(), 1, "known kids cause no fetch");
}

#[tokio::test]
async fn rotation_is_picked_up_on_an_unknown_kid_at_most_once_per_cooldown() {
    let idp = KeySetServer::start(vec![RSA_A.jwk("2024")]).await;
    let server = server_for(&idp, |_| {}).await;
    assert_eq!(idp.fetches(), 1);
    accepted(&server, &RSA_A.sign(Some("2024"), &claims("u1")), "p1").await;

    // The provider rotates: a new key is published and tokens start using it.
    idp.publish(vec![RSA_A.jwk("2024"), RSA_B.jwk("2025")]);
    accepted(&server, &RSA_B.sign(Some("2025"), &claims("u2")), "p2").await;
    assert_eq!(idp.fetches(), 2, "one on-demand refresh");
    accepted(&server, &RSA_A.sign(Some("2024"), &claims("u3")), "p3").await;

    // Within the cooldown, unknown kids are refused without another fetch, whether made up or
    // really new.
    idp.publish(vec![ED_B.jwk("2026")]);
    let message = refused(&server, &ED_B.sign(Some("2026"), &claims("u4"))).await;
    assert!(message.contains("kid"), "{message}");
    refused(&server, &RSA_A.sign(Some("made-up"), &claims("u5"))).await;
    assert_eq!(idp.fetches(), 2, "the cooldown holds");
}

#[tokio::test]
async fn unknown_kids_refresh_again_after_the_cooldown_and_a_failed_fetch_keeps_the_keys() {
    let idp = KeySetServer::start(vec![ED_A.jwk("a")]).await;
    let url = idp.url();
    let server = TestServer::start_with(move |c| {
        c.jwks_url = Some(url);
        c.jwks_cooldown_ms = 0;
    })
    .await;
    idp.publish(vec![ED_A.jwk("a"), ED_B.jwk("b")]);
    accepted(&server, &ED_B.sign(Some("b"), &claims("u1")), "p1").await;
    assert_eq!(idp.fetches(), 2);
    // The provider fails: the cached keys still verify, unknown kids are refused.
    idp.fail();
    refused(&server, &ED_B.sign(Some("c"), &claims("u2"))).await;
    assert_eq!(idp.fetches(), 3);
    accepted(&server, &ED_A.sign(Some("a"), &claims("u3")), "p3").await;
}

#[tokio::test]
async fn wrong_key_expired_and_bad_claims_are_refused() {
    let idp = KeySetServer::start(vec![RSA_A.jwk("a"), ED_A.jwk("d")]).await;
    let server = server_for(&idp, |c| {
        c.jwt_issuer = Some("https://idp.example".into());
        c.jwt_audience = Some("switchboard".into());
    })
    .await;
    let good = |user: &str| {
        let mut c = claims(user);
        c["iss"] = "https://idp.example".into();
        c["aud"] = "switchboard".into();
        c
    };
    accepted(&server, &RSA_A.sign(Some("a"), &good("u1")), "p1").await;

    // Signed by a key the set does not have, under a kid it does.
    let m = refused(&server, &RSA_B.sign(Some("a"), &good("u2"))).await;
    assert!(m.contains("signature"), "{m}");
    let m = refused(&server, &ED_B.sign(Some("d"), &good("u2"))).await;
    assert!(m.contains("signature"), "{m}");
    // Expired (beyond the 30 s leeway).
    let mut expired = good("u3");
    expired["exp"] = (unix_s() - 120).into();
    let m = refused(&server, &RSA_A.sign(Some("a"), &expired)).await;
    assert!(m.contains("expired"), "{m}");
    // Issuer and audience.
    let mut wrong_iss = good("u4");
    wrong_iss["iss"] = "https://evil.example".into();
    let m = refused(&server, &RSA_A.sign(Some("a"), &wrong_iss)).await;
    assert!(m.contains("iss"), "{m}");
    let mut wrong_aud = good("u5");
    wrong_aud["aud"] = "another-service".into();
    let m = refused(&server, &RSA_A.sign(Some("a"), &wrong_aud)).await;
    assert!(m.contains("aud"), "{m}");
    let m = refused(&server, &RSA_A.sign(Some("a"), &claims("u6"))).await;
    assert!(m.contains("iss") || m.contains("aud"), "{m}");
    // A valid signature over claims without a room grant.
    let mut no_room = good("u7");
    no_room.as_object_mut().unwrap().remove("room");
    refused(&server, &RSA_A.sign(Some("a"), &no_room)).await;
    assert_eq!(idp.fetches(), 1);
}

#[tokio::test]
async fn algorithm_confusion_and_none_are_refused() {
    // The key set also (wrongly) publishes a symmetric key; it must never be used.
    let sym = b"a-shared-secret-in-a-key-set-000";
    let oct = json!({"kty": "oct", "kid": "sym", "k": b64(sym), "alg": "HS256"});
    let idp = KeySetServer::start(vec![RSA_A.jwk("a"), ED_A.jwk("d"), oct]).await;
    let server = server_for(&idp, |c| {
        c.jwt_algorithms = vec!["RS256".into(), "EdDSA".into()];
    })
    .await;
    let mallory = claims("mallory");
    let payload = b64(mallory.to_string().as_bytes());
    let signed = |key: &[u8], header: Value| forge(&header, &mallory, |input| hs256(key, input));

    // HS256 over the RSA public key (as PEM, and as the JWK's modulus bytes), naming its kid.
    let public_pem = read("rsa-a.pub.pem");
    refused(
        &server,
        &signed(&public_pem, json!({"alg": "HS256", "kid": "a"})),
    )
    .await;
    refused(&server, &signed(&public_pem, json!({"alg": "HS256"}))).await;
    // An RS256 or EdDSA header over an HMAC made with the server's own secret.
    let m = refused(
        &server,
        &signed(SECRET.as_bytes(), json!({"alg": "RS256", "kid": "a"})),
    )
    .await;
    assert!(m.contains("signature"), "{m}");
    refused(
        &server,
        &signed(SECRET.as_bytes(), json!({"alg": "EdDSA", "kid": "d"})),
    )
    .await;
    // The symmetric key from the key set, under either header.
    refused(&server, &signed(sym, json!({"alg": "HS256", "kid": "sym"}))).await;
    refused(&server, &signed(sym, json!({"alg": "RS256", "kid": "sym"}))).await;
    // alg none, with and without a signature.
    let none = format!("{}.{payload}.", b64(br#"{"alg":"none","kid":"a"}"#));
    refused(&server, &none).await;
    refused(&server, &format!("{none}AAAA")).await;
    // An algorithm outside jwt_algorithms, with a real signature by a published key.
    let es = EC_A.sign(Some("a"), &claims("u"));
    let m = refused(&server, &es).await;
    assert!(m.contains("algorithm"), "{m}");
    // A real EdDSA signature presented under the RSA key's kid.
    refused(&server, &ED_A.sign(Some("a"), &claims("u"))).await;
    // The genuine tokens still pass.
    accepted(&server, &RSA_A.sign(Some("a"), &claims("u1")), "p1").await;
    accepted(&server, &ED_A.sign(Some("d"), &claims("u2")), "p2").await;
}

#[tokio::test]
async fn pem_public_keys_verify_without_a_key_set() {
    let keys = vec![
        fixture("rsa-a.pub.pem"),
        fixture("ed-a.pub.pem"),
        fixture("ec-a.pub.pem"),
    ];
    let server = TestServer::start_with(move |c| c.jwt_public_keys = keys).await;
    accepted(&server, &RSA_A.sign(None, &claims("u1")), "p1").await;
    accepted(&server, &ED_A.sign(Some("any-kid"), &claims("u2")), "p2").await;
    accepted(&server, &EC_A.sign(None, &claims("u3")), "p3").await;
    let m = refused(&server, &RSA_B.sign(None, &claims("u4"))).await;
    assert!(m.contains("signature"), "{m}");
    refused(&server, &ED_B.sign(None, &claims("u5"))).await;
    let hs = server.token("u-hs", "r1", switchboard_protocol::Role::Guest);
    accepted(&server, &hs, "hs").await;
}

#[tokio::test]
async fn without_public_keys_only_hs256_is_accepted() {
    let server = TestServer::start().await;
    let m = refused(&server, &RSA_A.sign(Some("a"), &claims("u1"))).await;
    assert!(m.contains("algorithm"), "{m}");
    refused(&server, &ED_A.sign(None, &claims("u2"))).await;
}
