//! A virtual network for the SFU: str0m clients standing in for browsers, datagrams routed in
//! memory with a fixed one-way delay, signaling delivered directly, and a virtual clock that
//! jumps to the next thing due. No sockets and no sleeping: seconds of media take milliseconds.
//!
//! This file holds the clients and the steps a test takes (join, offer, write a frame, connect);
//! `network.rs` moves datagrams and the clock and hands the SFU's output to the clients.

#![allow(dead_code)]

mod network;

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    net::SocketAddr,
    time::{Duration, Instant},
};

use network::InFlight;
use str0m::{
    Candidate, Rtc,
    change::SdpPendingOffer,
    format::Codec,
    media::{Direction, Frequency, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer},
};
use switchboard_sfu::{Inbound, Sfu, SfuConfig, SfuError, StreamState, ToPeer, TrackId};

/// One-way delay of every datagram.
pub const DELAY: Duration = Duration::from_millis(5);

/// The simulcast layers a client sends when [`Client::simulcast`] is set, lowest first.
pub const RIDS: [&str; 3] = ["q", "h", "f"];

/// The payload bytes of a frame of each simulcast layer (a keyframe is three times that): with
/// the packets' overhead, at 50 frames a second, about 145 kbit/s, 465 kbit/s and 1.43 Mbit/s,
/// a little under the SFU's nominal 150 k, 500 k and 1.5 M.
pub const LAYER_FRAME: [usize; 3] = [300, 1100, 3400];

/// The room every test uses.
pub const ROOM: &str = "room";

/// A frame a client received: from which of its m-lines, and the bytes.
#[derive(Debug, Clone)]
pub struct Frame {
    pub mid: Mid,
    pub data: Vec<u8>,
    pub keyframe: bool,
    /// Its RTP timestamp (extended) on the subscriber's stream.
    pub time: u64,
    /// The extended sequence numbers of its first and last packet.
    pub seq: (u64, u64),
    /// Its VP8 picture id, if it had one.
    pub picture_id: Option<u64>,
}

/// A str0m peer playing a browser: it offers its published tracks, answers the SFU's offers
/// (ignoring them while its own offer is out: the impolite side), and records what arrives.
pub struct Client {
    pub peer: String,
    pub addr: SocketAddr,
    pub rtc: Rtc,
    pub next_timeout: Option<Instant>,
    pub pending: Option<SdpPendingOffer>,
    /// The m-lines it publishes on.
    pub sending: Vec<(Mid, MediaKind)>,
    /// mid (in this client's session) -> (publisher, track), from `track_map`.
    pub track_map: HashMap<String, (String, TrackId)>,
    pub frames: Vec<Frame>,
    pub keyframe_requests: usize,
    /// The rid each keyframe request named (`None` for a stream without layers).
    pub keyframe_rids: Vec<Option<String>>,
    pub published: Vec<(String, TrackId)>,
    /// The stream tags of others' tracks, as announced.
    pub tags: HashMap<TrackId, String>,
    /// Its own tracks, as the SFU told it: (mid, track, tag).
    pub own: Vec<(String, TrackId, Option<String>)>,
    pub unpublished: Vec<(String, TrackId)>,
    pub errors: Vec<SfuError>,
    /// Every `layers` received: (track, active rids, paused rids).
    pub layers: Vec<(TrackId, Vec<String>, Vec<String>)>,
    /// Every `stream_state` received: (publisher, track, state, layer).
    pub stream_states: Vec<(String, TrackId, StreamState, Option<String>)>,
    /// Every `track_state` received: (publisher, track, muted, by).
    pub track_states: Vec<(String, TrackId, bool, String)>,
    /// Every `speakers` list received, in order.
    pub speakers: Vec<Vec<String>>,
    /// Its video goes out as three simulcast layers, rid `q`, `h`, `f`; each frame's byte 5 is
    /// the layer's index.
    pub simulcast: bool,
    /// How many of its simulcast layers it encodes, from the lowest (a browser short of CPU
    /// sends fewer than it offered).
    pub encoded_layers: usize,
    /// The payload bytes of a frame of each layer it sends ([`LAYER_FRAME`] unless a test
    /// makes its layers smaller or larger).
    pub layer_frame: [usize; 3],
    /// The RFC 6464 level its audio frames carry; `None` sends none.
    pub audio_level: Option<u8>,
    pub connected: bool,
    inbox: VecDeque<ToPeer>,
    frame_no: u32,
}

/// Asserts that `frames` (of one m-line, in order) came as one stream: every packet's sequence
/// number follows the one before, timestamps rise, VP8 picture ids count up by one.
pub fn assert_one_stream(frames: &[&Frame]) {
    for pair in frames.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert_eq!(
            b.seq.0,
            a.seq.1 + 1,
            "a gap in sequence numbers: {a:?} -> {b:?}"
        );
        assert!(
            b.time > a.time,
            "the timestamp did not rise: {a:?} -> {b:?}"
        );
        if let (Some(x), Some(y)) = (a.picture_id, b.picture_id) {
            assert_eq!(y, x + 1, "picture ids jumped: {a:?} -> {b:?}");
        }
    }
}

