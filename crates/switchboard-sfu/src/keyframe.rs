//! KeyframeGate: coalesces subscribers' keyframe requests for one published track.
//!
//! Every subscriber that loses a packet or joins late asks for a keyframe; forwarding each
//! request would make the publisher send keyframes back to back (each several times a normal
//! frame). The gate lets one request through per interval and remembers that more were asked
//! for in between, so exactly one more goes out when the interval ends (mediasoup's
//! KeyFrameRequestManager and LiveKit's `pli_throttle` do the same).

use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub(crate) struct KeyframeGate {
    last_sent: Option<Instant>,
    deferred: bool,
}

impl KeyframeGate {
    /// A subscriber asks; `true` if the request should go to the publisher now.
    pub fn request(&mut self, now: Instant, interval: Duration) -> bool {
        match self.last_sent {
            Some(at) if now < at + interval => {
                self.deferred = true;
                false
            }
            _ => {
                self.last_sent = Some(now);
                self.deferred = false;
                true
            }
        }
    }

    /// A keyframe arrived from the publisher: requests waiting for one are answered.
    pub fn keyframe_seen(&mut self) {
        self.deferred = false;
    }

    /// When a deferred request is due.
    pub fn deadline(&self, interval: Duration) -> Option<Instant> {
        self.deferred
            .then(|| self.last_sent.map(|at| at + interval))
            .flatten()
    }

    /// `true` if a deferred request is due at `now` (and counts it as sent).
    pub fn due(&mut self, now: Instant, interval: Duration) -> bool {
        if self.deadline(interval).is_some_and(|at| at <= now) {
            self.last_sent = Some(now);
            self.deferred = false;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const I: Duration = Duration::from_millis(500);

    #[test]
    fn one_request_per_interval_and_one_deferred() {
        let t0 = Instant::now();
        let mut gate = KeyframeGate::default();
        assert!(gate.request(t0, I));
        for ms in [1, 100, 200, 499] {
            assert!(!gate.request(t0 + Duration::from_millis(ms), I));
        }
        assert_eq!(gate.deadline(I), Some(t0 + I));
        assert!(!gate.due(t0 + Duration::from_millis(499), I));
        assert!(gate.due(t0 + I, I));
        assert_eq!(gate.deadline(I), None);
        assert!(!gate.due(t0 + I * 3, I));
    }

    #[test]
    fn a_keyframe_answers_the_deferred_requests() {
        let t0 = Instant::now();
        let mut gate = KeyframeGate::default();
        assert!(gate.request(t0, I));
        assert!(!gate.request(t0 + Duration::from_millis(10), I));
        gate.keyframe_seen();
        assert_eq!(gate.deadline(I), None);
        assert!(gate.request(t0 + I, I));
    }
}
