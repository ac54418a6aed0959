//! The builders the hub's tests share: a [`World`] (the hub with a virtual clock), [`TestPeer`]s
//! that open sessions, send frames and read what their transport would send, and the rooms most
//! tests start from ([`pair`], [`trio`]). The tests themselves sit beside the rule each one tests
//! (`hub/<module>/tests.rs`), the randomized run in `hub/simulation.rs`; they drive the hub only
//! through its public API.
//!
//! The clock is virtual: one `Instant::now()` is the start, and every later moment is
//! [`Now::after`] of it ([`World::advance`]), so timeouts are tested without a sleep.
//!
//! Every frame a test peer reads goes through [`World::drain_raw`] (or [`World::drain_to_close`]),
//! which also checks the contract's numbering rule (server `seq` strictly increasing by one per
//! session, starting at 1), so every test checks it in passing.

use std::time::{Duration, Instant};

use rand::{SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use switchboard_protocol::{PeerId, Role, RoomGrant, RoomId, ServerEnvelope, ServerMessage};

use super::{Attachment, Hub, Outputs, Refusal, Transmit};
use crate::{CloseReason, CoreConfig, Event, Identity, Now, SessionId, SharedOp};

/// Wall-clock start of the virtual clock, in Unix ms.
pub(super) const T0_UNIX_MS: u64 = 1_763_700_000_000;

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(super) fn identity(user: &str, role: Role, grant: &str) -> Identity {
    Identity {
        user: user.into(),
        role,
        name: None,
        grant: RoomGrant::parse(grant).unwrap(),
        lobby: false,
        address: None,
        ice_servers: Vec::new(),
    }
}

pub(super) fn decode(text: &str) -> ServerEnvelope {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("undecodable server frame {text}: {e}"))
}

pub(super) fn kinds(msgs: &[ServerEnvelope]) -> Vec<&str> {
    msgs.iter().map(|m| m.kind.as_str()).collect()
}

/// The `code` of an `error` message.
pub(super) fn code(m: &ServerEnvelope) -> &str {
    assert_eq!(m.kind, "error", "not an error: {m:?}");
    m.payload["code"].as_str().expect("error has a code")
}

pub(super) fn room(id: &str) -> RoomId {
    RoomId::parse(id).unwrap()
}

pub(super) fn peer_id(id: &str) -> PeerId {
    PeerId::parse(id).unwrap()
}

/// One client's side of a session: its attachment, its next client `seq`, and the last server
/// `seq` it received.
pub(super) struct TestPeer {
    pub(super) at: Attachment,
    pub(super) user: String,
    pub(super) next_seq: u64,
    pub(super) last_seq: u64,
}

impl TestPeer {
    pub(super) fn session(&self) -> SessionId {
        self.at.session.clone()
    }
}

/// The tests' sinks: a name for each transport.
pub(super) type Sink = &'static str;

/// No sink signalled.
pub(super) const NONE: [Sink; 0] = [];

/// The hub and the virtual clock.
pub(super) struct World {
    pub(super) hub: Hub<Sink>,
    pub(super) now: Now,
}

impl World {
    pub(super) fn new() -> Self {
        Self::with(CoreConfig::default())
    }

    pub(super) fn with(config: CoreConfig) -> Self {
        World {
            hub: Hub::new(config, StdRng::seed_from_u64(7)),
            now: Now {
                at: Instant::now(),
                unix_ms: T0_UNIX_MS,
            },
        }
    }

    pub(super) fn advance(&mut self, d: Duration) {
        self.now = self.now.after(d);
    }

    pub(super) fn tick(&mut self) {
        self.hub.handle_timeout(self.now);
    }

