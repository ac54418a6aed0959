//! Transport conformance: WebSocket, SSE and long-poll carry the same session.
//!
//! Every scenario below is written once against [`AnyClient`] and runs on each ordered pair of
//! transports (the first client on one, the second on the other; `ws_ws`, `sse_sse` and
//! `poll_poll` are each transport alone). Besides its own assertions, each run must produce
//! exactly the same normalized transcript (type, room, from, id, payload of every message each
//! client read, in order) as the scenario on WebSocket alone: that is the parity check.
//!
//! The client checks on arrival that `seq` rises by exactly one, so a lost or repeated message
//! fails wherever it happens. Waits are bounded by the harness `DEADLINE`; silence is proven
//! with the ping barrier; sleeps only let a configured (short) timer pass.
//!
//! Every scenario and pair runs again with the clients on two nodes of a cluster
//! (`scenario::two_nodes::a_b`, on the real Redis; see `tests/cluster.rs`): alice and carol on one
//! node, bob on the other. Their transcripts must equal the single node's on WebSocket alone too.
//!
//! A randomized test then drives a steady stream between two peers on random transports while
//! dropping and resuming (sometimes switching) one side's transport at random points.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use switchboard::config::Config;
use switchboard_core::Stats;
use switchboard_protocol::{ClientEnvelope, Role, ServerEnvelope};
use switchboard_testkit::{
    AnyClient, End, TestServer, Transport, any_client::accepted, server::no_budgets, unix_ms,
};
use tokio::sync::OnceCell;

/// The room every scenario uses; tokens grant `room-*`.
const ROOM: &str = "room-1";
const GRANT: &str = "room-*";

/// Each client's normalized transcript, by name.
type Transcript = Vec<(String, Vec<Value>)>;

fn transcript(clients: &[&AnyClient]) -> Transcript {
    clients
        .iter()
        .map(|c| (c.name.clone(), c.transcript().to_vec()))
        .collect()
}

tokio::task_local! {
    /// The Redis key prefix of a `two_nodes` test's cluster; `None` (or unset): one server.
    static CLUSTER: Option<String>;
}

/// Where a scenario's clients connect: one server, or two nodes of a cluster.
struct Place {
    servers: Vec<TestServer>,
}

impl Place {
    /// Waits until the nodes' sessions together satisfy `cond` (bounded by the harness deadline).
    async fn wait_for(&self, what: &str, cond: impl Fn(&Stats) -> bool) {
        switchboard_testkit::eventually(what, || async {
            let mut all = Stats::default();
            for server in &self.servers {
                let stats = server.running().node().hub().stats();
                all.sessions += stats.sessions;
                all.attached += stats.attached;
            }
            if cond(&all) { Ok(()) } else { Err(all) }
        })
        .await;
    }
}

/// A server with the settings every scenario shares, then `adjust`; in a `two_nodes` test, two
/// nodes of a cluster of their own with those settings.
async fn server(adjust: impl Fn(&mut Config)) -> Place {
    let prefix = CLUSTER.try_with(Clone::clone).ok().flatten();
    let nodes = if prefix.is_some() { 2 } else { 1 };
    let mut servers = Vec::new();
    for n in 0..nodes {
        let server = TestServer::start_with(|c| {
            c.sse_retry_ms = 10;
            c.poll_wait_ms = 5_000;
            // Budgets are another suite's concern; these scenarios send fast on purpose.
            no_budgets(c);
            adjust(c);
            if let Some(prefix) = &prefix {
                c.redis_url = Some(switchboard_testkit::redis::url());
                c.redis_prefix = prefix.clone();
                c.node_id = Some(format!("node-{n}"));
            }
        })
        .await;
        servers.push(server);
    }
    Place { servers }
}

/// A client of `user`; on two nodes, bob's (and dave's) on the second, the others' on the first.
async fn client(place: &Place, t: Transport, user: &str, role: Role) -> AnyClient {
    let home = usize::from(matches!(user, "bob" | "dave")).min(place.servers.len() - 1);
    AnyClient::connect(&place.servers[home], t, user, GRANT, role).await
}

