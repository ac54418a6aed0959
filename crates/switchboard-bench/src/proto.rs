//! The protocols the load generator speaks, behind one client type: switchboard (WebSocket, SSE,
//! long-poll), `matchbox_server`, the PeerJS server, and the bare relay built into this tool.
//!
//! Every workload sends one kind of application message: a JSON object `{"t":NS,"p":"xx.."}`
//! whose `t` is the sender's clock (see [`crate::stats::now_ns`]) and whose padding `p` makes the
//! object exactly `size` bytes. Each protocol wraps it its own way:
//!
//! | target | client sends | client receives |
//! |---|---|---|
//! | switchboard | `{"type":"message","room":R,"seq":N,"ts":MS,"to":P,"payload":BODY}` | the same with `from` and the server's `seq` |
//! | matchbox | `{"Signal":{"receiver":UUID,"data":BODY}}` | `{"Signal":{"sender":UUID,"data":BODY}}` |
//! | PeerJS | `{"type":"OFFER","dst":ID,"payload":BODY}` | `{"type":"OFFER","src":ID,"dst":ID,"payload":BODY}` |
//! | bare | `BODY` | `BODY` (forwarded verbatim to the other members of the path's room) |

use std::{
    borrow::Cow,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    http::{HttpLink, LinkEvent, Stream},
    net::{ConnectError, Context, Result, Sources, Ws, ws_connect},
    shape,
};

/// The server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// switchboard (`/v1/ws`, `/v1/sessions`).
    Switchboard,
    /// `matchbox_server` (`ws://host/<room>`).
    Matchbox,
    /// The PeerJS server, npm `peer` (`/peerjs?key=peerjs&id=ID&token=T`).
    Peerjs,
    /// The bare relay of this tool (`ws://host/<room>`, frames forwarded verbatim).
    Bare,
}

impl Target {
    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Target::Switchboard => "switchboard",
            Target::Matchbox => "matchbox",
            Target::Peerjs => "peerjs",
            Target::Bare => "bare",
        }
    }
}

/// How switchboard sessions are carried (the peers and the bare relay speak WebSocket only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// `GET /v1/ws`.
    Ws,
    /// `POST .../messages` + `GET .../events`.
    Sse,
    /// `POST .../messages` + `GET .../poll`.
    Poll,
}

impl Transport {
    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Ws => "ws",
            Transport::Sse => "sse",
            Transport::Poll => "poll",
        }
    }
}

/// Where and how to connect.
#[derive(Clone)]
pub struct Endpoint {
    /// The server's protocol.
    pub target: Target,
    /// The transport (switchboard only; others use WebSocket).
    pub transport: Transport,
    /// The server's address (loopback).
    pub addr: SocketAddr,
    /// switchboard's HS256 key.
    pub key: Option<Arc<EncodingKey>>,
    /// Client source addresses.
    pub sources: Sources,
    /// Bound on connecting and joining.
    pub connect_timeout: Duration,
    /// A prefix that makes this run's ids and rooms unique on a long-running server.
    pub run_id: String,
    /// switchboard: send an `ack` after this many server messages (0: never).
    pub ack_every: u32,
    /// switchboard in cluster mode: another node, where the second member of each pair
    /// connects, so every relay crosses nodes (through Redis). `None`: all on `addr`.
    pub peer_addr: Option<SocketAddr>,
}

impl Endpoint {
    /// An endpoint with default sources, a 10 s connect timeout and a random run id.
    pub fn new(
        target: Target,
        transport: Transport,
        addr: SocketAddr,
        secret: Option<&[u8]>,
    ) -> Self {
        let run_id = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        Endpoint {
            target,
            transport,
            addr,
            key: secret.map(|s| Arc::new(EncodingKey::from_secret(s))),
            sources: Sources::default(),
            connect_timeout: Duration::from_secs(10),
            run_id,
            ack_every: DEFAULT_ACK_EVERY,
            peer_addr: None,
        }
    }

