//! Unit tests of the hub, driven only through its public API, with a virtual clock: one
//! `Instant::now()` is the start, and every later moment is `Now::after` of it. No sleeps.
//!
//! Every frame a test peer reads goes through [`World::drain_raw`], which also checks the contract's
//! numbering rule (server `seq` strictly increasing by one per session, starting at 1), so every test
//! checks it in passing.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Poll, Wake, Waker},
    time::{Duration, Instant},
};

use proptest::{prelude::*, test_runner::RngSeed};
use rand::{SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use switchboard_protocol::{
    ErrorCode, Hello, IceServer, Limits, Mode, PeerId, PeerLeftReason, Role, RoomGrant, RoomId,
    ServerEnvelope, ServerMessage,
};

use super::{Attachment, Disconnect, Hub, Refusal, Stats, Transmit};
use crate::{CloseReason, CoreConfig, Event, Identity, Now, SessionId};

/// Wall-clock start of the virtual clock, in Unix ms.
const T0_UNIX_MS: u64 = 1_763_700_000_000;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn identity(user: &str, role: Role, grant: &str) -> Identity {
    Identity {
        user: user.into(),
        role,
        name: None,
        grant: RoomGrant::parse(grant).unwrap(),
        address: None,
        ice_servers: Vec::new(),
    }
}

fn decode(text: &str) -> ServerEnvelope {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("undecodable server frame {text}: {e}"))
}

fn kinds(msgs: &[ServerEnvelope]) -> Vec<&str> {
    msgs.iter().map(|m| m.kind.as_str()).collect()
}

/// The `code` of an `error` message.
fn code(m: &ServerEnvelope) -> &str {
    assert_eq!(m.kind, "error", "not an error: {m:?}");
    m.payload["code"].as_str().expect("error has a code")
}

fn room(id: &str) -> RoomId {
    RoomId::parse(id).unwrap()
}

fn peer_id(id: &str) -> PeerId {
    PeerId::parse(id).unwrap()
}

/// One client's side of a session: its attachment, its next client `seq`, and the last server
/// `seq` it received.
struct TestPeer {
    at: Attachment,
    user: String,
    next_seq: u64,
    last_seq: u64,
}

impl TestPeer {
    fn session(&self) -> SessionId {
        self.at.session.clone()
    }
}

/// The hub and the virtual clock.
struct World {
    hub: Hub,
    now: Now,
}

impl World {
    fn new() -> Self {
        Self::with(CoreConfig::default())
    }

    fn with(config: CoreConfig) -> Self {
        World {
            hub: Hub::new(config, StdRng::seed_from_u64(7)),
            now: Now {
                at: Instant::now(),
                unix_ms: T0_UNIX_MS,
            },
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now = self.now.after(d);
    }

    fn tick(&mut self) {
        self.hub.handle_timeout(self.now);
    }

    /// Opens a session; its `hello` is still queued.
    fn open_raw(&mut self, identity: Identity) -> TestPeer {
        let user = identity.user.to_string();
        let at = self.hub.open(identity, self.now).expect("session opens");
        TestPeer {
            at,
            user,
            next_seq: 1,
            last_seq: 0,
        }
    }

    /// Opens a session with a grant of every room and reads its `hello`.
    fn open(&mut self, user: &str, role: Role) -> TestPeer {
        self.open_as(identity(user, role, "*"))
    }

    fn open_as(&mut self, identity: Identity) -> TestPeer {
        let mut p = self.open_raw(identity);
        let hello = self.drain(&mut p);
        assert_eq!(kinds(&hello), ["hello"]);
        p
    }

    /// The frame text of `v`, with the peer's next `seq` and the current `ts` filled in unless `v`
    /// sets them.
    fn frame(&self, p: &mut TestPeer, mut v: Value) -> String {
        let obj = v.as_object_mut().expect("a frame is a JSON object");
        match obj.get("seq").and_then(Value::as_u64) {
            Some(seq) => p.next_seq = p.next_seq.max(seq + 1),
            None => {
                obj.insert("seq".into(), p.next_seq.into());
                p.next_seq += 1;
            }
        }
        obj.entry("ts").or_insert(self.now.unix_ms.into());
        v.to_string()
    }

    fn send_text(&mut self, p: &TestPeer, text: &str) -> Result<(), Box<ServerMessage>> {
        match self.hub.receive(&p.at, text, self.now) {
            Ok(()) => Ok(()),
            Err(Refusal::Reply(e)) => Err(e),
            Err(Refusal::Dropped) => panic!("{text} was dropped by a rate limit"),
        }
    }

    /// Sends `v`, which must be accepted.
    fn send(&mut self, p: &mut TestPeer, v: Value) {
        let text = self.frame(p, v);
        if let Err(e) = self.send_text(p, &text) {
            panic!("{text} was refused: {}", e.encode(0, 0));
        }
    }

    /// Sends `v`, which must be refused; queues the error as the server does and returns it as the
    /// client reads it (it must be the only thing the client gets).
    fn reject(&mut self, p: &mut TestPeer, v: Value) -> ServerEnvelope {
        let text = self.frame(p, v);
        self.reject_text(p, &text)
    }

    fn reject_text(&mut self, p: &mut TestPeer, text: &str) -> ServerEnvelope {
        let err = self
            .send_text(p, text)
            .expect_err("the frame should have been refused");
        let direct = decode(&err.encode(0, 0));
        self.hub.reply(&p.at, *err, self.now);
        let got = self.drain(p);
        assert_eq!(kinds(&got), ["error"], "{text}");
        let queued = got.into_iter().next().unwrap();
        assert_eq!(queued.payload, direct.payload);
        assert_eq!(queued.id, direct.id);
        assert_eq!(queued.room, direct.room);
        queued
    }

    fn poll(&mut self, p: &TestPeer) -> Poll<Transmit> {
        self.hub.poll_transmit(&p.at, Waker::noop(), 1000)
    }

    /// Everything the peer's transport would send now, as JSON text; checks the seq rule.
    fn drain_raw(&mut self, p: &mut TestPeer) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            match self.poll(p) {
                Poll::Pending => return out,
                Poll::Ready(Transmit::Messages(frames)) => {
                    assert!(!frames.is_empty(), "Ready with no frames");
                    for f in frames.into_iter().map(|f| f.text.to_string()) {
                        let env = decode(&f);
                        assert_eq!(env.seq, p.last_seq + 1, "seq gap or repeat in {f}");
                        p.last_seq = env.seq;
                        out.push(f);
                    }
                }
                Poll::Ready(Transmit::Close(r)) => {
                    panic!("unexpected close {r:?} after {out:?}")
                }
            }
        }
    }

    fn drain(&mut self, p: &mut TestPeer) -> Vec<ServerEnvelope> {
        self.drain_raw(p).iter().map(|t| decode(t)).collect()
    }

    /// Drains a transport the hub is closing: what it still sends, then the close reason.
    fn drain_to_close(&mut self, p: &mut TestPeer) -> (Vec<ServerEnvelope>, CloseReason) {
        let mut out = Vec::new();
        loop {
            match self.poll(p) {
                Poll::Pending => panic!("expected a close, got only {out:?}"),
                Poll::Ready(Transmit::Messages(frames)) => {
                    for f in frames.into_iter().map(|f| f.text.to_string()) {
                        let env = decode(&f);
                        assert_eq!(env.seq, p.last_seq + 1, "seq gap or repeat in {f}");
                        p.last_seq = env.seq;
                        out.push(env);
                    }
                }
                Poll::Ready(Transmit::Close(r)) => return (out, r),
            }
        }
    }

    fn assert_quiet(&mut self, p: &mut TestPeer) {
        let got = self.drain(p);
        assert!(
            got.is_empty(),
            "{} should have got nothing: {got:?}",
            p.user
        );
    }

    /// Joins `room` with the user name as peer id; the answer must be exactly one `joined`.
    fn join(&mut self, p: &mut TestPeer, room: &str) -> ServerEnvelope {
        let peer = p.user.clone();
        self.send(
            p,
            json!({"type": "join", "room": room, "payload": {"peer": peer}}),
        );
        let got = self.drain(p);
        assert_eq!(kinds(&got), ["joined"], "{got:?}");
        got.into_iter().next().unwrap()
    }

    /// Resumes the peer's session from its last received seq onto a new attachment.
    fn resume(&mut self, p: &mut TestPeer) -> Result<(), switchboard_protocol::SignalError> {
        let at = self
            .hub
            .resume(p.at.session.as_str(), &p.user, p.last_seq, self.now)?;
        p.at = at;
        Ok(())
    }

    fn events(&mut self) -> Vec<Event> {
        self.hub.drain_events().collect()
    }
}

/// Alice (host), then bob and carol (guests) in `r1`, everything read.
fn trio(w: &mut World) -> (TestPeer, TestPeer, TestPeer) {
    let mut alice = w.open("alice", Role::Host);
    let mut bob = w.open("bob", Role::Guest);
    let mut carol = w.open("carol", Role::Guest);
    w.join(&mut alice, "r1");
    w.join(&mut bob, "r1");
    w.join(&mut carol, "r1");
    w.drain(&mut alice);
    w.drain(&mut bob);
    (alice, bob, carol)
}

/// Alice (host) and bob (guest) in `r1`, everything read.
fn pair(w: &mut World) -> (TestPeer, TestPeer) {
    let mut alice = w.open("alice", Role::Host);
    let mut bob = w.open("bob", Role::Guest);
    w.join(&mut alice, "r1");
    w.join(&mut bob, "r1");
    w.drain(&mut alice);
    (alice, bob)
}

fn message_to(to: &str, id: &str) -> Value {
    json!({"type": "message", "room": "r1", "to": to, "id": id, "payload": {"text": id}})
}

// ---------------------------------------------------------------------------------------------
// hello and numbering
// ---------------------------------------------------------------------------------------------

#[test]
fn hello_is_the_first_message_with_seq_1_limits_heartbeat_and_resume_values() {
    let limits = Limits {
        ts_skew_ms: 5_000,
        max_sdp_bytes: 1_000,
        ..Limits::default()
    };
    let mut w = World::with(CoreConfig {
        limits: limits.clone(),
        heartbeat_interval: secs(12),
        resume_window: secs(45),
        ..CoreConfig::default()
    });
    let mut alice = w.open_raw(identity("alice", Role::Host, "r1"));
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["hello"]);
    let hello = &got[0];
    assert_eq!(hello.seq, 1);
    assert_eq!(hello.ts, T0_UNIX_MS);
    assert_eq!(hello.room, None);
    assert_eq!(hello.from, None);
    assert_eq!(hello.id, None);
    let body: Hello = serde_json::from_value(hello.payload.clone()).unwrap();
    assert_eq!(
        body,
        Hello {
            session: alice.session().to_string(),
            peer: None,
            heartbeat_ms: 12_000,
            resume_ms: 45_000,
            limits,
            last_client_seq: 0,
            resumed: false,
        }
    );
    assert_eq!(
        w.events(),
        [Event::SessionOpened {
            session: alice.session(),
            user: "alice".into()
        }]
    );
    assert_eq!(w.poll(&alice), Poll::Pending);
}

#[test]
fn session_ids_are_distinct_and_long() {
    let mut w = World::new();
    let a = w.open("alice", Role::Host);
    let b = w.open("alice", Role::Host);
    assert_ne!(a.session(), b.session());
    assert_eq!(a.session().as_str().len(), 22);
    assert!(
        a.session()
            .as_str()
            .bytes()
            .all(|c| c.is_ascii_alphanumeric())
    );
}

#[test]
fn server_seq_is_strictly_increasing_without_gaps_across_batches() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    for n in 0..7 {
        w.send(&mut bob, message_to("alice", &format!("m{n}")));
    }
    w.send(&mut alice, json!({"type": "ping"}));
    // Read in batches of 3, as a transport with a small batch would.
    let mut seqs = Vec::new();
    let mut ids = Vec::new();
    while let Poll::Ready(Transmit::Messages(frames)) =
        w.hub.poll_transmit(&alice.at, Waker::noop(), 3)
    {
        assert!(frames.len() <= 3);
        for f in frames.into_iter().map(|f| f.text) {
            let env = decode(&f);
            seqs.push(env.seq);
            ids.push(env.id.unwrap_or_default());
        }
    }
    let first = alice.last_seq + 1;
    assert_eq!(seqs, (first..first + 8).collect::<Vec<_>>());
    assert_eq!(ids, ["m0", "m1", "m2", "m3", "m4", "m5", "m6", ""]);
    // Bob's numbering is his own: hello, joined, then nothing.
    assert_eq!(bob.last_seq, 2);
}

// ---------------------------------------------------------------------------------------------
// join and leave
// ---------------------------------------------------------------------------------------------

#[test]
fn join_answers_joined_with_earlier_members_in_join_order_and_ice_servers() {
    let ice = vec![
        IceServer {
            urls: vec!["stun:stun.example.org:3478".into()],
            username: None,
            credential: None,
        },
        IceServer {
            urls: vec!["turn:turn.example.org:3478?transport=udp".into()],
            username: Some("u".into()),
            credential: Some("c".into()),
        },
    ];
    let mut w = World::with(CoreConfig {
        ice_servers: ice,
        ..CoreConfig::default()
    });
    let mut alice = w.open_as(Identity {
        name: Some("Alice A.".into()),
        ..identity("alice", Role::Host, "*")
    });
    let mut bob = w.open("bob", Role::Guest);
    let mut carol = w.open("carol", Role::Guest);
    w.send(
        &mut alice,
        json!({"type": "join", "room": "r1", "payload": {"peer": "alice", "meta": {"cam": true}}}),
    );
    w.drain(&mut alice);
    w.join(&mut bob, "r1");
    w.drain(&mut alice);
    w.send(
        &mut carol,
        json!({"type": "join", "room": "r1", "id": "j-1", "payload": {"peer": "carol", "meta": {"n": 3}}}),
    );
    let got = w.drain(&mut carol);
    assert_eq!(kinds(&got), ["joined"]);
    let joined = &got[0];
    assert_eq!(joined.room.as_deref(), Some("r1"));
    assert_eq!(joined.id.as_deref(), Some("j-1"));
    assert_eq!(joined.from, None);
    assert_eq!(
        joined.payload,
        json!({
            "peer": "carol",
            "role": "guest",
            "mode": "free_for_all",
            "peers": [
                {"peer": "alice", "role": "host", "name": "Alice A.", "meta": {"cam": true}},
                {"peer": "bob", "role": "guest", "meta": null},
            ],
            "ice_servers": [
                {"urls": ["stun:stun.example.org:3478"]},
                {"urls": ["turn:turn.example.org:3478?transport=udp"], "username": "u", "credential": "c"},
            ],
        })
    );
    for other in [&mut alice, &mut bob] {
        let got = w.drain(other);
        assert_eq!(kinds(&got), ["peer_joined"]);
        assert_eq!(got[0].room.as_deref(), Some("r1"));
        assert_eq!(
            got[0].id, None,
            "the joiner's id is echoed only to the joiner"
        );
        assert_eq!(
            got[0].payload,
            json!({"peer": "carol", "role": "guest", "meta": {"n": 3}})
        );
    }
}

