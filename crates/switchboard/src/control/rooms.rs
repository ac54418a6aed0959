//! Stored rooms: made, listed, read, changed and deleted by their owner (or an admin), and room
//! tokens minted for them for the signaling hub.
//!
//! Another account's room is `not_found`, never `forbidden`, so room ids say nothing about who
//! owns what. A stored room is a hub room id with policy attached (name, member limit, the mode a
//! call starts in, the lobby); rooms nobody stored keep working as before.

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_core::RoomPolicy;
use switchboard_protocol::{MediaMode, Mode, Role, RoomId, SignalError};
use switchboard_store::{NewRoom, Room, RoomPatch, StoreError};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiKind, Control,
    extract::{Caller, JsonBody, PathParams, QueryParams, Refused, whole, whole_or_null},
    now_ms,
    openapi::{self, BadRequest, Conflict, NotFound, Unauthorized, Unavailable},
    seconds,
};
use crate::guest::{GuestToken, clean_name};

pub(super) fn routes() -> OpenApiRouter<Control> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(read, update, delete))
        .routes(routes!(mint_token))
}

/// How calls in a room carry media, named as the server's `media_mode` and the `joined` message's
/// `media_mode` name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Media {
    /// Every member sends its media to every other member.
    Mesh,
    /// Members send their media to the server's SFU, which forwards it; only on a server that
    /// runs one (`sfu.udp_port`).
    Sfu,
    /// Mesh while the call has two members, the SFU from three (on a server that runs one;
    /// mesh on one that does not).
    #[default]
    Auto,
}

impl Media {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Media::Mesh => "mesh",
            Media::Sfu => "sfu",
            Media::Auto => "auto",
        }
    }

    fn parse(stored: &str) -> Media {
        match stored {
            "sfu" => Media::Sfu,
            "auto" => Media::Auto,
            _ => Media::Mesh,
        }
    }

    fn mode(self) -> MediaMode {
        match self {
            Media::Mesh => MediaMode::Mesh,
            Media::Sfu => MediaMode::Sfu,
            Media::Auto => MediaMode::Auto,
        }
    }
}

impl From<MediaMode> for Media {
    fn from(mode: MediaMode) -> Media {
        match mode {
            MediaMode::Mesh => Media::Mesh,
            MediaMode::Sfu => Media::Sfu,
            MediaMode::Auto => Media::Auto,
        }
    }
}

fn mode_str(mode: Mode) -> &'static str {
    match mode {
        Mode::HostOnly => "host_only",
        Mode::FreeForAll => "free_for_all",
    }
}

fn parse_mode(stored: &str) -> Mode {
    match stored {
        "host_only" => Mode::HostOnly,
        _ => Mode::FreeForAll,
    }
}

/// A stored room.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = Room)]
pub struct RoomView {
    /// The hub's room id: what clients `join` and room tokens grant.
    pub id: String,
    /// The name shown to people.
    pub name: String,
    /// The owning account's id.
    pub owner: String,
    /// Members at most; null: the server's `max_peers`.
    pub max_peers: Option<i64>,
    /// The mode a call starts in.
    #[schema(schema_with = openapi::mode)]
    pub mode: Mode,
    /// How calls carry media.
    pub media: Media,
    /// Whether share-code guests wait in the lobby for a host.
    pub lobby: bool,
    /// When the room stops existing, Unix seconds; null: persistent.
    pub expires_at: Option<i64>,
    /// When it was made, Unix seconds.
    pub created_at: i64,
    /// When it last changed, Unix seconds.
    pub updated_at: i64,
}

impl From<Room> for RoomView {
    fn from(room: Room) -> Self {
        RoomView {
            id: room.id,
            name: room.name,
            owner: room.owner_id,
            max_peers: room.max_peers,
            mode: parse_mode(&room.mode),
            media: Media::parse(&room.media),
            lobby: room.lobby,
            expires_at: room.expires_at.map(seconds),
            created_at: seconds(room.created_at),
            updated_at: seconds(room.updated_at),
        }
    }
}

/// `POST /v1/rooms`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoomRequest {
    /// The hub's room id (letters, digits, `-`, `_`, `.`; see docs/protocol.md); default: a
    /// random one.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    pub id: Option<String>,
    /// The name shown to people (default, or when blank: the id); at most 64 characters.
    #[serde(default)]
    #[schema(max_length = 64, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub name: Option<String>,
    /// Members at most, 1 to the server's `max_peers`; default: the server's.
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 1)]
    pub max_peers: Option<i64>,
    /// The mode a call starts in (default `free_for_all`).
    #[serde(default)]
    #[schema(schema_with = openapi::mode_or_null)]
    pub mode: Option<Mode>,
    /// How calls carry media (default `auto`).
    #[serde(default)]
    pub media: Option<Media>,
    /// Whether share-code guests wait in the lobby (default false).
    #[serde(default)]
    pub lobby: Option<bool>,
    /// Seconds from now until the room stops existing, 60 to a year; absent: persistent.
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 60, maximum = 31_536_000)]
    pub expires_in: Option<u64>,
}

