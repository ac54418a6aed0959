//! Tests of stored rooms' policies: the member limit, the mode and media a call starts with,
//! expiry, and rooms without a policy left as they were.

use serde_json::json;
use switchboard_protocol::{MediaMode, Mode, Role};

use crate::{
    CoreConfig, RoomPolicy,
    hub::testkit::{World, code, room, secs},
};

fn policy(max_peers: Option<usize>, mode: Mode) -> RoomPolicy {
    RoomPolicy {
        max_peers,
        mode,
        media: MediaMode::Mesh,
        expires_at: None,
    }
}

#[test]
fn a_stored_rooms_member_limit_holds_and_other_rooms_keep_the_servers() {
    let mut w = World::new();
    w.hub
        .set_policy(room("small"), policy(Some(2), Mode::FreeForAll));
    let mut peers: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|u| w.open(u, Role::Guest))
        .collect();
    w.join(&mut peers[0], "small");
    w.join(&mut peers[1], "small");
    let full = w.reject(
        &mut peers[2],
        json!({"type": "join", "room": "small", "payload": {"peer": "c"}}),
    );
    assert_eq!(code(&full), "room_full");
    assert_eq!(
        full.payload["message"].as_str().map(|m| m.contains('2')),
        Some(true)
    );
    // The same three fit in a room nobody stored.
    for i in 0..peers.len() {
        for p in &mut peers {
            w.drain(p);
        }
        w.join(&mut peers[i], "open");
    }
    assert_eq!(w.hub.room_size(&room("open")), 3);
}

#[test]
fn a_limit_above_the_servers_is_the_servers() {
    let config = CoreConfig {
        max_peers: 2,
        ..CoreConfig::default()
    };
    let mut w = World::with(config);
    w.hub
        .set_policy(room("r"), policy(Some(50), Mode::FreeForAll));
    let mut a = w.open("a", Role::Guest);
    let mut b = w.open("b", Role::Guest);
    let mut c = w.open("c", Role::Guest);
    w.join(&mut a, "r");
    w.join(&mut b, "r");
    let full = w.reject(&mut c, json!({"type": "join", "room": "r"}));
    assert_eq!(code(&full), "room_full");
}

#[test]
fn a_call_starts_in_the_policys_mode_and_a_change_waits_for_the_next_call() {
    let mut w = World::new();
    w.hub.set_policy(room("r"), policy(None, Mode::HostOnly));
    let mut a = w.open("a", Role::Host);
    let joined = w.join(&mut a, "r");
    assert_eq!(joined.payload["mode"], "host_only");
    // A changed policy leaves the live call's mode alone: its hosts own it.
    w.hub.set_policy(room("r"), policy(None, Mode::FreeForAll));
    let mut b = w.open("b", Role::Guest);
    assert_eq!(w.join(&mut b, "r").payload["mode"], "host_only");
    w.send(&mut a, json!({"type": "leave", "room": "r"}));
    w.send(&mut b, json!({"type": "leave", "room": "r"}));
    assert_eq!(w.hub.room_size(&room("r")), 0);
    w.drain(&mut a);
    assert_eq!(w.join(&mut a, "r").payload["mode"], "free_for_all");
}

#[test]
fn the_policys_media_mode_is_the_rooms() {
    let mut w = World::new();
    let sfu = RoomPolicy {
        media: MediaMode::Sfu,
        ..policy(None, Mode::FreeForAll)
    };
    w.hub.set_policy(room("r"), sfu);
    let mut a = w.open("a", Role::Host);
    assert_eq!(w.join(&mut a, "r").payload["media"], "sfu");
    assert_eq!(w.join(&mut a, "other").payload["media"], "mesh");
}

#[test]
fn an_expired_or_forgotten_policy_leaves_the_servers_settings() {
    let mut w = World::new();
    let expiring = RoomPolicy {
        expires_at: Some(w.now.unix_ms + 60_000),
        ..policy(Some(1), Mode::HostOnly)
    };
    w.hub.set_policy(room("r"), expiring);
    w.hub
        .set_policy(room("gone"), policy(Some(1), Mode::HostOnly));
    w.hub.forget_policy(&room("gone"));
    let mut a = w.open("a", Role::Host);
    let mut b = w.open("b", Role::Guest);
    assert_eq!(w.join(&mut a, "gone").payload["mode"], "free_for_all");
    w.join(&mut b, "gone");
    w.drain(&mut a);
    assert_eq!(w.join(&mut a, "r").payload["mode"], "host_only");
    let full = w.reject(&mut b, json!({"type": "join", "room": "r"}));
    assert_eq!(code(&full), "room_full");
    w.advance(secs(61));
    w.join(&mut b, "r");
    assert_eq!(w.hub.room_size(&room("r")), 2);
}

#[test]
fn replacing_the_policies_forgets_the_rooms_no_longer_stored() {
    let mut w = World::new();
    w.hub
        .set_policy(room("deleted"), policy(Some(1), Mode::HostOnly));
    w.hub
        .set_policy(room("kept"), policy(Some(1), Mode::FreeForAll));
    // As a node reloads them all from the database, after a notice it may have missed.
    w.hub
        .replace_policies([(room("kept"), policy(Some(2), Mode::HostOnly))]);
    let mut a = w.open("a", Role::Host);
    let mut b = w.open("b", Role::Guest);
    let mut c = w.open("c", Role::Guest);
    assert_eq!(w.join(&mut a, "deleted").payload["mode"], "free_for_all");
    w.join(&mut b, "deleted");
    w.drain(&mut a);
    assert_eq!(w.join(&mut a, "kept").payload["mode"], "host_only");
    w.join(&mut b, "kept");
    let full = w.reject(&mut c, json!({"type": "join", "room": "kept"}));
    assert_eq!(code(&full), "room_full");
}