/// Joins [`ROOM`] as peer `c.name`; returns `joined`.
async fn join(c: &mut AnyClient, meta: Option<Value>) -> Value {
    let mut payload = json!({"peer": c.name});
    if let Some(meta) = meta {
        payload["meta"] = meta;
    }
    let env = c.msg("join").room(ROOM).id("join").payload(payload);
    c.send_ok(env).await;
    let joined = c.expect("joined").await;
    assert_eq!(joined.room.as_deref(), Some(ROOM));
    assert_eq!(joined.id.as_deref(), Some("join"));
    assert_eq!(joined.payload["peer"], c.name.as_str());
    joined.payload
}

async fn joined(server: &Place, t: Transport, user: &str, role: Role) -> AnyClient {
    let mut c = client(server, t, user, role).await;
    join(&mut c, None).await;
    c
}

/// The next message must be `peer_joined` / `peer_left` for `peer`.
async fn expect_peer(c: &mut AnyClient, kind: &str, peer: &str, reason: Option<&str>) {
    let env = c.expect(kind).await;
    assert_eq!(env.room.as_deref(), Some(ROOM));
    assert_eq!(env.payload["peer"], peer, "{env:?}");
    if let Some(reason) = reason {
        assert_eq!(env.payload["reason"], reason, "{env:?}");
    }
}

/// A `message` to `to` (or the room) carrying `n`.
fn chat(c: &mut AnyClient, to: Option<&str>, n: u64) -> ClientEnvelope {
    let env = c
        .msg("message")
        .room(ROOM)
        .payload(json!({"n": n, "text": format!("{} #{n}", c.name)}));
    match to {
        Some(to) => env.to(to),
        None => env,
    }
}

/// The next message must be `from`'s chat message `n`.
async fn expect_chat(c: &mut AnyClient, from: &str, n: u64) {
    let env = c.expect("message").await;
    assert_eq!(env.from.as_deref(), Some(from), "{env:?}");
    assert_eq!(env.payload["n"], n, "{}: {env:?}", c.name);
}

/// Sends a relayed message and checks it arrives at `to` with `from`, `room`, `id` and the
/// payload verbatim.
async fn relay(
    from: &mut AnyClient,
    to: &mut AnyClient,
    kind: &str,
    id: Option<&str>,
    payload: Value,
) {
    let mut env = from
        .msg(kind)
        .room(ROOM)
        .to(&to.name.clone())
        .payload(payload.clone());
    env.id = id.map(str::to_owned);
    from.send_ok(env).await;
    let got = to.expect(kind).await;
    assert_eq!(got.room.as_deref(), Some(ROOM));
    assert_eq!(got.from.as_deref(), Some(from.name.as_str()));
    assert_eq!(got.id.as_deref(), id);
    assert_eq!(got.payload, payload);
}

/// The transport `t` switches to when it must change: the other client's, else the next one.
fn switched(t: Transport, other: Transport) -> Transport {
    if t != other { other } else { t.next() }
}

/// Checks a resume's `hello`: present whenever the transport changed or on WebSocket, with the
/// session's peer and the last client seq the server accepted.
fn check_resume_hello(c: &AnyClient, from: Transport, hello: Option<&ServerEnvelope>) {
    let must = from != c.transport || c.transport == Transport::Ws;
    assert_eq!(
        hello.is_some(),
        must,
        "{}: hello on {from} -> {}",
        c.name,
        c.transport
    );
    if let Some(hello) = hello {
        assert_eq!(hello.payload["peer"], c.name.as_str());
        assert_eq!(hello.payload["resumed"], true);
    }
}

async fn resume(c: &mut AnyClient, to: Transport) {
    let from = c.transport;
    let hello = c.resume(to).await;
    check_resume_hello(c, from, hello.as_ref());
}