/// `PATCH /v1/rooms/{room}`: the fields given change, `null` clears `max_peers` or `expires_in`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoomChange {
    /// A new name (a blank one changes nothing); at most 64 characters.
    #[serde(default)]
    #[schema(max_length = 64, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub name: Option<String>,
    /// A new member limit, or null for the server's.
    #[serde(default, deserialize_with = "whole_or_null")]
    #[schema(minimum = 1)]
    pub max_peers: Option<Option<i64>>,
    /// A new starting mode.
    #[serde(default)]
    #[schema(schema_with = openapi::mode_or_null)]
    pub mode: Option<Mode>,
    /// A new media topology.
    #[serde(default)]
    pub media: Option<Media>,
    /// Lobby on or off.
    #[serde(default)]
    pub lobby: Option<bool>,
    /// Seconds from now until the room stops existing (60 to a year), or null for persistent.
    #[serde(default, deserialize_with = "whole_or_null")]
    #[schema(minimum = 60, maximum = 31_536_000)]
    pub expires_in: Option<Option<u64>>,
}

impl Control {
    /// `max_peers` if the server allows it.
    fn check_max_peers(&self, max_peers: Option<i64>) -> Result<(), SignalError> {
        let cap = self.node().config().max_peers as i64;
        match max_peers {
            Some(n) if !(1..=cap).contains(&n) => Err(SignalError::invalid(format!(
                "`max_peers` must be 1 to {cap}"
            ))),
            _ => Ok(()),
        }
    }

    /// `media` if this server can carry it: `sfu` only when it runs an SFU.
    fn check_media(&self, media: Option<Media>) -> Result<(), SignalError> {
        if media == Some(Media::Sfu) && self.node().config().sfu.udp_port.is_none() {
            return Err(SignalError::invalid(
                "`media` `sfu` needs a server that runs the SFU (sfu.udp_port)",
            ));
        }
        Ok(())
    }

    /// Hands `room`'s policy to the hub, which applies it from the next join on.
    pub(super) fn apply_policy(&self, room: &Room) {
        let Ok(id) = RoomId::parse(&room.id) else {
            return;
        };
        let policy = policy(room);
        self.node().with_hub(|hub, _| hub.set_policy(id, policy));
    }

    /// The room `id` if `caller` may see it: its owner or an admin.
    pub(super) async fn visible_room(&self, caller: &Caller, id: &str) -> Result<Room, Refused> {
        let not_found = || SignalError::NotFound(format!("no room `{id}`"));
        let room = self.live_room(id).await?.ok_or_else(not_found)?;
        if room.owner_id == caller.user || self.is_admin(caller).await? {
            Ok(room)
        } else {
            Err(not_found().into())
        }
    }

    pub(super) async fn is_admin(&self, caller: &Caller) -> Result<bool, Refused> {
        Ok(self
            .store()
            .user(&caller.user)
            .await?
            .is_some_and(|user| user.admin))
    }
}

/// What the hub enforces of a stored room.
pub(super) fn policy(room: &Room) -> RoomPolicy {
    RoomPolicy {
        max_peers: room
            .max_peers
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        mode: parse_mode(&room.mode),
        media: Media::parse(&room.media).mode(),
        expires_at: room.expires_at.map(|at| u64::try_from(at).unwrap_or(0)),
    }
}

/// Longest `expires_in` of a room: a year.
const MAX_ROOM_LIFETIME: u64 = 365 * 24 * 3600;

/// When a room given `expires_in` seconds at `now` expires, in the store's milliseconds.
fn expiry(expires_in: Option<u64>, now: i64) -> Result<Option<i64>, SignalError> {
    match expires_in {
        Some(secs) if !(60..=MAX_ROOM_LIFETIME).contains(&secs) => Err(SignalError::invalid(
            format!("`expires_in` must be 60 to {MAX_ROOM_LIFETIME} seconds"),
        )),
        Some(secs) => Ok(Some(now + secs as i64 * 1000)),
        None => Ok(None),
    }
}

/// The name given, or `fallback` when none is.
fn room_name(name: Option<String>, fallback: &str) -> Result<String, SignalError> {
    Ok(clean_name(name)?.unwrap_or_else(|| fallback.to_owned()))
}

