//! Simulcast through the SFU: a publisher sends three layers (rid `q`, `h`, `f`), each
//! subscriber gets one per track, the one its downlink carries, switched on keyframes; video
//! sent without layers is one layer at its measured rate, sent whole or not at all. On the
//! virtual network of `common`.

mod common;

use std::time::Duration;

use common::World;
use str0m::media::{KeyframeRequestKind, MediaKind};
use switchboard_protocol::View;
use switchboard_sfu::{Inbound, StreamState, TrackId};

const VIDEO: &[MediaKind] = &[MediaKind::Video];
const SECOND: Duration = Duration::from_secs(1);
/// A tile 180p serves, and one that needs 720p.
const SMALL: View = View::Visible {
    width: 320,
    height: 180,
};
const BIG: View = View::Visible {
    width: 1280,
    height: 720,
};

/// The layers of `peer`'s frames client `i` received, in order (byte 5 of each frame).
fn layers(w: &World, i: usize, peer: &str) -> Vec<u8> {
    w.clients[i]
        .frames_from(peer)
        .iter()
        .map(|f| f.data[5])
        .collect()
}

/// A world whose subscribers have a fixed downlink of `downlink` bit/s (no estimate, to see the
/// allocator's choices by budget; the estimate's own test is below), with `publishers`
/// simulcast publishers (clients 0..publishers) and one subscriber after them.
fn world(downlink: u64, publishers: usize) -> World {
    let mut w = World::with_config(publishers + 1, |c| {
        c.default_downlink_bps = downlink;
        c.bwe = false;
    });
    for i in 0..publishers {
        w.clients[i].simulcast = true;
        w.connect(i, VIDEO);
    }
    w.connect(publishers, &[]);
    w
}

#[test]
fn a_subscriber_gets_the_one_layer_its_downlink_carries() {
    for (downlink, layer) in [
        (2_500_000, Some(2)),
        (700_000, Some(1)),
        (200_000, Some(0)),
        (100_000, None),
    ] {
        let mut w = world(downlink, 1);
        w.run_media(3 * SECOND, &[0]);
        let got = layers(&w, 1, "p0");
        match layer {
            Some(l) => {
                assert!(got.len() > 100, "{downlink}: {} frames", got.len());
                assert!(
                    got.iter().all(|g| *g == l),
                    "{downlink}: only layer {l}: {got:?}"
                );
                let first = &w.clients[1].frames_from("p0")[0];
                assert!(first.keyframe, "a layer starts on a keyframe");
            }
            None => assert!(got.is_empty(), "{downlink}: the lowest layer does not fit"),
        }
        assert!(w.clients[0].errors.is_empty(), "{:?}", w.clients[0].errors);
        assert_eq!(w.sfu.stats().media_failures, 0);
    }
}

#[test]
fn a_second_track_moves_the_first_down_on_a_keyframe() {
    // A fixed 500 kbit/s carries one track at 360p (measured about 483k), or two at 180p
    // (150k each), but not one at 180p beside one kept at 360p: 150k + 3/4 of 483k is 512k
    // (the layer being sent costs three quarters of its rate, the allocator's hysteresis).
    let mut w = World::with_config(3, |c| {
        c.default_downlink_bps = 500_000;
        c.bwe = false;
    });
    w.clients[0].simulcast = true;
    w.clients[1].simulcast = true;
    w.connect(0, VIDEO);
    w.connect(2, &[]);
    w.run_media(2 * SECOND, &[0]);
    let before = layers(&w, 2, "p0");
    assert!(
        before.len() > 50 && before.iter().all(|l| *l == 1),
        "{before:?}"
    );

    w.connect(1, VIDEO);
    w.run_media(3 * SECOND, &[0, 1]);
    let got = layers(&w, 2, "p0");
    let frames = w.clients[2].frames_from("p0");
    let down = got.iter().position(|l| *l == 0).expect("p0 moved down");
    assert!(got[..down].iter().all(|l| *l == 1), "{got:?}");
    assert!(got[down..].iter().all(|l| *l == 0), "no way back: {got:?}");
    assert!(
        frames[down].keyframe,
        "the switch is on a keyframe of the new layer"
    );
    assert!(got.len() - down > 50, "{got:?}");
    // Two layers, two sequence spaces and timestamp bases: the subscriber sees one stream.
    common::assert_one_stream(&frames);
    let p1 = layers(&w, 2, "p1");
    assert!(p1.len() > 50 && p1.iter().all(|l| *l == 0), "{p1:?}");
    assert_eq!(w.sfu.stats().media_failures, 0);
    assert_eq!(w.sfu.stats().layer_switches, 1);
}

