//! LayerSwitch: which simulcast layer's frames go to one subscriber's m-line, and when that
//! changes.
//!
//! The allocator picks a target layer; the subscriber keeps receiving the layer it has until a
//! keyframe of the target arrives, because a decoder cannot start a stream mid-way (each
//! simulcast layer is its own encoding). The switch asks for that keyframe at once, up or down:
//! waiting for one the encoder sends on its own can take many seconds, and a keyframe of a
//! lower layer is cheap. Pausing needs no keyframe and takes effect at once.
//!
//! Each layer has its own RTP timestamp base, so the subscriber's timestamps are rebased on a
//! switch: the first frame of the new layer follows the last one forwarded by the wall-clock
//! time between them, and the receiver's jitter buffer sees one continuous stream.

use std::time::Instant;

/// What a frame does on a subscriber's m-line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it with this RTP timestamp (in the track's clock rate).
    Forward(u64),
    /// Not for this subscriber now.
    Drop,
}

/// One subscription's layer state; see the module doc.
#[derive(Debug, Clone, Default)]
pub struct LayerSwitch {
    /// The layer forwarded now.
    current: Option<usize>,
    /// The layer the allocator chose.
    target: Option<usize>,
    /// Added (wrapping) to the incoming timestamp of `current`.
    offset: u64,
    /// The last timestamp sent and when its frame arrived.
    last: Option<(u64, Instant)>,
}

impl LayerSwitch {
    /// The layer forwarded now.
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    /// The layer the allocator chose (forwarded once its keyframe arrives).
    pub fn target(&self) -> Option<usize> {
        self.target
    }

    /// The allocator chose `target` (`None`: pause). Returns the layer a keyframe should be
    /// requested of, if the switch waits for one.
    pub fn set_target(&mut self, target: Option<usize>) -> Option<usize> {
        self.target = target;
        if target.is_none() {
            self.current = None;
        }
        target.filter(|t| self.current != Some(*t))
    }

