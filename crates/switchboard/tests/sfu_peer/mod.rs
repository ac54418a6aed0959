//! A member of an SFU room for the tests that run real media through the server: a `webrtc`
//! peer in this process that joins over a real WebSocket, negotiates with the peer `sfu` through
//! the server and connects to the SFU's UDP port over loopback. A publisher sends a VP8 video
//! track; every member counts the frames it receives, attributed to their publisher by
//! `track_map` and by the stream id.
//!
//! Every wait is bounded by [`CALL_DEADLINE`]; conditions are polled, nothing sleeps to prove a
//! point.

#![allow(dead_code)] // each test file uses its own part

mod auto_room;

pub use auto_room::auto_room_moves_to_the_sfu_and_back;

use std::{
    collections::{BTreeSet, HashMap},
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
use switchboard_protocol::{Role, ServerEnvelope};
use switchboard_testkit::{Client, metrics::scrape, tokens};
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

pub const CALL_DEADLINE: Duration = Duration::from_secs(40);
pub const ROOM: &str = "sfu-room";
/// Bytes every published frame carries after its VP8 header, to recognise them on arrival.
pub const MARKER: &[u8] = b"switchboard-sfu-frame";
/// Frames each subscriber must receive.
pub const FRAMES: usize = 60;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, BoxError>;

pub fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "video/VP8".to_owned(),
        clock_rate: 90000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

/// What a subscriber received: RTP packets carrying the marker, by (stream id, track id).
pub type Received = Arc<Mutex<HashMap<(String, String), usize>>>;

pub enum Event {
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
pub struct Member {
    pub name: &'static str,
    pub room: &'static str,
    pub client: Client,
    pub pc: Arc<dyn PeerConnection>,
    pub events: mpsc::UnboundedReceiver<Event>,
    pub received: Received,
    pub video: Option<(Arc<TrackLocalStaticSample>, Arc<dyn RtpSender>)>,
    /// mid -> (peer, track), from `track_map`.
    pub track_map: Arc<Mutex<HashMap<String, (String, String)>>>,
    pub published: Arc<Mutex<Vec<(String, String)>>>,
    pub connected: Arc<Mutex<bool>>,
    /// The UDP ports of the candidates the SFU's descriptions named: its worker's.
    pub sfu_ports: Arc<Mutex<BTreeSet<u16>>>,
    /// Why the media session must start over, when it must: the server said
    /// `media_unavailable`, or the connection to the SFU failed. [`Member::run`] then returns.
    pub over: Option<&'static str>,
}

impl Member {
    /// Joins `room` as `name` with `client` (connected, not yet joined), whose `joined` must
    /// say the room's media is `media`.
    pub async fn join(
        mut client: Client,
        room: &'static str,
        name: &'static str,
        publish: bool,
        media: &str,
    ) -> Member {
        let joined = client.join(room, name).await;
        assert_eq!(joined.payload["media"], media, "{joined:?}");
        Member::over(client, room, name, publish).await
    }

    /// A new media session for `name`, a member of `room` through `client` already (a media
    /// session starting over after `media_unavailable`).
    pub async fn over(
        client: Client,
        room: &'static str,
        name: &'static str,
        publish: bool,
    ) -> Member {
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
            room,
            client,
            pc,
            events,
            received,
            video,
            track_map: Default::default(),
            published: Default::default(),
            connected: Default::default(),
            sfu_ports: Default::default(),
            over: None,
        }
    }

    pub async fn offer(&mut self) {
        let offer = self.pc.create_offer(None).await.expect("offer");
        self.pc
            .set_local_description(offer.clone())
            .await
            .expect("local offer");
        self.signal_sfu("offer", json!({"type": "offer", "sdp": offer.sdp}))
            .await;
    }

    /// Ends the member: its peer connection, then its signaling socket.
    pub async fn close(self) {
        self.pc.close().await.expect("closes");
        self.client.close().await;
    }

    async fn signal_sfu(&mut self, kind: &str, payload: Value) {
        let env = (self.client.msg(kind).room(self.room).to("sfu")).payload(payload);
        self.client.send(env).await;
    }

    /// Signals and handles WebRTC events until `stop` fires, or the media session must start
    /// over ([`Member::over`]).
    pub async fn run(mut self, stop: CancellationToken) -> Result<Member> {
        loop {
            if self.over.is_some() {
                return Ok(self);
            }
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
                        self.over = Some("failed");
                    }
                    Event::State(_) => {}
                },
            }
        }
    }

    /// Notes the ports of the UDP candidates in the SFU's `sdp`
    /// (`a=candidate:<foundation> <component> udp <priority> <address> <port> typ host`).
    fn note_ports(&self, sdp: &str) {
        let ports = (sdp.lines())
            .filter_map(|line| line.strip_prefix("a=candidate:"))
            .map(|c| c.split_whitespace().collect::<Vec<_>>())
            .filter(|fields| fields.get(2).is_some_and(|p| p.eq_ignore_ascii_case("udp")))
            .filter_map(|fields| fields.get(5)?.parse::<u16>().ok());
        self.sfu_ports.lock().unwrap().extend(ports);
    }

    async fn on_signal(&mut self, env: ServerEnvelope) -> Result<()> {
        let from_sfu = env.from.as_deref() == Some("sfu");
        match env.kind.as_str() {
            "offer" if from_sfu => {
                let sdp = env.payload["sdp"].as_str().ok_or("offer without sdp")?;
                self.note_ports(sdp);
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
                self.note_ports(sdp);
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
            "error" if env.payload["code"] == "media_unavailable" => {
                self.over = Some("media_unavailable");
            }
            "error" => return Err(format!("{}: error from the server: {env:?}", self.name).into()),
            _ => {}
        }
        Ok(())
    }
}