fn view(w: &mut World, i: usize, track: &TrackId, view: View) {
    w.send(
        i,
        Inbound::Subscribe {
            tracks: vec![track.clone()],
            subscribe: true,
            view: Some(view),
        },
    );
}

/// Layers cost what they measure, not their nominal rates: a camera whose 360p layer sends
/// half its nominal 500 kbit/s fits a 400 kbit/s downlink at 360p once measured, and the
/// subscriber, on 180p until then, is moved up and told; as the layer grows, it is kept until
/// three quarters of its rate no longer fit.
#[test]
fn a_layer_is_costed_at_its_measured_rate() {
    let mut w = world(400_000, 1);
    // About 85 kbit/s, 245 kbit/s and 500 kbit/s at 50 frames a second.
    w.clients[0].layer_frame = [150, 550, 1200];
    w.run_media(SECOND / 2, &[0]);
    let track = w.clients[1].published[0].1.clone();
    view(&mut w, 1, &track, BIG);
    w.run_media(SECOND / 2, &[0]);
    // Unmeasured, 360p is taken at its nominal 500 kbit/s: 180p alone fits.
    let first = layers(&w, 1, "p0");
    assert!(
        !first.is_empty() && first.iter().all(|l| *l == 0),
        "{first:?}"
    );
    w.run_media(3 * SECOND, &[0]);
    let got = layers(&w, 1, "p0");
    assert_eq!(*got.last().unwrap(), 1, "measured, 360p fits: {got:?}");
    let told = w.clients[1].stream_states.last().cloned();
    assert_eq!(
        told.map(|(_, _, state, layer)| (state, layer)),
        Some((StreamState::Active, Some("h".to_owned())))
    );
    // Its 720p layer, measured too, still does not.
    assert!(!got.contains(&2), "{got:?}");

    // 360p grows to about 450 kbit/s: more than the downlink, but the layer being sent costs
    // three quarters of its rate (hysteresis), so it stays.
    w.clients[0].layer_frame[1] = 1000;
    w.run_media(3 * SECOND, &[0]);
    let got = layers(&w, 1, "p0");
    assert_eq!(*got.last().unwrap(), 1, "kept: {got:?}");
    // At about 660 kbit/s, three quarters of it do not fit either: back to 180p.
    w.clients[0].layer_frame[1] = 1600;
    w.run_media(3 * SECOND, &[0]);
    let got = layers(&w, 1, "p0");
    assert_eq!(*got.last().unwrap(), 0, "down: {got:?}");
}