impl Client {
    /// Frames received from `peer` (by the track map), in order.
    pub fn frames_from(&self, peer: &str) -> Vec<&Frame> {
        self.frames
            .iter()
            .filter(|f| {
                self.track_map
                    .get(&f.mid.to_string())
                    .is_some_and(|(p, _)| p == peer)
            })
            .collect()
    }
}

pub struct World {
    pub now: Instant,
    pub sfu: Sfu,
    pub sfu_addr: SocketAddr,
    pub clients: Vec<Client>,
    net: VecDeque<InFlight>,
    /// Datagrams nobody took.
    pub stray: usize,
    /// A keyframe every this many frames in [`World::run_media`].
    pub gop: u32,
    /// Addresses cut off the network: datagrams from or to them are lost.
    pub cut: Vec<SocketAddr>,
    /// Frame times passed in [`World::run_media`], so keyframes keep their spacing across calls.
    ticks: u32,
    /// CPU time spent in the SFU's datagram and timer inputs, one entry per call (for the
    /// benchmark).
    pub sfu_calls: Vec<std::time::Duration>,
    /// Datagrams the SFU sent.
    pub sfu_sent: u64,
}

impl World {
    pub fn new(clients: usize) -> World {
        Self::with_config(clients, |_| {})
    }

    pub fn with_config(clients: usize, f: impl FnOnce(&mut SfuConfig)) -> World {
        let now = Instant::now();
        let sfu_addr: SocketAddr = "10.0.0.1:3478".parse().unwrap();
        let mut config = SfuConfig::new(vec![sfu_addr]);
        f(&mut config);
        let clients = (0..clients)
            .map(|i| {
                let addr: SocketAddr = format!("10.0.1.{}:5000", i + 1).parse().unwrap();
                let mut rtc = Rtc::builder().build(now);
                rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
                Client {
                    peer: format!("p{i}"),
                    addr,
                    rtc,
                    next_timeout: None,
                    pending: None,
                    sending: Vec::new(),
                    track_map: HashMap::new(),
                    frames: Vec::new(),
                    keyframe_requests: 0,
                    keyframe_rids: Vec::new(),
                    published: Vec::new(),
                    own: Vec::new(),
                    tags: HashMap::new(),
                    unpublished: Vec::new(),
                    errors: Vec::new(),
                    speakers: Vec::new(),
                    track_states: Vec::new(),
                    stream_states: Vec::new(),
                    layers: Vec::new(),
                    audio_level: None,
                    simulcast: false,
                    encoded_layers: RIDS.len(),
                    layer_frame: LAYER_FRAME,
                    connected: false,
                    inbox: VecDeque::new(),
                    frame_no: 0,
                }
            })
            .collect();
        World {
            now,
            sfu: Sfu::new(config),
            sfu_addr,
            clients,
            net: VecDeque::new(),
            stray: 0,
            gop: 50,
            cut: Vec::new(),
            ticks: 0,
            sfu_calls: Vec::new(),
            sfu_sent: 0,
        }
    }

    pub fn join(&mut self, i: usize) {
        let peer = self.clients[i].peer.clone();
        self.sfu.join(self.now, ROOM, &peer);
        self.pump();
    }

    pub fn leave(&mut self, i: usize) {
        let peer = self.clients[i].peer.clone();
        self.sfu.leave(self.now, ROOM, &peer);
        self.pump();
    }

    /// Client `i` offers: new send-only m-lines of `kinds` (none: an offer that only receives,
    /// which needs one m-line, so a data channel is added).
    pub fn offer(&mut self, i: usize, kinds: &[MediaKind]) {
        let sdp = self.prepare_offer(i, kinds);
        self.send(
            i,
            Inbound::Offer {
                sdp,
                tags: Default::default(),
            },
        );
    }

    /// Client `i` offers new send-only m-lines of `kinds`, each tagged `tag` in the offer.
    pub fn offer_tagged(&mut self, i: usize, kinds: &[MediaKind], tag: &str) {
        let sdp = self.prepare_offer(i, kinds);
        let sending = &self.clients[i].sending;
        let tags = sending[sending.len() - kinds.len()..]
            .iter()
            .map(|(mid, _)| (mid.to_string(), tag.to_string()))
            .collect();
        self.send(i, Inbound::Offer { sdp, tags });
    }

