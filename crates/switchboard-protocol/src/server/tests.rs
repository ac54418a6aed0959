//! Tests of the server encoder: the hand-written envelope against serde's, for every body.

use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;

use super::*;
use crate::{
    ErrorCode, Limits, Media, MediaMode, Mode, PeerId, Role, RoomId, SignalError, SignalKind,
};
use proptest::prelude::*;
use serde_json::json;

/// The envelope as serde writes it: the reference the hand-written encoder must match.
#[derive(Serialize)]
struct Wire<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    room: Option<&'a RoomId>,
    seq: u64,
    ts: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a PeerId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    payload: &'a ServerBody,
}

fn serde_encode(m: &ServerMessage, seq: u64, ts: u64) -> String {
    serde_json::to_string(&Wire {
        kind: m.body.type_name(),
        room: m.room.as_ref(),
        seq,
        ts,
        from: m.from.as_ref(),
        id: m.id.as_deref(),
        payload: &m.body,
    })
    .unwrap()
}

fn raw(text: &str) -> Arc<RawValue> {
    Arc::from(RawValue::from_string(text.to_owned()).unwrap())
}

/// One body of every kind, with `text` in every free-text field.
fn every_body(text: &str) -> Vec<ServerBody> {
    let peer = PeerId::parse("p-1.x").unwrap();
    let info = PeerInfo {
        peer: peer.clone(),
        role: Role::Host,
        name: Some(text.to_owned()),
        meta: Some(raw(&serde_json::to_string(&json!({ "m": text })).unwrap())),
    };
    let payload = raw(&serde_json::to_string(&json!({ "sdp": text, "n": [1, 2.5] })).unwrap());
    let mut error = ErrorBody::from_error(&SignalError::invalid(text));
    error.type_name = Some(text.to_owned());
    error.client_seq = Some(u64::MAX);
    let mut bodies = vec![
        ServerBody::Hello(Hello {
            session: text.to_owned(),
            peer: Some(peer.clone()),
            heartbeat_ms: 15_000,
            resume_ms: 30_000,
            limits: Limits::default(),
            last_client_seq: 3,
            resumed: true,
        }),
        ServerBody::Joined(Joined {
            peer: peer.clone(),
            role: Role::Guest,
            mode: Mode::HostOnly,
            media: Media::Sfu,
            media_mode: MediaMode::Auto,
            peers: vec![
                info.clone(),
                PeerInfo {
                    name: None,
                    meta: None,
                    ..info.clone()
                },
            ],
            ice_servers: vec![IceServer {
                urls: vec![text.to_owned()],
                username: Some(text.to_owned()),
                credential: None,
            }],
        }),
        ServerBody::PeerJoined(info),
        ServerBody::PeerLeft(PeerLeft {
            peer: peer.clone(),
            reason: PeerLeftReason::Timeout,
        }),
        ServerBody::Left(Left {
            reason: PeerLeftReason::Kicked,
            by: Some(peer.clone()),
        }),
        ServerBody::Message(payload.clone()),
        ServerBody::Announcement(payload.clone()),
        ServerBody::ModeChanged(ModeChanged {
            mode: Mode::FreeForAll,
            by: peer.clone(),
        }),
        ServerBody::MediaChanged(MediaChanged {
            media: Media::Mesh,
            media_mode: MediaMode::Auto,
            by: Some(peer.clone()),
        }),
        ServerBody::Pong,
        ServerBody::Replaced(Replaced {
            reason: text.to_owned(),
        }),
        ServerBody::Warning(Notice {
            code: ErrorCode::RateLimited,
            message: text.to_owned(),
        }),
        ServerBody::RoomClosed(RoomClosed {
            reason: RoomClosedReason::Idle,
        }),
        ServerBody::Knocking(Knocking {
            ticket: peer.clone(),
            expires_ms: 300_000,
        }),
        ServerBody::Knock(Knock {
            ticket: peer.clone(),
            name: Some(text.to_owned()),
        }),
        ServerBody::KnockEnded(KnockEnded {
            ticket: peer.clone(),
            outcome: KnockEnd::Admitted,
            by: Some(peer),
        }),
        ServerBody::Admitted(Admitted {
            token: text.to_owned(),
        }),
        ServerBody::Denied(Denied {
            reason: KnockEnd::Expired,
        }),
        ServerBody::Error(error),
    ];
    for kind in [
        SignalKind::Offer,
        SignalKind::Answer,
        SignalKind::Candidate,
        SignalKind::CallStart,
        SignalKind::CallEnd,
    ] {
        bodies.push(ServerBody::Signal(kind, payload.clone()));
    }
    bodies
}