#[test]
fn joined_lists_the_configured_ice_servers_then_the_sessions_own() {
    let stun = IceServer {
        urls: vec!["stun:stun.example.org:3478".into()],
        username: None,
        credential: None,
    };
    let mut w = World::with(CoreConfig {
        ice_servers: vec![stun],
        ..CoreConfig::default()
    });
    let turn = |user: &str| IceServer {
        urls: vec!["turn:turn.example.org:3478".into()],
        username: Some(format!("1763786400:{user}")),
        credential: Some(format!("secret-of-{user}")),
    };
    let mut alice = w.open_as(Identity {
        ice_servers: vec![turn("alice")],
        ..identity("alice", Role::Host, "*")
    });
    let mut bob = w.open("bob", Role::Guest);
    w.send(&mut alice, json!({"type": "join", "room": "r1"}));
    let got = w.drain(&mut alice);
    assert_eq!(
        got[0].payload["ice_servers"],
        json!([
            {"urls": ["stun:stun.example.org:3478"]},
            {"urls": ["turn:turn.example.org:3478"], "username": "1763786400:alice", "credential": "secret-of-alice"},
        ])
    );
    let r1 = RoomId::parse("r1").unwrap();
    assert_eq!(w.hub.room_size(&r1), 1);
    // Another session gets only the configured ones, never alice's credentials.
    w.send(&mut bob, json!({"type": "join", "room": "r1"}));
    let got = w.drain(&mut bob);
    assert_eq!(w.hub.room_size(&r1), 2);
    assert_eq!(w.hub.room_size(&RoomId::parse("nowhere").unwrap()), 0);
    assert_eq!(
        got[0].payload["ice_servers"],
        json!([{"urls": ["stun:stun.example.org:3478"]}])
    );
}

#[test]
fn join_without_a_peer_id_gets_a_generated_one_kept_for_the_session() {
    let mut w = World::new();
    let mut alice = w.open("alice", Role::Host);
    w.send(&mut alice, json!({"type": "join", "room": "r1"}));
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["joined"]);
    let peer = got[0].payload["peer"].as_str().unwrap().to_owned();
    assert_eq!(peer.len(), 12);
    assert!(peer.bytes().all(|c| c.is_ascii_alphanumeric()));
    w.send(&mut alice, json!({"type": "join", "room": "r2"}));
    let got = w.drain(&mut alice);
    assert_eq!(got[0].payload["peer"], peer.as_str());
}

#[test]
fn second_join_of_the_same_room_answers_joined_again_and_tells_nobody() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    w.events();
    let first_members = w.hub.stats().members;
    w.send(
        &mut bob,
        json!({"type": "join", "room": "r1", "id": "again", "payload": {"peer": "bob"}}),
    );
    let got = w.drain(&mut bob);
    assert_eq!(kinds(&got), ["joined"]);
    assert_eq!(got[0].id.as_deref(), Some("again"));
    assert_eq!(got[0].payload["peer"], "bob");
    assert_eq!(
        got[0].payload["peers"],
        json!([{"peer": "alice", "role": "host", "meta": null}])
    );
    w.assert_quiet(&mut alice);
    assert_eq!(w.hub.stats().members, first_members);
    assert_eq!(w.events(), [Event::Received { kind: "join" }]);
}

#[test]
fn leave_answers_left_and_others_get_peer_left_with_reason_left() {
    let mut w = World::new();
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    w.send(
        &mut bob,
        json!({"type": "leave", "room": "r1", "id": "bye"}),
    );
    let got = w.drain(&mut bob);
    assert_eq!(kinds(&got), ["left"]);
    assert_eq!(got[0].room.as_deref(), Some("r1"));
    assert_eq!(got[0].id.as_deref(), Some("bye"));
    assert_eq!(got[0].payload, json!({"reason": "left"}));
    for other in [&mut alice, &mut carol] {
        let got = w.drain(other);
        assert_eq!(kinds(&got), ["peer_left"]);
        assert_eq!(got[0].room.as_deref(), Some("r1"));
        assert_eq!(got[0].id, None);
        assert_eq!(got[0].payload, json!({"peer": "bob", "reason": "left"}));
    }
    // Bob is out: he can no longer signal into r1.
    let e = w.reject(&mut bob, message_to("alice", "x"));
    assert_eq!(code(&e), "not_in_room");
}

#[test]
fn leave_of_a_room_you_are_not_in_answers_left_and_tells_nobody() {
    let mut w = World::new();
    let (mut alice, _bob) = pair(&mut w);
    let mut carol = w.open("carol", Role::Guest);
    // r1 exists but carol is not in it; r9 does not exist at all.
    for r in ["r1", "r9"] {
        w.send(&mut carol, json!({"type": "leave", "room": r, "id": r}));
        let got = w.drain(&mut carol);
        assert_eq!(kinds(&got), ["left"]);
        assert_eq!(got[0].room.as_deref(), Some(r));
        assert_eq!(got[0].id.as_deref(), Some(r));
        assert_eq!(got[0].payload, json!({"reason": "left"}));
    }
    w.assert_quiet(&mut alice);
    assert_eq!(
        w.hub.stats(),
        Stats {
            sessions: 3,
            attached: 3,
            rooms: 1,
            members: 2
        }
    );
}

#[test]
fn empty_room_disappears_at_once() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    assert_eq!(
        w.hub.stats(),
        Stats {
            sessions: 2,
            attached: 2,
            rooms: 1,
            members: 2
        }
    );
    w.send(&mut bob, json!({"type": "leave", "room": "r1"}));
    assert_eq!(w.hub.stats().rooms, 1);
    assert_eq!(w.hub.stats().members, 1);
    w.events();
    w.send(&mut alice, json!({"type": "leave", "room": "r1"}));
    assert_eq!(
        w.hub.stats(),
        Stats {
            sessions: 2,
            attached: 2,
            rooms: 0,
            members: 0
        }
    );
    let events = w.events();
    assert!(events.contains(&Event::RoomClosed {
        room: room("r1"),
        reason: "empty"
    }));
    // A later join starts a fresh room.
    w.drain(&mut bob);
    let joined = w.join(&mut bob, "r1");
    assert_eq!(joined.payload["peers"], json!([]));
    assert!(w.events().contains(&Event::RoomOpened { room: room("r1") }));
}

// ---------------------------------------------------------------------------------------------
// relay
// ---------------------------------------------------------------------------------------------

#[test]
fn targeted_messages_reach_only_to_with_from_set_and_payload_and_id_verbatim() {
    let mut w = World::new();
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    let cases = [
        (
            "offer",
            r#"{"sdp":"v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\n", "extra" : [1, 2.50, "\u00e9"]}"#,
        ),
        ("answer", r#"{ "sdp" : "v=0\r\n" }"#),
        (
            "candidate",
            r#"{"candidate":"candidate:1 1 udp 2122260223 10.0.0.1 54400 typ host","sdp_mid":"0","sdp_m_line_index":0,"username_fragment":"abcd"}"#,
        ),
        ("candidate", r#"{"candidate":""}"#),
        ("call_start", r#"{"call_id":"c-1"}"#),
        ("call_end", r#"{"call_id":"c-1","reason":"hangup"}"#),
        ("message", r#"{"text":"hi","n":1e3,"nested":{"a":[]}}"#),
    ];
    for (i, (kind, payload)) in cases.into_iter().enumerate() {
        let id = format!("id-{i}");
        let text = format!(
            r#"{{"type":"{kind}","room":"r1","seq":{},"ts":{},"to":"bob","id":"{id}","payload":{payload}}}"#,
            alice.next_seq, w.now.unix_ms
        );
        alice.next_seq += 1;
        w.send_text(&alice, &text)
            .unwrap_or_else(|e| panic!("{kind}: {}", e.encode(0, 0)));
        let raw = w.drain_raw(&mut bob);
        assert_eq!(raw.len(), 1, "{kind}: {raw:?}");
        assert!(
            raw[0].ends_with(&format!(r#","id":"{id}","payload":{payload}}}"#)),
            "{kind}: payload not relayed verbatim: {}",
            raw[0]
        );
        let env = decode(&raw[0]);
        assert_eq!(env.kind, kind);
        assert_eq!(env.room.as_deref(), Some("r1"));
        assert_eq!(env.from.as_deref(), Some("alice"));
        assert_eq!(env.id.as_deref(), Some(id.as_str()));
        assert_eq!(env.ts, w.now.unix_ms);
        w.assert_quiet(&mut alice);
        w.assert_quiet(&mut carol);
    }
}

#[test]
fn client_from_naming_another_peer_is_forbidden_and_own_from_is_accepted() {
    let mut w = World::new();
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    let e = w.reject(
        &mut bob,
        json!({"type": "offer", "room": "r1", "to": "carol", "from": "alice", "id": "spoof", "payload": {"sdp": "v=0"}}),
    );
    assert_eq!(code(&e), "forbidden");
    assert_eq!(e.id.as_deref(), Some("spoof"));
    assert_eq!(e.room.as_deref(), Some("r1"));
    assert_eq!(e.payload["type"], "offer");
    w.assert_quiet(&mut carol);
    w.assert_quiet(&mut alice);
    // Claiming one's own peer id is harmless; the server sets `from` either way.
    w.send(
        &mut bob,
        json!({"type": "offer", "room": "r1", "to": "carol", "from": "bob", "payload": {"sdp": "v=0"}}),
    );
    let got = w.drain(&mut carol);
    assert_eq!(kinds(&got), ["offer"]);
    assert_eq!(got[0].from.as_deref(), Some("bob"));
    // A session with no peer id yet may not claim any.
    let mut dave = w.open("dave", Role::Guest);
    let e = w.reject(&mut dave, json!({"type": "ping", "from": "dave"}));
    assert_eq!(code(&e), "forbidden");
}

#[test]
fn broadcast_message_reaches_all_others_but_not_the_sender() {
    let mut w = World::new();
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    w.send(
        &mut bob,
        json!({"type": "message", "room": "r1", "id": "all", "payload": {"chat": "hello all"}}),
    );
    for other in [&mut alice, &mut carol] {
        let got = w.drain(other);
        assert_eq!(kinds(&got), ["message"]);
        assert_eq!(got[0].from.as_deref(), Some("bob"));
        assert_eq!(got[0].room.as_deref(), Some("r1"));
        assert_eq!(got[0].id.as_deref(), Some("all"));
        assert_eq!(got[0].payload, json!({"chat": "hello all"}));
    }
    w.assert_quiet(&mut bob);
    assert!(w.events().contains(&Event::Relayed {
        kind: "message",
        recipients: 2
    }));
}

#[test]
fn nothing_crosses_rooms() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    let mut carol = w.open("carol", Role::Host);
    w.join(&mut carol, "r2");
    // Naming a room carol is not in.
    let e = w.reject(
        &mut carol,
        json!({"type": "offer", "room": "r1", "to": "alice", "payload": {"sdp": "v=0"}}),
    );
    assert_eq!(code(&e), "not_in_room");
    assert_eq!(e.room.as_deref(), Some("r1"));
    // Naming a peer that is only in another room.
    let e = w.reject(
        &mut carol,
        json!({"type": "offer", "room": "r2", "to": "alice", "payload": {"sdp": "v=0"}}),
    );
    assert_eq!(code(&e), "unknown_peer");
    // A broadcast in r2 stays in r2.
    w.send(
        &mut carol,
        json!({"type": "message", "room": "r2", "payload": {"x": 1}}),
    );
    w.assert_quiet(&mut alice);
    w.assert_quiet(&mut bob);
    assert!(w.events().contains(&Event::Relayed {
        kind: "message",
        recipients: 0
    }));
    // And the other way round.
    let e = w.reject(&mut alice, message_to("carol", "x"));
    assert_eq!(code(&e), "unknown_peer");
    w.assert_quiet(&mut carol);
}

#[test]
fn unknown_target_is_unknown_peer() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    let e = w.reject(&mut alice, message_to("nobody", "q"));
    assert_eq!(code(&e), "unknown_peer");
    assert_eq!(e.id.as_deref(), Some("q"));
    assert_eq!(e.payload["type"], "message");
    w.assert_quiet(&mut bob);
}

#[test]
fn sending_to_yourself_is_invalid_message() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    let e = w.reject(
        &mut alice,
        json!({"type": "offer", "room": "r1", "to": "alice", "payload": {"sdp": "v=0"}}),
    );
    assert_eq!(code(&e), "invalid_message");
    w.assert_quiet(&mut bob);
}

#[test]
fn free_for_all_is_the_default_mode() {
    let mut w = World::new();
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    w.send(&mut carol, json!({"type": "leave", "room": "r1"}));
    w.drain(&mut carol);
    w.drain(&mut alice);
    w.drain(&mut bob);
    let joined = w.join(&mut carol, "r1");
    assert_eq!(joined.payload["mode"], "free_for_all");
    w.drain(&mut alice);
    w.drain(&mut bob);
    // Guest to guest, and a guest broadcast.
    w.send(&mut bob, message_to("carol", "g2g"));
    assert_eq!(kinds(&w.drain(&mut carol)), ["message"]);
    w.send(
        &mut bob,
        json!({"type": "message", "room": "r1", "payload": {}}),
    );
    assert_eq!(kinds(&w.drain(&mut carol)), ["message"]);
    assert_eq!(kinds(&w.drain(&mut alice)), ["message"]);
}

#[test]
fn host_only_limits_guests_to_the_host_and_forbids_their_broadcasts() {
    let mut w = World::new();
    let (mut host, mut g1, mut g2) = trio(&mut w);
    w.send(
        &mut host,
        json!({"type": "mode", "room": "r1", "payload": {"mode": "host_only"}}),
    );
    for p in [&mut host, &mut g1, &mut g2] {
        assert_eq!(kinds(&w.drain(p)), ["mode_changed"]);
    }
    // Guest to guest: forbidden, nothing relayed.
    let e = w.reject(
        &mut g1,
        json!({"type": "offer", "room": "r1", "to": "carol", "payload": {"sdp": "v=0"}}),
    );
    assert_eq!(code(&e), "forbidden");
    w.assert_quiet(&mut g2);
    // Guest broadcast: forbidden.
    let e = w.reject(
        &mut g1,
        json!({"type": "message", "room": "r1", "payload": {"x": 1}}),
    );
    assert_eq!(code(&e), "forbidden");
    w.assert_quiet(&mut g2);
    w.assert_quiet(&mut host);
    // Guest to host: allowed.
    w.send(
        &mut g1,
        json!({"type": "offer", "room": "r1", "to": "alice", "payload": {"sdp": "v=0"}}),
    );
    let got = w.drain(&mut host);
    assert_eq!(kinds(&got), ["offer"]);
    assert_eq!(got[0].from.as_deref(), Some("bob"));
    // Host to guest and host broadcast: allowed.
    w.send(
        &mut host,
        json!({"type": "answer", "room": "r1", "to": "bob", "payload": {"sdp": "v=0"}}),
    );
    assert_eq!(kinds(&w.drain(&mut g1)), ["answer"]);
    w.assert_quiet(&mut g2);
    w.send(
        &mut host,
        json!({"type": "message", "room": "r1", "payload": {"x": 2}}),
    );
    assert_eq!(kinds(&w.drain(&mut g1)), ["message"]);
    assert_eq!(kinds(&w.drain(&mut g2)), ["message"]);
    // Back to free_for_all: guest to guest works again.
    w.send(
        &mut host,
        json!({"type": "mode", "room": "r1", "payload": {"mode": "free_for_all"}}),
    );
    for p in [&mut host, &mut g1, &mut g2] {
        assert_eq!(kinds(&w.drain(p)), ["mode_changed"]);
    }
    w.send(
        &mut g1,
        json!({"type": "offer", "room": "r1", "to": "carol", "payload": {"sdp": "v=0"}}),
    );
    assert_eq!(kinds(&w.drain(&mut g2)), ["offer"]);
}

#[test]
fn mode_by_a_guest_is_forbidden() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    let e = w.reject(
        &mut bob,
        json!({"type": "mode", "room": "r1", "id": "m", "payload": {"mode": "host_only"}}),
    );
    assert_eq!(code(&e), "forbidden");
    assert_eq!(e.id.as_deref(), Some("m"));
    w.assert_quiet(&mut alice);
    // The mode did not change.
    let mut carol = w.open("carol", Role::Guest);
    assert_eq!(w.join(&mut carol, "r1").payload["mode"], "free_for_all");
    // Not being in the room is reported as such, before the role.
    let mut dave = w.open("dave", Role::Host);
    let e = w.reject(
        &mut dave,
        json!({"type": "mode", "room": "r1", "payload": {"mode": "host_only"}}),
    );
    assert_eq!(code(&e), "not_in_room");
}

#[test]
fn mode_by_host_is_announced_to_all_members_with_id_echoed_only_to_the_host() {
    let mut w = World::new();
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    w.events();
    w.send(
        &mut alice,
        json!({"type": "mode", "room": "r1", "id": "m-1", "payload": {"mode": "host_only"}}),
    );
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["mode_changed"]);
    assert_eq!(got[0].id.as_deref(), Some("m-1"));
    assert_eq!(got[0].room.as_deref(), Some("r1"));
    assert_eq!(got[0].payload, json!({"mode": "host_only", "by": "alice"}));
    for p in [&mut bob, &mut carol] {
        let got = w.drain(p);
        assert_eq!(kinds(&got), ["mode_changed"]);
        assert_eq!(got[0].id, None);
        assert_eq!(got[0].payload, json!({"mode": "host_only", "by": "alice"}));
    }
    assert_eq!(
        w.events(),
        [
            Event::ModeChanged {
                room: room("r1"),
                mode: Mode::HostOnly
            },
            Event::Received { kind: "mode" }
        ]
    );
    // A newcomer sees the current mode.
    let mut dave = w.open("dave", Role::Guest);
    assert_eq!(w.join(&mut dave, "r1").payload["mode"], "host_only");
    for p in [&mut alice, &mut bob, &mut carol] {
        w.drain(p);
    }
    // Setting the same mode again only answers the host.
    w.send(
        &mut alice,
        json!({"type": "mode", "room": "r1", "id": "m-2", "payload": {"mode": "host_only"}}),
    );
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["mode_changed"]);
    assert_eq!(got[0].id.as_deref(), Some("m-2"));
    w.assert_quiet(&mut bob);
    w.assert_quiet(&mut dave);
}

// ---------------------------------------------------------------------------------------------
// kick
// ---------------------------------------------------------------------------------------------

#[test]
fn kick_by_a_guest_is_forbidden() {
    let mut w = World::new();
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    let e = w.reject(
        &mut bob,
        json!({"type": "kick", "room": "r1", "payload": {"peer": "carol"}}),
    );
    assert_eq!(code(&e), "forbidden");
    w.assert_quiet(&mut alice);
    w.assert_quiet(&mut carol);
    assert_eq!(w.hub.stats().members, 3);
}

#[test]
fn kick_by_host_removes_the_target_tells_everyone_and_bans_the_user() {
    let mut w = World::new();
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    w.send(
        &mut alice,
        json!({"type": "kick", "room": "r1", "id": "k-1", "payload": {"peer": "bob"}}),
    );
    let got = w.drain(&mut bob);
    assert_eq!(kinds(&got), ["left"]);
    assert_eq!(got[0].room.as_deref(), Some("r1"));
    assert_eq!(got[0].payload, json!({"reason": "kicked", "by": "alice"}));
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["peer_left"]);
    assert_eq!(
        got[0].id.as_deref(),
        Some("k-1"),
        "the host's copy answers the kick"
    );
    assert_eq!(got[0].payload, json!({"peer": "bob", "reason": "kicked"}));
    let got = w.drain(&mut carol);
    assert_eq!(kinds(&got), ["peer_left"]);
    assert_eq!(got[0].id, None);
    assert_eq!(got[0].payload, json!({"peer": "bob", "reason": "kicked"}));
    assert_eq!(w.hub.stats().members, 2);
    // Bob cannot rejoin, not even from a new session; his session stays usable elsewhere.
    let e = w.reject(
        &mut bob,
        json!({"type": "join", "room": "r1", "payload": {"peer": "bob"}}),
    );
    assert_eq!(code(&e), "forbidden");
    let mut bob2 = w.open("bob", Role::Guest);
    let e = w.reject(
        &mut bob2,
        json!({"type": "join", "room": "r1", "payload": {"peer": "bob"}}),
    );
    assert_eq!(code(&e), "forbidden");
    w.join(&mut bob, "r2");
    let e = w.reject(&mut bob, message_to("alice", "x"));
    assert_eq!(code(&e), "not_in_room");
    w.assert_quiet(&mut alice);
    w.assert_quiet(&mut carol);
    assert_eq!(w.hub.stats().members, 3);
}

