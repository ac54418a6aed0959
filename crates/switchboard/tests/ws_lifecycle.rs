//! A session's life end to end: authentication before the upgrade, clean disconnects, heartbeat
//! timeouts, resume (within and after the window, and by the wrong user), graceful shutdown and
//! readiness.
//!
//! Timers are made short through the configuration; a sleep only ever lets such a timer pass, and
//! silence is proven with the ping barrier.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use switchboard::auth::Signer;
use switchboard_protocol::{Limits, Role};
use switchboard_testkit::{
    Client, DEADLINE, SECRET, TestServer,
    http::{assert_error, http_get},
    tokens::{self, claims, forge},
    unix_s, ws_refusal,
};

/// HS256 with the server's secret.
fn hs256(input: &[u8]) -> Vec<u8> {
    tokens::hs256(SECRET.as_bytes(), input)
}

fn hs384(input: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha384>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(input);
    mac.finalize().into_bytes().to_vec()
}

/// Asserts the documented 401 answer, and that it does not repeat the token.
fn assert_unauthorized((status, body): (u16, Value), token: &str) {
    let message = assert_error((status, &body), 401, "unauthorized");
    if !token.is_empty() {
        assert!(
            !message.contains(token),
            "the token is not echoed: {message}"
        );
    }
}

fn with_token(server: &TestServer, token: &str) -> String {
    format!("{}?token={token}", server.ws_url())
}

