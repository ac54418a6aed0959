//! The shared store as an in-memory model, for tests: the same writes with the same meaning as the
//! Redis scripts, and an inbox that loses, repeats and reorders doorbells on demand, as a dropped
//! or lagging pub/sub connection does.

use std::collections::{HashMap, VecDeque};

use futures_util::{future::BoxFuture, stream::BoxStream};
use parking_lot::Mutex;
use rand::{Rng, SeedableRng, rngs::StdRng};
use switchboard_core::{Rate, RoomUse, RoomView, SessionId, SharedOp};
use switchboard_protocol::{Role, RoomId};
use tokio::sync::mpsc;

use super::store::{
    Claim, Claimed, Doorbell, KnockRecord, Lease, LogEntry, LogRead, MemberRecord, Store,
    StoreError, Write, media_mode_name, mode_name, room_view,
};

/// How the inbox misbehaves: each doorbell is lost, sent twice, or held back behind the next
/// one with these probabilities.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Probability that a doorbell is lost.
    pub lose: f64,
    /// Probability that it is sent twice.
    pub repeat: f64,
    /// Probability that it is held back and sent after the next one.
    pub reorder: f64,
}

#[derive(Default)]
struct Room {
    mode: String,
    media_mode: String,
    joins: u64,
    members: HashMap<String, (u64, String)>,
    banned: Vec<String>,
    lock: Option<String>,
    /// Knocks, ticket → record: kept apart from the members, as in Redis.
    knocks: HashMap<String, String>,
}

struct Session {
    node: String,
    top: u64,
    log: VecDeque<LogEntry>,
}

struct State {
    rooms: HashMap<RoomId, Room>,
    sessions: HashMap<SessionId, Session>,
    inboxes: HashMap<String, mpsc::UnboundedSender<Doorbell>>,
    /// Subscribers to stored rooms' changes.
    watchers: Vec<mpsc::UnboundedSender<RoomId>>,
    held: HashMap<String, Doorbell>,
    rng: StdRng,
}

/// See the module documentation.
pub struct MemoryStore {
    state: Mutex<State>,
    faults: Faults,
    log_cap: usize,
}

impl MemoryStore {
    /// An empty store whose inboxes misbehave as `faults` says (seeded by `seed`).
    pub fn new(faults: Faults, seed: u64, log_cap: usize) -> Self {
        MemoryStore {
            state: Mutex::new(State {
                rooms: HashMap::new(),
                sessions: HashMap::new(),
                inboxes: HashMap::new(),
                watchers: Vec::new(),
                held: HashMap::new(),
                rng: StdRng::seed_from_u64(seed),
            }),
            faults,
            log_cap,
        }
    }

    /// Sends every doorbell still held back (as a lagging connection eventually does).
    pub fn release_held(&self) {
        let mut state = self.state.lock();
        let held: Vec<(String, Doorbell)> = state.held.drain().collect();
        for (node, bell) in held {
            if let Some(inbox) = state.inboxes.get(&node) {
                let _ = inbox.send(bell);
            }
        }
    }

    fn ring(&self, state: &mut State, node: &str, bell: Doorbell) {
        let Some(inbox) = state.inboxes.get(node).cloned() else {
            return;
        };
        let roll: f64 = state.rng.random();
        let f = self.faults;
        if roll < f.lose {
            return;
        }
        if roll < f.lose + f.reorder && !state.held.contains_key(node) {
            state.held.insert(node.to_owned(), bell);
            return;
        }
        let _ = inbox.send(bell.clone());
        if roll < f.lose + f.reorder + f.repeat {
            let _ = inbox.send(bell);
        }
        if let Some(held) = state.held.remove(node) {
            let _ = inbox.send(held);
        }
    }

