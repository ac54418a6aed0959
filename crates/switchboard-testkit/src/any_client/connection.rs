//! Opening, losing and resuming the transport of an [`AnyClient`].

use futures_util::StreamExt;
use switchboard_protocol::{ClientEnvelope, ServerEnvelope};
use tokio::sync::mpsc;

use super::{
    AnyClient, Item, Transport, accepted,
    streams::{Incoming, Poller, SseReader, created, refusal, ws_reader},
};
use crate::{
    DEADLINE,
    client::{request, upgrade},
    unix_ms,
};

impl AnyClient {
    /// Loses the transport abruptly: no close frame, no request; the server is not told. What
    /// had arrived counts as received.
    pub async fn drop_transport(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        self.sink = None;
        while let Ok(incoming) = self.rx.try_recv() {
            self.arrive(incoming);
        }
    }

    /// Continues the session on `transport` from the last seq received (dropping the current
    /// transport first if it is still up). Returns the `hello` when the resume produced one (a
    /// WebSocket resume, or a switch to SSE or long-poll through `POST /v1/sessions?resume`); an
    /// SSE reconnect or a poll continue the stream without one. A refused resume shows up as the
    /// next item ([`AnyClient::expect_refused`]).
    pub async fn resume(&mut self, transport: Transport) -> Option<ServerEnvelope> {
        self.drop_transport().await;
        // Messages already read are not expected again; anything left unread stays readable.
        let from = self.transport;
        self.transport = transport;
        let last_seq = self.received_seq;
        let hello = match (from, transport) {
            (_, Transport::Ws) => {
                let url = format!(
                    "{}?token={}&resume={}&last_seq={last_seq}",
                    self.ws_url, self.token, self.session
                );
                self.open_ws(&url).await;
                // The first frame of the new socket: `hello`, or the refusal.
                match self.arrive_next().await {
                    Item::Msg(env) if env.kind == "hello" => Some(env),
                    other => {
                        self.ready.push_back(other);
                        None
                    }
                }
            }
            (Transport::Sse, Transport::Sse) => {
                self.open_stream(transport, last_seq, true).await;
                None
            }
            (Transport::Poll, Transport::Poll) => {
                self.open_stream(transport, last_seq, true).await;
                None
            }
            (_, Transport::Sse | Transport::Poll) => {
                let response = self.post_resume(last_seq).await;
                if response.status().as_u16() != 200 {
                    let end = refusal(response).await;
                    self.arrive(Incoming::End(end));
                    None
                } else {
                    let (session, hello) = created(response).await;
                    assert_eq!(session, self.session);
                    self.arrive(Incoming::Text {
                        text: hello,
                        event_id: None,
                    });
                    let hello = match self.ready.pop_back() {
                        Some(Item::Msg(env)) => env,
                        other => panic!("{}: no hello: {other:?}", self.name),
                    };
                    self.open_stream(transport, hello.seq, false).await;
                    Some(hello)
                }
            }
        };
        if let Some(hello) = &hello {
            self.resumed(hello.clone(), last_seq).await;
        }
        hello
    }

    /// Resumes on `transport` (a switch, so the resume answers `hello`), and loses that answer
    /// in flight: over WebSocket the new socket dies with the `hello` (and anything after it)
    /// unread; for SSE and long-poll the answer to `POST /v1/sessions?resume` never arrives. The
    /// client is left as it was, to try again.
    pub async fn resume_lost(&mut self, transport: Transport) {
        let (from, received_seq, unread) = (self.transport, self.received_seq, self.ready.len());
        assert_ne!(from, transport, "resume_lost is for a switch");
        match transport {
            Transport::Ws => {
                let hello = self.resume(transport).await;
                assert!(
                    hello.is_some(),
                    "{}: a WebSocket resume answers hello",
                    self.name
                );
                self.drop_transport().await;
                self.ready.truncate(unread);
                self.received_seq = received_seq;
            }
            Transport::Sse | Transport::Poll => {
                self.drop_transport().await;
                let answer = self.post_resume(received_seq).await;
                assert_eq!(answer.status().as_u16(), 200, "{}: resume", self.name);
                drop(answer);
            }
        }
        self.transport = from;
    }