#[tokio::test]
async fn every_bad_token_is_refused_with_401_before_the_upgrade() {
    let server = TestServer::start().await;

    // Missing, empty, malformed.
    assert_unauthorized(ws_refusal(&server.ws_url(), &[]).await, "");
    assert_unauthorized(ws_refusal(&with_token(&server, ""), &[]).await, "");
    for bad in ["garbage", "a.b.c", "e30.e30.", "...."] {
        assert_unauthorized(ws_refusal(&with_token(&server, bad), &[]).await, bad);
    }

    // Expired (well past the 30 s leeway).
    let expired = tokens::expired("alice", "r1");
    let (status, body) = ws_refusal(&with_token(&server, &expired), &[]).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    assert_unauthorized((status, body), &expired);

    // Signed with another key.
    let foreign = Signer::new(b"another-secret-another-secret-xx")
        .mint("alice", "r1", Role::Host, None, Duration::from_secs(600))
        .unwrap();
    assert_unauthorized(
        ws_refusal(&with_token(&server, &foreign), &[]).await,
        &foreign,
    );

    // Invalid claims: no room, a bad room grant, an empty sub.
    for claims in [
        json!({"sub": "alice", "exp": unix_s() + 600}),
        json!({"sub": "alice", "exp": unix_s() + 600, "room": "bad room"}),
        json!({"sub": "alice", "exp": unix_s() + 600, "room": "a*b*"}),
        json!({"sub": "", "exp": unix_s() + 600, "room": "r1"}),
        json!({"exp": unix_s() + 600, "room": "r1"}),
    ] {
        let token = forge(&json!({"alg": "HS256", "typ": "JWT"}), &claims, hs256);
        assert_unauthorized(ws_refusal(&with_token(&server, &token), &[]).await, &token);
    }

    // The forging itself is right: the same recipe with HS256 and good claims is accepted.
    let good = forge(
        &json!({"alg": "HS256", "typ": "JWT"}),
        &claims("alice", "r1"),
        hs256,
    );
    Client::connect(&with_token(&server, &good))
        .await
        .close()
        .await;

    // `alg: none` (unsigned, and with a signature anyway), other algorithms with a signature
    // made from the server's secret (algorithm confusion), and a properly signed HS384 token.
    let body = claims("alice", "r1");
    let none = forge(&json!({"alg": "none", "typ": "JWT"}), &body, |_| Vec::new());
    let none_signed = forge(&json!({"alg": "none", "typ": "JWT"}), &body, hs256);
    let none_caps = forge(&json!({"alg": "NONE", "typ": "JWT"}), &body, |_| Vec::new());
    let rs256 = forge(&json!({"alg": "RS256", "typ": "JWT"}), &body, hs256);
    let es256 = forge(&json!({"alg": "ES256", "typ": "JWT"}), &body, hs256);
    let hs384_token = forge(&json!({"alg": "HS384", "typ": "JWT"}), &body, hs384);
    let hs384_claiming_256 = forge(&json!({"alg": "HS384", "typ": "JWT"}), &body, hs256);
    for token in [
        &none,
        &none_signed,
        &none_caps,
        &rs256,
        &es256,
        &hs384_token,
        &hs384_claiming_256,
    ] {
        assert_unauthorized(ws_refusal(&with_token(&server, token), &[]).await, token);
        let bearer = format!("Bearer {token}");
        assert_unauthorized(
            ws_refusal(&server.ws_url(), &[("authorization", &bearer)]).await,
            token,
        );
    }

    // A bad bearer header is refused even when the query token is good: the header wins.
    let good = server.token("alice", "r1", Role::Host);
    assert_unauthorized(
        ws_refusal(
            &with_token(&server, &good),
            &[("authorization", "Bearer garbage")],
        )
        .await,
        "garbage",
    );

    // Whatever else the query string holds, a missing or bad token is a JSON 401.
    for query in [
        "?last_seq=abc",
        "?resume=x&resume=y",
        "?token=garbage&last_seq=-1",
        "?token=garbage&token=garbage2",
    ] {
        let url = format!("{}{query}", server.ws_url());
        assert_unauthorized(ws_refusal(&url, &[]).await, "garbage");
    }
    // With a good token, a bad resume position is a JSON 400.
    let (status, body) = ws_refusal(
        &format!(
            "{}&resume=abc&last_seq=minus-one",
            with_token(&server, &good)
        ),
        &[],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_message", "{body}");

    // Plain HTTP is refused the same way, before anything else is looked at.
    let (status, body) = http_get(&server.ws_url().replace("ws://", "http://"), &[]).await;
    assert_unauthorized((status, body), "");
    // With a good token but no upgrade, the request is invalid.
    let (status, body) =
        http_get(&with_token(&server, &good).replace("ws://", "http://"), &[]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_message");

    // Nothing was opened by any of it.
    let stats = server.running().node().hub().stats();
    assert_eq!(stats.sessions, 0, "{stats:?}");
}

#[tokio::test]
async fn a_token_works_as_bearer_header_or_query_and_the_grant_is_enforced() {
    let server = TestServer::start().await;
    let token = server.token("alice", "r1", Role::Host);
    let bearer = format!("Bearer {token}");
    let mut alice =
        Client::connect_with_headers(&server.ws_url(), &[("authorization", &bearer)]).await;
    assert_eq!(alice.hello.seq, 1);
    assert_eq!(alice.hello.payload["resumed"], false);
    assert_eq!(alice.hello.payload["last_client_seq"], 0);
    assert_eq!(alice.hello.payload["session"].as_str().unwrap().len(), 22);
    assert_eq!(
        alice.hello.payload["limits"],
        serde_json::to_value(Limits::default()).unwrap()
    );
    assert!(
        alice.hello.payload.get("peer").is_none(),
        "no peer before a join"
    );
    alice.join("r1", "alice").await;

    let mut bob = server.client("bob", "r1", Role::Guest).await;
    let joined = bob.join("r1", "bob").await;
    assert_eq!(joined.payload["peers"][0]["peer"], "alice");
    alice.expect("peer_joined").await;

    // Outside the grant: forbidden on join, the connection stays.
    let join = bob
        .msg("join")
        .room("r2")
        .id("r2")
        .payload(json!({"peer": "bob"}));
    bob.send(join).await;
    let e = bob.expect_error("forbidden").await;
    assert_eq!(e.id.as_deref(), Some("r2"));
    bob.expect_quiet().await;
    // A prefix grant allows what it covers, and nothing else.
    let mut carol = server.client("carol", "team-*", Role::Guest).await;
    carol.join("team-1", "carol").await;
    carol.join("team-2", "carol").await;
    let join = carol.msg("join").room("r1");
    carol.send(join).await;
    carol.expect_error("forbidden").await;
    carol.expect_quiet().await;
    alice.expect_quiet().await;
}

#[tokio::test]
async fn a_clean_close_ends_the_session_and_peers_see_disconnected() {
    let server = TestServer::start().await;
    let mut alice = server.joined("alice", "r1", Role::Host, "alice").await;
    let bob = server.joined("bob", "r1", Role::Guest, "bob").await;
    alice.expect("peer_joined").await;
    let resume = bob.resume_url(bob.url());

    bob.close().await;
    let left = alice.expect("peer_left").await;
    assert_eq!(left.room.as_deref(), Some("r1"));
    assert_eq!(
        left.payload,
        json!({"peer": "bob", "reason": "disconnected"})
    );
    alice.expect_quiet().await;

    // A closed session is over: it cannot be resumed.
    let mut again = Client::connect_raw(&resume).await;
    again.expect_error("session_expired").await;
    let close = again.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4004);
    server
        .wait_for("one session left", |s| s.sessions == 1)
        .await;
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_times_out() {
    let server = TestServer::start_with(|c| {
        c.heartbeat_ms = 100;
        c.heartbeat_timeout_ms = 300;
        c.resume_ms = 300;
    })
    .await;
    let mut bob = server.joined("bob", "r1", Role::Guest, "bob").await;
    assert_eq!(bob.hello.payload["heartbeat_ms"], 100);
    assert_eq!(bob.hello.payload["resume_ms"], 300);
    // Alice is a bare client: she joins, then never reads again, so she never answers a ping.
    let mut alice = server.raw_client("alice", "r1", Role::Host).await;
    let join = alice
        .msg("join")
        .room("r1")
        .payload(json!({"peer": "alice"}));
    alice.send(join).await;
    alice.expect("joined").await;
    bob.expect("peer_joined").await;

    // Bob keeps reading (and so answering pings) while he waits.
    let left = bob.expect("peer_left").await;
    assert_eq!(left.room.as_deref(), Some("r1"));
    assert_eq!(left.payload, json!({"peer": "alice", "reason": "timeout"}));
    bob.expect_quiet().await;
    server
        .wait_for("alice's session removed", |s| s.sessions == 1)
        .await;

    // What alice's socket holds: pings, then the heartbeat close.
    assert_eq!(alice.expect_close().await, Some(4003));
}

#[tokio::test]
async fn a_resume_within_the_window_replays_every_missed_message_once_in_order() {
    let server = TestServer::start().await;
    let mut alice = server.joined("alice", "r1", Role::Host, "alice").await;
    let mut bob = server.joined("bob", "r1", Role::Guest, "bob").await;
    alice.expect("peer_joined").await;
    let offer = alice
        .msg("offer")
        .room("r1")
        .to("bob")
        .payload(json!({"sdp": "v=0"}));
    alice.send(offer).await;
    bob.expect("offer").await;

    let (last_seq, seq) = (alice.last_seq, alice.seq);
    let resume = alice.resume_url(alice.url());
    alice.drop_connection();
    // The server notices the lost transport; the session waits, still a member.
    server
        .wait_for("alice detached", |s| s.attached == 1 && s.sessions == 2)
        .await;

    let sent = [
        bob.msg("answer")
            .room("r1")
            .to("alice")
            .id("m-1")
            .payload(json!({"sdp": "v=0 answer"})),
        bob.msg("candidate")
            .room("r1")
            .to("alice")
            .id("m-2")
            .payload(json!({"candidate": "candidate:1 1 udp 1 192.0.2.1 9 typ host"})),
        bob.msg("candidate")
            .room("r1")
            .to("alice")
            .id("m-3")
            .payload(json!({"candidate": ""})),
        bob.msg("message")
            .room("r1")
            .id("m-4")
            .payload(json!({"text": "anyone?"})),
    ];
    for env in sent.iter().cloned() {
        bob.send(env).await;
    }
    bob.expect_quiet().await;

    let mut alice = Client::connect_resumed(&resume, last_seq, seq).await;
    assert_eq!(
        alice.hello.seq,
        last_seq + 1,
        "hello continues the numbering"
    );
    assert_eq!(alice.hello.payload["resumed"], true);
    assert_eq!(alice.hello.payload["peer"], "alice");
    assert_eq!(alice.hello.payload["last_client_seq"], seq);
    assert_eq!(
        alice.session,
        resume
            .split("resume=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
    );
    for env in &sent {
        let got = alice.expect(&env.kind).await;
        assert_eq!(got.id, env.id, "{got:?}");
        assert_eq!(got.from.as_deref(), Some("bob"));
        assert_eq!(Some(&got.payload), env.payload.as_ref());
    }
    // Exactly once: nothing more is queued, and bob never saw alice leave.
    alice.expect_quiet().await;
    bob.expect_quiet().await;

    // The session carries on both ways, seqs rising from where they were.
    let offer = alice
        .msg("offer")
        .room("r1")
        .to("bob")
        .id("after")
        .payload(json!({"sdp": "v=0"}));
    alice.send(offer).await;
    assert_eq!(bob.expect("offer").await.id.as_deref(), Some("after"));
    let msg = bob
        .msg("message")
        .room("r1")
        .to("alice")
        .payload(json!({"n": 5}));
    bob.send(msg).await;
    alice.expect("message").await;
    // A client seq at or below the last accepted one is still a replay after the resume.
    let mut replay = alice.msg("ping");
    replay.seq = seq;
    alice.send(replay).await;
    alice.expect_error("duplicate_seq").await;
    alice.expect_quiet().await;
}

#[tokio::test]
async fn a_resume_loses_nothing_in_flight_and_supersedes_a_half_open_transport() {
    let server = TestServer::start().await;
    let mut alice = server.joined("alice", "r1", Role::Host, "alice").await;
    let mut bob = server.joined("bob", "r1", Role::Guest, "bob").await;
    alice.expect("peer_joined").await;

    // Bob sends while the server may or may not have noticed the drop yet: whether a message was
    // written to the dead socket or is still queued, alice gets each one exactly once.
    let base = alice.url().to_owned();
    let (last_seq, seq) = (alice.last_seq, alice.seq);
    let resume = alice.resume_url(&base);
    alice.drop_connection();
    for n in 0..20 {
        let msg = bob
            .msg("message")
            .room("r1")
            .to("alice")
            .id(&format!("f-{n}"))
            .payload(json!({"n": n}));
        bob.send(msg).await;
    }
    let mut alice = Client::connect_resumed(&resume, last_seq, seq).await;
    for n in 0..20 {
        let got = alice.expect("message").await;
        assert_eq!(got.id, Some(format!("f-{n}")));
        assert_eq!(got.payload, json!({"n": n}));
    }
    alice.expect_quiet().await;

    // A resume while the old transport still looks alive takes over; the old one is closed 4002.
    let resume = alice.resume_url(alice.url());
    assert!(resume.starts_with(&base) && resume.matches("resume=").count() == 1);
    let (last_seq, seq) = (alice.last_seq, alice.seq);
    let mut newer = Client::connect_resumed(&resume, last_seq, seq).await;
    let close = alice.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4002);
    let offer = bob
        .msg("offer")
        .room("r1")
        .to("alice")
        .id("to-newer")
        .payload(json!({"sdp": "v=0"}));
    bob.send(offer).await;
    assert_eq!(newer.expect("offer").await.id.as_deref(), Some("to-newer"));
    newer.expect_quiet().await;
    bob.expect_quiet().await;
    server
        .wait_for("both attached", |s| s.attached == 2 && s.sessions == 2)
        .await;
}

#[tokio::test]
async fn a_session_away_for_too_many_messages_ends_on_overflow() {
    let server = TestServer::start_with(|c| c.outbox_limit = 8).await;
    let mut alice = server.joined("alice", "r1", Role::Host, "alice").await;
    let mut bob = server.joined("bob", "r1", Role::Guest, "bob").await;
    alice.expect("peer_joined").await;
    let resume = alice.resume_url(alice.url());
    alice.drop_connection();
    server.wait_for("alice detached", |s| s.attached == 1).await;

    // Alice's outbox keeps 8 messages: the 3 she received make room for new ones, but once all 8
    // are unsent, the next one ends her session.
    for n in 0..8 {
        let msg = bob
            .msg("message")
            .room("r1")
            .to("alice")
            .payload(json!({"n": n}));
        bob.send(msg).await;
    }
    bob.expect_quiet().await;
    let msg = bob
        .msg("message")
        .room("r1")
        .to("alice")
        .payload(json!({"n": 8}));
    bob.send(msg).await;
    let left = bob.expect("peer_left").await;
    assert_eq!(
        left.payload,
        json!({"peer": "alice", "reason": "disconnected"})
    );
    bob.expect_quiet().await;
    let mut alice = Client::connect_raw(&resume).await;
    alice.expect_error("session_expired").await;
    assert_eq!(u16::from(alice.expect_close().await.unwrap().code), 4004);
}

#[tokio::test]
async fn a_resume_after_the_window_is_session_expired_and_peers_saw_a_timeout() {
    let server = TestServer::start_with(|c| c.resume_ms = 300).await;
    let alice = server.joined("alice", "r1", Role::Host, "alice").await;
    let mut bob = server.joined("bob", "r1", Role::Guest, "bob").await;
    let resume = alice.resume_url(alice.url());
    // Alice has bob's peer_joined unread; that is part of what a network failure loses.
    alice.drop_connection();

    let left = bob.expect("peer_left").await;
    assert_eq!(left.payload, json!({"peer": "alice", "reason": "timeout"}));
    bob.expect_quiet().await;

    let mut alice = Client::connect_raw(&resume).await;
    let e = alice.expect_error("session_expired").await;
    assert_eq!(e.seq, 0);
    let close = alice.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4004);
    bob.expect_quiet().await;
}

#[tokio::test]
async fn a_resume_with_another_users_token_is_forbidden() {
    let server = TestServer::start().await;
    let mut alice = server.joined("alice", "r1", Role::Host, "alice").await;
    let mut bob = server.joined("bob", "r1", Role::Guest, "bob").await;
    alice.expect("peer_joined").await;
    let session = alice.session.clone();

    // While alice is attached, and after her connection dropped.
    let mallory = server.token("mallory", "r1", Role::Host);
    let stolen = format!(
        "{}?token={mallory}&resume={session}&last_seq={}",
        server.ws_url(),
        alice.last_seq
    );
    let mut thief = Client::connect_raw(&stolen).await;
    let e = thief.expect_error("forbidden").await;
    assert_eq!(e.seq, 0);
    assert_eq!(u16::from(thief.expect_close().await.unwrap().code), 4004);
    alice.expect_quiet().await;
    let (last_seq, seq) = (alice.last_seq, alice.seq);
    let resume = alice.resume_url(alice.url());
    alice.drop_connection();
    server.wait_for("alice detached", |s| s.attached == 1).await;
    let mut thief = Client::connect_raw(&stolen).await;
    thief.expect_error("forbidden").await;
    assert_eq!(u16::from(thief.expect_close().await.unwrap().code), 4004);
    bob.expect_quiet().await;

    // The refusals took nothing from alice: she resumes.
    let mut alice = Client::connect_resumed(&resume, last_seq, seq).await;
    alice.expect_quiet().await;
    bob.expect_quiet().await;
}

#[tokio::test]
async fn graceful_shutdown_closes_rooms_and_sockets_quickly() {
    let mut server = TestServer::start_with(|c| c.shutdown_grace_ms = 60_000).await;
    let (status, body) = http_get(&server.http("/readyz"), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    let (status, body) = http_get(&server.http("/healthz"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"status": "ok"}));

    let mut alice = server.joined("alice", "r1", Role::Host, "alice").await;
    let mut bob = server.joined("bob", "r1", Role::Guest, "bob").await;
    let mut carol = server.client("carol", "r2", Role::Guest).await;
    alice.expect("peer_joined").await;
    let (status, body) = http_get(&server.http("/readyz"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body["sessions"], 3, "{body}");
    assert_eq!(body["rooms"], 1, "{body}");

    let started = Instant::now();
    tokio::time::timeout(DEADLINE, server.shutdown())
        .await
        .expect("shutdown in time");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "shutdown waited {took:?}: it should not wait out the grace period"
    );

    for c in [&mut alice, &mut bob] {
        let closed = c.expect("room_closed").await;
        assert_eq!(closed.room.as_deref(), Some("r1"));
        assert_eq!(closed.payload, json!({"reason": "shutdown"}));
        let close = c.expect_close().await.expect("a close frame");
        assert_eq!(u16::from(close.code), 1001);
    }
    // Not in a room: just the close.
    let close = carol.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1001);

    // Nobody gets in any more.
    let refused = tokio::time::timeout(
        DEADLINE,
        tokio_tungstenite::connect_async(format!(
            "{}?token={}",
            server.ws_url(),
            server.token("dave", "r1", Role::Guest)
        )),
    )
    .await
    .expect("an answer in time");
    assert!(refused.is_err(), "the server stopped listening");
}
