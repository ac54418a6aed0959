//! Arrivals on a virtual clock: a layer counted on that goes silent is stalled after `STALL`
//! and cuts the usable layers; its next frame, or the retry, brings it back; a paused layer's
//! silence is no stall.

use std::time::{Duration, Instant};

use super::{Arrivals, RETRY, STALL};

const TICK: Duration = Duration::from_millis(100);

/// Frames of `layers` every `TICK` for `d`, then checks; the time after.
fn send(a: &mut Arrivals, layers: &[usize], from: Instant, d: Duration) -> Instant {
    let mut now = from;
    while now < from + d {
        now += TICK;
        for &l in layers {
            a.frame(l, now);
        }
        a.check(now);
    }
    now
}

#[test]
fn a_layer_that_stops_is_cut_after_the_stall_time() {
    let t0 = Instant::now();
    let mut a = Arrivals::new(3, t0);
    let now = send(&mut a, &[0, 1, 2], t0, Duration::from_secs(2));
    assert_eq!(a.usable(), 3);
    // The top layer stops; the two below go on.
    let before = send(&mut a, &[0, 1], now, STALL - TICK * 2);
    assert_eq!(a.usable(), 3, "not yet");
    let after = send(&mut a, &[0, 1], before, TICK * 3);
    assert_eq!(a.usable(), 2, "cut below the stalled layer");
    assert_eq!(
        a.deadline(),
        Some(after + STALL),
        "when the layers still coming could stall"
    );
    // It comes back: at once usable again.
    assert!(a.frame(2, after), "a frame ends the stall");
    assert_eq!(a.usable(), 3);
}

#[test]
fn a_layer_never_sent_is_cut_and_retried() {
    let t0 = Instant::now();
    // The browser encodes two of the three layers it offered.
    let mut a = Arrivals::new(3, t0);
    let now = send(&mut a, &[0, 1], t0, STALL + TICK);
    assert_eq!(a.usable(), 2);
    let retried = send(&mut a, &[0, 1], now, RETRY);
    assert_eq!(a.usable(), 3, "tried again after the retry time");
    send(&mut a, &[0, 1], retried, STALL + TICK);
    assert_eq!(a.usable(), 2, "and cut again when it still does not come");
}

#[test]
fn a_paused_layer_is_no_stall_and_counts_from_when_it_is_asked_for() {
    let t0 = Instant::now();
    let mut a = Arrivals::new(3, t0);
    a.expect(&[true, false, false], t0);
    let now = send(&mut a, &[0], t0, STALL * 4);
    assert_eq!(a.usable(), 3, "nobody counts on the paused layers");
    a.expect(&[true, true, false], now);
    let later = send(&mut a, &[0], now, STALL - TICK);
    assert_eq!(a.usable(), 3, "asked for just now: a whole STALL to arrive");
    send(&mut a, &[0], later, TICK * 2);
    assert_eq!(
        a.usable(),
        1,
        "the middle layer never came: only the lowest is left"
    );
}

#[test]
fn the_lowest_layer_is_kept_when_nothing_arrives() {
    let t0 = Instant::now();
    let mut a = Arrivals::new(3, t0);
    send(&mut a, &[], t0, STALL * 2);
    assert_eq!(a.usable(), 1);
}
