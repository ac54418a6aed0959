//! Tests of the lobby: a lobby session knocks and only knocks; hosts in the room (and hosts who
//! join later) learn of it; an admit lets it join and asks for its token, a deny or the expiry
//! turns it away; every host learns how each knock ended; the per-room limit.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_protocol::Role;

use crate::{
    Admission, CoreConfig, Disconnect, Identity, MAX_KNOCKS_PER_ROOM,
    hub::testkit::{TestPeer, World, code, identity, kinds, pair, peer_id, room},
};

/// A lobby session of `user` for `r1`, named `Guest <user>`.
fn guest(w: &mut World, user: &str) -> TestPeer {
    w.open_as(Identity {
        lobby: true,
        name: Some(format!("Guest {user}")),
        ..identity(user, Role::Guest, "r1")
    })
}

/// A world whose knocks expire before silent transports do (the default waits five minutes, past
/// the heartbeat timeout of the test world's never-pinging sessions).
fn short_knocks() -> World {
    World::with(CoreConfig {
        knock_timeout: Duration::from_secs(30),
        ..CoreConfig::default()
    })
}

/// `p` knocks on `r1`: its ticket.
fn knock(w: &mut World, p: &mut TestPeer) -> String {
    w.send(p, json!({"type": "knock", "room": "r1", "id": "k"}));
    let got = w.drain(p);
    assert_eq!(kinds(&got), ["knocking"]);
    assert_eq!(got[0].id.as_deref(), Some("k"));
    let expires = w.hub.config().knock_timeout.as_millis() as u64;
    assert_eq!(got[0].payload["expires_ms"], expires);
    got[0].payload["ticket"].as_str().unwrap().to_owned()
}

fn decide(kind: &str, ticket: &str) -> Value {
    json!({"type": kind, "room": "r1", "id": "d", "payload": {"ticket": ticket}})
}

#[test]
fn a_knock_reaches_every_host_even_one_who_joins_later() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    let mut gus = guest(&mut w, "gus");
    let refused = w.reject(&mut gus, json!({"type": "join", "room": "r1"}));
    assert_eq!(code(&refused), "forbidden");
    let ticket = knock(&mut w, &mut gus);
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["knock"]);
    assert_eq!(got[0].room.as_deref(), Some("r1"));
    assert_eq!(
        got[0].payload,
        json!({"ticket": ticket, "name": "Guest gus"})
    );
    // Only hosts hear knocks.
    w.assert_quiet(&mut bob);
    // Knocking again changes nothing.
    assert_eq!(knock(&mut w, &mut gus), ticket);
    w.assert_quiet(&mut alice);
    let mut hana = w.open("hana", Role::Host);
    w.send(
        &mut hana,
        json!({"type": "join", "room": "r1", "payload": {"peer": "hana"}}),
    );
    let got = w.drain(&mut hana);
    assert_eq!(kinds(&got), ["joined", "knock"]);
    assert_eq!(got[1].payload["ticket"], ticket.as_str());
}

#[test]
fn an_admitted_guest_gets_its_token_and_joins_and_every_host_hears_of_it() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    let mut hana = w.open("hana", Role::Host);
    w.join(&mut hana, "r1");
    w.drain(&mut alice);
    w.drain(&mut bob);
    let mut gus = guest(&mut w, "gus");
    let ticket = knock(&mut w, &mut gus);
    w.drain(&mut alice);
    w.drain(&mut hana);
    w.outputs();
    w.send(&mut alice, decide("admit", &ticket));
    let admissions = w.outputs().admissions;
    assert_eq!(
        admissions,
        [Admission {
            session: gus.session(),
            room: room("r1"),
            user: "gus".into(),
            role: Role::Guest,
            name: Some("Guest gus".into()),
        }]
    );
    let ended = json!({"ticket": ticket, "outcome": "admitted", "by": "alice"});
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["knock_ended"]);
    assert_eq!(
        (got[0].payload.clone(), got[0].id.as_deref()),
        (ended.clone(), Some("d"))
    );
    let got = w.drain(&mut hana);
    assert_eq!(
        (got[0].payload.clone(), got[0].id.as_deref()),
        (ended, None)
    );
    w.assert_quiet(&mut bob);
    // The IO layer hands the token back; the guest may join at once.
    w.hub
        .admitted(&gus.session(), &room("r1"), "a.room.token".into(), w.now);
    let got = w.drain(&mut gus);
    assert_eq!(kinds(&got), ["admitted"]);
    assert_eq!(got[0].payload, json!({"token": "a.room.token"}));
    w.join(&mut gus, "r1");
    w.drain(&mut alice);
    // The ticket is spent.
    let again = w.reject(&mut alice, decide("deny", &ticket));
    assert_eq!(code(&again), "not_found");
}

#[test]
fn a_denied_or_expired_knock_turns_the_guest_away() {
    let mut w = short_knocks();
    let (mut alice, _bob) = pair(&mut w);
    let mut gus = guest(&mut w, "gus");
    let ticket = knock(&mut w, &mut gus);
    w.drain(&mut alice);
    w.send(&mut alice, decide("deny", &ticket));
    let got = w.drain(&mut gus);
    assert_eq!(kinds(&got), ["denied"]);
    assert_eq!(got[0].payload, json!({"reason": "denied"}));
    let got = w.drain(&mut alice);
    assert_eq!(got[0].payload["outcome"], "denied");
    let refused = w.reject(&mut gus, json!({"type": "join", "room": "r1"}));
    assert_eq!(code(&refused), "forbidden");

    // Nobody answers the next knock in time.
    let ticket = knock(&mut w, &mut gus);
    w.drain(&mut alice);
    w.advance(w.hub.config().knock_timeout);
    w.tick();
    let got = w.drain(&mut gus);
    assert_eq!(kinds(&got), ["denied"]);
    assert_eq!(got[0].payload, json!({"reason": "expired"}));
    let got = w.drain(&mut alice);
    assert_eq!(kinds(&got), ["knock_ended"]);
    assert_eq!(
        got[0].payload,
        json!({"ticket": ticket, "outcome": "expired"})
    );
}

