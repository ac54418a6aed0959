//! WebSocket transport: `GET /v1/ws`.
//!
//! The token is checked before the upgrade (a bad one gets HTTP 401 and no socket). After it, one
//! task per connection moves frames between the socket and the hub: client text frames go to
//! [`Hub::receive`], the session's outbox comes back through [`Hub::poll_transmit`], and a ping
//! every `heartbeat_ms` lets the hub notice a dead peer.

use std::{future::poll_fn, time::Instant};

use axum::{
    extract::{
        Query, State, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket, rejection::WebSocketUpgradeRejection},
    },
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use futures_util::{SinkExt, StreamExt};
use switchboard_core::{Attachment, CloseReason, Disconnect, Hub, Refusal, Transmit};
use switchboard_protocol::{ErrorBody, ServerBody, ServerMessage, SignalError};

use super::http::ClientAddress;
use crate::{auth::token_from, error::ApiError, node::Node};

/// Frames taken from the outbox per write; bounds the time between socket reads.
const BATCH: usize = 64;

/// Initial read buffer of a WebSocket connection, in bytes.
const READ_BUFFER: usize = 1024;

/// Query parameters of `GET /v1/ws`. Read leniently (any query string yields them, the first of a
/// repeated key counts), so that a bad one is still answered with the documented JSON errors, and
/// a missing or bad token with 401 before anything else about the request is judged.
#[derive(Debug, Default)]
pub struct WsParams {
    /// Token, for clients that cannot set `Authorization` (browsers).
    token: Option<String>,
    /// Session to resume.
    resume: Option<String>,
    /// Last server `seq` the client received, for resume; parsed after authentication.
    last_seq: Option<String>,
}

impl WsParams {
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut params = WsParams::default();
        for (key, value) in pairs {
            let slot = match key.as_str() {
                "token" => &mut params.token,
                "resume" => &mut params.resume,
                "last_seq" => &mut params.last_seq,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        params
    }
}

/// `GET /v1/ws`: authenticates, then upgrades.
pub async fn upgrade(
    State(node): State<Node>,
    headers: HeaderMap,
    ClientAddress(address): ClientAddress,
    Query(pairs): Query<Vec<(String, String)>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let params = WsParams::from_pairs(pairs);
    tracing::debug!(event = "ws.connect", "websocket upgrade requested");
    if !node.accepting() {
        return ApiError(SignalError::Unavailable(
            "the server is shutting down".into(),
        ))
        .into_response();
    }
    let identity = match token_from(&headers, params.token.as_deref()) {
        None => Err(SignalError::Unauthorized("a token is required".into())),
        Some(token) => node.verifier().verify_async(token).await,
    };
    let mut identity = match identity {
        Ok(identity) => identity,
        Err(e) => {
            tracing::info!(event = "ws.auth_failure", reason = %e, "websocket refused");
            return ApiError(e).into_response();
        }
    };
    tracing::debug!(event = "ws.auth_success", "websocket authenticated");
    identity.address = address;
    identity.ice_servers = node.session_ice_servers(&identity.user);
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            let e = SignalError::invalid(format!("expected a WebSocket upgrade: {rejection}"));
            return ApiError(e).into_response();
        }
    };
    let last_seq = match params.last_seq.as_deref().map(str::parse::<u64>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            let e = SignalError::invalid("`last_seq` must be a non-negative integer");
            return ApiError(e).into_response();
        }
    };
    if let Err(refusal) = node.admit_new_session(address) {
        return refusal.into_response();
    }
    let permit = match node.admission().connection() {
        Ok(permit) => permit,
        Err(e) => return e.into_response(),
    };
    let start = match params.resume {
        Some(session) => Start::Resume {
            session,
            user: identity.user,
            last_seq,
        },
        // A fresh session is opened before the upgrade, so a refusal is a plain HTTP answer.
        None => match node.with_hub(|hub, now| hub.open(identity, now)) {
            Ok(at) => Start::Opened(at),
            Err(e) => return ApiError(e).into_response(),
        },
    };
    let cap = node.config().hard_frame_cap();
    let guard = node.tasks().token();
    let span = crate::telemetry::ws_span(matches!(start, Start::Resume { .. }));
    // tungstenite allocates its whole read buffer per connection up front (128 KiB by default);
    // signaling frames are small, and the buffer grows for the rare large one, so an idle session
    // keeps only a few KiB.
    ws.max_message_size(cap)
        .max_frame_size(cap)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| {
            tracing::Instrument::instrument(
                async move {
                    serve(socket, node, start).await;
                    drop((guard, permit));
                },
                span,
            )
        })
}

