//! Which media worker holds each room, when `sfu.workers` runs more than one.
//!
//! A room's media stays on one worker for as long as it has members there: every member's
//! `Rtc` is in that worker's [`Sfu`](switchboard_sfu::Sfu), since forwarding a packet from one
//! member to another is a call inside one `Sfu`, never a hop between threads. A room takes the
//! worker with the fewest members when its first member joins, the way mediasoup's guide has an
//! application pick the least-loaded worker for a new router; it is free again when its last
//! member leaves, and may land elsewhere when it is used again.
//!
//! Sans-IO: the [`MediaLink`](super::MediaLink) asks it which worker each command goes to, in
//! the hub's order (the hub hands its commands over under its lock), so a room's joins, leaves
//! and messages all reach the same worker in the order they were made.

use std::collections::{HashMap, HashSet};

use switchboard_core::MediaCommand;
use switchboard_protocol::{PeerId, RoomId};

/// See the module documentation.
#[derive(Debug)]
pub struct Placement {
    rooms: HashMap<RoomId, Placed>,
    /// Members on each worker.
    members: Vec<usize>,
}

#[derive(Debug)]
struct Placed {
    worker: usize,
    members: HashSet<PeerId>,
}

impl Placement {
    /// Placement over `workers` workers (at least one).
    pub fn new(workers: usize) -> Self {
        Placement {
            rooms: HashMap::new(),
            members: vec![0; workers.max(1)],
        }
    }

    /// The worker `command` goes to, taking in the joins and leaves. A command about a room no
    /// worker holds (a message from someone who is not a member, a leave after the room emptied)
    /// goes to the first worker, which answers it as any worker would: it holds nothing of it.
    pub fn route(&mut self, command: &MediaCommand) -> usize {
        match command {
            MediaCommand::Joined { room, peer } => {
                let least = self.least_loaded();
                let placed = self.rooms.entry(room.clone()).or_insert_with(|| Placed {
                    worker: least,
                    members: HashSet::new(),
                });
                // A join the SFU already has (the cluster's router sends one again before an
                // offer) counts once.
                if placed.members.insert(peer.clone()) {
                    self.members[placed.worker] += 1;
                }
                placed.worker
            }
            MediaCommand::Left { room, peer } => {
                let Some(placed) = self.rooms.get_mut(room) else {
                    return 0;
                };
                let worker = placed.worker;
                if placed.members.remove(peer) {
                    self.members[worker] -= 1;
                }
                if placed.members.is_empty() {
                    self.rooms.remove(room);
                }
                worker
            }
            MediaCommand::Signal { room, .. }
            | MediaCommand::Subscribe { room, .. }
            | MediaCommand::Mute { room, .. } => self.rooms.get(room).map_or(0, |p| p.worker),
        }
    }

    /// Members on each worker now.
    pub fn members(&self) -> &[usize] {
        &self.members
    }

    /// The worker with the fewest members; the first of them on a tie.
    fn least_loaded(&self) -> usize {
        (self.members.iter().enumerate())
            .min_by_key(|&(_, n)| *n)
            .map_or(0, |(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use switchboard_protocol::SignalKind;

    use super::*;

    fn joined(room: &str, peer: &str) -> MediaCommand {
        MediaCommand::Joined {
            room: RoomId::parse(room).unwrap(),
            peer: PeerId::parse(peer).unwrap(),
        }
    }

    fn left(room: &str, peer: &str) -> MediaCommand {
        MediaCommand::Left {
            room: RoomId::parse(room).unwrap(),
            peer: PeerId::parse(peer).unwrap(),
        }
    }

    fn offer(room: &str, peer: &str) -> MediaCommand {
        MediaCommand::Signal {
            room: RoomId::parse(room).unwrap(),
            peer: PeerId::parse(peer).unwrap(),
            kind: SignalKind::Offer,
            payload: "{}".into(),
        }
    }

    #[test]
    fn a_new_room_goes_to_the_worker_with_the_fewest_members() {
        let mut placement = Placement::new(3);
        assert_eq!(placement.route(&joined("a", "p1")), 0);
        assert_eq!(placement.route(&joined("a", "p2")), 0);
        assert_eq!(placement.route(&joined("b", "p1")), 1);
        assert_eq!(placement.route(&joined("c", "p1")), 2);
        // Worker 0 holds two members, 1 and 2 one each: the next room takes worker 1.
        assert_eq!(placement.route(&joined("d", "p1")), 1);
        assert_eq!(placement.members(), &[2, 2, 1]);
    }

    #[test]
    fn a_room_keeps_its_worker_until_its_last_member_leaves() {
        let mut placement = Placement::new(2);
        placement.route(&joined("a", "p1"));
        placement.route(&joined("b", "p1"));
        placement.route(&joined("b", "p2"));
        assert_eq!(placement.route(&offer("b", "p2")), 1);
        // Worker 1 is now the busier one, but b's next member still goes there.
        assert_eq!(placement.route(&joined("b", "p3")), 1);
        for peer in ["p1", "p2", "p3"] {
            assert_eq!(placement.route(&left("b", peer)), 1);
        }
        assert_eq!(placement.members(), &[1, 0]);
        // Emptied, b is placed afresh: on the idle worker 1, as before only by chance.
        placement.route(&joined("a", "p2"));
        placement.route(&joined("a", "p3"));
        assert_eq!(placement.route(&joined("b", "p9")), 1);
    }

    #[test]
    fn a_join_made_twice_counts_once() {
        let mut placement = Placement::new(2);
        placement.route(&joined("a", "p1"));
        placement.route(&joined("a", "p1"));
        assert_eq!(placement.members(), &[1, 0]);
        placement.route(&left("a", "p1"));
        assert_eq!(placement.members(), &[0, 0]);
        // Nothing of a is left: a second leave and a stray message go to the first worker.
        assert_eq!(placement.route(&left("a", "p1")), 0);
        assert_eq!(placement.route(&offer("a", "p1")), 0);
    }

    proptest! {
        /// Whatever the order of joins, leaves and messages, every command about a room goes to
        /// the worker its members are on, and the counts are the members each worker holds.
        #[test]
        fn a_rooms_commands_all_reach_one_worker(
            steps in prop::collection::vec((0..4usize, 0..5usize, 0..3u8), 1..200),
        ) {
            let mut placement = Placement::new(3);
            // room -> (worker, members), as the workers would hold them.
            let mut held: HashMap<usize, (usize, HashSet<usize>)> = HashMap::new();
            for (room, peer, what) in steps {
                let (r, p) = (format!("r{room}"), format!("p{peer}"));
                match what {
                    0 => {
                        let worker = placement.route(&joined(&r, &p));
                        let entry = held.entry(room).or_insert((worker, HashSet::new()));
                        prop_assert_eq!(entry.0, worker);
                        entry.1.insert(peer);
                    }
                    1 => {
                        let worker = placement.route(&left(&r, &p));
                        if let Some(entry) = held.get_mut(&room) {
                            prop_assert_eq!(entry.0, worker);
                            entry.1.remove(&peer);
                            if entry.1.is_empty() {
                                held.remove(&room);
                            }
                        }
                    }
                    _ => {
                        let worker = placement.route(&offer(&r, &p));
                        prop_assert_eq!(worker, held.get(&room).map_or(0, |e| e.0));
                    }
                }
            }
            let mut counts = [0; 3];
            for (worker, members) in held.values() {
                counts[*worker] += members.len();
            }
            prop_assert_eq!(placement.members(), &counts[..]);
        }
    }
}
