//! The WebSocket frame reader, fed what a client sends in any number of reads: the messages it
//! hands over do not depend on how the bytes were cut into reads, none is over the limit, and
//! nothing panics.
#![no_main]

use std::ops::ControlFlow;

use libfuzzer_sys::fuzz_target;
use switchboard_protocol::ws::reader::{Inbound, Reader};

/// The limit the reader is built with: small, so that fuzzed frames reach it.
const MAX_MESSAGE: usize = 4096;

/// What one message was, owned, to compare two runs.
#[derive(Debug, PartialEq, Eq)]
enum Got {
    Text(String),
    Binary,
    Ping(Vec<u8>),
    Pong,
    Close(Option<u16>),
}

/// Feeds `bytes` in reads of the given sizes (the rest in one read); what came out, and how the
/// stream ended (`Err` for a violation, `true` for a stop after a close).
fn run(bytes: &[u8], cuts: &[usize]) -> (Vec<Got>, Result<bool, String>) {
    let mut reader = Reader::new(MAX_MESSAGE);
    let mut got = Vec::new();
    let mut rest = bytes.to_vec();
    let mut cuts = cuts.iter();
    while !rest.is_empty() {
        let take = cuts
            .next()
            .map_or(rest.len(), |n| (*n).clamp(1, rest.len()));
        let tail = rest.split_off(take);
        let mut read = std::mem::replace(&mut rest, tail);
        let flow = reader.feed(&mut read, &mut |inbound| {
            let (message, flow) = match inbound {
                Inbound::Text(text) => {
                    assert!(text.len() <= MAX_MESSAGE, "a message over the limit");
                    (Got::Text(text.to_owned()), ControlFlow::Continue(()))
                }
                Inbound::Binary => (Got::Binary, ControlFlow::Continue(())),
                Inbound::Ping(payload) => (Got::Ping(payload.to_vec()), ControlFlow::Continue(())),
                Inbound::Pong => (Got::Pong, ControlFlow::Continue(())),
                Inbound::Close(code) => (Got::Close(code), ControlFlow::Break(())),
            };
            got.push(message);
            flow
        });
        match flow {
            Err(violation) => return (got, Err(format!("{violation:?}"))),
            Ok(ControlFlow::Break(())) => return (got, Ok(true)),
            Ok(ControlFlow::Continue(())) => {}
        }
    }
    (got, Ok(false))
}

fuzz_target!(|data: &[u8]| {
    // The first bytes say where to cut the reads; the rest is the stream.
    let Some((&n, data)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 8).min(data.len());
    let (cuts, stream) = data.split_at(n);
    let cuts: Vec<usize> = cuts.iter().map(|&c| usize::from(c) + 1).collect();
    let whole = run(stream, &[]);
    let pieces = run(stream, &cuts);
    assert_eq!(
        whole, pieces,
        "the messages depend on how the reads were cut"
    );
});