/// Stores a room owned by the caller.
#[utoipa::path(
    post, path = "/v1/rooms", tag = "rooms",
    security(("bearer" = [])),
    request_body = RoomRequest,
    responses(
        (status = 201, description = "The new room", body = RoomView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 409, response = Conflict),
    )
)]
async fn create(
    State(control): State<Control>,
    caller: Caller,
    JsonBody(request): JsonBody<RoomRequest>,
) -> Result<(StatusCode, Json<RoomView>), Refused> {
    let id = match request.id {
        Some(id) => RoomId::parse(&id)?,
        None => RoomId::parse(&super::code::random_id("room"))?,
    };
    control.check_max_peers(request.max_peers)?;
    control.check_media(request.media)?;
    let now = now_ms();
    let new = NewRoom {
        name: room_name(request.name, id.as_str())?,
        id: id.as_str().to_owned(),
        owner_id: caller.user,
        max_peers: request.max_peers,
        mode: mode_str(request.mode.unwrap_or_default()).to_owned(),
        media: request.media.unwrap_or_default().as_str().to_owned(),
        lobby: request.lobby.unwrap_or(false),
        expires_at: expiry(request.expires_in, now)?,
        now,
    };
    let _writing = control.room_write(&new.id).await;
    let mut made = control.store().create_room(&new).await;
    if matches!(made, Err(StoreError::Conflict)) && control.live_room(&new.id).await?.is_none() {
        // The id's room has expired: it is gone, and the id free again.
        control.store().delete_room(&new.id).await?;
        made = control.store().create_room(&new).await;
    }
    match made {
        Ok(room) => {
            control.apply_policy(&room);
            control.announce(&id).await;
            let detail = json!({"mode": room.mode, "media": room.media, "lobby": room.lobby});
            let (id, owner) = (Some(room.id.as_str()), Some(room.owner_id.as_str()));
            control.record(ApiKind::RoomCreated, id, owner, None, detail);
            Ok((StatusCode::CREATED, Json(room.into())))
        }
        Err(StoreError::Conflict) => {
            Err(SignalError::Conflict(format!("room `{id}` exists already")).into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Largest page of `GET /v1/rooms`.
const MAX_PAGE: u32 = 100;

/// `GET /v1/rooms` paging.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Rooms per page, 1 to 100 (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    #[serde(default)]
    pub after: Option<String>,
}

/// A page of rooms.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoomPage {
    /// Rooms, ordered by id.
    pub rooms: Vec<RoomView>,
    /// Where the next page starts (its `after`); null on the last page.
    pub next: Option<String>,
}

/// The caller's rooms (every room, for an admin), ordered by id.
#[utoipa::path(
    get, path = "/v1/rooms", tag = "rooms",
    security(("bearer" = [])),
    params(Page),
    responses(
        (status = 200, description = "A page of rooms", body = RoomPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
    )
)]
async fn list(
    State(control): State<Control>,
    caller: Caller,
    QueryParams(page): QueryParams<Page>,
) -> Result<Json<RoomPage>, Refused> {
    let limit = page.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(SignalError::invalid(format!("`limit` must be 1 to {MAX_PAGE}")).into());
    }
    let owner = (!control.is_admin(&caller).await?).then_some(caller.user.as_str());
    // One more than asked tells whether there is a next page.
    let mut rooms = control
        .store()
        .rooms(owner, page.after.as_deref(), limit + 1, now_ms())
        .await?;
    let next = (rooms.len() > limit as usize).then(|| {
        rooms.truncate(limit as usize);
        rooms.last().map(|room| room.id.clone())
    });
    Ok(Json(RoomPage {
        rooms: rooms.into_iter().map(RoomView::from).collect(),
        next: next.flatten(),
    }))
}

/// One of the caller's rooms.
#[utoipa::path(
    get, path = "/v1/rooms/{room}", tag = "rooms",
    security(("bearer" = [])),
    params(("room" = String, Path, description = "The room's id")),
    responses(
        (status = 200, description = "The room", body = RoomView),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    )
)]
async fn read(
    State(control): State<Control>,
    caller: Caller,
    PathParams(room): PathParams<String>,
) -> Result<Json<RoomView>, Refused> {
    Ok(Json(control.visible_room(&caller, &room).await?.into()))
}