    /// A frame of `layer` with RTP timestamp `time` (`rate` ticks a second) arrived `at`.
    pub fn on_frame(
        &mut self,
        layer: usize,
        keyframe: bool,
        time: u64,
        rate: u64,
        at: Instant,
    ) -> Verdict {
        if self.target == Some(layer) && self.current != Some(layer) && keyframe {
            self.offset = match self.last {
                // Continue after the last frame sent by the time that passed since, at least
                // one tick so the timestamps rise.
                Some((last_time, last_at)) => {
                    let elapsed = at.saturating_duration_since(last_at);
                    let ticks = (elapsed.as_micros() as u64).saturating_mul(rate) / 1_000_000;
                    last_time.wrapping_add(ticks.max(1)).wrapping_sub(time)
                }
                None => 0,
            };
            self.current = Some(layer);
        }
        if self.current != Some(layer) {
            return Verdict::Drop;
        }
        let out = time.wrapping_add(self.offset);
        self.last = Some((out, at));
        Verdict::Forward(out)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const RATE: u64 = 90_000;
    const FRAME: Duration = Duration::from_micros(33_333);

    /// Three layers of a 30 fps camera on a virtual clock, with independent timestamp bases.
    struct Publisher {
        t0: Instant,
        frame: u64,
    }

    impl Publisher {
        fn new() -> Self {
            Publisher {
                t0: Instant::now(),
                frame: 0,
            }
        }

        fn base(layer: usize) -> u64 {
            [1_000_000, 77_000_000, 3_000_000_000][layer]
        }

        /// The next frame time and each layer's timestamp for it.
        fn tick(&mut self) -> (Instant, impl Fn(usize) -> u64 + use<>) {
            let n = self.frame;
            self.frame += 1;
            (self.t0 + FRAME * n as u32, move |l| {
                Self::base(l) + n * 3_000
            })
        }
    }

    #[test]
    fn a_switch_waits_for_the_target_layers_keyframe() {
        let mut publisher = Publisher::new();
        let mut switch = LayerSwitch::default();
        assert_eq!(switch.set_target(Some(0)), Some(0));
        // Layer 0 starts on its keyframe; layer 1 is not wanted.
        let (at, ts) = publisher.tick();
        assert_eq!(switch.on_frame(1, true, ts(1), RATE, at), Verdict::Drop);
        assert_eq!(
            switch.on_frame(0, true, ts(0), RATE, at),
            Verdict::Forward(ts(0))
        );
        let (at, ts) = publisher.tick();
        assert_eq!(
            switch.on_frame(0, false, ts(0), RATE, at),
            Verdict::Forward(ts(0))
        );

        // Up to layer 1: layer 0 goes on until layer 1's keyframe.
        assert_eq!(switch.set_target(Some(1)), Some(1));
        let mut last = ts(0);
        for _ in 0..5 {
            let (at, ts) = publisher.tick();
            assert_eq!(switch.on_frame(1, false, ts(1), RATE, at), Verdict::Drop);
            assert_eq!(
                switch.on_frame(0, false, ts(0), RATE, at),
                Verdict::Forward(ts(0))
            );
            last = ts(0);
        }
        assert_eq!(switch.current(), Some(0));
        let (at, ts) = publisher.tick();
        // The keyframe is rebased to follow the last frame sent by one frame's time.
        let Verdict::Forward(first) = switch.on_frame(1, true, ts(1), RATE, at) else {
            panic!("the keyframe of the target is forwarded");
        };
        assert_eq!(first, last + 2_999);
        assert_eq!(switch.on_frame(0, false, ts(0), RATE, at), Verdict::Drop);
        assert_eq!(switch.current(), Some(1));
        let (at, ts) = publisher.tick();
        assert_eq!(
            switch.on_frame(1, false, ts(1), RATE, at),
            Verdict::Forward(first + 3_000)
        );
    }

    #[test]
    fn down_also_waits_for_a_keyframe_and_pause_is_at_once() {
        let mut publisher = Publisher::new();
        let mut switch = LayerSwitch::default();
        switch.set_target(Some(2));
        let (at, ts) = publisher.tick();
        assert!(matches!(
            switch.on_frame(2, true, ts(2), RATE, at),
            Verdict::Forward(_)
        ));
        assert_eq!(switch.set_target(Some(0)), Some(0));
        let (at, ts) = publisher.tick();
        assert!(matches!(
            switch.on_frame(2, false, ts(2), RATE, at),
            Verdict::Forward(_)
        ));
        assert_eq!(switch.on_frame(0, false, ts(0), RATE, at), Verdict::Drop);
        let (at, ts) = publisher.tick();
        assert!(matches!(
            switch.on_frame(0, true, ts(0), RATE, at),
            Verdict::Forward(_)
        ));
        assert_eq!(switch.on_frame(2, false, ts(2), RATE, at), Verdict::Drop);

        assert_eq!(switch.set_target(None), None);
        assert_eq!(switch.current(), None);
        let (at, ts) = publisher.tick();
        assert_eq!(switch.on_frame(0, true, ts(0), RATE, at), Verdict::Drop);
        // Choosing the layer already forwarded asks for nothing.
        switch.set_target(Some(0));
        let (at, ts) = publisher.tick();
        switch.on_frame(0, true, ts(0), RATE, at);
        assert_eq!(switch.set_target(Some(0)), None);
    }

    #[test]
    fn timestamps_wrap_like_rtp() {
        let t0 = Instant::now();
        let mut switch = LayerSwitch::default();
        switch.set_target(Some(0));
        assert_eq!(
            switch.on_frame(0, true, u64::MAX - 10, RATE, t0),
            Verdict::Forward(u64::MAX - 10)
        );
        switch.set_target(Some(1));
        assert_eq!(
            switch.on_frame(1, true, 5, RATE, t0 + FRAME),
            Verdict::Forward((u64::MAX - 10).wrapping_add(2_999))
        );
    }
}