proptest! {
    /// The hand-written encoder writes exactly what serde writes, for every body kind, with and
    /// without each optional field, whatever the strings hold.
    #[test]
    fn hand_encoder_matches_serde(
        text in any::<String>(),
        id in proptest::option::of(any::<String>()),
        room in proptest::option::of("[A-Za-z0-9_.:-]{1,64}"),
        from in proptest::option::of("[A-Za-z0-9_.-]{1,64}"),
        seq in any::<u64>(),
        ts in any::<u64>(),
    ) {
        for body in every_body(&text) {
            let message = ServerMessage {
                room: room.as_deref().map(|r| RoomId::parse(r).unwrap()),
                from: from.as_deref().map(|f| PeerId::parse(f).unwrap()),
                id: id.as_deref().map(Arc::from),
                body: Box::new(body),
            };
            let text = message.encode(seq, ts);
            prop_assert_eq!(&text, &serde_encode(&message, seq, ts));
            prop_assert_eq!(renumber(&text, 7), message.encode(7, ts));
        }
    }
}

#[test]
fn escapes_every_control_character_as_serde_does() {
    let all: String = (0u8..0x80)
        .map(char::from)
        .chain(['é', '\u{2028}', '😀'])
        .collect();
    for body in every_body(&all) {
        let message = ServerMessage::new(body).with_id(Some(all.as_str().into()));
        assert_eq!(message.encode(0, 0), serde_encode(&message, 0, 0));
    }
}

#[test]
fn encodes_envelope_fields_in_contract_shape() {
    let raw: Arc<RawValue> = Arc::from(RawValue::from_string(r#"{"sdp":"v=0"}"#.into()).unwrap());
    let mut msg = ServerMessage::new(ServerBody::Signal(SignalKind::Offer, raw))
        .in_room(&RoomId::parse("r1").unwrap())
        .with_id(Some(Arc::from("c-42")));
    msg.from = Some(PeerId::parse("alice").unwrap());
    let text = msg.encode(7, 1_763_700_000_000);
    assert_eq!(
        text,
        r#"{"type":"offer","room":"r1","seq":7,"ts":1763700000000,"from":"alice","id":"c-42","payload":{"sdp":"v=0"}}"#
    );
    let back: ServerEnvelope = serde_json::from_str(&text).unwrap();
    assert_eq!(back.payload, json!({"sdp": "v=0"}));
}

#[test]
fn bodiless_messages_have_an_empty_object_payload() {
    let text = ServerMessage::new(ServerBody::Pong).encode(1, 2);
    assert_eq!(text, r#"{"type":"pong","seq":1,"ts":2,"payload":{}}"#);
}

#[test]
fn error_body_names_code_and_refused_message() {
    let mut body = ErrorBody::from_error(&SignalError::DuplicateSeq { seq: 3, last: 5 });
    body.type_name = Some("offer".into());
    body.client_seq = Some(3);
    let text = ServerMessage::new(ServerBody::Error(body)).encode(9, 9);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["payload"]["code"], "duplicate_seq");
    assert_eq!(v["payload"]["type"], "offer");
    assert_eq!(v["payload"]["client_seq"], 3);
}
