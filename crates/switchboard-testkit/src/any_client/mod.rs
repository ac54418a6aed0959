//! One test client for every transport: the same session API over WebSocket, server-sent events
//! and long-poll, so a scenario written once runs on each of them.
//!
//! Whatever the transport, a background task moves what the server sends into a channel, and
//! every message is checked on arrival: `seq` rises by exactly one (no gap, no repeat), and an SSE
//! event's `id:` is the message's `seq`. Client messages go as WebSocket text frames, or as
//! `POST /v1/sessions/{id}/messages` whose per-message answer is returned to the caller.
//!
//! - WebSocket: `GET /v1/ws?token=`; resume with `?resume=SESSION&last_seq=N`.
//! - SSE: `POST /v1/sessions` (Bearer token) answers `{session, hello}`; events come from
//!   `GET /v1/sessions/{id}/events?token=` (as EventSource must, the token is in the query) first
//!   with `?last_seq=` of the hello. Like EventSource, the reader reconnects by itself when the
//!   server ends the stream, after the announced `retry:`, with `Last-Event-ID`.
//! - Long-poll: the same `POST /v1/sessions`, then a loop of `GET .../poll?after=SEQ` (Bearer).
//!
//! `drop_transport` loses the connection without telling the server (no close frame, no request);
//! what had already arrived counts as received. `resume` continues the session from the last seq
//! received, on the same transport (WebSocket `?resume`, SSE `Last-Event-ID`, poll `after`) or on
//! another one (WebSocket `?resume`, or `POST /v1/sessions?resume=S&last_seq=N` for SSE and poll).
//! After a `hello`, client messages above its `last_client_seq` that went out on a WebSocket (and
//! may have died with it) are sent again, as the contract asks of clients.
//!
//! This file holds the session API and the sending side; `receive.rs` takes in and checks what
//! arrives, `connection.rs` opens, loses and resumes transports, and `streams.rs` holds the
//! background reader of each transport.

mod connection;
mod receive;
mod streams;

use std::{
    collections::VecDeque,
    fmt,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures_util::{SinkExt, stream::SplitSink};
use serde_json::{Value, json};
use switchboard_protocol::{ClientEnvelope, Role, ServerEnvelope};
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_tungstenite::tungstenite::Message;

use crate::{DEADLINE, TestServer, client::Socket, no_hello, unix_ms};
use streams::{Incoming, created};

/// The three transports of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// `GET /v1/ws`.
    Ws,
    /// `GET /v1/sessions/{id}/events` plus posted messages.
    Sse,
    /// `GET /v1/sessions/{id}/poll` plus posted messages.
    Poll,
}

impl Transport {
    /// Every transport.
    pub const ALL: [Transport; 3] = [Transport::Ws, Transport::Sse, Transport::Poll];

    /// The next transport in [`Transport::ALL`], for a switch that must change transport.
    pub fn next(self) -> Transport {
        match self {
            Transport::Ws => Transport::Sse,
            Transport::Sse => Transport::Poll,
            Transport::Poll => Transport::Ws,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Ws => "ws",
            Transport::Sse => "sse",
            Transport::Poll => "poll",
        })
    }
}

/// How a stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The server closed the WebSocket with this close code (`None`: without a close frame).
    WsClose(Option<u16>),
    /// An HTTP request of the stream (an SSE (re)connect, a poll, a `POST /v1/sessions` resume)
    /// was refused with this status and error code.
    Refused {
        /// The HTTP status.
        status: u16,
        /// The error code of the body.
        code: String,
    },
    /// The connection failed.
    Failed(String),
}

/// What arrived, checked, in order.
#[derive(Debug)]
enum Item {
    Msg(ServerEnvelope),
    End(End),
}

/// See the module documentation.
pub struct AnyClient {
    /// The user id, used in assertion messages.
    pub name: String,
    /// The transport currently carrying the session.
    pub transport: Transport,
    /// Session id (from the first `hello`).
    pub session: String,
    /// The last client `seq` used.
    pub seq: u64,
    /// The latest `hello` (the first one, or the last resume's).
    pub hello: ServerEnvelope,
    base: String,
    ws_url: String,
    token: String,
    poll_wait: Duration,
    http: reqwest::Client,
    /// Highest server `seq` that arrived (read or not): the resume point.
    received_seq: u64,
    rx: mpsc::UnboundedReceiver<Incoming>,
    task: Option<JoinHandle<()>>,
    sink: Option<SplitSink<Socket, Message>>,
    /// Arrived and checked, not yet read.
    ready: VecDeque<Item>,
    /// Messages sent on a WebSocket and not yet confirmed by a `hello`'s `last_client_seq`.
    unconfirmed: Vec<ClientEnvelope>,
    /// What was read, normalized, for comparing transports ([`AnyClient::transcript`]).
    transcript: Vec<Value>,
    /// How often the SSE reader reconnected by itself.
    reconnects: Arc<AtomicUsize>,
}