#[test]
fn kick_of_an_unknown_peer_is_unknown_peer_and_of_yourself_invalid() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    let e = w.reject(
        &mut alice,
        json!({"type": "kick", "room": "r1", "payload": {"peer": "zed"}}),
    );
    assert_eq!(code(&e), "unknown_peer");
    let e = w.reject(
        &mut alice,
        json!({"type": "kick", "room": "r1", "payload": {"peer": "alice"}}),
    );
    assert_eq!(code(&e), "invalid_message");
    w.assert_quiet(&mut bob);
    assert_eq!(w.hub.stats().members, 2);
}

// ---------------------------------------------------------------------------------------------
// replace
// ---------------------------------------------------------------------------------------------

#[test]
fn a_newer_session_of_the_same_user_joining_the_room_replaces_the_older() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    w.join(&mut alice, "r2");
    w.events();
    let mut alice2 = w.open("alice", Role::Host);
    w.send(
        &mut alice2,
        json!({"type": "join", "room": "r1", "payload": {"peer": "alice"}}),
    );
    let (got, reason) = w.drain_to_close(&mut alice);
    assert_eq!(kinds(&got), ["replaced"]);
    assert_eq!(got[0].room.as_deref(), Some("r1"));
    assert!(got[0].payload["reason"].is_string());
    assert_eq!(reason, CloseReason::Replaced);
    // The old transport is gone for good.
    assert_eq!(
        w.poll(&alice),
        Poll::Ready(Transmit::Close(CloseReason::Expired))
    );
    let got = w.drain(&mut bob);
    assert_eq!(kinds(&got), ["peer_left", "peer_joined"]);
    assert_eq!(
        got[0].payload,
        json!({"peer": "alice", "reason": "replaced"})
    );
    assert_eq!(
        got[1].payload,
        json!({"peer": "alice", "role": "host", "meta": null})
    );
    let got = w.drain(&mut alice2);
    assert_eq!(kinds(&got), ["joined"]);
    assert_eq!(
        got[0].payload["peers"],
        json!([{"peer": "bob", "role": "guest", "meta": null}])
    );
    // The old session left every room (r2 had only it, so r2 is gone).
    assert_eq!(
        w.hub.stats(),
        Stats {
            sessions: 2,
            attached: 2,
            rooms: 1,
            members: 2
        }
    );
    let events = w.events();
    assert!(events.contains(&Event::Replaced {
        room: room("r1"),
        user: "alice".into(),
        old: alice.session(),
        new: alice2.session(),
    }));
    assert!(events.contains(&Event::SessionClosed {
        session: alice.session(),
        user: "alice".into(),
        reason: CloseReason::Replaced,
    }));
    // The old session's frames are ignored from now on.
    let text = w.frame(&mut alice, message_to("bob", "ghost"));
    assert!(w.send_text(&alice, &text).is_ok());
    w.assert_quiet(&mut bob);
}

#[test]
fn replacing_a_detached_session_removes_it_and_its_resume_fails() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    w.hub.disconnect(&alice.at, Disconnect::Lost, w.now);
    w.assert_quiet(&mut bob);
    let mut alice2 = w.open("alice", Role::Host);
    w.join(&mut alice2, "r1");
    let got = w.drain(&mut bob);
    assert_eq!(kinds(&got), ["peer_left", "peer_joined"]);
    assert_eq!(got[0].payload["reason"], "replaced");
    assert_eq!(w.hub.stats().sessions, 2);
    let e = w.resume(&mut alice).unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionExpired);
}

#[test]
fn replacing_the_only_member_keeps_the_rooms_mode_and_bans() {
    // A lone host reloading its page: the old session leaves the room empty for a moment, but the
    // room, its mode and its bans carry over to the new session.
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    w.send(
        &mut alice,
        json!({"type": "kick", "room": "r1", "payload": {"peer": "bob"}}),
    );
    w.send(
        &mut alice,
        json!({"type": "mode", "room": "r1", "payload": {"mode": "host_only"}}),
    );
    w.drain(&mut alice);
    w.drain(&mut bob);
    w.events();
    let mut alice2 = w.open("alice", Role::Host);
    let joined = w.join(&mut alice2, "r1");
    assert_eq!(joined.payload["mode"], "host_only");
    assert_eq!(joined.payload["peers"], json!([]));
    assert_eq!(w.drain_to_close(&mut alice).1, CloseReason::Replaced);
    let e = w.reject(
        &mut bob,
        json!({"type": "join", "room": "r1", "payload": {"peer": "bob"}}),
    );
    assert_eq!(code(&e), "forbidden");
}

#[test]
fn room_full_past_max_peers_and_a_replacement_does_not_count_as_extra() {
    let mut w = World::with(CoreConfig {
        max_peers: 2,
        ..CoreConfig::default()
    });
    let (mut alice, mut bob) = pair(&mut w);
    let mut carol = w.open("carol", Role::Guest);
    let e = w.reject(
        &mut carol,
        json!({"type": "join", "room": "r1", "id": "j", "payload": {"peer": "carol"}}),
    );
    assert_eq!(code(&e), "room_full");
    assert_eq!(e.id.as_deref(), Some("j"));
    assert_eq!(e.room.as_deref(), Some("r1"));
    w.assert_quiet(&mut alice);
    w.assert_quiet(&mut bob);
    // Bob's newer session takes his place in the full room.
    let mut bob2 = w.open("bob", Role::Guest);
    w.join(&mut bob2, "r1");
    assert_eq!(w.drain_to_close(&mut bob).1, CloseReason::Replaced);
    assert_eq!(w.hub.stats().members, 2);
    // Once someone leaves, carol fits.
    w.send(&mut alice, json!({"type": "leave", "room": "r1"}));
    w.join(&mut carol, "r1");
}

// ---------------------------------------------------------------------------------------------
// peer ids, grants, room count
// ---------------------------------------------------------------------------------------------

#[test]
fn peer_id_is_chosen_by_the_client_and_peer_taken_when_another_user_has_it() {
    let mut w = World::new();
    let mut alice = w.open("alice", Role::Host);
    let mut bob = w.open("bob", Role::Guest);
    w.send(
        &mut alice,
        json!({"type": "join", "room": "r1", "payload": {"peer": "desk-1"}}),
    );
    assert_eq!(w.drain(&mut alice)[0].payload["peer"], "desk-1");
    let e = w.reject(
        &mut bob,
        json!({"type": "join", "room": "r1", "id": "t", "payload": {"peer": "desk-1"}}),
    );
    assert_eq!(code(&e), "peer_taken");
    assert_eq!(e.id.as_deref(), Some("t"));
    w.assert_quiet(&mut alice);
    assert_eq!(w.hub.stats().members, 1);
    // The refused join did not fix bob's peer id: he can still pick another.
    w.send(
        &mut bob,
        json!({"type": "join", "room": "r1", "payload": {"peer": "desk-2"}}),
    );
    assert_eq!(w.drain(&mut bob)[0].payload["peer"], "desk-2");
    // Relays use the chosen ids.
    w.send(
        &mut bob,
        json!({"type": "offer", "room": "r1", "to": "desk-1", "payload": {"sdp": "v=0"}}),
    );
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["peer_joined", "offer"]);
    assert_eq!(got[1].from.as_deref(), Some("desk-2"));
}

