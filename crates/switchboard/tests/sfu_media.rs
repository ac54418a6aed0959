//! Real media through the SFU: `webrtc` peers in this process join an SFU room over real
//! WebSockets, negotiate with the peer `sfu` through the server, and connect to the SFU's UDP
//! port over loopback. One publishes a VP8 video track; the others publish nothing and must
//! receive its frames, attributed to the publisher by `track_map` and by the stream id. A peer
//! sending a malformed offer gets `bad_sdp` and keeps its session, and the call goes on.
//!
//! Every wait is bounded by [`CALL_DEADLINE`]; conditions are polled, nothing sleeps to prove a
//! point.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use rtc::{
    media::Sample,
    media_stream::MediaStreamTrack,
    rtp_transceiver::rtp_sender::{
        RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
        RtpCodecKind,
    },
};
use serde_json::{Value, json};
use switchboard_protocol::{MediaMode, Role, ServerEnvelope};
use switchboard_testkit::{Client, TestServer, metrics::scrape};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use webrtc::{
    media_stream::{
        Track,
        track_local::{TrackLocal, static_sample::TrackLocalStaticSample},
        track_remote::{TrackRemote, TrackRemoteEvent},
    },
    peer_connection::{
        MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
        RTCConfigurationBuilder, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
        RTCSessionDescription, Registry, register_default_interceptors,
    },
    rtp_transceiver::RtpSender,
};

const CALL_DEADLINE: Duration = Duration::from_secs(40);
const ROOM: &str = "sfu-room";
/// Bytes every published frame carries after its VP8 header, to recognise them on arrival.
const MARKER: &[u8] = b"switchboard-sfu-frame";
/// Frames each subscriber must receive.
const FRAMES: usize = 60;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, BoxError>;

fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "video/VP8".to_owned(),
        clock_rate: 90000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

/// What a subscriber received: RTP packets carrying the marker, by (stream id, track id).
type Received = Arc<Mutex<HashMap<(String, String), usize>>>;

enum Event {
    Candidate(String),
    State(RTCPeerConnectionState),
}

struct Handler {
    events: mpsc::UnboundedSender<Event>,
    received: Received,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self.events.send(Event::Candidate(init.candidate));
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.events.send(Event::State(state));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let received = self.received.clone();
        tokio::spawn(async move {
            let key = (track.stream_id().await, track.track_id().await);
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(packet) = event {
                    let carries = packet.payload.windows(MARKER.len()).any(|w| w == MARKER);
                    if carries {
                        *received.lock().unwrap().entry(key.clone()).or_default() += 1;
                    }
                }
            }
        });
    }
}

/// One member: its signaling socket, its peer connection to the SFU, what it learnt.
struct Member {
    name: &'static str,
    client: Client,
    pc: Arc<dyn PeerConnection>,
    events: mpsc::UnboundedReceiver<Event>,
    received: Received,
    video: Option<(Arc<TrackLocalStaticSample>, Arc<dyn RtpSender>)>,
    /// mid -> (peer, track), from `track_map`.
    track_map: Arc<Mutex<HashMap<String, (String, String)>>>,
    published: Arc<Mutex<Vec<(String, String)>>>,
    connected: Arc<Mutex<bool>>,
}

