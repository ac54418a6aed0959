//! LayerSwitch: which simulcast layer's packets go to one subscriber's m-line, and when that
//! changes.
//!
//! The allocator picks a target layer; the subscriber keeps receiving the layer it has until a
//! keyframe of the target arrives, because a decoder cannot start a stream mid-way (each
//! simulcast layer is its own encoding). The switch asks for that keyframe at once, up or down:
//! waiting for one the encoder sends on its own can take many seconds, and a keyframe of a
//! lower layer is cheap. Pausing needs no keyframe and takes effect at once.
//!
//! Each layer has its own SSRC, sequence numbers, timestamps and VP8 picture ids; making the
//! subscriber's stream continuous across a switch is [`crate::rewrite`]'s part.

/// One subscription's layer state; see the module doc.
#[derive(Debug, Clone, Default)]
pub struct LayerSwitch {
    /// The layer forwarded now.
    current: Option<usize>,
    /// The layer the allocator chose.
    target: Option<usize>,
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

    /// Whether a packet of `layer` goes to the subscriber; `keyframe`: it starts a keyframe,
    /// which moves the subscription to `layer` if that is its target.
    pub fn on_packet(&mut self, layer: usize, keyframe: bool) -> bool {
        if self.target == Some(layer) && self.current != Some(layer) && keyframe {
            self.current = Some(layer);
        }
        self.current == Some(layer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_switch_waits_for_the_target_layers_keyframe() {
        let mut switch = LayerSwitch::default();
        assert_eq!(switch.set_target(Some(0)), Some(0));
        // Layer 0 starts on its keyframe; layer 1 is not wanted.
        assert!(!switch.on_packet(1, true));
        assert!(!switch.on_packet(0, false), "no start mid-stream");
        assert!(switch.on_packet(0, true));
        assert!(switch.on_packet(0, false));

        // Up to layer 1: layer 0 goes on until layer 1's keyframe.
        assert_eq!(switch.set_target(Some(1)), Some(1));
        for _ in 0..5 {
            assert!(!switch.on_packet(1, false));
            assert!(switch.on_packet(0, false));
        }
        assert_eq!(switch.current(), Some(0));
        assert!(switch.on_packet(1, true));
        assert!(!switch.on_packet(0, false));
        assert!(
            !switch.on_packet(0, true),
            "a keyframe of the old layer does not go back"
        );
        assert_eq!(switch.current(), Some(1));
        assert!(switch.on_packet(1, false));
    }

    #[test]
    fn down_also_waits_for_a_keyframe_and_pause_is_at_once() {
        let mut switch = LayerSwitch::default();
        switch.set_target(Some(2));
        assert!(switch.on_packet(2, true));
        assert_eq!(switch.set_target(Some(0)), Some(0));
        assert!(switch.on_packet(2, false));
        assert!(!switch.on_packet(0, false));
        assert!(switch.on_packet(0, true));
        assert!(!switch.on_packet(2, false));

        assert_eq!(switch.set_target(None), None);
        assert_eq!(switch.current(), None);
        assert!(!switch.on_packet(0, true));
        // Choosing the layer already forwarded asks for nothing.
        switch.set_target(Some(0));
        switch.on_packet(0, true);
        assert_eq!(switch.set_target(Some(0)), None);
    }
}
