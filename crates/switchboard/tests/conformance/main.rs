//! Transport conformance: WebSocket, SSE and long-poll carry the same session.
//!
//! Every scenario (`scenarios/`) is written once against `AnyClient` and runs on each ordered
//! pair of transports (the first client on one, the second on the other; `ws_ws`, `sse_sse` and
//! `poll_poll` are each transport alone). Besides its own assertions, each run must produce
//! exactly the same normalized transcript (type, room, from, id, payload of every message each
//! client read, in order) as the scenario on WebSocket alone: that is the parity check.
//!
//! The client checks on arrival that `seq` rises by exactly one, so a lost or repeated message
//! fails wherever it happens. Waits are bounded by the harness `DEADLINE`; silence is proven
//! with the ping barrier; sleeps only let a configured (short) timer pass.
//!
//! Every scenario and pair runs again with the clients on two nodes of a cluster
//! (`scenario::two_nodes::a_b`, on the real Redis; see `tests/cluster/`): alice and carol on one
//! node, bob on the other. Their transcripts must equal the single node's on WebSocket alone too.
//!
//! A randomized test (`randomized.rs`) then drives a steady stream between two peers on random
//! transports while dropping and resuming (sometimes switching) one side's transport at random
//! points.
//!
//! `harness.rs` holds the servers, clients and steps the scenarios share; this file stamps each
//! scenario into one test per pair of transports and checks parity.

mod harness;
mod randomized;
mod scenarios;

use std::future::Future;

use harness::{CLUSTER, Transcript};
use switchboard_testkit::Transport;
use tokio::sync::OnceCell;

/// Runs `scenario` on `a`/`b` and checks its transcript equals the one on WebSocket alone
/// (computed once per scenario).
async fn check_parity<F, Fut>(
    name: &str,
    reference: &OnceCell<Transcript>,
    scenario: F,
    a: Transport,
    b: Transport,
) where
    F: Fn(Transport, Transport) -> Fut,
    Fut: Future<Output = Transcript>,
{
    let got = scenario(a, b).await;
    // The reference is always the single node's.
    let reference = reference
        .get_or_init(|| CLUSTER.scope(None, scenario(Transport::Ws, Transport::Ws)))
        .await;
    assert_eq!(got.len(), reference.len());
    for ((who, lines), (_, expected)) in got.iter().zip(reference) {
        for (i, (line, want)) in lines.iter().zip(expected).enumerate() {
            assert_eq!(
                line, want,
                "{name} on {a}-{b}: {who}'s message #{i} differs from ws-ws"
            );
        }
        assert_eq!(
            lines.len(),
            expected.len(),
            "{name} on {a}-{b}: {who} read {} messages, {} on ws-ws",
            lines.len(),
            expected.len()
        );
    }
}

/// One test per ordered pair of transports, each calling the `check(a, b)` in scope.
macro_rules! pairs {
    () => {
        #[tokio::test]
        async fn ws_ws() {
            check(Transport::Ws, Transport::Ws).await
        }
        #[tokio::test]
        async fn ws_sse() {
            check(Transport::Ws, Transport::Sse).await
        }
        #[tokio::test]
        async fn ws_poll() {
            check(Transport::Ws, Transport::Poll).await
        }
        #[tokio::test]
        async fn sse_ws() {
            check(Transport::Sse, Transport::Ws).await
        }
        #[tokio::test]
        async fn sse_sse() {
            check(Transport::Sse, Transport::Sse).await
        }
        #[tokio::test]
        async fn sse_poll() {
            check(Transport::Sse, Transport::Poll).await
        }
        #[tokio::test]
        async fn poll_ws() {
            check(Transport::Poll, Transport::Ws).await
        }
        #[tokio::test]
        async fn poll_sse() {
            check(Transport::Poll, Transport::Sse).await
        }
        #[tokio::test]
        async fn poll_poll() {
            check(Transport::Poll, Transport::Poll).await
        }
    };
}

/// One test per scenario and ordered pair of transports: `scenario::a_b`.
macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use super::{OnceCell, Transcript, Transport, check_parity, scenarios};

            static REFERENCE: OnceCell<Transcript> = OnceCell::const_new();

            async fn check(a: Transport, b: Transport) {
                check_parity(stringify!($scenario), &REFERENCE, scenarios::$scenario, a, b).await;
            }

            /// The clients on two nodes of a cluster.
            mod two_nodes {
                use super::{super::CLUSTER, Transport};
                use switchboard_testkit::redis;

                async fn check(a: Transport, b: Transport) {
                    if redis::available().await {
                        let prefix = redis::unique_prefix(stringify!($scenario));
                        CLUSTER.scope(Some(prefix.clone()), super::check(a, b)).await;
                        redis::delete_prefix(&prefix).await;
                    }
                }

                pairs!();
            }

            pairs!();
        }
    )*};
}

conformance!(
    join_room,
    relay_all_types,
    errors,
    leave,
    replace,
    resume_after_drop,
    resume_switch,
    resume_hello_lost,
    sse_lifetime,
    expiry,
    host_controls,
);
