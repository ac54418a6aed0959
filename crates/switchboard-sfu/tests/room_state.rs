//! What the SFU tells a room about its members' media beyond the tracks themselves: who is
//! speaking, and which tracks are muted and by whom. On the virtual network of `common`: str0m clients, a virtual clock, no sockets.

mod common;

use std::time::Duration;

use common::World;
use str0m::media::MediaKind;
use switchboard_sfu::{Inbound, SfuError, TrackId};

const AUDIO: &[MediaKind] = &[MediaKind::Audio];
const VIDEO: &[MediaKind] = &[MediaKind::Video];
const SECOND: Duration = Duration::from_secs(1);

#[test]
fn the_room_hears_who_speaks_when_it_changes_and_only_then() {
    let mut w = World::new(3);
    for i in 0..3 {
        w.connect(i, AUDIO);
        // Everyone's microphone hears a quiet room.
        w.clients[i].audio_level = Some(75);
    }
    w.clients[1].audio_level = Some(30);
    w.run_media(3 * SECOND, &[0, 1, 2]);
    for c in &w.clients {
        assert_eq!(c.speakers, [vec!["p1"]], "{} heard p1 speak, once", c.peer);
    }

    // p2 joins in, louder; p1 goes on.
    w.clients[2].audio_level = Some(20);
    w.run_media(2 * SECOND, &[0, 1, 2]);
    for c in &w.clients {
        assert_eq!(c.speakers, [vec!["p1"], vec!["p2", "p1"]], "{}", c.peer);
    }

    // Everyone stops: one empty list, then nothing while the room stays quiet.
    for i in 0..3 {
        w.clients[i].audio_level = Some(90);
    }
    w.run_media(3 * SECOND, &[0, 1, 2]);
    for c in &w.clients {
        assert_eq!(c.speakers.len(), 3, "{}: {:?}", c.peer, c.speakers);
        assert!(c.speakers[2].is_empty());
    }
}

#[test]
fn a_speaker_who_leaves_stops_speaking() {
    let mut w = World::new(2);
    for i in 0..2 {
        w.connect(i, AUDIO);
    }
    w.clients[0].audio_level = Some(30);
    w.run_media(2 * SECOND, &[0, 1]);
    assert_eq!(w.clients[1].speakers, [vec!["p0"]]);
    w.leave(0);
    w.run_media(2 * SECOND, &[1]);
    assert_eq!(w.clients[1].speakers, [vec!["p0"], vec![]]);
}

/// The one track `p0` publishes, as `i` heard of it.
fn p0_track(w: &World, i: usize) -> TrackId {
    let published = &w.clients[i].published;
    assert_eq!(published.len(), 1, "{published:?}");
    published[0].1.clone()
}

fn mute(w: &mut World, i: usize, track: &TrackId, muted: bool, host: bool) {
    w.send(
        i,
        Inbound::Mute {
            track: track.clone(),
            muted,
            host,
        },
    );
}

#[test]
fn a_member_mutes_its_own_track_and_the_room_is_told() {
    let mut w = World::new(3);
    w.connect(0, VIDEO);
    for i in 1..3 {
        w.connect(i, &[]);
    }
    w.run_media(2 * SECOND, &[0]);
    let track = p0_track(&w, 1);
    let before = w.clients[1].frames_from("p0").len();
    assert!(before > 50, "{before} frames before the mute");

    mute(&mut w, 0, &track, true, false);
    let told = ("p0".to_string(), track.clone(), true, "p0".to_string());
    for c in &w.clients {
        assert_eq!(c.track_states, std::slice::from_ref(&told), "{}", c.peer);
    }
    // The publisher's browser goes on sending; nothing of it is forwarded.
    w.run_media(2 * SECOND, &[0]);
    let muted = w.clients[1].frames_from("p0").len();
    assert!(
        muted <= before + 1,
        "{} frames arrived while muted",
        muted - before
    );

    // Muting again changes nothing and tells nobody.
    mute(&mut w, 0, &track, true, false);
    assert_eq!(w.clients[2].track_states.len(), 1);

    mute(&mut w, 0, &track, false, false);
    assert_eq!(
        w.clients[2].track_states[1],
        ("p0".to_string(), track, false, "p0".to_string())
    );
    w.run_media(2 * SECOND, &[0]);
    let frames = w.clients[1].frames_from("p0");
    assert!(frames.len() > muted + 50);
    // The mute left no hole for the subscriber to ask to have resent.
    common::assert_one_stream(&frames);
}

