//! Simulcast in the SFU: which layer of each video track every subscriber receives, if any.
//!
//! A subscriber's simulcast layers are chosen by the [allocator](crate::allocator) over its
//! downlink (`SfuConfig::default_downlink_bps` until bandwidth estimation replaces it) whenever
//! its open subscriptions change or a track in its room goes away, and each subscription's
//! [`LayerSwitch`](crate::layer_switch::LayerSwitch) moves to the chosen layer on that layer's
//! next keyframe, asked for at once. Every layer costs its [measured](crate::rate) rate, with
//! hysteresis on the layer being sent; a video track sent without layers is one layer,
//! allocated like the others (so paused when not shown or when the downlink cannot carry it,
//! resumed on a keyframe). The same pass tells the subscriber's bandwidth estimation what its
//! subscriptions would take unlimited, the rate it probes up to.

use std::{collections::BTreeMap, time::Instant};

use super::{Pid, Sfu};
use crate::{
    StreamState, ToPeer, TrackId, TrackKind,
    allocator::{self, Allocation, Layer, Request, VideoSource, VideoTrack},
};

/// What an Opus stream is taken to need, with its packets' overhead, when a subscriber's
/// bandwidth estimation is told what to look for: browsers send voice at about 32 kbit/s.
const AUDIO_BITRATE: u64 = 50_000;

/// What a subscriber is taken to show every tile at until it says otherwise: 720p, so the
/// downlink alone decides.
const DEFAULT_TILE: Request = Request::Visible {
    width: 1280,
    height: 720,
};

impl Sfu {
    /// Chooses the layers of every video track `pid` receives; a layer it is to move to is
    /// asked of the publisher.
    pub(super) fn reallocate(&mut self, now: Instant, pid: Pid) {
        let Some(p) = self.participants.get(&pid) else {
            return;
        };
        let mut tracks = BTreeMap::new();
        let mut requests = Vec::new();
        // What the open audio subscriptions take, outside the allocation.
        let mut audio = 0;
        // What estimation should look for above the allocation's costs (below).
        let mut headroom = 0;
        for s in p.subscriptions.iter().filter(|s| s.open_mid().is_some()) {
            let Some(t) = self.tracks.get(&s.track) else {
                continue;
            };
            if t.kind == TrackKind::Audio {
                audio += AUDIO_BITRATE;
                continue;
            }
            let view = p.views.get(&s.track).copied().unwrap_or(DEFAULT_TILE);
            // Each layer costs its measured rate ([`crate::rate`]); until a whole window of it
            // is measured, its nominal rate (`SfuConfig::layers`), and a track without layers
            // a top layer's. Taken small, a room of large cameras starting together overfilled
            // every downlink for that second, and estimation, told to look for little, did not
            // probe (the bench's one-megabit room10 from its start: p99 0.6 s, against 44 ms).
            let nominal = &self.config.layers;
            let top = nominal[nominal.len() - 1];
            let measured = |l: usize, fallback: Layer| Layer {
                height: fallback.height,
                bitrate: t.rates[l].rate().unwrap_or(fallback.bitrate),
            };
            let rates: Vec<Layer> = if t.rids.is_empty() {
                vec![measured(
                    0,
                    Layer {
                        height: nominal[0].height,
                        ..top
                    },
                )]
            } else {
                (0..t.usable_layers())
                    .map(|l| measured(l, nominal[l]))
                    .collect()
            };
            // Hysteresis: without probing, an estimate settles near what is sent, so a layer
            // costed at its own rate would be dropped and taken again on every dip. A layer
            // not sent comes back when the budget carries its rate (what estimation is asked
            // to look for); the one being sent, or moved to, keeps going until the budget falls
            // a quarter below it, as a congested link's estimate does.
            let target = s.layer.target();
            let layers = (rates.iter().enumerate())
                .map(|(l, rate)| {
                    let bitrate = if target == Some(l) {
                        rate.bitrate * 3 / 4
                    } else {
                        rate.bitrate
                    };
                    Layer { bitrate, ..*rate }
                })
                .collect();
            let track = VideoTrack {
                source: if t.is_screen() {
                    VideoSource::Screen
                } else {
                    VideoSource::Camera
                },
                layers,
            };
            if let Some(w) = allocator::wanted_layer(&track, view) {
                headroom += rates[w].bitrate - track.layers[w].bitrate;
            }
            tracks.insert(s.track.clone(), track);
            requests.push((s.track.clone(), view));
        }
        let downlink = p.downlink.unwrap_or(self.config.default_downlink_bps);
        // An estimate is the whole downlink, so the voices' share comes off it first; a fixed
        // `sfu.downlink_kbps` (no estimation) is for video alone.
        let budget = if self.config.bwe {
            downlink.saturating_sub(audio)
        } else {
            downlink
        };
        let allocation = allocator::allocate(budget, &requests, &tracks);
        let wanted = allocator::wanted_bitrate(&requests, &tracks) + audio + headroom;
        let p = self.participants.get_mut(&pid).expect("checked above");
        if self.config.bwe {
            p.probe_for(now, wanted);
        }
        let mut ask = Vec::new();
        let mut tell = Vec::new();
        for (id, a) in allocation {
            let Some(s) = p.subscriptions.iter_mut().find(|s| s.track == id) else {
                continue;
            };
            if let Some(layer) = s.layer.set_target(a.layer()) {
                ask.push((id.clone(), layer));
            }
            if s.stream != Some(a) {
                s.stream = Some(a);
                tell.push((s.peer.clone(), id, a));
            }
        }
        for (id, layer) in ask {
            self.request_keyframe(now, &id, Some(layer));
        }
        let room = self.participants[&pid].room.clone();
        self.update_layers(now, &room);
        for (peer, track, a) in tell {
            // A track without layers is active with no rid.
            let layer = a
                .layer()
                .and_then(|l| self.tracks[&track].rids.get(l))
                .map(|r| r.to_string());
            let state = match a {
                Allocation::Layer(_) => StreamState::Active,
                Allocation::Paused => StreamState::Paused,
                Allocation::PausedForBandwidth => StreamState::PausedForBandwidth,
            };
            self.signal(
                pid,
                ToPeer::StreamState {
                    peer,
                    track,
                    state,
                    layer,
                },
            );
        }
    }

