//! Rewriter: one subscription's outgoing RTP sequence numbers, timestamps and VP8 picture ids,
//! so that the subscriber receives one continuous stream while its source changes.
//!
//! The SFU forwards RTP packets as they arrive (str0m's RTP mode) rather than frames. Each
//! source (a simulcast layer) has its own SSRC, sequence space, timestamp base and VP8 picture
//! ids, and the subscriber's m-line has one SSRC of its own (str0m's send stream sets it). On
//! the first packet of a new source, and on the first after forwarding resumes (a pause or a
//! mute, [`Rewriter::restart`]), the stream is *rebased*: the sequence number follows the last
//! one sent by one, the timestamp follows by the wall-clock time between the two packets (at
//! least one tick, so timestamps rise), the VP8 picture id and TL0PICIDX by one. Between
//! rebases each field is the incoming one plus a fixed offset, so a packet the publisher
//! retransmits to the SFU late still fills the subscriber's gap at the right place; packets of
//! the source older than the rebase point are dropped, since their numbers are already used.

use std::time::Instant;

/// The VP8 ids of a packet's payload descriptor (RFC 7741), for packets that carry them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Ids {
    /// The picture id, 7 or 15 bits.
    pub picture_id: u16,
    /// Whether the picture id is the 15-bit form (the output keeps the input's width).
    pub wide: bool,
    /// TL0PICIDX, when present.
    pub tl0: Option<u8>,
}

/// One incoming packet as the rewriter sees it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming {
    /// Which source it belongs to (the simulcast layer; 0 for a track without layers).
    pub source: usize,
    /// Its extended sequence number.
    pub seq: u64,
    /// Its RTP timestamp.
    pub time: u32,
    /// The codec's clock rate, ticks a second.
    pub rate: u32,
    /// When it arrived.
    pub at: Instant,
    /// Its VP8 ids, if it is VP8 with a picture id.
    pub vp8: Option<Vp8Ids>,
}

/// What to send for one incoming packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgoing {
    /// The extended sequence number on the subscriber's stream.
    pub seq: u64,
    /// The RTP timestamp on the subscriber's stream.
    pub time: u32,
    /// The VP8 ids to write into the payload descriptor; `None` to leave it as it is.
    pub vp8: Option<Vp8Ids>,
}

/// The highest packet sent: what the next rebase continues from.
#[derive(Debug, Clone, Copy)]
struct Last {
    seq: u64,
    time: u32,
    at: Instant,
    picture_id: Option<u16>,
    tl0: Option<u8>,
}

/// One subscription's rewriting state; see the module doc.
#[derive(Debug, Clone, Default)]
pub struct Rewriter {
    /// The source followed now; `None`: the next packet rebases.
    source: Option<usize>,
    /// The first incoming sequence number of the current source after the rebase.
    floor: u64,
    seq_offset: u64,
    time_offset: u32,
    picture_offset: u16,
    tl0_offset: u8,
    last: Option<Last>,
}

/// Picture ids count modulo 2^15 (or 2^7 in the short form).
const PICTURE_MASK: u16 = 0x7fff;
const SHORT_PICTURE_MASK: u16 = 0x7f;

impl Rewriter {
    /// Forwarding stopped (a pause or a mute): the next packet rebases, even of the same source.
    pub fn restart(&mut self) {
        self.source = None;
    }

    /// The sequence number, timestamp and VP8 ids to send `packet` with; `None` for a packet
    /// of the current source older than its rebase point.
    pub fn rewrite(&mut self, packet: Incoming) -> Option<Outgoing> {
        if self.source != Some(packet.source) {
            self.rebase(&packet);
        } else if packet.seq < self.floor {
            return None;
        }
        let seq = packet.seq.wrapping_add(self.seq_offset);
        let time = packet.time.wrapping_add(self.time_offset);
        let vp8 = packet.vp8.map(|ids| {
            let mask = if ids.wide {
                PICTURE_MASK
            } else {
                SHORT_PICTURE_MASK
            };
            Vp8Ids {
                picture_id: ids.picture_id.wrapping_add(self.picture_offset) & mask,
                wide: ids.wide,
                tl0: ids.tl0.map(|t| t.wrapping_add(self.tl0_offset)),
            }
        });
        if self.last.is_none_or(|last| seq > last.seq) {
            self.last = Some(Last {
                seq,
                time,
                at: packet.at,
                picture_id: vp8.map(|v| v.picture_id),
                tl0: vp8.and_then(|v| v.tl0),
            });
        }
        Some(Outgoing { seq, time, vp8 })
    }

