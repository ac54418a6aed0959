//! A real WebRTC call signalled through the server: two `webrtc` peers in this process join a
//! room over real WebSockets, exchange `offer` / `answer` / trickled `candidate` messages through
//! the server, connect over loopback with host candidates only (no STUN or TURN), open a data
//! channel and send one message each way.
//!
//! Each peer is one task that selects over its WebSocket and an mpsc channel fed by the webrtc
//! callbacks, so signalling and WebRTC event handling run concurrently. The whole call is bounded
//! by [`CALL_DEADLINE`]; nothing waits on a sleep.

use std::{error::Error, sync::Arc, time::Duration};

use futures_util::StreamExt;
use serde_json::{Value, json};
use switchboard_protocol::{Role, ServerEnvelope};
use switchboard_testkit::{Client, TestServer};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use webrtc::{
    data_channel::{DataChannel, DataChannelEvent, RTCDataChannelState},
    peer_connection::{
        PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
        RTCIceCandidateInit, RTCIceGatheringState, RTCPeerConnectionIceEvent,
        RTCPeerConnectionState, RTCSessionDescription,
    },
};

/// The whole call (connect, negotiate, exchange both messages) must fit in this.
const CALL_DEADLINE: Duration = Duration::from_secs(30);

const ROOM: &str = "call-room";
const LABEL: &str = "chat";
const FROM_ALICE: &str = "hello bob, this is alice over a data channel";
const FROM_BOB: &str = "hi alice, bob here, loud and clear";

type BoxError = Box<dyn Error + Send + Sync>;
type Result<T> = std::result::Result<T, BoxError>;

/// Everything the webrtc side reports to a peer's task.
enum PeerEvent {
    LocalCandidate(RTCIceCandidateInit),
    GatheringComplete,
    ConnectionState(RTCPeerConnectionState),
    /// A channel the remote peer opened (answerer side).
    RemoteChannel(Arc<dyn DataChannel>),
    ChannelOpen,
    ChannelMessage(String),
    ChannelClosed,
}

/// Forwards the webrtc callbacks into the peer task's channel.
///
/// The trait is declared with `#[async_trait]`; this crate does not depend on `async-trait`, so
/// the methods are written in the form that macro expands to.
struct Forwarder {
    events: mpsc::UnboundedSender<PeerEvent>,
}

impl Forwarder {
    fn forward(&self, event: PeerEvent) {
        // The receiver is gone only once the peer task has finished; late events don't matter.
        let _ = self.events.send(event);
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Forwarder {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(init) => self.forward(PeerEvent::LocalCandidate(init)),
            Err(e) => panic!(
                "local candidate {} does not serialize: {e}",
                event.candidate
            ),
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.forward(PeerEvent::GatheringComplete);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.forward(PeerEvent::ConnectionState(state));
    }

    async fn on_data_channel(&self, data_channel: Arc<dyn DataChannel>) {
        self.forward(PeerEvent::RemoteChannel(data_channel));
    }
}

/// Pumps a data channel's events into the peer task's channel until it closes.
fn watch_channel(channel: Arc<dyn DataChannel>, events: mpsc::UnboundedSender<PeerEvent>) {
    tokio::spawn(async move {
        while let Some(event) = channel.poll().await {
            let forwarded = match event {
                DataChannelEvent::OnOpen => PeerEvent::ChannelOpen,
                DataChannelEvent::OnMessage(msg) => {
                    PeerEvent::ChannelMessage(String::from_utf8_lossy(&msg.data).into_owned())
                }
                DataChannelEvent::OnClose => PeerEvent::ChannelClosed,
                _ => continue,
            };
            let closed = matches!(forwarded, PeerEvent::ChannelClosed);
            if events.send(forwarded).is_err() || closed {
                break;
            }
        }
    });
}

/// A peer connection bound to one loopback UDP socket, with no ICE servers: host candidates only.
async fn peer_connection(events: mpsc::UnboundedSender<PeerEvent>) -> Arc<dyn PeerConnection> {
    let pc = PeerConnectionBuilder::new()
        .with_configuration(
            RTCConfigurationBuilder::new()
                .with_ice_servers(vec![])
                .build(),
        )
        .with_handler(Arc::new(Forwarder { events }))
        .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
        .build()
        .await
        .expect("peer connection builds");
    Arc::new(pc)
}

/// What a finished peer saw.
struct Outcome {
    /// The data-channel message that arrived from the other peer.
    received: String,
    /// Non-empty candidates that arrived through the server.
    remote_candidates: Vec<String>,
    /// Whether the SDP this peer sent already listed candidates (if not, trickle was essential).
    sdp_had_candidates: bool,
    /// Kept alive until both sides are done, then closed by the test.
    pc: Arc<dyn PeerConnection>,
    client: Client,
}

/// One side of the call: its signalling socket, its peer connection and the negotiation state.
struct Peer {
    me: &'static str,
    other: &'static str,
    greeting: &'static str,
    client: Client,
    pc: Arc<dyn PeerConnection>,
    events_tx: mpsc::UnboundedSender<PeerEvent>,
    events: mpsc::UnboundedReceiver<PeerEvent>,
    remote_description_set: bool,
    /// Candidates that arrived before the remote description, applied once it is set.
    pending: Vec<RTCIceCandidateInit>,
    remote_candidates: Vec<String>,
    sdp_had_candidates: bool,
    channel: Option<Arc<dyn DataChannel>>,
    sent: bool,
    received: Option<String>,
}

impl Peer {
    async fn new(me: &'static str, other: &'static str, client: Client) -> Peer {
        let (events_tx, events) = mpsc::unbounded_channel();
        let pc = peer_connection(events_tx.clone()).await;
        let greeting = if me == "alice" { FROM_ALICE } else { FROM_BOB };
        Peer {
            me,
            other,
            greeting,
            client,
            pc,
            events_tx,
            events,
            remote_description_set: false,
            pending: Vec::new(),
            remote_candidates: Vec::new(),
            sdp_had_candidates: false,
            channel: None,
            sent: false,
            received: None,
        }
    }