enum Start {
    Opened(Attachment),
    Resume {
        session: String,
        user: std::sync::Arc<str>,
        last_seq: u64,
    },
}

/// The WebSocket close code for why the hub ended the transport.
fn close_code(reason: CloseReason) -> u16 {
    match reason {
        CloseReason::ClientClosed | CloseReason::TransportLost => 1000,
        CloseReason::Shutdown => 1001,
        CloseReason::Abuse => 1008,
        CloseReason::Replaced => 4001,
        CloseReason::Superseded => 4002,
        CloseReason::HeartbeatTimeout => 4003,
        CloseReason::Expired => 4004,
        CloseReason::Overflow => 4005,
    }
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

async fn serve(mut socket: WebSocket, node: Node, start: Start) {
    let opened = match start {
        Start::Opened(at) => Ok(at),
        Start::Resume {
            session,
            user,
            last_seq,
        } => node.with_hub(|hub, now| hub.resume(&session, &user, last_seq, now)),
    };
    let at = match opened {
        Ok(at) => at,
        Err(e) => {
            // No session to number this in: it is sent with seq 0, then the socket closes.
            let error = ServerMessage::new(ServerBody::Error(ErrorBody::from_error(&e)));
            let text = error.encode(0, node.now().unix_ms);
            let _ = socket.send(Message::Text(text.into())).await;
            let _ = socket.send(close(4004, "resume refused")).await;
            return;
        }
    };
    node.metrics().stream_opened("ws");
    let (ended, reason) = pump(socket, &node, &at).await;
    super::stream_closed(&node, "ws", reason);
    if let Some(how) = ended {
        node.with_hub(|hub, now| hub.disconnect(&at, how, now));
    }
}

/// Moves frames until the transport ends, then says why. `Some` when the client side ended it
/// (the hub must be told), `None` when the hub asked for the close.
async fn pump(
    socket: WebSocket,
    node: &Node,
    at: &Attachment,
) -> (Option<Disconnect>, &'static str) {
    let lost = (Some(Disconnect::Lost), "transport_lost");
    let (mut tx, mut rx) = socket.split();
    let mut heartbeat = tokio::time::interval(node.config().core().heartbeat_interval);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            biased;
            transmit = poll_fn(|cx| node.hub().poll_transmit(at, cx.waker(), BATCH)) => match transmit {
                Transmit::Messages(frames) => {
                    for frame in frames {
                        node.metrics().sent(&frame, Instant::now());
                        if tx.feed(Message::Text((&*frame.text).into())).await.is_err() {
                            return lost;
                        }
                    }
                    if tx.flush().await.is_err() {
                        return lost;
                    }
                }
                Transmit::Close(reason) => {
                    let _ = tx.send(close(close_code(reason), reason.as_str())).await;
                    return (None, reason.as_str());
                }
            },
            frame = rx.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    crate::telemetry::receive_span().in_scope(|| {
                        node.with_hub(|hub, now| receive(hub, at, text.as_str(), now))
                    });
                }
                Some(Ok(Message::Binary(_))) => {
                    let e = SignalError::invalid("binary frames are not accepted; send JSON text frames");
                    let error = ServerMessage::new(ServerBody::Error(ErrorBody::from_error(&e)));
                    node.with_hub(|hub, now| hub.reply(at, error, now));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                    node.with_hub(|hub, now| hub.heard_from(at, now));
                }
                Some(Ok(Message::Close(_))) => {
                    let _ = tx.close().await;
                    return (Some(Disconnect::Closed), "client_closed");
                }
                Some(Err(e)) => {
                    if is_oversized(e) {
                        let _ = tx.send(close(1009, "frame over the hard size cap")).await;
                        return (Some(Disconnect::Lost), "frame_too_large");
                    }
                    return (Some(Disconnect::Lost), "transport_error");
                }
                None => return lost,
            },
            _ = heartbeat.tick() => {
                if tx.send(Message::Ping(Default::default())).await.is_err() {
                    return lost;
                }
            }
        }
    }
}

/// Whether the socket failed because a frame exceeded [`crate::config::Config::hard_frame_cap`].
fn is_oversized(error: axum::Error) -> bool {
    error
        .into_inner()
        .downcast_ref::<tungstenite::Error>()
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}

/// Hands a frame to the hub; a refusal goes back on the same socket as an `error`.
fn receive(hub: &mut Hub, at: &Attachment, text: &str, now: switchboard_core::Now) {
    if let Err(Refusal::Reply(error)) = hub.receive(at, text, now) {
        hub.reply(at, *error, now);
    }
}
