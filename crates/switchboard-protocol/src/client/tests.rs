//! Tests of the client parse path: every type, every documented code and limit, and the
//! serde-free envelope split checked against serde.

use super::envelope::{RawEnvelope, SerdeEnvelope, split_envelope};
use super::*;
use crate::{ErrorCode, Limits};
use serde_json::json;
use serde_json::value::RawValue;

fn parse(v: serde_json::Value) -> Result<ParsedMessage<'static>, Box<Rejected>> {
    // A frame borrows its text; a test's few frames can live as long as the test process.
    parse_client_message(v.to_string().leak(), &Limits::default())
}

fn code(v: serde_json::Value) -> ErrorCode {
    parse(v).unwrap_err().error.code()
}

#[test]
fn a_subscribes_view_is_a_size_or_paused() {
    let subscribe = |extra: serde_json::Value| {
        let mut payload = json!({"tracks": ["t1"], "subscribe": true});
        payload
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"type": "subscribe", "room": "r1", "seq": 1, "ts": 5, "payload": payload})
    };
    let view = |extra| match parse(subscribe(extra)).unwrap().message {
        ClientMessage::Subscribe { view, .. } => view,
        other => panic!("{other:?}"),
    };
    assert_eq!(view(json!({})), None);
    assert_eq!(view(json!({"paused": true})), Some(View::Paused));
    assert_eq!(
        view(json!({"width": 640, "height": 360})),
        Some(View::Visible {
            width: 640,
            height: 360
        })
    );
    for bad in [
        json!({"width": 640}),
        json!({"paused": true, "width": 1, "height": 1}),
        json!({"width": -1, "height": 1}),
    ] {
        assert_eq!(code(subscribe(bad)), ErrorCode::InvalidMessage);
    }
}

#[test]
fn parses_every_client_type() {
    let base = |t: &str| json!({"type": t, "room": "r1", "seq": 1, "ts": 5, "to": "p2"});
    let cases = [
        ("join", json!({"peer": "me", "meta": {"name": "A"}})),
        ("leave", json!(null)),
        ("offer", json!({"sdp": "v=0"})),
        ("answer", json!({"sdp": "v=0"})),
        (
            "candidate",
            json!({"candidate": "", "sdp_mid": "0", "sdp_m_line_index": 0}),
        ),
        ("call_start", json!({"call_id": "c1"})),
        ("call_end", json!({"call_id": "c1", "reason": "hangup"})),
        ("message", json!({"text": "hi"})),
        ("mode", json!({"mode": "host_only"})),
        ("set_media", json!({"media": "auto"})),
        ("kick", json!({"peer": "p2"})),
        ("subscribe", json!({"tracks": ["t1"], "subscribe": true})),
        (
            "subscribe",
            json!({"tracks": ["t1"], "subscribe": true, "width": 320, "height": 180}),
        ),
        (
            "subscribe",
            json!({"tracks": ["t1"], "subscribe": true, "paused": true}),
        ),
        ("mute", json!({"track": "t1", "muted": true})),
        ("ping", json!(null)),
        ("ack", json!({"seq": 3})),
    ];
    for (t, p) in cases {
        let mut v = base(t);
        if !p.is_null() {
            v["payload"] = p;
        }
        let frame = parse(v).unwrap_or_else(|e| panic!("{t}: {:?}", e.error));
        assert_eq!(frame.message.type_name(), t);
        assert_eq!(frame.header.seq, 1);
    }
}