impl Member {
    /// Joins as `name`, whose `joined` must say the room's media is `media`.
    async fn join(server: &TestServer, name: &'static str, publish: bool, media: &str) -> Member {
        let mut client = server.client(name, ROOM, Role::Guest).await;
        let joined = client.join(ROOM, name).await;
        assert_eq!(joined.payload["media"], media, "{joined:?}");
        let mut media = MediaEngine::default();
        media
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: vp8(),
                    payload_type: 96,
                },
                RtpCodecKind::Video,
            )
            .expect("VP8 registers");
        let registry =
            register_default_interceptors(Registry::new(), &mut media).expect("interceptors");
        let (events_tx, events) = mpsc::unbounded_channel();
        let received = Received::default();
        let pc: Arc<dyn PeerConnection> = Arc::new(
            PeerConnectionBuilder::new()
                .with_configuration(
                    RTCConfigurationBuilder::new()
                        .with_ice_servers(vec![])
                        .build(),
                )
                .with_media_engine(media)
                .with_interceptor_registry(registry)
                .with_handler(Arc::new(Handler {
                    events: events_tx,
                    received: received.clone(),
                }))
                .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
                .build()
                .await
                .expect("peer connection builds"),
        );
        let video = if publish {
            let track = Arc::new(
                TrackLocalStaticSample::new(
                    Instant::now(),
                    MediaStreamTrack::new(
                        format!("{name}-camera"),
                        "camera".to_owned(),
                        "camera".to_owned(),
                        RtpCodecKind::Video,
                        vec![RTCRtpEncodingParameters {
                            rtp_coding_parameters: RTCRtpCodingParameters {
                                ssrc: Some(rand::random::<u32>()),
                                ..Default::default()
                            },
                            codec: vp8(),
                            ..Default::default()
                        }],
                    ),
                )
                .expect("a VP8 track"),
            );
            let sender = pc
                .add_track(track.clone() as Arc<dyn TrackLocal>)
                .await
                .expect("track added");
            Some((track, sender))
        } else {
            // An offer needs one m-line; a receive-only member offers a data channel.
            pc.create_data_channel("signal", None)
                .await
                .expect("data channel");
            None
        };
        Member {
            name,
            client,
            pc,
            events,
            received,
            video,
            track_map: Default::default(),
            published: Default::default(),
            connected: Default::default(),
        }
    }

    async fn offer(&mut self) {
        let offer = self.pc.create_offer(None).await.expect("offer");
        self.pc
            .set_local_description(offer.clone())
            .await
            .expect("local offer");
        self.signal_sfu("offer", json!({"type": "offer", "sdp": offer.sdp}))
            .await;
    }

    async fn signal_sfu(&mut self, kind: &str, payload: Value) {
        let env = self.client.msg(kind).room(ROOM).to("sfu").payload(payload);
        self.client.send(env).await;
    }

    /// Signals and handles WebRTC events until `stop` fires.
    async fn run(mut self, stop: CancellationToken) -> Result<Member> {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(self),
                frame = self.client.ws.next() => {
                    let frame = frame.ok_or("signaling socket closed")??;
                    let Message::Text(text) = frame else { continue };
                    let env: ServerEnvelope = serde_json::from_str(&text)?;
                    self.on_signal(env).await?;
                }
                Some(event) = self.events.recv() => match event {
                    Event::Candidate(candidate) => {
                        self.signal_sfu("candidate", json!({"candidate": candidate})).await;
                    }
                    Event::State(RTCPeerConnectionState::Connected) => {
                        *self.connected.lock().unwrap() = true;
                    }
                    Event::State(RTCPeerConnectionState::Failed) => {
                        return Err(format!("{}: connection to the SFU failed", self.name).into());
                    }
                    Event::State(_) => {}
                },
            }
        }
    }

    async fn on_signal(&mut self, env: ServerEnvelope) -> Result<()> {
        let from_sfu = env.from.as_deref() == Some("sfu");
        match env.kind.as_str() {
            "offer" if from_sfu => {
                let sdp = env.payload["sdp"].as_str().ok_or("offer without sdp")?;
                self.pc
                    .set_remote_description(RTCSessionDescription::offer(sdp.to_owned())?)
                    .await?;
                let answer = self.pc.create_answer(None).await?;
                self.pc.set_local_description(answer.clone()).await?;
                self.signal_sfu("answer", json!({"type": "answer", "sdp": answer.sdp}))
                    .await;
            }
            "answer" if from_sfu => {
                let sdp = env.payload["sdp"].as_str().ok_or("answer without sdp")?;
                self.pc
                    .set_remote_description(RTCSessionDescription::answer(sdp.to_owned())?)
                    .await?;
            }
            "track_map" => {
                let mut map = self.track_map.lock().unwrap();
                map.clear();
                for e in env.payload["mids"]
                    .as_array()
                    .ok_or("track_map without mids")?
                {
                    map.insert(
                        e["mid"].as_str().unwrap_or_default().to_owned(),
                        (
                            e["peer"].as_str().unwrap_or_default().to_owned(),
                            e["track"].as_str().unwrap_or_default().to_owned(),
                        ),
                    );
                }
            }
            "track_published" => self.published.lock().unwrap().push((
                env.payload["peer"].as_str().unwrap_or_default().to_owned(),
                env.payload["track"].as_str().unwrap_or_default().to_owned(),
            )),
            "error" => return Err(format!("{}: error from the server: {env:?}", self.name).into()),
            _ => {}
        }
        Ok(())
    }
}

/// Writes VP8-shaped frames (a keyframe every 30) at 30 fps until `stop` fires.
async fn publish(
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    stop: CancellationToken,
) -> Result<usize> {
    let ssrc = *track.ssrcs().await.first().ok_or("no ssrc")?;
    let pt = sender
        .get_parameters()
        .await?
        .rtp_parameters
        .codecs
        .first()
        .map(|c| c.payload_type)
        .ok_or("no negotiated codec")?;
    let mut ticker = tokio::time::interval(Duration::from_millis(33));
    let mut n = 0usize;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(n),
            _ = ticker.tick() => {}
        }
        // Bit 0 of a VP8 frame's first byte is 0 on a keyframe.
        let mut frame = vec![if n.is_multiple_of(30) { 0x10 } else { 0x11 }; 400];
        frame[10..10 + MARKER.len()].copy_from_slice(MARKER);
        track
            .sample_writer(ssrc, pt)
            .write_sample(&Sample {
                data: frame.into(),
                duration: Duration::from_millis(33),
                ..Sample::new(Instant::now())
            })
            .await?;
        n += 1;
    }
}