    /// Creates the data channel and sends the offer.
    async fn offer(&mut self) -> Result<()> {
        let channel = self.pc.create_data_channel(LABEL, None).await?;
        watch_channel(channel.clone(), self.events_tx.clone());
        self.channel = Some(channel);
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer.clone()).await?;
        self.send_sdp("offer", &offer.sdp).await;
        Ok(())
    }

    /// Drives signalling and WebRTC events until a message went each way.
    async fn run(mut self) -> Result<Outcome> {
        while !(self.sent && self.received.is_some()) {
            tokio::select! {
                frame = self.client.ws.next() => {
                    let env = self.read_frame(frame)?;
                    self.on_signal(env).await?;
                }
                event = self.events.recv() => {
                    let event = event.ok_or("webrtc event channel closed")?;
                    self.on_event(event).await?;
                }
            }
        }
        Ok(Outcome {
            received: self.received.take().unwrap_or_default(),
            remote_candidates: self.remote_candidates,
            sdp_had_candidates: self.sdp_had_candidates,
            pc: self.pc,
            client: self.client,
        })
    }

    /// Decodes one WebSocket frame, checking the server's `seq` rises by exactly one.
    fn read_frame(
        &mut self,
        frame: Option<std::result::Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> Result<Option<ServerEnvelope>> {
        let frame = frame.ok_or_else(|| format!("{}: signalling socket closed", self.me))??;
        let text = match frame {
            Message::Text(text) => text,
            Message::Ping(_) | Message::Pong(_) => return Ok(None),
            other => return Err(format!("{}: unexpected frame {other:?}", self.me).into()),
        };
        let env: ServerEnvelope = serde_json::from_str(&text)?;
        if env.seq != 0 {
            if env.seq != self.client.last_seq + 1 {
                return Err(format!("{}: seq gap or repeat: {text}", self.me).into());
            }
            self.client.last_seq = env.seq;
        }
        Ok(Some(env))
    }

    async fn on_signal(&mut self, env: Option<ServerEnvelope>) -> Result<()> {
        let Some(env) = env else { return Ok(()) };
        match env.kind.as_str() {
            "offer" | "answer" | "candidate" => {
                if env.from.as_deref() != Some(self.other) || env.room.as_deref() != Some(ROOM) {
                    return Err(
                        format!("{}: relayed from the wrong place: {env:?}", self.me).into(),
                    );
                }
            }
            "error" => return Err(format!("{}: server error: {env:?}", self.me).into()),
            // Membership events, pongs and the like are not part of the call.
            _ => return Ok(()),
        }
        match env.kind.as_str() {
            "offer" => {
                let sdp = sdp_of(&env)?;
                self.pc
                    .set_remote_description(RTCSessionDescription::offer(sdp)?)
                    .await?;
                self.remote_description_set = true;
                self.apply_pending().await?;
                let answer = self.pc.create_answer(None).await?;
                self.pc.set_local_description(answer.clone()).await?;
                self.send_sdp("answer", &answer.sdp).await;
            }
            "answer" => {
                let sdp = sdp_of(&env)?;
                self.pc
                    .set_remote_description(RTCSessionDescription::answer(sdp)?)
                    .await?;
                self.remote_description_set = true;
                self.apply_pending().await?;
            }
            _ => {
                let p = &env.payload;
                let candidate = RTCIceCandidateInit {
                    candidate: p["candidate"]
                        .as_str()
                        .ok_or_else(|| format!("candidate without `candidate`: {env:?}"))?
                        .to_owned(),
                    sdp_mid: p["sdp_mid"].as_str().map(str::to_owned),
                    sdp_mline_index: p["sdp_m_line_index"]
                        .as_u64()
                        .map(u16::try_from)
                        .transpose()?,
                    ..Default::default()
                };
                if !candidate.candidate.is_empty() {
                    self.remote_candidates.push(candidate.candidate.clone());
                }
                if self.remote_description_set {
                    self.pc.add_ice_candidate(candidate).await?;
                } else {
                    self.pending.push(candidate);
                }
            }
        }
        Ok(())
    }

    async fn apply_pending(&mut self) -> Result<()> {
        for candidate in std::mem::take(&mut self.pending) {
            self.pc.add_ice_candidate(candidate).await?;
        }
        Ok(())
    }

    async fn on_event(&mut self, event: PeerEvent) -> Result<()> {
        match event {
            PeerEvent::LocalCandidate(c) => {
                let payload = json!({
                    "candidate": c.candidate,
                    "sdp_mid": c.sdp_mid,
                    "sdp_m_line_index": c.sdp_mline_index,
                });
                self.signal("candidate", payload).await;
            }
            PeerEvent::GatheringComplete => {
                self.signal("candidate", json!({"candidate": ""})).await;
            }
            PeerEvent::ConnectionState(state) => {
                if matches!(
                    state,
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
                ) {
                    return Err(format!("{}: peer connection {state}", self.me).into());
                }
            }
            PeerEvent::RemoteChannel(channel) => {
                let label = channel.label().await?;
                if label != LABEL {
                    return Err(format!("{}: unexpected channel {label:?}", self.me).into());
                }
                watch_channel(channel.clone(), self.events_tx.clone());
                let open = channel.ready_state().await? == RTCDataChannelState::Open;
                self.channel = Some(channel);
                if open {
                    self.greet().await?;
                }
            }
            PeerEvent::ChannelOpen => self.greet().await?,
            PeerEvent::ChannelMessage(text) => {
                if self.received.replace(text).is_some() {
                    return Err(format!("{}: more than one data-channel message", self.me).into());
                }
                // A channel can be usable before this side saw `OnOpen`; a message proves it.
                self.greet().await?;
            }
            PeerEvent::ChannelClosed => {
                return Err(format!("{}: data channel closed early", self.me).into());
            }
        }
        Ok(())
    }

    /// Sends this peer's one data-channel message, once.
    async fn greet(&mut self) -> Result<()> {
        if self.sent {
            return Ok(());
        }
        let channel = self.channel.as_ref().ok_or("no data channel yet")?;
        channel.send_text(self.greeting).await?;
        self.sent = true;
        Ok(())
    }

    async fn send_sdp(&mut self, kind: &str, sdp: &str) {
        self.sdp_had_candidates |= sdp.contains("a=candidate");
        self.signal(kind, json!({"sdp": sdp})).await;
    }

    /// Sends a targeted signalling message to the other peer through the server.
    async fn signal(&mut self, kind: &str, payload: Value) {
        let env = self
            .client
            .msg(kind)
            .room(ROOM)
            .to(self.other)
            .payload(payload);
        self.client.send(env).await;
    }
}

fn sdp_of(env: &ServerEnvelope) -> Result<String> {
    let sdp = env.payload["sdp"]
        .as_str()
        .ok_or_else(|| format!("{} without an sdp: {env:?}", env.kind))?;
    Ok(sdp.to_owned())
}

async fn finish(task: tokio::task::JoinHandle<Result<Outcome>>) -> Result<Outcome> {
    task.await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_webrtc_peers_connect_and_exchange_data_through_the_server() {
    let mut server = TestServer::start().await;
    let started = std::time::Instant::now();

    let alice = server.joined("alice", ROOM, Role::Host, "alice").await;
    let mut bob = server.client("bob", ROOM, Role::Guest).await;
    let joined = bob.join(ROOM, "bob").await;
    assert_eq!(joined.payload["peers"][0]["peer"], "alice", "{joined:?}");
    assert_eq!(
        joined.payload["ice_servers"],
        json!([]),
        "no ICE servers configured: host candidates only"
    );

    let mut offerer = Peer::new("alice", "bob", alice).await;
    let answerer = Peer::new("bob", "alice", bob).await;
    offerer.offer().await.expect("offer sent");
    let alice_task = tokio::spawn(offerer.run());
    let bob_task = tokio::spawn(answerer.run());

    let (alice, bob) = tokio::time::timeout(CALL_DEADLINE, async {
        tokio::try_join!(finish(alice_task), finish(bob_task))
    })
    .await
    .expect("the call connects and both messages arrive within the deadline")
    .expect("both peers complete the call");

    assert_eq!(alice.received, FROM_BOB, "alice got bob's message");
    assert_eq!(bob.received, FROM_ALICE, "bob got alice's message");
    for (name, outcome) in [("alice", &alice), ("bob", &bob)] {
        assert!(
            !outcome.remote_candidates.is_empty(),
            "{name} received trickled candidates through the server"
        );
        for candidate in &outcome.remote_candidates {
            assert!(
                candidate.contains("127.0.0.1") && candidate.contains("typ host"),
                "{name}: only loopback host candidates: {candidate}"
            );
        }
    }
    eprintln!(
        "call connected and exchanged messages in {:?}; candidates relayed: alice<-{} bob<-{}; \
         candidates inside the SDP: offer {} answer {}",
        started.elapsed(),
        alice.remote_candidates.len(),
        bob.remote_candidates.len(),
        alice.sdp_had_candidates,
        bob.sdp_had_candidates,
    );

    alice.pc.close().await.expect("alice closes");
    bob.pc.close().await.expect("bob closes");
    alice.client.close().await;
    bob.client.close().await;
    server.shutdown().await;
}
