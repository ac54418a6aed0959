//! switchboard's HTTP transports from the client side: `POST /v1/sessions` starts a session,
//! client messages go out as `POST /v1/sessions/{id}/messages` (one keep-alive connection,
//! queued messages sent together as a JSON array), server messages come in over SSE
//! (`/events`) or long-poll (`/poll?after=SEQ`) on a second connection.

use std::{net::Ipv4Addr, net::SocketAddr, time::Duration};

use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::{
    h1::HttpConn,
    net::{ConnectError, Context, Result},
};

/// Which stream carries the server's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// `GET /v1/sessions/{id}/events`.
    Sse,
    /// `GET /v1/sessions/{id}/poll?after=SEQ`.
    Poll,
}

/// What the background tasks hand to the client.
#[derive(Debug)]
pub enum LinkEvent {
    /// One server message (the exact JSON text).
    Text(String),
    /// A posted message was not accepted; the session goes on.
    Refused(String),
    /// The link is gone.
    Closed(String),
}

/// A session carried over HTTP.
pub struct HttpLink {
    out: mpsc::UnboundedSender<String>,
    /// Server messages and failures, in order.
    pub inbox: mpsc::UnboundedReceiver<LinkEvent>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The session id.
    pub session: String,
}

impl Drop for HttpLink {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[derive(Deserialize)]
struct Created<'a> {
    session: String,
    #[serde(borrow)]
    hello: &'a RawValue,
}

impl HttpLink {
    /// Starts a session with `POST /v1/sessions` and opens its stream. The `hello` is the first
    /// text of the inbox, as on a WebSocket.
    pub async fn open(
        src: Ipv4Addr,
        dst: SocketAddr,
        token: String,
        stream: Stream,
        deadline: Duration,
    ) -> std::result::Result<HttpLink, ConnectError> {
        let setup = async {
            let mut posts = HttpConn::open(src, dst).await?;
            let (status, body) = posts.call("POST", "/v1/sessions", &token, None).await?;
            if !is_success(status) {
                return Err(ConnectError::Refused(status));
            }
            let created: Created = serde_json::from_slice(&body).ctx("session answer")?;
            let hello = created.hello.get().to_owned();
            let session = created.session;
            let reader = HttpConn::open(src, dst).await?;
            Ok::<_, ConnectError>((posts, reader, session, hello))
        };
        let (posts, reader, session, hello) = tokio::time::timeout(deadline, setup)
            .await
            .map_err(|_| ConnectError::Timeout)??;
        let (in_tx, inbox) = mpsc::unbounded_channel();
        let _ = in_tx.send(LinkEvent::Text(hello));
        let (out, out_rx) = mpsc::unbounded_channel();
        let post_task = tokio::spawn(post_loop(
            posts,
            session.clone(),
            token.clone(),
            out_rx,
            in_tx.clone(),
        ));
        let read_task = match stream {
            Stream::Sse => tokio::spawn(sse_loop(reader, session.clone(), token, in_tx)),
            Stream::Poll => tokio::spawn(poll_loop(reader, session.clone(), token, in_tx)),
        };
        Ok(HttpLink {
            out,
            inbox,
            tasks: vec![post_task, read_task],
            session,
        })
    }

