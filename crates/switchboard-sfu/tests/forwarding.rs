//! The SFU with str0m clients on a virtual network: routing, subscriptions, leaving, keyframe
//! requests, bad input, a failed participant.

mod common;

use std::time::Duration;

use common::World;
use str0m::media::{KeyframeRequestKind, MediaKind};
use switchboard_sfu::{Inbound, SfuError, TrackId};

const AV: &[MediaKind] = &[MediaKind::Audio, MediaKind::Video];
const SECOND: Duration = Duration::from_secs(1);

/// Frame numbers (bytes 1..5) of the frames client `i` got from `peer`, per kind by length.
fn video_numbers(w: &World, i: usize, peer: &str) -> Vec<u32> {
    w.clients[i]
        .frames_from(peer)
        .iter()
        .filter(|f| f.data.len() >= 900)
        .map(|f| u32::from_be_bytes(f.data[1..5].try_into().unwrap()))
        .collect()
}

#[test]
fn media_published_by_one_arrives_at_every_subscriber() {
    let mut w = World::new(4);
    w.connect(0, AV);
    for i in 1..4 {
        w.connect(i, &[]);
    }
    w.run_media(3 * SECOND, &[0]);

    assert_eq!(w.sfu.published_tracks(), 2);
    for i in 1..4 {
        let c = &w.clients[i];
        assert_eq!(c.published.len(), 2, "{} heard of both tracks", c.peer);
        assert_eq!(
            w.mapped(i).get("p0"),
            Some(&2),
            "{} has m-lines for both",
            c.peer
        );
        let video = video_numbers(&w, i, "p0");
        // 150 frames were written; the first arrive once the subscriber's m-lines are open.
        assert!(
            video.len() >= 100,
            "{} got {} video frames",
            c.peer,
            video.len()
        );
        assert!(
            video.windows(2).all(|p| p[0] < p[1]),
            "in order, no duplicates"
        );
        let audio = c.frames_from("p0").len() - video.len();
        assert!(audio >= 100, "{} got {audio} audio frames", c.peer);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
    }
    assert!(
        w.clients[0].frames.is_empty(),
        "nothing is sent back to its publisher"
    );
}

#[test]
fn in_a_meeting_everyone_receives_everyone_else() {
    let n = 6;
    let mut w = World::new(n);
    for i in 0..n {
        w.connect(i, AV);
    }
    let everyone: Vec<usize> = (0..n).collect();
    w.run_media(3 * SECOND, &everyone);

    assert_eq!(w.sfu.published_tracks(), 2 * n);
    for i in 0..n {
        for j in (0..n).filter(|j| *j != i) {
            let from = format!("p{j}");
            assert_eq!(w.mapped(i).get(&from), Some(&2), "p{i} maps p{j}'s tracks");
            let got = video_numbers(&w, i, &from).len();
            assert!(got >= 60, "p{i} got {got} video frames from p{j}");
        }
        assert!(w.clients[i].frames_from(&format!("p{i}")).is_empty());
    }
}

#[test]
fn unsubscribing_stops_a_track_and_subscribing_again_restarts_it() {
    let mut w = World::new(2);
    w.connect(0, &[MediaKind::Video]);
    w.connect(1, &[]);
    w.run_media(SECOND, &[0]);
    let track = w.clients[1].published[0].1.clone();
    assert!(!video_numbers(&w, 1, "p0").is_empty());

    w.send(
        1,
        Inbound::Subscribe {
            tracks: vec![track.clone()],
            subscribe: false,
            view: None,
        },
    );
    w.run_media(SECOND / 2, &[0]);
    assert!(w.clients[1].track_map.is_empty(), "the m-line is stopped");
    let before = w.clients[1].frames.len();
    w.run_media(SECOND, &[0]);
    assert_eq!(
        w.clients[1].frames.len(),
        before,
        "nothing arrives after unsubscribing"
    );

    w.send(
        1,
        Inbound::Subscribe {
            tracks: vec![track],
            subscribe: true,
            view: None,
        },
    );
    w.run_media(2 * SECOND, &[0]);
    assert_eq!(w.mapped(1).get("p0"), Some(&1));
    assert!(w.clients[1].frames.len() > before + 40, "frames flow again");
}

