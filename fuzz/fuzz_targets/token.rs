//! Token verification: any string presented as a token is refused with `unauthorized` or proves
//! an identity, never panics; and claims signed with the server's secret, however odd, verify to
//! exactly what was signed or are refused, never to something else.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use switchboard::{
    auth::{Claims, Signer, Verifier},
    config::Config,
};
use switchboard_protocol::Role;

const SECRET: &[u8] = b"fuzz-secret-0123456789abcdef0123456789";

static VERIFIER: LazyLock<Verifier> =
    LazyLock::new(|| Verifier::from_config(&Config::default(), SECRET).expect("a verifier"));
static SIGNER: LazyLock<Signer> = LazyLock::new(|| Signer::new(SECRET));

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = VERIFIER.verify(text) {
        assert_eq!(e.code().as_str(), "unauthorized", "{e}");
    }
    // The text cut into claims, signed, and verified.
    let mut fields = text.splitn(3, '\n');
    let (sub, room, name) = (fields.next(), fields.next(), fields.next());
    let claims = Claims {
        sub: sub.unwrap_or_default().to_owned(),
        exp: 4_000_000_000,
        iat: None,
        room: room.unwrap_or("r").to_owned(),
        role: Some(if text.len() % 2 == 0 {
            Role::Host
        } else {
            Role::Guest
        }),
        name: name.map(str::to_owned),
        lobby: text.len() % 3 == 0,
    };
    let Ok(token) = SIGNER.sign(&claims) else {
        return;
    };
    if let Ok(identity) = VERIFIER.verify(&token) {
        assert_eq!(&*identity.user, claims.sub.as_str());
        let grant =
            switchboard_protocol::RoomGrant::parse(&claims.room).expect("a verified grant parses");
        assert_eq!(identity.grant, grant);
        assert_eq!(identity.lobby, claims.lobby);
    }
});