#[test]
fn peer_id_is_fixed_for_the_session() {
    let mut w = World::new();
    let mut alice = w.open("alice", Role::Host);
    w.join(&mut alice, "r1");
    let e = w.reject(
        &mut alice,
        json!({"type": "join", "room": "r2", "payload": {"peer": "other"}}),
    );
    assert_eq!(code(&e), "invalid_message");
    assert_eq!(w.hub.stats().members, 1);
    // Without a peer, or with the same one, it is the session's peer id.
    w.send(&mut alice, json!({"type": "join", "room": "r2"}));
    assert_eq!(w.drain(&mut alice)[0].payload["peer"], "alice");
    assert_eq!(w.join(&mut alice, "r3").payload["peer"], "alice");
    // It survives leaving every room.
    for r in ["r1", "r2", "r3"] {
        w.send(&mut alice, json!({"type": "leave", "room": r}));
    }
    w.drain(&mut alice);
    assert_eq!(w.hub.stats().members, 0);
    let e = w.reject(
        &mut alice,
        json!({"type": "join", "room": "r4", "payload": {"peer": "other"}}),
    );
    assert_eq!(code(&e), "invalid_message");
    assert_eq!(w.join(&mut alice, "r4").payload["peer"], "alice");
}

#[test]
fn join_outside_the_tokens_grant_is_forbidden() {
    let mut w = World::new();
    let mut alice = w.open_as(identity("alice", Role::Host, "r1"));
    let e = w.reject(
        &mut alice,
        json!({"type": "join", "room": "r2", "id": "g", "payload": {"peer": "alice"}}),
    );
    assert_eq!(code(&e), "forbidden");
    assert_eq!(e.id.as_deref(), Some("g"));
    assert_eq!(e.room.as_deref(), Some("r2"));
    assert_eq!(w.hub.stats().rooms, 0);
    w.join(&mut alice, "r1");
}

#[test]
fn prefix_grants_allow_every_room_with_the_prefix_and_nothing_else() {
    let mut w = World::new();
    let mut alice = w.open_as(identity("alice", Role::Host, "team-*"));
    w.join(&mut alice, "team-a");
    w.join(&mut alice, "team-b.c:d");
    for r in ["team", "other", "teams-a", "xteam-a"] {
        let e = w.reject(&mut alice, json!({"type": "join", "room": r}));
        assert_eq!(code(&e), "forbidden", "{r}");
    }
    assert_eq!(w.hub.stats().rooms, 2);
}

#[test]
fn max_rooms_per_session_is_enforced() {
    let mut w = World::with(CoreConfig {
        max_rooms_per_session: 2,
        ..CoreConfig::default()
    });
    let mut alice = w.open("alice", Role::Host);
    w.join(&mut alice, "r1");
    w.join(&mut alice, "r2");
    let e = w.reject(&mut alice, json!({"type": "join", "room": "r3"}));
    assert_eq!(code(&e), "forbidden");
    assert_eq!(w.hub.stats().rooms, 2);
    // Rejoining a room it is in is still answered.
    w.join(&mut alice, "r2");
    // After a leave there is room for another.
    w.send(&mut alice, json!({"type": "leave", "room": "r1"}));
    w.drain(&mut alice);
    w.join(&mut alice, "r3");
}

// ---------------------------------------------------------------------------------------------
// ping, replay guard, clock window, invalid frames
// ---------------------------------------------------------------------------------------------

#[test]
fn ping_answers_pong_with_the_id_echoed() {
    let mut w = World::new();
    let mut alice = w.open("alice", Role::Host);
    w.send(&mut alice, json!({"type": "ping", "id": "p-1"}));
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["pong"]);
    assert_eq!(got[0].id.as_deref(), Some("p-1"));
    assert_eq!(got[0].room, None);
    assert_eq!(got[0].payload, json!({}));
    w.send(&mut alice, json!({"type": "ping"}));
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["pong"]);
    assert_eq!(got[0].id, None);
}

#[test]
fn duplicate_seq_is_refused_and_nothing_is_relayed_twice() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    let frame = json!({"type": "message", "room": "r1", "to": "bob", "seq": 5, "id": "d", "payload": {"n": 1}});
    w.send(&mut alice, frame.clone());
    assert_eq!(kinds(&w.drain(&mut bob)), ["message"]);
    // The very same frame again, and an older seq.
    let e = w.reject(&mut alice, frame);
    assert_eq!(code(&e), "duplicate_seq");
    assert_eq!(e.id.as_deref(), Some("d"));
    assert_eq!(e.room, None, "envelope-level errors carry no room");
    assert_eq!(e.payload["client_seq"], 5);
    assert_eq!(e.payload["type"], "message");
    let e = w.reject(&mut alice, json!({"type": "ping", "seq": 4}));
    assert_eq!(code(&e), "duplicate_seq");
    // Even an invalid frame with an old seq is reported as the duplicate it is.
    let e = w.reject(&mut alice, json!({"type": "zap", "seq": 3}));
    assert_eq!(code(&e), "duplicate_seq");
    w.assert_quiet(&mut bob);
    // Seqs may skip; the guard only needs them to rise.
    w.send(
        &mut alice,
        json!({"type": "message", "room": "r1", "to": "bob", "seq": 50, "payload": {"n": 2}}),
    );
    assert_eq!(kinds(&w.drain(&mut bob)), ["message"]);
}

#[test]
fn stale_ts_outside_the_window_in_both_directions() {
    let mut w = World::new(); // 60 s window
    let (mut alice, mut bob) = pair(&mut w);
    let now = w.now.unix_ms;
    for ts in [now - 60_001, now + 60_001, 0] {
        let e = w.reject(&mut alice, {
            let mut f = message_to("bob", "s");
            f["ts"] = ts.into();
            f
        });
        assert_eq!(code(&e), "stale_ts", "ts {ts}");
        assert_eq!(e.id.as_deref(), Some("s"));
        assert_eq!(e.room, None);
        assert_eq!(e.payload["type"], "message");
    }
    w.assert_quiet(&mut bob);
    // The edges of the window are accepted.
    for ts in [now - 60_000, now + 60_000] {
        let mut f = message_to("bob", "ok");
        f["ts"] = ts.into();
        w.send(&mut alice, f);
        assert_eq!(kinds(&w.drain(&mut bob)), ["message"]);
    }
    // A stale frame still used up its seq.
    let seq = alice.next_seq;
    let e = w.reject(
        &mut alice,
        json!({"type": "ping", "seq": seq, "ts": now + 100_000}),
    );
    assert_eq!(code(&e), "stale_ts");
    let e = w.reject(&mut alice, json!({"type": "ping", "seq": seq}));
    assert_eq!(code(&e), "duplicate_seq");
}

#[test]
fn invalid_frames_get_their_documented_code_echo_id_and_use_up_their_seq() {
    let mut w = World::with(CoreConfig {
        limits: Limits {
            max_sdp_bytes: 16,
            max_frame_bytes: 1_000,
            ..Limits::default()
        },
        ..CoreConfig::default()
    });
    let (mut alice, mut bob) = pair(&mut w);

    // Not JSON: nothing readable, so nothing echoed.
    let e = w.reject_text(&mut alice, "{nope");
    assert_eq!(code(&e), "invalid_message");
    assert_eq!(e.id, None);
    assert_eq!(e.payload.get("client_seq"), None);

    // Unknown type.
    let e = w.reject(&mut alice, json!({"type": "zap", "seq": 10, "id": "z"}));
    assert_eq!(code(&e), "unknown_type");
    assert_eq!(e.id.as_deref(), Some("z"));
    assert_eq!(e.payload["client_seq"], 10);
    assert_eq!(e.payload["type"], "zap");
    let e = w.reject(&mut alice, json!({"type": "ping", "seq": 10}));
    assert_eq!(code(&e), "duplicate_seq");

    // A field over its limit.
    let e = w.reject(
        &mut alice,
        json!({"type": "offer", "room": "r1", "to": "bob", "seq": 20, "id": "big", "payload": {"sdp": "x".repeat(17)}}),
    );
    assert_eq!(code(&e), "payload_too_large");
    assert_eq!(e.id.as_deref(), Some("big"));
    assert_eq!(e.room, None);
    assert_eq!(e.payload["type"], "offer");
    let e = w.reject(&mut alice, json!({"type": "ping", "seq": 20}));
    assert_eq!(code(&e), "duplicate_seq");

    // A missing field.
    let e = w.reject(
        &mut alice,
        json!({"type": "offer", "room": "r1", "seq": 30, "id": "no-to", "payload": {"sdp": "v=0"}}),
    );
    assert_eq!(code(&e), "invalid_message");
    assert_eq!(e.id.as_deref(), Some("no-to"));
    let e = w.reject(&mut alice, json!({"type": "ping", "seq": 30}));
    assert_eq!(code(&e), "duplicate_seq");

    // A whole frame over the limit cannot be read at all.
    let text = format!(
        r#"{{"type":"ping","seq":40,"ts":{},"id":"huge","pad":"{}"}}"#,
        w.now.unix_ms,
        "x".repeat(1_000)
    );
    let e = w.reject_text(&mut alice, &text);
    assert_eq!(code(&e), "payload_too_large");
    assert_eq!(e.id, None);

    // None of this relayed anything or hurt the connection.
    w.assert_quiet(&mut bob);
    w.send(
        &mut alice,
        json!({"type": "ping", "seq": 41, "id": "alive"}),
    );
    assert_eq!(w.drain(&mut alice)[0].id.as_deref(), Some("alive"));
    assert_eq!(w.hub.stats().attached, 2);
    let rejected: Vec<_> = w
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Rejected { code } => Some(code),
            _ => None,
        })
        .collect();
    assert_eq!(
        rejected,
        [
            ErrorCode::InvalidMessage,
            ErrorCode::UnknownType,
            ErrorCode::DuplicateSeq,
            ErrorCode::PayloadTooLarge,
            ErrorCode::DuplicateSeq,
            ErrorCode::InvalidMessage,
            ErrorCode::DuplicateSeq,
            ErrorCode::PayloadTooLarge,
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// liveness: heartbeats, disconnects, resume
// ---------------------------------------------------------------------------------------------

#[test]
fn heartbeat_timeout_detaches_and_peers_see_timeout_only_after_the_resume_window() {
    let mut w = World::with(CoreConfig {
        heartbeat_timeout: secs(40),
        resume_window: secs(30),
        ..CoreConfig::default()
    });
    let (mut alice, mut bob) = pair(&mut w);
    w.events();
    w.advance(secs(20));
    w.hub.heard_from(&bob.at, w.now);
    w.advance(secs(19));
    w.tick();
    assert_eq!(w.poll(&alice), Poll::Pending, "39 s of silence is fine");
    w.hub.heard_from(&bob.at, w.now);
    w.advance(secs(1));
    w.tick();
    assert_eq!(
        w.poll(&alice),
        Poll::Ready(Transmit::Close(CloseReason::HeartbeatTimeout))
    );
    assert_eq!(
        w.events(),
        [Event::SessionDetached {
            session: alice.session(),
            reason: CloseReason::HeartbeatTimeout
        }]
    );
    w.assert_quiet(&mut bob);
    assert_eq!(
        w.hub.stats(),
        Stats {
            sessions: 2,
            attached: 1,
            rooms: 1,
            members: 2
        }
    );
    // Frames on the dead transport are ignored.
    let text = w.frame(&mut alice, message_to("bob", "late"));
    assert!(w.send_text(&alice, &text).is_ok());
    w.assert_quiet(&mut bob);
    // The peers learn nothing until the resume window has passed.
    w.advance(secs(29));
    w.hub.heard_from(&bob.at, w.now);
    w.tick();
    w.assert_quiet(&mut bob);
    w.advance(secs(1));
    w.hub.heard_from(&bob.at, w.now);
    w.tick();
    let got = w.drain(&mut bob);
    assert_eq!(kinds(&got), ["peer_left"]);
    assert_eq!(
        got[0].payload,
        json!({"peer": "alice", "reason": "timeout"})
    );
    assert_eq!(
        w.hub.stats(),
        Stats {
            sessions: 1,
            attached: 1,
            rooms: 1,
            members: 1
        }
    );
    let events = w.events();
    assert!(events.contains(&Event::SessionClosed {
        session: alice.session(),
        user: "alice".into(),
        reason: CloseReason::Expired
    }));
    assert_eq!(
        w.resume(&mut alice).unwrap_err().code(),
        ErrorCode::SessionExpired
    );
}

#[test]
fn heard_from_and_any_frame_keep_an_attached_session_alive() {
    let mut w = World::with(CoreConfig {
        heartbeat_timeout: secs(40),
        ..CoreConfig::default()
    });
    let mut alice = w.open("alice", Role::Host);
    let mut bob = w.open("bob", Role::Guest);
    for _ in 0..5 {
        w.advance(secs(30));
        w.hub.heard_from(&alice.at, w.now);
        w.send(&mut bob, json!({"type": "ping"}));
        w.tick();
        w.assert_quiet(&mut alice);
        assert_eq!(kinds(&w.drain(&mut bob)), ["pong"]);
    }
    // Even a refused frame shows the transport is alive.
    w.advance(secs(30));
    w.hub.heard_from(&alice.at, w.now);
    w.reject_text(&mut bob, "garbage");
    w.advance(secs(30));
    w.hub.heard_from(&alice.at, w.now);
    w.tick();
    w.assert_quiet(&mut bob);
    assert_eq!(w.hub.stats().attached, 2);
}

#[test]
fn closed_disconnect_tells_peers_disconnected_at_once_and_ends_the_session() {
    let mut w = World::new();
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    w.events();
    w.hub.disconnect(&bob.at, Disconnect::Closed, w.now);
    for p in [&mut alice, &mut carol] {
        let got = w.drain(p);
        assert_eq!(kinds(&got), ["peer_left"]);
        assert_eq!(
            got[0].payload,
            json!({"peer": "bob", "reason": "disconnected"})
        );
    }
    // The transport is gone, so nothing is left of the session.
    assert_eq!(
        w.hub.stats(),
        Stats {
            sessions: 2,
            attached: 2,
            rooms: 1,
            members: 2
        }
    );
    assert!(w.events().contains(&Event::SessionClosed {
        session: bob.session(),
        user: "bob".into(),
        reason: CloseReason::ClientClosed
    }));
    assert_eq!(
        w.resume(&mut bob).unwrap_err().code(),
        ErrorCode::SessionExpired
    );
    // A second report of the same end is harmless.
    w.hub.disconnect(&bob.at, Disconnect::Closed, w.now);
    w.assert_quiet(&mut alice);
}

#[test]
fn lost_transport_resumed_in_the_window_replays_every_missed_message_once_in_order() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    w.events();
    w.send(&mut bob, message_to("alice", "m1"));
    w.send(&mut bob, message_to("alice", "m2"));
    // Alice's transport takes m1 and m2 but dies before the client sees them.
    match w.poll(&alice) {
        Poll::Ready(Transmit::Messages(frames)) => assert_eq!(frames.len(), 2),
        other => panic!("{other:?}"),
    }
    w.send(&mut bob, message_to("alice", "m3"));
    w.hub.disconnect(&alice.at, Disconnect::Lost, w.now);
    assert_eq!(
        w.poll(&alice),
        Poll::Ready(Transmit::Close(CloseReason::TransportLost))
    );
    w.send(&mut bob, message_to("alice", "m4"));
    w.advance(secs(29));
    w.hub.heard_from(&bob.at, w.now);
    w.tick();
    w.assert_quiet(&mut bob);
    assert_eq!(w.hub.stats().attached, 1);
    assert_eq!(w.hub.stats().members, 2);

    let old = alice.at.clone();
    let before = alice.last_seq;
    w.resume(&mut alice).unwrap();
    let got = w.drain(&mut alice);
    assert_eq!(
        kinds(&got),
        ["hello", "message", "message", "message", "message"]
    );
    assert_eq!(got[0].seq, before + 1, "numbering continues after last_seq");
    let hello: Hello = serde_json::from_value(got[0].payload.clone()).unwrap();
    assert!(hello.resumed);
    assert_eq!(hello.session, alice.session().as_str());
    assert_eq!(hello.peer, Some(peer_id("alice")));
    assert_eq!(hello.last_client_seq, 1, "alice sent only her join");
    let ids: Vec<_> = got[1..].iter().map(|m| m.id.clone().unwrap()).collect();
    assert_eq!(ids, ["m1", "m2", "m3", "m4"]);
    assert!(got[1..].iter().all(|m| m.from.as_deref() == Some("bob")));
    // Bob never saw alice leave.
    w.assert_quiet(&mut bob);
    assert_eq!(w.poll(&alice), Poll::Pending);
    assert_eq!(
        w.hub.poll_transmit(&old, Waker::noop(), 10),
        Poll::Ready(Transmit::Close(CloseReason::Superseded))
    );
    let events = w.events();
    assert!(events.contains(&Event::SessionDetached {
        session: alice.session(),
        reason: CloseReason::TransportLost
    }));
    assert!(events.contains(&Event::SessionResumed {
        session: alice.session(),
        user: "alice".into(),
        replayed: 4
    }));
    // The resumed session works as before; its replay guard survived.
    let e = w.reject(&mut alice, json!({"type": "ping", "seq": 1}));
    assert_eq!(code(&e), "duplicate_seq");
    w.send(&mut alice, message_to("bob", "back"));
    assert_eq!(w.drain(&mut bob)[0].id.as_deref(), Some("back"));
    assert_eq!(w.hub.stats().attached, 2);
}

#[test]
fn resume_after_the_window_is_session_expired() {
    let mut w = World::with(CoreConfig {
        resume_window: secs(30),
        ..CoreConfig::default()
    });
    let (mut alice, mut bob) = pair(&mut w);
    w.hub.disconnect(&alice.at, Disconnect::Lost, w.now);
    w.advance(secs(30));
    w.tick();
    let got = w.drain(&mut bob);
    assert_eq!(
        got[0].payload,
        json!({"peer": "alice", "reason": "timeout"})
    );
    w.events();
    assert_eq!(
        w.resume(&mut alice).unwrap_err().code(),
        ErrorCode::SessionExpired
    );
    assert_eq!(
        w.events(),
        [Event::ResumeFailed {
            code: ErrorCode::SessionExpired
        }]
    );
    // An id that never existed fails the same way.
    let e = w
        .hub
        .resume("nosuchsession", "alice", 0, w.now)
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionExpired);
}