#[test]
fn a_participant_leaving_mid_stream_leaves_the_others_talking() {
    let mut w = World::new(3);
    for i in 0..3 {
        w.connect(i, AV);
    }
    w.run_media(SECOND, &[0, 1, 2]);
    w.leave(1);
    assert_eq!(w.sfu.published_tracks(), 4);
    let before: Vec<usize> = (0..3).map(|i| video_numbers(&w, i, "p2").len()).collect();
    w.run_media(2 * SECOND, &[0, 2]);

    for i in [0, 2] {
        let c = &w.clients[i];
        let gone: Vec<&String> = c.unpublished.iter().map(|(p, _)| p).collect();
        assert_eq!(gone, ["p1", "p1"], "p{i} is told p1's tracks are gone");
        assert_eq!(
            w.mapped(i).get("p1"),
            None,
            "p{i}'s m-lines for p1 are stopped"
        );
        assert!(c.errors.is_empty(), "{:?}", c.errors);
    }
    assert!(video_numbers(&w, 0, "p2").len() >= before[0] + 80);
    assert!(video_numbers(&w, 2, "p0").len() >= 100);
}

#[test]
fn keyframe_requests_from_subscribers_reach_the_publisher_coalesced() {
    let mut w = World::new(5);
    // Only the first frame is a keyframe, so no keyframe answers a deferred request early.
    w.gop = u32::MAX;
    w.connect(0, &[MediaKind::Video]);
    for i in 1..5 {
        w.connect(i, &[]);
    }
    w.run_media(2 * SECOND, &[0]);
    let settled = w.clients[0].keyframe_requests;
    assert!(settled >= 1, "late joiners asked for a keyframe");

    // Every subscriber loses the picture at once and asks (a PLI each).
    for i in 1..5 {
        let c = &mut w.clients[i];
        let mid = c.frames[0].mid;
        c.rtc
            .writer(mid)
            .unwrap()
            .request_keyframe(None, KeyframeRequestKind::Pli)
            .unwrap();
    }
    w.run_media(SECOND / 10, &[0]);
    assert_eq!(
        w.clients[0].keyframe_requests,
        settled + 1,
        "one goes through at once"
    );
    w.run_media(SECOND, &[0]);
    assert_eq!(
        w.clients[0].keyframe_requests,
        settled + 2,
        "the rest are coalesced into one at the end of the interval"
    );
    w.run_media(2 * SECOND, &[0]);
    assert_eq!(w.clients[0].keyframe_requests, settled + 2, "and no more");
    let stats = w.sfu.stats();
    assert_eq!(stats.keyframe_requests_sent as usize, settled + 2);
    assert!(stats.keyframe_requests_coalesced >= 3, "{stats:?}");
}

#[test]
fn bad_input_gets_an_error_and_the_sfu_serves_the_others() {
    let mut w = World::with_config(3, |c| c.max_media_lines = 3);
    w.connect(0, &[MediaKind::Video]);
    w.connect(1, &[]);
    w.join(2);

    let errors = |w: &mut World| std::mem::take(&mut w.clients[2].errors);
    w.send(
        2,
        Inbound::Offer {
            sdp: "not sdp".into(),
            tags: Default::default(),
        },
    );
    assert!(matches!(errors(&mut w)[..], [SfuError::BadSdp(_)]));
    w.send(2, Inbound::Answer { sdp: "v=0".into() });
    assert!(matches!(errors(&mut w)[..], [SfuError::BadSdp(_)]));
    w.send(
        2,
        Inbound::Candidate {
            candidate: "candidate:nonsense".into(),
        },
    );
    assert!(matches!(errors(&mut w)[..], [SfuError::BadSdp(_)]));
    let unknown = TrackId::from("t999");
    w.send(
        2,
        Inbound::Subscribe {
            tracks: vec![unknown],
            subscribe: false,
            view: None,
        },
    );
    assert!(matches!(errors(&mut w)[..], [SfuError::UnknownTrack(_)]));

    // A real offer, but with a video codec the SFU does not forward.
    let offer = offer_text(&mut w, 2, &[MediaKind::Video]);
    let h264 = offer.replace("VP8/90000", "XYZ/90000");
    w.send(
        2,
        Inbound::Offer {
            sdp: h264,
            tags: Default::default(),
        },
    );
    assert!(matches!(
        errors(&mut w)[..],
        [SfuError::UnsupportedCodec(_)]
    ));
    let many = offer_text(&mut w, 2, &[MediaKind::Audio; 4]);
    w.send(
        2,
        Inbound::Offer {
            sdp: many,
            tags: Default::default(),
        },
    );
    assert!(matches!(errors(&mut w)[..], [SfuError::TooManyTracks(_)]));
    assert_eq!(
        w.sfu.connected_participants(),
        2,
        "no session for refused offers"
    );

    w.run_media(2 * SECOND, &[0]);
    assert!(video_numbers(&w, 1, "p0").len() >= 60, "the others go on");
    assert!(w.clients[0].errors.is_empty() && w.clients[1].errors.is_empty());
}

