//! Participant: one peer's media session with the SFU (one str0m `Rtc`), the tracks it
//! publishes and the m-lines that carry other peers' tracks to it.
//!
//! The browser makes the first offer (its published tracks); the SFU answers, then offers the
//! m-lines for the tracks the peer subscribes to. When both offer at once the SFU yields (the
//! polite side of perfect negotiation): str0m's `accept_offer` rolls back the SFU's pending
//! offer, and the subscriptions that offer carried go back to be offered again.

use std::{
    collections::{HashMap, HashSet},
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Arc,
    time::Instant,
};

use str0m::{
    Candidate, Rtc, RtcError,
    bwe::Bitrate,
    change::{SdpAnswer, SdpOffer, SdpPendingOffer},
    media::{Direction, MediaKind, Mid, Pt},
    net::TcpType,
};

use crate::{
    SfuConfig, SfuError, TrackId, TrackKind, TrackMapEntry,
    allocator::{Allocation, Request},
    layer_switch::LayerSwitch,
    rewrite::Rewriter,
    sdp_check::check_offer,
};

/// Where one subscription's m-line is in its negotiation with the subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutState {
    /// Wanted; the next SFU offer adds its m-line.
    ToOpen,
    /// Offered, waiting for the answer.
    Negotiating(Mid),
    /// Answered: media is forwarded on it.
    Open(Mid),
    /// To be stopped by the next SFU offer.
    ToStop(Mid),
    /// Stop offered, waiting for the answer.
    NegotiatingStop(Mid),
}

/// One track this participant receives from another.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub track: TrackId,
    pub peer: Arc<str>,
    pub kind: TrackKind,
    pub state: OutState,
    /// Which simulcast layer goes out on its m-line (layer 0 of a track without layers).
    pub layer: LayerSwitch,
    /// The sequence numbers, timestamps and picture ids its packets go out with.
    pub rewrite: Rewriter,
    /// The publisher's payload type last forwarded and the subscriber's for the same codec.
    pub pt: Option<(Pt, Pt)>,
    /// The allocation last told the peer (`stream_state`).
    pub stream: Option<Allocation>,
}

impl Subscription {
    /// A subscription to be offered.
    pub fn new(track: TrackId, peer: Arc<str>, kind: TrackKind) -> Self {
        Subscription {
            track,
            peer,
            kind,
            state: OutState::ToOpen,
            layer: LayerSwitch::default(),
            rewrite: Rewriter::default(),
            pt: None,
            stream: None,
        }
    }

    /// The m-line of an open subscription.
    pub fn open_mid(&self) -> Option<Mid> {
        match self.state {
            OutState::Open(mid) => Some(mid),
            _ => None,
        }
    }

    /// The m-line the SFU has offered or opened for it.
    pub fn mid(&self) -> Option<Mid> {
        match self.state {
            OutState::ToOpen => None,
            OutState::Negotiating(m)
            | OutState::Open(m)
            | OutState::ToStop(m)
            | OutState::NegotiatingStop(m) => Some(m),
        }
    }

    /// Stop receiving: drop it if nothing was offered yet, else stop its m-line.
    /// Returns `false` if the subscription can be forgotten now.
    pub fn stop(&mut self) -> bool {
        self.state = match self.state {
            OutState::ToOpen => return false,
            OutState::Negotiating(m) | OutState::Open(m) => OutState::ToStop(m),
            state @ (OutState::ToStop(_) | OutState::NegotiatingStop(_)) => state,
        };
        true
    }
}

/// One member of an SFU room.
pub(crate) struct Participant {
    pub room: Arc<str>,
    pub peer: Arc<str>,
    /// The media session; `None` until the peer's first offer, and again after it failed.
    pub rtc: Option<Rtc>,
    /// When `rtc` next wants `handle_input(Timeout)`.
    pub next_timeout: Option<Instant>,
    /// The latest time `rtc` was given (str0m ignores a timeout earlier than that): what
    /// [`Sfu::drain`](crate::Sfu) measures an immediate timeout against.
    pub clock: Option<Instant>,
    /// The tracks it publishes, by the m-line that carries them in its session.
    pub published: Vec<(Mid, TrackId)>,
    pub subscriptions: Vec<Subscription>,
    /// Tracks the peer asked not to receive; new tracks are subscribed to by default.
    pub declined: HashSet<TrackId>,
    /// How the peer said it shows a track (`subscribe`'s `width`/`height` or `paused`).
    pub views: HashMap<TrackId, Request>,
    /// The bitrate its bandwidth estimation was last told to look for (`SfuConfig::bwe`).
    pub probing_for: Option<u64>,
    /// The downlink its layers were last chosen for, from the bandwidth estimate; `None`
    /// until the first estimate (or without estimation).
    pub downlink: Option<u64>,
    /// The SFU's offer waiting for the peer's answer.
    pub pending: Option<SdpPendingOffer>,
    /// The stream tags the peer gave its m-lines in its offers, by mid; a track takes its
    /// m-line's tag when it is published.
    pub tags: HashMap<String, Arc<str>>,
}