    /// A token for `user`, valid for every room, signed with the endpoint's secret.
    pub fn mint(&self, user: &str) -> Result<String> {
        #[derive(Serialize)]
        struct Claims<'a> {
            sub: &'a str,
            exp: u64,
            iat: u64,
            room: &'a str,
        }
        let key = self
            .key
            .as_ref()
            .ok_or("switchboard needs the server's secret (--secret or SWITCHBOARD_SECRET)")?;
        let now = unix_ms() / 1000;
        let claims = Claims {
            sub: user,
            exp: now + 24 * 3600,
            iat: now,
            room: "*",
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key).ctx("mint token")
    }

    /// A room name unique to this run.
    pub fn room(&self, kind: &str, i: usize) -> String {
        format!("{}-{kind}{i}", self.run_id)
    }

    /// A peer (and user) id unique to this run.
    pub fn peer(&self, kind: &str, i: usize) -> String {
        format!("{}-{kind}{i}", self.run_id)
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// The application message: `{"t":<t>,"p":"xx.."}`, exactly `size` bytes when `size` allows.
pub fn body(t: u64, size: usize) -> String {
    // Copied in pieces: extending a `String` char by char was the generator's costliest function.
    const PADDING: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    let mut s = String::with_capacity(size.max(32));
    s.push_str(r#"{"t":"#);
    s.push_str(itoa::Buffer::new().format(t));
    s.push_str(r#","p":""#);
    let mut pad = size.saturating_sub(s.len() + 2);
    while pad > 0 {
        let piece = pad.min(PADDING.len());
        s.push_str(&PADDING[..piece]);
        pad -= piece;
    }
    s.push_str("\"}");
    s
}

#[derive(Deserialize)]
struct Body {
    t: u64,
}

/// The `t` of a body: read directly when it is as [`body`] wrote it (every target passes it on
/// verbatim, so this is every body a run receives), parsed otherwise.
fn body_time(raw: &str) -> Option<u64> {
    shape::body_time(raw).or_else(|| serde_json::from_str::<Body>(raw).ok().map(|b| b.t))
}

/// What a client received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// An application message: its sender (when the protocol says) and its timestamp.
    Data {
        /// Sender's id (switchboard `from`, matchbox `sender`, PeerJS `src`).
        from: Option<String>,
        /// The body's `t`.
        t: u64,
    },
    /// Someone joined the room (switchboard `peer_joined`, matchbox `NewPeer`).
    PeerJoined(String),
    /// Our join is done (switchboard `joined`, matchbox `IdAssigned`, PeerJS `OPEN`).
    Joined(String),
    /// Our leave is done (switchboard `left`).
    Left,
    /// An error or warning from the server; the connection goes on.
    Error(String),
    /// switchboard: a signaling message from the SFU (`from: "sfu"`): its `type` (`offer`,
    /// `answer`, `track_map`) and its raw JSON payload.
    Sfu {
        /// The message's `type`.
        kind: String,
        /// Its payload, as JSON text.
        payload: String,
    },
    /// Anything else.
    Other,
}

enum Link {
    Ws(Box<Ws>),
    Http(Box<HttpLink>),
}

/// Acknowledge switchboard messages after this many by default: what the browser SDK does
/// (`ackEvery: 32`), so the server can release what a resume would no longer need.
pub const DEFAULT_ACK_EVERY: u32 = 32;

/// A connected client of any target.
pub struct Client {
    link: Link,
    target: Target,
    /// This client's id (as others address it).
    pub me: String,
    /// The room it joined.
    pub room: String,
    /// switchboard: next client `seq`.
    seq: u64,
    /// switchboard: highest server `seq` received, and messages since the last `ack`.
    server_seq: u64,
    unacked: u32,
    /// switchboard: `ack` after this many messages (0: never; long-poll acknowledges with
    /// `after` instead).
    ack_every: u32,
}

impl Client {
    /// Connects, joins `room` as `peer` (switchboard, PeerJS; matchbox assigns ids) and returns the
    /// client with the time from the first byte to the confirmed join.
    pub async fn connect(
        ep: &Endpoint,
        room: &str,
        peer: &str,
    ) -> std::result::Result<(Client, Duration), ConnectError> {
        Client::connect_at(ep, ep.addr, room, peer).await
    }

    /// [`Client::connect`] to the server at `addr` (another node of a cluster, say).
    pub async fn connect_at(
        ep: &Endpoint,
        addr: SocketAddr,
        room: &str,
        peer: &str,
    ) -> std::result::Result<(Client, Duration), ConnectError> {
        let started = Instant::now();
        let src = ep.sources.next();
        let deadline = ep.connect_timeout;
        let mut client = match ep.target {
            Target::Switchboard => {
                let token = ep.mint(peer)?;
                let link = match ep.transport {
                    Transport::Ws => Link::Ws(Box::new(
                        ws_connect(src, addr, &format!("/v1/ws?token={token}"), deadline).await?,
                    )),
                    Transport::Sse | Transport::Poll => {
                        let stream = if ep.transport == Transport::Sse {
                            Stream::Sse
                        } else {
                            Stream::Poll
                        };
                        Link::Http(Box::new(
                            HttpLink::open(src, addr, token, stream, deadline).await?,
                        ))
                    }
                };
                let acks = if ep.transport == Transport::Poll {
                    0
                } else {
                    ep.ack_every
                };
                Client::new(link, ep.target, peer, room, acks)
            }
            Target::Matchbox | Target::Bare => {
                let ws = ws_connect(src, addr, &format!("/{room}"), deadline).await?;
                Client::new(Link::Ws(Box::new(ws)), ep.target, "", room, 0)
            }
            Target::Peerjs => {
                let token = format!("{:08x}", rand::random::<u32>());
                let path = format!("/peerjs?key=peerjs&id={peer}&token={token}");
                let ws = ws_connect(src, addr, &path, deadline).await?;
                Client::new(Link::Ws(Box::new(ws)), ep.target, peer, room, 0)
            }
        };
        let rest = deadline.saturating_sub(started.elapsed());
        match tokio::time::timeout(rest, client.join()).await {
            Ok(Ok(())) => Ok((client, started.elapsed())),
            Ok(Err(e)) => Err(ConnectError::Failed(e)),
            Err(_) => Err(ConnectError::Timeout),
        }
    }

    fn new(link: Link, target: Target, me: &str, room: &str, ack_every: u32) -> Client {
        Client {
            link,
            target,
            me: me.to_owned(),
            room: room.to_owned(),
            seq: 0,
            server_seq: 0,
            unacked: 0,
            ack_every,
        }
    }

    /// Waits for the protocol's "you are in" (nothing to wait for on the bare relay).
    async fn join(&mut self) -> Result<()> {
        match self.target {
            Target::Switchboard => {
                match self.recv().await? {
                    Incoming::Other => {} // hello
                    other => return Err(format!("expected hello, got {other:?}")),
                }
                let payload = format!("{{\"peer\":\"{}\"}}", self.me);
                let join = self.envelope("join", Some(&self.room.clone()), None, &payload);
                self.send_raw(join).await?;
                self.wait_joined().await
            }
            Target::Matchbox | Target::Peerjs => self.wait_joined().await,
            Target::Bare => Ok(()),
        }
    }

    async fn wait_joined(&mut self) -> Result<()> {
        loop {
            match self.recv().await? {
                Incoming::Joined(id) => {
                    if self.target == Target::Matchbox {
                        self.me = id;
                    }
                    return Ok(());
                }
                Incoming::Error(e) => return Err(format!("join refused: {e}")),
                _ => {}
            }
        }
    }

    /// Waits for `n` other members to join (matchbox announces newcomers only to those already
    /// in the room; switchboard does too). Returns their ids.
    pub async fn wait_new_peers(&mut self, n: usize) -> Result<Vec<String>> {
        let mut peers = Vec::with_capacity(n);
        while peers.len() < n {
            match self.recv().await? {
                Incoming::PeerJoined(id) => peers.push(id),
                Incoming::Error(e) => return Err(e),
                _ => {}
            }
        }
        Ok(peers)
    }

    /// switchboard's envelope.
    fn envelope(
        &mut self,
        kind: &str,
        room: Option<&str>,
        to: Option<&str>,
        payload: &str,
    ) -> String {
        self.seq += 1;
        // Written piece by piece rather than with `write!`: this runs for every message sent, on
        // the core whose speed decides closed-loop throughput (see `shape`).
        let mut numbers = itoa::Buffer::new();
        let mut s = String::with_capacity(payload.len() + 128);
        s.push_str(r#"{"type":""#);
        s.push_str(kind);
        s.push('"');
        if let Some(room) = room {
            s.push_str(r#","room":""#);
            s.push_str(room);
            s.push('"');
        }
        s.push_str(r#","seq":"#);
        s.push_str(numbers.format(self.seq));
        s.push_str(r#","ts":"#);
        s.push_str(numbers.format(unix_ms()));
        if let Some(to) = to {
            s.push_str(r#","to":""#);
            s.push_str(to);
            s.push('"');
        }
        s.push_str(r#","payload":"#);
        s.push_str(payload);
        s.push('}');
        s
    }

    async fn send_raw(&mut self, text: String) -> Result<()> {
        match &mut self.link {
            Link::Ws(ws) => ws.send(Message::text(text)).await.ctx("send"),
            Link::Http(link) => link.send(text),
        }
    }

    /// Sends `body` to peer `to` (ignored by the bare relay, which forwards to the room).
    pub async fn send_to(&mut self, to: &str, body: &str) -> Result<()> {
        let text = match self.target {
            Target::Switchboard => {
                let room = std::mem::take(&mut self.room);
                let text = self.envelope("message", Some(&room), Some(to), body);
                self.room = room;
                text
            }
            Target::Matchbox => format!("{{\"Signal\":{{\"receiver\":\"{to}\",\"data\":{body}}}}}"),
            Target::Peerjs => format!("{{\"type\":\"OFFER\",\"dst\":\"{to}\",\"payload\":{body}}}"),
            Target::Bare => body.to_owned(),
        };
        self.send_raw(text).await
    }

    /// Sends `body` to every other member: one room broadcast where the protocol has one
    /// (switchboard, bare), one message per member of `members` where it does not (matchbox,
    /// PeerJS). Returns how many messages the client sent.
    pub async fn broadcast(&mut self, members: &[String], body: &str) -> Result<usize> {
        match self.target {
            Target::Switchboard => {
                let room = std::mem::take(&mut self.room);
                let text = self.envelope("message", Some(&room), None, body);
                self.room = room;
                self.send_raw(text).await?;
                Ok(1)
            }
            Target::Bare => {
                self.send_raw(body.to_owned()).await?;
                Ok(1)
            }
            Target::Matchbox | Target::Peerjs => {
                if let Link::Ws(ws) = &mut self.link {
                    for to in members {
                        let text = match self.target {
                            Target::Matchbox => {
                                format!("{{\"Signal\":{{\"receiver\":\"{to}\",\"data\":{body}}}}}")
                            }
                            _ => format!(
                                "{{\"type\":\"OFFER\",\"dst\":\"{to}\",\"payload\":{body}}}"
                            ),
                        };
                        ws.feed(Message::text(text)).await.ctx("send")?;
                    }
                    ws.flush().await.ctx("send")?;
                }
                Ok(members.len())
            }
        }
    }

    /// switchboard: sends a message of `kind` with the JSON `payload` to peer `to` of the room
    /// (the SFU's signaling: `offer` and `answer` to `sfu`).
    pub async fn signal(&mut self, kind: &str, to: &str, payload: &str) -> Result<()> {
        let room = std::mem::take(&mut self.room);
        let text = self.envelope(kind, Some(&room), Some(to), payload);
        self.room = room;
        self.send_raw(text).await
    }

    /// Leaves the room (switchboard: `leave`, answered with `left`), without waiting.
    pub async fn leave(&mut self) -> Result<()> {
        if self.target == Target::Switchboard {
            let room = self.room.clone();
            let text = self.envelope("leave", Some(&room), None, "{}");
            self.send_raw(text).await?;
        }
        Ok(())
    }

    /// Sends an `ack` when enough switchboard messages arrived since the last one. Kept out of
    /// [`Client::recv`] so that `recv` stays cancel-safe (it only awaits the next frame).
    pub async fn flush_ack(&mut self) -> Result<()> {
        if self.ack_every > 0 && self.unacked >= self.ack_every {
            self.unacked = 0;
            let payload = format!("{{\"seq\":{}}}", self.server_seq);
            let ack = self.envelope("ack", None, None, &payload);
            self.send_raw(ack).await?;
        }
        Ok(())
    }

    /// The next message from the server. `Err` when the connection is gone. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Incoming> {
        loop {
            let text = match &mut self.link {
                Link::Ws(ws) => match ws.next().await {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(frame))) => {
                        return Err(format!(
                            "closed by the server{}",
                            frame
                                .map(|f| format!(" ({} {})", f.code, f.reason))
                                .unwrap_or_default()
                        ));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(format!("receive: {e}")),
                    None => return Err("connection closed".into()),
                },
                Link::Http(link) => match link.inbox.recv().await {
                    Some(LinkEvent::Text(t)) => t.into(),
                    Some(LinkEvent::Refused(e)) => return Ok(Incoming::Error(e)),
                    Some(LinkEvent::Closed(e)) => return Err(e),
                    None => return Err("link closed".into()),
                },
            };
            return Ok(self.decode(text.as_str()));
        }
    }

    fn decode(&mut self, text: &str) -> Incoming {
        match self.target {
            Target::Switchboard => self.decode_switchboard(text),
            Target::Matchbox => decode_matchbox(text),
            Target::Peerjs => decode_peerjs(text),
            Target::Bare => match body_time(text) {
                Some(t) => Incoming::Data { from: None, t },
                None => Incoming::Other,
            },
        }
    }

    fn decode_switchboard(&mut self, text: &str) -> Incoming {
        if let Some((seq, from, t)) = shape::switchboard_message(text) {
            self.received(seq);
            return Incoming::Data {
                from: Some(from.to_owned()),
                t,
            };
        }
        #[derive(Deserialize)]
        struct In<'a> {
            #[serde(rename = "type", borrow)]
            kind: Cow<'a, str>,
            #[serde(default)]
            seq: u64,
            #[serde(default, borrow)]
            from: Option<Cow<'a, str>>,
            #[serde(default, borrow)]
            payload: Option<&'a RawValue>,
        }
        #[derive(Deserialize)]
        struct PeerPayload<'a> {
            #[serde(borrow)]
            peer: Cow<'a, str>,
        }
        let Ok(m) = serde_json::from_str::<In>(text) else {
            return Incoming::Error(format!("unreadable: {}", clip(text)));
        };
        self.received(m.seq);
        let payload = m.payload.map(RawValue::get).unwrap_or("{}");
        if m.from.as_deref() == Some("sfu") && matches!(&*m.kind, "offer" | "answer" | "track_map")
        {
            return Incoming::Sfu {
                kind: m.kind.into_owned(),
                payload: payload.to_owned(),
            };
        }
        match &*m.kind {
            "message" => match body_time(payload) {
                Some(t) => Incoming::Data {
                    from: m.from.map(Cow::into_owned),
                    t,
                },
                None => Incoming::Other,
            },
            "joined" => Incoming::Joined(self.me.clone()),
            "peer_joined" => match serde_json::from_str::<PeerPayload>(payload) {
                Ok(p) => Incoming::PeerJoined(p.peer.into_owned()),
                Err(_) => Incoming::Other,
            },
            "left" => Incoming::Left,
            "error" | "warning" | "replaced" => Incoming::Error(clip(text)),
            _ => Incoming::Other,
        }
    }

    /// Notes a switchboard message's `seq`, for the next `ack`.
    fn received(&mut self, seq: u64) {
        if seq > self.server_seq {
            self.server_seq = seq;
            self.unacked += 1;
        }
    }

    /// Closes the connection politely (a WebSocket close, awaited briefly).
    pub async fn close(self) {
        if let Link::Ws(mut ws) = self.link {
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                let _ = SinkExt::close(&mut *ws).await;
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await;
        }
    }
}

fn clip(text: &str) -> String {
    text.chars().take(300).collect()
}

fn decode_matchbox(text: &str) -> Incoming {
    if let Some((sender, t)) = shape::matchbox_signal(text) {
        return Incoming::Data {
            from: Some(sender.to_owned()),
            t,
        };
    }
    #[derive(Deserialize)]
    enum In<'a> {
        IdAssigned(Cow<'a, str>),
        NewPeer(Cow<'a, str>),
        PeerLeft(#[allow(dead_code)] Cow<'a, str>),
        Signal {
            #[serde(borrow)]
            sender: Cow<'a, str>,
            #[serde(borrow)]
            data: &'a RawValue,
        },
    }
    match serde_json::from_str::<In>(text) {
        Ok(In::Signal { sender, data }) => match body_time(data.get()) {
            Some(t) => Incoming::Data {
                from: Some(sender.into_owned()),
                t,
            },
            None => Incoming::Other,
        },
        Ok(In::IdAssigned(id)) => Incoming::Joined(id.into_owned()),
        Ok(In::NewPeer(id)) => Incoming::PeerJoined(id.into_owned()),
        Ok(In::PeerLeft(_)) => Incoming::Other,
        Err(_) => Incoming::Error(format!("unreadable: {}", clip(text))),
    }
}

fn decode_peerjs(text: &str) -> Incoming {
    if let Some((src, t)) = shape::peerjs_signal(text) {
        return Incoming::Data {
            from: Some(src.to_owned()),
            t,
        };
    }
    #[derive(Deserialize)]
    struct In<'a> {
        #[serde(rename = "type", borrow)]
        kind: Cow<'a, str>,
        #[serde(default, borrow)]
        src: Option<Cow<'a, str>>,
        #[serde(default, borrow)]
        payload: Option<&'a RawValue>,
    }
    let Ok(m) = serde_json::from_str::<In>(text) else {
        return Incoming::Error(format!("unreadable: {}", clip(text)));
    };
    match &*m.kind {
        "OFFER" | "ANSWER" | "CANDIDATE" => match m.payload.and_then(|p| body_time(p.get())) {
            Some(t) => Incoming::Data {
                from: m.src.map(Cow::into_owned),
                t,
            },
            None => Incoming::Other,
        },
        "OPEN" => Incoming::Joined(String::new()),
        "ERROR" | "ID-TAKEN" => Incoming::Error(clip(text)),
        _ => Incoming::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_asked_size_and_time() {
        let b = body(123_456, 200);
        assert_eq!(b.len(), 200);
        assert_eq!(body_time(&b), Some(123_456));
        assert_eq!(body_time(&body(7, 1)), Some(7));
        assert_eq!(body(1, 1000).len(), 1000);
        // Bodies written differently are parsed.
        assert_eq!(body_time(r#"{"p":"xx","t":42}"#), Some(42));
        assert_eq!(body_time(r#"{ "t" : 5 , "p" : "" }"#), Some(5));
        assert_eq!(body_time(r#"{"t":-1,"p":""}"#), None);
        assert_eq!(body_time(r#"{"t":+1,"p":""}"#), None);
    }

    #[test]
    fn decodes_each_protocol() {
        let m = r#"{"Signal":{"sender":"9b1c","data":{"t":42,"p":"xx"}}}"#;
        assert_eq!(
            decode_matchbox(m),
            Incoming::Data {
                from: Some("9b1c".into()),
                t: 42
            }
        );
        assert_eq!(
            decode_matchbox(r#"{"IdAssigned":"abc"}"#),
            Incoming::Joined("abc".into())
        );
        assert_eq!(
            decode_matchbox(r#"{"NewPeer":"abc"}"#),
            Incoming::PeerJoined("abc".into())
        );
        let p = r#"{"type":"OFFER","src":"a1","dst":"b1","payload":{"t":9,"p":""}}"#;
        assert_eq!(
            decode_peerjs(p),
            Incoming::Data {
                from: Some("a1".into()),
                t: 9
            }
        );
        assert_eq!(
            decode_peerjs(r#"{"type":"OPEN"}"#),
            Incoming::Joined(String::new())
        );
    }
}
