//! The hub's per-message path, measured without IO: pairs in rooms of two relay 256-byte `message`
//! payloads to each other, the outputs are drained after each call as the server does, each
//! recipient's transport takes the message at once, and every client acknowledges every 32
//! messages, as the benchmark client does against the server.
//!
//! `relay` counts wall time, but only instruction counts are repeatable on a shared machine: run it
//! under callgrind with collection limited to [`run_relays`] (commands in `docs/benchmarks.md`).
//! `idle N` opens N sessions joined in rooms of two and holds them, for a heap profiler.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use rand::{SeedableRng, rngs::StdRng};
use switchboard_core::{Attachment, CoreConfig, Identity, Now, Outputs, RateLimits, Transmit};

/// The hub with each client's sink its index, as the server's hub holds each transport's.
type Hub = switchboard_core::Hub<usize>;
use switchboard_protocol::{Role, RoomGrant};

const PAIRS: usize = 50;
const ACK_EVERY: u64 = 32;
const T0_UNIX_MS: u64 = 1_763_700_000_000;

struct Client {
    at: Attachment,
    peer: String,
    room: String,
    seq: u64,
    received: u64,
    last_server_seq: u64,
}

fn config() -> CoreConfig {
    // Budgets high enough never to drop, but still charged, as on a server under load.
    let rate = RateLimits {
        messages_per_sec: 1e9,
        message_burst: 1e9,
        room_messages_per_sec: 1e9,
        room_message_burst: 1e9,
        joins_per_sec_per_address: 1e9,
        join_burst_per_address: 1e9,
        ..RateLimits::default()
    };
    CoreConfig {
        rate,
        max_sessions_per_address: usize::MAX,
        ..CoreConfig::default()
    }
}

fn now() -> Now {
    // A fixed moment: the hub never reads a clock, so nothing here depends on the run.
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    Now {
        at: *START.get_or_init(Instant::now),
        unix_ms: T0_UNIX_MS,
    }
}

fn transmit(hub: &mut Hub, c: &mut Client) {
    match hub.transmit(&c.at, 64) {
        Transmit::Messages { batch, .. } => {
            c.last_server_seq = batch.last().map_or(c.last_server_seq, |m| m.seq);
        }
        Transmit::Close(reason) => panic!("closed: {reason:?}"),
        Transmit::Idle => {}
    }
}

/// Takes the hub's outputs, as the server does after every call.
fn drain(hub: &mut Hub, outputs: &mut Outputs<usize>) {
    hub.drain_outputs(outputs);
    black_box(&outputs.ready);
    outputs.ready.clear();
    outputs.events.drain(..).for_each(|e| {
        black_box(e);
    });
}

fn send(hub: &mut Hub, c: &mut Client, text: &str) {
    c.seq += 1;
    hub.receive(&c.at, text, now())
        .unwrap_or_else(|e| panic!("refused {text}: {e:?}"));
}

/// Opens `pairs` pairs of sessions, each pair joined in its own room, with every frame so far taken.
fn open_pairs(pairs: usize) -> (Hub, Vec<Client>) {
    let mut hub = Hub::new(config(), StdRng::seed_from_u64(7));
    let mut outputs = Outputs::default();
    let mut clients = Vec::new();
    for i in 0..pairs * 2 {
        let room = format!("room-{}", i / 2);
        let identity = Identity {
            user: format!("user-{i}").into(),
            role: Role::Guest,
            name: None,
            grant: RoomGrant::parse(&room).expect("a valid room"),
            lobby: false,
            address: Some(std::net::IpAddr::from([127, 0, 0, 1 + (i % 8) as u8])),
            ice_servers: Vec::new(),
        };
        let at = hub.open(identity, now()).expect("a session");
        hub.connect(&at, i);
        let peer = format!("p{i}");
        let mut c = Client {
            at,
            peer: peer.clone(),
            room: room.clone(),
            seq: 0,
            received: 0,
            last_server_seq: 0,
        };
        let join = format!(
            r#"{{"type":"join","room":"{room}","seq":1,"ts":{T0_UNIX_MS},"payload":{{"peer":"{peer}"}}}}"#
        );
        send(&mut hub, &mut c, &join);
        drain(&mut hub, &mut outputs);
        clients.push(c);
    }
    for c in &mut clients {
        transmit(&mut hub, c);
    }
    drain(&mut hub, &mut outputs);
    (hub, clients)
}