/// Offers from every member and runs them until `stop`; once the first (the publisher) is
/// connected to the SFU, writes its frames. The members' tasks and the writer's.
async fn start_call(
    members: Vec<Member>,
    stop: &CancellationToken,
    started: Instant,
) -> (
    Vec<tokio::task::JoinHandle<Result<Member>>>,
    tokio::task::JoinHandle<Result<usize>>,
) {
    let (video, sender) = members[0]
        .video
        .clone()
        .expect("the first member publishes");
    let connected = members[0].connected.clone();
    let mut members = members;
    for m in &mut members {
        m.offer().await;
    }
    let tasks = (members.into_iter())
        .map(|m| tokio::spawn(m.run(stop.clone())))
        .collect();
    wait_until("the publisher connects to the SFU", started, || {
        *connected.lock().unwrap()
    })
    .await;
    (tasks, tokio::spawn(publish(video, sender, stop.clone())))
}

/// Polls `check` every 50 ms until it holds, failing after `CALL_DEADLINE`.
async fn wait_until(what: &str, started: Instant, check: impl Fn() -> bool) {
    while !check() {
        assert!(
            started.elapsed() < CALL_DEADLINE,
            "{what}: not within {CALL_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_published_by_one_member_arrives_at_the_others_through_the_sfu() {
    let mut server = TestServer::start_with(|c| {
        c.media_mode = MediaMode::Sfu;
        c.sfu.udp_port = Some(0);
        c.sfu.bind = "127.0.0.1".parse().unwrap();
    })
    .await;
    let sfu_addr = server.running().sfu_addr.expect("the SFU runs");
    let started = Instant::now();
    let stop = CancellationToken::new();

    let alice = Member::join(&server, "alice", true, "sfu").await;
    let bob = Member::join(&server, "bob", false, "sfu").await;
    let carol = Member::join(&server, "carol", false, "sfu").await;
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
    let (tasks, writer) = start_call(vec![alice, bob, carol], &stop, started).await;

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
            || {
                received
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|((stream, _), n)| stream == "alice" && *n >= FRAMES)
            },
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
    let sent = writer.await.expect("writer task").expect("frames written");
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
        m.pc.close().await.expect("closes");
        m.client.close().await;
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
    let started = Instant::now();
    let stop = CancellationToken::new();
    let mut alice = Member::join(&server, "alice", true, "mesh").await;
    let mut bob = Member::join(&server, "bob", false, "mesh").await;
    let carol = Member::join(&server, "carol", false, "sfu").await;
    for m in [&mut alice, &mut bob] {
        let moved = until_kind(&mut m.client, "media_changed").await;
        assert_eq!(moved.payload, json!({"media": "sfu", "media_mode": "auto"}));
    }
    let watch: Vec<_> = [&bob, &carol]
        .iter()
        .map(|m| (m.name, m.received.clone()))
        .collect();
    let (tasks, writer) = start_call(vec![alice, bob, carol], &stop, started).await;
    for (name, received) in &watch {
        wait_until(&format!("{name} receives alice's frames"), started, || {
            (received.lock().unwrap().iter())
                .any(|((stream, _), n)| stream == "alice" && *n >= FRAMES)
        })
        .await;
    }
    stop.cancel();
    writer.await.expect("writer task").expect("frames written");
    let mut members: Vec<Member> = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .map(|t| t.expect("member task").expect("member ran without error"))
        .collect();

    let mut carol = members.pop().expect("carol");
    let leave = carol.client.msg("leave").room(ROOM);
    carol.client.send(leave).await;
    for m in &mut members {
        let back = until_kind(&mut m.client, "media_changed").await;
        assert_eq!(back.payload, json!({"media": "mesh", "media_mode": "auto"}));
    }
    let metrics_url = server.http("/metrics");
    loop {
        let m = scrape(&metrics_url).await.samples;
        if m.get("sfu_participants_gauge").copied() == Some(0.0) {
            break;
        }
        assert!(
            started.elapsed() < CALL_DEADLINE,
            "the SFU still holds members: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for m in members.into_iter().chain([carol]) {
        m.pc.close().await.expect("closes");
        m.client.close().await;
    }
    server.shutdown().await;
}

/// Reads `client`'s messages until one of `kind`, within [`CALL_DEADLINE`] (off its socket, as
/// [`Member::run`] does, so the client's own count of `seq` is not consulted).
async fn until_kind(client: &mut Client, kind: &str) -> ServerEnvelope {
    tokio::time::timeout(CALL_DEADLINE, async {
        loop {
            let frame = client
                .ws
                .next()
                .await
                .expect("socket open")
                .expect("a frame");
            let Message::Text(text) = frame else { continue };
            let env: ServerEnvelope = serde_json::from_str(&text).expect("an envelope");
            if env.kind == kind {
                return env;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {kind} within {CALL_DEADLINE:?}"))
}
