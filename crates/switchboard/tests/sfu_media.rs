//! Real media through the SFU: `webrtc` peers in this process join an SFU room over real
//! WebSockets, negotiate with the peer `sfu` through the server, and connect to the SFU's UDP
//! port over loopback (`sfu_peer`). One publishes a VP8 video track; the others publish nothing
//! and must receive its frames, attributed to the publisher by `track_map` and by the stream id.
//! A peer sending a malformed offer gets `bad_sdp` and keeps its session, and the call goes on.
//!
//! Every wait is bounded by [`CALL_DEADLINE`]; conditions are polled, nothing sleeps to prove a
//! point.

mod sfu_peer;

use std::time::{Duration, Instant};

use serde_json::json;
use sfu_peer::{
    CALL_DEADLINE, FRAMES, Member, ROOM, auto_room_moves_to_the_sfu_and_back, finish, got_from,
    member, member_of, start_call, until_metric, wait_until,
};
use switchboard_protocol::{MediaMode, Role};
use switchboard_testkit::{TestServer, metrics::scrape};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_published_by_one_member_arrives_at_the_others_through_the_sfu() {
    let mut server = TestServer::start_with(|c| {
        c.media_mode = MediaMode::Sfu;
        c.sfu.udp_port = Some(0);
        c.sfu.bind = "127.0.0.1".parse().unwrap();
    })
    .await;
    let sfu_addr = server.running().sfu_addrs[0];
    let started = Instant::now();
    let stop = CancellationToken::new();

    let alice = member(server.addr, "alice", true, "sfu").await;
    let bob = member(server.addr, "bob", false, "sfu").await;
    let carol = member(server.addr, "carol", false, "sfu").await;
    let alice_map = alice.track_map.clone();
    let watch: Vec<_> = [&bob, &carol]
        .iter()
        .map(|m| {
            (
                m.name,
                m.received.clone(),
                m.track_map.clone(),
                m.published.clone(),
            )
        })
        .collect();
    let (tasks, writers) = start_call(vec![alice, bob, carol], &stop, started).await;

    // A member sending a malformed offer gets `bad_sdp`; its session stays and the call goes on.
    let mut dave = server.joined("dave", ROOM, Role::Guest, "dave").await;
    let bad = dave
        .msg("offer")
        .room(ROOM)
        .to("sfu")
        .payload(json!({"type": "offer", "sdp": "v=0\r\nthis is not sdp\r\n"}));
    dave.send(bad).await;
    let error = loop {
        let env = dave.recv().await;
        if env.kind == "error" {
            break env;
        }
    };
    assert_eq!(error.payload["code"], "bad_sdp", "{error:?}");
    assert_eq!(error.room.as_deref(), Some(ROOM));
    let ping = dave.msg("ping");
    dave.send(ping).await;
    loop {
        if dave.recv().await.kind == "pong" {
            break;
        }
    }

    for (name, received, _, _) in &watch {
        wait_until(
            &format!("{name} receives {FRAMES} of alice's frames"),
            started,
            || got_from(received, "alice"),
        )
        .await;
    }
    // The SFU's metrics follow (they are brought up to date every second).
    let metrics_url = server.http("/metrics");
    loop {
        let m = scrape(&metrics_url).await.samples;
        let get = |k: &str| m.get(k).copied().unwrap_or(0.0);
        if get("sfu_participants_gauge") == 3.0
            && get("sfu_tracks_gauge") == 1.0
            && get("sfu_forwarded_packets_total") >= (2 * FRAMES) as f64
            && get("sfu_forwarded_bytes_total") >= (2 * FRAMES * 400) as f64
            && get(r#"sfu_datagrams_total{direction="in"}"#) > 0.0
            && get(r#"sfu_datagrams_total{direction="out"}"#) > 0.0
        {
            break;
        }
        assert!(
            started.elapsed() < CALL_DEADLINE,
            "the SFU's metrics did not follow: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    let sent = finish(writers).await;
    let members: Vec<Member> = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .map(|t| t.expect("member task").expect("member ran without error"))
        .collect();

    for (name, received, track_map, published) in &watch {
        let published = published.lock().unwrap().clone();
        assert_eq!(
            published.len(),
            1,
            "{name} heard of one track: {published:?}"
        );
        assert_eq!(published[0].0, "alice");
        let track = &published[0].1;
        let map = track_map.lock().unwrap();
        assert!(
            map.values().any(|(peer, t)| peer == "alice" && t == track),
            "{name}'s track map names alice's track: {map:?}"
        );
        let received = received.lock().unwrap();
        assert!(
            received
                .get(&("alice".to_owned(), track.clone()))
                .copied()
                .unwrap_or(0)
                >= FRAMES,
            "{name} got alice's track by its id: {received:?}"
        );
    }
    assert!(
        alice_map.lock().unwrap().is_empty(),
        "alice receives nothing of her own"
    );
    eprintln!(
        "SFU at {sfu_addr}: {sent} frames written, each subscriber got {FRAMES}+ within {:?}",
        started.elapsed()
    );
    for m in members {
        m.close().await;
    }
    server.shutdown().await;
}

/// With two media workers, two rooms land on one worker each (the second room on the idle
/// worker): each room's members are told that worker's port and get their publisher's video
/// through it, and the metrics add up the workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_hold_a_room_each() {
    let mut server = TestServer::start_with(|c| {
        c.media_mode = MediaMode::Sfu;
        c.sfu.udp_port = Some(0);
        c.sfu.bind = "127.0.0.1".parse().unwrap();
        c.sfu.workers = 2;
    })
    .await;
    let ports: Vec<u16> = (server.running().sfu_addrs.iter())
        .map(|a| a.port())
        .collect();
    assert_eq!(ports.len(), 2, "one address per worker: {ports:?}");
    assert_ne!(ports[0], ports[1]);
    let started = Instant::now();
    let stop = CancellationToken::new();
    let rooms = [("room-one", "alice", "bob"), ("room-two", "carol", "dave")];
    let mut members = Vec::new();
    for (room, publisher, subscriber) in rooms {
        members.push(member_of(server.addr, room, publisher, true, "sfu").await);
        members.push(member_of(server.addr, room, subscriber, false, "sfu").await);
    }
    let watch: Vec<_> = (members.iter())
        .map(|m| (m.room, m.name, m.received.clone(), m.sfu_ports.clone()))
        .collect();
    let (tasks, writers) = start_call(members, &stop, started).await;
    for (room, publisher, subscriber) in rooms {
        let (.., received, _) = (watch.iter())
            .find(|(_, name, ..)| *name == subscriber)
            .unwrap();
        wait_until(
            &format!("{subscriber} receives {FRAMES} of {publisher}'s frames in {room}"),
            started,
            || got_from(received, publisher),
        )
        .await;
    }
    // The first room opened on worker 0, the second on the idle worker 1; every member was told
    // its room's worker alone.
    for (room, name, _, told) in &watch {
        let worker = if *room == "room-one" { 0 } else { 1 };
        let told = told.lock().unwrap().clone();
        assert_eq!(
            told,
            [ports[worker]].into(),
            "{name} in {room} was told of worker {worker}'s port"
        );
    }
    until_metric(server.addr, "sfu_participants_gauge", 4.0, started).await;
    until_metric(server.addr, "sfu_tracks_gauge", 2.0, started).await;
    stop.cancel();
    finish(writers).await;
    for task in tasks {
        let m = task.await.expect("member task").expect("member ran");
        m.close().await;
    }
    server.shutdown().await;
}

/// `mute` reaches the SFU through the hub like every SFU message and its refusal comes back
/// with the room (what it does to media is tested on the SFU's virtual network).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_reaches_the_sfu_and_its_refusal_comes_back() {
    let mut server = TestServer::start_with(|c| {
        c.media_mode = MediaMode::Sfu;
        c.sfu.udp_port = Some(0);
        c.sfu.bind = "127.0.0.1".parse().unwrap();
    })
    .await;
    let mut dave = server.joined("dave", ROOM, Role::Host, "dave").await;
    let mute = dave
        .msg("mute")
        .room(ROOM)
        .payload(json!({"track": "t9", "muted": true}));
    dave.send(mute).await;
    // Alone in the room, dave hears of no track: the refusal is the next message.
    let error = dave.expect_error("unknown_track").await;
    assert_eq!(error.room.as_deref(), Some(ROOM));
    dave.close().await;
    server.shutdown().await;
}

/// An `auto` room: two members call directly; the third's join moves everyone to the SFU, where
/// the first's video reaches the other two; when the third leaves the room goes back to mesh and
/// the SFU lets go of everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_room_moves_to_the_sfu_at_three_and_back_at_two() {
    let mut server = TestServer::start_with(|c| {
        c.media_mode = MediaMode::Auto;
        c.sfu.udp_port = Some(0);
        c.sfu.bind = "127.0.0.1".parse().unwrap();
    })
    .await;
    auto_room_moves_to_the_sfu_and_back(&[server.addr.to_string()]).await;
    server.shutdown().await;
}
