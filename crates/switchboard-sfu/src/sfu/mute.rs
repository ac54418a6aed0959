//! Mute state: a member mutes or unmutes its own tracks, a host mutes another member's; the
//! room (the publisher included) hears of every change as `track_state`.
//!
//! The SFU enforces it: a muted track's packets are not forwarded, so a host's mute holds even
//! if the publisher's browser keeps sending. Only the publisher unmutes, so nobody can turn a
//! member's microphone or camera back on but the member.

use std::time::Instant;

use super::{Pid, Sfu};
use crate::{SfuError, ToPeer, TrackId, TrackKind};

impl Sfu {
    /// The peer's `mute`; `host` says whether it is a host of the room.
    pub(super) fn mute(
        &mut self,
        now: Instant,
        pid: Pid,
        id: &TrackId,
        muted: bool,
        host: bool,
    ) -> Result<(), SfuError> {
        let p = self.participants.get(&pid).expect("pid is live");
        let by = p.peer.clone();
        let Some(track) = self.tracks.get_mut(id).filter(|t| t.room == p.room) else {
            return Err(SfuError::UnknownTrack(id.to_string()));
        };
        if track.owner != pid && !(host && muted) {
            return Err(SfuError::Forbidden(if muted {
                "only a host may mute another member's track".into()
            } else {
                "only its publisher may unmute a track".into()
            }));
        }
        if track.muted == muted {
            return Ok(());
        }
        track.muted = muted;
        let (room, peer, kind) = (track.room.clone(), track.peer.clone(), track.kind);
        if muted {
            // Forwarding resumes where it stopped, without a gap of the muted packets.
            for p in self.participants.values_mut() {
                for sub in p.subscriptions.iter_mut().filter(|s| s.track == *id) {
                    sub.rewrite.restart();
                }
            }
        }
        if kind == TrackKind::Audio && muted {
            self.unhear(&room, &peer);
        }
        if kind == TrackKind::Video && !muted {
            // Subscribers have had no frame since the mute: they need a keyframe to show one.
            self.request_keyframe(now, id, None);
        }
        self.broadcast(
            &room,
            ToPeer::TrackState {
                peer,
                track: id.clone(),
                muted,
                by,
            },
        );
        Ok(())
    }
}
