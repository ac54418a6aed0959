//! Long-poll: `GET /v1/sessions/{id}/poll?after=SEQ`.
//!
//! Answers a JSON array of the session's messages after `after`, holding the request open until
//! there is one or `poll_wait_ms` passes (then `[]`). `after` also acknowledges everything up to it,
//! so a response lost on the way is simply sent again by the next poll. A newer poll of the same
//! session ends an older one still waiting (it answers `[]`).

use std::{future::poll_fn, task::Poll, time::Duration};

use axum::{
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
};
use switchboard_core::{CloseReason, Transmit};
use switchboard_protocol::SignalError;

use super::http::{SessionParams, attach_stream, authenticate, no_buffering};
use crate::{error::ApiError, node::Node};

/// Messages answered per poll at most; the client polls again at once for the rest.
const MESSAGES_PER_ANSWER: usize = 256;

/// `GET /v1/sessions/{id}/poll`.
pub async fn poll(
    node: &Node,
    session: &str,
    headers: &HeaderMap,
    params: &SessionParams,
) -> Result<Response, ApiError> {
    let identity = authenticate(node, headers, params).await?;
    let after = params.after.or(params.last_seq).unwrap_or(0);
    let _permit = node.admission().connection()?;
    let (at, sink) = attach_stream(node, session, &identity.user, after)?;
    let _guard = node.tasks().token();
    let metrics = node.metrics();
    metrics.stream_opened("poll");
    let wait = Duration::from_millis(node.config().poll_wait_ms);
    let answer = poll_fn(|cx| {
        sink.register(cx.waker());
        match node.transmit(&at, MESSAGES_PER_ANSWER) {
            Transmit::Idle => Poll::Pending,
            ready => Poll::Ready(ready),
        }
    });
    let outcome = tokio::select! {
        transmit = answer => Some(transmit),
        _ = tokio::time::sleep(wait) => None,
    };
    // The gap until the next poll counts from the end of this one.
    node.with_hub(|hub, now| hub.heard_from(&at, now));
    let reason = match &outcome {
        Some(Transmit::Messages { .. }) => "answered",
        None | Some(Transmit::Idle) => "wait_elapsed",
        Some(Transmit::Close(reason)) => reason.as_str(),
    };
    super::stream_closed(node, "poll", reason);
    let body = match outcome {
        // What is left after a full answer is taken by the next poll.
        Some(Transmit::Messages { batch, .. }) => {
            let now = std::time::Instant::now();
            let size = batch.iter().map(|m| m.text.len() + 1).sum::<usize>() + 1;
            let mut body = String::with_capacity(size);
            for message in &batch {
                body.push(if body.is_empty() { '[' } else { ',' });
                body.push_str(&message.text);
                metrics.sent(message, now);
            }
            body.push(']');
            body
        }
        None | Some(Transmit::Idle | Transmit::Close(CloseReason::Superseded)) => "[]".to_owned(),
        Some(Transmit::Close(CloseReason::Shutdown)) => {
            return Err(SignalError::Unavailable("the server is shutting down".into()).into());
        }
        // The session is not over: another node takes it on a resume.
        Some(Transmit::Close(CloseReason::Handover)) => {
            return Err(SignalError::Unavailable(
                "this node let the session go: resume it on another node".into(),
            )
            .into());
        }
        Some(Transmit::Close(reason)) => {
            return Err(SignalError::SessionExpired(format!(
                "the session has ended ({})",
                reason.as_str()
            ))
            .into());
        }
    };
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    no_buffering(&mut response);
    Ok(response)
}
