//! A synthetic WebRTC endpoint for the `sfu` scenario: a str0m `Rtc` (the workspace's pinned
//! version, the SFU's own engine, playing the client's side) that offers VP8 and Opus, answers
//! the SFU's offers, writes timestamped frames and reads them back.
//!
//! Sans-IO like the SFU: every call takes the current `Instant` and leaves what to send, and the
//! frames that arrived, in [`Outputs`]; the scenario's task owns the UDP socket and the clock.
//! Frames carry the bench clock ([`crate::stats::now_ns`]) at bytes 2..10, so a receiver in the
//! same process reads the one-way latency of each frame.

use std::{net::SocketAddr, time::Instant};

use serde::Deserialize;
use str0m::{
    Candidate, Event, IceConnectionState, Input, Output, Rtc,
    change::{SdpAnswer, SdpOffer, SdpPendingOffer},
    format::Codec,
    media::{Direction, Frequency, MediaKind, MediaTime, Mid},
    net::{Protocol, Receive},
};

/// The payload of the SFU's `offer` and `answer` messages.
#[derive(Deserialize)]
struct Sdp {
    sdp: String,
}

/// Where the send timestamp sits in every frame (after byte 0, the VP8 frame tag or Opus TOC).
const STAMP: std::ops::Range<usize> = 2..10;

/// The smallest frame that holds a timestamp.
pub const MIN_FRAME: usize = STAMP.end;

/// Opus frames: 20 ms each, about 32 kbit/s.
pub const AUDIO_FRAME: usize = 80;

/// A frame that arrived, as the scenario records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrived {
    /// The sender's bench clock when it wrote the frame (`None`: too short to carry one).
    pub sent_ns: Option<u64>,
}

/// What calls on a [`MediaPeer`] produced; the caller drains both lists after each call.
#[derive(Debug, Default)]
pub struct Outputs {
    /// Datagrams to send: destination and bytes.
    pub transmits: Vec<(SocketAddr, Vec<u8>)>,
    /// Frames received.
    pub frames: Vec<Arrived>,
}

/// One endpoint's media session with the SFU.
pub struct MediaPeer {
    rtc: Rtc,
    /// Our offer, while the SFU has not answered it; the SFU's offers are ignored meanwhile (the
    /// client is the impolite side of perfect negotiation).
    pending: Option<SdpPendingOffer>,
    video: Option<Mid>,
    audio: Option<Mid>,
    video_frames: u64,
    audio_frames: u64,
    /// The SFU asked for a keyframe: the next video frame is one.
    keyframe_due: bool,
    next_timeout: Option<Instant>,
    connected: bool,
    failed: bool,
}

impl MediaPeer {
    /// A peer whose socket is bound at `local`.
    pub fn new(local: SocketAddr, now: Instant) -> Result<MediaPeer, String> {
        let mut rtc = Rtc::builder().build(now);
        let candidate = Candidate::host(local, "udp").map_err(|e| format!("candidate: {e}"))?;
        rtc.add_local_candidate(candidate);
        Ok(MediaPeer {
            rtc,
            pending: None,
            video: None,
            audio: None,
            video_frames: 0,
            audio_frames: 0,
            keyframe_due: false,
            next_timeout: None,
            connected: false,
            failed: false,
        })
    }