impl Drop for AnyClient {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The comparable part of a server message: what a transport must not change (not `seq` and
/// `ts`, nor an error's human-readable text, which may carry a measurement such as a clock skew).
pub fn normalize(env: &ServerEnvelope) -> Value {
    let mut payload = env.payload.clone();
    if env.kind == "error"
        && let Some(p) = payload.as_object_mut()
    {
        p.remove("message");
    }
    json!({
        "type": env.kind,
        "room": env.room,
        "from": env.from,
        "id": env.id,
        "payload": payload,
    })
}

impl AnyClient {
    /// A new session for `user` (token grant `room`, `role`) on `transport`, its `hello` read.
    pub async fn connect(
        server: &TestServer,
        transport: Transport,
        user: &str,
        room: &str,
        role: Role,
    ) -> AnyClient {
        let poll_wait = Duration::from_millis(server.running().node().config().poll_wait_ms);
        let addr = server.addr.to_string();
        AnyClient::connect_to(&addr, poll_wait, transport, user, room, role).await
    }

    /// Points the client's next transport at the server at `addr`: another node of a cluster,
    /// as a load balancer would pick it. A resume there answers `hello` whatever the transport
    /// (there is no stream to continue on that node).
    pub fn move_to(&mut self, addr: &str) {
        self.base = format!("http://{addr}");
        self.ws_url = format!("ws://{addr}/v1/ws");
    }

    /// [`AnyClient::connect`] to the server at `addr` (such as a [`crate::Process`]), whose
    /// `poll_wait_ms` is `poll_wait`.
    pub async fn connect_to(
        addr: &str,
        poll_wait: Duration,
        transport: Transport,
        user: &str,
        room: &str,
        role: Role,
    ) -> AnyClient {
        let (_, rx) = mpsc::unbounded_channel();
        let mut c = AnyClient {
            name: user.to_owned(),
            transport,
            session: String::new(),
            seq: 0,
            hello: no_hello(),
            base: format!("http://{addr}"),
            ws_url: format!("ws://{addr}/v1/ws"),
            token: crate::tokens::mint(user, room, role),
            poll_wait,
            http: reqwest::Client::new(),
            received_seq: 0,
            rx,
            task: None,
            sink: None,
            ready: VecDeque::new(),
            unconfirmed: Vec::new(),
            transcript: Vec::new(),
            reconnects: Arc::new(AtomicUsize::new(0)),
        };
        match transport {
            Transport::Ws => {
                let url = format!("{}?token={}", c.ws_url, c.token);
                c.open_ws(&url).await;
            }
            Transport::Sse | Transport::Poll => {
                let response = c
                    .http
                    .post(format!("{}/v1/sessions", c.base))
                    .bearer_auth(&c.token)
                    .timeout(DEADLINE)
                    .send()
                    .await
                    .expect("POST /v1/sessions answers");
                assert_eq!(response.status().as_u16(), 200, "POST /v1/sessions");
                let (session, hello) = created(response).await;
                c.session = session;
                c.arrive(Incoming::Text {
                    text: hello,
                    event_id: None,
                });
                // The stream continues after the hello, seq 1.
                c.open_stream(transport, 1, false).await;
            }
        }
        let hello = c.next_msg().await;
        assert_eq!(
            hello.kind, "hello",
            "{}: the first message is hello",
            c.name
        );
        assert_eq!(hello.seq, 1, "{}: hello is seq 1", c.name);
        assert_eq!(hello.payload["resumed"], false);
        c.session = hello.payload["session"].as_str().unwrap().to_owned();
        // The first hello is the same on every transport but for the session id.
        let mut first = normalize(&hello);
        first["payload"]["session"] = json!("<session>");
        c.transcript.push(first);
        c.hello = hello;
        c
    }

    /// How often the SSE reader reconnected by itself (after the server ended a stream).
    pub fn reconnects(&self) -> usize {
        self.reconnects.load(Ordering::SeqCst)
    }

    /// Everything read so far, normalized ([`normalize`]), plus `<end>` and `<refused>` markers.
    /// The first `hello` is kept with its session id blanked; a resume's `hello` is left out, as
    /// only some ways of resuming produce one.
    pub fn transcript(&self) -> &[Value] {
        &self.transcript
    }

    /// An envelope with the next client seq and the current time.
    pub fn msg(&mut self, kind: &str) -> ClientEnvelope {
        self.seq += 1;
        ClientEnvelope::new(kind, self.seq, unix_ms())
    }

    /// The next client seq, for messages built by hand.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Sends one message. Over HTTP, returns the POST's answer for it (`{"accepted": ...}`).
    pub async fn send(&mut self, env: ClientEnvelope) -> Option<Value> {
        let text = env.to_json();
        if self.transport == Transport::Ws {
            self.unconfirmed.push(env);
        }
        self.send_text(&text).await
    }

    /// Sends one frame as given (which may be no valid message at all).
    pub async fn send_text(&mut self, text: &str) -> Option<Value> {
        match self.transport {
            Transport::Ws => {
                self.ws_send(text).await;
                None
            }
            Transport::Sse | Transport::Poll => Some(self.post(text.to_owned()).await),
        }
    }

    /// Sends several messages: one POST with a JSON array over HTTP (one answer per message),
    /// one frame each over WebSocket.
    pub async fn send_batch(&mut self, envs: Vec<ClientEnvelope>) -> Vec<Option<Value>> {
        match self.transport {
            Transport::Ws => {
                let mut answers = Vec::new();
                for env in envs {
                    answers.push(self.send(env).await);
                }
                answers
            }
            Transport::Sse | Transport::Poll => {
                let texts: Vec<String> = envs.iter().map(ClientEnvelope::to_json).collect();
                let answer = self.post(format!("[{}]", texts.join(","))).await;
                let answers = answer
                    .as_array()
                    .expect("an array answers an array")
                    .clone();
                assert_eq!(answers.len(), envs.len(), "one answer per message");
                answers.into_iter().map(Some).collect()
            }
        }
    }

    async fn ws_send(&mut self, text: &str) {
        let sink = self.sink.as_mut().expect("a connected WebSocket");
        tokio::time::timeout(DEADLINE, sink.send(Message::Text(text.into())))
            .await
            .expect("send in time")
            .expect("send");
    }

    async fn post(&mut self, body: String) -> Value {
        let response = self
            .http
            .post(format!(
                "{}/v1/sessions/{}/messages",
                self.base, self.session
            ))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .timeout(DEADLINE)
            .send()
            .await
            .expect("POST .../messages answers");
        let status = response.status().as_u16();
        let answer: Value = response.json().await.expect("JSON answer");
        assert_eq!(status, 200, "{}: POST .../messages: {answer}", self.name);
        answer
    }

    /// Acknowledges everything received so far.
    pub async fn ack(&mut self) {
        let env = self.msg("ack").payload(json!({"seq": self.received_seq}));
        let answer = self.send(env).await;
        accepted(&answer);
    }
    /// Sends `env` and checks it is refused with `code`: over HTTP the POST answers
    /// `{"accepted": false, "error": E}`, and on every transport the stream then carries an `error`
    /// whose payload is exactly `E`.
    pub async fn send_refused(&mut self, env: ClientEnvelope, code: &str) -> ServerEnvelope {
        let answer = self.send(env).await;
        self.refused(answer, code).await
    }

    /// As [`AnyClient::send_refused`] for a frame given as text.
    pub async fn send_text_refused(&mut self, text: &str, code: &str) -> ServerEnvelope {
        let answer = self.send_text(text).await;
        self.refused(answer, code).await
    }

    async fn refused(&mut self, answer: Option<Value>, code: &str) -> ServerEnvelope {
        let error = self.expect_error(code).await;
        if let Some(answer) = answer {
            assert_eq!(answer["accepted"], false, "{}: {answer}", self.name);
            assert_eq!(
                answer["error"], error.payload,
                "{}: the POST answer carries the error the stream delivers",
                self.name
            );
            assert_eq!(answer.as_object().unwrap().len(), 2, "{answer}");
        }
        error
    }

    /// Sends `env`, which must be accepted.
    pub async fn send_ok(&mut self, env: ClientEnvelope) {
        let answer = self.send(env).await;
        accepted(&answer);
    }
}

/// Asserts that an HTTP answer (if any) accepted the message.
pub fn accepted(answer: &Option<Value>) {
    if let Some(answer) = answer {
        assert_eq!(
            answer,
            &json!({"accepted": true}),
            "the message is accepted"
        );
    }
}