/// Runs one call into str0m, turning an error or a panic into the reason the participant is
/// dropped. str0m treats panics as bugs and recommends containing them per `Rtc`.
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T, RtcError>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the media engine panicked".into()),
    }
}

impl Participant {
    pub fn new(room: Arc<str>, peer: Arc<str>) -> Self {
        Participant {
            room,
            peer,
            rtc: None,
            next_timeout: None,
            clock: None,
            published: Vec::new(),
            subscriptions: Vec::new(),
            declined: HashSet::new(),
            views: HashMap::new(),
            probing_for: None,
            downlink: None,
            pending: None,
            tags: HashMap::new(),
        }
    }

    /// Its `Rtc` changed in a way that only makes it want a timeout (a packet written to be
    /// sent, a new rate to look for): the timeout is made due at `now` instead of the `Rtc`
    /// being polled for it, and that timeout's drain takes what it produces.
    pub fn timeout_due(&mut self, now: Instant) {
        self.next_timeout = Some(self.next_timeout.map_or(now, |t| t.min(now)));
    }

    /// Tells its bandwidth estimation the rate its subscriptions would take with no limit
    /// (`bps`), if that changed. Estimation probes (with padding packets) only while its
    /// estimate is below that rate: a fixed high rate kept every subscriber that watched less
    /// being probed, which cost a padding stream per subscriber and most of the SFU's CPU in
    /// a room of many quiet subscribers (docs/benchmarks.md, "Probing for what is watched").
    pub fn probe_for(&mut self, now: Instant, bps: u64) {
        if self.probing_for == Some(bps) {
            return;
        }
        let Some(rtc) = self.rtc.as_mut() else {
            return;
        };
        self.probing_for = Some(bps);
        rtc.bwe().set_bitrate(Bitrate::ZERO, Bitrate::bps(bps));
        self.timeout_due(now);
    }

