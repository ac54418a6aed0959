//! Tests of the control API's actions on live rooms: the member list, a removal like a host's
//! kick, the server's own messages, and closing a deleted room.

use serde_json::json;
use switchboard_protocol::{Mode, Role};

use crate::{
    Event, RoomEnd, RoomPolicy,
    hub::testkit::{World, code, kinds, pair, peer_id, room, trio},
};

#[test]
fn participants_are_listed_in_join_order_with_their_users() {
    let mut w = World::new();
    let _peers = trio(&mut w);
    let listed = w.hub.participants(&room("r1"));
    let seen: Vec<_> = listed
        .iter()
        .map(|p| (p.user.as_ref(), p.info.peer.as_str(), p.info.role))
        .collect();
    assert_eq!(
        seen,
        [
            ("alice", "alice", Role::Host),
            ("bob", "bob", Role::Guest),
            ("carol", "carol", Role::Guest)
        ]
    );
    assert!(w.hub.participants(&room("nobody")).is_empty());
}

#[test]
fn a_removal_is_a_kick_by_nobody_and_bans_the_user() {
    let mut w = World::new();
    let (mut alice, mut bob, mut carol) = trio(&mut w);
    w.hub
        .remove_peer(&room("r1"), &peer_id("bob"), w.now)
        .unwrap();
    let got = w.drain(&mut bob);
    assert_eq!(kinds(&got), ["left"]);
    assert_eq!(got[0].payload, json!({"reason": "kicked"}));
    for other in [&mut alice, &mut carol] {
        let got = w.drain(other);
        assert_eq!(kinds(&got), ["peer_left"]);
        assert_eq!(got[0].id, None);
        assert_eq!(got[0].payload, json!({"peer": "bob", "reason": "kicked"}));
    }
    let again = w.reject(&mut bob, json!({"type": "join", "room": "r1"}));
    assert_eq!(code(&again), "forbidden");
    let unknown = w.hub.remove_peer(&room("r1"), &peer_id("bob"), w.now);
    assert_eq!(unknown.unwrap_err().code().as_str(), "unknown_peer");
    let nowhere = w.hub.remove_peer(&room("nobody"), &peer_id("bob"), w.now);
    assert_eq!(nowhere.unwrap_err().code().as_str(), "unknown_peer");
}

#[test]
fn a_server_message_reaches_every_member_verbatim_and_from_nobody() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    let payload = r#"{"text":"the meeting ends in 5 minutes","n":[1,2.5]}"#;
    assert_eq!(w.hub.announce(&room("r1"), payload, w.now), 2);
    for p in [&mut alice, &mut bob] {
        let raw = w.drain_raw(p);
        assert_eq!(raw.len(), 1, "{raw:?}");
        assert!(
            raw[0].starts_with(r#"{"type":"announcement","room":"r1","seq":"#),
            "{}",
            raw[0]
        );
        assert!(
            raw[0].ends_with(&format!(r#","payload":{payload}}}"#)),
            "{}",
            raw[0]
        );
        assert!(!raw[0].contains(r#""from""#), "{}", raw[0]);
    }
    assert_eq!(w.hub.announce(&room("empty"), payload, w.now), 0);
}

#[test]
fn a_deleted_rooms_call_is_closed_and_its_policy_forgotten() {
    let mut w = World::new();
    let policy = RoomPolicy {
        max_peers: Some(2),
        mode: Mode::HostOnly,
        media: switchboard_protocol::MediaMode::Mesh,
        expires_at: None,
    };
    w.hub.set_policy(room("r1"), policy);
    let (mut alice, mut bob) = pair(&mut w);
    w.events();
    w.hub.close_deleted(&room("r1"), w.now);
    for p in [&mut alice, &mut bob] {
        let got = w.drain(p);
        assert_eq!(kinds(&got), ["room_closed"]);
        assert_eq!(got[0].payload, json!({"reason": "deleted"}));
    }
    let closed = w.events().into_iter().any(|e| {
        matches!(e, Event::RoomClosed { reason: RoomEnd::Closed(r), .. } if r.as_str() == "deleted")
    });
    assert!(closed);
    assert_eq!(w.hub.stats().rooms, 0);
    // The id is an ordinary room again: the server's mode, no limit of 2.
    let mut carol = w.open("carol", Role::Guest);
    assert_eq!(w.join(&mut alice, "r1").payload["mode"], "free_for_all");
    w.join(&mut bob, "r1");
    w.join(&mut carol, "r1");
}
