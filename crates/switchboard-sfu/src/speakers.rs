//! Speakers: who is talking in one room, from the audio levels publishers put on their packets.
//!
//! Browsers mark every audio packet with its level (RFC 6464: 0 is the loudest, 127 silence,
//! in -dBov), which str0m exposes per frame. The SFU does not decode audio; it counts, per
//! publisher, the frames louder than a threshold over an interval. A publisher is speaking in
//! an interval if enough of its frames were loud (a cough or a door is one or two frames);
//! speakers are ordered loudest first. The list is reported at most once an interval and only
//! when it changed, so a room of people talking sends about two small messages a second, and a
//! quiet one none.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

/// The detector's tuning.
#[derive(Debug, Clone, Copy)]
pub struct SpeakerConfig {
    /// How often the list may change.
    pub interval: Duration,
    /// A frame at this level or louder counts as speech (RFC 6464 level: lower is louder).
    pub loud_level: u8,
    /// The share of an interval's frames that must be loud, in percent.
    pub min_loud_percent: u8,
}

impl Default for SpeakerConfig {
    fn default() -> Self {
        SpeakerConfig {
            interval: Duration::from_millis(500),
            // Speech at a normal distance from a laptop microphone is about -30 to -45 dBov;
            // room noise is below -55.
            loud_level: 50,
            min_loud_percent: 30,
        }
    }
}

/// One publisher's frames in the current interval.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    frames: u32,
    loud: u32,
    /// Sum of the loud frames' loudness (127 - level), to order speakers.
    loudness: u64,
}

/// The speakers of one room; see the module doc.
#[derive(Debug)]
pub struct Speakers {
    config: SpeakerConfig,
    tallies: HashMap<Arc<str>, Tally>,
    /// The list last reported.
    reported: Vec<Arc<str>>,
    /// When the current interval ends; `None` until the first frame.
    interval_end: Option<Instant>,
}

impl Speakers {
    /// No one speaking yet.
    pub fn new(config: SpeakerConfig) -> Self {
        Speakers {
            config,
            tallies: HashMap::new(),
            reported: Vec::new(),
            interval_end: None,
        }
    }

    /// An audio frame from `peer` with this RFC 6464 level (`None`: the publisher sends none,
    /// which counts as silence).
    pub fn frame(&mut self, now: Instant, peer: &Arc<str>, level: Option<u8>) {
        self.interval_end.get_or_insert(now + self.config.interval);
        let tally = self.tallies.entry(peer.clone()).or_default();
        tally.frames += 1;
        if let Some(level) = level.filter(|l| *l <= self.config.loud_level) {
            tally.loud += 1;
            tally.loudness += u64::from(127 - level.min(127));
        }
    }

    /// `peer` stopped publishing audio (muted, unpublished, left): it is no longer speaking
    /// from the next report.
    pub fn forget(&mut self, peer: &str) {
        self.tallies.remove(peer);
    }

    /// When [`Speakers::poll`] should next be called.
    pub fn deadline(&self) -> Option<Instant> {
        self.interval_end
    }

    /// Ends the interval if it is over: the new list of speakers, loudest first, if it differs
    /// from the last one reported.
    pub fn poll(&mut self, now: Instant) -> Option<Vec<Arc<str>>> {
        if self.interval_end.is_none_or(|end| now < end) {
            return None;
        }
        let percent = u32::from(self.config.min_loud_percent);
        let mut speaking: Vec<(&Arc<str>, u64)> = self
            .tallies
            .iter()
            .filter(|(_, t)| t.frames > 0 && t.loud * 100 >= t.frames * percent)
            .map(|(peer, t)| (peer, t.loudness / u64::from(t.loud)))
            .collect();
        // Loudest first; by peer id among equals, so the order does not depend on the map.
        speaking.sort_by(|(a, la), (b, lb)| lb.cmp(la).then_with(|| a.cmp(b)));
        let list: Vec<Arc<str>> = speaking.into_iter().map(|(p, _)| p.clone()).collect();
        // A room where nobody sends audio stops asking for time until a frame comes.
        self.interval_end = (!self.tallies.is_empty()).then(|| now + self.config.interval);
        self.tallies.clear();
        if list == self.reported {
            return None;
        }
        self.reported = list.clone();
        Some(list)
    }
}

#[cfg(test)]
mod tests;