/// The scenarios; each returns its clients' transcripts.
mod scenarios {
    use super::*;

    /// `join`: `joined` with the members, `peer_joined` to the others, idempotent rejoin.
    pub async fn join_room(a: Transport, b: Transport) -> Transcript {
        let server = server(|_| {}).await;
        let mut alice = client(&server, a, "alice", Role::Host).await;
        let joined = join(&mut alice, Some(json!({"device": "laptop"}))).await;
        assert_eq!(joined["role"], "host");
        assert_eq!(joined["mode"], "free_for_all");
        assert_eq!(joined["peers"], json!([]));
        assert_eq!(joined["ice_servers"], json!([]));

        let mut bob = client(&server, b, "bob", Role::Guest).await;
        let joined = join(&mut bob, None).await;
        assert_eq!(joined["role"], "guest");
        assert_eq!(joined["peers"][0]["peer"], "alice");
        assert_eq!(joined["peers"][0]["role"], "host");
        assert_eq!(joined["peers"][0]["meta"], json!({"device": "laptop"}));
        expect_peer(&mut alice, "peer_joined", "bob", None).await;

        // A second join answers `joined` again and tells nobody.
        let env = bob.msg("join").room(ROOM).id("again");
        bob.send_ok(env).await;
        let again = bob.expect("joined").await;
        assert_eq!(again.id.as_deref(), Some("again"));
        assert_eq!(again.payload["peers"][0]["peer"], "alice");
        alice.expect_quiet().await;
        bob.expect_quiet().await;
        transcript(&[&alice, &bob])
    }

    /// Every relayed type, targeted and broadcast, delivered verbatim to its recipients only.
    pub async fn relay_all_types(a: Transport, b: Transport) -> Transcript {
        let server = server(|_| {}).await;
        let mut alice = joined(&server, a, "alice", Role::Host).await;
        let mut bob = joined(&server, b, "bob", Role::Guest).await;
        expect_peer(&mut alice, "peer_joined", "bob", None).await;
        let mut carol = joined(&server, a, "carol", Role::Guest).await;
        expect_peer(&mut alice, "peer_joined", "carol", None).await;
        expect_peer(&mut bob, "peer_joined", "carol", None).await;

        let sdp = "v=0\r\no=- 46117 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
        relay(
            &mut alice,
            &mut bob,
            "offer",
            Some("o-1"),
            json!({"type": "offer", "sdp": sdp}),
        )
        .await;
        relay(
            &mut bob,
            &mut alice,
            "answer",
            None,
            json!({"type": "answer", "sdp": sdp}),
        )
        .await;
        relay(
            &mut alice,
            &mut bob,
            "call_start",
            Some("c-1"),
            json!({"call_id": "call-1"}),
        )
        .await;

        // Candidates, the last one the end-of-candidates marker, in one batch.
        let candidates = [
            json!({"candidate": "candidate:1 1 udp 2122260223 192.0.2.10 54400 typ host", "sdp_mid": "0", "sdp_m_line_index": 0}),
            json!({"candidate": "candidate:2 1 udp 1686052607 198.51.100.7 61000 typ srflx", "sdp_mid": "0", "sdp_m_line_index": 0, "username_fragment": "uf"}),
            json!({"candidate": "", "sdp_mid": "0", "sdp_m_line_index": 0}),
        ];
        let batch: Vec<ClientEnvelope> = candidates
            .iter()
            .map(|p| {
                bob.msg("candidate")
                    .room(ROOM)
                    .to("alice")
                    .payload(p.clone())
            })
            .collect();
        for answer in bob.send_batch(batch).await {
            accepted(&answer);
        }
        for p in &candidates {
            let got = alice.expect("candidate").await;
            assert_eq!(got.from.as_deref(), Some("bob"));
            assert_eq!(&got.payload, p);
        }

        relay(
            &mut bob,
            &mut alice,
            "call_end",
            None,
            json!({"call_id": "call-1", "reason": "hangup"}),
        )
        .await;
        relay(
            &mut alice,
            &mut carol,
            "message",
            Some("m-1"),
            json!({"text": "hi carol", "nested": {"list": [1, 2.5, null, "x"]}}),
        )
        .await;

        // A broadcast reaches every member but the sender.
        let env = bob
            .msg("message")
            .room(ROOM)
            .id("all")
            .payload(json!({"text": "hello everyone"}));
        bob.send_ok(env).await;
        for c in [&mut alice, &mut carol] {
            let got = c.expect("message").await;
            assert_eq!(got.from.as_deref(), Some("bob"));
            assert_eq!(got.id.as_deref(), Some("all"));
            assert_eq!(got.payload, json!({"text": "hello everyone"}));
        }

        // `ack` has no answer.
        alice.ack().await;
        carol.ack().await;
        for c in [&mut alice, &mut bob, &mut carol] {
            c.expect_quiet().await;
        }
        transcript(&[&alice, &bob, &carol])
    }

