//! What the SFU does with its participants' events: tracks published and unpublished,
//! subscriptions, keyframe requests sent to the publisher. Packets themselves are
//! [`super::forwarding`]'s.

use std::{sync::Arc, time::Instant};

use str0m::{
    Event, IceConnectionState,
    bwe::BweKind,
    media::{Direction, KeyframeRequestKind, MediaKind, Mid, Rid},
};

use super::{Pid, Sfu};
use crate::{
    SfuError, ToPeer, TrackId, TrackKind,
    allocator::Request,
    arrivals::Arrivals,
    keyframe::KeyframeGates,
    participant::{Subscription, guarded},
    rate::RateMeter,
    track::{Track, order_rids},
};

impl Sfu {
    pub(super) fn on_event(&mut self, now: Instant, pid: Pid, event: Event) {
        match event {
            Event::MediaAdded(added) if receives(added.direction) => {
                // The publisher's simulcast layers are what the SFU receives.
                let rids = added
                    .simulcast
                    .map(|s| s.recv.into_iter().map(|l| l.rid).collect())
                    .unwrap_or_default();
                self.publish(now, pid, added.mid, added.kind, order_rids(rids));
            }
            Event::MediaChanged(changed) if !receives(changed.direction) => {
                self.unpublish_mid(pid, changed.mid);
            }
            Event::KeyframeRequest(req) => {
                // A keyframe of the layer the subscription is moving to repairs its stream
                // and switches it; one receiving nothing (paused) needs none.
                let asked = self.participants.get(&pid).and_then(|p| {
                    let s = p.subscriptions.iter().find(|s| s.mid() == Some(req.mid))?;
                    Some((s.track.clone(), s.layer.target()?))
                });
                if let Some((track, layer)) = asked {
                    self.request_keyframe(now, &track, Some(layer));
                }
            }
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                self.estimated(now, pid, estimate.as_u64());
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                // No ICE restart yet: the peer is told and offers again.
                self.work
                    .push_back(super::Work::Failed(pid, "ICE disconnected".into()));
            }
            _ => {}
        }
    }

    /// A participant's offer added an m-line it sends on: a new track in the room.
    fn publish(&mut self, now: Instant, pid: Pid, mid: Mid, kind: MediaKind, rids: Vec<Rid>) {
        let max = self.config.max_published_tracks;
        let Some(participant) = self.participants.get_mut(&pid) else {
            return;
        };
        if participant.published_on(mid).is_some() {
            return;
        }
        if participant.published.len() >= max {
            self.signal(
                pid,
                ToPeer::Error(SfuError::TooManyTracks(format!(
                    "m-line {mid} is not forwarded: at most {max} published tracks"
                ))),
            );
            return;
        }
        let id = TrackId::new(self.next_track);
        self.next_track += 1;
        participant.published.push((mid, id.clone()));
        let tag = participant.tags.get(&*mid).cloned();
        let track = Track {
            id_text: id.text(),
            owner: pid,
            peer: participant.peer.clone(),
            room: participant.room.clone(),
            mid,
            kind: match kind {
                MediaKind::Audio => TrackKind::Audio,
                MediaKind::Video => TrackKind::Video,
            },
            keyframes: KeyframeGates::new(rids.len()),
            muted: false,
            arrivals: (!rids.is_empty()).then(|| Arrivals::new(rids.len(), now)),
            rates: vec![RateMeter::default(); rids.len().max(1)],
            rids,
            told_layers: None,
            tag,
        };
        let info = track.info();
        let room = track.room.clone();
        self.tracks.insert(id.clone(), track);
        // The publisher's own copy names the m-line: its one way to learn the track's id.
        let own = crate::TrackInfo {
            mid: Some(mid.to_string()),
            ..info.clone()
        };
        self.signal(pid, ToPeer::TrackPublished(own));
        for other in self.members_except(&room, pid) {
            self.signal(other, ToPeer::TrackPublished(info.clone()));
            let p = self.participants.get_mut(&other).expect("member is live");
            if p.rtc.is_some() {
                p.subscriptions
                    .push(Subscription::new(id.clone(), info.peer.clone(), info.kind));
                self.dirty.insert(other);
            }
        }
    }

    fn unpublish_mid(&mut self, pid: Pid, mid: Mid) {
        let track = self
            .participants
            .get(&pid)
            .and_then(|p| p.published_on(mid).cloned());
        if let Some(track) = track {
            self.unpublish(&track);
        }
    }

    /// A track is gone: the room is told, subscribers' m-lines are stopped.
    fn unpublish(&mut self, id: &TrackId) {
        let Some(track) = self.tracks.remove(id) else {
            return;
        };
        if let Some(p) = self.participants.get_mut(&track.owner) {
            p.published.retain(|(_, t)| t != id);
        }
        if track.kind == TrackKind::Audio {
            self.unhear(&track.room, &track.peer);
        }
        for other in self.members_except(&track.room, track.owner) {
            self.signal(
                other,
                ToPeer::TrackUnpublished {
                    peer: track.peer.clone(),
                    track: id.clone(),
                },
            );
            let p = self.participants.get_mut(&other).expect("member is live");
            p.subscriptions.retain_mut(|s| s.track != *id || s.stop());
            self.dirty.insert(other);
        }
    }

    /// Subscribes a participant whose media session just started to every track in its room
    /// it has not declined.
    pub(super) fn subscribe_to_room(&mut self, pid: Pid) {
        let Some(p) = self.participants.get(&pid) else {
            return;
        };
        let wanted: Vec<Subscription> = self
            .tracks
            .iter()
            .filter(|(id, t)| t.room == p.room && t.owner != pid && !p.declined.contains(*id))
            .map(|(id, t)| Subscription::new(id.clone(), t.peer.clone(), t.kind))
            .collect();
        let p = self.participants.get_mut(&pid).expect("checked above");
        p.subscriptions = wanted;
    }

    /// The peer's `subscribe` message.
    pub(super) fn subscribe(
        &mut self,
        now: Instant,
        pid: Pid,
        tracks: Vec<TrackId>,
        subscribe: bool,
        view: Option<Request>,
    ) -> Result<(), SfuError> {
        let p = self.participants.get(&pid).expect("pid is live");
        for id in &tracks {
            if !self
                .tracks
                .get(id)
                .is_some_and(|t| t.room == p.room && t.owner != pid)
            {
                return Err(SfuError::UnknownTrack(id.to_string()));
            }
        }
        let p = self.participants.get_mut(&pid).expect("pid is live");
        for id in tracks {
            if let Some(view) = view {
                p.views.insert(id.clone(), view);
            }
            let existing = p.subscriptions.iter().position(|s| s.track == id);
            if subscribe {
                p.declined.remove(&id);
                if existing.is_none() && p.rtc.is_some() {
                    let t = &self.tracks[&id];
                    p.subscriptions
                        .push(Subscription::new(id, t.peer.clone(), t.kind));
                }
            } else {
                if let Some(i) = existing
                    && !p.subscriptions[i].stop()
                {
                    p.subscriptions.remove(i);
                }
                p.declined.insert(id);
            }
        }
        self.dirty.insert(pid);
        if view.is_some() {
            self.reallocate(now, pid);
        }
        Ok(())
    }

    /// Subscribers need a keyframe of `id`'s `layer` (`None`: of every layer they are on or
    /// moving to; a track without layers has the one layer 0): asked of the publisher at most
    /// once per interval and layer, with the requests in between answered by one more at the
    /// interval's end ([`crate::keyframe`]).
    pub(super) fn request_keyframe(&mut self, now: Instant, id: &TrackId, layer: Option<usize>) {
        let interval = self.config.keyframe_interval;
        let layers = match layer {
            Some(layer) => vec![layer],
            None => self.wanted_layers(id),
        };
        let Some(track) = self.tracks.get_mut(id) else {
            return;
        };
        if track.kind != TrackKind::Video {
            return;
        }
        let mut send = Vec::new();
        for layer in layers {
            if track.keyframes.request(layer, now, interval) {
                send.push(layer);
            } else {
                self.counts.keyframe_requests_coalesced += 1;
            }
        }
        if !send.is_empty() {
            self.send_keyframe_request(id, &send);
        }
    }

    /// Asks `id`'s publisher for a keyframe of each of `layers`, at once.
    pub(super) fn send_keyframe_request(&mut self, id: &TrackId, layers: &[usize]) {
        let Some(track) = self.tracks.get(id) else {
            return;
        };
        let (owner, mid) = (track.owner, track.mid);
        let rids: Vec<Option<Rid>> = if track.rids.is_empty() {
            vec![None]
        } else {
            (layers.iter())
                .filter_map(|l| track.rids.get(*l).map(|r| Some(*r)))
                .collect()
        };
        let Some(rtc) = self
            .participants
            .get_mut(&owner)
            .and_then(|p| p.rtc.as_mut())
        else {
            return;
        };
        // A simulcast track is asked per layer. A layer with no receive stream yet has sent no
        // packet; it starts with a keyframe anyway. PLI is negotiated with every video codec the
        // SFU accepts.
        let sent = guarded(|| {
            let mut direct = rtc.direct_api();
            for rid in &rids {
                if let Some(stream) = direct.stream_rx_by_mid(mid, *rid) {
                    stream.request_keyframe(KeyframeRequestKind::Pli);
                }
            }
            Ok(())
        });
        match sent {
            Ok(()) => {
                self.counts.keyframe_requests_sent += 1;
                self.drain(owner)
            }
            Err(reason) => self.work.push_back(super::Work::Failed(owner, reason)),
        }
    }

    /// Closes a participant's media session: its tracks are unpublished, its subscriptions and
    /// address forgotten. The participant stays a member.
    pub(super) fn drop_media(&mut self, now: Instant, pid: Pid) {
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        p.rtc = None;
        p.pending = None;
        p.next_timeout = None;
        p.clock = None;
        p.subscriptions.clear();
        let room = p.room.clone();
        let published: Vec<TrackId> = p.published.iter().map(|(_, t)| t.clone()).collect();
        self.by_addr.retain(|_, owner| *owner != pid);
        self.work.retain(|w| match w {
            super::Work::Event(owner, _)
            | super::Work::Rtp(owner, _)
            | super::Work::Failed(owner, _) => *owner != pid,
        });
        for track in published {
            self.unpublish(&track);
        }
        self.update_layers(now, &room);
    }

    pub(super) fn members_except(&self, room: &Arc<str>, pid: Pid) -> Vec<Pid> {
        self.rooms
            .get(room)
            .map(|m| m.values().copied().filter(|p| *p != pid).collect())
            .unwrap_or_default()
    }
}

/// Whether the SFU receives on an m-line with this direction (its own view of it).
fn receives(direction: Direction) -> bool {
    matches!(direction, Direction::RecvOnly | Direction::SendRecv)
}
