use std::sync::Arc;

use proptest::prelude::*;
use switchboard_protocol::renumber;

use super::{Unreplayable, replay};
use crate::{LogRecord, SessionRecord};

fn text(seq: u64, id: &str) -> Arc<str> {
    format!(r#"{{"type":"message","seq":{seq},"id":"{id}"}}"#).into()
}

fn queued(seq: u64, inbound: u64, id: &str) -> LogRecord {
    LogRecord::Queued {
        seq,
        inbound,
        kind: "message",
        text: text(seq, id),
    }
}

fn ids(entries: &[(&'static str, Arc<str>)]) -> Vec<String> {
    entries
        .iter()
        .map(|(_, t)| {
            let v: serde_json::Value = serde_json::from_str(t).unwrap();
            format!("{}:{}", v["seq"], v["id"].as_str().unwrap_or("hello"))
        })
        .collect()
}

fn record(outbox: Vec<LogRecord>, inbound: &[&str]) -> SessionRecord {
    SessionRecord {
        outbox,
        inbound: inbound.iter().map(|id| ("message", text(0, id))).collect(),
        inbound_first: 1,
        ..SessionRecord::default()
    }
}

#[test]
fn messages_from_other_nodes_go_where_they_were_handed_over() {
    // Local a (seq 1), then inbound x and y handed over, then local b (seq 4); z not yet handed.
    let r = record(vec![queued(1, 0, "a"), queued(4, 2, "b")], &["x", "y", "z"]);
    let (first, entries) = replay(&r).unwrap();
    assert_eq!(first, 1);
    assert_eq!(ids(&entries), ["1:a", "2:x", "3:y", "4:b", "5:z"]);
}

#[test]
fn a_resume_renumbers_after_its_hello_as_the_outbox_did() {
    let hello: Arc<str> = r#"{"type":"hello","seq":3}"#.into();
    let r = record(
        vec![
            queued(1, 0, "a"),
            queued(2, 0, "b"),
            queued(3, 0, "c"),
            LogRecord::Resumed {
                last_seq: 2,
                inbound: 1,
                hello: hello.clone(),
            },
            queued(6, 1, "d"),
        ],
        &["x"],
    );
    let (first, entries) = replay(&r).unwrap();
    assert_eq!(first, 3);
    assert_eq!(ids(&entries), ["3:hello", "4:c", "5:x", "6:d"]);
}

#[test]
fn a_log_that_no_longer_reaches_back_is_refused() {
    // Handed inbound 1 before b, but the inbound log keeps only from position 2.
    let mut r = record(vec![queued(1, 0, "a"), queued(3, 1, "b")], &["y"]);
    r.inbound_first = 2;
    assert_eq!(replay(&r), Err(Unreplayable));
    // Seqs that do not add up are refused too.
    let r = record(vec![queued(1, 0, "a"), queued(5, 0, "b")], &[]);
    assert_eq!(replay(&r), Err(Unreplayable));
}

proptest! {
    /// Whatever the interleaving of local messages and messages from other nodes, the replay
    /// gives each message once, in the order queued, with the seqs the node gave them.
    #[test]
    fn replay_matches_the_outbox_it_logged(ops in proptest::collection::vec(any::<bool>(), 1..60), pending in 0usize..4) {
        let mut outbox = Vec::new();
        let mut inbound = Vec::new();
        let mut expected = Vec::new();
        let mut handed = 0;
        // A session's log always starts with a message of its own: its hello.
        for (i, local) in std::iter::once(&true).chain(&ops).enumerate() {
            let seq = expected.len() as u64 + 1;
            let id = format!("m{i}");
            if *local {
                outbox.push(queued(seq, handed, &id));
            } else {
                inbound.push(id.clone());
                handed += 1;
            }
            expected.push(format!("{seq}:{id}"));
        }
        for p in 0..pending {
            let id = format!("p{p}");
            expected.push(format!("{}:{id}", expected.len() + 1));
            inbound.push(id);
        }
        let names: Vec<&str> = inbound.iter().map(String::as_str).collect();
        let r = record(outbox, &names);
        match replay(&r) {
            Ok((first, entries)) => {
                prop_assert_eq!(first, 1);
                prop_assert_eq!(ids(&entries), expected);
                for (i, (_, t)) in entries.iter().enumerate() {
                    prop_assert_eq!(&**t, &*renumber(t, first + i as u64));
                }
            }
            Err(Unreplayable) => prop_assert!(false, "a full log replays"),
        }
    }
}

mod hubs {
    use rand::{SeedableRng, rngs::StdRng};
    use serde_json::json;
    use switchboard_protocol::{PeerLeftReason, Role};

    use super::super::super::testkit::{World, identity, kinds, message_to, room};
    use crate::{CoreConfig, Disconnect, Hub, LogRecord, SessionRecord, SharedOp};

    fn node(seed: u64) -> World {
        let mut w = World::new();
        w.hub = Hub::new(CoreConfig::default(), StdRng::seed_from_u64(seed)).clustered();
        w
    }

    /// The session's record as the store would hold it from `ops`: its outbox log, and its
    /// rooms with views made of the hub's own joins.
    fn record_of(ops: &[SharedOp], session: &crate::SessionId) -> SessionRecord {
        let mut record = SessionRecord {
            inbound_first: 1,
            ..SessionRecord::default()
        };
        let mut view = crate::RoomView::default();
        for op in ops {
            match op {
                SharedOp::Logged {
                    session: s,
                    seq,
                    inbound,
                    kind,
                    text,
                    ..
                } if s == session => record.outbox.push(LogRecord::Queued {
                    seq: *seq,
                    inbound: *inbound,
                    kind,
                    text: text.clone(),
                }),
                SharedOp::ClientSeq {
                    session: s, seq, ..
                } if s == session => {
                    record.last_client_seq = *seq;
                }
                SharedOp::Joined { member, .. } => {
                    if &member.session == session {
                        record.peer = Some(member.info.peer.clone());
                    }
                    view.members.push(member.clone());
                }
                _ => {}
            }
        }
        record.rooms.push((room("r1"), view));
        record
    }

    #[test]
    fn a_session_moves_to_another_hub_with_its_outbox_and_its_peers_see_nothing() {
        let mut a = node(1);
        let mut b = node(2);
        let mut alice = a.open("alice", Role::Host);
        let mut bob = a.open("bob", Role::Guest);
        a.join(&mut alice, "r1");
        a.join(&mut bob, "r1");
        a.drain(&mut alice);
        // Bob reads one message, then his transport is lost with two more queued.
        for id in ["m1", "m2", "m3"] {
            a.send(&mut alice, message_to("bob", id));
        }
        let got = a.drain(&mut bob);
        assert_eq!(kinds(&got), ["message", "message", "message"]);
        bob.last_seq -= 2;
        a.hub.disconnect(&bob.at, Disconnect::Lost, a.now);
        let ops = a.outputs().shared;
        let record = record_of(&ops, &bob.session());
        assert_eq!(record.last_client_seq, 1, "bob's join");

        // He resumes on node b: hello, then m2 and m3 renumbered after it.
        let at = b
            .hub
            .adopt(
                bob.session(),
                identity("bob", Role::Guest, "*"),
                record,
                bob.last_seq,
                b.now,
            )
            .unwrap();
        bob.at = at;
        let got = b.drain(&mut bob);
        assert_eq!(kinds(&got), ["hello", "message", "message"]);
        assert_eq!(got[0].payload["resumed"], true);
        assert_eq!(got[0].payload["peer"], "bob");
        assert_eq!(got[0].payload["last_client_seq"], 1);
        assert_eq!(
            got[1..]
                .iter()
                .map(|m| m.id.clone().unwrap())
                .collect::<Vec<_>>(),
            ["m2", "m3"]
        );
        let shared = b.outputs().shared;
        assert!(
            matches!(&shared[..], [SharedOp::Resumed { last_seq, .. }] if *last_seq == bob.last_seq - 3)
        );

        // Node a lets him go quietly; what alice sends him now goes to his node.
        a.hub.moved(&bob.session(), a.now);
        a.assert_quiet(&mut alice);
        a.send(&mut alice, message_to("bob", "m4"));
        let shared = a.outputs().shared;
        assert!(
            shared
                .iter()
                .any(|op| matches!(op, SharedOp::Forward { to, kind: "message", .. } if *to == bob.session())),
            "{shared:?}"
        );
        // From node b, bob is in r1 and reaches alice, a member of another node.
        b.send(
            &mut bob,
            json!({"type": "message", "room": "r1", "to": "alice", "payload": {}}),
        );
        let shared = b.outputs().shared;
        assert!(
            shared
                .iter()
                .any(|op| matches!(op, SharedOp::Forward { to, .. } if *to == alice.session())),
            "{shared:?}"
        );
    }

    #[test]
    fn a_session_whose_log_misses_what_the_client_lacks_ends_with_a_timeout() {
        let mut a = node(1);
        let mut b = node(2);
        let mut alice = a.open("alice", Role::Host);
        let mut bob = a.open("bob", Role::Guest);
        a.join(&mut alice, "r1");
        a.join(&mut bob, "r1");
        let mut record = record_of(&a.outputs().shared, &bob.session());
        // The log no longer holds its first entries (hello, joined).
        record.outbox.drain(..2);
        let refused = b.hub.adopt(
            bob.session(),
            identity("bob", Role::Guest, "*"),
            record,
            0,
            b.now,
        );
        let e = refused.unwrap_err();
        assert!(
            matches!(e, switchboard_protocol::SignalError::SessionExpired(_)),
            "{e:?}"
        );
        let shared = b.outputs().shared;
        let left = shared.iter().find_map(|op| match op {
            SharedOp::Forward {
                to,
                kind: "peer_left",
                text,
            } if *to == alice.session() => Some(text.clone()),
            _ => None,
        });
        let left: serde_json::Value = serde_json::from_str(&left.expect("peer_left")).unwrap();
        assert_eq!(left["payload"]["reason"], json!(PeerLeftReason::Timeout));
        assert!(shared.iter().any(|op| matches!(op, SharedOp::Left { .. })));
        assert!(shared.iter().any(|op| matches!(op, SharedOp::Ended { .. })));
        assert!(!b.hub.holds(bob.session().as_str()));
    }
}

mod durability {
    use rand::{SeedableRng, rngs::StdRng};
    use switchboard_protocol::Role;

    use super::super::super::testkit::{World, message_to};
    use crate::{CoreConfig, Hub, SharedOp, Transmit};

    #[test]
    fn a_clustered_hub_sends_nothing_before_its_log_write_is_committed() {
        let mut w = World::new();
        w.hub = Hub::new(CoreConfig::default(), StdRng::seed_from_u64(1)).clustered();
        let mut alice = w.open("alice", Role::Host);
        let mut bob = w.open("bob", Role::Guest);
        w.join(&mut alice, "r1");
        w.join(&mut bob, "r1");
        w.drain(&mut alice);
        w.outputs();
        let text = w.frame(&mut alice, message_to("bob", "m1"));
        w.send_text(&alice, &text).unwrap();
        // Queued, not sendable: its write is not committed.
        assert_eq!(w.hub.transmit(&bob.at, 10), Transmit::Idle);
        let shared = w.outputs().shared;
        let index = shared
            .iter()
            .find_map(|op| match op {
                SharedOp::Logged {
                    index,
                    kind: "message",
                    ..
                } => Some(*index),
                _ => None,
            })
            .expect("the message is logged");
        // Its commit signals bob's transport, which then takes it.
        w.hub.durable(&bob.session(), index);
        let got = w.drain(&mut bob);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id.as_deref(), Some("m1"));
    }
}

mod hand_over {
    use rand::{SeedableRng, rngs::StdRng};
    use switchboard_protocol::Role;

    use super::super::super::testkit::{World, message_to};
    use crate::{CloseReason, CoreConfig, Event, Hub, Transmit};

    #[test]
    fn a_hub_handing_over_closes_every_transport_without_a_word_to_anyone() {
        let mut w = World::new();
        w.hub = Hub::new(CoreConfig::default(), StdRng::seed_from_u64(1)).clustered();
        let mut alice = w.open("alice", Role::Host);
        let mut bob = w.open("bob", Role::Guest);
        w.join(&mut alice, "r1");
        w.join(&mut bob, "r1");
        w.commit_logs();
        w.drain(&mut alice);
        w.drain(&mut bob);
        w.outputs();
        // A message for bob waits for its commit when the node lets go.
        let text = w.frame(&mut alice, message_to("bob", "m1"));
        w.send_text(&alice, &text).unwrap();
        w.outputs();

        assert_eq!(w.hub.hand_over(w.now), 2);
        let out = w.outputs();
        // No peer_left, no Left, no Ended: both stay members of r1 for the other nodes.
        assert!(out.shared.is_empty(), "{:?}", out.shared);
        let closed = out
            .events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::SessionClosed {
                        reason: CloseReason::Handover,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(closed, 2);
        // The transports close at once, the uncommitted message not sent (a resume replays it).
        for p in [&alice, &bob] {
            assert_eq!(
                w.hub.transmit(&p.at, 10),
                Transmit::Close(CloseReason::Handover)
            );
            assert!(!w.hub.holds(p.session().as_str()));
        }
        let stats = w.hub.stats();
        assert_eq!((stats.sessions, stats.rooms), (0, 0));
    }
}
