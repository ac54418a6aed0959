//! The lobby in cluster mode, on two clustered hubs: a guest knocking through one node is heard,
//! shown and answered by hosts on either, and its own node tells it the answer.

use rand::{SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use switchboard_protocol::Role;

use super::super::{
    mirror::nodes::{Nodes, types},
    testkit::{TestPeer, code, room},
};
use crate::{CoreConfig, Hub};

/// A lobby session of `user` for `r1` on node `n`.
fn lobby_guest(c: &mut Nodes, n: usize, user: &str) -> TestPeer {
    let p = c.worlds[n].open_as(crate::Identity {
        lobby: true,
        name: Some(format!("Guest {user}")),
        ..super::super::testkit::identity(user, Role::Guest, "r1")
    });
    c.flush();
    p
}

/// `p` on node `n` knocks on `r1`, under the room's lock as the node runs it: its ticket.
fn knock_on(c: &mut Nodes, n: usize, p: &mut TestPeer) -> String {
    c.join_with(n, p, "r1", json!({"type": "knock", "room": "r1"}));
    let got = c.read(n, p);
    assert_eq!(types(&got), ["knocking"]);
    got[0]["payload"]["ticket"].as_str().unwrap().to_owned()
}

fn answer(kind: &str, ticket: &str) -> Value {
    json!({"type": kind, "room": "r1", "id": "d", "payload": {"ticket": ticket}})
}

#[test]
fn a_guest_knocking_on_one_node_is_let_in_by_a_host_on_the_other() {
    let mut c = Nodes::new();
    let mut ann = c.open(1, "ann", Role::Host);
    let mut bob = c.open(1, "bob", Role::Guest);
    c.join(1, &mut ann, "r1");
    c.join(1, &mut bob, "r1");
    c.read(1, &mut ann);
    let mut gus = lobby_guest(&mut c, 0, "gus");
    let ticket = knock_on(&mut c, 0, &mut gus);
    // The host on the other node hears it; a guest does not.
    let got = c.read(1, &mut ann);
    assert_eq!(types(&got), ["knock"]);
    assert_eq!(got[0]["payload"]["ticket"], ticket);
    assert_eq!(got[0]["payload"]["name"], "Guest gus");
    assert!(c.read(1, &mut bob).is_empty());
    // A host joining on either node later is shown the knock.
    let mut cy = c.open(0, "cy", Role::Host);
    assert_eq!(types(&c.join(0, &mut cy, "r1")), ["joined", "knock"]);
    c.read(1, &mut ann);
    c.read(1, &mut bob);
    let mut dee = c.open(1, "dee", Role::Host);
    assert_eq!(types(&c.join(1, &mut dee, "r1")), ["joined", "knock"]);
    c.read(0, &mut cy);
    c.read(1, &mut ann);
    c.read(1, &mut bob);
    // The guest may not join before it is admitted.
    let early = c.worlds[0].reject(&mut gus, json!({"type": "join", "room": "r1"}));
    assert_eq!(code(&early), "forbidden");

    c.join_with(1, &mut ann, "r1", answer("admit", &ticket));
    let got = c.read(0, &mut gus);
    assert_eq!(types(&got), ["admitted"]);
    assert_eq!(got[0]["payload"]["token"], "token of gus");
    // Every host, on both nodes, learns how it ended; the deciding host's copy answers it.
    let ended = json!({"ticket": ticket, "outcome": "admitted", "by": "ann"});
    for (n, host) in [(1, &mut ann), (0, &mut cy), (1, &mut dee)] {
        let got = c.read(n, host);
        assert_eq!(types(&got), ["knock_ended"], "{got:?}");
        assert_eq!(got[0]["payload"], ended);
    }
    assert!(c.store.knocks[&room("r1")].is_empty());
    // The guest's own node let it in.
    assert_eq!(types(&c.join(0, &mut gus, "r1")), ["joined"]);
    // A second answer finds nothing to answer.
    c.read(1, &mut dee);
    let again = c.worlds[1].reject(&mut dee, answer("deny", &ticket));
    assert_eq!(code(&again), "not_found");
}

#[test]
fn a_guest_denied_on_another_node_or_left_waiting_is_told_once() {
    let config = CoreConfig {
        knock_timeout: std::time::Duration::from_secs(30),
        ..CoreConfig::default()
    };
    let mut c = Nodes::new();
    for (n, w) in c.worlds.iter_mut().enumerate() {
        w.hub = Hub::new(config.clone(), StdRng::seed_from_u64(n as u64 + 7)).clustered();
    }
    let mut ann = c.open(1, "ann", Role::Host);
    c.join(1, &mut ann, "r1");
    let mut gus = lobby_guest(&mut c, 0, "gus");
    let ticket = knock_on(&mut c, 0, &mut gus);
    c.read(1, &mut ann);
    c.join_with(1, &mut ann, "r1", answer("deny", &ticket));
    let got = c.read(0, &mut gus);
    assert_eq!(types(&got), ["denied"]);
    assert_eq!(got[0]["payload"]["reason"], "denied");
    assert_eq!(types(&c.read(1, &mut ann)), ["knock_ended"]);
    // Its node forgot the knock: knocking again is a new knock (the same one would answer with
    // its old ticket).
    let again = knock_on(&mut c, 0, &mut gus);
    assert_ne!(again, ticket);
    c.read(1, &mut ann);
    // Nobody answers: the guest's node tells it, and the hosts of every node.
    c.worlds[0].advance(super::super::testkit::secs(31));
    c.worlds[0].tick();
    c.flush();
    let got = c.read(0, &mut gus);
    assert_eq!(types(&got), ["denied"]);
    assert_eq!(got[0]["payload"]["reason"], "expired");
    let got = c.read(1, &mut ann);
    assert_eq!(types(&got), ["knock_ended"]);
    assert_eq!(got[0]["payload"]["outcome"], "expired");
    assert!(c.store.knocks[&room("r1")].is_empty());
}

#[test]
fn a_rooms_lobby_holds_a_bounded_number_of_guests_across_the_nodes() {
    let mut c = Nodes::new();
    let mut ann = c.open(1, "ann", Role::Host);
    c.join(1, &mut ann, "r1");
    let mut guests = Vec::new();
    for i in 0..crate::MAX_KNOCKS_PER_ROOM {
        let mut g = lobby_guest(&mut c, i % 2, &format!("g{i}"));
        knock_on(&mut c, i % 2, &mut g);
        guests.push(g);
    }
    assert_eq!(c.read(1, &mut ann).len(), crate::MAX_KNOCKS_PER_ROOM);
    // Half of them knocked through each node: the limit counts them all, on either node.
    for n in 0..2 {
        let mut late = lobby_guest(&mut c, n, &format!("late{n}"));
        c.join_with(n, &mut late, "r1", json!({"type": "knock", "room": "r1"}));
        let got = c.read(n, &mut late);
        assert_eq!(types(&got), ["error"]);
        assert_eq!(got[0]["payload"]["code"], "rate_limited");
    }
    assert!(c.read(1, &mut ann).is_empty());
    // One guest leaving makes room, whichever node it knocked through.
    c.send(0, &mut guests[0], json!({"type": "leave", "room": "r1"}));
    let mut next = lobby_guest(&mut c, 1, "next");
    knock_on(&mut c, 1, &mut next);
}
