//! Forwarding: each RTP packet a publisher sends goes to every subscriber whose m-line for its
//! track is open, as it arrived (str0m's RTP mode): no depacketizing, no repacketizing, one
//! shared payload.
//!
//! Per subscriber the packet gets the subscriber's payload type, the SSRC of the subscriber's
//! send stream (str0m sets it) and the sequence number, timestamp and VP8 picture ids of
//! [`Rewriter`](crate::rewrite::Rewriter), so that simulcast layer switches, pauses and mutes
//! leave one continuous stream. What str0m still does on each leg: SRTP, RTCP, NACKs to the
//! publisher and RTX answers to the subscriber's NACKs from its send buffer (video packets are
//! written nackable), transport-wide congestion control and pacing. A keyframe is found from
//! the VP8 payload descriptor (RFC 7741), the only video codec the SFU negotiates; loss the
//! publisher does not repair is not looked for here: the subscriber's decoder asks for a
//! keyframe, which reaches the publisher through the keyframe gate.

use std::time::Instant;

use str0m::{
    Rtc,
    format::{Codec, PayloadParams},
    media::{Mid, Rid},
    rtp::{ExtensionValues, RtpPacket, RtpWrite, Vp8Descriptor},
};

use super::{Pid, Sfu, Work};
use crate::{
    TrackKind,
    participant::guarded,
    rewrite::{Incoming, Vp8Ids},
};

/// An RTP packet from a publisher with what its `Rtc` knows of it: the m-line and layer its
/// SSRC belongs to and the codec its payload type stands for.
pub(crate) struct Received {
    packet: RtpPacket,
    mid: Mid,
    rid: Option<Rid>,
    params: PayloadParams,
}

impl Received {
    /// Looks up the packet's m-line, layer and codec in its publisher's `Rtc`; `None` for a
    /// packet of a stream or payload type the session does not know (str0m only hands out
    /// packets of negotiated streams, so this is a guard, not a path).
    pub fn resolve(rtc: &mut Rtc, packet: RtpPacket) -> Option<Self> {
        let pt = packet.header.payload_type;
        let params = (rtc.codec_config().params().iter())
            .find(|p| p.pt() == pt)
            .copied()?;
        let mut direct = rtc.direct_api();
        let stream = direct.stream_rx(&packet.header.ssrc)?;
        let (mid, rid) = (stream.mid(), stream.rid());
        Some(Received {
            packet,
            mid,
            rid,
            params,
        })
    }
}

/// What the SFU reads of a packet's VP8 payload descriptor (RFC 7741).
#[derive(Debug)]
struct Vp8Info {
    /// The parsed descriptor, for patching the ids; `None` for another codec or a payload too
    /// short or malformed to have one (forwarded as it is).
    descriptor: Option<Vp8Descriptor>,
    /// The packet starts a keyframe: the first packet of a frame (S set, partition 0) whose
    /// VP8 payload header has the P bit clear.
    keyframe: bool,
    ids: Option<Vp8Ids>,
}

impl Vp8Info {
    fn of(codec: Codec, payload: &[u8]) -> Self {
        let descriptor = (codec == Codec::Vp8)
            .then(|| Vp8Descriptor::parse(payload).ok())
            .flatten();
        let ids = descriptor.and_then(|d| {
            Some(Vp8Ids {
                picture_id: d.picture_id()?,
                // The picture id follows the required and the extension byte; its first
                // bit (M) marks the 15-bit form.
                wide: payload.get(2).is_some_and(|b| b & 0x80 != 0),
                tl0: d.tl0_pic_idx(),
            })
        });
        Vp8Info {
            descriptor,
            keyframe: descriptor.is_some_and(|d| d.starts_keyframe(payload)),
            ids,
        }
    }
}