    fn apply(&self, state: &mut State, node: &str, write: &Write) {
        match write {
            Write::Released { .. } => {}
            Write::Unlock { room, token } => {
                if let Some(r) = state.rooms.get_mut(room)
                    && r.lock.as_deref() == Some(&**token)
                {
                    r.lock = None;
                }
            }
            Write::Shared(op) => match op {
                SharedOp::Attached { session, .. } => {
                    let s = state.sessions.entry(session.clone()).or_insert(Session {
                        node: String::new(),
                        top: 0,
                        log: VecDeque::new(),
                    });
                    s.node = node.to_owned();
                }
                SharedOp::Ended { session } => {
                    state.sessions.remove(session);
                }
                SharedOp::Joined { room, member } => {
                    let r = state.rooms.entry(room.clone()).or_default();
                    r.joins += 1;
                    let record = (r.joins, MemberRecord::encode(member));
                    r.members.insert(member.info.peer.to_string(), record);
                }
                SharedOp::Left { room, peer } => {
                    if let Some(r) = state.rooms.get_mut(room) {
                        r.members.remove(peer.as_str());
                        if r.members.is_empty() {
                            let lock = r.lock.take();
                            let knocks = std::mem::take(&mut r.knocks);
                            *r = Room {
                                lock,
                                knocks,
                                ..Room::default()
                            };
                        }
                    }
                }
                SharedOp::Mode { room, mode } => {
                    state.rooms.entry(room.clone()).or_default().mode = mode_name(*mode).into();
                }
                SharedOp::MediaMode { room, media_mode } => {
                    let r = state.rooms.entry(room.clone()).or_default();
                    r.media_mode = media_mode_name(*media_mode).into();
                }
                SharedOp::Banned { room, user } => {
                    let r = state.rooms.entry(room.clone()).or_default();
                    r.banned.push(user.to_string());
                }
                // Outbox logs and client seqs serve adoption only, which the model leaves out.
                SharedOp::Logged { .. } | SharedOp::Resumed { .. } | SharedOp::ClientSeq { .. } => {
                }
                SharedOp::Knocked { room, knock } => {
                    let r = state.rooms.entry(room.clone()).or_default();
                    (r.knocks).insert(knock.ticket.to_string(), KnockRecord::encode(knock));
                }
                SharedOp::KnockEnded { room, ticket } => {
                    if let Some(r) = state.rooms.get_mut(room) {
                        r.knocks.remove(ticket.as_str());
                    }
                }
                SharedOp::ToHosts { room, kind, text } => {
                    let hosts: Vec<SessionId> = (state.rooms.get(room).into_iter())
                        .flat_map(|r| r.members.values())
                        .filter_map(|(_, record)| MemberRecord::decode(record))
                        .filter(|m| m.info.role == Role::Host)
                        .filter(|m| {
                            state
                                .sessions
                                .get(&m.session)
                                .is_some_and(|s| s.node != node)
                        })
                        .map(|m| m.session)
                        .collect();
                    for to in hosts {
                        let forward = SharedOp::Forward {
                            to,
                            kind,
                            text: text.clone(),
                        };
                        self.apply(state, node, &Write::Shared(forward));
                    }
                }
                SharedOp::Forward { to, kind, text } => {
                    let Some(s) = state.sessions.get_mut(to) else {
                        return;
                    };
                    s.top += 1;
                    let entry = LogEntry {
                        kind: (*kind).to_owned(),
                        text: text.to_string(),
                    };
                    s.log.push_back(entry.clone());
                    if s.log.len() > self.log_cap {
                        s.log.pop_front();
                    }
                    let (node, position) = (s.node.clone(), s.top);
                    let bell = Doorbell {
                        session: to.clone(),
                        position,
                        entry,
                    };
                    self.ring(state, &node, bell);
                }
            },
        }
    }
}

/// The model keeps no outbox logs nor leases (so it fences no one): adoption and node loss are tested against Redis
/// (`tests/cluster/`), and the replay in the core (`hub/adopt/tests.rs`).
fn not_modelled() -> StoreError {
    StoreError::Failed("the in-memory model does not adopt sessions".into())
}

