//! Sfu: the rooms of one media worker and its inputs and outputs.
//!
//! Inputs: room membership ([`Sfu::join`], [`Sfu::leave`]), peers' messages ([`Sfu::handle`]),
//! datagrams ([`Sfu::receive`]) and the time ([`Sfu::handle_timeout`]). After each input the
//! caller drains [`Sfu::poll_output`] and asks [`Sfu::poll_timeout`] when to call again.
//!
//! Inside, every change to a participant's `Rtc` is followed by [`Sfu::drain`], which takes all
//! its output up to the next timeout; the events found are queued as [`Work`] and applied after,
//! since applying one (forwarding a frame) changes other participants' `Rtc`s, each drained in
//! turn. Subscriptions that changed are negotiated once the queue is empty, so one input causes
//! at most one offer per participant.

mod forwarding;
mod mute;
mod routing;
mod simulcast;
mod speaking;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use str0m::{
    Event, Input,
    net::{Protocol, Receive},
};

use crate::{
    Inbound, Output, SfuConfig, SfuError, ToPeer, TrackId,
    participant::{Participant, guarded},
    speakers::Speakers,
    track::Track,
};

/// How far after an `Rtc`'s clock a timeout it asks for is run at once by [`Sfu::drain`]:
/// str0m's pacer asks for its next packet's timeout this far on (`PacerReason::Immediate`), so
/// that its clock advances between packets.
const IMMEDIATE: Duration = Duration::from_micros(1);

/// Most timeouts one [`Sfu::drain`] runs at once, so that an `Rtc` that keeps asking for one
/// cannot hold the worker: past it the rest wait for the caller's timer as before.
const MAX_IMMEDIATE: usize = 256;

/// The longest mid or stream tag an offer's `tags` may name; longer ones are ignored.
const MAX_TAG_BYTES: usize = 32;

/// A participant's handle inside one [`Sfu`]; never reused.
pub(crate) type Pid = u64;

/// A packet the IO layer received: a UDP datagram on the SFU's socket, or one RFC 4571 frame of
/// an ICE-TCP connection.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// `Udp`, or `Tcp` for a frame of an ICE-TCP connection (its `source` is the connection's
    /// peer address, and what the SFU sends back to it comes out with `proto` `Tcp`).
    pub proto: Protocol,
    /// Who sent it.
    pub source: SocketAddr,
    /// The local address it arrived on (one of the announced candidates, or the socket they
    /// are forwarded to).
    pub destination: SocketAddr,
    /// Its bytes.
    pub contents: &'a [u8],
}

/// What is left to do after a participant's `Rtc` was drained.
// Unboxed packets: nearly every item is one, so a box would be an allocation per packet
// forwarded for nothing saved.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Work {
    /// An event of this participant's `Rtc` other than a packet. Boxed: events are rare and
    /// some are large.
    Event(Pid, Box<Event>),
    /// An RTP packet from this participant, to forward.
    Rtp(Pid, forwarding::Received),
    /// This participant's `Rtc` failed; drop its media.
    Failed(Pid, String),
}

/// What the SFU has done since it started, for metrics: counts only grow; `participants` and
/// `tracks` are the current numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SfuStats {
    /// Participants with a media session now.
    pub participants: usize,
    /// Tracks published now.
    pub tracks: usize,
    /// RTP packets written to subscribers (one per subscriber a packet went to).
    pub forwarded_packets: u64,
    /// Payload bytes of those packets (without RTP headers and encryption).
    pub forwarded_bytes: u64,
    /// Keyframe requests sent to publishers.
    pub keyframe_requests_sent: u64,
    /// Subscribers' keyframe requests folded into one already sent or due.
    pub keyframe_requests_coalesced: u64,
    /// Media sessions dropped because they failed (errors, panics, ICE lost).
    pub media_failures: u64,
    /// Subscriptions moved from one simulcast layer to another (starting or pausing is not a
    /// switch).
    pub layer_switches: u64,
}

/// The SFU of one media worker. See the crate doc.
pub struct Sfu {
    config: SfuConfig,
    participants: HashMap<Pid, Participant>,
    /// room -> peer -> participant.
    rooms: HashMap<Arc<str>, BTreeMap<Arc<str>, Pid>>,
    /// Ordered, so a joining peer hears of tracks in the order they were published.
    tracks: BTreeMap<TrackId, Track>,
    /// room -> who speaks there; made on the room's first audio frame.
    speakers: HashMap<Arc<str>, Speakers>,
    /// The remote address each participant was last heard from: the fast path of the demux.
    by_addr: HashMap<SocketAddr, Pid>,
    outputs: VecDeque<Output>,
    work: VecDeque<Work>,
    /// Participants whose subscriptions may need an offer.
    dirty: BTreeSet<Pid>,
    /// The members a packet is forwarded to, kept to reuse its allocation.
    members: Vec<Pid>,
    next_pid: Pid,
    next_track: u64,
    /// The growing counts of [`SfuStats`].
    pub(crate) counts: SfuStats,
}