    /// Every error code a message can earn, answered on the stream (and in the POST answer).
    pub async fn errors(a: Transport, b: Transport) -> Transcript {
        let server = server(|c| c.max_peers = 2).await;
        let mut alice = joined(&server, a, "alice", Role::Host).await;
        let mut bob = joined(&server, b, "bob", Role::Guest).await;
        expect_peer(&mut alice, "peer_joined", "bob", None).await;

        // invalid_message: not JSON (consumes no seq), a missing `to`, a message to yourself.
        let e = alice.send_text_refused("{oops", "invalid_message").await;
        assert!(e.payload.get("client_seq").is_none(), "{e:?}");
        let env = alice.msg("offer").room(ROOM).payload(json!({"sdp": "v=0"}));
        let e = alice.send_refused(env, "invalid_message").await;
        assert_eq!(e.payload["client_seq"], alice.seq);
        assert_eq!(e.payload["type"], "offer");
        let env = chat(&mut alice, Some("alice"), 0);
        alice.send_refused(env, "invalid_message").await;

        // unknown_type.
        let env = alice.msg("teleport").room(ROOM).id("t-1");
        let e = alice.send_refused(env, "unknown_type").await;
        assert_eq!(e.id.as_deref(), Some("t-1"));

        // payload_too_large: a field over its limit, and a frame over max_frame_bytes.
        let env = alice
            .msg("candidate")
            .room(ROOM)
            .to("bob")
            .payload(json!({"candidate": "x".repeat(2000)}));
        alice.send_refused(env, "payload_too_large").await;
        let env = chat(&mut alice, Some("bob"), 0).payload(json!({"blob": "y".repeat(70_000)}));
        alice.send_refused(env, "payload_too_large").await;

        // forbidden: a room outside the grant, a `from` naming another peer.
        let env = alice.msg("join").room("lobby");
        alice.send_refused(env, "forbidden").await;
        let seq = alice.next_seq();
        let forged = json!({"type": "message", "room": ROOM, "seq": seq, "ts": unix_ms(), "from": "bob", "payload": {}});
        alice
            .send_text_refused(&forged.to_string(), "forbidden")
            .await;

        // not_in_room, unknown_peer (with the room set on the error).
        let env = alice
            .msg("offer")
            .room("room-2")
            .to("bob")
            .payload(json!({"sdp": "v=0"}));
        let e = alice.send_refused(env, "not_in_room").await;
        assert_eq!(e.room.as_deref(), Some("room-2"));
        let env = alice
            .msg("offer")
            .room(ROOM)
            .to("zed")
            .id("x")
            .payload(json!({"sdp": "v=0"}));
        let e = alice.send_refused(env, "unknown_peer").await;
        assert_eq!(e.room.as_deref(), Some(ROOM));
        assert_eq!(e.id.as_deref(), Some("x"));

        // duplicate_seq (not consumed), stale_ts (consumed).
        let env = ClientEnvelope::new("ping", alice.seq, unix_ms());
        let e = alice.send_refused(env, "duplicate_seq").await;
        assert_eq!(e.payload["client_seq"], alice.seq);
        let env = ClientEnvelope::new("ping", alice.next_seq(), unix_ms() - 120_000);
        alice.send_refused(env, "stale_ts").await;
        let env = ClientEnvelope::new("ping", alice.seq, unix_ms());
        alice.send_refused(env, "duplicate_seq").await;

        // forbidden for a guest in host_only mode, and for a guest's `mode`.
        let env = alice
            .msg("mode")
            .room(ROOM)
            .id("m")
            .payload(json!({"mode": "host_only"}));
        alice.send_ok(env).await;
        assert_eq!(
            alice.expect("mode_changed").await.payload["mode"],
            "host_only"
        );
        assert_eq!(bob.expect("mode_changed").await.payload["by"], "alice");
        let env = chat(&mut bob, None, 1);
        bob.send_refused(env, "forbidden").await;
        let env = bob
            .msg("mode")
            .room(ROOM)
            .payload(json!({"mode": "free_for_all"}));
        bob.send_refused(env, "forbidden").await;
        let env = bob.msg("kick").room(ROOM).payload(json!({"peer": "alice"}));
        bob.send_refused(env, "forbidden").await;
        let env = chat(&mut bob, Some("zed"), 2);
        bob.send_refused(env, "unknown_peer").await;

        // peer_taken and room_full (max_peers = 2).
        let mut carol = client(&server, a, "carol", Role::Guest).await;
        let env = carol
            .msg("join")
            .room(ROOM)
            .payload(json!({"peer": "alice"}));
        carol.send_refused(env, "peer_taken").await;
        let env = carol
            .msg("join")
            .room(ROOM)
            .payload(json!({"peer": "carol"}));
        let e = carol.send_refused(env, "room_full").await;
        assert_eq!(e.room.as_deref(), Some(ROOM));

        // A batch is handled in order, message by message.
        let batch = vec![
            chat(&mut alice, Some("bob"), 10),
            alice.msg("teleport"),
            chat(&mut alice, Some("bob"), 11),
        ];
        let answers = alice.send_batch(batch).await;
        let e = alice.expect_error("unknown_type").await;
        if a != Transport::Ws {
            accepted(&answers[0]);
            accepted(&answers[2]);
            let refused = answers[1].as_ref().unwrap();
            assert_eq!(refused["accepted"], false);
            assert_eq!(refused["error"], e.payload);
        }
        expect_chat(&mut bob, "alice", 10).await;
        expect_chat(&mut bob, "alice", 11).await;

        // None of it reached anyone else, and every connection is still healthy.
        for c in [&mut alice, &mut bob, &mut carol] {
            c.expect_quiet().await;
        }
        transcript(&[&alice, &bob, &carol])
    }