    /// Opens a session; its `hello` is still queued.
    pub(super) fn open_raw(&mut self, identity: Identity) -> TestPeer {
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
    pub(super) fn open(&mut self, user: &str, role: Role) -> TestPeer {
        self.open_as(identity(user, role, "*"))
    }

    pub(super) fn open_as(&mut self, identity: Identity) -> TestPeer {
        let mut p = self.open_raw(identity);
        let hello = self.drain(&mut p);
        assert_eq!(kinds(&hello), ["hello"]);
        p
    }

    /// The frame text of `v`, with the peer's next `seq` and the current `ts` filled in unless `v`
    /// sets them.
    pub(super) fn frame(&self, p: &mut TestPeer, mut v: Value) -> String {
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

    pub(super) fn send_text(&mut self, p: &TestPeer, text: &str) -> Result<(), Box<ServerMessage>> {
        match self.hub.receive(&p.at, text, self.now) {
            Ok(()) => Ok(()),
            Err(Refusal::Reply(e)) => Err(e),
            Err(Refusal::Dropped) => panic!("{text} was dropped by a rate limit"),
        }
    }

    /// Sends `v`, which must be accepted.
    pub(super) fn send(&mut self, p: &mut TestPeer, v: Value) {
        let text = self.frame(p, v);
        if let Err(e) = self.send_text(p, &text) {
            panic!("{text} was refused: {}", e.encode(0, 0));
        }
    }

    /// Sends `v`, which must be refused; queues the error as the server does and returns it as the
    /// client reads it (it must be the only thing the client gets).
    pub(super) fn reject(&mut self, p: &mut TestPeer, v: Value) -> ServerEnvelope {
        let text = self.frame(p, v);
        self.reject_text(p, &text)
    }

    pub(super) fn reject_text(&mut self, p: &mut TestPeer, text: &str) -> ServerEnvelope {
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

    pub(super) fn poll(&mut self, p: &TestPeer) -> Transmit {
        self.commit_logs();
        self.hub.transmit(&p.at, 1000)
    }

    /// In cluster mode, takes every log write made so far as committed (the store of these
    /// tests commits at once), so what waits for them may go; the writes stay in the outputs.
    pub(super) fn commit_logs(&mut self) {
        let written: Vec<(SessionId, u64)> = (self.hub.shared.iter())
            .filter_map(|op| match op {
                SharedOp::Logged { session, index, .. }
                | SharedOp::Resumed { session, index, .. } => Some((session.clone(), *index)),
                _ => None,
            })
            .collect();
        for (session, index) in written {
            self.hub.durable(&session, index);
        }
    }

    /// Everything the peer's transport would send now, as JSON text; checks the seq rule.
    pub(super) fn drain_raw(&mut self, p: &mut TestPeer) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            match self.poll(p) {
                Transmit::Idle => return out,
                Transmit::Messages { batch: frames, .. } => {
                    assert!(!frames.is_empty(), "Ready with no frames");
                    for f in frames.into_iter().map(|f| f.text.to_string()) {
                        let env = decode(&f);
                        assert_eq!(env.seq, p.last_seq + 1, "seq gap or repeat in {f}");
                        p.last_seq = env.seq;
                        out.push(f);
                    }
                }
                Transmit::Close(r) => {
                    panic!("unexpected close {r:?} after {out:?}")
                }
            }
        }
    }

    pub(super) fn drain(&mut self, p: &mut TestPeer) -> Vec<ServerEnvelope> {
        self.drain_raw(p).iter().map(|t| decode(t)).collect()
    }

    /// Drains a transport the hub is closing: what it still sends, then the close reason.
    pub(super) fn drain_to_close(
        &mut self,
        p: &mut TestPeer,
    ) -> (Vec<ServerEnvelope>, CloseReason) {
        let mut out = Vec::new();
        loop {
            match self.poll(p) {
                Transmit::Idle => panic!("expected a close, got only {out:?}"),
                Transmit::Messages { batch: frames, .. } => {
                    for f in frames.into_iter().map(|f| f.text.to_string()) {
                        let env = decode(&f);
                        assert_eq!(env.seq, p.last_seq + 1, "seq gap or repeat in {f}");
                        p.last_seq = env.seq;
                        out.push(env);
                    }
                }
                Transmit::Close(r) => return (out, r),
            }
        }
    }

    pub(super) fn assert_quiet(&mut self, p: &mut TestPeer) {
        let got = self.drain(p);
        assert!(
            got.is_empty(),
            "{} should have got nothing: {got:?}",
            p.user
        );
    }

    /// Joins `room` with the user name as peer id; the answer must be exactly one `joined`.
    pub(super) fn join(&mut self, p: &mut TestPeer, room: &str) -> ServerEnvelope {
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
    pub(super) fn resume(
        &mut self,
        p: &mut TestPeer,
    ) -> Result<(), switchboard_protocol::SignalError> {
        let at = self
            .hub
            .resume(p.at.session.as_str(), &p.user, p.last_seq, self.now)?;
        p.at = at;
        Ok(())
    }

    /// What the calls since the last drain produced.
    pub(super) fn outputs(&mut self) -> Outputs<Sink> {
        let mut outputs = Outputs::default();
        self.hub.drain_outputs(&mut outputs);
        outputs
    }

    pub(super) fn events(&mut self) -> Vec<Event> {
        self.outputs().events
    }

    /// The sinks signalled since the last drain.
    pub(super) fn ready(&mut self) -> Vec<Sink> {
        self.outputs().ready
    }
}

/// Alice (host), then bob and carol (guests) in `r1`, everything read.
pub(super) fn trio(w: &mut World) -> (TestPeer, TestPeer, TestPeer) {
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
pub(super) fn pair(w: &mut World) -> (TestPeer, TestPeer) {
    let mut alice = w.open("alice", Role::Host);
    let mut bob = w.open("bob", Role::Guest);
    w.join(&mut alice, "r1");
    w.join(&mut bob, "r1");
    w.drain(&mut alice);
    (alice, bob)
}

pub(super) fn message_to(to: &str, id: &str) -> Value {
    json!({"type": "message", "room": "r1", "to": to, "id": id, "payload": {"text": id}})
}