    /// Chooses the layers of every subscriber of `id` again: its usable layers changed.
    pub(super) fn reallocate_track(&mut self, now: Instant, id: &TrackId) {
        let subscribers: Vec<Pid> = (self.participants.iter())
            .filter(|(_, p)| p.subscriptions.iter().any(|s| &s.track == id))
            .map(|(pid, _)| *pid)
            .collect();
        for pid in subscribers {
            self.reallocate(now, pid);
        }
    }

    /// Finds simulcast layers that stopped arriving, or whose retry time has come, and moves
    /// their subscribers ([`crate::arrivals`]).
    pub(super) fn check_arrivals(&mut self, now: Instant) {
        let changed: Vec<TrackId> = (self.tracks.iter_mut())
            .filter_map(|(id, t)| t.arrivals.as_mut()?.check(now).then(|| id.clone()))
            .collect();
        for id in changed {
            self.reallocate_track(now, &id);
        }
    }

    /// A new downlink estimate for `pid`: its layers are chosen again when it moved by more
    /// than a tenth since they were last chosen, so a jittery estimate does not flap layers.
    pub(super) fn estimated(&mut self, now: Instant, pid: Pid, bps: u64) {
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        let last = p.downlink.unwrap_or(self.config.default_downlink_bps);
        if bps.abs_diff(last) * 10 <= last {
            return;
        }
        p.downlink = Some(bps);
        self.reallocate(now, pid);
    }

    /// Which of `id`'s layers an open subscription is on or moving to.
    fn watched_layers(&self, id: &TrackId) -> Vec<bool> {
        let Some(track) = self.tracks.get(id) else {
            return Vec::new();
        };
        let mut watched = vec![false; track.rids.len()];
        let subs = self.participants.values().flat_map(|p| {
            p.subscriptions
                .iter()
                .filter(|s| s.track == *id && s.open_mid().is_some())
        });
        for s in subs {
            for l in [s.layer.current(), s.layer.target()].into_iter().flatten() {
                watched[l] = true;
            }
        }
        watched
    }

    /// Tells the publishers of the simulcast tracks in `room` which layers nobody receives
    /// (`layers`), for those whose answer changed: they may stop encoding them.
    pub(super) fn update_layers(&mut self, now: Instant, room: &str) {
        let ids: Vec<TrackId> = self
            .tracks
            .iter()
            .filter(|(_, t)| &*t.room == room && !t.rids.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            let watched = self.watched_layers(&id);
            let track = self.tracks.get_mut(&id).expect("listed above");
            if track.told_layers.as_ref() == Some(&watched) {
                continue;
            }
            track.told_layers = Some(watched.clone());
            if let Some(arrivals) = &mut track.arrivals {
                arrivals.expect(&watched, now);
            }
            let (mut active, mut paused) = (Vec::new(), Vec::new());
            for (rid, w) in track.rids.iter().zip(&watched) {
                if *w { &mut active } else { &mut paused }.push(rid.to_string());
            }
            let owner = track.owner;
            self.signal(
                owner,
                ToPeer::Layers {
                    track: id,
                    active,
                    paused,
                },
            );
        }
    }

    /// The layers a keyframe request for every subscriber of `id` names: the one layer of a
    /// track without layers, else the layers subscribers are on or moving to (the lowest if
    /// none).
    pub(super) fn wanted_layers(&self, id: &TrackId) -> Vec<usize> {
        let Some(track) = self.tracks.get(id) else {
            return Vec::new();
        };
        if track.rids.is_empty() {
            return vec![0];
        }
        let wanted: Vec<usize> = (self.watched_layers(id).into_iter().enumerate())
            .filter_map(|(layer, w)| w.then_some(layer))
            .collect();
        if wanted.is_empty() { vec![0] } else { wanted }
    }
}
