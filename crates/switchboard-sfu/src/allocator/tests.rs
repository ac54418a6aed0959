//! The allocator's rules, as examples and as properties over random rooms.

use proptest::prelude::*;

use super::*;

fn camera(bitrates: &[u64]) -> VideoTrack {
    track(VideoSource::Camera, bitrates)
}

fn track(source: VideoSource, bitrates: &[u64]) -> VideoTrack {
    VideoTrack {
        source,
        layers: bitrates
            .iter()
            .zip([180, 360, 720])
            .map(|(&bitrate, height)| Layer { height, bitrate })
            .collect(),
    }
}

const BIG: Request = Request::Visible {
    width: 1280,
    height: 720,
};

fn id(n: usize) -> TrackId {
    TrackId::new(n as u64)
}

fn layers_of(allocation: &[(TrackId, Allocation)]) -> Vec<Allocation> {
    allocation.iter().map(|(_, a)| *a).collect()
}

#[test]
fn a_tile_gets_the_lowest_layer_as_tall_as_it() {
    let t = camera(&[150_000, 500_000, 1_500_000]);
    let visible = |width, height| Request::Visible { width, height };
    assert_eq!(wanted_layer(&t, visible(320, 180)), Some(0));
    assert_eq!(wanted_layer(&t, visible(200, 181)), Some(1));
    // A wide, short tile needs the height its width implies at 16:9.
    assert_eq!(wanted_layer(&t, visible(1280, 100)), Some(2));
    assert_eq!(wanted_layer(&t, visible(3840, 2160)), Some(2));
    assert_eq!(wanted_layer(&t, Request::Paused), None);
    assert_eq!(wanted_layer(&camera(&[]), BIG), None);
}

#[test]
fn everyone_gets_the_lowest_layer_before_anyone_a_higher_one() {
    let tracks: BTreeMap<_, _> = (1..=3)
        .map(|n| (id(n), camera(&[150_000, 500_000, 1_500_000])))
        .collect();
    let requests: Vec<_> = (1..=3).map(|n| (id(n), BIG)).collect();
    let at = |budget| layers_of(&allocate(budget, &requests, &tracks));
    use Allocation::{Layer, PausedForBandwidth as Starved};
    assert_eq!(at(0), [Starved, Starved, Starved]);
    assert_eq!(at(300_000), [Layer(0), Layer(0), Starved]);
    assert_eq!(at(450_000), [Layer(0), Layer(0), Layer(0)]);
    assert_eq!(at(1_000_000), [Layer(1), Layer(0), Layer(0)]);
    assert_eq!(at(1_500_000), [Layer(1), Layer(1), Layer(1)]);
    assert_eq!(at(2_500_000), [Layer(2), Layer(1), Layer(1)]);
    assert_eq!(at(10_000_000), [Layer(2), Layer(2), Layer(2)]);
}

#[test]
fn a_screen_share_comes_first_and_goes_to_its_top_layer() {
    let tracks = BTreeMap::from([
        (id(1), camera(&[150_000, 500_000, 1_500_000])),
        (id(2), track(VideoSource::Screen, &[200_000, 1_000_000])),
    ]);
    let requests = [(id(1), BIG), (id(2), BIG)];
    let at = |budget| layers_of(&allocate(budget, &requests, &tracks));
    use Allocation::{Layer, PausedForBandwidth as Starved};
    assert_eq!(at(250_000), [Starved, Layer(0)]);
    assert_eq!(at(1_200_000), [Layer(0), Layer(1)]);
    assert_eq!(at(1_600_000), [Layer(1), Layer(1)]);
}

#[test]
fn paused_and_unknown_tracks() {
    let tracks = BTreeMap::from([(id(1), camera(&[150_000]))]);
    let requests = [(id(1), Request::Paused), (id(9), BIG)];
    assert_eq!(
        allocate(10_000_000, &requests, &tracks),
        [(id(1), Allocation::Paused)]
    );
}

#[test]
fn unwatched_layers_are_those_nobody_receives() {
    use Allocation::{Layer, Paused, PausedForBandwidth};
    assert_eq!(
        unwatched_layers(3, [Layer(0), Paused, Layer(0), PausedForBandwidth]),
        [1, 2]
    );
    assert_eq!(
        unwatched_layers(3, [Layer(2), Layer(1), Layer(0)]),
        [] as [usize; 0]
    );
    assert_eq!(unwatched_layers(2, []), [0, 1]);
}

fn any_track() -> impl Strategy<Value = VideoTrack> {
    let source = prop_oneof![Just(VideoSource::Camera), Just(VideoSource::Screen)];
    let steps = prop::collection::vec(50_000u64..2_000_000, 1..=3);
    (source, steps).prop_map(|(source, steps)| {
        // Higher layers cost more: each step adds to the one below.
        let bitrates: Vec<u64> = steps
            .iter()
            .scan(0, |sum, s| {
                *sum += s;
                Some(*sum)
            })
            .collect();
        track(source, &bitrates)
    })
}