    /// `leave`: `left` to the sender, `peer_left` to the others, idempotent; rejoin works.
    pub async fn leave(a: Transport, b: Transport) -> Transcript {
        let server = server(|_| {}).await;
        let mut alice = joined(&server, a, "alice", Role::Host).await;
        let mut bob = joined(&server, b, "bob", Role::Guest).await;
        expect_peer(&mut alice, "peer_joined", "bob", None).await;

        let env = bob.msg("leave").room(ROOM).id("l-1");
        bob.send_ok(env).await;
        let left = bob.expect("left").await;
        assert_eq!(left.id.as_deref(), Some("l-1"));
        assert_eq!(left.payload["reason"], "left");
        expect_peer(&mut alice, "peer_left", "bob", Some("left")).await;

        let env = bob.msg("leave").room(ROOM);
        bob.send_ok(env).await;
        bob.expect("left").await;
        alice.expect_quiet().await;

        let env = chat(&mut bob, Some("alice"), 1);
        bob.send_refused(env, "not_in_room").await;

        join(&mut bob, None).await;
        expect_peer(&mut alice, "peer_joined", "bob", None).await;
        let env = alice.msg("leave").room(ROOM);
        alice.send_ok(env).await;
        alice.expect("left").await;
        expect_peer(&mut bob, "peer_left", "alice", Some("left")).await;
        alice.expect_quiet().await;
        bob.expect_quiet().await;
        transcript(&[&alice, &bob])
    }