#[test]
fn resume_by_another_user_is_forbidden() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    w.hub.disconnect(&alice.at, Disconnect::Lost, w.now);
    let e = w
        .hub
        .resume(alice.at.session.as_str(), "bob", alice.last_seq, w.now)
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Forbidden);
    // The refused attempt changed nothing: the owner can still resume.
    w.resume(&mut alice).unwrap();
    assert_eq!(kinds(&w.drain(&mut alice)), ["hello"]);
    w.assert_quiet(&mut bob);
}

#[test]
fn a_superseded_attachment_is_closed_and_its_frames_ignored() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    let old = alice.at.clone();
    // A second transport resumes the session while the first is still up.
    w.resume(&mut alice).unwrap();
    assert_eq!(
        w.hub.poll_transmit(&old, Waker::noop(), 10),
        Poll::Ready(Transmit::Close(CloseReason::Superseded))
    );
    let text = w.frame(&mut alice, message_to("bob", "from-old"));
    assert!(w.hub.receive(&old, &text, w.now).is_ok());
    w.hub.heard_from(&old, w.now);
    w.hub.reply(
        &old,
        ServerMessage::new(switchboard_protocol::ServerBody::Pong),
        w.now,
    );
    w.hub.disconnect(&old, Disconnect::Closed, w.now);
    w.assert_quiet(&mut bob);
    assert_eq!(w.hub.stats().sessions, 2);
    // The new transport gets the resumed hello and nothing from the old one's calls.
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["hello"]);
    assert_eq!(got[0].payload["resumed"], true);
    // The seq the old transport's frame used is not consumed: it was dropped unread.
    alice.next_seq -= 1;
    w.send(&mut alice, message_to("bob", "from-new"));
    assert_eq!(w.drain(&mut bob)[0].id.as_deref(), Some("from-new"));
}

#[test]
fn ack_releases_messages_so_a_resume_from_below_it_is_session_expired() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    for n in 0..3 {
        w.send(&mut bob, message_to("alice", &format!("a{n}")));
    }
    w.drain(&mut alice);
    let n = alice.last_seq;
    w.send(
        &mut alice,
        json!({"type": "ack", "payload": {"seq": n - 1}}),
    );
    w.assert_quiet(&mut alice);
    w.hub.disconnect(&alice.at, Disconnect::Lost, w.now);
    // A position the server never reached is refused, and the session can still resume.
    let e = w
        .hub
        .resume(alice.at.session.as_str(), "alice", n + 5, w.now)
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidMessage);
    // From the acked seq itself the one unacked message is replayed.
    alice.last_seq = n - 1;
    w.resume(&mut alice).unwrap();
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["hello", "message"]);
    assert_eq!(got[1].id.as_deref(), Some("a2"));
    w.assert_quiet(&mut bob);
    // From below the acked seq the session cannot be served: the refusal ends it at once.
    w.hub.disconnect(&alice.at, Disconnect::Lost, w.now);
    let e = w
        .hub
        .resume(alice.at.session.as_str(), "alice", n - 2, w.now)
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionExpired);
    let got = w.drain(&mut bob);
    assert_eq!(
        got[0].payload,
        json!({"peer": "alice", "reason": "timeout"})
    );
    assert_eq!(
        w.hub
            .resume(alice.at.session.as_str(), "alice", n, w.now)
            .unwrap_err()
            .code(),
        ErrorCode::SessionExpired
    );
    w.assert_quiet(&mut bob);
}

#[test]
fn a_resume_refused_for_released_messages_ends_the_session_at_once() {
    let mut w = World::with(CoreConfig {
        outbox_limit: 3,
        resume_window: secs(30),
        ..CoreConfig::default()
    });
    let (mut alice, mut bob) = pair(&mut w);
    // Alice's outbox holds hello, joined and peer_joined, all received. m1 is taken by her
    // transport, which dies before she sees it.
    w.send(&mut bob, message_to("alice", "m1"));
    match w.poll(&alice) {
        Poll::Ready(Transmit::Messages(frames)) => assert_eq!(frames.len(), 1),
        other => panic!("{other:?}"),
    }
    w.hub.disconnect(&alice.at, Disconnect::Lost, w.now);
    // Three more messages need the space: the sent ones go, m1 (sent, never received) last.
    for n in 2..=4 {
        w.send(&mut bob, message_to("alice", &format!("m{n}")));
    }
    assert_eq!(
        w.resume(&mut alice).unwrap_err().code(),
        ErrorCode::SessionExpired
    );
    // Those messages are gone for good, so the session ends now and the peers hear it.
    assert_eq!(w.hub.stats().sessions, 1);
    assert_eq!(w.hub.stats().members, 1);
    let got = w.drain(&mut bob);
    assert_eq!(
        got[0].payload,
        json!({"peer": "alice", "reason": "timeout"})
    );
}

#[test]
fn outbox_overflow_ends_a_detached_recipient_and_spares_the_sender() {
    let mut w = World::with(CoreConfig {
        outbox_limit: 4,
        ..CoreConfig::default()
    });
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    w.drain(&mut carol);
    w.hub.disconnect(&bob.at, Disconnect::Lost, w.now);
    w.events();
    // Bob's outbox keeps what he already received until it needs the space, then fills with
    // unsent messages: 4 fit, the 5th cannot.
    for n in 1..=4 {
        w.send(&mut alice, message_to("bob", &format!("f{n}")));
        w.assert_quiet(&mut carol);
    }
    w.send(&mut alice, message_to("bob", "f5"));
    for p in [&mut alice, &mut carol] {
        let got = w.drain(p);
        assert_eq!(kinds(&got), ["peer_left"]);
        assert_eq!(
            got[0].payload,
            json!({"peer": "bob", "reason": "disconnected"})
        );
    }
    assert!(w.events().contains(&Event::SessionClosed {
        session: bob.session(),
        user: "bob".into(),
        reason: CloseReason::Overflow
    }));
    assert_eq!(
        w.hub.stats(),
        Stats {
            sessions: 2,
            attached: 2,
            rooms: 1,
            members: 2
        }
    );
    assert_eq!(
        w.resume(&mut bob).unwrap_err().code(),
        ErrorCode::SessionExpired
    );
    // The sender carries on.
    w.send(&mut alice, message_to("carol", "still here"));
    assert_eq!(w.drain(&mut carol)[0].id.as_deref(), Some("still here"));
}

#[test]
fn outbox_overflow_ends_an_attached_recipient_that_does_not_read() {
    let mut w = World::with(CoreConfig {
        outbox_limit: 4,
        ..CoreConfig::default()
    });
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    w.drain(&mut carol);
    for n in 1..=5 {
        w.send(&mut alice, message_to("bob", &format!("f{n}")));
    }
    let got = w.drain(&mut carol);
    assert_eq!(
        got[0].payload,
        json!({"peer": "bob", "reason": "disconnected"})
    );
    // Bob's transport still gets what was kept, then is closed.
    let (got, reason) = w.drain_to_close(&mut bob);
    let ids: Vec<_> = got.iter().map(|m| m.id.clone().unwrap()).collect();
    assert_eq!(ids, ["f1", "f2", "f3", "f4"]);
    assert_eq!(reason, CloseReason::Overflow);
    assert_eq!(w.hub.stats().sessions, 2);
    assert_eq!(kinds(&w.drain(&mut alice)), ["peer_left"]);
}

#[test]
fn outbox_releases_delivered_messages_so_a_reading_client_never_overflows() {
    let mut w = World::with(CoreConfig {
        outbox_limit: 4,
        ..CoreConfig::default()
    });
    let (mut alice, mut bob) = pair(&mut w);
    for n in 0..50 {
        w.send(&mut alice, message_to("bob", &format!("x{n}")));
        assert_eq!(w.drain(&mut bob).len(), 1);
    }
    assert_eq!(w.hub.stats().sessions, 2);
}

// ---------------------------------------------------------------------------------------------
// idle rooms and shutdown
// ---------------------------------------------------------------------------------------------

#[test]
fn an_idle_room_is_closed_and_a_room_with_activity_is_kept() {
    let mut w = World::with(CoreConfig {
        room_idle_timeout: secs(60),
        heartbeat_timeout: secs(3600),
        ..CoreConfig::default()
    });
    let (mut alice, mut bob) = pair(&mut w);
    let mut carol = w.open("carol", Role::Guest);
    w.join(&mut carol, "r2");
    let mut dave = w.open("dave", Role::Guest);
    let mut erin = w.open("erin", Role::Guest);
    w.join(&mut dave, "r3");
    w.join(&mut erin, "r3");
    w.drain(&mut dave);
    w.advance(secs(30));
    // Transport heartbeats are not room activity.
    w.hub.heard_from(&alice.at, w.now);
    w.hub.heard_from(&bob.at, w.now);
    // Activity: a ping keeps r2, a message keeps r3.
    w.send(&mut carol, json!({"type": "ping"}));
    w.drain(&mut carol);
    w.send(
        &mut dave,
        json!({"type": "message", "room": "r3", "payload": {}}),
    );
    w.drain(&mut erin);
    w.advance(secs(29));
    w.tick();
    for p in [&mut alice, &mut bob, &mut carol, &mut dave, &mut erin] {
        w.assert_quiet(p);
    }
    w.events();
    w.advance(secs(1));
    w.tick();
    for p in [&mut alice, &mut bob] {
        let got = w.drain(p);
        assert_eq!(kinds(&got), ["room_closed"]);
        assert_eq!(got[0].room.as_deref(), Some("r1"));
        assert_eq!(got[0].payload, json!({"reason": "idle"}));
    }
    for p in [&mut carol, &mut dave, &mut erin] {
        w.assert_quiet(p);
    }
    assert_eq!(
        w.hub.stats(),
        Stats {
            sessions: 5,
            attached: 5,
            rooms: 2,
            members: 3
        }
    );
    let events = w.events();
    assert!(events.contains(&Event::RoomClosed {
        room: room("r1"),
        reason: "idle"
    }));
    assert!(events.contains(&Event::Left {
        room: room("r1"),
        peer: peer_id("alice"),
        user: "alice".into(),
        reason: PeerLeftReason::RoomClosed,
        members: 0
    }));
    // The members are out of the room but their sessions live on.
    let e = w.reject(&mut alice, message_to("bob", "x"));
    assert_eq!(code(&e), "not_in_room");
    assert_eq!(w.join(&mut alice, "r1").payload["peers"], json!([]));
    // r2 and r3 go 60 s after their last activity.
    w.advance(secs(30));
    w.tick();
    for p in [&mut carol, &mut dave, &mut erin] {
        let got = w.drain(p);
        assert_eq!(kinds(&got), ["room_closed"]);
        assert_eq!(got[0].payload, json!({"reason": "idle"}));
    }
    assert_eq!(w.hub.stats().rooms, 1);
}

