//! The background task of each transport: it moves what the server sends into the client's
//! channel, reading as a browser would (EventSource reconnects by itself; a poll follows the last).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures_util::{StreamExt, stream::SplitStream};
use serde_json::{Value, value::RawValue};
use switchboard_protocol::ServerEnvelope;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::End;
use crate::{DEADLINE, client::Socket, http::error_code};

/// What a transport task hands over.
pub(super) enum Incoming {
    /// One server message as received; `event_id` is the SSE `id:` it came with.
    Text {
        text: String,
        event_id: Option<u64>,
    },
    End(End),
}

/// The answer of `POST /v1/sessions`: the session id, and the `hello` exactly as sent.
pub(super) async fn created(response: reqwest::Response) -> (String, String) {
    let body = response.text().await.expect("a body");
    let created: std::collections::BTreeMap<String, Box<RawValue>> =
        serde_json::from_str(&body).expect("a JSON object");
    assert_eq!(created.len(), 2, "{{session, hello}}: {body}");
    let session: String = serde_json::from_str(created["session"].get()).expect("a session id");
    let hello = created["hello"].get().to_owned();
    let parsed: Value = serde_json::from_str(&hello).expect("hello");
    assert_eq!(parsed["payload"]["session"], session.as_str(), "{body}");
    (session, hello)
}

/// The [`End`] a refused request of a stream means.
pub(super) async fn refusal(response: reqwest::Response) -> End {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    End::Refused {
        status,
        code: error_code(&body),
    }
}

/// Reads a WebSocket until it ends.
pub(super) async fn ws_reader(
    mut stream: SplitStream<Socket>,
    tx: mpsc::UnboundedSender<Incoming>,
) {
    while let Some(frame) = stream.next().await {
        let incoming = match frame {
            Ok(Message::Text(text)) => Incoming::Text {
                text: text.as_str().to_owned(),
                event_id: None,
            },
            Ok(Message::Close(frame)) => {
                let _ = tx.send(Incoming::End(End::WsClose(
                    frame.map(|f| u16::from(f.code)),
                )));
                return;
            }
            Ok(Message::Binary(_)) => Incoming::End(End::Failed("a binary frame".into())),
            Ok(_) => continue,
            Err(e) => {
                let _ = tx.send(Incoming::End(End::Failed(e.to_string())));
                return;
            }
        };
        if tx.send(incoming).is_err() {
            return;
        }
    }
    let _ = tx.send(Incoming::End(End::WsClose(None)));
}

/// Reads an event stream as EventSource does, reconnecting with `Last-Event-ID` when the server
/// ends it.
pub(super) struct SseReader {
    pub(super) http: reqwest::Client,
    pub(super) url: String,
    pub(super) last_id: u64,
    pub(super) tx: mpsc::UnboundedSender<Incoming>,
    pub(super) reconnects: Arc<AtomicUsize>,
}

impl SseReader {
    pub(super) async fn run(mut self, mut response: reqwest::Response) {
        // EventSource's default until the server announces one.
        let mut retry = Duration::from_millis(1000);
        loop {
            self.read(&mut response, &mut retry).await;
            tokio::time::sleep(retry).await;
            self.reconnects.fetch_add(1, Ordering::SeqCst);
            let request = self
                .http
                .get(&self.url)
                .header("last-event-id", self.last_id.to_string());
            response = match tokio::time::timeout(DEADLINE, request.send()).await {
                Ok(Ok(r)) if r.status().as_u16() == 200 => r,
                Ok(Ok(r)) => {
                    let _ = self.tx.send(Incoming::End(refusal(r).await));
                    return;
                }
                Ok(Err(e)) => {
                    let _ = self.tx.send(Incoming::End(End::Failed(e.to_string())));
                    return;
                }
                Err(_) => {
                    let _ = self
                        .tx
                        .send(Incoming::End(End::Failed("reconnect timed out".into())));
                    return;
                }
            };
        }
    }

    /// Dispatches the events of one response until it ends; a partial event at the end is
    /// dropped, as EventSource does.
    async fn read(&mut self, response: &mut reqwest::Response, retry: &mut Duration) {
        let mut buf: Vec<u8> = Vec::new();
        let mut data: Vec<String> = Vec::new();
        let mut event_id: Option<u64> = None;
        while let Ok(Some(chunk)) = response.chunk().await {
            buf.extend_from_slice(&chunk);
            while let Some(end) = buf.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = buf.drain(..=end).collect();
                let line = String::from_utf8(raw).expect("UTF-8 event stream");
                let line = line.trim_end_matches('\n').trim_end_matches('\r');
                if line.is_empty() {
                    if !data.is_empty() {
                        let text = std::mem::take(&mut data).join("\n");
                        let _ = self.tx.send(Incoming::Text { text, event_id });
                    }
                    event_id = None;
                    continue;
                }
                if line.starts_with(':') {
                    continue; // a comment (heartbeat)
                }
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "id" => {
                        let id: u64 = value.parse().expect("event ids are seqs");
                        event_id = Some(id);
                        self.last_id = id;
                    }
                    "data" => data.push(value.to_owned()),
                    "retry" => {
                        *retry = Duration::from_millis(value.parse().expect("retry is ms"));
                    }
                    other => panic!("unexpected SSE field {other:?}: {line}"),
                }
            }
        }
    }
}

/// Long-polls in a loop, each request after the last seq received.
pub(super) struct Poller {
    pub(super) http: reqwest::Client,
    pub(super) url: String,
    pub(super) token: String,
    pub(super) after: u64,
    pub(super) timeout: Duration,
    pub(super) tx: mpsc::UnboundedSender<Incoming>,
}

impl Poller {
    pub(super) async fn run(mut self) {
        loop {
            let response = self
                .http
                .get(format!("{}?after={}", self.url, self.after))
                .bearer_auth(&self.token)
                .timeout(self.timeout)
                .send()
                .await;
            let response = match response {
                Ok(r) if r.status().as_u16() == 200 => r,
                Ok(r) => {
                    let _ = self.tx.send(Incoming::End(refusal(r).await));
                    return;
                }
                Err(e) => {
                    let _ = self.tx.send(Incoming::End(End::Failed(e.to_string())));
                    return;
                }
            };
            let body = match response.text().await {
                Ok(body) => body,
                Err(e) => {
                    let _ = self.tx.send(Incoming::End(End::Failed(e.to_string())));
                    return;
                }
            };
            let items: Vec<Box<RawValue>> =
                serde_json::from_str(&body).expect("a poll answers a JSON array");
            for item in items {
                let env: ServerEnvelope = serde_json::from_str(item.get()).expect("a message");
                self.after = self.after.max(env.seq);
                let text = item.get().to_owned();
                if self
                    .tx
                    .send(Incoming::Text {
                        text,
                        event_id: None,
                    })
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}