#[test]
fn a_host_mutes_another_member_who_alone_unmutes() {
    let mut w = World::new(3);
    for i in 0..3 {
        w.connect(i, if i == 0 { AUDIO } else { &[] });
    }
    w.clients[0].audio_level = Some(30);
    w.run_media(2 * SECOND, &[0]);
    assert_eq!(w.clients[2].speakers, [vec!["p0"]]);
    let track = p0_track(&w, 1);

    // p2 is no host: refused, nothing changes.
    mute(&mut w, 2, &track, true, false);
    assert!(matches!(w.clients[2].errors[..], [SfuError::Forbidden(_)]));
    assert!(w.clients[0].track_states.is_empty());

    // p1 is: p0 and everyone else are told who muted it.
    mute(&mut w, 1, &track, true, true);
    let told = ("p0".to_string(), track.clone(), true, "p1".to_string());
    for c in &w.clients {
        assert_eq!(c.track_states, std::slice::from_ref(&told), "{}", c.peer);
    }
    let heard = w.clients[2].frames_from("p0").len();
    w.run_media(2 * SECOND, &[0]);
    assert!(w.clients[2].frames_from("p0").len() <= heard + 1);
    // A muted member does not speak, however loud its browser sends.
    assert_eq!(w.clients[2].speakers, [vec!["p0"], vec![]]);

    // A host may not unmute another member; an unknown track is unknown.
    mute(&mut w, 1, &track, false, true);
    mute(&mut w, 1, &TrackId::from("t999"), true, true);
    assert!(matches!(
        w.clients[1].errors[..],
        [SfuError::Forbidden(_), SfuError::UnknownTrack(_)]
    ));
    mute(&mut w, 0, &track, false, false);
    assert_eq!(w.clients[1].track_states.len(), 2);
    w.run_media(2 * SECOND, &[0]);
    assert!(w.clients[2].frames_from("p0").len() > heard + 50);
}

/// A publisher learns each track's id from its own `track_published` (with the m-line), and
/// the stream tag it gave the m-line reaches the room.
#[test]
fn a_publisher_learns_its_track_ids_and_its_tags_reach_the_room() {
    let mut w = World::new(2);
    w.connect(0, AUDIO);
    w.connect(1, &[]);
    w.offer_tagged(0, VIDEO, "screen");
    w.run_media(SECOND, &[0]);

    let own = &w.clients[0].own;
    assert_eq!(own.len(), 2, "{own:?}");
    let sending: Vec<String> = w.clients[0]
        .sending
        .iter()
        .map(|(m, _)| m.to_string())
        .collect();
    assert_eq!(
        own.iter()
            .map(|(mid, _, _)| mid.clone())
            .collect::<Vec<_>>(),
        sending,
        "each own track names the m-line it rides on"
    );
    assert_eq!(own[0].2, None, "the untagged microphone");
    assert_eq!(own[1].2.as_deref(), Some("screen"));
    // The others hear of the same ids; nobody hears of its own tracks as someone else's.
    let ids: Vec<TrackId> = own.iter().map(|(_, t, _)| t.clone()).collect();
    let heard: Vec<TrackId> = w.clients[1]
        .published
        .iter()
        .map(|(_, t)| t.clone())
        .collect();
    assert_eq!(heard, ids);
    assert!(w.clients[0].published.is_empty());
    assert_eq!(
        w.clients[1].tags.get(&ids[1]).map(String::as_str),
        Some("screen")
    );
    assert_eq!(w.clients[1].tags.len(), 1);
}
