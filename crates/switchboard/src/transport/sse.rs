//! Server-sent events: `GET /v1/sessions/{id}/events`.
//!
//! Each server message is one event whose `id:` is its seq and whose data is the exact JSON a
//! WebSocket client gets. A stream lives `sse_lifetime_ms` plus a random jitter and then ends, so
//! long-lived streams do not pin proxies forever and reconnects do not arrive in waves; the
//! browser's EventSource reconnects by itself with `Last-Event-ID` and the session continues from
//! there. Comment lines every `sse_heartbeat_ms` keep idle streams open through proxies.

use std::{
    collections::VecDeque,
    convert::Infallible,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    http::HeaderMap,
    response::{
        IntoResponse, Response,
        sse::{Event, Sse},
    },
};
use futures_util::Stream;
use rand::Rng;
use switchboard_core::{Attachment, Disconnect, Transmit};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tracing::Span;

use super::http::{SessionParams, attach_stream, authenticate, no_buffering};
use crate::{delivery::StreamSink, error::ApiError, node::Node};

/// Messages taken from the outbox per poll of the stream.
const MESSAGES_PER_POLL: usize = 64;

/// `GET /v1/sessions/{id}/events`; `span` is the request's, entered whenever the stream runs.
pub async fn events(
    node: &Node,
    session: &str,
    headers: &HeaderMap,
    params: &SessionParams,
    span: Span,
) -> Result<Response, ApiError> {
    let identity = authenticate(node, headers, params).await?;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let after = last_event_id.or(params.last_seq).unwrap_or(0);
    let permit = node.admission().connection()?;
    let (at, sink) = attach_stream(node, session, &identity.user, after)?;
    let config = node.config();
    let jitter = rand::rng().random_range(0..=config.sse_jitter_ms);
    let lifetime = Duration::from_millis(config.sse_lifetime_ms + jitter);
    let heartbeat = Duration::from_millis(config.sse_heartbeat_ms);
    let retry = Duration::from_millis(config.sse_retry_ms);
    let stream = EventStream {
        held: (node.tasks().token(), permit),
        node: node.clone(),
        at,
        sink,
        deadline: Box::pin(tokio::time::sleep(lifetime)),
        heartbeat: tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat),
        queue: VecDeque::from([Event::default().retry(retry)]),
        ended: None,
        span,
    };
    node.metrics().stream_opened("sse");
    let mut response = Sse::new(stream).into_response();
    no_buffering(&mut response);
    Ok(response)
}

/// The event stream of one attachment. Dropping it (the client went away, or the stream ended)
/// tells the hub the transport is gone unless the hub ended it.
struct EventStream {
    /// Keeps shutdown waiting until this stream is done, and its place among the connections.
    #[allow(dead_code)] // held for its drop
    held: (TaskTrackerToken, OwnedSemaphorePermit),
    node: Node,
    at: Attachment,
    /// Wakes this stream's task when the hub has messages for it.
    sink: Arc<StreamSink>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    heartbeat: tokio::time::Interval,
    queue: VecDeque<Event>,
    /// Why the stream ended, once it has.
    ended: Option<StreamEnd>,
    /// The `http.request` span, which lasts as long as the stream.
    span: Span,
}

enum StreamEnd {
    /// The hub closed it; the hub needs no news.
    ByHub(&'static str),
    /// The lifetime cap; the hub must learn the transport is gone.
    Lifetime,
}

impl Stream for EventStream {
    type Item = Result<Event, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let _entered = this.span.enter();
        if let Some(event) = this.queue.pop_front() {
            return Poll::Ready(Some(Ok(event)));
        }
        if this.ended.is_some() {
            return Poll::Ready(None);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.ended = Some(StreamEnd::Lifetime);
            return Poll::Ready(None);
        }
        this.sink.register(cx.waker());
        match this.node.transmit(&this.at, MESSAGES_PER_POLL) {
            // With more to take, the next poll (the queue emptied) takes it.
            Transmit::Messages { batch, .. } => {
                let metrics = this.node.metrics();
                let now = std::time::Instant::now();
                this.queue.extend(batch.into_iter().map(|m| {
                    metrics.sent(&m, now);
                    Event::default().id(m.seq.to_string()).data(m.text)
                }));
                return Poll::Ready(this.queue.pop_front().map(Ok));
            }
            Transmit::Close(reason) => {
                this.ended = Some(StreamEnd::ByHub(reason.as_str()));
                return Poll::Ready(None);
            }
            Transmit::Idle => {}
        }
        // The comment keeps proxies from closing an idle stream. It proves nothing about the
        // client (a write into a dead connection succeeds until TCP gives up), so liveness comes
        // from the client's own requests: its posted messages, `ping` at least every heartbeat.
        if this.heartbeat.poll_tick(cx).is_ready() {
            return Poll::Ready(Some(Ok(Event::default().comment(""))));
        }
        Poll::Pending
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        let reason = match self.ended {
            Some(StreamEnd::ByHub(reason)) => reason,
            Some(StreamEnd::Lifetime) => "lifetime",
            None => "client_gone",
        };
        super::stream_closed(&self.node, "sse", reason);
        if !matches!(self.ended, Some(StreamEnd::ByHub(_))) {
            let at = self.at.clone();
            self.node
                .with_hub(|hub, now| hub.disconnect(&at, Disconnect::Lost, now));
        }
    }
}