/// An offer from client `i` adding `kinds`, as text, without sending it.
fn offer_text(w: &mut World, i: usize, kinds: &[MediaKind]) -> String {
    let c = &mut w.clients[i];
    let mut change = c.rtc.sdp_api();
    for kind in kinds {
        change.add_media(*kind, str0m::media::Direction::SendOnly, None, None, None);
    }
    let (offer, _pending) = change.apply().unwrap();
    offer.to_sdp_string()
}

#[test]
fn a_participant_whose_connection_fails_is_dropped_alone() {
    let mut w = World::new(3);
    for i in 0..3 {
        w.connect(i, AV);
    }
    w.run_media(SECOND, &[0, 1, 2]);
    // p1's network goes away: the SFU stops hearing its connectivity checks.
    let cut = w.clients[1].addr;
    w.cut.push(cut);
    w.run_until(Duration::from_secs(60), |w| {
        w.clients[0].unpublished.len() == 2 && w.sfu.connected_participants() == 2
    });
    assert!(matches!(
        w.clients[1].errors[..],
        [SfuError::MediaFailed(_)]
    ));
    let before = video_numbers(&w, 0, "p2").len();
    w.run_media(2 * SECOND, &[0, 2]);
    assert!(video_numbers(&w, 0, "p2").len() >= before + 80);
    assert!(w.clients[0].errors.is_empty() && w.clients[2].errors.is_empty());
}

#[test]
fn a_track_its_publisher_stops_is_unpublished_and_its_m_lines_stopped() {
    let mut w = World::new(3);
    w.connect(0, AV);
    w.connect(1, &[]);
    w.connect(2, &[]);
    w.run_media(SECOND, &[0]);
    assert_eq!(w.mapped(1).get("p0"), Some(&2));

    // p0 stops its video (the second m-line) and goes on with audio.
    w.stop_sending(0, 1);
    w.run_media(SECOND, &[0]);
    assert_eq!(w.sfu.published_tracks(), 1);
    for i in [1, 2] {
        let c = &w.clients[i];
        assert_eq!(c.unpublished.len(), 1, "p{i} is told: {:?}", c.unpublished);
        assert_eq!(
            w.mapped(i).get("p0"),
            Some(&1),
            "only the audio m-line is left"
        );
        let audio_now = c.frames_from("p0").len();
        assert!(audio_now > 0);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
    }
    let before = w.clients[1].frames_from("p0").len();
    w.run_media(SECOND, &[0]);
    assert!(
        w.clients[1].frames_from("p0").len() >= before + 40,
        "audio still flows"
    );
}

#[test]
fn when_both_offer_at_once_the_sfu_yields_and_offers_again() {
    let mut w = World::new(2);
    w.connect(0, &[]);
    w.connect(1, &[]);
    // p0 has an offer of its own out when p1's new track makes the SFU offer to p0: p0 ignores
    // the SFU's offer, the SFU answers p0's and then offers p1's track again.
    let glare = w.prepare_offer(0, &[MediaKind::Video]);
    w.offer(1, &[MediaKind::Video]);
    w.send(
        0,
        Inbound::Offer {
            sdp: glare,
            tags: Default::default(),
        },
    );
    w.run_media(2 * SECOND, &[0, 1]);

    assert_eq!(w.mapped(0).get("p1"), Some(&1));
    assert_eq!(w.mapped(1).get("p0"), Some(&1));
    assert!(video_numbers(&w, 0, "p1").len() >= 50, "p0 gets p1's video");
    assert!(video_numbers(&w, 1, "p0").len() >= 50, "p1 gets p0's video");
    assert!(w.clients.iter().all(|c| c.errors.is_empty()));
}

/// A forwarded frame leaves on one wake of the SFU's timer, whole: with bandwidth estimation
/// str0m's pacer sends one packet per timeout and asks for the next a microsecond on, and the
/// SFU runs those at once. Left to the IO loop's timer, which wakes once a millisecond at best,
/// a burst of n packets took n wakes (docs/benchmarks.md, "Bandwidth estimation").
#[test]
fn a_forwarded_keyframe_leaves_whole_on_one_timer_wake() {
    for bwe in [false, true] {
        let mut w = World::with_config(2, |c| c.bwe = bwe);
        w.connect(0, &[MediaKind::Video]);
        w.connect(1, &[]);
        w.run_media(2 * SECOND, &[0]);
        let before = w.in_flight_to(1);

        // 3000 bytes: three packets from the publisher, three to the subscriber.
        w.write_frame(0, 0, true);
        w.deliver_to_sfu();
        let now = w.now;
        w.sfu.handle_timeout(now);
        w.pump();
        let sent = w.in_flight_to(1) - before;
        assert!(
            sent >= 3,
            "bwe {bwe}: the whole keyframe left, got {sent} datagrams"
        );
    }
}