    /// Client `i` makes the offer [`World::offer`] sends, and keeps it: until it is sent, the
    /// client ignores the SFU's offers (the impolite side of perfect negotiation).
    pub fn prepare_offer(&mut self, i: usize, kinds: &[MediaKind]) -> String {
        let c = &mut self.clients[i];
        let mut change = c.rtc.sdp_api();
        let mut added = Vec::new();
        for kind in kinds {
            let simulcast = (c.simulcast && *kind == MediaKind::Video).then(|| {
                let mut s = Simulcast::new();
                for rid in RIDS {
                    s.add_send_layer(SimulcastLayer::new(rid));
                }
                s
            });
            added.push((
                change.add_media(*kind, Direction::SendOnly, None, None, simulcast),
                *kind,
            ));
        }
        if kinds.is_empty() && c.sending.is_empty() {
            change.add_channel("signal".into());
        }
        let (offer, pending) = change.apply().expect("changes to offer");
        c.pending = Some(pending);
        c.sending.extend(added);
        self.drain_client(i);
        offer.to_sdp_string()
    }

    /// Client `i` stops sending its `n`th published m-line (a renegotiation to `inactive`, what
    /// a browser does on `RTCRtpTransceiver.stop()`).
    pub fn stop_sending(&mut self, i: usize, n: usize) {
        let c = &mut self.clients[i];
        let (mid, _) = c.sending.remove(n);
        let mut change = c.rtc.sdp_api();
        change.set_direction(mid, Direction::Inactive);
        let (offer, pending) = change.apply().expect("a direction change to offer");
        c.pending = Some(pending);
        self.drain_client(i);
        self.send(
            i,
            Inbound::Offer {
                sdp: offer.to_sdp_string(),
                tags: Default::default(),
            },
        );
    }

    /// A message from client `i` to the SFU.
    pub fn send(&mut self, i: usize, message: Inbound) {
        let peer = self.clients[i].peer.clone();
        self.sfu.handle(self.now, ROOM, &peer, message);
        self.pump();
    }

    /// Client `i` writes one frame on its `n`th published m-line.
    pub fn write_frame(&mut self, i: usize, n: usize, keyframe: bool) {
        let now = self.now;
        let c = &mut self.clients[i];
        let (mid, kind) = c.sending[n];
        c.frame_no += 1;
        let codec = match kind {
            MediaKind::Audio => Codec::Opus,
            MediaKind::Video => Codec::Vp8,
        };
        let pt = c
            .rtc
            .codec_config()
            .find(|p| p.spec().codec == codec)
            .map(|p| p.pt())
            .unwrap();
        let (len, first) = match (kind, keyframe) {
            (MediaKind::Audio, _) => (80, 0xfc),
            // A VP8 frame is a keyframe when bit 0 of its first byte is 0.
            (MediaKind::Video, true) => (3000, 0x10),
            (MediaKind::Video, false) => (900, 0x11),
        };
        let mut data = vec![first; len];
        data[1..5].copy_from_slice(&c.frame_no.to_be_bytes());
        let (clock, hz) = match kind {
            MediaKind::Audio => (Frequency::FORTY_EIGHT_KHZ, 48),
            MediaKind::Video => (Frequency::NINETY_KHZ, 90),
        };
        let time = MediaTime::new(u64::from(c.frame_no) * 20 * hz, clock);
        let level = c.audio_level.filter(|_| kind == MediaKind::Audio);
        let layers: &[&str] = if c.simulcast && kind == MediaKind::Video {
            &RIDS
        } else {
            &[""]
        };
        let layer_frame = c.layer_frame;
        for (n, rid) in layers.iter().enumerate().take(c.encoded_layers) {
            let Some(writer) = c.rtc.writer(mid) else {
                break;
            };
            let writer = match level {
                // str0m takes the level as -dBov.
                Some(l) => writer.audio_level(-(l.min(127) as i8), l < 127),
                None => writer,
            };
            let writer = if rid.is_empty() {
                writer
            } else {
                writer.rid(Rid::from(*rid))
            };
            let mut data = data.clone();
            if !rid.is_empty() {
                // Each layer about its nominal rate at 50 frames a second (docs/sfu.md): the
                // SFU measures what arrives and allocates by it.
                data.resize(layer_frame[n] * if keyframe { 3 } else { 1 }, first);
            }
            data[5] = n as u8;
            writer.write(pt, now, time, data).unwrap();
        }
        self.drain_client(i);
    }

    /// Connects client `i`: joins, offers `kinds`, and waits for ICE and DTLS.
    pub fn connect(&mut self, i: usize, kinds: &[MediaKind]) {
        self.join(i);
        self.offer(i, kinds);
        self.run_until(Duration::from_secs(5), |w| w.clients[i].connected);
    }

    /// Counts of per-publisher tracks each subscriber has open in its track map.
    pub fn mapped(&self, i: usize) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for (peer, _) in self.clients[i].track_map.values() {
            *m.entry(peer.clone()).or_default() += 1;
        }
        m
    }
}
