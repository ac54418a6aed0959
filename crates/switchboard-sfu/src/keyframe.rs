//! KeyframeGates: coalesce subscribers' keyframe requests for one published track, one gate
//! per simulcast layer.
//!
//! Every subscriber that loses a packet or joins late asks for a keyframe; forwarding each
//! request would make the publisher send keyframes back to back (each several times a normal
//! frame). A gate lets one request through per interval and remembers that more were asked
//! for in between, so exactly one more goes out when the interval ends (mediasoup's
//! KeyFrameRequestManager and LiveKit's `pli_throttle` do the same).
//!
//! Each layer of a simulcast track is its own stream with its own keyframes, so each has its
//! own gate: a keyframe of the 180p layer answers nobody waiting for the 720p one, and a
//! subscriber asking for 180p is not held back because 720p was just asked for. A track sent
//! without layers has one gate.

use std::time::{Duration, Instant};

/// The gates of one track's layers; see the module doc.
#[derive(Debug)]
pub(crate) struct KeyframeGates(Vec<KeyframeGate>);

impl KeyframeGates {
    /// Gates for a track of `layers` layers (0 for one sent without layers: one gate).
    pub fn new(layers: usize) -> Self {
        KeyframeGates(
            (0..layers.max(1))
                .map(|_| KeyframeGate::default())
                .collect(),
        )
    }

    /// Subscribers ask for a keyframe of `layer`; `true` if the request should go to the
    /// publisher now. A layer the track does not have is never asked for.
    pub fn request(&mut self, layer: usize, now: Instant, interval: Duration) -> bool {
        (self.0.get_mut(layer)).is_some_and(|gate| gate.request(now, interval))
    }

    /// A keyframe of `layer` arrived: requests of that layer waiting for one are answered.
    pub fn keyframe_seen(&mut self, layer: usize) {
        if let Some(gate) = self.0.get_mut(layer) {
            gate.keyframe_seen();
        }
    }

    /// When the next deferred request is due.
    pub fn deadline(&self, interval: Duration) -> Option<Instant> {
        self.0.iter().filter_map(|g| g.deadline(interval)).min()
    }

    /// The layers whose deferred request is due at `now` (each counted as sent).
    pub fn due(&mut self, now: Instant, interval: Duration) -> Vec<usize> {
        (self.0.iter_mut().enumerate())
            .filter_map(|(layer, gate)| gate.due(now, interval).then_some(layer))
            .collect()
    }
}

/// One layer's gate.
#[derive(Debug, Default)]
struct KeyframeGate {
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

    #[test]
    fn each_layer_is_gated_and_answered_alone() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut gates = KeyframeGates::new(3);
        assert!(gates.request(2, t0, I));
        // The 720p layer was just asked for; 180p was not.
        assert!(gates.request(0, ms(10), I));
        assert!(!gates.request(2, ms(20), I));
        assert!(!gates.request(0, ms(30), I));
        // A keyframe of 180p answers 180p's waiting request, not 720p's.
        gates.keyframe_seen(0);
        assert_eq!(gates.deadline(I), Some(t0 + I));
        assert_eq!(gates.due(ms(499), I), Vec::<usize>::new());
        assert_eq!(gates.due(t0 + I, I), vec![2]);
        assert_eq!(gates.deadline(I), None);
        // A layer the track does not have is never asked for.
        assert!(!gates.request(3, t0 + I * 4, I));
        assert!(KeyframeGates::new(0).request(0, t0, I));
    }
}