/// Writes VP8-shaped frames (a keyframe every 30) at 30 fps until `stop` fires.
pub async fn publish(
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

/// Offers from every member and runs them until `stop`; once each publisher (a member with a
/// video track) is connected to the SFU, writes its frames. The members' tasks and the
/// writers'.
pub async fn start_call(
    members: Vec<Member>,
    stop: &CancellationToken,
    started: Instant,
) -> (
    Vec<tokio::task::JoinHandle<Result<Member>>>,
    Vec<tokio::task::JoinHandle<Result<usize>>>,
) {
    let publishers: Vec<_> = (members.iter())
        .filter_map(|m| Some((m.name, m.video.clone()?, m.connected.clone())))
        .collect();
    let mut members = members;
    for m in &mut members {
        m.offer().await;
    }
    let tasks = (members.into_iter())
        .map(|m| tokio::spawn(m.run(stop.clone())))
        .collect();
    let mut writers = Vec::new();
    for (name, (video, sender), connected) in publishers {
        wait_until(&format!("{name} connects to the SFU"), started, || {
            *connected.lock().unwrap()
        })
        .await;
        writers.push(tokio::spawn(publish(video, sender, stop.clone())));
    }
    (tasks, writers)
}

/// `name` joining [`ROOM`] through the node at `addr` (`host:port`) with a guest token for
/// every room, publishing video if `publish`; its `joined` must say the room's media is `media`.
pub async fn member(
    addr: impl std::fmt::Display,
    name: &'static str,
    publish: bool,
    media: &str,
) -> Member {
    member_of(addr, ROOM, name, publish, media).await
}

/// [`member`], joining `room`.
pub async fn member_of(
    addr: impl std::fmt::Display,
    room: &'static str,
    name: &'static str,
    publish: bool,
    media: &str,
) -> Member {
    let token = tokens::mint(name, "*", Role::Guest);
    let client = Client::connect(&format!("ws://{addr}/v1/ws?token={token}")).await;
    Member::join(client, room, name, publish, media).await
}

/// Whether `received` holds `FRAMES` of `from`'s frames.
pub fn got_from(received: &Received, from: &str) -> bool {
    (received.lock().unwrap().iter()).any(|((stream, _), n)| stream == from && *n >= FRAMES)
}

/// The value of the metric `name` in the metrics of the node at `addr`.
pub async fn metric(addr: impl std::fmt::Display, name: &str) -> f64 {
    let m = scrape(&format!("http://{addr}/metrics")).await;
    m.samples.get(name).copied().unwrap_or(0.0)
}

/// Waits until the metric `name` of the node at `addr` is `value` (gauges follow within a
/// second), failing after `CALL_DEADLINE`.
pub async fn until_metric(addr: impl std::fmt::Display, name: &str, value: f64, started: Instant) {
    loop {
        let now = metric(&addr, name).await;
        if now == value {
            return;
        }
        assert!(
            started.elapsed() < CALL_DEADLINE,
            "{name} is {now}, not {value}, on {addr}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for the writers of [`start_call`], each of which must have written its frames; returns
/// how many they wrote in all.
pub async fn finish(writers: Vec<tokio::task::JoinHandle<Result<usize>>>) -> usize {
    let mut sent = 0;
    for w in writers {
        sent += w.await.expect("writer task").expect("frames written");
    }
    sent
}

/// Polls `check` every 50 ms until it holds, failing after `CALL_DEADLINE`.
pub async fn wait_until(what: &str, started: Instant, check: impl Fn() -> bool) {
    while !check() {
        assert!(
            started.elapsed() < CALL_DEADLINE,
            "{what}: not within {CALL_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads `client`'s messages until one of `kind`, within [`CALL_DEADLINE`] (off its socket, as
/// [`Member::run`] does, so the client's own count of `seq` is not consulted).
pub async fn until_kind(client: &mut Client, kind: &str) -> ServerEnvelope {
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