impl Sfu {
    /// An SFU with no rooms.
    pub fn new(config: SfuConfig) -> Self {
        Sfu {
            config,
            participants: HashMap::new(),
            rooms: HashMap::new(),
            tracks: BTreeMap::new(),
            speakers: HashMap::new(),
            by_addr: HashMap::new(),
            outputs: VecDeque::new(),
            work: VecDeque::new(),
            dirty: BTreeSet::new(),
            members: Vec::new(),
            next_pid: 1,
            next_track: 1,
            counts: SfuStats::default(),
        }
    }

    /// `peer` joined `room`: it is told of every track published there. Joining twice is a
    /// no-op.
    pub fn join(&mut self, _now: Instant, room: &str, peer: &str) {
        let members = self.rooms.entry(room.into()).or_default();
        if members.contains_key(peer) {
            return;
        }
        let pid = self.next_pid;
        self.next_pid += 1;
        let participant = Participant::new(self.rooms_key(room), peer.into());
        let (room, to) = (participant.room.clone(), participant.peer.clone());
        self.rooms
            .get_mut(room.as_ref())
            .expect("entry made above")
            .insert(to.clone(), pid);
        self.participants.insert(pid, participant);
        for track in self.tracks.values().filter(|t| t.room == room) {
            self.outputs.push_back(Output::Signal {
                room: room.clone(),
                to: to.clone(),
                message: ToPeer::TrackPublished(track.info()),
            });
        }
    }

    /// `peer` left `room` (or its session ended): its media session closes, its tracks are
    /// unpublished.
    pub fn leave(&mut self, now: Instant, room: &str, peer: &str) {
        let Some(members) = self.rooms.get_mut(room) else {
            return;
        };
        let Some(pid) = members.remove(peer) else {
            return;
        };
        if members.is_empty() {
            self.rooms.remove(room);
            self.speakers.remove(room);
        }
        self.drop_media(now, pid);
        self.participants.remove(&pid);
        self.run(now);
    }

    /// A message from `peer` in `room` to the SFU. A refusal goes back to the peer as
    /// [`ToPeer::Error`]; nothing else changes.
    pub fn handle(&mut self, now: Instant, room: &str, peer: &str, message: Inbound) {
        let Some(pid) = self.pid(room, peer) else {
            return;
        };
        if let Err(e) = self.apply(now, pid, message) {
            self.signal(pid, ToPeer::Error(e));
        }
        self.run(now);
    }

    fn apply(&mut self, now: Instant, pid: Pid, message: Inbound) -> Result<(), SfuError> {
        match message {
            Inbound::Offer { sdp, tags } => {
                let max_tags = self.config.max_media_lines;
                let participant = self.participants.get_mut(&pid).expect("pid is live");
                // Tags are the client's labels, kept as short as a token; past the m-line
                // limit or the length, they are ignored rather than refusing the media.
                let usable = tags
                    .into_iter()
                    .filter(|(mid, tag)| mid.len() <= MAX_TAG_BYTES && tag.len() <= MAX_TAG_BYTES)
                    .take(max_tags);
                for (mid, tag) in usable {
                    participant.tags.insert(mid, tag.into());
                }
                let fresh = participant.rtc.is_none();
                let answer = participant.accept_offer(now, &self.config, &sdp)?;
                self.signal(pid, ToPeer::Answer { sdp: answer });
                if fresh {
                    self.subscribe_to_room(pid);
                }
                self.dirty.insert(pid);
            }
            Inbound::Answer { sdp } => {
                let participant = self.participants.get_mut(&pid).expect("pid is live");
                let opened = participant.accept_answer(&sdp)?;
                self.drain(pid);
                self.reallocate(now, pid);
                for track in opened {
                    let layer = (self.participants[&pid].subscriptions.iter())
                        .find(|s| s.track == track)
                        .and_then(|s| s.layer.target());
                    if let Some(layer) = layer {
                        self.request_keyframe(now, &track, Some(layer));
                    }
                }
                self.dirty.insert(pid);
            }
            Inbound::Candidate { candidate } => {
                let participant = self.participants.get_mut(&pid).expect("pid is live");
                participant.add_candidate(&candidate)?;
            }
            Inbound::Subscribe {
                tracks,
                subscribe,
                view,
            } => self.subscribe(now, pid, tracks, subscribe, view)?,
            Inbound::Mute { track, muted, host } => self.mute(now, pid, &track, muted, host)?,
        }
        self.drain(pid);
        Ok(())
    }