    /// A second session of the same user joins: the first gets `replaced` and its stream ends.
    pub async fn replace(a: Transport, b: Transport) -> Transcript {
        // A long-poll client stops polling after `replaced`; the server forgets the session once
        // it has been silent for the (short) heartbeat timeout.
        let server = server(|c| {
            c.heartbeat_ms = 100;
            c.heartbeat_timeout_ms = 500;
            c.poll_wait_ms = 300;
            c.sse_heartbeat_ms = 100;
        })
        .await;
        let mut alice = joined(&server, a, "alice", Role::Host).await;
        let mut bob = joined(&server, b, "bob", Role::Guest).await;
        expect_peer(&mut alice, "peer_joined", "bob", None).await;

        let mut alice2 = client(&server, b, "alice", Role::Host).await;
        let joined = join(&mut alice2, None).await;
        assert_eq!(joined["peers"][0]["peer"], "bob");
        assert_eq!(joined["peers"].as_array().unwrap().len(), 1);

        let replaced = alice.expect("replaced").await;
        assert_eq!(replaced.room.as_deref(), Some(ROOM));
        let end = alice.expect_end().await;
        match a {
            Transport::Ws => assert_eq!(end, End::WsClose(Some(4001))),
            Transport::Sse | Transport::Poll => assert_eq!(
                end,
                End::Refused {
                    status: 410,
                    code: "session_expired".into()
                }
            ),
        }
        expect_peer(&mut bob, "peer_left", "alice", Some("replaced")).await;
        expect_peer(&mut bob, "peer_joined", "alice", None).await;

        let env = chat(&mut alice2, Some("bob"), 1);
        alice2.send_ok(env).await;
        expect_chat(&mut bob, "alice", 1).await;
        let env = chat(&mut bob, Some("alice"), 2);
        bob.send_ok(env).await;
        expect_chat(&mut alice2, "bob", 2).await;
        alice2.expect_quiet().await;
        bob.expect_quiet().await;
        // The replaced session is gone from the server, whatever carried it.
        server
            .wait_for("the replaced session is removed", |s| s.sessions == 2)
            .await;
        let mut t = transcript(&[&alice, &alice2, &bob]);
        t[1].0 = "alice2".into();
        t
    }

    /// A client loses its transport and comes back on the same one: what was sent meanwhile
    /// arrives once, in order, and its peer never sees it leave.
    pub async fn resume_after_drop(a: Transport, b: Transport) -> Transcript {
        let server = server(|_| {}).await;
        let mut alice = joined(&server, a, "alice", Role::Host).await;
        let mut bob = joined(&server, b, "bob", Role::Guest).await;
        expect_peer(&mut alice, "peer_joined", "bob", None).await;

        for (me, other, t) in [(0, 1, a), (1, 0, b)] {
            let pair = [&mut alice, &mut bob];
            let other_name = pair[other].name.clone();
            let my_name = pair[me].name.clone();
            // One message is in flight as the transport dies.
            let env = chat(pair[other], Some(&my_name), 0);
            pair[other].send_ok(env).await;
            pair[me].drop_transport().await;
            for n in 1..=3 {
                let env = chat(pair[other], Some(&my_name), n);
                pair[other].send_ok(env).await;
            }
            let env = pair[other]
                .msg("offer")
                .room(ROOM)
                .to(&my_name)
                .payload(json!({"sdp": "v=0 resumed"}));
            pair[other].send_ok(env).await;
            let env = chat(pair[other], None, 4);
            pair[other].send_ok(env).await;
            // No peer_left, nothing at all, for the peer.
            pair[other].expect_quiet().await;

            resume(pair[me], t).await;
            for n in 0..=3 {
                expect_chat(pair[me], &other_name, n).await;
            }
            assert_eq!(pair[me].expect("offer").await.payload["sdp"], "v=0 resumed");
            expect_chat(pair[me], &other_name, 4).await;
            pair[me].expect_quiet().await;

            // And the resumed session sends as before.
            let env = chat(pair[me], Some(&other_name), 5);
            pair[me].send_ok(env).await;
            expect_chat(pair[other], &my_name, 5).await;
        }
        alice.expect_quiet().await;
        bob.expect_quiet().await;
        transcript(&[&alice, &bob])
    }

