//! The connected client of any target: it connects and joins, wraps each message the way its
//! protocol does, and turns what the server sends into [`Incoming`]. switchboard's messages are
//! read here (their `seq` feeds the client's `ack`); the peers' are read by [`super::decode`].

use std::{
    borrow::Cow,
    net::SocketAddr,
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio_tungstenite::tungstenite::Message;

use super::{
    Endpoint, Incoming, Target, Transport, body_time,
    decode::{clip, decode_matchbox, decode_peerjs},
    unix_ms,
};
use crate::{
    http::{HttpLink, LinkEvent, Stream},
    net::{ConnectError, Context, Result, Ws, ws_connect},
    shape,
};

enum Link {
    Ws(Box<Ws>),
    Http(Box<HttpLink>),
}

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