    /// Queues one client message for posting.
    pub fn send(&self, text: String) -> Result<()> {
        self.out
            .send(text)
            .map_err(|_| "the session's post loop has ended".to_owned())
    }
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// Most messages posted in one request.
const POST_BATCH: usize = 64;

async fn post_loop(
    mut conn: HttpConn,
    session: String,
    token: String,
    mut queue: mpsc::UnboundedReceiver<String>,
    inbox: mpsc::UnboundedSender<LinkEvent>,
) {
    let path = format!("/v1/sessions/{session}/messages");
    let mut batch = Vec::with_capacity(POST_BATCH);
    while let Some(first) = queue.recv().await {
        batch.clear();
        batch.push(first);
        while batch.len() < POST_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let body = if batch.len() == 1 {
            batch.pop().unwrap_or_default()
        } else {
            format!("[{}]", batch.join(","))
        };
        match conn.call("POST", &path, &token, Some(&body)).await {
            Ok((status, answer)) if is_success(status) => {
                let text = String::from_utf8_lossy(&answer);
                if text.contains("\"accepted\":false") {
                    let _ = inbox.send(LinkEvent::Refused(text.chars().take(300).collect()));
                }
            }
            Ok((status, answer)) => {
                let text = String::from_utf8_lossy(&answer);
                let _ = inbox.send(LinkEvent::Closed(format!(
                    "POST messages: HTTP {status}: {}",
                    text.chars().take(200).collect::<String>()
                )));
                return;
            }
            Err(e) => {
                let _ = inbox.send(LinkEvent::Closed(format!("POST messages: {e}")));
                return;
            }
        }
    }
}

/// SSE streams end by themselves (`sse_lifetime_ms`); a stream is reopened from the last `id:`
/// at most this many times.
const SSE_REOPENS: u32 = 16;

async fn sse_loop(
    mut conn: HttpConn,
    session: String,
    token: String,
    inbox: mpsc::UnboundedSender<LinkEvent>,
) {
    let mut last_id: u64 = 1;
    for _ in 0..=SSE_REOPENS {
        let path = format!("/v1/sessions/{session}/events?last_seq={last_id}");
        let mut body = match conn.start("GET", &path, &token, None).await {
            Ok((status, body)) if is_success(status) => body,
            Ok((status, _)) => {
                let _ = inbox.send(LinkEvent::Closed(format!("SSE: HTTP {status}")));
                return;
            }
            Err(e) => {
                let _ = inbox.send(LinkEvent::Closed(format!("SSE: {e}")));
                return;
            }
        };
        let mut buffer: Vec<u8> = Vec::with_capacity(1024);
        loop {
            let data = match body.next().await {
                Ok(Some(data)) => data,
                Ok(None) => break, // the stream's lifetime is over: reopen
                Err(e) => {
                    let _ = inbox.send(LinkEvent::Closed(format!("SSE body: {e}")));
                    return;
                }
            };
            buffer.extend_from_slice(&data);
            while let Some(end) = find_event_end(&buffer) {
                let event: Vec<u8> = buffer.drain(..end.0).collect();
                buffer.drain(..end.1 - end.0);
                if let Some((id, text)) = parse_event(&event) {
                    if let Some(id) = id {
                        last_id = id;
                    }
                    if let Some(text) = text
                        && inbox.send(LinkEvent::Text(text)).is_err()
                    {
                        return;
                    }
                }
            }
        }
    }
    let _ = inbox.send(LinkEvent::Closed("SSE: too many reopened streams".into()));
}

/// The end of the first complete event in `buffer`: (where its text ends, where the next begins).
fn find_event_end(buffer: &[u8]) -> Option<(usize, usize)> {
    let lf = buffer
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2));
    let crlf = buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// The `id:` and the `data:` of one event (comments and `retry:` give neither).
fn parse_event(event: &[u8]) -> Option<(Option<u64>, Option<String>)> {
    let text = std::str::from_utf8(event).ok()?;
    let mut id = None;
    let mut data: Option<String> = None;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(v) = line.strip_prefix("data:") {
            let v = v.strip_prefix(' ').unwrap_or(v);
            match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(v);
                }
                None => data = Some(v.to_owned()),
            }
        } else if let Some(v) = line.strip_prefix("id:") {
            id = v.trim().parse().ok();
        }
    }
    Some((id, data))
}

#[derive(Deserialize)]
struct SeqOnly {
    seq: u64,
}

async fn poll_loop(
    mut conn: HttpConn,
    session: String,
    token: String,
    inbox: mpsc::UnboundedSender<LinkEvent>,
) {
    let mut after: u64 = 1;
    loop {
        let path = format!("/v1/sessions/{session}/poll?after={after}");
        let body = match conn.call("GET", &path, &token, None).await {
            Ok((status, body)) if is_success(status) => body,
            Ok((status, body)) => {
                let text = String::from_utf8_lossy(&body);
                let _ = inbox.send(LinkEvent::Closed(format!(
                    "poll: HTTP {status}: {}",
                    text.chars().take(200).collect::<String>()
                )));
                return;
            }
            Err(e) => {
                let _ = inbox.send(LinkEvent::Closed(format!("poll: {e}")));
                return;
            }
        };
        let items: Vec<&RawValue> = match serde_json::from_slice(&body) {
            Ok(items) => items,
            Err(e) => {
                let _ = inbox.send(LinkEvent::Closed(format!("poll answer: {e}")));
                return;
            }
        };
        for item in items {
            if let Ok(s) = serde_json::from_str::<SeqOnly>(item.get()) {
                after = after.max(s.seq);
            }
            if inbox.send(LinkEvent::Text(item.get().to_owned())).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_split_and_parse() {
        let buf = b"retry: 1000\n\nid: 2\ndata: {\"a\":1}\n\n: \n\nid: 3\r\ndata: x\r\n\r\n";
        let mut rest: Vec<u8> = buf.to_vec();
        let mut out = Vec::new();
        while let Some((end, next)) = find_event_end(&rest) {
            let event: Vec<u8> = rest[..end].to_vec();
            rest.drain(..next);
            out.push(parse_event(&event).unwrap());
        }
        assert_eq!(
            out,
            vec![
                (None, None),
                (Some(2), Some("{\"a\":1}".to_owned())),
                (None, None),
                (Some(3), Some("x".to_owned())),
            ]
        );
        assert!(rest.is_empty());
    }
}