    fn new_rtc(now: Instant, config: &SfuConfig) -> Rtc {
        let mut builder = Rtc::builder()
            // The SFU has a fixed, reachable address: it only answers connectivity checks.
            .set_ice_lite(true)
            // Packets are forwarded as they come (`sfu::forwarding`), not depacketized.
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true);
        if config.bwe {
            builder = builder.enable_bwe(Some(Bitrate::bps(config.default_downlink_bps)));
        }
        // What estimation looks for is set as the peer subscribes (`Sfu::reallocate`): until
        // then, nothing.
        let mut rtc = builder.build(now);
        // A host candidate is refused only for an unspecified address, which the config check
        // rules out.
        for addr in &config.candidates {
            if let Ok(candidate) = Candidate::host(*addr, "udp") {
                rtc.add_local_candidate(candidate);
            }
        }
        for addr in &config.tcp_candidates {
            // Passive: the client connects (RFC 6544); the SFU never dials out.
            let candidate = Candidate::builder()
                .tcp()
                .host(*addr)
                .tcptype(TcpType::Passive)
                .build();
            if let Ok(candidate) = candidate {
                rtc.add_local_candidate(candidate);
            }
        }
        rtc
    }

    /// Applies the peer's offer and returns the answer. On an error the session is unchanged,
    /// except that a session created for this offer is dropped again.
    pub fn accept_offer(
        &mut self,
        now: Instant,
        config: &SfuConfig,
        sdp: &str,
    ) -> Result<String, SfuError> {
        check_offer(sdp, config.max_media_lines)?;
        let offer =
            SdpOffer::from_sdp_string(sdp).map_err(|e| SfuError::BadSdp(format!("offer: {e}")))?;
        let fresh = self.rtc.is_none();
        if fresh {
            self.clock = Some(now);
            self.probing_for = None;
        }
        let rtc = self.rtc.get_or_insert_with(|| Self::new_rtc(now, config));
        let result = guarded(|| rtc.sdp_api().accept_offer(offer));
        // str0m invalidates the SFU's pending offer even when the peer's offer fails.
        self.pending = None;
        for sub in &mut self.subscriptions {
            sub.state = match sub.state {
                OutState::Negotiating(_) => OutState::ToOpen,
                OutState::NegotiatingStop(m) => OutState::ToStop(m),
                state => state,
            };
        }
        match result {
            Ok(answer) => Ok(answer.to_sdp_string()),
            Err(e) => {
                if fresh || !rtc.is_alive() {
                    self.rtc = None;
                }
                Err(SfuError::BadSdp(format!("offer: {e}")))
            }
        }
    }

    /// Applies the peer's answer to the SFU's pending offer; returns the subscriptions it opened.
    pub fn accept_answer(&mut self, sdp: &str) -> Result<Vec<TrackId>, SfuError> {
        let answer = SdpAnswer::from_sdp_string(sdp)
            .map_err(|e| SfuError::BadSdp(format!("answer: {e}")))?;
        let (Some(rtc), Some(pending)) = (self.rtc.as_mut(), self.pending.take()) else {
            return Err(SfuError::BadSdp(
                "answer: no offer from the SFU is waiting for one".into(),
            ));
        };
        guarded(|| rtc.sdp_api().accept_answer(pending, answer))
            .map_err(|e| SfuError::BadSdp(format!("answer: {e}")))?;
        let mut opened = Vec::new();
        self.subscriptions.retain_mut(|sub| match sub.state {
            OutState::Negotiating(m) => {
                sub.state = OutState::Open(m);
                opened.push(sub.track.clone());
                true
            }
            OutState::NegotiatingStop(_) => false,
            _ => true,
        });
        Ok(opened)
    }

    /// Adds a trickled candidate of the peer.
    pub fn add_candidate(&mut self, line: &str) -> Result<(), SfuError> {
        let line = line.trim();
        if line.is_empty() {
            // The end of the peer's candidates: nothing to do for an ICE-lite side.
            return Ok(());
        }
        let candidate = Candidate::from_sdp_string(line.strip_prefix("a=").unwrap_or(line))
            .map_err(|e| SfuError::BadSdp(format!("candidate: {e}")))?;
        let Some(rtc) = self.rtc.as_mut() else {
            return Err(SfuError::BadSdp("candidate: send an offer first".into()));
        };
        rtc.add_remote_candidate(candidate);
        Ok(())
    }

    /// Builds the SFU's next offer if subscriptions wait to be added or stopped and no offer is
    /// out; returns the track map to send before it and the offer.
    pub fn negotiate(&mut self) -> Result<Option<(Vec<TrackMapEntry>, String)>, String> {
        let Some(rtc) = self.rtc.as_mut() else {
            return Ok(None);
        };
        if self.pending.is_some()
            || !self
                .subscriptions
                .iter()
                .any(|s| matches!(s.state, OutState::ToOpen | OutState::ToStop(_)))
        {
            return Ok(None);
        }
        let subscriptions = &mut self.subscriptions;
        let peer_of = |s: &Subscription| s.peer.to_string();
        let applied = guarded(|| {
            let mut change = rtc.sdp_api();
            for sub in subscriptions.iter_mut() {
                sub.state = match sub.state {
                    OutState::ToOpen => {
                        let kind = match sub.kind {
                            TrackKind::Audio => MediaKind::Audio,
                            TrackKind::Video => MediaKind::Video,
                        };
                        // The msid's stream id is the publisher, so a browser groups each
                        // peer's tracks in one MediaStream.
                        OutState::Negotiating(change.add_media(
                            kind,
                            Direction::SendOnly,
                            Some(peer_of(sub)),
                            Some(sub.track.to_string()),
                            None,
                        ))
                    }
                    OutState::ToStop(m) => {
                        change.stop_media(m);
                        OutState::NegotiatingStop(m)
                    }
                    state => state,
                };
            }
            Ok(change.apply())
        })?;
        let Some((offer, pending)) = applied else {
            return Ok(None);
        };
        self.pending = Some(pending);
        let mids = self
            .subscriptions
            .iter()
            .filter_map(|s| match s.state {
                OutState::Negotiating(m) | OutState::Open(m) => Some(TrackMapEntry {
                    mid: m.to_string(),
                    peer: s.peer.clone(),
                    track: s.track.clone(),
                    kind: s.kind,
                }),
                _ => None,
            })
            .collect();
        Ok(Some((mids, offer.to_sdp_string())))
    }

    /// The published track on `mid`.
    pub fn published_on(&self, mid: Mid) -> Option<&TrackId> {
        self.published
            .iter()
            .find(|(m, _)| *m == mid)
            .map(|(_, t)| t)
    }
}
