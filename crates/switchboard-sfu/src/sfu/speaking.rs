//! What the SFU does with audio levels: each room's [`Speakers`] is fed the level of every
//! audio packet forwarded (one Opus frame each) and polled on the SFU's timer; a changed list goes to every member.

use std::time::Instant;

use super::Sfu;
use crate::{ToPeer, TrackId, speakers::Speakers};

impl Sfu {
    /// An audio packet of `track` arrived with this RFC 6464 level (if the publisher set
    /// one): it counts toward its publisher speaking.
    pub(super) fn hear(&mut self, now: Instant, track: &TrackId, level: Option<i8>) {
        let Some(track) = self.tracks.get(track) else {
            return;
        };
        // str0m gives the RFC 6464 level as -dBov (0 loudest, -127 silence).
        let level = level.map(|l| l.unsigned_abs().min(127));
        let config = self.config.speakers;
        self.speakers
            .entry(track.room.clone())
            .or_insert_with(|| Speakers::new(config))
            .frame(now, &track.peer, level);
    }

    /// A publisher's audio stopped (unpublished or its media dropped): it stops speaking.
    pub(super) fn unhear(&mut self, room: &str, peer: &str) {
        if let Some(speakers) = self.speakers.get_mut(room) {
            speakers.forget(peer);
        }
    }

    /// Ends the speaker intervals that are over; a changed list goes to the room's members.
    pub(super) fn report_speakers(&mut self, now: Instant) {
        let changed: Vec<_> = self
            .speakers
            .iter_mut()
            .filter_map(|(room, s)| s.poll(now).map(|peers| (room.clone(), peers)))
            .collect();
        for (room, peers) in changed {
            self.broadcast(&room, ToPeer::Speakers { peers });
        }
    }
}