    fn rebase(&mut self, packet: &Incoming) {
        self.source = Some(packet.source);
        self.floor = packet.seq;
        let Some(last) = self.last else {
            // The first packet: its own numbers, but a sequence number below 2^16, since a
            // receiver starts its rollover counter at 0 (RFC 3711 3.3.1).
            self.seq_offset = (packet.seq & 0xffff).wrapping_sub(packet.seq);
            return;
        };
        self.seq_offset = last.seq.wrapping_add(1).wrapping_sub(packet.seq);
        let elapsed = packet.at.saturating_duration_since(last.at);
        let ticks = elapsed.as_micros() * u128::from(packet.rate) / 1_000_000;
        let ticks = u32::try_from(ticks).unwrap_or(u32::MAX).max(1);
        self.time_offset = last.time.wrapping_add(ticks).wrapping_sub(packet.time);
        if let (Some(ids), Some(last_picture)) = (packet.vp8, last.picture_id) {
            self.picture_offset = last_picture.wrapping_add(1).wrapping_sub(ids.picture_id);
            if let (Some(tl0), Some(last_tl0)) = (ids.tl0, last.tl0) {
                self.tl0_offset = last_tl0.wrapping_add(1).wrapping_sub(tl0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const RATE: u32 = 90_000;
    const FRAME: Duration = Duration::from_micros(33_333);

    /// Two simulcast layers of a 30 fps camera, two packets a frame, with independent
    /// sequence spaces, timestamp bases and picture ids.
    fn packet(source: usize, frame: u64, part: u64, t0: Instant) -> Incoming {
        let (seq0, time0, picture0) = [
            (100u64, 1_000_000u32, 30_000u16),
            (60_000, 4_000_000_000, 5),
        ][source];
        Incoming {
            source,
            seq: seq0 + frame * 2 + part,
            time: time0.wrapping_add(frame as u32 * 3_000),
            rate: RATE,
            at: t0 + FRAME * frame as u32,
            vp8: Some(Vp8Ids {
                picture_id: (picture0 + frame as u16) & PICTURE_MASK,
                wide: true,
                tl0: Some((frame as u8).wrapping_add(source as u8 * 100)),
            }),
        }
    }

    #[test]
    fn a_switch_of_source_keeps_every_field_continuous() {
        let t0 = Instant::now();
        let mut rewriter = Rewriter::default();
        let mut sent = Vec::new();
        for frame in 0..10 {
            for part in 0..2 {
                sent.push(rewriter.rewrite(packet(0, frame, part, t0)).unwrap());
            }
        }
        for frame in 10..20 {
            for part in 0..2 {
                sent.push(rewriter.rewrite(packet(1, frame, part, t0)).unwrap());
            }
        }
        for pair in sent.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            assert_eq!(b.seq, a.seq + 1, "sequence numbers are contiguous");
            let (pa, pb) = (a.vp8.unwrap(), b.vp8.unwrap());
            if b.time != a.time {
                // A new frame: a frame's time on, one picture on, one TL0PICIDX on.
                assert!(
                    b.time.wrapping_sub(a.time) <= 3_000 && b.time.wrapping_sub(a.time) >= 2_999
                );
                assert_eq!(pb.picture_id, (pa.picture_id + 1) & PICTURE_MASK);
                assert_eq!(pb.tl0, pa.tl0.map(|t| t.wrapping_add(1)));
            } else {
                assert_eq!(pa, pb, "one frame's packets share their ids");
            }
        }
        // Starts below 2^16 with the source's own numbers.
        assert_eq!(sent[0].seq, 100);
        assert_eq!(sent[0].time, 1_000_000);
    }

    #[test]
    fn late_packets_fill_gaps_but_never_cross_a_rebase() {
        let t0 = Instant::now();
        let mut rewriter = Rewriter::default();
        let first = rewriter.rewrite(packet(0, 0, 0, t0)).unwrap();
        let third = rewriter.rewrite(packet(0, 1, 0, t0)).unwrap();
        // A retransmission of the packet lost between them lands in the gap.
        let second = rewriter.rewrite(packet(0, 0, 1, t0)).unwrap();
        assert_eq!((first.seq, second.seq, third.seq), (100, 101, 102));
        // After a restart (a mute), the same source continues from the highest sent...
        rewriter.restart();
        let resumed = rewriter.rewrite(packet(0, 50, 0, t0)).unwrap();
        assert_eq!(resumed.seq, 103);
        assert!(resumed.time > third.time);
        // ... and what is older than that point is dropped.
        assert_eq!(rewriter.rewrite(packet(0, 49, 1, t0)), None);
        assert_eq!(rewriter.rewrite(packet(0, 50, 1, t0)).unwrap().seq, 104);
    }

    #[test]
    fn numbers_wrap_like_rtp() {
        let t0 = Instant::now();
        let mut rewriter = Rewriter::default();
        let at = |seq: u64, time: u32, picture_id: u16| Incoming {
            source: 0,
            seq,
            time,
            rate: RATE,
            at: t0,
            vp8: Some(Vp8Ids {
                picture_id,
                wide: false,
                tl0: Some(255),
            }),
        };
        // An extended sequence number past 2^16 starts at its low 16 bits.
        let out = rewriter
            .rewrite(at(3 * 65_536 + 65_535, u32::MAX, 0x7f))
            .unwrap();
        assert_eq!(out.seq, 65_535);
        let next = rewriter.rewrite(at(4 * 65_536, 5, 0)).unwrap();
        assert_eq!(next.seq, 65_536);
        assert_eq!(next.time, 5);
        rewriter.restart();
        let rebased = rewriter
            .rewrite(Incoming {
                source: 1,
                ..at(7, 100, 0x40)
            })
            .unwrap();
        assert_eq!(rebased.seq, 65_537);
        assert_eq!(rebased.time, 6);
        let ids = rebased.vp8.unwrap();
        // The short form stays short: 0 + 1 after 0x7f wrapped.
        assert_eq!(ids.picture_id, 1);
        assert_eq!(ids.tl0, Some(0));
    }
}
