use std::sync::Arc;

use proptest::prelude::*;
use switchboard_protocol::renumber;

use super::{Unreplayable, replay};
use crate::{LogRecord, SessionRecord};

fn text(seq: u64, id: &str) -> Arc<str> {
    format!(r#"{{"type":"message","seq":{seq},"id":"{id}"}}"#).into()
}

fn queued(seq: u64, inbound: u64, id: &str) -> LogRecord {
    LogRecord::Queued {
        seq,
        inbound,
        kind: "message",
        text: text(seq, id),
    }
}

fn ids(entries: &[(&'static str, Arc<str>)]) -> Vec<String> {
    entries
        .iter()
        .map(|(_, t)| {
            let v: serde_json::Value = serde_json::from_str(t).unwrap();
            format!("{}:{}", v["seq"], v["id"].as_str().unwrap_or("hello"))
        })
        .collect()
}

fn record(outbox: Vec<LogRecord>, inbound: &[&str]) -> SessionRecord {
    SessionRecord {
        outbox,
        inbound: inbound.iter().map(|id| ("message", text(0, id))).collect(),
        inbound_first: 1,
        ..SessionRecord::default()
    }
}

#[test]
fn messages_from_other_nodes_go_where_they_were_handed_over() {
    // Local a (seq 1), then inbound x and y handed over, then local b (seq 4); z not yet handed.
    let r = record(vec![queued(1, 0, "a"), queued(4, 2, "b")], &["x", "y", "z"]);
    let (first, entries) = replay(&r).unwrap();
    assert_eq!(first, 1);
    assert_eq!(ids(&entries), ["1:a", "2:x", "3:y", "4:b", "5:z"]);
}

#[test]
fn a_resume_renumbers_after_its_hello_as_the_outbox_did() {
    let hello: Arc<str> = r#"{"type":"hello","seq":3}"#.into();
    let r = record(
        vec![
            queued(1, 0, "a"),
            queued(2, 0, "b"),
            queued(3, 0, "c"),
            LogRecord::Resumed {
                last_seq: 2,
                inbound: 1,
                hello: hello.clone(),
            },
            queued(6, 1, "d"),
        ],
        &["x"],
    );
    let (first, entries) = replay(&r).unwrap();
    assert_eq!(first, 3);
    assert_eq!(ids(&entries), ["3:hello", "4:c", "5:x", "6:d"]);
}

#[test]
fn a_log_that_no_longer_reaches_back_is_refused() {
    // Handed inbound 1 before b, but the inbound log keeps only from position 2.
    let mut r = record(vec![queued(1, 0, "a"), queued(3, 1, "b")], &["y"]);
    r.inbound_first = 2;
    assert_eq!(replay(&r), Err(Unreplayable));
    // Seqs that do not add up are refused too.
    let r = record(vec![queued(1, 0, "a"), queued(5, 0, "b")], &[]);
    assert_eq!(replay(&r), Err(Unreplayable));
}

proptest! {
    /// Whatever the interleaving of local messages and messages from other nodes, the replay
    /// gives each message once, in the order queued, with the seqs the node gave them.
    #[test]
    fn replay_matches_the_outbox_it_logged(ops in proptest::collection::vec(any::<bool>(), 1..60), pending in 0usize..4) {
        let mut outbox = Vec::new();
        let mut inbound = Vec::new();
        let mut expected = Vec::new();
        let mut handed = 0;
        // A session's log always starts with a message of its own: its hello.
        for (i, local) in std::iter::once(&true).chain(&ops).enumerate() {
            let seq = expected.len() as u64 + 1;
            let id = format!("m{i}");
            if *local {
                outbox.push(queued(seq, handed, &id));
            } else {
                inbound.push(id.clone());
                handed += 1;
            }
            expected.push(format!("{seq}:{id}"));
        }
        for p in 0..pending {
            let id = format!("p{p}");
            expected.push(format!("{}:{id}", expected.len() + 1));
            inbound.push(id);
        }
        let names: Vec<&str> = inbound.iter().map(String::as_str).collect();
        let r = record(outbox, &names);
        match replay(&r) {
            Ok((first, entries)) => {
                prop_assert_eq!(first, 1);
                prop_assert_eq!(ids(&entries), expected);
                for (i, (_, t)) in entries.iter().enumerate() {
                    prop_assert_eq!(&**t, &*renumber(t, first + i as u64));
                }
            }
            Err(Unreplayable) => prop_assert!(false, "a full log replays"),
        }
    }
}