    /// A datagram from the socket; `false` if no participant takes it (a stray packet, or a
    /// peer's first check arriving before its offer).
    pub fn receive(&mut self, now: Instant, datagram: Datagram) -> bool {
        let Ok(input) = Receive::new(
            datagram.proto,
            datagram.source,
            datagram.destination,
            datagram.contents,
        )
        .map(|r| Input::Receive(now, r)) else {
            return false;
        };
        let accepts = |p: &Participant| p.rtc.as_ref().is_some_and(|rtc| rtc.accepts(&input));
        let known = self
            .by_addr
            .get(&datagram.source)
            .copied()
            .filter(|pid| self.participants.get(pid).is_some_and(accepts));
        let Some(pid) = known.or_else(|| {
            self.participants
                .iter()
                .find(|(_, p)| accepts(p))
                .map(|(pid, _)| *pid)
        }) else {
            return false;
        };
        self.by_addr.insert(datagram.source, pid);
        self.input(pid, input);
        self.run(now);
        true
    }

    /// Lets time pass: participants' timers and deferred keyframe requests that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<Pid> = self
            .participants
            .iter()
            .filter(|(_, p)| p.rtc.is_some() && p.next_timeout.is_none_or(|t| t <= now))
            .map(|(pid, _)| *pid)
            .collect();
        for pid in due {
            self.input(pid, Input::Timeout(now));
        }
        let interval = self.config.keyframe_interval;
        let asked: Vec<(TrackId, Vec<usize>)> = (self.tracks.iter_mut())
            .map(|(id, t)| (id.clone(), t.keyframes.due(now, interval)))
            .filter(|(_, layers)| !layers.is_empty())
            .collect();
        for (track, layers) in asked {
            self.send_keyframe_request(&track, &layers);
        }
        self.report_speakers(now);
        self.check_arrivals(now);
        self.run(now);
    }

    /// When [`Sfu::handle_timeout`] should next be called; `None` when nothing waits.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let interval = self.config.keyframe_interval;
        let rtcs = self
            .participants
            .values()
            .filter(|p| p.rtc.is_some())
            .filter_map(|p| p.next_timeout);
        let keyframes = self
            .tracks
            .values()
            .filter_map(|t| t.keyframes.deadline(interval));
        let speakers = self.speakers.values().filter_map(Speakers::deadline);
        let arrivals = (self.tracks.values()).filter_map(|t| {
            t.arrivals
                .as_ref()
                .and_then(crate::arrivals::Arrivals::deadline)
        });
        rtcs.chain(keyframes).chain(speakers).chain(arrivals).min()
    }

    /// The next thing to do, in order; drain until `None` after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// How many participants have a media session.
    pub fn connected_participants(&self) -> usize {
        self.participants
            .values()
            .filter(|p| p.rtc.is_some())
            .count()
    }

    /// How many tracks are published.
    pub fn published_tracks(&self) -> usize {
        self.tracks.len()
    }

    /// Counts for metrics.
    pub fn stats(&self) -> SfuStats {
        SfuStats {
            participants: self.connected_participants(),
            tracks: self.published_tracks(),
            ..self.counts
        }
    }

    fn rooms_key(&self, room: &str) -> Arc<str> {
        self.rooms
            .get_key_value(room)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| room.into())
    }

    fn pid(&self, room: &str, peer: &str) -> Option<Pid> {
        self.rooms.get(room)?.get(peer).copied()
    }

    pub(crate) fn signal(&mut self, pid: Pid, message: ToPeer) {
        if let Some(p) = self.participants.get(&pid) {
            self.outputs.push_back(Output::Signal {
                room: p.room.clone(),
                to: p.peer.clone(),
                message,
            });
        }
    }

    /// Sends `message` to every member of `room`.
    pub(crate) fn broadcast(&mut self, room: &str, message: ToPeer) {
        let members: Vec<Pid> = self
            .rooms
            .get(room)
            .map(|m| m.values().copied().collect())
            .unwrap_or_default();
        for pid in members {
            self.signal(pid, message.clone());
        }
    }

    /// Feeds one input to a participant's `Rtc` and drains it.
    fn input(&mut self, pid: Pid, input: Input) {
        let Some(participant) = self.participants.get_mut(&pid) else {
            return;
        };
        let Some(rtc) = participant.rtc.as_mut() else {
            return;
        };
        let at = match &input {
            Input::Timeout(at) | Input::Receive(at, _) => *at,
        };
        participant.clock = participant.clock.max(Some(at));
        match guarded(|| rtc.handle_input(input)) {
            Ok(()) => self.drain(pid),
            Err(reason) => self.work.push_back(Work::Failed(pid, reason)),
        }
    }

    /// Takes a participant's output until its next timeout: datagrams go out, events wait in
    /// the work queue. Must follow every change to its `Rtc`, bar a forwarded packet written to
    /// it, which only makes its next timeout due (`Sfu::forward`).
    ///
    /// A timeout due just [`IMMEDIATE`] after the `Rtc`'s clock is run here rather than left
    /// to the caller's timer: with bandwidth estimation str0m's pacer sends one packet per
    /// timeout and asks for the next a microsecond on, and left to a timer that wakes once a
    /// millisecond at best, a subscriber's burst of n packets went out over n wakes
    /// (docs/benchmarks.md, "Bandwidth estimation"). A timeout already due (a packet written
    /// asks for one, to send it) is left to the caller's next [`Sfu::handle_timeout`]: one run
    /// then sends every packet written to the participant since, which costs less CPU than one
    /// run per packet (the media worker makes it at the end of the turn that wrote them).
    pub(crate) fn drain(&mut self, pid: Pid) {
        let Some(participant) = self.participants.get_mut(&pid) else {
            return;
        };
        let Some(rtc) = participant.rtc.as_mut() else {
            return;
        };
        let mut ran = 0;
        loop {
            if !rtc.is_alive() {
                self.work
                    .push_back(Work::Failed(pid, "the media session closed".into()));
                return;
            }
            match guarded(|| rtc.poll_output()) {
                Ok(str0m::Output::Timeout(at)) => {
                    let immediate = (participant.clock)
                        .is_some_and(|clock| at > clock && at <= clock + IMMEDIATE);
                    if !immediate || ran == MAX_IMMEDIATE {
                        participant.next_timeout = Some(at);
                        return;
                    }
                    // One microsecond on per packet keeps the Rtc's clock behind the wall
                    // clock, since sending a packet takes longer than that.
                    participant.clock = Some(at);
                    ran += 1;
                    if let Err(reason) = guarded(|| rtc.handle_input(Input::Timeout(at))) {
                        self.work.push_back(Work::Failed(pid, reason));
                        return;
                    }
                }
                Ok(str0m::Output::Transmit(t)) => self.outputs.push_back(Output::Transmit(t)),
                Ok(str0m::Output::Event(Event::RtpPacket(packet))) => {
                    if let Some(received) = forwarding::Received::resolve(rtc, packet) {
                        self.work.push_back(Work::Rtp(pid, received));
                    }
                }
                Ok(str0m::Output::Event(event)) => {
                    self.work.push_back(Work::Event(pid, Box::new(event)))
                }
                Err(reason) => {
                    self.work.push_back(Work::Failed(pid, reason));
                    return;
                }
            }
        }
    }

    /// Applies queued work, then negotiates changed subscriptions, until nothing is left.
    fn run(&mut self, now: Instant) {
        loop {
            while let Some(work) = self.work.pop_front() {
                match work {
                    Work::Event(pid, event) => self.on_event(now, pid, *event),
                    Work::Rtp(pid, received) => self.forward(now, pid, received),
                    Work::Failed(pid, reason) => self.fail(now, pid, reason),
                }
            }
            let Some(pid) = self.dirty.pop_first() else {
                return;
            };
            let Some(participant) = self.participants.get_mut(&pid) else {
                continue;
            };
            match participant.negotiate() {
                Ok(None) => {}
                Ok(Some((mids, sdp))) => {
                    self.signal(pid, ToPeer::TrackMap { mids });
                    self.signal(pid, ToPeer::Offer { sdp });
                }
                Err(reason) => self.work.push_back(Work::Failed(pid, reason)),
            }
            self.drain(pid);
        }
    }

    /// A participant's `Rtc` failed or panicked: its media is dropped, the peer is told and may
    /// start again with a new offer. Nobody else is affected beyond losing its tracks.
    fn fail(&mut self, now: Instant, pid: Pid, reason: String) {
        if self.participants.get(&pid).is_none_or(|p| p.rtc.is_none()) {
            return;
        }
        self.drop_media(now, pid);
        self.counts.media_failures += 1;
        self.signal(
            pid,
            ToPeer::Error(SfuError::MediaFailed(format!(
                "the media connection failed ({reason}); send a new offer to reconnect"
            ))),
        );
    }
}