#[test]
fn a_members_activity_counts_for_a_room_after_it_leaves_but_its_leave_does_not() {
    let mut w = World::with(CoreConfig {
        room_idle_timeout: secs(60),
        heartbeat_timeout: secs(3600),
        ..CoreConfig::default()
    });
    let (mut alice, mut bob) = pair(&mut w);
    w.advance(secs(30));
    w.send(&mut alice, message_to("bob", "x"));
    w.advance(secs(10));
    w.send(&mut alice, json!({"type": "leave", "room": "r1"}));
    w.drain(&mut bob);
    w.advance(secs(49));
    w.tick();
    w.assert_quiet(&mut bob);
    w.advance(secs(1));
    w.tick();
    let got = w.drain(&mut bob);
    assert_eq!(kinds(&got), ["room_closed"]);
    assert_eq!(got[0].payload, json!({"reason": "idle"}));
}

#[test]
fn a_room_closed_for_idleness_no_longer_counts_against_max_rooms() {
    let mut w = World::with(CoreConfig {
        max_rooms_per_session: 2,
        room_idle_timeout: secs(60),
        heartbeat_timeout: secs(3600),
        ..CoreConfig::default()
    });
    let mut alice = w.open("alice", Role::Host);
    w.join(&mut alice, "r1");
    w.join(&mut alice, "r2");
    w.advance(secs(60));
    w.tick();
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["room_closed", "room_closed"]);
    assert_eq!(w.hub.stats().rooms, 0);
    w.join(&mut alice, "r3");
    w.join(&mut alice, "r4");
}

#[test]
fn shutdown_sends_room_closed_then_closes_every_transport() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    let mut carol = w.open("carol", Role::Guest);
    let mut dave = w.open("dave", Role::Guest);
    w.join(&mut dave, "r2");
    w.hub.disconnect(&dave.at, Disconnect::Lost, w.now);
    w.events();
    w.hub.shutdown(w.now);
    for p in [&mut alice, &mut bob] {
        let (got, reason) = w.drain_to_close(p);
        assert_eq!(kinds(&got), ["room_closed"]);
        assert_eq!(got[0].room.as_deref(), Some("r1"));
        assert_eq!(got[0].payload, json!({"reason": "shutdown"}));
        assert_eq!(reason, CloseReason::Shutdown);
    }
    let (got, reason) = w.drain_to_close(&mut carol);
    assert!(got.is_empty());
    assert_eq!(reason, CloseReason::Shutdown);
    // A detached session has no transport to drain: it is gone at once.
    assert_eq!(
        w.resume(&mut dave).unwrap_err().code(),
        ErrorCode::SessionExpired
    );
    assert_eq!(w.hub.stats(), Stats::default());
    let events = w.events();
    assert!(events.contains(&Event::RoomClosed {
        room: room("r1"),
        reason: "shutdown"
    }));
    assert!(events.contains(&Event::SessionClosed {
        session: carol.session(),
        user: "carol".into(),
        reason: CloseReason::Shutdown
    }));
}

#[test]
fn frames_after_shutdown_are_ignored() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    w.hub.shutdown(w.now);
    let text = w.frame(&mut alice, message_to("bob", "late"));
    assert!(w.send_text(&alice, &text).is_ok());
    let (got, _) = w.drain_to_close(&mut bob);
    assert_eq!(kinds(&got), ["room_closed"]);
}

// ---------------------------------------------------------------------------------------------
// events and wakers
// ---------------------------------------------------------------------------------------------

#[test]
fn events_report_joins_relays_leaves_and_room_lifecycle() {
    let mut w = World::new();
    let mut alice = w.open("alice", Role::Host);
    let mut bob = w.open("bob", Role::Guest);
    assert_eq!(
        w.events(),
        [
            Event::SessionOpened {
                session: alice.session(),
                user: "alice".into()
            },
            Event::SessionOpened {
                session: bob.session(),
                user: "bob".into()
            },
        ]
    );
    w.join(&mut alice, "r1");
    assert_eq!(
        w.events(),
        [
            Event::RoomOpened { room: room("r1") },
            Event::Joined {
                room: room("r1"),
                peer: peer_id("alice"),
                user: "alice".into(),
                members: 1
            },
            Event::Received { kind: "join" },
        ]
    );
    w.join(&mut bob, "r1");
    assert_eq!(
        w.events(),
        [
            Event::Joined {
                room: room("r1"),
                peer: peer_id("bob"),
                user: "bob".into(),
                members: 2
            },
            Event::Received { kind: "join" },
        ]
    );
    w.send(
        &mut alice,
        json!({"type": "candidate", "room": "r1", "to": "bob", "payload": {"candidate": ""}}),
    );
    assert_eq!(
        w.events(),
        [
            Event::Relayed {
                kind: "candidate",
                recipients: 1
            },
            Event::Received { kind: "candidate" },
        ]
    );
    assert_eq!(kinds(&w.drain(&mut bob)), ["candidate"]);
    w.reject(&mut bob, message_to("nobody", "x"));
    assert_eq!(
        w.events(),
        [Event::Rejected {
            code: ErrorCode::UnknownPeer
        }]
    );
    w.send(&mut bob, json!({"type": "leave", "room": "r1"}));
    assert_eq!(
        w.events(),
        [
            Event::Left {
                room: room("r1"),
                peer: peer_id("bob"),
                user: "bob".into(),
                reason: PeerLeftReason::Left,
                members: 1
            },
            Event::Received { kind: "leave" },
        ]
    );
    w.send(&mut alice, json!({"type": "leave", "room": "r1"}));
    let events = w.events();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events.contains(&Event::Left {
        room: room("r1"),
        peer: peer_id("alice"),
        user: "alice".into(),
        reason: PeerLeftReason::Left,
        members: 0
    }));
    assert!(events.contains(&Event::RoomClosed {
        room: room("r1"),
        reason: "empty"
    }));
    assert_eq!(events[2], Event::Received { kind: "leave" });
    w.send(&mut alice, json!({"type": "ping"}));
    w.send(&mut alice, json!({"type": "ack", "payload": {"seq": 1}}));
    assert_eq!(
        w.events(),
        [
            Event::Received { kind: "ping" },
            Event::Received { kind: "ack" }
        ]
    );
    assert_eq!(w.events(), [], "drain_events empties the queue");
}

#[test]
fn events_report_detach_resume_replace_kick_and_close() {
    let mut w = World::new();
    let (mut alice, mut bob, carol) = trio(&mut w);
    w.events();
    w.hub.disconnect(&bob.at, Disconnect::Lost, w.now);
    w.resume(&mut bob).unwrap();
    assert!(
        w.hub
            .resume(bob.at.session.as_str(), "mallory", bob.last_seq, w.now)
            .is_err()
    );
    assert_eq!(
        w.events(),
        [
            Event::SessionDetached {
                session: bob.session(),
                reason: CloseReason::TransportLost
            },
            Event::SessionResumed {
                session: bob.session(),
                user: "bob".into(),
                replayed: 0
            },
            Event::ResumeFailed {
                code: ErrorCode::Forbidden
            },
        ]
    );
    w.drain(&mut bob);
    let mut bob2 = w.open("bob", Role::Guest);
    w.events();
    w.join(&mut bob2, "r1");
    assert_eq!(
        w.events(),
        [
            Event::Replaced {
                room: room("r1"),
                user: "bob".into(),
                old: bob.session(),
                new: bob2.session()
            },
            Event::Left {
                room: room("r1"),
                peer: peer_id("bob"),
                user: "bob".into(),
                reason: PeerLeftReason::Replaced,
                members: 2
            },
            Event::SessionClosed {
                session: bob.session(),
                user: "bob".into(),
                reason: CloseReason::Replaced
            },
            Event::Joined {
                room: room("r1"),
                peer: peer_id("bob"),
                user: "bob".into(),
                members: 3
            },
            Event::Received { kind: "join" },
        ]
    );
    w.send(
        &mut alice,
        json!({"type": "kick", "room": "r1", "payload": {"peer": "bob"}}),
    );
    assert_eq!(
        w.events(),
        [
            Event::Left {
                room: room("r1"),
                peer: peer_id("bob"),
                user: "bob".into(),
                reason: PeerLeftReason::Kicked,
                members: 2
            },
            Event::Received { kind: "kick" },
        ]
    );
    w.hub.disconnect(&carol.at, Disconnect::Closed, w.now);
    assert_eq!(
        w.events(),
        [
            Event::Left {
                room: room("r1"),
                peer: peer_id("carol"),
                user: "carol".into(),
                reason: PeerLeftReason::Disconnected,
                members: 1
            },
            Event::SessionClosed {
                session: carol.session(),
                user: "carol".into(),
                reason: CloseReason::ClientClosed
            },
        ]
    );
}

struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn the_registered_waker_is_woken_when_something_is_queued_or_the_transport_must_close() {
    let mut w = World::with(CoreConfig {
        heartbeat_timeout: secs(40),
        ..CoreConfig::default()
    });
    let (mut alice, mut bob) = pair(&mut w);
    let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(counter.clone());
    let woken = || counter.0.load(Ordering::SeqCst);
    assert_eq!(w.hub.poll_transmit(&alice.at, &waker, 10), Poll::Pending);
    assert_eq!(woken(), 0);
    // Something for another session does not wake alice's transport.
    w.send(&mut alice, message_to("bob", "to-bob"));
    assert_eq!(woken(), 0);
    w.drain(&mut bob);
    // A message for alice does.
    w.send(&mut bob, message_to("alice", "to-alice"));
    assert_eq!(woken(), 1);
    // The wake was used up; the transport has not polled since, so no second wake.
    w.send(&mut bob, message_to("alice", "again"));
    assert_eq!(woken(), 1);
    match w.hub.poll_transmit(&alice.at, &waker, 10) {
        Poll::Ready(Transmit::Messages(frames)) => assert_eq!(frames.len(), 2),
        other => panic!("{other:?}"),
    }
    alice.last_seq += 2;
    // Registered again: a peer leaving wakes it.
    assert_eq!(w.hub.poll_transmit(&alice.at, &waker, 10), Poll::Pending);
    w.hub.disconnect(&bob.at, Disconnect::Closed, w.now);
    assert_eq!(woken(), 2);
    assert_eq!(kinds(&w.drain(&mut alice)), ["peer_left"]);
    // And so does a heartbeat timeout, which must close the transport.
    assert_eq!(w.hub.poll_transmit(&alice.at, &waker, 10), Poll::Pending);
    w.advance(secs(40));
    w.tick();
    assert_eq!(woken(), 3);
    assert_eq!(
        w.hub.poll_transmit(&alice.at, &waker, 10),
        Poll::Ready(Transmit::Close(CloseReason::HeartbeatTimeout))
    );
}

#[test]
fn a_superseded_transports_waker_is_woken_so_it_can_close() {
    let mut w = World::new();
    let (mut alice, _bob) = pair(&mut w);
    let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(counter.clone());
    let old = alice.at.clone();
    assert_eq!(w.hub.poll_transmit(&old, &waker, 10), Poll::Pending);
    w.resume(&mut alice).unwrap();
    assert_eq!(counter.0.load(Ordering::SeqCst), 1);
    assert_eq!(
        w.hub.poll_transmit(&old, &waker, 10),
        Poll::Ready(Transmit::Close(CloseReason::Superseded))
    );
}

// ---------------------------------------------------------------------------------------------
// randomized: the invariants hold under any interleaving
// ---------------------------------------------------------------------------------------------

const USERS: usize = 4;
const ROOMS: usize = 3;
/// Ops name clients by an index taken modulo the number of candidates.
const MAX_CLIENTS: usize = 10;
/// Sessions open at once, at most.
const MAX_LIVE: usize = 6;
const SIM_RESUME: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
enum Op {
    /// A new session for user `.0` (user 0 is a host).
    Open(usize),
    Join(usize, usize),
    Leave(usize, usize),
    /// Client, target user, room; with `true`, aimed at a room and peer the client knows of.
    Signal(usize, usize, usize, bool),
    Broadcast(usize, usize, bool),
    Mode(usize, usize, bool),
    Kick(usize, usize, usize),
    Ping(usize),
    Ack(usize),
    /// The client stops reading (and sending) for a while.
    Stall(usize),
    Read(usize),
    Lose(usize),
    /// The transport takes a batch and dies before the client sees it.
    LoseInFlight(usize),
    Close(usize),
    Resume(usize),
    /// A second transport resumes a session whose first is still up.
    Reattach(usize),
    /// Advance the clock by one of a few steps; with `true`, transports prove liveness.
    Advance(usize, bool),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let c = || 0usize..MAX_CLIENTS;
    let u = || 0usize..USERS;
    let r = || 0usize..ROOMS;
    // Mostly aimed, so that most relays are delivered; sometimes anywhere, to hit the refusals.
    let aimed = || (0..4).prop_map(|n| n != 0);
    prop_oneof![
        3 => u().prop_map(Op::Open),
        12 => (c(), r()).prop_map(|(c, r)| Op::Join(c, r)),
        3 => (c(), r()).prop_map(|(c, r)| Op::Leave(c, r)),
        10 => (c(), u(), r(), aimed()).prop_map(|(c, u, r, a)| Op::Signal(c, u, r, a)),
        4 => (c(), r(), aimed()).prop_map(|(c, r, a)| Op::Broadcast(c, r, a)),
        2 => (c(), r(), any::<bool>()).prop_map(|(c, r, h)| Op::Mode(c, r, h)),
        1 => (c(), u(), r()).prop_map(|(c, u, r)| Op::Kick(c, u, r)),
        1 => c().prop_map(Op::Ping),
        1 => c().prop_map(Op::Ack),
        1 => c().prop_map(Op::Stall),
        3 => c().prop_map(Op::Read),
        2 => c().prop_map(Op::Lose),
        2 => c().prop_map(Op::LoseInFlight),
        1 => c().prop_map(Op::Close),
        5 => c().prop_map(Op::Resume),
        1 => c().prop_map(Op::Reattach),
        3 => (0usize..5, 0..4).prop_map(|(d, k)| Op::Advance(d, k != 0)),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SimLink {
    Attached,
    /// The transport is gone; the session may be waiting for a resume, or already ended.
    Detached,
    /// A resume was refused (`session_expired`). The hub may still hold the session, silent in
    /// its rooms, until its resume window has passed; after that it is certainly gone.
    Abandoned,
    Gone,
}

/// A client as the simulation sees it, with the room view it builds from what it receives.
struct Client {
    user: usize,
    at: Attachment,
    link: SimLink,
    stalled: bool,
    /// When the client learned that its transport was gone (Unix ms), never before the hub did.
    detached_ms: u64,
    next_seq: u64,
    last_seq: u64,
    /// Room -> the other members' peer ids, as told by `joined`, `peer_joined` and `peer_left`.
    rooms: BTreeMap<String, BTreeSet<String>>,
    /// Ids of relayed messages received, to catch a double delivery.
    received: HashSet<String>,
}

struct Sent {
    sender: usize,
    room: String,
    from: String,
    to: Option<String>,
}

struct Sim {
    hub: Hub,
    now: Now,
    clients: Vec<Client>,
    sent: HashMap<String, Sent>,
    next_id: u64,
}

fn sim_peer(user: usize) -> String {
    format!("p{user}")
}

fn sim_room(r: usize) -> String {
    format!("r{r}")
}

impl Sim {
    fn new() -> Self {
        let config = CoreConfig {
            max_peers: 3,
            max_rooms_per_session: 2,
            heartbeat_interval: secs(5),
            heartbeat_timeout: secs(20),
            resume_window: SIM_RESUME,
            room_idle_timeout: secs(45),
            outbox_limit: 6,
            ..CoreConfig::default()
        };
        let mut sim = Sim {
            hub: Hub::new(config, StdRng::seed_from_u64(7)),
            now: Now {
                at: Instant::now(),
                unix_ms: T0_UNIX_MS,
            },
            clients: Vec::new(),
            sent: HashMap::new(),
            next_id: 0,
        };
        for u in 0..USERS {
            sim.open(u);
        }
        sim
    }

    fn open(&mut self, user: usize) {
        let role = if user == 0 { Role::Host } else { Role::Guest };
        let at = self
            .hub
            .open(identity(&format!("user{user}"), role, "*"), self.now)
            .expect("session opens");
        self.clients.push(Client {
            user,
            at,
            link: SimLink::Attached,
            stalled: false,
            detached_ms: 0,
            next_seq: 1,
            last_seq: 0,
            rooms: BTreeMap::new(),
            received: HashSet::new(),
        });
        let c = self.clients.len() - 1;
        self.drain(c);
        assert!(self.clients[c].last_seq >= 1, "hello");
    }

    /// The `i`-th client (modulo their number) that satisfies `ok`.
    fn pick(&self, i: usize, ok: impl Fn(&Client) -> bool) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.clients.len())
            .filter(|&c| ok(&self.clients[c]))
            .collect();
        (!candidates.is_empty()).then(|| candidates[i % candidates.len()])
    }