#[test]
fn relayed_payload_is_kept_verbatim() {
    let text = r#"{"type":"offer","room":"r","seq":1,"ts":1,"to":"b","payload":{"sdp":"v=0\r\n","x":[1, 2]}}"#;
    let frame = parse_client_message(text, &Limits::default()).unwrap();
    let ClientMessage::Signal { payload, .. } = frame.message else {
        panic!()
    };
    assert_eq!(payload, r#"{"sdp":"v=0\r\n","x":[1, 2]}"#);
}

#[test]
fn rejects_with_documented_codes() {
    assert_eq!(
        parse_client_message("nope", &Limits::default())
            .unwrap_err()
            .error
            .code(),
        ErrorCode::InvalidMessage
    );
    assert_eq!(code(json!([1])), ErrorCode::InvalidMessage);
    assert_eq!(
        code(json!({"type": "zap", "seq": 1, "ts": 1})),
        ErrorCode::UnknownType
    );
    assert_eq!(
        code(json!({"type": "ping", "ts": 1})),
        ErrorCode::InvalidMessage
    );
    assert_eq!(
        code(json!({"type": "ping", "seq": 0, "ts": 1})),
        ErrorCode::InvalidMessage
    );
    assert_eq!(
        code(json!({"type": "ping", "seq": -1, "ts": 1})),
        ErrorCode::InvalidMessage
    );
    assert_eq!(
        code(json!({"type": "ping", "seq": 1})),
        ErrorCode::InvalidMessage
    );
    assert_eq!(
        code(json!({"type": 5, "seq": 1, "ts": 1})),
        ErrorCode::InvalidMessage
    );
    assert_eq!(
        code(json!({"type": "join", "room": "bad room", "seq": 1, "ts": 1})),
        ErrorCode::InvalidMessage
    );
    assert_eq!(
        code(json!({"type": "offer", "room": "r", "seq": 1, "ts": 1, "payload": {"sdp": "x"}})),
        ErrorCode::InvalidMessage,
        "offer without to"
    );
    assert_eq!(
        code(
            json!({"type": "offer", "room": "r", "to": "p", "seq": 1, "ts": 1, "payload": {"sdp": 5}})
        ),
        ErrorCode::InvalidMessage
    );
    assert_eq!(
        code(json!({"type": "message", "room": "r", "seq": 1, "ts": 1, "payload": "str"})),
        ErrorCode::InvalidMessage
    );
    assert_eq!(
        code(
            json!({"type": "mode", "room": "r", "seq": 1, "ts": 1, "payload": {"mode": "anarchy"}})
        ),
        ErrorCode::InvalidMessage
    );
    assert_eq!(
        code(
            json!({"type": "set_media", "room": "r", "seq": 1, "ts": 1, "payload": {"media": "p2p"}})
        ),
        ErrorCode::InvalidMessage
    );
}

#[test]
fn auto_goes_through_the_sfu_from_three_members_when_there_is_one() {
    let media = |mode: MediaMode, members, sfu| mode.media(members, sfu);
    assert_eq!(media(MediaMode::Auto, 2, true), Media::Mesh);
    assert_eq!(media(MediaMode::Auto, 3, true), Media::Sfu);
    assert_eq!(media(MediaMode::Auto, 30, false), Media::Mesh);
    assert_eq!(media(MediaMode::Mesh, 30, true), Media::Mesh);
    assert_eq!(media(MediaMode::Sfu, 1, true), Media::Sfu);
}

#[test]
fn enforces_every_size_limit() {
    let l = Limits::default();
    let big = |n| "x".repeat(n);
    let too_large = |v: serde_json::Value| {
        let e = parse(v).unwrap_err().error;
        assert_eq!(e.code(), ErrorCode::PayloadTooLarge, "{e}");
    };
    too_large(
        json!({"type": "offer", "room": "r", "to": "p", "seq": 1, "ts": 1, "payload": {"sdp": big(l.max_sdp_bytes + 1)}}),
    );
    too_large(
        json!({"type": "candidate", "room": "r", "to": "p", "seq": 1, "ts": 1, "payload": {"candidate": big(l.max_candidate_bytes + 1)}}),
    );
    too_large(
        json!({"type": "join", "room": "r", "seq": 1, "ts": 1, "payload": {"meta": {"m": big(l.max_meta_bytes)}}}),
    );
    too_large(
        json!({"type": "message", "room": "r", "seq": 1, "ts": 1, "payload": {"m": big(l.max_message_bytes)}}),
    );
    too_large(json!({"type": "ping", "seq": 1, "ts": 1, "id": big(l.max_token_bytes + 1)}));
    too_large(
        json!({"type": "call_start", "room": "r", "to": "p", "seq": 1, "ts": 1, "payload": {"call_id": big(l.max_token_bytes + 1)}}),
    );
    let frame = format!(
        r#"{{"type":"ping","seq":1,"ts":1,"pad":"{}"}}"#,
        big(l.max_frame_bytes)
    );
    assert_eq!(
        parse_client_message(&frame, &l).unwrap_err().error.code(),
        ErrorCode::PayloadTooLarge
    );
    // Exactly at the limit is accepted.
    assert!(parse(json!({"type": "offer", "room": "r", "to": "p", "seq": 1, "ts": 1, "payload": {"sdp": big(l.max_sdp_bytes)}})).is_ok());
}

#[test]
fn rejection_keeps_header_and_id_when_readable() {
    let r =
        parse(json!({"type": "offer", "room": "r", "seq": 9, "ts": 1, "id": "c-1"})).unwrap_err();
    assert_eq!(r.id.as_deref(), Some("c-1"));
    assert_eq!(r.header.as_ref().map(|h| h.seq), Some(9));
    assert_eq!(r.type_name.as_deref(), Some("offer"));
    let r = parse(json!({"type": "ping", "seq": "x", "ts": 1, "id": "c-2"})).unwrap_err();
    assert_eq!(r.id.as_deref(), Some("c-2"));
    assert!(r.header.is_none());
}

#[test]
fn duplicate_keys_are_rejected() {
    let text = r#"{"type":"ping","seq":1,"seq":2,"ts":1}"#;
    assert_eq!(
        parse_client_message(text, &Limits::default())
            .unwrap_err()
            .error
            .code(),
        ErrorCode::InvalidMessage
    );
}

#[test]
fn client_envelope_round_trips_through_the_parser() {
    let env = ClientEnvelope::new("message", 4, 10)
        .room("r")
        .to("p")
        .id("x")
        .payload(json!({"text": "hello"}));
    let text = env.to_json();
    let frame = parse_client_message(&text, &Limits::default()).unwrap();
    assert_eq!(frame.header.seq, 4);
    assert_eq!(frame.header.id.as_deref(), Some("x"));
    assert!(matches!(
        frame.message,
        ClientMessage::Message { to: Some(_), .. }
    ));
}

/// What serde alone makes of an envelope field: the reference for the fast paths.
fn serde_reading<T: serde::de::DeserializeOwned>(raw: &str) -> Option<T> {
    serde_json::from_str(raw).ok()
}

#[test]
fn frames_as_sdks_write_them_are_split_without_serde() {
    for text in [
        r#"{"type":"message","room":"r-1","seq":12,"ts":1763700000000,"to":"p2","payload":{"text":"hi"}}"#,
        r#"{"type":"ack","seq":13,"ts":1763700000000,"payload":{"seq":40}}"#,
        r#"{"type":"candidate","room":"r","seq":3,"ts":1,"to":"b","id":"c-1","payload":{"candidate":"","sdp_mid":null}}"#,
        r#"{"type":"ping","seq":1,"ts":1,"from":"a"}"#,
        "{}",
    ] {
        let split = split_envelope(text).unwrap_or_else(|| panic!("{text}"));
        let serde: SerdeEnvelope = serde_json::from_str(text).unwrap();
        assert_eq!(split.seq, serde.seq.map(RawValue::get), "{text}");
        assert_eq!(split.payload, serde.payload.map(RawValue::get));
    }
    // `seq` and `ts` are valued as they are split, when enough of the frame follows them.
    let split = split_envelope(r#"{"type":"ack","seq":13,"ts":1763700000000,"payload":{}}"#);
    let split = split.unwrap();
    assert_eq!(
        (split.seq_value, split.ts_value),
        (Some(13), Some(1763700000000))
    );
}

/// Every field's text, to compare two readings of one frame.
fn fields<'a>(raw: &RawEnvelope<'a>) -> [Option<&'a str>; 8] {
    [
        raw.kind,
        raw.room,
        raw.seq,
        raw.ts,
        raw.to,
        raw.from,
        raw.id,
        raw.payload,
    ]
}

/// One `"key":value` member, from pieces that are common, unusual or invalid JSON.
fn member() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let key = prop_oneof![
        Just("type"),
        Just("room"),
        Just("seq"),
        Just("ts"),
        Just("to"),
        Just("from"),
        Just("id"),
        Just("payload"),
        Just("pad"),
        Just("s\\u0065q"),
        Just("ty pe"),
    ];
    let value = prop_oneof![
        "\"[a-z0-9 .:_-]{0,6}\"",
        "\"[a-z\\\\\"\\t\\u{1}é]{0,4}\"",
        "-?(0|[1-9][0-9]{0,20}|0[0-9])(\\.[0-9]{0,2})?([eE][+-]?[0-9]{0,2})?",
        Just("true".to_owned()),
        Just("nul".to_owned()),
        Just("null".to_owned()),
        "\\{(\"[a-z]\":[0-9\\[\\]{}\" ]{0,4})?\\}",
        "\\[[0-9,\\]]{0,4}",
        Just("1x".to_owned()),
    ];
    (key, value, prop_oneof![Just(""), Just(" "), Just("\n")])
        .prop_map(|(k, v, ws)| format!("\"{k}\"{ws}:{v}"))
}