    /// Resume on another transport, for each client in turn, and back again. Messages the client
    /// sent just before losing a WebSocket are sent again after the `hello` if the server missed
    /// them; either way they arrive exactly once.
    pub async fn resume_switch(a: Transport, b: Transport) -> Transcript {
        let server = server(|_| {}).await;
        let mut alice = joined(&server, a, "alice", Role::Host).await;
        let mut bob = joined(&server, b, "bob", Role::Guest).await;
        expect_peer(&mut alice, "peer_joined", "bob", None).await;

        let hops = [(0, switched(a, b)), (1, switched(b, a)), (0, a)];
        for (round, (me, to)) in hops.into_iter().enumerate() {
            let other = 1 - me;
            let pair = [&mut alice, &mut bob];
            let other_name = pair[other].name.clone();
            let my_name = pair[me].name.clone();
            let base = 10 * round as u64;
            for n in base..base + 2 {
                let env = chat(pair[me], Some(&other_name), n);
                pair[me].send_ok(env).await;
            }
            pair[me].drop_transport().await;
            for n in base..base + 3 {
                let env = chat(pair[other], Some(&my_name), n);
                pair[other].send_ok(env).await;
            }
            resume(pair[me], to).await;
            assert_eq!(pair[me].transport, to);
            for n in base..base + 2 {
                expect_chat(pair[other], &my_name, n).await;
            }
            pair[other].expect_quiet().await;
            for n in base..base + 3 {
                expect_chat(pair[me], &other_name, n).await;
            }
            pair[me].expect_quiet().await;
        }
        transcript(&[&alice, &bob])
    }

    /// A resume (a switch) whose answer is lost in flight is tried again from the same seq: the
    /// client gets one `hello` and then what it missed, once; the lost `hello` is not replayed
    /// among the missed messages.
    pub async fn resume_hello_lost(a: Transport, b: Transport) -> Transcript {
        let server = server(|_| {}).await;
        let mut alice = joined(&server, a, "alice", Role::Host).await;
        let mut bob = joined(&server, b, "bob", Role::Guest).await;
        expect_peer(&mut alice, "peer_joined", "bob", None).await;

        let to = switched(a, b);
        alice.drop_transport().await;
        let env = chat(&mut bob, Some("alice"), 1);
        bob.send_ok(env).await;
        alice.resume_lost(to).await;
        let env = chat(&mut bob, Some("alice"), 2);
        bob.send_ok(env).await;
        bob.expect_quiet().await;
        resume(&mut alice, to).await;
        expect_chat(&mut alice, "bob", 1).await;
        expect_chat(&mut alice, "bob", 2).await;
        alice.expect_quiet().await;
        let env = chat(&mut alice, Some("bob"), 3);
        alice.send_ok(env).await;
        expect_chat(&mut bob, "alice", 3).await;
        transcript(&[&alice, &bob])
    }

