//! The receiving side of an [`AnyClient`]: every message is checked as it arrives (valid JSON,
//! the envelope's field order, SSE id = seq, seq rising by exactly one) and queued until read;
//! the expectations (`expect`, `expect_quiet`, `until_end`, `expect_refused`) read from there.

use serde_json::json;
use switchboard_protocol::ServerEnvelope;

use super::{AnyClient, End, Item, normalize, streams::Incoming};
use crate::DEADLINE;

impl AnyClient {
    /// The next server message (waiting at most [`DEADLINE`]); a stream end is a failure.
    pub async fn recv(&mut self) -> ServerEnvelope {
        let env = self.next_msg().await;
        if env.kind == "hello" {
            self.hello = env.clone();
        } else {
            self.transcript.push(normalize(&env));
        }
        env
    }

    /// A message that already arrived, without waiting.
    pub fn try_recv(&mut self) -> Option<ServerEnvelope> {
        if self.ready.is_empty()
            && let Ok(incoming) = self.rx.try_recv()
        {
            self.arrive(incoming);
        }
        match self.ready.pop_front()? {
            Item::Msg(env) => {
                if env.kind != "hello" {
                    self.transcript.push(normalize(&env));
                }
                Some(env)
            }
            Item::End(end) => panic!(
                "{}: the {} stream ended: {end:?}",
                self.name, self.transport
            ),
        }
    }

    pub(super) async fn next_msg(&mut self) -> ServerEnvelope {
        match self.next_item().await {
            Item::Msg(env) => env,
            Item::End(end) => panic!(
                "{}: expected a message, the {} stream ended: {end:?}",
                self.name, self.transport
            ),
        }
    }

    pub(super) async fn next_item(&mut self) -> Item {
        if self.ready.is_empty() {
            let incoming = tokio::time::timeout(DEADLINE, self.rx.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{}: nothing arrived on {} in time (last seq {})",
                        self.name, self.transport, self.received_seq
                    )
                })
                .unwrap_or_else(|| panic!("{}: no {} stream", self.name, self.transport));
            self.arrive(incoming);
        }
        self.ready.pop_front().expect("an item arrived")
    }

    /// Waits for the next thing the transport hands over and takes it (whatever is still unread
    /// before it stays unread).
    pub(super) async fn arrive_next(&mut self) -> Item {
        let incoming = tokio::time::timeout(DEADLINE, self.rx.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{}: nothing arrived on {} in time",
                    self.name, self.transport
                )
            })
            .unwrap_or_else(|| panic!("{}: no {} stream", self.name, self.transport));
        self.arrive(incoming);
        self.ready.pop_back().expect("it arrived")
    }

    /// Checks a message as it arrives: valid JSON, SSE id = seq, seq rising by exactly one.
    pub(super) fn arrive(&mut self, incoming: Incoming) {
        let (text, event_id) = match incoming {
            Incoming::Text { text, event_id } => (text, event_id),
            Incoming::End(end) => {
                self.ready.push_back(Item::End(end));
                return;
            }
        };
        let env: ServerEnvelope = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not a server message ({e}): {text}", self.name));
        assert_envelope_order(&text);
        if let Some(id) = event_id {
            assert_eq!(
                id, env.seq,
                "{}: an SSE event's id is its seq: {text}",
                self.name
            );
        }
        if env.seq == 0 {
            assert_eq!(
                env.kind, "error",
                "{}: only an out-of-session error has seq 0",
                self.name
            );
        } else {
            assert_eq!(
                env.seq,
                self.received_seq + 1,
                "{} on {}: seq rises by exactly one, no gap and no repeat: {text}",
                self.name,
                self.transport
            );
            self.received_seq = env.seq;
        }
        self.ready.push_back(Item::Msg(env));
    }

    /// The next message, which must be of `kind`.
    pub async fn expect(&mut self, kind: &str) -> ServerEnvelope {
        let env = self.recv().await;
        assert_eq!(
            env.kind, kind,
            "{}: expected {kind}, got {env:?}",
            self.name
        );
        env
    }

    /// The next message, which must be an `error` with `code`.
    pub async fn expect_error(&mut self, code: &str) -> ServerEnvelope {
        let env = self.expect("error").await;
        assert_eq!(env.payload["code"], code, "{}: {env:?}", self.name);
        env
    }

    /// Proves nothing is queued for this client: a `ping` is answered by the very next message.
    pub async fn expect_quiet(&mut self) {
        let env = self.msg("ping").id("barrier");
        self.send_ok(env).await;
        let next = self.recv().await;
        assert_eq!(
            next.kind, "pong",
            "{}: expected nothing before pong, got {next:?}",
            self.name
        );
        assert_eq!(next.id.as_deref(), Some("barrier"));
    }

    /// The messages that arrive before the stream ends (the server died, say), then its end.
    pub async fn until_end(&mut self) -> (Vec<ServerEnvelope>, End) {
        let mut got = Vec::new();
        loop {
            match self.next_item().await {
                Item::Msg(env) => {
                    self.transcript.push(normalize(&env));
                    got.push(env);
                }
                Item::End(end) => return (got, end),
            }
        }
    }

    /// The stream must end now (no message before the end).
    pub async fn expect_end(&mut self) -> End {
        match self.next_item().await {
            Item::End(end) => {
                self.transcript.push(json!({"type": "<end>"}));
                end
            }
            Item::Msg(env) => panic!("{}: expected the stream to end, got {env:?}", self.name),
        }
    }

    /// The resume just tried must be refused with `code`: over WebSocket an `error` with seq 0
    /// and close code 4004; over HTTP an error status with that code.
    pub async fn expect_refused(&mut self, code: &str) {
        match self.next_item().await {
            Item::Msg(env) => {
                assert_eq!(env.kind, "error", "{}: {env:?}", self.name);
                assert_eq!(env.seq, 0, "{}: {env:?}", self.name);
                assert_eq!(env.payload["code"], code, "{}: {env:?}", self.name);
                let end = self.next_item().await;
                assert!(
                    matches!(end, Item::End(End::WsClose(Some(4004)))),
                    "{}: close 4004 after a refused resume, got {end:?}",
                    self.name
                );
            }
            Item::End(End::Refused { status, code: got }) => {
                assert_eq!(got, code, "{}: refused with status {status}", self.name);
                let expected_status = match code {
                    "session_expired" => 410,
                    "forbidden" => 403,
                    _ => 400,
                };
                assert_eq!(status, expected_status, "{}: status for {code}", self.name);
            }
            Item::End(end) => panic!("{}: expected a refusal, got {end:?}", self.name),
        }
        self.transcript
            .push(json!({"type": "<refused>", "code": code}));
    }
}

/// Every transport carries the text a WebSocket client gets: the envelope's fields in the
/// documented order (`type`, `room`, `seq`, `ts`, `from`, `id`, `payload`).
fn assert_envelope_order(text: &str) {
    assert!(text.starts_with(r#"{"type":"#), "{text}");
    // Nothing follows `payload`, and keys inside it come after its start.
    let head = &text[..text
        .find(r#""payload":"#)
        .expect("payload is always present")];
    let positions: Vec<usize> = ["type", "room", "seq", "ts", "from", "id"]
        .iter()
        .filter_map(|key| head.find(&format!(r#""{key}":"#)))
        .collect();
    assert!(
        positions.is_sorted(),
        "envelope fields out of order: {text}"
    );
}
