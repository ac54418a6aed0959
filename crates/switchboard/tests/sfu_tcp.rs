//! ICE-TCP through the running server: two str0m clients whose only candidate is TCP (as a
//! browser on a network that blocks UDP ends up) join an SFU room over WebSockets, connect to the
//! SFU's TCP port and carry ICE, DTLS and SRTP as RFC 4571 frames over it. One publishes VP8
//! frames; the other must receive them. Every wait is bounded by [`DEADLINE`].

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use str0m::{
    Candidate, Event, Input, Output, Rtc,
    change::{SdpAnswer, SdpOffer, SdpPendingOffer},
    format::Codec,
    media::{Direction, MediaKind, MediaTime, Mid},
    net::{Protocol, Receive, TcpType},
};
use switchboard_protocol::{MediaMode, Role, ServerEnvelope};
use switchboard_testkit::{Client, TestServer, metrics::scrape};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

const DEADLINE: Duration = Duration::from_secs(30);
const ROOM: &str = "tcp-room";
/// Frames the subscriber must receive.
const FRAMES: usize = 30;

/// A member whose media goes over one TCP connection to the SFU.
struct TcpMember {
    client: Client,
    rtc: Rtc,
    tcp: Framed<TcpStream, LengthDelimitedCodec>,
    local: SocketAddr,
    sfu: SocketAddr,
    pending: Option<SdpPendingOffer>,
    sending: Option<Mid>,
    /// Frames written so far.
    written: u32,
    /// The SFU asked for a keyframe: the next frame is one (a browser answers a PLI so).
    keyframe_due: bool,
    received: usize,
    connected: bool,
}