    /// An attached client that reads and writes.
    fn active(&self, i: usize) -> Option<usize> {
        self.pick(i, |c| c.link == SimLink::Attached && !c.stalled)
    }

    /// An active client to send a relay; when `aimed`, preferably one that is in a room.
    fn sender(&self, i: usize, aimed: bool) -> Option<usize> {
        let in_room = |c: &Client| c.link == SimLink::Attached && !c.stalled && !c.rooms.is_empty();
        aimed
            .then(|| self.pick(i, in_room))
            .flatten()
            .or_else(|| self.active(i))
    }

    /// Sends a frame from client `c`; a refusal is queued as the server does. True if accepted.
    fn send(&mut self, c: usize, mut v: Value) -> bool {
        let client = &mut self.clients[c];
        v["seq"] = client.next_seq.into();
        v["ts"] = self.now.unix_ms.into();
        client.next_seq += 1;
        match self.hub.receive(&client.at, &v.to_string(), self.now) {
            Ok(()) => true,
            Err(Refusal::Dropped) => panic!("random traffic hit a rate limit"),
            Err(Refusal::Reply(e)) => {
                let text = e.encode(0, 0);
                assert_ne!(code(&decode(&text)), "internal", "{text}");
                self.hub.reply(&client.at, *e, self.now);
                false
            }
        }
    }

    fn drain(&mut self, c: usize) {
        loop {
            let at = self.clients[c].at.clone();
            match self.hub.poll_transmit(&at, Waker::noop(), 1000) {
                Poll::Pending => return,
                Poll::Ready(Transmit::Messages(frames)) => {
                    assert!(!frames.is_empty());
                    for f in frames.into_iter().map(|f| f.text.to_string()) {
                        self.process(c, decode(&f));
                    }
                }
                Poll::Ready(Transmit::Close(reason)) => {
                    self.closed(c, reason);
                    return;
                }
            }
        }
    }

    fn detached(&mut self, c: usize) {
        let client = &mut self.clients[c];
        client.link = SimLink::Detached;
        client.detached_ms = self.now.unix_ms;
        client.stalled = false;
    }

    fn closed(&mut self, c: usize, reason: CloseReason) {
        if matches!(
            reason,
            CloseReason::TransportLost | CloseReason::HeartbeatTimeout
        ) {
            self.detached(c);
            return;
        }
        let client = &mut self.clients[c];
        match reason {
            CloseReason::Replaced
            | CloseReason::Overflow
            | CloseReason::Expired
            | CloseReason::Shutdown => {
                client.link = SimLink::Gone;
                client.rooms.clear();
            }
            other => panic!("client {c} closed with {other:?}"),
        }
        client.stalled = false;
    }

    /// One message as the client reads it: checks it against the client's own view.
    fn process(&mut self, c: usize, m: ServerEnvelope) {
        let own = sim_peer(self.clients[c].user);
        let client = &mut self.clients[c];
        assert_eq!(
            m.seq,
            client.last_seq + 1,
            "client {c}: seq gap or repeat: {m:?}"
        );
        client.last_seq = m.seq;
        let room = m.room.clone().unwrap_or_default();
        let text = |key: &str| m.payload[key].as_str().unwrap_or_default().to_owned();
        match m.kind.as_str() {
            "hello" => {
                if m.seq > 1 {
                    assert_eq!(m.payload["resumed"], true);
                    assert_eq!(m.payload["last_client_seq"], client.next_seq - 1);
                }
            }
            "joined" => {
                assert_eq!(text("peer"), own);
                let peers: BTreeSet<String> = m.payload["peers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["peer"].as_str().unwrap().to_owned())
                    .collect();
                assert!(!peers.contains(&own));
                if let Some(known) = client.rooms.get(&room) {
                    assert_eq!(known, &peers, "client {c}: a repeated joined disagrees");
                }
                client.rooms.insert(room, peers);
            }
            "peer_joined" => {
                let peer = text("peer");
                assert_ne!(peer, own);
                let view = client.rooms.get_mut(&room).unwrap_or_else(|| {
                    panic!("client {c}: peer_joined for {room}, which it is not in")
                });
                assert!(view.insert(peer), "client {c}: {m:?} for a known member");
            }
            "peer_left" => {
                let peer = text("peer");
                let view = client.rooms.get_mut(&room).unwrap_or_else(|| {
                    panic!("client {c}: peer_left for {room}, which it is not in")
                });
                assert!(view.remove(&peer), "client {c}: {m:?} for a non-member");
            }
            "left" => {
                let was_in = client.rooms.remove(&room).is_some();
                if text("reason") == "kicked" {
                    assert!(was_in, "client {c}: kicked from {room}, which it is not in");
                }
            }
            "room_closed" => {
                assert!(
                    client.rooms.remove(&room).is_some(),
                    "client {c}: {room} closed, which it is not in"
                );
            }
            "mode_changed" => {
                assert!(client.rooms.contains_key(&room), "client {c}: {m:?}");
            }
            "offer" | "message" => {
                let id = m.id.clone().expect("relayed with its id");
                let sent = self
                    .sent
                    .get(&id)
                    .unwrap_or_else(|| panic!("client {c}: {id} was never accepted"));
                let from = m.from.clone().expect("relayed with from");
                assert_eq!(room, sent.room);
                assert_eq!(from, sent.from);
                assert_ne!(c, sent.sender, "a message came back to its sender");
                assert_ne!(from, own);
                if let Some(to) = &sent.to {
                    assert_eq!(to, &own, "client {c} got a message for {to}");
                }
                let view = client.rooms.get(&room).unwrap_or_else(|| {
                    panic!("client {c} got {id} for {room}, which it is not in")
                });
                assert!(
                    view.contains(&from),
                    "client {c} got {id} from non-member {from}"
                );
                assert!(client.received.insert(id.clone()), "{id} delivered twice");
            }
            "pong" | "replaced" | "error" => {}
            other => panic!("client {c}: unexpected {other}"),
        }
    }

    fn drain_all(&mut self) {
        for c in 0..self.clients.len() {
            let client = &self.clients[c];
            if client.link == SimLink::Attached && !client.stalled {
                self.drain(c);
            }
        }
        self.hub.drain_events().for_each(drop);
    }

    /// When every client's view is up to date, the views agree with each other and with the hub.
    /// Returns whether it could check.
    fn check(&self) -> bool {
        let settled = self
            .clients
            .iter()
            .all(|c| c.link == SimLink::Gone || (c.link == SimLink::Attached && !c.stalled));
        if !settled {
            return false;
        }
        let live: Vec<&Client> = self
            .clients
            .iter()
            .filter(|c| c.link == SimLink::Attached)
            .collect();
        let stats = self.hub.stats();
        assert_eq!(stats.sessions, live.len(), "sessions");
        assert_eq!(stats.attached, live.len(), "attached");
        let members: usize = live.iter().map(|c| c.rooms.len()).sum();
        assert_eq!(stats.members, members, "members");
        let rooms: BTreeSet<&String> = live.iter().flat_map(|c| c.rooms.keys()).collect();
        assert_eq!(stats.rooms, rooms.len(), "rooms");
        for (i, c) in live.iter().enumerate() {
            for (room, view) in &c.rooms {
                let expected: BTreeSet<String> = live
                    .iter()
                    .enumerate()
                    .filter(|(j, d)| *j != i && d.rooms.contains_key(room))
                    .map(|(_, d)| {
                        assert_ne!(d.user, c.user, "two sessions of one user in {room}");
                        sim_peer(d.user)
                    })
                    .collect();
                assert_eq!(view, &expected, "user{}'s view of {room}", c.user);
            }
        }
        true
    }

    fn resume(&mut self, c: usize) {
        let client = &self.clients[c];
        let user = format!("user{}", client.user);
        match self
            .hub
            .resume(client.at.session.as_str(), &user, client.last_seq, self.now)
        {
            Ok(at) => {
                let client = &mut self.clients[c];
                client.at = at;
                client.link = SimLink::Attached;
                client.stalled = false;
                let before = client.last_seq;
                self.drain(c);
                assert!(
                    self.clients[c].last_seq > before,
                    "a resume starts with hello"
                );
            }
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::SessionExpired, "{e}");
                let client = &mut self.clients[c];
                client.link = SimLink::Abandoned;
                client.rooms.clear();
            }
        }
    }

    fn relay(&mut self, c: usize, room: usize, to: Option<usize>, aimed: bool) {
        self.next_id += 1;
        let id = format!("m{}", self.next_id);
        let client = &self.clients[c];
        let from = sim_peer(client.user);
        let known = client.rooms.iter().nth(room % client.rooms.len().max(1));
        let (room, to) = match known {
            Some((room, peers)) if aimed => {
                let to = to.map(|u| match peers.iter().nth(u % peers.len().max(1)) {
                    Some(peer) => peer.clone(),
                    None => sim_peer(u),
                });
                (room.clone(), to)
            }
            _ => (sim_room(room), to.map(sim_peer)),
        };
        let mut v = match &to {
            Some(_) => json!({"type": "offer", "payload": {"sdp": "v=0"}}),
            None => json!({"type": "message", "payload": {"n": self.next_id}}),
        };
        v["room"] = room.clone().into();
        v["id"] = id.clone().into();
        if let Some(to) = &to {
            v["to"] = to.clone().into();
        }
        self.sent.insert(
            id.clone(),
            Sent {
                sender: c,
                room,
                from,
                to,
            },
        );
        if !self.send(c, v) {
            self.sent.remove(&id);
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Open(u) => {
                let live = self.clients.iter().filter(|c| c.link != SimLink::Gone);
                if live.count() < MAX_LIVE {
                    self.open(u);
                }
            }
            Op::Join(i, r) => {
                if let Some(c) = self.active(i) {
                    let peer = sim_peer(self.clients[c].user);
                    self.send(
                        c,
                        json!({"type": "join", "room": sim_room(r), "payload": {"peer": peer}}),
                    );
                }
            }
            Op::Leave(i, r) => {
                if let Some(c) = self.active(i) {
                    self.send(c, json!({"type": "leave", "room": sim_room(r)}));
                }
            }
            Op::Signal(i, u, r, aimed) => {
                if let Some(c) = self.sender(i, aimed) {
                    self.relay(c, r, Some(u), aimed);
                }
            }
            Op::Broadcast(i, r, aimed) => {
                if let Some(c) = self.sender(i, aimed) {
                    self.relay(c, r, None, aimed);
                }
            }
            Op::Mode(i, r, host_only) => {
                if let Some(c) = self.active(i) {
                    let mode = if host_only {
                        "host_only"
                    } else {
                        "free_for_all"
                    };
                    self.send(
                        c,
                        json!({"type": "mode", "room": sim_room(r), "payload": {"mode": mode}}),
                    );
                }
            }
            Op::Kick(i, u, r) => {
                if let Some(c) = self.active(i) {
                    self.send(
                        c,
                        json!({"type": "kick", "room": sim_room(r), "payload": {"peer": sim_peer(u)}}),
                    );
                }
            }
            Op::Ping(i) => {
                if let Some(c) = self.active(i) {
                    self.send(c, json!({"type": "ping"}));
                }
            }
            Op::Ack(i) => {
                if let Some(c) = self.active(i) {
                    let seq = self.clients[c].last_seq;
                    self.send(c, json!({"type": "ack", "payload": {"seq": seq}}));
                }
            }
            Op::Stall(i) => {
                if let Some(c) = self.active(i) {
                    self.clients[c].stalled = true;
                }
            }
            Op::Read(i) => {
                if let Some(c) = self.pick(i, |c| c.stalled) {
                    self.clients[c].stalled = false;
                }
            }
            Op::Lose(i) => {
                if let Some(c) = self.active(i) {
                    let at = self.clients[c].at.clone();
                    self.hub.disconnect(&at, Disconnect::Lost, self.now);
                    self.detached(c);
                }
            }
            Op::LoseInFlight(i) => {
                if let Some(c) = self.pick(i, |c| c.link == SimLink::Attached) {
                    let at = self.clients[c].at.clone();
                    match self.hub.poll_transmit(&at, Waker::noop(), 3) {
                        Poll::Ready(Transmit::Close(reason)) => {
                            self.closed(c, reason);
                            return;
                        }
                        // Taken by the transport, never seen by the client.
                        Poll::Ready(Transmit::Messages(_)) | Poll::Pending => {}
                    }
                    self.hub.disconnect(&at, Disconnect::Lost, self.now);
                    self.detached(c);
                }
            }
            Op::Close(i) => {
                if let Some(c) = self.active(i) {
                    let at = self.clients[c].at.clone();
                    self.hub.disconnect(&at, Disconnect::Closed, self.now);
                    self.clients[c].link = SimLink::Gone;
                    self.clients[c].rooms.clear();
                }
            }
            Op::Resume(i) => {
                if let Some(c) = self.pick(i, |c| c.link == SimLink::Detached) {
                    self.resume(c);
                }
            }
            Op::Reattach(i) => {
                if let Some(c) = self.active(i) {
                    let old = self.clients[c].at.clone();
                    self.resume(c);
                    assert_eq!(self.clients[c].link, SimLink::Attached);
                    assert_eq!(
                        self.hub.poll_transmit(&old, Waker::noop(), 10),
                        Poll::Ready(Transmit::Close(CloseReason::Superseded))
                    );
                }
            }
            Op::Advance(step, keepalive) => {
                self.now = self.now.after(secs([1, 3, 8, 15, 25][step]));
                if keepalive {
                    for c in &self.clients {
                        if c.link == SimLink::Attached {
                            self.hub.heard_from(&c.at, self.now);
                        }
                    }
                }
                self.tick();
            }
        }
    }

    /// Runs the hub's timers; abandoned sessions whose resume window has passed are gone.
    fn tick(&mut self) {
        self.hub.handle_timeout(self.now);
        let window = SIM_RESUME.as_millis() as u64;
        for c in &mut self.clients {
            if c.link == SimLink::Abandoned && self.now.unix_ms - c.detached_ms >= window {
                c.link = SimLink::Gone;
            }
        }
    }

    /// Brings every client up to date, then shuts down and checks that everyone is told.
    fn finish(&mut self) {
        for c in &mut self.clients {
            c.stalled = false;
        }
        self.drain_all();
        for c in 0..self.clients.len() {
            if self.clients[c].link == SimLink::Detached {
                self.resume(c);
            }
        }
        self.drain_all();
        // Let the sessions whose resume was refused run out their window.
        if self.clients.iter().any(|c| c.link == SimLink::Abandoned) {
            self.apply(&Op::Advance(3, true));
            self.drain_all();
        }
        assert!(self.check(), "every client is settled at the end");
        self.hub.shutdown(self.now);
        for c in 0..self.clients.len() {
            if self.clients[c].link != SimLink::Attached {
                continue;
            }
            let at = self.clients[c].at.clone();
            loop {
                match self.hub.poll_transmit(&at, Waker::noop(), 1000) {
                    Poll::Ready(Transmit::Messages(frames)) => {
                        for f in frames.into_iter().map(|f| f.text.to_string()) {
                            let m = decode(&f);
                            assert_eq!(m.kind, "room_closed", "{f}");
                            assert_eq!(m.payload["reason"], "shutdown");
                            self.process(c, m);
                        }
                    }
                    Poll::Ready(Transmit::Close(reason)) => {
                        assert_eq!(reason, CloseReason::Shutdown);
                        assert!(self.clients[c].rooms.is_empty(), "told of every room");
                        break;
                    }
                    Poll::Pending => panic!("client {c} not closed at shutdown"),
                }
            }
        }
        assert_eq!(self.hub.stats(), Stats::default());
    }
}

