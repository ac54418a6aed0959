//! The live side of a stored room: who is in its call, removing one of them, messages from the
//! server to everyone in it, and answering the guests knocking on its lobby. The stored room's owner (or an admin) acts here like a host that
//! is not in the call: the hub applies the same rules as to a host's `kick`, and a message arrives
//! as `announcement` (docs/protocol.md).
//!
//! In cluster mode these act on the call as the whole cluster has it, whichever node the request
//! comes to: its members are read from Redis, and what a removal or a message sends members of
//! other nodes reaches them through their nodes ([`super::cluster`]).

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use switchboard_protocol::{PeerId, Role, RoomId, SignalError};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    Control,
    extract::{Caller, JsonBody, PathParams, Refused},
    openapi::{self, BadRequest, NotFound, PayloadTooLarge, Unauthorized, Unavailable},
};

pub(super) fn routes() -> OpenApiRouter<Control> {
    OpenApiRouter::new()
        .routes(routes!(participants))
        .routes(routes!(remove))
        .routes(routes!(message))
        .routes(routes!(decide))
}

/// A member of a room's call.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Participant {
    /// Its peer id in the room.
    pub peer: String,
    /// The user id (`sub`) of its room token.
    pub user: String,
    /// Its role.
    #[schema(schema_with = openapi::role)]
    pub role: Role,
    /// Its display name, if its token carries one.
    pub name: Option<String>,
}

/// The members of a room's call.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Participants {
    /// In join order; empty when nobody is in the call.
    pub participants: Vec<Participant>,
}

/// The caller's stored room `room` as the hub's room id.
async fn live_room(control: &Control, caller: &Caller, room: &str) -> Result<RoomId, Refused> {
    let room = control.visible_room(caller, room).await?;
    Ok(RoomId::parse(&room.id)?)
}

/// Who is in the call of one of the caller's rooms.
#[utoipa::path(
    get, path = "/v1/rooms/{room}/participants", tag = "live",
    security(("bearer" = [])),
    params(("room" = String, Path, description = "The room's id")),
    responses(
        (status = 200, description = "The members of its call", body = Participants),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
async fn participants(
    State(control): State<Control>,
    caller: Caller,
    PathParams(room): PathParams<String>,
) -> Result<Json<Participants>, Refused> {
    let room = live_room(&control, &caller, &room).await?;
    let members = control
        .on_room(&room, |hub, _| hub.participants(&room))
        .await?;
    let participants = (members.into_iter())
        .map(|m| Participant {
            peer: m.info.peer.as_str().to_owned(),
            user: m.user.as_ref().to_owned(),
            role: m.info.role,
            name: m.info.name,
        })
        .collect();
    Ok(Json(Participants { participants }))
}

/// Removes a member from the call, as a host's `kick` does: it gets `left` (reason `kicked`), the
/// others `peer_left`, and its user cannot rejoin while the call lasts.
#[utoipa::path(
    delete, path = "/v1/rooms/{room}/participants/{peer}", tag = "live",
    security(("bearer" = [])),
    params(
        ("room" = String, Path, description = "The room's id"),
        ("peer" = String, Path, description = "The member's peer id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
async fn remove(
    State(control): State<Control>,
    caller: Caller,
    PathParams((room, peer)): PathParams<(String, String)>,
) -> Result<StatusCode, Refused> {
    let room = live_room(&control, &caller, &room).await?;
    let not_member = || SignalError::NotFound(format!("no member `{peer}` in room `{room}`"));
    let id = PeerId::parse(&peer).map_err(|_| not_member())?;
    control
        .on_room(&room, |hub, now| hub.remove_peer(&room, &id, now))
        .await?
        .map_err(|_| not_member())?;
    tracing::info!(event = "room.removed", %room, peer = %id, "member removed over the API");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/rooms/{room}/messages`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageRequest {
    /// What every member gets as the `payload` of an `announcement`, verbatim: a JSON object of
    /// at most the server's `limits.max_message_bytes` (16 KiB by default).
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
}

/// Whom a server message reached.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Delivered {
    /// Members of the call it was queued for (0 when nobody is in it).
    pub recipients: usize,
}

/// Sends every member of the call an `announcement`.
#[utoipa::path(
    post, path = "/v1/rooms/{room}/messages", tag = "live",
    security(("bearer" = [])),
    params(("room" = String, Path, description = "The room's id")),
    request_body = MessageRequest,
    responses(
        (status = 200, description = "Queued for every member", body = Delivered),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable),
    )
)]
async fn message(
    State(control): State<Control>,
    caller: Caller,
    PathParams(room): PathParams<String>,
    JsonBody(request): JsonBody<MessageRequest>,
) -> Result<Json<Delivered>, Refused> {
    let room = live_room(&control, &caller, &room).await?;
    let payload = request.payload.get();
    if !payload.starts_with('{') {
        return Err(SignalError::invalid("`payload` must be a JSON object").into());
    }
    let limit = control.node().config().limits.max_message_bytes;
    if payload.len() > limit {
        return Err(SignalError::PayloadTooLarge {
            what: "`payload`",
            size: payload.len(),
            limit,
        }
        .into());
    }
    let recipients = control
        .on_room(&room, |hub, now| hub.announce(&room, payload, now))
        .await?;
    Ok(Json(Delivered { recipients }))
}

/// `POST /v1/rooms/{room}/knocks/{ticket}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// `true` lets the guest in (it gets `admitted` with a room token), `false` turns it away
    /// (`denied`).
    pub admit: bool,
}

/// Answers a guest knocking on the room's lobby, as a host's `admit` or `deny` does.
#[utoipa::path(
    post, path = "/v1/rooms/{room}/knocks/{ticket}", tag = "live",
    security(("bearer" = [])),
    params(
        ("room" = String, Path, description = "The room's id"),
        ("ticket" = String, Path, description = "The knock's ticket, from `knock`"),
    ),
    request_body = Decision,
    responses(
        (status = 204, description = "Answered"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
async fn decide(
    State(control): State<Control>,
    caller: Caller,
    PathParams((room, ticket)): PathParams<(String, String)>,
    JsonBody(decision): JsonBody<Decision>,
) -> Result<StatusCode, Refused> {
    let room = live_room(&control, &caller, &room).await?;
    let waiting = || SignalError::NotFound(format!("no guest `{ticket}` is waiting to enter"));
    let id = PeerId::parse(&ticket).map_err(|_| waiting())?;
    control
        .under_lock(&room, |hub, now| {
            hub.decide_knock(&room, &id, decision.admit, now)
        })
        .await??;
    tracing::info!(event = "lobby.decided", %room, admit = decision.admit, "knock answered over the API");
    Ok(StatusCode::NO_CONTENT)
}
