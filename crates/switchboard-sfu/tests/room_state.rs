//! What the SFU tells a room about its members' media beyond the tracks themselves: who is
//! speaking. On the virtual network of `common`: str0m clients, a virtual clock, no sockets.

mod common;

use std::time::Duration;

use common::World;
use str0m::media::MediaKind;

const AUDIO: &[MediaKind] = &[MediaKind::Audio];
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