impl Store for MemoryStore {
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn room<'a>(
        &'a self,
        room: &'a RoomId,
        lock: Option<(&'a str, u64)>,
    ) -> BoxFuture<'a, Result<Option<RoomView>, StoreError>> {
        let mut state = self.state.lock();
        let r = state.rooms.entry(room.clone()).or_default();
        let view = match lock {
            Some(_) if r.lock.is_some() => None,
            _ => {
                if let Some((token, _)) = lock {
                    r.lock = Some(token.to_owned());
                }
                let members = r.members.values().cloned().collect();
                let knocks = (r.knocks.iter())
                    .map(|(t, k)| (t.clone(), k.clone()))
                    .collect();
                Some(room_view(
                    &r.mode,
                    &r.media_mode,
                    members,
                    r.banned.clone(),
                    knocks,
                ))
            }
        };
        Box::pin(std::future::ready(Ok(view)))
    }

    fn commit<'a>(
        &'a self,
        node: &'a str,
        _token: &'a str,
        writes: &'a [Write],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut state = self.state.lock();
        for write in writes {
            self.apply(&mut state, node, write);
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn log_after<'a>(
        &'a self,
        session: &'a SessionId,
        after: u64,
    ) -> BoxFuture<'a, Result<LogRead, StoreError>> {
        let state = self.state.lock();
        let read = match state.sessions.get(session) {
            None => LogRead {
                first: after + 1,
                entries: Vec::new(),
                holder: String::new(),
            },
            Some(s) => {
                let first = s.top + 1 - s.log.len() as u64;
                let from = first.max(after + 1);
                let skip = (from - first) as usize;
                LogRead {
                    first: from,
                    entries: s.log.iter().skip(skip).cloned().collect(),
                    holder: s.node.clone(),
                }
            }
        };
        Box::pin(std::future::ready(Ok(read)))
    }

    fn claim<'a>(
        &'a self,
        _node: &'a str,
        _session: &'a SessionId,
        _user: &'a str,
        _last_seq: u64,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        Box::pin(std::future::ready(Err(not_modelled())))
    }

    fn record<'a>(
        &'a self,
        _node: &'a str,
        _session: &'a SessionId,
    ) -> BoxFuture<'a, Result<Option<Claimed>, StoreError>> {
        Box::pin(std::future::ready(Err(not_modelled())))
    }

    fn lease<'a>(
        &'a self,
        _node: &'a str,
        _token: &'a str,
        _lease: Lease,
    ) -> BoxFuture<'a, Result<Vec<SessionId>, StoreError>> {
        Box::pin(std::future::ready(Err(not_modelled())))
    }

    fn admit<'a>(
        &'a self,
        _user: &'a str,
        _session: &'a SessionId,
        _max: usize,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(std::future::ready(Err(not_modelled())))
    }

    fn budget<'a>(
        &'a self,
        _rate: Rate,
        _uses: &'a [RoomUse],
    ) -> BoxFuture<'a, Result<Vec<Option<f64>>, StoreError>> {
        Box::pin(std::future::ready(Err(not_modelled())))
    }

    fn peers<'a>(&'a self, _node: &'a str) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(std::future::ready(Err(not_modelled())))
    }

    fn leave<'a>(
        &'a self,
        _node: &'a str,
        _token: &'a str,
        _window_ms: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn room_changed<'a>(&'a self, room: &'a RoomId) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut state = self.state.lock();
        state.watchers.retain(|w| w.send(room.clone()).is_ok());
        Box::pin(std::future::ready(Ok(())))
    }

    fn room_changes(&self) -> BoxFuture<'_, Result<BoxStream<'static, RoomId>, StoreError>> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.state.lock().watchers.push(tx);
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Box::pin(std::future::ready(Ok(
            Box::pin(stream) as BoxStream<'static, RoomId>
        )))
    }

    fn inbox<'a>(
        &'a self,
        node: &'a str,
    ) -> BoxFuture<'a, Result<BoxStream<'static, Doorbell>, StoreError>> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.state.lock().inboxes.insert(node.to_owned(), tx);
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Box::pin(std::future::ready(Ok(
            Box::pin(stream) as BoxStream<'static, Doorbell>
        )))
    }

    // Media nodes are tested against Redis, with real SFUs (`tests/sfu_cluster.rs`).
    fn media_node<'a>(
        &'a self,
        _room: &'a RoomId,
        _node: &'a str,
    ) -> BoxFuture<'a, Result<String, StoreError>> {
        Box::pin(std::future::ready(Err(not_modelled())))
    }

    fn alive<'a>(&'a self, _nodes: &'a [String]) -> BoxFuture<'a, Result<Vec<bool>, StoreError>> {
        Box::pin(std::future::ready(Err(not_modelled())))
    }

    fn send_media<'a>(
        &'a self,
        _node: &'a str,
        _command: String,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(std::future::ready(Err(not_modelled())))
    }

    fn media_inbox<'a>(
        &'a self,
        _node: &'a str,
    ) -> BoxFuture<'a, Result<BoxStream<'static, String>, StoreError>> {
        Box::pin(std::future::ready(Err(not_modelled())))
    }
}
