//! Arrivals: which simulcast layers of a published track really arrive.
//!
//! A browser offers three layers but may send fewer: it encodes only what the camera's size
//! allows, and drops the top layers when its CPU or uplink cannot keep up. A subscriber moved to
//! a layer that never comes would wait for its keyframe forever, its picture frozen. So every
//! layer the SFU counts on (one its publisher was told someone receives) must show a frame
//! within [`STALL`]; one that does not is *stalled*, and the track's usable layers are cut below
//! it, so subscribers are moved to one that arrives. A stalled layer is tried again after
//! [`RETRY`] (the publisher may have recovered); a frame of it ends the stall at once.
//!
//! Layers no subscriber receives are paused by their publisher (`layers`), so their silence is
//! expected and never a stall.

use std::time::{Duration, Instant};

/// How long a layer the SFU counts on may go without a frame before it is stalled.
pub const STALL: Duration = Duration::from_millis(1500);
/// How long a stalled layer stays out before it is tried again.
pub const RETRY: Duration = Duration::from_secs(10);

/// One layer's record.
#[derive(Debug, Clone, Copy, Default)]
struct Layer {
    /// Its last frame.
    last: Option<Instant>,
    /// Since when the SFU counts on it (its publisher was told it is active); `None` while it
    /// is paused.
    expected_since: Option<Instant>,
    /// When it was found stalled; it is out until `RETRY` after that, or its next frame.
    stalled_at: Option<Instant>,
}

/// The arrivals of one simulcast track's layers, lowest first.
#[derive(Debug, Clone)]
pub(crate) struct Arrivals {
    layers: Vec<Layer>,
}

impl Arrivals {
    /// A track with `layers` layers, every one counted on from `now` (until told otherwise,
    /// publishers send them all).
    pub fn new(layers: usize, now: Instant) -> Self {
        let layer = Layer {
            expected_since: Some(now),
            ..Layer::default()
        };
        Arrivals {
            layers: vec![layer; layers],
        }
    }

    /// A frame of `layer` arrived. Whether that ended a stall (the usable layers may grow).
    pub fn frame(&mut self, layer: usize, now: Instant) -> bool {
        let Some(l) = self.layers.get_mut(layer) else {
            return false;
        };
        l.last = Some(now);
        l.stalled_at.take().is_some()
    }

    /// The publisher was told which layers someone receives (`watched`): those are counted on
    /// from `now`, unless they already were; the others are not.
    pub fn expect(&mut self, watched: &[bool], now: Instant) {
        for (l, w) in self.layers.iter_mut().zip(watched) {
            match (w, l.expected_since) {
                (true, None) => l.expected_since = Some(now),
                (false, _) => l.expected_since = None,
                (true, Some(_)) => {}
            }
        }
    }

    /// Finds the layers stalled at `now` and lets those whose retry time has come back in.
    /// Whether any layer went out or came back (the usable layers changed).
    pub fn check(&mut self, now: Instant) -> bool {
        let mut changed = false;
        for l in &mut self.layers {
            match l.stalled_at {
                Some(at) if now >= at + RETRY => {
                    l.stalled_at = None;
                    // Counted on afresh: it gets a whole `STALL` to show a frame.
                    l.expected_since = l.expected_since.map(|_| now);
                    changed = true;
                }
                Some(_) => {}
                None => {
                    if l.silent_since().is_some_and(|s| now >= s + STALL) {
                        l.stalled_at = Some(now);
                        changed = true;
                    }
                }
            }
        }
        changed
    }

    /// How many layers, from the lowest, subscribers may be given: up to the first stalled
    /// one, and never fewer than one (with no layer arriving at all, the lowest is still the
    /// one to ask for).
    pub fn usable(&self) -> usize {
        let arriving = self.layers.iter().take_while(|l| l.stalled_at.is_none());
        arriving.count().max(1).min(self.layers.len())
    }

    /// When [`Arrivals::check`] could next change something.
    pub fn deadline(&self) -> Option<Instant> {
        let each = self.layers.iter().filter_map(|l| match l.stalled_at {
            Some(at) => Some(at + RETRY),
            None => l.silent_since().map(|s| s + STALL),
        });
        each.min()
    }
}

impl Layer {
    /// Since when a layer counted on has been silent: its last frame, or when it began to be
    /// counted on if that is later. `None` when it is not counted on.
    fn silent_since(&self) -> Option<Instant> {
        let since = self.expected_since?;
        Some(self.last.map_or(since, |last| last.max(since)))
    }
}

#[cfg(test)]
mod tests;