fn any_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        1 => Just(Request::Paused),
        4 => (0u32..2000, 0u32..1200).prop_map(|(width, height)| Request::Visible { width, height }),
    ]
}

fn any_room() -> impl Strategy<Value = (BTreeMap<TrackId, VideoTrack>, Vec<(TrackId, Request)>)> {
    prop::collection::vec((any_track(), any_request()), 0..8).prop_map(|v| {
        let tracks = v
            .iter()
            .enumerate()
            .map(|(n, (t, _))| (id(n), t.clone()))
            .collect();
        // The subscriber's order is not the tracks' order.
        let requests = v
            .iter()
            .enumerate()
            .rev()
            .map(|(n, (_, r))| (id(n), *r))
            .collect();
        (tracks, requests)
    })
}

fn spent(tracks: &BTreeMap<TrackId, VideoTrack>, allocation: &[(TrackId, Allocation)]) -> u64 {
    allocation
        .iter()
        .filter_map(|(id, a)| a.layer().map(|l| tracks[id].layers[l].bitrate))
        .sum()
}

proptest! {
    #[test]
    fn never_over_budget_and_never_above_the_tile((tracks, requests) in any_room(), budget in 0u64..10_000_000) {
        let allocation = allocate(budget, &requests, &tracks);
        prop_assert!(spent(&tracks, &allocation) <= budget);
        prop_assert_eq!(allocation.len(), requests.len());
        for ((id, request), (same, a)) in requests.iter().zip(&allocation) {
            prop_assert_eq!(id, same);
            let wanted = wanted_layer(&tracks[id], *request);
            match a {
                Allocation::Paused => prop_assert_eq!(wanted, None),
                Allocation::PausedForBandwidth => prop_assert!(wanted.is_some()),
                Allocation::Layer(l) => prop_assert!(wanted.is_some_and(|w| *l <= w)),
            }
        }
    }

    #[test]
    fn nobody_starves_when_the_lowest_layers_fit((tracks, requests) in any_room(), spare in 0u64..3_000_000) {
        let lowest: u64 = requests
            .iter()
            .filter(|(id, r)| wanted_layer(&tracks[id], *r).is_some())
            .map(|(id, _)| tracks[id].layers[0].bitrate)
            .sum();
        let allocation = allocate(lowest + spare, &requests, &tracks);
        prop_assert!(!layers_of(&allocation).contains(&Allocation::PausedForBandwidth));
    }

    #[test]
    fn fairness_order((tracks, requests) in any_room(), budget in 0u64..10_000_000) {
        let allocation = allocate(budget, &requests, &tracks);
        let watched: Vec<(VideoSource, Allocation, usize)> = allocation
            .iter()
            .zip(&requests)
            .filter_map(|((id, a), (_, r))| {
                wanted_layer(&tracks[id], *r).map(|top| (tracks[id].source, *a, top))
            })
            .collect();
        let starved = watched.iter().any(|(_, a, _)| *a == Allocation::PausedForBandwidth);
        let max_camera = watched
            .iter()
            .filter(|(s, _, _)| *s == VideoSource::Camera)
            .filter_map(|(_, a, _)| a.layer())
            .max();
        for (source, a, top) in &watched {
            // Nobody gets above the lowest layer while a watched track gets nothing.
            prop_assert!(!(starved && a.layer().is_some_and(|l| l > 0)));
            match source {
                // A camera above its lowest layer means every screen share is at its top.
                VideoSource::Screen => prop_assert!(
                    max_camera.is_none_or(|m| m == 0) || a.layer() == Some(*top)
                ),
                // Cameras rise one round at a time: none is two rounds ahead of another
                // that could still rise.
                VideoSource::Camera => {
                    if let (Some(m), Some(l)) = (max_camera, a.layer()) {
                        prop_assert!(l + 1 >= m.min(*top));
                    }
                    // A camera gets nothing only if no camera is above its lowest layer.
                    if a.layer().is_none() {
                        prop_assert!(max_camera.is_none_or(|m| m == 0));
                    }
                }
            }
        }
    }

    #[test]
    fn monotone_in_budget((tracks, requests) in any_room(), low in 0u64..8_000_000, more in 0u64..4_000_000) {
        let before = allocate(low, &requests, &tracks);
        let after = allocate(low + more, &requests, &tracks);
        for ((_, b), (_, a)) in before.iter().zip(&after) {
            prop_assert!(a.layer().map(|l| l as i64).unwrap_or(-1) >= b.layer().map(|l| l as i64).unwrap_or(-1));
        }
    }
}
