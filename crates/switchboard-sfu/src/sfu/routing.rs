//! What the SFU does with its participants' events: tracks published and unpublished,
//! subscriptions, frames forwarded, keyframe requests sent to the publisher.

use std::{sync::Arc, time::Instant};

use str0m::{
    Event, IceConnectionState, RtcError,
    bwe::BweKind,
    media::{Direction, KeyframeRequestKind, MediaData, MediaKind, MediaTime, Mid, Rid},
};

use super::{Pid, Sfu};
use crate::{
    SfuError, ToPeer, TrackId, TrackKind,
    allocator::Request,
    arrivals::Arrivals,
    layer_switch::Verdict,
    participant::{Subscription, guarded},
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
            Event::MediaData(data) => self.forward(now, pid, data),
            Event::KeyframeRequest(req) => {
                let track = self.participants.get(&pid).and_then(|p| {
                    p.subscriptions
                        .iter()
                        .find(|s| s.mid() == Some(req.mid))
                        .map(|s| s.track.clone())
                });
                if let Some(track) = track {
                    self.request_keyframe(now, &track);
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
            keyframes: Default::default(),
            muted: false,
            arrivals: (!rids.is_empty()).then(|| Arrivals::new(rids.len(), now)),
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

    /// A frame from a publisher goes to every subscriber whose m-line for it is open.
    fn forward(&mut self, now: Instant, pid: Pid, data: MediaData) {
        let Some(id) = self
            .participants
            .get(&pid)
            .and_then(|p| p.published_on(data.mid).cloned())
        else {
            return;
        };
        // A muted track's publisher may go on sending (a host muted it, or it has not caught
        // up): nothing of it goes further, and it does not speak.
        let Some(track) = self.tracks.get(&id).filter(|t| !t.muted) else {
            return;
        };
        if track.kind == TrackKind::Audio {
            self.hear(now, &id, &data);
        }
        let Some(track) = self.tracks.get_mut(&id) else {
            return;
        };
        if data.is_keyframe() {
            track.keyframes.keyframe_seen();
        }
        if !data.contiguous && track.kind == TrackKind::Video {
            // Frames were lost between the publisher and the SFU: subscribers cannot decode
            // until the next keyframe.
            self.request_keyframe(now, &id);
        }
        let room = self.tracks[&id].room.clone();
        let layer = self.tracks[&id].layer_of(data.rid);
        if layer.is_none() && !self.tracks[&id].rids.is_empty() {
            // A rid the publisher did not offer: no subscriber could be switched to it.
            return;
        }
        let arrivals = self.tracks.get_mut(&id).and_then(|t| t.arrivals.as_mut());
        // A stalled layer that is back may be given to subscribers again.
        let back = match (layer, arrivals) {
            (Some(l), Some(a)) => a.frame(l, now),
            _ => false,
        };
        let mut switched = false;
        for other in self.members_except(&room, pid) {
            let p = self.participants.get_mut(&other).expect("member is live");
            let Some(sub) = p.subscriptions.iter_mut().find(|s| s.track == id) else {
                continue;
            };
            let Some(mid) = sub.open_mid() else {
                continue;
            };
            // A simulcast track sends this subscriber one layer, switched on keyframes.
            let was = sub.layer.current();
            let time = match layer {
                None => data.time,
                Some(layer) => {
                    let rate = data.time.frequency();
                    match sub.layer.on_frame(
                        layer,
                        data.is_keyframe(),
                        data.time.numer(),
                        u64::from(rate.get()),
                        data.network_time,
                    ) {
                        Verdict::Forward(t) => MediaTime::new(t, rate),
                        Verdict::Drop => continue,
                    }
                }
            };
            if was.is_some() && sub.layer.current() != was {
                self.counts.layer_switches += 1;
                switched = true;
            }
            let Some(rtc) = p.rtc.as_mut() else {
                continue;
            };
            let written = guarded(|| {
                let Some(writer) = rtc.writer(mid) else {
                    return Ok(());
                };
                // The subscriber negotiated its own payload type for the codec.
                let Some(pt) = writer.match_params(data.params) else {
                    return Ok(());
                };
                writer.write(pt, data.network_time, time, data.data.clone())
            });
            match written {
                Ok(()) => {
                    self.counts.forwarded_frames += 1;
                    self.counts.forwarded_bytes += data.data.len() as u64;
                    self.drain(other)
                }
                Err(reason) => self.work.push_back(super::Work::Failed(other, reason)),
            }
        }
        if switched {
            // A layer left behind may have no one left on it.
            self.update_layers(now, &room);
        }
        if back {
            self.reallocate_track(now, &id);
        }
    }

    /// A subscriber needs a keyframe of `track`: asked of the publisher at most once per
    /// interval, with the requests in between answered by one more at the interval's end.
    pub(super) fn request_keyframe(&mut self, now: Instant, id: &TrackId) {
        let interval = self.config.keyframe_interval;
        let Some(track) = self.tracks.get_mut(id) else {
            return;
        };
        if track.kind != TrackKind::Video {
            return;
        }
        if track.keyframes.request(now, interval) {
            self.send_keyframe_request(id);
        } else {
            self.counts.keyframe_requests_coalesced += 1;
        }
    }

    pub(super) fn send_keyframe_request(&mut self, id: &TrackId) {
        let Some(track) = self.tracks.get(id) else {
            return;
        };
        let (owner, mid) = (track.owner, track.mid);
        let rids = self.wanted_rids(id);
        let Some(rtc) = self
            .participants
            .get_mut(&owner)
            .and_then(|p| p.rtc.as_mut())
        else {
            return;
        };
        // A simulcast track is asked per layer, for the layers subscribers are moving to or
        // on; asking without a rid is an error in str0m when the m-line has layers.
        let sent = guarded(|| {
            for rid in &rids {
                match rtc.writer(mid) {
                    Some(mut writer)
                        if writer.is_request_keyframe_possible(KeyframeRequestKind::Pli) =>
                    {
                        match writer.request_keyframe(*rid, KeyframeRequestKind::Pli) {
                            // No packet of this layer has arrived yet; a layer starts with a
                            // keyframe anyway.
                            Err(RtcError::NoReceiverSource(_)) => {}
                            other => other?,
                        }
                    }
                    _ => {}
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
            super::Work::Event(owner, _) | super::Work::Failed(owner, _) => *owner != pid,
        });
        for track in published {
            self.unpublish(&track);
        }
        self.update_layers(now, &room);
    }

    fn members_except(&self, room: &Arc<str>, pid: Pid) -> Vec<Pid> {
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