impl TcpMember {
    async fn join(server: &TestServer, name: &str, sfu: SocketAddr, publish: bool) -> TcpMember {
        let client = server.joined(name, ROOM, Role::Guest, name).await;
        let stream = TcpStream::connect(sfu)
            .await
            .expect("the ICE-TCP port accepts");
        let local = stream.local_addr().unwrap();
        let codec = LengthDelimitedCodec::builder()
            .length_field_length(2)
            .new_codec();
        let mut rtc = Rtc::builder().build(Instant::now());
        let candidate = Candidate::builder()
            .tcp()
            .host(local)
            .tcptype(TcpType::Active)
            .build()
            .unwrap();
        rtc.add_local_candidate(candidate);
        let mut member = TcpMember {
            client,
            rtc,
            tcp: Framed::new(stream, codec),
            local,
            sfu,
            pending: None,
            sending: None,
            written: 0,
            keyframe_due: false,
            received: 0,
            connected: false,
        };
        let mut change = member.rtc.sdp_api();
        if publish {
            member.sending =
                Some(change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None));
        } else {
            change.add_channel("signal".into());
        }
        let (offer, pending) = change.apply().expect("an offer");
        member.pending = Some(pending);
        member
            .signal(
                "offer",
                json!({"type": "offer", "sdp": offer.to_sdp_string()}),
            )
            .await;
        member
    }

    async fn signal(&mut self, kind: &str, payload: serde_json::Value) {
        let env = self.client.msg(kind).room(ROOM).to("sfu").payload(payload);
        self.client.send(env).await;
    }

    /// Sends what the `Rtc` produced over TCP; the time of its next timeout.
    async fn drain(&mut self) -> Instant {
        loop {
            match self.rtc.poll_output().expect("the client runs") {
                Output::Timeout(at) => return at,
                Output::Transmit(t) => {
                    assert_eq!(t.proto, Protocol::Tcp, "the only candidate is TCP");
                    let frame = bytes::Bytes::copy_from_slice(&t.contents);
                    self.tcp.send(frame).await.expect("frame written");
                }
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(Event::MediaData(_)) => self.received += 1,
                Output::Event(Event::KeyframeRequest(_)) => self.keyframe_due = true,
                Output::Event(_) => {}
            }
        }
    }

    async fn on_signal(&mut self, env: ServerEnvelope) {
        if env.from.as_deref() != Some("sfu") {
            return;
        }
        let sdp = || env.payload["sdp"].as_str().unwrap_or_default().to_owned();
        match env.kind.as_str() {
            "answer" => {
                let answer = SdpAnswer::from_sdp_string(&sdp()).expect("an answer");
                let pending = self.pending.take().expect("an offer out");
                self.rtc.sdp_api().accept_answer(pending, answer).unwrap();
            }
            "offer" if self.pending.is_none() => {
                let offer = SdpOffer::from_sdp_string(&sdp()).expect("an offer");
                let answer = self.rtc.sdp_api().accept_offer(offer).unwrap();
                self.signal(
                    "answer",
                    json!({"type": "answer", "sdp": answer.to_sdp_string()}),
                )
                .await;
            }
            "error" => panic!("error from the SFU: {env:?}"),
            _ => {}
        }
    }

    /// One VP8-shaped frame (a keyframe every 30, or when asked) on the published m-line, if
    /// it is open.
    fn write_frame(&mut self) {
        let Some(mid) = self.sending else { return };
        let Some(pt) = (self.rtc.codec_config())
            .find(|p| p.spec().codec == Codec::Vp8)
            .map(|p| p.pt())
        else {
            return;
        };
        let Some(writer) = self.rtc.writer(mid) else {
            return;
        };
        let n = self.written;
        self.written += 1;
        let keyframe = std::mem::take(&mut self.keyframe_due) || n.is_multiple_of(30);
        // Bit 0 of a VP8 frame's first byte is 0 on a keyframe.
        let data = vec![if keyframe { 0x10 } else { 0x11 }; 600];
        let time = MediaTime::new(u64::from(n) * 3000, str0m::media::Frequency::NINETY_KHZ);
        writer.write(pt, Instant::now(), time, data).unwrap();
    }

    /// Runs signaling, TCP and timers (and writes a frame every 33 ms once connected) until
    /// `done` holds.
    async fn run_until(&mut self, done: impl Fn(&TcpMember) -> bool) {
        let started = Instant::now();
        let mut frames = tokio::time::interval(Duration::from_millis(33));
        while !done(self) {
            assert!(started.elapsed() < DEADLINE, "not within {DEADLINE:?}");
            let timeout = self.drain().await;
            tokio::select! {
                frame = self.client.ws.next() => {
                    let Some(Ok(Message::Text(text))) = frame else { panic!("signaling closed") };
                    let env: ServerEnvelope = serde_json::from_str(&text).unwrap();
                    self.on_signal(env).await;
                }
                frame = self.tcp.next() => {
                    let frame = frame.expect("the SFU keeps the connection").expect("a frame");
                    let receive = Receive::new(Protocol::Tcp, self.sfu, self.local, &frame)
                        .expect("a packet");
                    self.rtc.handle_input(Input::Receive(Instant::now(), receive)).unwrap();
                }
                _ = tokio::time::sleep_until(timeout.into()) => {
                    self.rtc.handle_input(Input::Timeout(Instant::now())).unwrap();
                }
                _ = frames.tick(), if self.connected => self.write_frame(),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_flows_over_ice_tcp_when_tcp_is_all_a_client_has() {
    let mut server = TestServer::start_with(|c| {
        c.media_mode = MediaMode::Sfu;
        c.sfu.udp_port = Some(0);
        c.sfu.tcp_port = Some(0);
        c.sfu.bind = "127.0.0.1".parse().unwrap();
    })
    .await;
    let sfu = server.running().sfu_tcp_addrs[0];
    let mut alice = TcpMember::join(&server, "alice", sfu, true).await;
    let mut bob = TcpMember::join(&server, "bob", sfu, false).await;
    // Each connects on its own; then alice sends while bob receives.
    alice.run_until(|m| m.connected).await;
    bob.run_until(|m| m.connected).await;
    let bob_task = tokio::spawn(async move {
        bob.run_until(|m| m.received >= FRAMES).await;
        bob
    });
    let alice_task = tokio::spawn(async move {
        let started = Instant::now();
        // Alice runs (and writes frames) until bob is done, bounded by the deadline.
        while started.elapsed() < DEADLINE {
            let until = Instant::now() + Duration::from_millis(200);
            alice.run_until(|_| Instant::now() >= until).await;
        }
        alice
    });
    let bob = tokio::time::timeout(DEADLINE, bob_task)
        .await
        .expect("bob receives alice's frames over TCP")
        .unwrap();
    assert!(bob.received >= FRAMES);
    // The gauge is brought up to date every second; alice's and bob's connections are open.
    let started = Instant::now();
    loop {
        let metrics = scrape(&server.http("/metrics")).await.samples;
        if metrics.get("sfu_tcp_connections_gauge").copied() == Some(2.0) {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "{metrics:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    alice_task.abort();
    server.shutdown().await;
}
