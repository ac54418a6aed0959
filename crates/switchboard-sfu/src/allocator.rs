//! Allocator: which simulcast layer of each video track a subscriber receives.
//!
//! A publisher sends camera video as up to three layers (rid `q`/`h`/`f`); a subscriber's
//! downlink rarely carries the top layer of everything, and a tile shown at 320x180 does not
//! need 720p. The allocator is a pure function of one subscriber's downlink budget, what it
//! asks for (per track: paused, or the size it shows the tile at) and each track's layers
//! (height and bitrate). Budgets are per subscriber, so subscribers are allocated one by one.
//!
//! The order is a fixed sequence of steps, taken while the next one fits in the budget and
//! stopped at the first that does not:
//!
//! 1. the lowest layer of every watched track, screen shares first, then cameras in the order
//!    given (a track left out is paused for bandwidth);
//! 2. each screen share up to the layer its tile needs (text must stay legible);
//! 3. cameras one layer at a time, round by round, so every camera gets its second layer
//!    before any gets its third.
//!
//! Stopping at the first step that does not fit (rather than skipping it for a smaller later
//! one) makes the result monotone in the budget: more budget takes a longer prefix of the same
//! sequence, so no track ever gets a lower layer because the budget grew. The price is a few
//! kbit/s left unused in some cases, which the next estimate revisits.

use std::collections::BTreeMap;

use crate::TrackId;

/// What kind of video a track carries; screen shares are served first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum VideoSource {
    /// A shared screen or window.
    Screen,
    /// A camera.
    Camera,
}

/// One simulcast layer of a published track, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layer {
    /// Its picture height in pixels.
    pub height: u32,
    /// What it costs a subscriber, in bit/s (measured, or the configured nominal rate).
    pub bitrate: u64,
}

/// A video track as the allocator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTrack {
    /// Screen or camera.
    pub source: VideoSource,
    /// Its layers, lowest first; one for a publisher that sends no simulcast.
    pub layers: Vec<Layer>,
}

/// What a subscriber asks of one track: the `subscribe` message's `width`/`height` or `paused`.
pub use switchboard_protocol::View as Request;

/// What one subscriber receives of one track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// This layer (an index into [`VideoTrack::layers`]).
    Layer(usize),
    /// Nothing: the subscriber asked for nothing.
    Paused,
    /// Nothing: its lowest layer does not fit in the budget.
    PausedForBandwidth,
}

impl Allocation {
    /// The layer forwarded, if any.
    pub fn layer(self) -> Option<usize> {
        match self {
            Allocation::Layer(l) => Some(l),
            _ => None,
        }
    }
}

/// The highest layer a tile of this size needs: the lowest layer at least as tall as the tile,
/// or the top layer for a tile taller than all of them. `None` when paused or the track has
/// no layers.
pub fn wanted_layer(track: &VideoTrack, request: Request) -> Option<usize> {
    let Request::Visible { width, height } = request else {
        return None;
    };
    let top = track.layers.len().checked_sub(1)?;
    // Layers are 16:9 or 4:3; a tile is as demanding as the taller of its height and the
    // height its width implies at 16:9, so a wide, short tile does not get a blurry picture.
    let needed = height.max(width.saturating_mul(9) / 16);
    Some(
        track
            .layers
            .iter()
            .position(|l| l.height >= needed)
            .unwrap_or(top),
    )
}

/// What the tracks a subscriber asks for would take with no limit on its downlink: the
/// bitrate of the layer each request's view calls for, nothing for a paused one. The rate the
/// SFU asks bandwidth estimation to look for.
pub fn wanted_bitrate(
    requests: &[(TrackId, Request)],
    tracks: &BTreeMap<TrackId, VideoTrack>,
) -> u64 {
    (requests.iter())
        .filter_map(|(id, request)| {
            let track = tracks.get(id)?;
            Some(track.layers[wanted_layer(track, *request)?].bitrate)
        })
        .sum()
}

/// Allocates one subscriber's `budget` (bit/s) over the tracks it asks for, given in the
/// subscriber's order (the order ties are broken in). A request naming a track not in
/// `tracks` is ignored. The sum of the allocated layers' bitrates never exceeds the budget.
pub fn allocate(
    budget: u64,
    requests: &[(TrackId, Request)],
    tracks: &BTreeMap<TrackId, VideoTrack>,
) -> Vec<(TrackId, Allocation)> {
    // (track, wanted top layer), screen shares first; the sort is stable, so the subscriber's
    // order holds within each kind.
    let mut watched: Vec<(usize, &VideoTrack, usize)> = Vec::new();
    let mut result: Vec<(TrackId, Allocation)> = Vec::new();
    for (id, request) in requests {
        let Some(track) = tracks.get(id) else {
            continue;
        };
        let allocation = match wanted_layer(track, *request) {
            Some(top) => {
                watched.push((result.len(), track, top));
                Allocation::PausedForBandwidth
            }
            None => Allocation::Paused,
        };
        result.push((id.clone(), allocation));
    }
    watched.sort_by_key(|(_, t, _)| t.source);

    let mut left = budget;
    let mut layer: Vec<Option<usize>> = vec![None; watched.len()];
    for (i, to) in sequence(&watched) {
        let layers = &watched[i].1.layers;
        let now = layer[i].map_or(0, |l| layers[l].bitrate);
        let cost = layers[to].bitrate.saturating_sub(now);
        if cost > left {
            break;
        }
        left -= cost;
        layer[i] = Some(to);
    }
    for ((slot, _, _), l) in watched.iter().zip(layer) {
        if let Some(l) = l {
            result[*slot].1 = Allocation::Layer(l);
        }
    }
    result
}

/// The fixed order of steps (watched index, layer raised to) described in the module doc.
fn sequence(watched: &[(usize, &VideoTrack, usize)]) -> Vec<(usize, usize)> {
    let mut steps: Vec<(usize, usize)> = (0..watched.len()).map(|i| (i, 0)).collect();
    let is_screen = |i: usize| watched[i].1.source == VideoSource::Screen;
    for (i, (_, _, top)) in watched.iter().enumerate() {
        if is_screen(i) {
            steps.extend((1..=*top).map(|to| (i, to)));
        }
    }
    let rounds = watched.iter().map(|(_, _, top)| *top).max().unwrap_or(0);
    for to in 1..=rounds {
        for (i, (_, _, top)) in watched.iter().enumerate() {
            if !is_screen(i) && to <= *top {
                steps.push((i, to));
            }
        }
    }
    steps
}

/// The layers of `track_layers` layers nobody is allocated, given every subscriber's
/// allocation of the track: what the publisher may pause (the `layers` message).
pub fn unwatched_layers(
    track_layers: usize,
    allocations: impl IntoIterator<Item = Allocation>,
) -> Vec<usize> {
    let mut watched = vec![false; track_layers];
    for l in allocations.into_iter().filter_map(Allocation::layer) {
        if let Some(w) = watched.get_mut(l) {
            *w = true;
        }
    }
    (0..track_layers).filter(|l| !watched[*l]).collect()
}

#[cfg(test)]
mod tests;