/// A subscriber that loses its picture gets a keyframe of the layer it receives, not of every
/// layer anyone receives; and each layer is gated alone, so one subscriber's request for 720p
/// right after another's for 180p goes out at once, while a second request for 180p in the
/// interval waits for its end.
#[test]
fn keyframes_are_asked_and_gated_per_layer() {
    let mut w = World::with_config(3, |c| {
        c.default_downlink_bps = 2_500_000;
        c.bwe = false;
    });
    w.clients[0].simulcast = true;
    w.connect(0, VIDEO);
    w.connect(1, &[]);
    w.connect(2, &[]);
    w.run_media(SECOND, &[0]);
    let track = w.clients[1].published[0].1.clone();
    view(&mut w, 1, &track, SMALL);
    view(&mut w, 2, &track, BIG);
    w.run_media(3 * SECOND, &[0]);
    assert_eq!(*layers(&w, 1, "p0").last().unwrap(), 0);
    assert_eq!(*layers(&w, 2, "p0").last().unwrap(), 2);
    let pli = |w: &mut World, i: usize| {
        let c = &mut w.clients[i];
        let mid = c.frames.last().unwrap().mid;
        (c.rtc.writer(mid).unwrap())
            .request_keyframe(None, KeyframeRequestKind::Pli)
            .unwrap();
    };
    let asked = |w: &World, from: usize| -> Vec<String> {
        w.clients[0].keyframe_rids[from..]
            .iter()
            .map(|r| r.clone().unwrap_or_default())
            .collect()
    };
    let before = w.clients[0].keyframe_rids.len();
    // (who loses the picture, if anyone, and what the publisher was asked for since `before`
    // a tenth of a second later; a second later when nobody did)
    let steps: [(Option<usize>, &[&str], &str); 4] = [
        (Some(1), &["q"], "the 180p subscriber's layer alone"),
        (Some(2), &["q", "f"], "720p is not held back by 180p"),
        (Some(1), &["q", "f"], "180p again waits out its interval"),
        (None, &["q", "f", "q"], "then goes once"),
    ];
    for (subscriber, expected, why) in steps {
        match subscriber {
            Some(i) => {
                pli(&mut w, i);
                w.run_media(SECOND / 10, &[0]);
            }
            None => w.run_media(SECOND, &[0]),
        }
        assert_eq!(asked(&w, before), expected, "{why}");
    }
}

#[test]
fn the_tile_size_picks_the_layer_and_the_subscriber_is_told() {
    let mut w = world(2_500_000, 1);
    w.run_media(2 * SECOND, &[0]);
    let track = w.clients[1].published[0].1.clone();
    let state = |w: &World| -> Vec<(StreamState, Option<String>)> {
        w.clients[1]
            .stream_states
            .iter()
            .map(|(_, _, s, l)| (*s, l.clone()))
            .collect()
    };
    let f = (StreamState::Active, Some("f".to_string()));
    assert_eq!(state(&w), std::slice::from_ref(&f));

    // A small tile needs 180p: the next `q` keyframe switches it.
    view(&mut w, 1, &track, SMALL);
    let q = (StreamState::Active, Some("q".to_string()));
    assert_eq!(state(&w), [f.clone(), q.clone()]);
    let before = w.clients[1].frames_from("p0").len();
    w.run_media(2 * SECOND, &[0]);
    let got = layers(&w, 1, "p0");
    assert_eq!(got.last(), Some(&0), "{got:?}");

    // Paused: nothing more arrives, and the peer is told.
    view(&mut w, 1, &track, View::Paused);
    assert_eq!(state(&w)[2], (StreamState::Paused, None));
    let paused = w.clients[1].frames_from("p0").len();
    w.run_media(SECOND, &[0]);
    assert!(w.clients[1].frames_from("p0").len() <= paused + 1);
    assert!(paused > before);

    // Shown big again: back to `f`; the same view again tells nothing.
    view(&mut w, 1, &track, BIG);
    view(&mut w, 1, &track, BIG);
    assert_eq!(state(&w)[3..], [f]);
    w.run_media(2 * SECOND, &[0]);
    assert_eq!(layers(&w, 1, "p0").last(), Some(&2));
}

#[test]
fn a_downlink_too_small_for_the_lowest_layer_is_told() {
    let w = {
        let mut w = world(100_000, 1);
        w.run_media(SECOND, &[0]);
        w
    };
    let states: Vec<StreamState> = w.clients[1].stream_states.iter().map(|s| s.2).collect();
    assert_eq!(states, [StreamState::PausedForBandwidth]);
}

#[test]
fn the_publisher_hears_which_layers_nobody_receives() {
    let mut w = world(2_500_000, 1);
    w.run_media(2 * SECOND, &[0]);
    let track = w.clients[1].published[0].1.clone();
    let told = |w: &World| -> Vec<(Vec<String>, Vec<String>)> {
        w.clients[0]
            .layers
            .iter()
            .map(|(t, a, p)| {
                assert_eq!(*t, track);
                (a.clone(), p.clone())
            })
            .collect()
    };
    let rids = |r: &[&str]| -> Vec<String> { r.iter().map(|s| s.to_string()).collect() };
    assert_eq!(told(&w), [(rids(&["f"]), rids(&["q", "h"]))]);

    // Moving to `q`: both are in use until the switch, then only `q`.
    view(&mut w, 1, &track, SMALL);
    w.run_media(2 * SECOND, &[0]);
    assert_eq!(
        told(&w)[1..],
        [
            (rids(&["q", "f"]), rids(&["h"])),
            (rids(&["q"]), rids(&["h", "f"]))
        ]
    );

    // The only subscriber leaves: nobody receives anything.
    w.leave(1);
    assert_eq!(told(&w).last(), Some(&(vec![], rids(&["q", "h", "f"]))));
}