/// Changes one of the caller's rooms.
#[utoipa::path(
    patch, path = "/v1/rooms/{room}", tag = "rooms",
    security(("bearer" = [])),
    params(("room" = String, Path, description = "The room's id")),
    request_body = RoomChange,
    responses(
        (status = 200, description = "The changed room", body = RoomView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    )
)]
async fn update(
    State(control): State<Control>,
    caller: Caller,
    PathParams(room): PathParams<String>,
    JsonBody(change): JsonBody<RoomChange>,
) -> Result<Json<RoomView>, Refused> {
    let room = control.visible_room(&caller, &room).await?;
    control.check_max_peers(change.max_peers.flatten())?;
    control.check_media(change.media)?;
    let now = now_ms();
    let patch = RoomPatch {
        name: match change.name {
            Some(name) => Some(room_name(Some(name), &room.name)?),
            None => None,
        },
        max_peers: change.max_peers,
        mode: change.mode.map(|m| mode_str(m).to_owned()),
        media: change.media.map(|m| m.as_str().to_owned()),
        lobby: change.lobby,
        expires_at: match change.expires_in {
            Some(secs) => Some(expiry(secs, now)?),
            None => None,
        },
    };
    let _writing = control.room_write(&room.id).await;
    let changed = control.store().update_room(&room.id, &patch, now).await?;
    let changed = changed.ok_or_else(|| SignalError::NotFound(format!("no room `{}`", room.id)))?;
    control.apply_policy(&changed);
    if let Ok(id) = RoomId::parse(&changed.id) {
        control.announce(&id).await;
    }
    let (id, user) = (Some(room.id.as_str()), Some(caller.user.as_str()));
    let detail = json!({
        "name": patch.name, "max_peers": patch.max_peers, "mode": patch.mode,
        "media": patch.media, "lobby": patch.lobby, "expires_at": patch.expires_at,
    });
    control.record(ApiKind::RoomUpdated, id, user, None, detail);
    if changed.media != room.media {
        let detail = json!({"from": room.media, "to": changed.media});
        control.record(ApiKind::MediaChanged, id, user, None, detail);
    }
    Ok(Json(changed.into()))
}

/// Deletes one of the caller's rooms and its share codes; a call in it ends (`room_closed`,
/// reason `deleted`).
#[utoipa::path(
    delete, path = "/v1/rooms/{room}", tag = "rooms",
    security(("bearer" = [])),
    params(("room" = String, Path, description = "The room's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
async fn delete(
    State(control): State<Control>,
    caller: Caller,
    PathParams(room): PathParams<String>,
) -> Result<StatusCode, Refused> {
    let room = control.visible_room(&caller, &room).await?;
    let _writing = control.room_write(&room.id).await;
    control.delete_room(&room.id).await?;
    tracing::info!(event = "room.deleted", "stored room deleted");
    let (id, user) = (Some(room.id.as_str()), Some(caller.user.as_str()));
    control.record(
        ApiKind::RoomDeleted,
        id,
        user,
        None,
        serde_json::Value::Null,
    );
    Ok(StatusCode::NO_CONTENT)
}

/// Longest lifetime of a minted room token.
const MAX_TOKEN_TTL: Duration = crate::guest::GUEST_TOKEN_TTL;

/// `POST /v1/rooms/{room}/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The token's user id (`sub`), 1 to 64 characters; default: the caller's account id.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub user: Option<String>,
    /// The display name it carries; at most 64 characters.
    #[serde(default)]
    #[schema(max_length = 64, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub name: Option<String>,
    /// The role it grants (default `guest`).
    #[serde(default)]
    #[schema(schema_with = openapi::role_or_null)]
    pub role: Option<Role>,
    /// Lifetime in seconds, 60 to 43200 (default 3600).
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 60, maximum = 43_200)]
    pub ttl_secs: Option<u64>,
}

/// Mints a room token for one of the caller's rooms: what a client presents to the signaling
/// endpoints (`/v1/ws`, `/v1/sessions`) to join it.
#[utoipa::path(
    post, path = "/v1/rooms/{room}/tokens", tag = "rooms",
    security(("bearer" = [])),
    params(("room" = String, Path, description = "The room's id")),
    request_body = TokenRequest,
    responses(
        (status = 201, description = "A room token", body = GuestToken),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    )
)]
async fn mint_token(
    State(control): State<Control>,
    caller: Caller,
    PathParams(room): PathParams<String>,
    JsonBody(request): JsonBody<TokenRequest>,
) -> Result<(StatusCode, Json<GuestToken>), Refused> {
    let room = control.visible_room(&caller, &room).await?;
    let room = RoomId::parse(&room.id)?;
    let user = request.user.unwrap_or(caller.user);
    if !(1..=64).contains(&user.chars().count()) || user.chars().any(char::is_control) {
        return Err(SignalError::invalid(
            "`user` must be 1 to 64 characters, no control characters",
        )
        .into());
    }
    let ttl = Duration::from_secs(request.ttl_secs.unwrap_or(3600));
    if !(Duration::from_secs(60)..=MAX_TOKEN_TTL).contains(&ttl) {
        return Err(SignalError::invalid(format!(
            "`ttl_secs` must be 60 to {}",
            MAX_TOKEN_TTL.as_secs()
        ))
        .into());
    }
    let name = clean_name(request.name)?;
    let role = request.role.unwrap_or_default();
    let token = GuestToken::mint(control.node(), user, &room, role, name, ttl, false)?;
    tracing::info!(event = "room.token", role = ?role, "room token minted");
    Ok((StatusCode::CREATED, Json(token)))
}
