//! A room's budget shared by its members on two clustered hubs: what each node hands out to sync,
//! and its budget once the cluster says what is left.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_protocol::Role;

use super::super::{
    Refusal,
    mirror::nodes::Nodes,
    testkit::{TestPeer, message_to, room},
};
use crate::{CoreConfig, RateLimits, RoomUse};

/// Two nodes whose rooms take 10 messages a second, 10 at once.
fn nodes() -> Nodes {
    Nodes::with(CoreConfig {
        rate: RateLimits {
            room_messages_per_sec: 10.0,
            room_message_burst: 10.0,
            ..RateLimits::default()
        },
        ..CoreConfig::default()
    })
}

/// Whether node `n` accepts `v` from `p`; false when a rate limit dropped it.
fn offer(c: &mut Nodes, n: usize, p: &mut TestPeer, v: Value) -> bool {
    let w = &mut c.worlds[n];
    let text = w.frame(p, v);
    let accepted = match w.hub.receive(&p.at, &text, w.now) {
        Ok(()) => true,
        Err(Refusal::Dropped) => false,
        Err(Refusal::Reply(e)) => panic!("{text} was refused: {}", e.encode(0, 0)),
    };
    c.flush();
    accepted
}

fn take(c: &mut Nodes, n: usize) -> Vec<RoomUse> {
    let mut out = Vec::new();
    c.worlds[n].hub.take_room_use(&mut out);
    out
}

fn used(n: u32) -> Vec<RoomUse> {
    vec![RoomUse {
        room: room("r1"),
        used: n,
    }]
}

#[test]
fn only_rooms_with_members_on_several_nodes_are_synced_with_what_this_node_used() {
    let mut c = nodes();
    let mut ann = c.open(0, "ann", Role::Host);
    let mut bob = c.open(0, "bob", Role::Guest);
    c.join(0, &mut ann, "r1");
    c.join(0, &mut bob, "r1");
    assert!(offer(&mut c, 0, &mut ann, message_to("bob", "m1")));
    // Everyone is on node 0: nobody else spends the room's budget.
    assert!(take(&mut c, 0).is_empty());
    let mut cy = c.open(1, "cy", Role::Guest);
    c.join(1, &mut cy, "r1");
    // Its budget spent so far counts from the first sync on.
    assert_eq!(take(&mut c, 0), used(1));
    assert_eq!(take(&mut c, 1), used(0));
    for n in 0..3 {
        assert!(offer(
            &mut c,
            0,
            &mut ann,
            message_to("cy", &format!("a{n}"))
        ));
    }
    assert!(offer(&mut c, 1, &mut cy, message_to("ann", "c0")));
    assert_eq!(take(&mut c, 0), used(3));
    assert_eq!(take(&mut c, 1), used(1));
    // Counted once: the next sync starts from zero.
    assert_eq!(take(&mut c, 0), used(0));
    // Messages that are no relays in the room spend nothing of its budget.
    assert!(offer(&mut c, 0, &mut ann, json!({"type": "ping"})));
    assert_eq!(take(&mut c, 0), used(0));
}

#[test]
fn what_the_cluster_has_left_is_this_nodes_budget_and_a_debt_is_paid_first() {
    let mut c = nodes();
    let mut ann = c.open(0, "ann", Role::Host);
    let mut cy = c.open(1, "cy", Role::Guest);
    c.join(0, &mut ann, "r1");
    c.join(1, &mut cy, "r1");
    c.read(0, &mut ann);
    take(&mut c, 0);
    // The other node's members spent the budget: none is left for ann, with her full bucket.
    let now = c.worlds[0].now;
    assert!(c.worlds[0].hub.room_budget_left(&room("r1"), 0.5, now));
    assert!(!offer(&mut c, 0, &mut ann, message_to("cy", "x")));
    let warned = c.read(0, &mut ann);
    assert_eq!(warned[0]["type"], "warning", "{warned:?}");
    assert_eq!(warned[0]["payload"]["code"], "rate_limited");
    // Two messages more than the budget held were sent across the cluster: at 10 a second,
    // they are paid for in 0.2 s, and the next token comes 0.1 s later.
    let now = c.worlds[0].now;
    assert!(c.worlds[0].hub.room_budget_left(&room("r1"), -2.0, now));
    c.advance(Duration::from_millis(250));
    assert!(!offer(&mut c, 0, &mut ann, message_to("cy", "y")));
    c.advance(Duration::from_millis(60));
    assert!(offer(&mut c, 0, &mut ann, message_to("cy", "z")));
    // What ann sent since the sync is taken from what the cluster says is left.
    let now = c.worlds[0].now;
    take(&mut c, 0);
    assert!(!c.worlds[0].hub.room_budget_left(&room("r1"), 5.0, now));
    assert!(offer(&mut c, 0, &mut ann, message_to("cy", "w")));
    assert_eq!(take(&mut c, 0), used(1));
    assert!(offer(&mut c, 0, &mut ann, message_to("cy", "v")));
    assert!(c.worlds[0].hub.room_budget_left(&room("r1"), 1.5, now));
    assert!(!offer(&mut c, 0, &mut ann, message_to("cy", "u")));
}
