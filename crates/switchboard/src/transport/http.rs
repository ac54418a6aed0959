//! What the HTTP transports share: session creation (`POST /v1/sessions`), posted client messages
//! (`POST /v1/sessions/{id}/messages`), and authenticating a request for a session.

use axum::{
    Json,
    body::Body,
    extract::{FromRequestParts, State},
    http::{HeaderMap, HeaderValue, header, request::Parts},
    response::{IntoResponse, Response},
};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::{net::IpAddr, sync::Arc};

use switchboard_core::{Attachment, Identity, Refusal, Transmit};
use switchboard_protocol::{ErrorBody, ServerBody, SignalError, split_batch};

use crate::{
    auth::token_from,
    delivery::{Hub, SinkRef, StreamSink},
    edge::forwarded::Client,
    error::ApiError,
    node::Node,
};

/// Query parameters of the session endpoints.
#[derive(Debug, Deserialize)]
pub struct SessionParams {
    /// Token, for clients that cannot set `Authorization` (EventSource).
    pub token: Option<String>,
    /// Session to resume (`POST /v1/sessions` only).
    pub resume: Option<String>,
    /// Last server seq received, for resume and for SSE's first connection.
    pub last_seq: Option<u64>,
    /// Last server seq received (long-poll).
    pub after: Option<u64>,
}

impl SessionParams {
    /// The parameters in a request's query string; unknown keys are ignored, a known one that
    /// does not parse (`after=x`) is `invalid_message`.
    pub fn from_query(query: Option<&str>) -> Result<SessionParams, ApiError> {
        serde_urlencoded::from_str(query.unwrap_or_default())
            .map_err(|e| ApiError(SignalError::invalid(format!("bad query string: {e}"))))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SessionParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        SessionParams::from_query(parts.uri.query())
    }
}

/// The client's network address, when the server knows it: [`crate::front`] derives it for every
/// request it routes (the peer's, or the one a trusted proxy forwarded for).
pub struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let address = parts
            .extensions
            .get::<Client>()
            .map(|client| client.address);
        Ok(ClientAddress(address))
    }
}

/// The identity behind a request's token.
pub async fn authenticate(
    node: &Node,
    headers: &HeaderMap,
    params: &SessionParams,
) -> Result<Identity, ApiError> {
    let identity = match token_from(headers, params.token.as_deref()) {
        None => Err(SignalError::Unauthorized("a token is required".into())),
        Some(token) => node.verifier().verify_repeated(token).await,
    };
    identity.map_err(|e| {
        tracing::info!(event = "auth.failure", transport = "http", reason = %e, "token refused");
        ApiError(e)
    })
}

/// Attaches a new stream (SSE or long-poll) to `session` for `user` from `after`, with a
/// [`StreamSink`] that wakes the stream's task when the hub has messages for it.
pub fn attach_stream(
    node: &Node,
    session: &str,
    user: &str,
    after: u64,
) -> Result<(Attachment, Arc<StreamSink>), SignalError> {
    let sink = Arc::new(StreamSink::default());
    let at = node.with_hub(|hub, now| {
        let at = hub.attach(session, user, after, now)?;
        hub.connect(&at, sink.clone() as SinkRef);
        Ok::<_, SignalError>(at)
    })?;
    Ok((at, sink))
}

/// Headers every streaming answer carries, so proxies neither cache nor buffer it.
pub fn no_buffering(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
}

/// `POST /v1/sessions`: starts a session (or resumes one with `?resume=SESSION&last_seq=N`) and
/// answers `{"session": ..., "hello": {...}}`; messages then flow on an SSE or long-poll stream.
pub async fn create(
    State(node): State<Node>,
    headers: HeaderMap,
    ClientAddress(address): ClientAddress,
    params: SessionParams,
) -> Result<Response, Response> {
    if let Some(refusal) = node.refusal() {
        return Err(ApiError(refusal).into_response());
    }
    let mut identity = authenticate(&node, &headers, &params)
        .await
        .map_err(IntoResponse::into_response)?;
    identity.address = address;
    identity.ice_servers = node.session_ice_servers(&identity.user);
    node.admit_new_session(address)
        .map_err(IntoResponse::into_response)?;
    let at = match &params.resume {
        Some(session) => {
            let last_seq = params.last_seq.unwrap_or(0);
            crate::cluster::adopt::resume(&node, session, identity, last_seq).await
        }
        None => crate::cluster::caps::open(&node, identity).await,
    }
    .map_err(|e| ApiError(e).into_response())?;
    let hello = node
        .with_hub(|hub, _| {
            // The hello is the first unsent message of a new or resumed session.
            match hub.transmit(&at, 1) {
                Transmit::Messages { mut batch, .. } if !batch.is_empty() => {
                    Ok((at.session, batch.swap_remove(0).text))
                }
                _ => Err(SignalError::Internal),
            }
        })
        .map_err(|e| ApiError(e).into_response())?;
    let (session, hello) = hello;
    let hello = RawValue::from_string(hello.to_string())
        .map_err(|_| ApiError(SignalError::Internal).into_response())?;
    // `hello` stays the exact text a WebSocket client gets, field order included.
    #[derive(serde::Serialize)]
    struct Created<'a> {
        session: &'a str,
        hello: &'a RawValue,
    }
    let created = Created {
        session: session.as_str(),
        hello: &hello,
    };
    let mut response = Json(created).into_response();
    no_buffering(&mut response);
    Ok(response)
}