#[test]
fn with_bandwidth_estimation_the_layers_follow_the_estimate() {
    // Starting from 300 kbit/s the subscriber gets `q`; the estimate on an unloaded link
    // grows, and the layers with it. Without estimation the start is all it ever gets.
    for bwe in [false, true] {
        let mut w = World::with_config(2, |c| {
            c.default_downlink_bps = 300_000;
            c.bwe = bwe;
        });
        w.clients[0].simulcast = true;
        w.connect(0, VIDEO);
        w.connect(1, &[]);
        w.run_media(10 * SECOND, &[0]);
        let got = layers(&w, 1, "p0");
        assert_eq!(got.first(), Some(&0), "{bwe}: starts at q");
        let last = *got.last().unwrap();
        let states: Vec<_> = w.clients[1]
            .stream_states
            .iter()
            .map(|s| s.3.clone())
            .collect();
        if bwe {
            assert!(last > 0, "the estimate grew: {states:?}");
        } else {
            assert_eq!(last, 0);
            assert_eq!(states, [Some("q".to_string())]);
        }
    }
}

/// A publisher that stops encoding its top layer (short of CPU) moves its subscribers down to
/// one that arrives, and back up once the layer is there again (after the retry time).
#[test]
fn a_layer_that_stops_arriving_moves_its_subscribers_down_and_back() {
    let mut w = world(2_500_000, 1);
    w.run_media(2 * SECOND, &[0]);
    assert_eq!(layers(&w, 1, "p0").last(), Some(&2), "on f");
    w.clients[0].encoded_layers = 2;
    w.run_media(3 * SECOND, &[0]);
    let got = layers(&w, 1, "p0");
    assert_eq!(got.last(), Some(&1), "moved to h: {got:?}");
    let told = &w.clients[1].stream_states;
    assert_eq!(told.last().unwrap().3.as_deref(), Some("h"), "{told:?}");
    let frozen_at = got.len();

    // Back to three layers: f is tried again and the subscriber returns to it.
    w.clients[0].encoded_layers = 3;
    w.run_media(12 * SECOND, &[0]);
    let got = layers(&w, 1, "p0");
    assert!(
        got.len() > frozen_at + 500,
        "video went on throughout: {}",
        got.len()
    );
    assert_eq!(got.last(), Some(&2), "back on f");
    assert_eq!(
        w.clients[1].stream_states.last().unwrap().3.as_deref(),
        Some("f")
    );
}

/// Estimation probes a subscriber (with padding packets) only up to what its subscriptions
/// would take: a voice, below the starting estimate, is no reason to look further, so the SFU
/// sends about what it sends without estimation. It used to probe every subscriber up to four
/// top layers: 980 datagrams here against 726 without.
#[test]
fn estimation_probes_only_for_what_the_subscriber_watches() {
    let sent = |bwe| {
        let mut w = World::with_config(2, |c| c.bwe = bwe);
        w.connect(0, &[MediaKind::Audio]);
        w.connect(1, &[]);
        w.run_media(10 * SECOND, &[0]);
        w.sfu_sent
    };
    let (with, without) = (sent(true), sent(false));
    assert!(
        with * 10 <= without * 12,
        "{with} datagrams sent with estimation, {without} without"
    );
}