/// Client frames are built outside [`run_relays`], so only the hub's work is counted.
fn message(c: &Client, to: &str, payload: &str) -> String {
    format!(
        r#"{{"type":"message","room":"{}","seq":{},"ts":{T0_UNIX_MS},"to":"{to}","payload":{payload}}}"#,
        c.room,
        c.seq + 1
    )
}

fn ack(c: &Client, server_seq: u64) -> String {
    format!(
        r#"{{"type":"ack","seq":{},"ts":{T0_UNIX_MS},"payload":{{"seq":{server_seq}}}}}"#,
        c.seq + 1
    )
}

/// One relay: the sender's frame into the hub, the recipient's transport takes what is queued, and
/// the recipient acknowledges every 32 messages. Everything the hub does per relay happens here.
#[inline(never)]
fn run_relays(
    hub: &mut Hub,
    outputs: &mut Outputs<usize>,
    from: &mut Client,
    to: &mut Client,
    text: &str,
    ack_text: &mut String,
) {
    send(hub, from, text);
    drain(hub, outputs);
    let frames = match hub.transmit(&to.at, 64) {
        Transmit::Messages { batch, .. } => batch,
        other => panic!("expected the relayed message, got {other:?}"),
    };
    to.received += frames.len() as u64;
    to.last_server_seq = frames.last().map_or(to.last_server_seq, |f| f.seq);
    black_box(&frames);
    drop(frames);
    if to.received.is_multiple_of(ACK_EVERY) {
        send(hub, to, ack_text);
        ack_text.clear();
        drain(hub, outputs);
    }
}

fn relay(rounds: usize) {
    let (mut hub, mut clients) = open_pairs(PAIRS);
    let payload = format!(r#"{{"text":"{}"}}"#, "x".repeat(256 - 11));
    assert_eq!(payload.len(), 256);
    let started = Instant::now();
    let mut relays = 0u64;
    let mut ack_text = String::new();
    let mut outputs = Outputs::default();
    for _ in 0..rounds {
        for pair in clients.chunks_mut(2) {
            for direction in 0..2 {
                let (first, second) = pair.split_at_mut(1);
                let (from, to) = if direction == 0 {
                    (&mut first[0], &mut second[0])
                } else {
                    (&mut second[0], &mut first[0])
                };
                let text = message(from, &to.peer, &payload);
                if (to.received + 1).is_multiple_of(ACK_EVERY) {
                    // Sent once this message arrived: it acknowledges the recipient's next seq.
                    ack_text = ack(to, to.last_server_seq + 1);
                }
                run_relays(&mut hub, &mut outputs, from, to, &text, &mut ack_text);
                relays += 1;
            }
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{relays} relays, {:.0} ns per relay (wall clock; use callgrind for repeatable figures)",
        elapsed.as_nanos() as f64 / relays as f64
    );
}

fn idle(sessions: usize) {
    let (hub, clients) = open_pairs(sessions / 2);
    println!("{} idle sessions open", clients.len());
    // Held until here so a heap profiler's peak includes them.
    std::thread::sleep(Duration::from_millis(10));
    black_box((hub, clients));
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let count = |default| args.get(1).and_then(|n| n.parse().ok()).unwrap_or(default);
    match args.first().map(String::as_str) {
        Some("idle") => idle(count(2000)),
        Some("relay") | None => relay(count(200)),
        Some(other) => panic!("unknown mode {other}: relay [ROUNDS] or idle [SESSIONS]"),
    }
}
