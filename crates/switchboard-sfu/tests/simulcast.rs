//! Simulcast through the SFU: a publisher sends three layers (rid `q`, `h`, `f`), each
//! subscriber gets one per track, the one its downlink carries, switched on keyframes. On the
//! virtual network of `common`.

mod common;

use std::time::Duration;

use common::World;
use str0m::media::MediaKind;

const VIDEO: &[MediaKind] = &[MediaKind::Video];
const SECOND: Duration = Duration::from_secs(1);

/// The layers of `peer`'s frames client `i` received, in order (byte 5 of each frame).
fn layers(w: &World, i: usize, peer: &str) -> Vec<u8> {
    w.clients[i]
        .frames_from(peer)
        .iter()
        .map(|f| f.data[5])
        .collect()
}

/// A world whose subscribers have `downlink` bit/s, with `publishers` simulcast publishers
/// (clients 0..publishers) and one subscriber after them.
fn world(downlink: u64, publishers: usize) -> World {
    let mut w = World::with_config(publishers + 1, |c| c.default_downlink_bps = downlink);
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
    // 600 kbit/s carries one track at 360p (500k), or two at 180p (300k): the second round
    // would need 650k.
    let mut w = World::with_config(3, |c| c.default_downlink_bps = 600_000);
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
    let p1 = layers(&w, 2, "p1");
    assert!(p1.len() > 50 && p1.iter().all(|l| *l == 0), "{p1:?}");
    assert_eq!(w.sfu.stats().media_failures, 0);
    assert_eq!(w.sfu.stats().layer_switches, 1);
}
