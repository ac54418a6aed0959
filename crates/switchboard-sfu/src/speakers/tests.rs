//! Speakers on a virtual clock: 20 ms Opus frames, as browsers send them.

use super::*;

const FRAME: Duration = Duration::from_millis(20);

struct Room {
    now: Instant,
    speakers: Speakers,
    /// Every list reported, with when.
    reports: Vec<(Duration, Vec<Arc<str>>)>,
    t0: Instant,
}

impl Room {
    fn new() -> Self {
        let now = Instant::now();
        Room {
            now,
            t0: now,
            speakers: Speakers::new(SpeakerConfig::default()),
            reports: Vec::new(),
        }
    }

    /// `frames` frames of time pass; each peer sends one frame a tick at `level(peer, n)`,
    /// and the detector is polled when it asks.
    fn run(&mut self, frames: u32, peers: &[&str], level: impl Fn(&str, u32) -> Option<u8>) {
        for n in 0..frames {
            for peer in peers {
                let peer: Arc<str> = (*peer).into();
                self.speakers.frame(self.now, &peer, level(&peer, n));
            }
            self.now += FRAME;
            if self.speakers.deadline().is_some_and(|d| d <= self.now)
                && let Some(list) = self.speakers.poll(self.now)
            {
                self.reports.push((self.now - self.t0, list));
            }
        }
    }

    fn lists(&self) -> Vec<Vec<&str>> {
        self.reports
            .iter()
            .map(|(_, l)| l.iter().map(|p| p.as_ref()).collect())
            .collect()
    }
}

#[test]
fn a_speaker_is_reported_once_and_again_when_they_stop() {
    let mut room = Room::new();
    // Alice talks for two seconds, Bob's microphone hears the room.
    room.run(100, &["alice", "bob"], |p, _| {
        Some(if p == "alice" { 35 } else { 70 })
    });
    assert_eq!(room.lists(), [vec!["alice"]]);
    assert_eq!(room.reports[0].0, Duration::from_millis(500));
    room.run(100, &["alice", "bob"], |_, _| Some(80));
    assert_eq!(room.lists(), [vec!["alice"], vec![]]);
    // Silence stays silent: nothing more is reported.
    room.run(500, &["alice", "bob"], |_, _| Some(90));
    assert_eq!(room.reports.len(), 2);
}

#[test]
fn loudest_first_and_changes_at_most_every_interval() {
    let mut room = Room::new();
    // Both talk; Bob is louder. Alice alternates loud and quiet frames every frame.
    room.run(200, &["alice", "bob"], |p, n| {
        Some(match p {
            "bob" => 20,
            _ if n % 2 == 0 => 40,
            _ => 100,
        })
    });
    assert_eq!(room.lists(), [vec!["bob", "alice"]]);
    // Speech toggling every 100 ms is reported no more than once per 500 ms.
    room.run(500, &["alice", "bob"], |p, n| {
        Some(if p == "alice" && (n / 5) % 2 == 0 {
            30
        } else {
            90
        })
    });
    let times: Vec<Duration> = room.reports.iter().map(|(t, _)| *t).collect();
    assert!(
        times
            .windows(2)
            .all(|w| w[1] - w[0] >= Duration::from_millis(500))
    );
}

#[test]
fn a_click_is_not_speech_and_no_level_is_silence() {
    let mut room = Room::new();
    room.run(100, &["alice", "bob"], |p, n| match p {
        "alice" => Some(if n % 25 == 0 { 10 } else { 100 }),
        _ => None,
    });
    assert!(room.reports.is_empty());
}

#[test]
fn a_forgotten_speaker_leaves_the_list() {
    let mut room = Room::new();
    room.run(50, &["alice"], |_, _| Some(30));
    assert_eq!(room.lists(), [vec!["alice"]]);
    room.speakers.forget("alice");
    // Nobody sends audio any more; the next poll reports the empty list, then the detector
    // stops asking for time.
    let deadline = room.speakers.deadline().expect("an interval is open");
    assert_eq!(room.speakers.poll(deadline), Some(vec![]));
    assert_eq!(room.speakers.deadline(), None);
}