    async fn post_resume(&self, last_seq: u64) -> reqwest::Response {
        self.http
            .post(format!(
                "{}/v1/sessions?resume={}&last_seq={last_seq}",
                self.base, self.session
            ))
            .bearer_auth(&self.token)
            .timeout(DEADLINE)
            .send()
            .await
            .expect("POST /v1/sessions?resume answers")
    }

    /// After a resume's `hello`: check it, and send again what it says the server did not get.
    async fn resumed(&mut self, hello: ServerEnvelope, last_seq: u64) {
        assert_eq!(hello.kind, "hello");
        assert_eq!(
            hello.seq,
            last_seq + 1,
            "{}: hello is last_seq + 1",
            self.name
        );
        assert_eq!(hello.payload["resumed"], true, "{hello:?}");
        assert_eq!(hello.payload["session"], self.session.as_str());
        let last_client_seq = hello.payload["last_client_seq"].as_u64().unwrap();
        assert!(last_client_seq <= self.seq, "{hello:?}");
        self.hello = hello;
        let lost: Vec<ClientEnvelope> = std::mem::take(&mut self.unconfirmed)
            .into_iter()
            .filter(|e| e.seq > last_client_seq)
            .collect();
        for mut env in lost {
            env.ts = unix_ms();
            let answer = self.send(env).await;
            accepted(&answer);
        }
    }

    pub(super) async fn open_ws(&mut self, url: &str) {
        let (sink, stream) = upgrade(request(url, &[])).await.split();
        let (tx, rx) = mpsc::unbounded_channel();
        self.rx = rx;
        self.sink = Some(sink);
        self.task = Some(tokio::spawn(ws_reader(stream, tx)));
    }

    /// Opens the SSE or long-poll stream after `after`. `header`: give the SSE position as
    /// `Last-Event-ID` (a reconnect) rather than `?last_seq=` (a first connection).
    pub(super) async fn open_stream(&mut self, transport: Transport, after: u64, header: bool) {
        let (tx, rx) = mpsc::unbounded_channel();
        self.rx = rx;
        match transport {
            Transport::Sse => {
                let events = format!(
                    "{}/v1/sessions/{}/events?token={}",
                    self.base, self.session, self.token
                );
                // EventSource reconnects to the URL it was opened with (here possibly carrying
                // `last_seq`), adding `Last-Event-ID`, which must win.
                let (url, request) = if header {
                    let request = self
                        .http
                        .get(&events)
                        .header("last-event-id", after.to_string());
                    (events, request)
                } else {
                    let url = format!("{events}&last_seq={after}");
                    let request = self.http.get(&url);
                    (url, request)
                };
                let response = tokio::time::timeout(DEADLINE, request.send())
                    .await
                    .expect("SSE answer in time")
                    .expect("SSE answer");
                if response.status().as_u16() != 200 {
                    let end = refusal(response).await;
                    self.arrive(Incoming::End(end));
                    return;
                }
                let kind = response
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                assert!(kind.starts_with("text/event-stream"), "{kind}");
                let reader = SseReader {
                    http: self.http.clone(),
                    url,
                    last_id: after,
                    tx,
                    reconnects: self.reconnects.clone(),
                };
                self.task = Some(tokio::spawn(reader.run(response)));
            }
            Transport::Poll => {
                let poller = Poller {
                    http: self.http.clone(),
                    url: format!("{}/v1/sessions/{}/poll", self.base, self.session),
                    token: self.token.clone(),
                    after,
                    timeout: self.poll_wait + DEADLINE,
                    tx,
                };
                self.task = Some(tokio::spawn(poller.run()));
            }
            Transport::Ws => unreachable!("a WebSocket is opened with open_ws"),
        }
    }
}
