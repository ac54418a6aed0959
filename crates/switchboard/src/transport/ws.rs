//! WebSocket transport: `GET /v1/ws`.
//!
//! The token is checked before the upgrade (a bad one gets HTTP 401 and no socket). After it, one
//! task per connection ([`connection`]) moves frames between the raw socket and the hub: client
//! text frames go to [`Hub::receive`], the session's outbox comes back through
//! [`Hub::transmit`] (taken by the connection's [`sender`], which is the session's sink), and a
//! ping every `heartbeat_ms` lets the hub notice a dead peer. The handshake ([`handshake`]) and
//! the framing ([`frame`], [`reader`]) are this module's own, so that an idle connection keeps no
//! buffer. The socket is TCP, or TLS over it when the listener has a certificate ([`wire`]).
//!
//! [`Hub::receive`]: switchboard_core::Hub::receive
//! [`Hub::transmit`]: switchboard_core::Hub::transmit

mod connection;
mod handshake;
mod sender;
pub mod wire;

pub use handshake::{Upgrade, UpgradeRejection};

use std::future::poll_fn;

use axum::{
    extract::{Query, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use switchboard_core::Attachment;
use switchboard_protocol::{ErrorBody, ServerBody, ServerMessage, SignalError};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};

use switchboard_protocol::ws::{frame, reader};

use self::{
    connection::Connection,
    wire::{Upgraded, Wire},
};
use super::http::ClientAddress;
use crate::{auth::token_from, error::ApiError, node::Node};

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
    ws: Result<Upgrade, UpgradeRejection>,
) -> Response {
    let params = WsParams::from_pairs(pairs);
    tracing::debug!(event = "ws.connect", "websocket upgrade requested");
    if let Some(refusal) = node.refusal() {
        return ApiError(refusal).into_response();
    }
    let identity = match token_from(&headers, params.token.as_deref()) {
        None => Err(SignalError::Unauthorized("a token is required".into())),
        Some(token) => node.verifier().verify_async(token).await,
    };
    let mut identity = match identity {
        Ok(identity) => identity,
        Err(e) => {
            tracing::info!(event = "auth.failure", transport = "ws", reason = %e, "token refused");
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
            identity: Box::new(identity),
            last_seq,
        },
        // A fresh session is opened before the upgrade, so a refusal is a plain HTTP answer.
        None => match crate::cluster::caps::open(&node, identity).await {
            Ok(at) => Start::Opened(at),
            Err(e) => return ApiError(e).into_response(),
        },
    };
    let span = crate::telemetry::ws_span(matches!(start, Start::Resume { .. }));
    let (response, upgraded) = ws.accept();
    let task = node.clone();
    let connection = tracing::Instrument::instrument(
        async move {
            match upgraded.await {
                Ok((stream, early)) => serve(stream, early, task, start).await,
                Err(e) => {
                    tracing::debug!(event = "ws.upgrade_failed", error = %e, "upgrade failed");
                    if let Start::Opened(at) = start {
                        task.with_hub(|hub, now| {
                            hub.disconnect(&at, switchboard_core::Disconnect::Lost, now)
                        });
                    }
                }
            }
            drop(permit);
        },
        span,
    );
    node.tasks().spawn(connection);
    response
}

enum Start {
    Opened(Attachment),
    Resume {
        session: String,
        identity: Box<switchboard_core::Identity>,
        last_seq: u64,
    },
}

/// Serves the session `start` names on the socket `upgraded`, `early` being what the client sent
/// after its upgrade request: one instance for TCP and one for TLS.
async fn serve(upgraded: Upgraded, early: Bytes, node: Node, start: Start) {
    match upgraded {
        Upgraded::Tcp(tcp) => serve_on(tcp, TcpStream::into_split, early, node, start).await,
        Upgraded::Tls(tls) => serve_on(*tls, wire::split_tls, early, node, start).await,
    }
}

async fn serve_on<S, R, W>(
    stream: S,
    split: fn(S) -> (R, W),
    early: Bytes,
    node: Node,
    start: Start,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
    W: Wire,
{
    let opened = match start {
        Start::Opened(at) => Ok(at),
        Start::Resume {
            session,
            identity,
            last_seq,
        } => crate::cluster::adopt::resume(&node, &session, *identity, last_seq).await,
    };
    let at = match opened {
        Ok(at) => at,
        Err(e) => {
            // No session to number this in: it is sent with seq 0, then the socket closes.
            let error = ServerMessage::new(ServerBody::Error(ErrorBody::from_error(&e)));
            let text = error.encode(0, node.now().unix_ms);
            Box::pin(connection::refuse(stream, &text, 4004, "resume refused")).await;
            return;
        }
    };
    node.metrics().stream_opened("ws");
    let halves = split(stream);
    let mut connection = Connection::new(&node, halves, at.clone(), node.config().hard_frame_cap());
    connection.early_bytes(&node, early);
    let ended = pump(&mut connection, &node).await;
    super::stream_closed(&node, "ws", ended.reason);
    if let Some(how) = ended.disconnect {
        node.with_hub(|hub, now| hub.disconnect(&at, how, now));
    }
    // Boxed, as `refuse` above: the task's future is as large as its largest await, and every
    // idle connection would carry the room for the closing handshake inline.
    if ended != connection::LOST {
        Box::pin(connection.finish()).await;
    }
}

/// Drives the connection until it ends, with its heartbeat timer.
async fn pump<R: AsyncRead + Unpin, W: Wire>(
    connection: &mut Connection<R, W>,
    node: &Node,
) -> connection::ConnectionEnd {
    let interval = node.config().core().heartbeat_interval;
    let heartbeat = tokio::time::sleep(interval);
    tokio::pin!(heartbeat);
    poll_fn(|cx| connection.poll(cx, node, heartbeat.as_mut())).await
}