proptest! {
    // A fixed seed keeps the run deterministic; set PROPTEST_RNG_SEED (and PROPTEST_CASES) to
    // explore further.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        rng_seed: match ProptestConfig::default().rng_seed {
            RngSeed::Random => RngSeed::Fixed(0x5717_c4b0),
            chosen => chosen,
        },
        ..ProptestConfig::default()
    })]

    /// Random joins, leaves, relays, mode changes, kicks, stalls, losses, resumes and clock jumps
    /// over four users: every client sees seqs rising by one, its view of each room matches the
    /// others' and the hub's counts, and no relayed message reaches anyone outside the room, its
    /// target, or anyone twice.
    #[test]
    fn random_traffic_keeps_the_invariants(ops in proptest::collection::vec(op_strategy(), 1..120)) {
        let mut sim = Sim::new();
        for op in &ops {
            sim.apply(op);
            sim.drain_all();
            sim.check();
        }
        sim.finish();
    }
}

// ---------------------------------------------------------------------------------------------
// rate limits
// ---------------------------------------------------------------------------------------------

fn rated(rate: crate::RateLimits) -> World {
    World::with(CoreConfig {
        rate,
        ..CoreConfig::default()
    })
}

fn candidate_to(to: &str, n: usize) -> Value {
    json!({"type": "candidate", "room": "r1", "to": to,
           "payload": {"candidate": format!("candidate:{n} 1 udp 2122260223 127.0.0.1 {} typ host", 40000 + n), "sdp_mid": "0", "sdp_m_line_index": 0}})
}

impl World {
    /// Sends `v`, which may be dropped by a rate limit; true when it was accepted.
    fn offer_frame(&mut self, p: &mut TestPeer, v: Value) -> bool {
        let text = self.frame(p, v);
        match self.hub.receive(&p.at, &text, self.now) {
            Ok(()) => true,
            Err(Refusal::Dropped) => false,
            Err(Refusal::Reply(e)) => panic!("{text} was refused: {}", e.encode(0, 0)),
        }
    }
}

#[test]
fn a_normal_call_never_hits_a_limit() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    w.send(
        &mut alice,
        json!({"type": "offer", "room": "r1", "to": "bob", "payload": {"sdp": "v=0"}}),
    );
    for n in 0..80 {
        w.send(&mut alice, candidate_to("bob", n));
    }
    w.send(
        &mut bob,
        json!({"type": "answer", "room": "r1", "to": "alice", "payload": {"sdp": "v=0"}}),
    );
    for n in 0..80 {
        w.send(&mut bob, candidate_to("alice", n));
    }
    for n in 0..20 {
        w.send(&mut alice, message_to("bob", &format!("chat{n}")));
    }
    assert_eq!(w.drain(&mut bob).len(), 101);
    assert_eq!(w.drain(&mut alice).len(), 81);
}

#[test]
fn a_flood_is_dropped_past_the_budget_with_one_warning_a_second() {
    let mut w = rated(crate::RateLimits {
        candidates_per_sec: 5.0,
        candidate_burst: 10.0,
        ..crate::RateLimits::default()
    });
    let (mut alice, mut bob) = pair(&mut w);
    let accepted = (0..30)
        .filter(|&n| w.offer_frame(&mut alice, candidate_to("bob", n)))
        .count();
    assert_eq!(accepted, 10);
    assert_eq!(kinds(&w.drain(&mut bob)), ["candidate"; 10]);
    let warned = w.drain(&mut alice);
    assert_eq!(kinds(&warned), ["warning"]);
    assert_eq!(warned[0].payload["code"], "rate_limited");
    // Dropped messages used up their seq: nothing of them comes back later.
    w.advance(Duration::from_secs(1));
    let accepted = (30..40)
        .filter(|&n| w.offer_frame(&mut alice, candidate_to("bob", n)))
        .count();
    assert_eq!(accepted, 5);
    assert_eq!(kinds(&w.drain(&mut alice)), ["warning"]);
    let scopes: Vec<_> = w
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::RateLimited { scope, warned, .. } => Some((scope, warned)),
            _ => None,
        })
        .collect();
    assert_eq!(scopes.len(), 25);
    assert!(scopes.iter().all(|(scope, _)| *scope == "candidate"));
    assert_eq!(scopes.iter().filter(|(_, warned)| *warned).count(), 2);
}

#[test]
fn a_flooding_peer_does_not_degrade_the_others() {
    let mut w = rated(crate::RateLimits {
        messages_per_sec: 10.0,
        message_burst: 10.0,
        ..crate::RateLimits::default()
    });
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    for step in 0..100u64 {
        w.offer_frame(&mut bob, message_to("alice", "flood"));
        if step % 10 == 0 {
            // Carol and Alice keep a normal conversation going through the flood.
            w.send(&mut carol, message_to("alice", &format!("c{step}")));
            w.send(&mut alice, message_to("carol", &format!("a{step}")));
        }
        w.advance(Duration::from_millis(10));
    }
    let to_carol = w.drain(&mut carol);
    assert_eq!(to_carol.len(), 10);
    let from_carol = w
        .drain(&mut alice)
        .into_iter()
        .filter(|m| m.from.as_deref() == Some("carol"))
        .count();
    assert_eq!(from_carol, 10);
    w.drain(&mut bob);
}

#[test]
fn sustained_abuse_closes_the_session_but_a_burst_does_not() {
    let limits = crate::RateLimits {
        messages_per_sec: 5.0,
        message_burst: 5.0,
        abuse_factor: 10.0,
        abuse_window_ms: 3_000,
        ..crate::RateLimits::default()
    };
    // Twice the budget for ten seconds: dropped, warned, never closed.
    let mut w = rated(limits.clone());
    let (mut alice, mut bob) = pair(&mut w);
    for _ in 0..100 {
        w.offer_frame(&mut bob, message_to("alice", "x"));
        w.advance(Duration::from_millis(100));
    }
    w.tick();
    let got = w.drain(&mut bob);
    assert!(got.iter().all(|m| m.kind == "warning"), "{got:?}");
    w.drain(&mut alice);

    // Twelve times the budget for three seconds: closed for abuse, the peers see it leave.
    let mut w = rated(limits);
    let (mut alice, mut bob) = pair(&mut w);
    let mut sent = 0;
    let reason = loop {
        if let Poll::Ready(Transmit::Close(reason)) = w.poll(&bob) {
            break reason;
        }
        assert!(sent < 300, "still open after {sent} messages");
        w.offer_frame(&mut bob, message_to("alice", "x"));
        w.advance(Duration::from_micros(16_667));
        sent += 1;
    };
    assert!((150..=200).contains(&sent), "closed after {sent}");
    assert_eq!(reason, CloseReason::Abuse);
    let left = w.drain(&mut alice).pop().unwrap();
    assert_eq!(
        left.payload,
        json!({"peer": "bob", "reason": "disconnected"})
    );
}

#[test]
fn joins_from_one_address_share_a_budget() {
    let mut w = rated(crate::RateLimits {
        joins_per_sec_per_address: 1.0,
        join_burst_per_address: 2.0,
        ..crate::RateLimits::default()
    });
    let address = Some("192.0.2.7".parse().unwrap());
    let mut peers: Vec<TestPeer> = (0..3)
        .map(|n| {
            w.open_as(Identity {
                address,
                ..identity(&format!("u{n}"), Role::Guest, "*")
            })
        })
        .collect();
    let joined: Vec<bool> = peers
        .iter_mut()
        .map(|p| {
            let v = json!({"type": "join", "room": "r1"});
            w.offer_frame(p, v)
        })
        .collect();
    assert_eq!(joined, [true, true, false]);
    // Another address is not affected.
    let mut other = w.open_as(Identity {
        address: Some("192.0.2.8".parse().unwrap()),
        ..identity("u9", Role::Guest, "*")
    });
    assert!(w.offer_frame(&mut other, json!({"type": "join", "room": "r1"})));
    w.advance(Duration::from_secs(1));
    assert!(w.offer_frame(&mut peers[2], json!({"type": "join", "room": "r1"})));
}

#[test]
fn a_room_has_one_budget_for_all_its_members() {
    let mut w = rated(crate::RateLimits {
        room_messages_per_sec: 0.001,
        room_message_burst: 6.0,
        ..crate::RateLimits::default()
    });
    let (mut alice, mut bob) = pair(&mut w);
    let mut accepted = 0;
    for n in 0..5 {
        accepted += usize::from(w.offer_frame(&mut alice, message_to("bob", &format!("a{n}"))));
        accepted += usize::from(w.offer_frame(&mut bob, message_to("alice", &format!("b{n}"))));
    }
    assert_eq!(accepted, 6);
    let scopes: BTreeSet<_> = w
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::RateLimited { scope, .. } => Some(scope),
            _ => None,
        })
        .collect();
    assert_eq!(scopes, BTreeSet::from(["room"]));
}

#[test]
fn only_members_spend_a_room_budget() {
    let mut w = rated(crate::RateLimits {
        room_messages_per_sec: 0.001,
        room_message_burst: 3.0,
        ..crate::RateLimits::default()
    });
    let (mut alice, _bob) = pair(&mut w);
    let mut mallory = w.open("mallory", Role::Guest);
    for n in 0..10 {
        let text = w.frame(&mut mallory, message_to("bob", &format!("m{n}")));
        match w.hub.receive(&mallory.at, &text, w.now) {
            Err(Refusal::Reply(e)) => assert!(e.encode(0, 0).contains("not_in_room")),
            other => panic!("an outsider's message must be refused, got {other:?}"),
        }
    }
    for n in 0..3 {
        assert!(
            w.offer_frame(&mut alice, message_to("bob", &format!("a{n}"))),
            "the members' budget is untouched"
        );
    }
}

#[test]
fn session_caps_per_user_and_per_address() {
    let mut w = World::with(CoreConfig {
        max_sessions_per_user: 2,
        max_sessions_per_address: 3,
        ..CoreConfig::default()
    });
    let first = w.open("alice", Role::Guest);
    w.open("alice", Role::Guest);
    let refused = w
        .hub
        .open(identity("alice", Role::Guest, "*"), w.now)
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::RateLimited);
    // A session that ends frees its place.
    w.hub.disconnect(&first.at, Disconnect::Closed, w.now);
    w.open("alice", Role::Guest);

    let address = Some("198.51.100.1".parse().unwrap());
    for n in 0..3 {
        w.open_as(Identity {
            address,
            ..identity(&format!("v{n}"), Role::Guest, "*")
        });
    }
    let refused = w
        .hub
        .open(
            Identity {
                address,
                ..identity("v9", Role::Guest, "*")
            },
            w.now,
        )
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::RateLimited);
}