    /// The first offer: send-only video (and audio) for a publisher; for a peer that only
    /// receives, one receive-only audio m-line (an offer needs one), as the browser SDK offers
    /// (`web/sdk/publisher.js`). A data channel there would run SCTP on both sides for
    /// nothing a browser pays. Returns the `offer` payload for `sfu`.
    pub fn offer(&mut self, video: bool, audio: bool, out: &mut Outputs) -> Result<String, String> {
        let mut change = self.rtc.sdp_api();
        if video {
            self.video =
                Some(change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None));
        }
        if audio {
            self.audio =
                Some(change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None));
        }
        if !video && !audio {
            change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        }
        let (offer, pending) = change.apply().ok_or("an offer with nothing to offer")?;
        self.pending = Some(pending);
        self.drain(out)?;
        Ok(serde_json::json!({"type": "offer", "sdp": offer.to_sdp_string()}).to_string())
    }

    /// A signaling message from the SFU; returns the `answer` payload to send back, if any.
    pub fn on_signal(
        &mut self,
        kind: &str,
        payload: &str,
        out: &mut Outputs,
    ) -> Result<Option<String>, String> {
        let reply = match kind {
            "answer" => {
                let Sdp { sdp } = serde_json::from_str(payload).map_err(|e| e.to_string())?;
                let answer = SdpAnswer::from_sdp_string(&sdp).map_err(|e| e.to_string())?;
                let pending = self.pending.take().ok_or("an answer with no offer out")?;
                (self.rtc.sdp_api().accept_answer(pending, answer)).map_err(|e| e.to_string())?;
                None
            }
            // Impolite: our own offer wins; the SFU offers again after answering it.
            "offer" if self.pending.is_some() => None,
            "offer" => {
                let Sdp { sdp } = serde_json::from_str(payload).map_err(|e| e.to_string())?;
                let offer = SdpOffer::from_sdp_string(&sdp).map_err(|e| e.to_string())?;
                let answer = (self.rtc.sdp_api().accept_offer(offer)).map_err(|e| e.to_string())?;
                Some(
                    serde_json::json!({"type": "answer", "sdp": answer.to_sdp_string()})
                        .to_string(),
                )
            }
            _ => None,
        };
        self.drain(out)?;
        Ok(reply)
    }

    /// A datagram from `source` to our `local` address.
    pub fn receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        local: SocketAddr,
        contents: &[u8],
        out: &mut Outputs,
    ) -> Result<(), String> {
        // Not STUN, DTLS or RTP: nothing str0m would take; dropped as a browser would.
        let Ok(receive) = Receive::new(Protocol::Udp, source, local, contents) else {
            return Ok(());
        };
        (self.rtc.handle_input(Input::Receive(now, receive))).map_err(|e| e.to_string())?;
        self.drain(out)
    }

    /// When [`MediaPeer::timeout`] is next due.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.next_timeout
    }

    /// Time passed: str0m's timers (ICE, DTLS retries, RTCP).
    pub fn timeout(&mut self, now: Instant, out: &mut Outputs) -> Result<(), String> {
        (self.rtc.handle_input(Input::Timeout(now))).map_err(|e| e.to_string())?;
        self.drain(out)
    }

    /// Whether ICE and DTLS are up, so media can be written.
    pub fn connected(&self) -> bool {
        self.connected
    }

    /// Whether ICE gave up.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Writes one VP8-shaped video frame of `size` bytes, a keyframe of `keyframe_size` bytes
    /// every `gop` frames or when the SFU asked for one; `fps` sets the RTP clock's steps.
    pub fn write_video(
        &mut self,
        now: Instant,
        stamp: u64,
        sizes: (usize, usize),
        gop: u64,
        fps: f64,
        out: &mut Outputs,
    ) -> Result<(), String> {
        let Some(mid) = self.video else { return Ok(()) };
        let keyframe = self.keyframe_due || self.video_frames.is_multiple_of(gop.max(1));
        self.keyframe_due = false;
        let (size, first) = if keyframe {
            // A VP8 frame is a keyframe when bit 0 of its first byte is 0.
            (sizes.1, 0x10)
        } else {
            (sizes.0, 0x11)
        };
        let ticks = (self.video_frames as f64 * 90_000.0 / fps.max(1.0)) as u64;
        self.video_frames += 1;
        let time = MediaTime::new(ticks, Frequency::NINETY_KHZ);
        self.write(mid, Codec::Vp8, now, time, frame(first, size, stamp))?;
        self.drain(out)
    }

    /// Writes one 20 ms Opus-sized audio frame.
    pub fn write_audio(
        &mut self,
        now: Instant,
        stamp: u64,
        out: &mut Outputs,
    ) -> Result<(), String> {
        let Some(mid) = self.audio else { return Ok(()) };
        let time = MediaTime::new(self.audio_frames * 960, Frequency::FORTY_EIGHT_KHZ);
        self.audio_frames += 1;
        self.write(mid, Codec::Opus, now, time, frame(0xfc, AUDIO_FRAME, stamp))?;
        self.drain(out)
    }

    fn write(
        &mut self,
        mid: Mid,
        codec: Codec,
        now: Instant,
        time: MediaTime,
        data: Vec<u8>,
    ) -> Result<(), String> {
        let pt = (self.rtc.codec_config().find(|p| p.spec().codec == codec))
            .map(|p| p.pt())
            .ok_or("no payload type for the codec")?;
        // No writer yet: the m-line is not negotiated; the frame is skipped.
        if let Some(writer) = self.rtc.writer(mid) {
            writer
                .write(pt, now, time, data)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Takes str0m's output until it names its next timeout.
    fn drain(&mut self, out: &mut Outputs) -> Result<(), String> {
        loop {
            match self.rtc.poll_output().map_err(|e| e.to_string())? {
                Output::Timeout(t) => {
                    self.next_timeout = Some(t);
                    return Ok(());
                }
                Output::Transmit(t) => out.transmits.push((t.destination, t.contents.to_vec())),
                Output::Event(event) => match event {
                    Event::Connected => self.connected = true,
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        self.failed = true
                    }
                    Event::KeyframeRequest(_) => self.keyframe_due = true,
                    Event::MediaData(data) => out.frames.push(Arrived {
                        sent_ns: stamp_of(&data.data),
                    }),
                    _ => {}
                },
            }
        }
    }
}

/// A frame of `size` bytes (at least [`MIN_FRAME`]) starting with `first` and carrying `stamp`.
fn frame(first: u8, size: usize, stamp: u64) -> Vec<u8> {
    let mut data = vec![first; size.max(MIN_FRAME)];
    data[STAMP].copy_from_slice(&stamp.to_be_bytes());
    data
}

/// The timestamp [`frame`] wrote.
fn stamp_of(data: &[u8]) -> Option<u64> {
    let bytes = data.get(STAMP)?;
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_carries_its_stamp_and_a_short_one_none() {
        let f = frame(0x11, 900, 123_456_789);
        assert_eq!(f.len(), 900);
        assert_eq!(f[0], 0x11);
        assert_eq!(stamp_of(&f), Some(123_456_789));
        assert_eq!(frame(0x10, 3, 7).len(), MIN_FRAME);
        assert_eq!(stamp_of(&[0x11; 5]), None);
    }
}