#[test]
fn a_guest_that_leaves_or_goes_ends_its_knock() {
    let mut w = short_knocks();
    let (mut alice, _bob) = pair(&mut w);
    let mut gus = guest(&mut w, "gus");
    let ticket = knock(&mut w, &mut gus);
    w.drain(&mut alice);
    w.send(&mut gus, json!({"type": "leave", "room": "r1"}));
    assert_eq!(kinds(&w.drain(&mut gus)), ["left"]);
    let got = w.drain(&mut alice);
    assert_eq!(got[0].payload, json!({"ticket": ticket, "outcome": "left"}));
    let ticket = knock(&mut w, &mut gus);
    w.drain(&mut alice);
    w.hub.disconnect(&gus.at, Disconnect::Closed, w.now);
    let got = w.drain(&mut alice);
    assert_eq!(got[0].payload, json!({"ticket": ticket, "outcome": "left"}));
    // Its expiry, still in the timers, finds nothing to do.
    w.advance(w.hub.config().knock_timeout);
    w.tick();
    w.assert_quiet(&mut alice);
}

#[test]
fn only_lobby_sessions_knock_and_only_hosts_decide() {
    let mut w = World::new();
    let (mut alice, mut bob) = pair(&mut w);
    let e = w.reject(&mut bob, json!({"type": "knock", "room": "r1"}));
    assert_eq!(code(&e), "invalid_message");
    let mut gus = guest(&mut w, "gus");
    let other = w.reject(&mut gus, json!({"type": "knock", "room": "r2"}));
    assert_eq!(code(&other), "forbidden");
    let ticket = knock(&mut w, &mut gus);
    w.drain(&mut alice);
    let e = w.reject(&mut bob, decide("admit", &ticket));
    assert_eq!(code(&e), "forbidden");
    let e = w.reject(&mut alice, decide("admit", "nobody"));
    assert_eq!(code(&e), "not_found");
    let e = w.reject(
        &mut alice,
        json!({"type": "admit", "room": "r1", "payload": {}}),
    );
    assert_eq!(code(&e), "invalid_message");
    w.assert_quiet(&mut gus);
}

#[test]
fn the_owner_decides_over_the_api_and_a_deleted_room_turns_guests_away() {
    let mut w = World::new();
    let (mut alice, _bob) = pair(&mut w);
    let mut gus = guest(&mut w, "gus");
    let mut gail = guest(&mut w, "gail");
    let ticket = knock(&mut w, &mut gus);
    knock(&mut w, &mut gail);
    w.drain(&mut alice);
    w.hub
        .decide_knock(&room("r1"), &peer_id(&ticket), false, w.now)
        .unwrap();
    assert_eq!(w.drain(&mut gus)[0].payload, json!({"reason": "denied"}));
    let got = w.drain(&mut alice);
    assert_eq!(
        got[0].payload,
        json!({"ticket": ticket, "outcome": "denied"})
    );
    let unknown = w
        .hub
        .decide_knock(&room("r1"), &peer_id(&ticket), true, w.now);
    assert_eq!(unknown.unwrap_err().code().as_str(), "not_found");
    w.hub.close_deleted(&room("r1"), w.now);
    let got = w.drain(&mut gail);
    assert_eq!(kinds(&got), ["denied"]);
    assert_eq!(got[0].payload, json!({"reason": "deleted"}));
}

#[test]
fn a_rooms_lobby_holds_a_bounded_number_of_guests() {
    let mut w = World::new();
    let (mut alice, _bob) = pair(&mut w);
    for i in 0..MAX_KNOCKS_PER_ROOM {
        let mut g = guest(&mut w, &format!("g{i}"));
        knock(&mut w, &mut g);
    }
    assert_eq!(w.drain(&mut alice).len(), MAX_KNOCKS_PER_ROOM);
    let mut late = guest(&mut w, "late");
    let e = w.reject(&mut late, json!({"type": "knock", "room": "r1"}));
    assert_eq!(code(&e), "rate_limited");
    w.assert_quiet(&mut alice);
}

#[test]
fn a_room_deleted_through_another_node_turns_the_guests_here_away() {
    let mut w = World::new();
    let (mut alice, _bob) = pair(&mut w);
    let mut gus = guest(&mut w, "gus");
    let ticket = knock(&mut w, &mut gus);
    w.drain(&mut alice);
    w.hub.stored_room_gone(&room("r1"), w.now);
    let got = w.drain(&mut gus);
    assert_eq!(kinds(&got), ["denied"]);
    assert_eq!(got[0].payload["reason"], "deleted");
    // The call itself was closed by the node the deletion came to; here its members stay.
    assert_eq!(w.hub.room_size(&room("r1")), 2);
    let e = w.reject(&mut alice, decide("admit", &ticket));
    assert_eq!(code(&e), "not_found");
}