    /// SSE streams end every 250 ms (no jitter) during a steady conversation; the client
    /// reconnects with `Last-Event-ID` and nothing is lost or repeated.
    pub async fn sse_lifetime(a: Transport, b: Transport) -> Transcript {
        let server = server(|c| {
            c.sse_lifetime_ms = 250;
            c.sse_jitter_ms = 0;
        })
        .await;
        let mut alice = joined(&server, a, "alice", Role::Host).await;
        let mut bob = joined(&server, b, "bob", Role::Guest).await;
        expect_peer(&mut alice, "peer_joined", "bob", None).await;

        // 40 rounds of at least 25 ms: four lifetimes or more pass mid-conversation.
        for n in 0..40 {
            let env = chat(&mut alice, Some("bob"), n);
            alice.send_ok(env).await;
            let env = chat(&mut bob, Some("alice"), n);
            bob.send_ok(env).await;
            expect_chat(&mut bob, "alice", n).await;
            expect_chat(&mut alice, "bob", n).await;
            // Lets the stream lifetime pass between messages.
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        for c in [&alice, &bob] {
            if c.transport == Transport::Sse {
                assert!(
                    c.reconnects() >= 3,
                    "{}: {} reconnects",
                    c.name,
                    c.reconnects()
                );
            }
        }
        alice.expect_quiet().await;
        bob.expect_quiet().await;
        transcript(&[&alice, &bob])
    }

    /// A client that does not come back within resume_ms has left (`timeout`), and a late
    /// resume, on any transport, is `session_expired`.
    pub async fn expiry(a: Transport, b: Transport) -> Transcript {
        let server = server(|c| {
            c.heartbeat_ms = 100;
            c.heartbeat_timeout_ms = 500;
            c.poll_wait_ms = 300;
            c.sse_heartbeat_ms = 100;
            c.resume_ms = 300;
        })
        .await;
        let mut alice = joined(&server, a, "alice", Role::Host).await;
        let mut bob = joined(&server, b, "bob", Role::Guest).await;
        expect_peer(&mut alice, "peer_joined", "bob", None).await;

        alice.drop_transport().await;
        // Waits for the (short) heartbeat and resume timers.
        expect_peer(&mut bob, "peer_left", "alice", Some("timeout")).await;
        alice.resume(a).await;
        alice.expect_refused("session_expired").await;
        alice.resume(a.next()).await;
        alice.expect_refused("session_expired").await;

        // Bob is alone and well.
        let env = chat(&mut bob, Some("alice"), 1);
        bob.send_refused(env, "unknown_peer").await;
        bob.expect_quiet().await;
        transcript(&[&alice, &bob])
    }

    /// Host-only actions: mode, kick, and the ban that follows.
    pub async fn host_controls(a: Transport, b: Transport) -> Transcript {
        let server = server(|_| {}).await;
        let mut alice = joined(&server, a, "alice", Role::Host).await;
        let mut bob = joined(&server, b, "bob", Role::Guest).await;
        expect_peer(&mut alice, "peer_joined", "bob", None).await;

        let env = alice
            .msg("mode")
            .room(ROOM)
            .id("m-1")
            .payload(json!({"mode": "host_only"}));
        alice.send_ok(env).await;
        let changed = alice.expect("mode_changed").await;
        assert_eq!(changed.id.as_deref(), Some("m-1"));
        let changed = bob.expect("mode_changed").await;
        assert_eq!(changed.payload, json!({"mode": "host_only", "by": "alice"}));

        // A guest may still signal the host.
        relay(
            &mut bob,
            &mut alice,
            "message",
            None,
            json!({"q": "may I?"}),
        )
        .await;

        let env = alice
            .msg("kick")
            .room(ROOM)
            .id("k-1")
            .payload(json!({"peer": "bob"}));
        alice.send_ok(env).await;
        let left = bob.expect("left").await;
        assert_eq!(left.payload, json!({"reason": "kicked", "by": "alice"}));
        let kicked = alice.expect("peer_left").await;
        assert_eq!(kicked.id.as_deref(), Some("k-1"));
        assert_eq!(kicked.payload, json!({"peer": "bob", "reason": "kicked"}));

        let env = bob.msg("join").room(ROOM);
        bob.send_refused(env, "forbidden").await;
        alice.expect_quiet().await;
        bob.expect_quiet().await;
        transcript(&[&alice, &bob])
    }
}

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