#[test]
fn a_track_without_layers_is_sent_only_while_shown() {
    let mut w = World::with_config(2, |c| c.bwe = false);
    w.connect(0, VIDEO);
    w.connect(1, &[]);
    w.run_media(2 * SECOND, &[0]);
    let track = w.clients[1].published[0].1.clone();
    assert_eq!(states(&w, 1), [StreamState::Active]);
    assert_eq!(w.clients[1].stream_states[0].3, None, "no layer to name");

    // Not shown (a grid page turned): nothing more arrives, and the peer is told.
    view(&mut w, 1, &track, View::Paused);
    assert_eq!(states(&w, 1)[1..], [StreamState::Paused]);
    let paused = w.clients[1].frames_from("p0").len();
    w.run_media(2 * SECOND, &[0]);
    assert!(w.clients[1].frames_from("p0").len() <= paused + 1);

    // Shown again: a keyframe is asked for and the stream resumes with it.
    let asked = w.clients[0].keyframe_requests;
    view(&mut w, 1, &track, SMALL);
    assert_eq!(states(&w, 1)[2..], [StreamState::Active]);
    w.run_media(SECOND, &[0]);
    assert!(w.clients[0].keyframe_requests > asked);
    let frames = w.clients[1].frames_from("p0");
    let resumed = &frames[paused.min(frames.len())..];
    assert!(
        resumed.len() >= 20,
        "{} frames after resuming",
        resumed.len()
    );
    assert!(resumed[0].keyframe, "it resumes on a keyframe");
    assert_eq!(w.sfu.stats().media_failures, 0);
}

/// The video states client `i` was told, in order.
fn states(w: &World, i: usize) -> Vec<StreamState> {
    w.clients[i].stream_states.iter().map(|s| s.2).collect()
}

#[test]
fn a_track_without_layers_is_paused_when_the_downlink_cannot_carry_it() {
    // The clients' camera sends about 400 kbit/s (50 frames of 900 B a second and a 3,000 B
    // keyframe each second); until its first second is measured it counts as a top layer
    // (1.5 Mbit/s), so no downlink here carries it at first.
    let start = |downlink| {
        let mut w = World::with_config(3, |c| {
            c.default_downlink_bps = downlink;
            c.bwe = false;
        });
        w.connect(0, VIDEO);
        w.connect(1, &[]);
        w.run_media(3 * SECOND, &[0]);
        w
    };
    use StreamState::{Active, PausedForBandwidth as Paused};

    // 250 kbit/s never carries it: paused, and told so.
    let w = start(250_000);
    assert_eq!(states(&w, 1), [Paused]);
    assert!(w.clients[1].frames_from("p0").is_empty());

    // 450 kbit/s carries it once it is measured; it resumes on a keyframe.
    let mut w = start(450_000);
    assert_eq!(states(&w, 1), [Paused, Active]);
    let before = w.clients[1].frames_from("p0").len();
    assert!(before >= 20, "{before} frames");
    // Keyframes ten times as often take the camera to about 550 kbit/s: the subscriber
    // already receiving it keeps it (a budget near the rate is what an estimate settles at, so
    // it must not pause the track on every dip); a newcomer is not started.
    w.gop = 5;
    w.run_media(3 * SECOND, &[0]);
    assert_eq!(states(&w, 1), [Paused, Active]);
    assert!(
        w.clients[1].frames_from("p0").len() >= before + 120,
        "it kept flowing"
    );
    w.connect(2, &[]);
    w.run_media(2 * SECOND, &[0]);
    assert_eq!(states(&w, 2), [Paused]);
}

#[test]
fn with_estimation_the_voices_share_comes_off_the_budget() {
    // A camera's 150 kbit/s `q` layer and a voice (taken as 50 kbit/s) from one publisher, and a
    // starting downlink of 180 kbit/s: a fixed downlink is for video alone and carries `q`; an
    // estimate is the whole downlink, and what is left after the voice does not.
    for bwe in [false, true] {
        let mut w = World::with_config(2, |c| {
            c.default_downlink_bps = 180_000;
            c.bwe = bwe;
        });
        w.clients[0].simulcast = true;
        w.connect(0, &[MediaKind::Audio, MediaKind::Video]);
        w.connect(1, &[]);
        let first = states(&w, 1).first().copied();
        let expected = if bwe {
            StreamState::PausedForBandwidth
        } else {
            StreamState::Active
        };
        assert_eq!(first, Some(expected), "bwe {bwe}");
    }
}
