//! Tests of admission: message budgets per session, per kind and per room, joins per address,
//! the warning a sender over budget gets and the end of a session that keeps flooding, and the
//! caps on sessions per user and per address.

use std::{collections::HashSet, time::Duration};

use serde_json::{Value, json};
use switchboard_protocol::{ErrorCode, Role};

use crate::{
    CloseReason, CoreConfig, Disconnect, Event, Identity, RateScope, Refusal, Transmit,
    hub::testkit::{TestPeer, World, identity, kinds, message_to, pair, trio},
};

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
    assert!(
        scopes
            .iter()
            .all(|(scope, _)| *scope == RateScope::Candidate)
    );
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
        if let Transmit::Close(reason) = w.poll(&bob) {
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
    let scopes: HashSet<_> = w
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::RateLimited { scope, .. } => Some(scope),
            _ => None,
        })
        .collect();
    assert_eq!(scopes, HashSet::from([RateScope::Room]));
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
