//! The randomized run: a steady stream between two peers on random transports while one side's
//! transport drops and resumes (sometimes switching) at random points.

use std::time::{Duration, Instant};

use switchboard_protocol::{ClientEnvelope, Role, ServerEnvelope};
use switchboard_testkit::{AnyClient, Transport, any_client::accepted};

use crate::harness::{chat, expect_peer, joined, resume, server};

/// A steady stream of messages both ways between two peers on random transports; at random
/// points one side's transport is lost and later resumed, on the same transport or another.
/// Every message must arrive exactly once, in order.
/// Returns how many drops and transport switches the run made.
async fn randomized(seed: u64) -> (usize, usize) {
    use rand::{Rng, SeedableRng, rngs::StdRng};

    const TOTAL: u64 = 300;
    let mut rng = StdRng::seed_from_u64(seed);
    let server = server(|_| {}).await;
    let pick = |rng: &mut StdRng| Transport::ALL[rng.random_range(0..3)];
    let (ta, tb) = (pick(&mut rng), pick(&mut rng));
    let mut alice = joined(&server, ta, "alice", Role::Host).await;
    let bob = joined(&server, tb, "bob", Role::Guest).await;
    expect_peer(&mut alice, "peer_joined", "bob", None).await;
    let mut clients = [alice, bob];
    let names = ["alice", "bob"];
    let mut online = [true, true];
    let mut sent = [0u64; 2];
    let mut got: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    let mut log = vec![format!("seed {seed}: alice on {ta}, bob on {tb}")];
    let (mut drops, mut switches) = (0, 0);

    fn take(c: &mut AnyClient, from: &str, env: ServerEnvelope, got: &mut Vec<u64>) {
        assert_eq!(env.kind, "message", "{}: {env:?}", c.name);
        assert_eq!(env.from.as_deref(), Some(from));
        got.push(env.payload["n"].as_u64().unwrap());
    }

    let started = Instant::now();
    while sent[0] + sent[1] < TOTAL {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "bounded time: {}",
            log.join("\n")
        );
        let me = rng.random_range(0..2);
        let other = 1 - me;
        let c = &mut clients[me];
        if !online[me] {
            if rng.random_bool(0.3) {
                let to = if rng.random_bool(0.5) {
                    c.transport
                } else {
                    pick(&mut rng)
                };
                log.push(format!(
                    "{} resumes {} -> {to} at {}",
                    names[me],
                    c.transport,
                    sent[0] + sent[1]
                ));
                switches += usize::from(to != c.transport);
                resume(c, to).await;
                online[me] = true;
            }
            continue;
        }
        match rng.random_range(0..100) {
            0..4 => {
                log.push(format!(
                    "{} drops {} at {}",
                    names[me],
                    c.transport,
                    sent[0] + sent[1]
                ));
                c.drop_transport().await;
                online[me] = false;
                drops += 1;
            }
            4..20 => {
                while let Some(env) = c.try_recv() {
                    take(c, names[other], env, &mut got[me]);
                }
            }
            20..30 => {
                let k = rng.random_range(1..=4);
                let batch: Vec<ClientEnvelope> = (0..k)
                    .map(|_| {
                        sent[me] += 1;
                        chat(c, Some(names[other]), sent[me])
                    })
                    .collect();
                for answer in c.send_batch(batch).await {
                    accepted(&answer);
                }
            }
            _ => {
                sent[me] += 1;
                let env = chat(c, Some(names[other]), sent[me]);
                c.send_ok(env).await;
            }
        }
    }
    for me in 0..2 {
        if !online[me] {
            let t = clients[me].transport;
            resume(&mut clients[me], t).await;
        }
    }
    for me in 0..2 {
        let other = 1 - me;
        while (got[me].len() as u64) < sent[other] {
            let env = clients[me].recv().await;
            take(&mut clients[me], names[other], env, &mut got[me]);
        }
        let expected: Vec<u64> = (1..=sent[other]).collect();
        assert_eq!(
            got[me],
            expected,
            "{}: every message once, in order\n{}",
            names[me],
            log.join("\n")
        );
        clients[me].expect_quiet().await;
    }
    let log = log.join("\n");
    eprintln!("{log}\n{drops} drops, {switches} transport switches");
    (drops, switches)
}

/// Runs a fixed seed, which must have exercised resume.
async fn randomized_seed(seed: u64) {
    let (drops, switches) = randomized(seed).await;
    assert!(
        drops >= 5 && switches >= 2,
        "seed {seed}: {drops} drops, {switches} switches"
    );
}

#[tokio::test]
async fn randomized_drops_and_switches_seed_1() {
    randomized_seed(1).await;
}

#[tokio::test]
async fn randomized_drops_and_switches_seed_2() {
    randomized_seed(2).await;
}

#[tokio::test]
async fn randomized_drops_and_switches_seed_3() {
    randomized_seed(3).await;
}

/// `CONFORMANCE_SEED=N` runs one more seed (for reproducing a failure).
#[tokio::test]
async fn randomized_drops_and_switches_seed_from_env() {
    if let Some(seed) = std::env::var("CONFORMANCE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        randomized(seed).await;
    }
}