impl Sfu {
    /// A packet from a publisher goes to every subscriber whose m-line for it is open.
    pub(super) fn forward(&mut self, now: Instant, pid: Pid, received: Received) {
        let Received {
            packet,
            mid,
            rid,
            params,
        } = received;
        let Some(id) = self
            .participants
            .get(&pid)
            .and_then(|p| p.published_on(mid).cloned())
        else {
            return;
        };
        // A muted track's publisher may go on sending (a host muted it, or it has not caught
        // up): nothing of it goes further, and it does not speak.
        let Some(track) = self.tracks.get(&id).filter(|t| !t.muted) else {
            return;
        };
        if track.kind == TrackKind::Audio {
            self.hear(now, &id, packet.header.ext_vals.audio_level);
        }
        let Some(track) = self.tracks.get_mut(&id) else {
            return;
        };
        let payload = &packet.payload;
        let Vp8Info {
            descriptor: vp8,
            keyframe,
            ids,
        } = Vp8Info::of(params.spec().codec, payload);
        let layer = track.layer_of(rid);
        if layer.is_none() && !track.rids.is_empty() {
            // A rid the publisher did not offer: no subscriber could be switched to it.
            return;
        }
        if keyframe {
            track.keyframes.keyframe_seen(layer.unwrap_or(0));
        }
        let video = track.kind == TrackKind::Video;
        let room = track.room.clone();
        // A stalled layer that is back may be given to subscribers again; a layer whose rate
        // moved may fit their downlinks differently.
        let arrived = match (layer, track.arrivals.as_mut()) {
            (Some(l), Some(a)) => a.frame(l, now),
            _ => false,
        };
        let measured = video && track.rates[layer.unwrap_or(0)].packet(payload.len(), now);
        let reallocate = arrived || measured;
        let incoming = Incoming {
            source: layer.unwrap_or(0),
            seq: *packet.seq_no,
            time: packet.header.timestamp,
            rate: params.spec().clock_rate.get(),
            at: packet.timestamp,
            vp8: ids,
        };
        // What str0m writes itself (mid, rid, transport-wide sequence numbers, send times)
        // is left out; what a receiver uses of the publisher's is kept.
        let ext_vals = ExtensionValues {
            audio_level: packet.header.ext_vals.audio_level,
            voice_activity: packet.header.ext_vals.voice_activity,
            video_orientation: packet.header.ext_vals.video_orientation,
            ..ExtensionValues::default()
        };
        let mut switched = false;
        let mut members = std::mem::take(&mut self.members);
        members.clear();
        if let Some(m) = self.rooms.get(&room) {
            members.extend(m.values().copied().filter(|p| *p != pid));
        }
        for &other in &members {
            let Some(p) = self.participants.get_mut(&other) else {
                continue;
            };
            let Some(sub) = p.subscriptions.iter_mut().find(|s| s.track == id) else {
                continue;
            };
            let Some(out_mid) = sub.open_mid() else {
                continue;
            };
            // A video track sends this subscriber one layer (a track without layers: its one),
            // switched and resumed on keyframes.
            let was = sub.layer.current();
            let wanted = !video || sub.layer.on_packet(layer.unwrap_or(0), keyframe);
            if sub.layer.current() != was {
                sub.rewrite.restart();
                if was.is_some() && sub.layer.current().is_some() {
                    self.counts.layer_switches += 1;
                    switched = true;
                }
            }
            if !wanted {
                continue;
            }
            let Some(out) = sub.rewrite.rewrite(incoming) else {
                continue;
            };
            let Some(rtc) = p.rtc.as_mut() else {
                continue;
            };
            let pt_cache = &mut sub.pt;
            let written = guarded(|| {
                // The subscriber negotiated its own payload type for the codec.
                let pt = match *pt_cache {
                    Some((from, to)) if from == params.pt() => to,
                    _ => {
                        let Some(to) = rtc.codec_config().match_params(params).map(|p| p.pt())
                        else {
                            return Ok(false);
                        };
                        *pt_cache = Some((params.pt(), to));
                        to
                    }
                };
                let mut direct = rtc.direct_api();
                let Some(stream) = direct.stream_tx_by_mid(out_mid, None) else {
                    return Ok(false);
                };
                let mut write = RtpWrite::new(
                    pt,
                    out.seq.into(),
                    out.time,
                    packet.timestamp,
                    payload.clone(),
                )
                .marker(packet.header.marker)
                .ext_vals(ext_vals.clone())
                // Audio is not retransmitted (Opus conceals a loss better than a late packet).
                .nackable(video);
                if let (Some(d), Some(ids)) = (vp8, out.vp8)
                    && Some(ids) != incoming.vp8
                {
                    let patch = d.patch().picture_id(ids.picture_id);
                    let patch = match ids.tl0 {
                        Some(tl0) => patch.tl0_pic_idx(tl0),
                        None => patch,
                    };
                    // Built from the packet's own descriptor, so the fields exist and fit.
                    if let Ok(patch) = patch.build() {
                        write = write.vp8_patch(patch);
                    }
                }
                stream.write_rtp(write);
                Ok(true)
            });
            match written {
                Ok(true) => {
                    self.counts.forwarded_packets += 1;
                    self.counts.forwarded_bytes += payload.len() as u64;
                    // A written packet leaves on the subscriber's next timeout, which str0m
                    // makes due at once; marking it due here stands for draining the `Rtc`,
                    // whose poll would find only that. One timeout then sends every packet
                    // the turn wrote to this subscriber, after one poll instead of one per
                    // packet (docs/benchmarks.md, "Fewer polls per packet").
                    p.timeout_due(now);
                }
                Ok(false) => {}
                Err(reason) => self.work.push_back(Work::Failed(other, reason)),
            }
        }
        self.members = members;
        if switched {
            // A layer left behind may have no one left on it.
            self.update_layers(now, &room);
        }
        if reallocate {
            self.reallocate_track(now, &id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A descriptor as Chrome writes it: X, then I and L and T, a 15-bit picture id, TL0PICIDX
    /// and TID; then the VP8 payload header's first byte.
    fn chrome(start: bool, partition: u8, header: u8) -> Vec<u8> {
        let first = 0x80 | if start { 0x10 } else { 0 } | partition;
        vec![first, 0xe0, 0x80 | 0x12, 0x34, 7, 0x20, header, 0, 0]
    }

    #[test]
    fn a_keyframe_is_found_from_the_vp8_payload() {
        // P bit (bit 0 of the payload header) clear: a keyframe.
        let key = Vp8Info::of(Codec::Vp8, &chrome(true, 0, 0x10));
        assert!(key.keyframe);
        assert_eq!(
            key.ids,
            Some(Vp8Ids {
                picture_id: 0x1234,
                wide: true,
                tl0: Some(7)
            })
        );
        assert!(
            !Vp8Info::of(Codec::Vp8, &chrome(true, 0, 0x11)).keyframe,
            "P set"
        );
        // Later packets of a keyframe and other partitions do not start one.
        assert!(!Vp8Info::of(Codec::Vp8, &chrome(false, 0, 0x10)).keyframe);
        assert!(!Vp8Info::of(Codec::Vp8, &chrome(true, 1, 0x10)).keyframe);
        // The shortest descriptor: one byte, no ids.
        let plain = Vp8Info::of(Codec::Vp8, &[0x10, 0x10, 0, 0]);
        assert!(plain.keyframe);
        assert_eq!(plain.ids, None);
        // A 7-bit picture id.
        let short = Vp8Info::of(Codec::Vp8, &[0x90, 0x80, 0x05, 0x10]);
        assert_eq!(short.ids.map(|i| (i.picture_id, i.wide)), Some((5, false)));
        // Not VP8, or too short to be: no keyframe, nothing to patch, no panic.
        assert!(!Vp8Info::of(Codec::Opus, &chrome(true, 0, 0x10)).keyframe);
        for bad in [&[][..], &[0x90], &[0x90, 0x80], &[0x90, 0xe0, 0x80]] {
            let info = Vp8Info::of(Codec::Vp8, bad);
            assert!(!info.keyframe && info.descriptor.is_none(), "{bad:?}");
        }
    }
}