/// `POST /v1/sessions/{id}/messages`: one client message, or a JSON array of them, handled in
/// order exactly as WebSocket frames. Answers one result per message (`{"accepted": true}` or
/// `{"accepted": false, "error": {...}}`); the `error` is also delivered on the session's stream,
/// as a WebSocket client would get it.
pub async fn post_messages(
    node: &Node,
    session: &str,
    headers: &HeaderMap,
    params: &SessionParams,
    body: &[u8],
) -> Result<Response, ApiError> {
    let identity = authenticate(node, headers, params).await?;
    let text = std::str::from_utf8(body)
        .map_err(|_| SignalError::invalid("the body must be UTF-8 JSON"))?;
    let batch = text.trim_start().starts_with('[');
    let frames: Vec<&str> = if batch {
        split_batch(text)
            .map_err(|e| SignalError::invalid(format!("not a JSON array of messages: {e}")))?
    } else {
        vec![text]
    };
    // Cluster mode: the rooms joined (or knocked on) are locked and read first
    // (crate::cluster::joins).
    let mut locked = match node.cluster() {
        None => None,
        Some(cluster) => {
            let limits = &node.config().limits;
            let rooms: Vec<_> = (frames.iter())
                .filter_map(|f| crate::cluster::joins::locked_room(f, limits))
                .collect();
            match rooms.is_empty() {
                true => None,
                false => Some(crate::cluster::joins::lock(cluster, rooms).await?),
            }
        }
    };
    let receive = crate::telemetry::receive_span();
    let results: Result<Vec<Outcome>, SignalError> = receive.in_scope(|| {
        node.with_hub(|hub, now| {
            if let Some(locked) = &mut locked {
                locked.mirror(hub, now);
            }
            let results = receive_all(hub, session, &identity.user, &frames, now);
            if let Some(locked) = &locked {
                locked.settle(hub);
            }
            results
        })
    });
    if let Some(locked) = &locked {
        node.submit_shared(locked.unlocks());
    }
    let results = results?;
    // The messages just queued woke the streams of their recipients (an SSE stream, a pending
    // poll). Letting those tasks run before this one writes its answer puts the relayed messages
    // on the wire first: the answer only tells the sender they were taken, and writing it first
    // would add a loopback send to every relay's latency.
    tokio::task::yield_now().await;
    let response = match results.as_slice() {
        [single] if !batch => Json(single).into_response(),
        all => Json(all).into_response(),
    };
    Ok(response)
}

/// Handles posted messages in order, each as a WebSocket frame would be, for `user`'s `session`.
fn receive_all(
    hub: &mut Hub,
    session: &str,
    user: &str,
    frames: &[&str],
    now: switchboard_core::Now,
) -> Result<Vec<Outcome>, SignalError> {
    hub.check_owner(session, user)?;
    let results = frames
        .iter()
        .map(
            |frame| match hub.receive_posted(session, user, frame, now) {
                Ok(()) => Outcome::ACCEPTED,
                Err(Refusal::Dropped) => {
                    let e = SignalError::RateLimited("dropped: over the rate budget".into());
                    Outcome::refused(ErrorBody::from_error(&e))
                }
                Err(Refusal::Reply(error)) => {
                    let body = match &*error.body {
                        ServerBody::Error(body) => body.clone(),
                        _ => ErrorBody::from_error(&SignalError::Internal),
                    };
                    hub.reply_to(session, *error, now);
                    Outcome::refused(body)
                }
            },
        )
        .collect();
    Ok(results)
}

/// The largest body `POST /v1/sessions/{id}/messages` reads; each message in it must also fit
/// `max_frame_bytes`.
pub const MAX_POSTED_BYTES: usize = 2 * 1024 * 1024;

/// Reads a posted body of at most [`MAX_POSTED_BYTES`]; a larger one is `payload_too_large`,
/// refused by its `Content-Length` before any of it is read when it has one.
pub async fn read_posted(headers: &HeaderMap, mut body: Body) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = |what, size| SignalError::PayloadTooLarge {
        what,
        size,
        limit: MAX_POSTED_BYTES,
    };
    if let Some(size) = declared.filter(|&size| size > MAX_POSTED_BYTES) {
        return Err(too_large("the request body", size).into());
    }
    // One frame is the usual case and is taken as it is; more are joined.
    let mut whole = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|_| SignalError::invalid("the request body could not be read"))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let size = joined.as_ref().map_or(whole.len(), BytesMut::len) + data.len();
        if size > MAX_POSTED_BYTES {
            return Err(too_large("the request body received so far", size).into());
        }
        match &mut joined {
            Some(joined) => joined.extend_from_slice(&data),
            None if whole.is_empty() => whole = data,
            None => {
                let mut both = BytesMut::from(&whole[..]);
                both.extend_from_slice(&data);
                joined = Some(both);
            }
        }
    }
    Ok(joined.map_or(whole, BytesMut::freeze))
}

/// The answer for one posted message: `{"accepted": true}` or
/// `{"accepted": false, "error": {...}}`.
#[derive(serde::Serialize)]
struct Outcome {
    accepted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody>,
}

impl Outcome {
    const ACCEPTED: Outcome = Outcome {
        accepted: true,
        error: None,
    };

    fn refused(error: ErrorBody) -> Outcome {
        Outcome {
            accepted: false,
            error: Some(error),
        }
    }
}
