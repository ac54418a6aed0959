//! Exactly once and in order through the in-memory store's misbehaving inbox.

use std::collections::HashMap;

use futures_util::{FutureExt, StreamExt, stream::BoxStream};
use proptest::prelude::*;
use switchboard_core::{SessionId, SharedOp};

use super::{Offer, Sequencer};
use crate::cluster::{
    memory::{Faults, MemoryStore},
    store::{Doorbell, LogEntry, Store, Write},
};

fn session(i: usize) -> SessionId {
    SessionId::parse(&format!("session{i:015}")).unwrap()
}

/// The node's side: doorbells through the sequencer, gaps read from the log.
struct Receiver {
    sequencer: Sequencer,
    got: HashMap<SessionId, Vec<String>>,
    lost: u64,
}

impl Receiver {
    fn hand(&mut self, s: &SessionId, entries: Vec<LogEntry>) {
        let got = self.got.entry(s.clone()).or_default();
        got.extend(entries.into_iter().map(|e| e.text));
    }

    fn fill(&mut self, store: &MemoryStore, s: &SessionId, after: u64) {
        let read = store.log_after(s, after).now_or_never().unwrap().unwrap();
        let (_, fresh, lost) = self.sequencer.fill(s, read.first, read.entries);
        self.lost += lost;
        self.hand(s, fresh);
    }

    fn drain(&mut self, store: &MemoryStore, inbox: &mut BoxStream<'static, Doorbell>) {
        while let Some(Some(bell)) = inbox.next().now_or_never() {
            match self.sequencer.offer(&bell.session, bell.position) {
                Offer::Apply => self.hand(&bell.session, vec![bell.entry]),
                Offer::Repeat => {}
                Offer::Gap { after } => self.fill(store, &bell.session, after),
            }
        }
    }

    /// What the node does when it may have missed doorbells: read every log past its position.
    fn resync(&mut self, store: &MemoryStore) {
        for (s, after) in self.sequencer.positions() {
            self.fill(store, &s, after);
        }
    }
}

fn run(
    targets: &[usize],
    faults: Faults,
    seed: u64,
    log_cap: usize,
) -> (Receiver, Vec<Vec<String>>) {
    let store = MemoryStore::new(faults, seed, log_cap);
    let mut inbox = store.inbox("n1").now_or_never().unwrap().unwrap();
    let mut receiver = Receiver {
        sequencer: Sequencer::default(),
        got: HashMap::new(),
        lost: 0,
    };
    for i in 0..3 {
        let attach = Write::Shared(SharedOp::Attached {
            session: session(i),
            user: "u".into(),
        });
        store
            .commit("n1", "t1", &[attach])
            .now_or_never()
            .unwrap()
            .unwrap();
        receiver.sequencer.track(session(i));
    }
    let mut sent = vec![Vec::new(); 3];
    for (n, &t) in targets.iter().enumerate() {
        let text = format!("m{n}");
        let forward = Write::Shared(SharedOp::Forward {
            to: session(t),
            kind: "message",
            text: text.as_str().into(),
        });
        store
            .commit("n2", "t2", &[forward])
            .now_or_never()
            .unwrap()
            .unwrap();
        sent[t].push(text);
        receiver.drain(&store, &mut inbox);
    }
    store.release_held();
    receiver.drain(&store, &mut inbox);
    receiver.resync(&store);
    (receiver, sent)
}

proptest! {
    #[test]
    fn every_message_is_handed_over_once_in_order(
        targets in proptest::collection::vec(0usize..3, 1..120),
        lose in 0.0f64..0.3,
        repeat in 0.0f64..0.3,
        reorder in 0.0f64..0.3,
        seed in any::<u64>(),
    ) {
        let faults = Faults { lose, repeat, reorder };
        let (receiver, sent) = run(&targets, faults, seed, 1024);
        prop_assert_eq!(receiver.lost, 0);
        for (i, texts) in sent.iter().enumerate() {
            let got = receiver.got.get(&session(i)).cloned().unwrap_or_default();
            prop_assert_eq!(&got, texts);
        }
    }
}

#[test]
fn what_the_log_no_longer_keeps_is_counted_not_invented() {
    // Every doorbell lost, and a log of 4: of 10 messages the last 4 arrive, 6 are counted lost.
    let faults = Faults {
        lose: 1.0,
        ..Faults::default()
    };
    let (receiver, _) = run(&[0; 10], faults, 1, 4);
    assert_eq!(receiver.got[&session(0)], ["m6", "m7", "m8", "m9"]);
    assert_eq!(receiver.lost, 6);
}
