//! RateMeter: what one layer of a video track (or a track sent without layers) takes,
//! measured as it arrives.
//!
//! The allocator needs the cost of everything it gives a subscriber, and estimation is told
//! what to look for. A layer's nominal rate (`SfuConfig::layers`, by its height) is only what
//! the SDK caps it at: a 180p layer of a still, low-light camera sends a third of its cap, and
//! a track sent as one stream can be a 150 kbit/s 180p camera or a 2.5 Mbit/s 1080p one. So
//! each layer's rate is measured: bytes over windows of [`WINDOW`], each whole window's rate
//! kept. A rate that moved by more than [`CHANGE`] from the one last reported is reported
//! again, and the track's subscribers are allocated with it; smaller moves are a frame's size
//! jitter and leave allocations alone.

use std::time::{Duration, Instant};

/// How long each measurement runs.
pub(crate) const WINDOW: Duration = Duration::from_secs(1);
/// How far (as a fraction of the reported rate) a measured rate must move to be reported.
const CHANGE: f64 = 0.25;
/// What each packet costs on the subscriber's downlink besides its payload: an RTP header
/// with extensions (about 24 bytes), the SRTP tag (10) and UDP/IPv4 (28).
const PACKET_OVERHEAD: u64 = 62;

/// One track's meter; see the module doc.
#[derive(Debug, Clone, Default)]
pub(crate) struct RateMeter {
    /// When the running window started; `None` before the first packet.
    start: Option<Instant>,
    /// Bytes in the running window.
    bytes: u64,
    /// The rate last reported, in bit/s; `None` until a whole window was measured.
    reported: Option<u64>,
}

impl RateMeter {
    /// The rate last reported, in bit/s.
    pub fn rate(&self) -> Option<u64> {
        self.reported
    }

    /// A packet with `payload` bytes arrived at `now`. Whether that reported a new rate.
    pub fn packet(&mut self, payload: usize, now: Instant) -> bool {
        let start = *self.start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        let mut reported = false;
        if elapsed >= WINDOW {
            // A window much longer than WINDOW spans a pause (a muted track): its average
            // says nothing of the rate the track comes back at, so it is dropped.
            if elapsed < 2 * WINDOW {
                let bps = (self.bytes * 8) as f64 / elapsed.as_secs_f64();
                let moved = self
                    .reported
                    .is_none_or(|r| (bps - r as f64).abs() > r as f64 * CHANGE);
                if moved {
                    self.reported = Some(bps as u64);
                    reported = true;
                }
            }
            self.start = Some(now);
            self.bytes = 0;
        }
        self.bytes += payload as u64 + PACKET_OVERHEAD;
        reported
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `seconds` of `per_second` packets of `payload` bytes, evenly spaced, from `at`;
    /// returns the time after them and how many reports they made.
    fn feed(
        meter: &mut RateMeter,
        at: Instant,
        seconds: u32,
        per_second: u32,
        payload: usize,
    ) -> (Instant, usize) {
        let gap = Duration::from_secs(1) / per_second;
        let mut now = at;
        let mut reports = 0;
        for _ in 0..seconds * per_second {
            reports += usize::from(meter.packet(payload, now));
            now += gap;
        }
        (now, reports)
    }

    #[test]
    fn a_steady_stream_is_reported_once_at_its_rate() {
        let mut meter = RateMeter::default();
        let t0 = Instant::now();
        assert_eq!(meter.rate(), None);
        // 100 packets of 1,188 bytes a second: (1,188 + 62) x 8 x 100 = 1 Mbit/s.
        let (_, reports) = feed(&mut meter, t0, 5, 100, 1188);
        assert_eq!(
            reports, 1,
            "the first window reports; the same rate after it does not"
        );
        let rate = meter.rate().expect("measured");
        assert!((990_000..=1_010_000).contains(&rate), "{rate}");
    }

    #[test]
    fn only_a_move_past_a_quarter_is_reported() {
        let mut meter = RateMeter::default();
        let t0 = Instant::now();
        let (t1, _) = feed(&mut meter, t0, 2, 100, 1188);
        // 20 % less: jitter, not reported.
        let (t2, reports) = feed(&mut meter, t1, 3, 80, 1188);
        assert_eq!(reports, 0);
        assert!(meter.rate().unwrap() > 990_000);
        // Half: reported, at the new rate.
        let (_, reports) = feed(&mut meter, t2, 3, 50, 1188);
        assert_eq!(reports, 1);
        let rate = meter.rate().unwrap();
        assert!((490_000..=510_000).contains(&rate), "{rate}");
    }

    #[test]
    fn a_pause_is_not_averaged_in() {
        let mut meter = RateMeter::default();
        let t0 = Instant::now();
        let (t1, _) = feed(&mut meter, t0, 2, 100, 1188);
        // Ten seconds of silence, then the same stream: no report of a tiny rate.
        let (_, reports) = feed(&mut meter, t1 + Duration::from_secs(10), 3, 100, 1188);
        assert_eq!(reports, 0);
        assert!(meter.rate().unwrap() > 990_000);
    }
}