proptest::proptest! {
    /// The envelope split without serde is exactly serde's reading, whenever it gives one.
    #[test]
    fn envelope_split_agrees_with_serde(
        members in proptest::collection::vec(member(), 0..6),
        separator in proptest::prelude::prop_oneof![
            proptest::prelude::Just(","),
            proptest::prelude::Just(", "),
            proptest::prelude::Just(",,"),
        ],
        tail in proptest::prelude::prop_oneof![
            proptest::prelude::Just(""),
            proptest::prelude::Just(" "),
            proptest::prelude::Just(","),
            proptest::prelude::Just("}"),
        ],
    ) {
        let text = format!("{{{}{tail}}}", members.join(separator));
        if let Some(split) = split_envelope(&text) {
            let serde: SerdeEnvelope = serde_json::from_str(&text)
                .map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{text}: {e}")))?;
            let expected = RawEnvelope {
                kind: serde.kind.map(RawValue::get),
                room: serde.room.map(RawValue::get),
                seq: serde.seq.map(RawValue::get),
                ts: serde.ts.map(RawValue::get),
                to: serde.to.map(RawValue::get),
                from: serde.from.map(RawValue::get),
                id: serde.id.map(RawValue::get),
                payload: serde.payload.map(RawValue::get),
                seq_value: None,
                ts_value: None,
            };
            proptest::prop_assert_eq!(fields(&split), fields(&expected), "{}", text);
            // An integer's value, when the split read it, is serde's reading of its text.
            for (value, text) in [(split.seq_value, split.seq), (split.ts_value, split.ts)] {
                if let Some(value) = value {
                    proptest::prop_assert_eq!(Some(value), text.and_then(serde_reading));
                }
            }
        }
    }

    /// Fields read without serde are accepted and refused exactly as serde reads them, however
    /// they are written (escapes, leading zeros, exponents, signs, overflow).
    #[test]
    fn fast_field_reads_agree_with_serde(
        room in "[A-Za-z0-9_.:* -]{0,3}|.{0,3}",
        escape_room in proptest::prelude::any::<bool>(),
        seq in "-?0{0,2}[0-9]{0,21}(\\.[0-9])?(e[0-9])?",
    ) {
        let room_json = if escape_room {
            room.encode_utf16().map(|u| format!("\\u{u:04x}")).collect::<String>()
        } else {
            let quoted = serde_json::to_string(&room).unwrap();
            quoted[1..quoted.len() - 1].to_owned()
        };
        let text = format!(
            r#"{{"type":"leave","room":"{room_json}","seq":{seq},"ts":{seq},"id":"{room_json}"}}"#
        );
        let parsed = parse_client_message(&text, &Limits::default());
        let serde_seq: Option<u64> = serde_reading(&seq);
        let valid_room = crate::RoomId::parse(&room).is_ok();
        match (serde_seq, &parsed) {
            (Some(n), Ok(frame)) => {
                proptest::prop_assert!(n > 0 && valid_room);
                proptest::prop_assert_eq!(frame.header.seq, n);
                proptest::prop_assert_eq!(frame.header.ts, n);
                proptest::prop_assert_eq!(frame.header.id.as_deref(), Some(room.as_str()));
                proptest::prop_assert_eq!(frame.message.room().map(|r| r.as_str()), Some(room.as_str()));
            }
            (Some(n), Err(r)) => {
                proptest::prop_assert!(n == 0 || !valid_room, "{:?}", r.error);
                proptest::prop_assert_eq!(r.header.is_some(), n > 0);
            }
            (None, parsed) => proptest::prop_assert!(parsed.is_err()),
        }
    }

    #[test]
    fn arbitrary_text_never_panics(s in ".{0,300}") {
        let _ = parse_client_message(&s, &Limits::default());
    }

    #[test]
    fn arbitrary_envelope_fields_never_panic(
        t in "(join|leave|offer|answer|candidate|message|mode|kick|ping|ack|zz)",
        seq in proptest::prelude::any::<i64>(),
        payload in proptest::prelude::prop_oneof![
            proptest::prelude::Just(json!(null)),
            proptest::prelude::Just(json!({})),
            proptest::prelude::Just(json!({"sdp": 1, "candidate": [], "mode": "x", "peer": 3})),
            proptest::prelude::Just(json!([{"seq": "a"}])),
        ],
    ) {
        let v = json!({"type": t, "seq": seq, "ts": 1, "room": "r", "to": "p", "payload": payload});
        let _ = parse(v);
    }
}
