//! Share codes: a room's owner hands out a code (`XXXXX-XXXXX`, see [`super::code`]) that lets
//! whoever types it into the room with a role, for a number of uses and until it expires.
//!
//! `GET /v1/invites/{code}` only looks (link-preview bots fetch links, and must not use up a
//! one-time code); `POST /v1/invites/{code}/redeem` uses it, atomically in the store, and answers
//! a room token. Both are public and budgeted per address; every code that is not live gets the
//! same `not_found`.

use std::time::{Duration, Instant};

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_protocol::{Role, RoomId, SignalError};
use switchboard_store::{Invite, NewInvite, StoreError};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiKind, Control, ShareCode,
    extract::{Caller, JsonBody, PathParams, Refused, whole},
    guard::Budget,
    now_ms,
    openapi::{self, BadRequest, NotFound, TooManyRequests, Unauthorized},
    seconds,
};
use crate::{
    guest::{GUEST_TOKEN_TTL, GuestToken, clean_name, random_user},
    transport::http::ClientAddress,
};

pub(super) fn routes() -> OpenApiRouter<Control> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(revoke))
        .routes(routes!(preview))
        .routes(routes!(redeem))
}

/// Default and longest lifetime of a code.
const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);
const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most uses a counted code may have.
const MAX_USES: i64 = 10_000;

/// Whether a code works now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InviteStatus {
    /// It lets people in.
    Active,
    /// Its time is up.
    Expired,
    /// Every use is spent.
    UsedUp,
    /// Its room's owner revoked it.
    Revoked,
}

fn status(invite: &Invite, now: i64) -> InviteStatus {
    if invite.revoked_at.is_some() {
        InviteStatus::Revoked
    } else if invite.expires_at <= now {
        InviteStatus::Expired
    } else if invite.max_uses.is_some_and(|max| invite.uses >= max) {
        InviteStatus::UsedUp
    } else {
        InviteStatus::Active
    }
}

fn role_of(stored: &str) -> Role {
    match stored {
        "host" => Role::Host,
        _ => Role::Guest,
    }
}

fn role_str(role: Role) -> &'static str {
    match role {
        Role::Host => "host",
        Role::Guest => "guest",
    }
}

/// A share code as its room's owner sees it (the code itself is shown only once, when made).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InviteView {
    /// The code's id, to revoke it.
    pub id: String,
    /// The room it lets into.
    pub room: String,
    /// The role it grants.
    #[schema(schema_with = openapi::role)]
    pub role: Role,
    /// Uses allowed; null: any number until it expires.
    pub max_uses: Option<i64>,
    /// Uses so far.
    pub uses: i64,
    /// When it stops working, Unix seconds.
    pub expires_at: i64,
    /// When it was made, Unix seconds.
    pub created_at: i64,
    /// When it was revoked, Unix seconds.
    pub revoked_at: Option<i64>,
    /// Whether it works now.
    pub status: InviteStatus,
}

impl InviteView {
    fn new(invite: Invite, now: i64) -> InviteView {
        InviteView {
            status: status(&invite, now),
            id: invite.id,
            room: invite.room_id,
            role: role_of(&invite.role),
            max_uses: invite.max_uses,
            uses: invite.uses,
            expires_at: seconds(invite.expires_at),
            created_at: seconds(invite.created_at),
            revoked_at: invite.revoked_at.map(seconds),
        }
    }
}

/// `max_uses` when absent: one use (`null` is any number).
fn default_uses() -> Option<i64> {
    Some(1)
}

/// `POST /v1/rooms/{room}/invites`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// The role it grants (default `guest`).
    #[serde(default)]
    #[schema(schema_with = openapi::role_or_null)]
    pub role: Option<Role>,
    /// Uses, 1 to 10000 (default 1: a one-time code); null: any number until it expires.
    #[serde(default = "default_uses", deserialize_with = "whole")]
    #[schema(minimum = 1, maximum = 10_000)]
    pub max_uses: Option<i64>,
    /// Lifetime in seconds, 60 to 604800 (default 86400: a day).
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 60, maximum = 604_800)]
    pub expires_in: Option<u64>,
}

/// A new share code.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NewCode {
    /// The code, `XXXXX-XXXXX`: shown this once; the server keeps only its hash.
    pub code: String,
    /// The code's record.
    pub invite: InviteView,
}

/// Makes a share code for one of the caller's rooms.
#[utoipa::path(
    post, path = "/v1/rooms/{room}/invites", tag = "invites",
    security(("bearer" = [])),
    params(("room" = String, Path, description = "The room's id")),
    request_body = InviteRequest,
    responses(
        (status = 201, description = "The code", body = NewCode),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    )
)]
async fn create(
    State(control): State<Control>,
    caller: Caller,
    PathParams(room): PathParams<String>,
    JsonBody(request): JsonBody<InviteRequest>,
) -> Result<(StatusCode, Json<NewCode>), Refused> {
    let room = control.visible_room(&caller, &room).await?;
    if request
        .max_uses
        .is_some_and(|n| !(1..=MAX_USES).contains(&n))
    {
        return Err(
            SignalError::invalid(format!("`max_uses` must be 1 to {MAX_USES} or null")).into(),
        );
    }
    let ttl = request.expires_in.map_or(DEFAULT_TTL, Duration::from_secs);
    if !(Duration::from_secs(60)..=MAX_TTL).contains(&ttl) {
        return Err(SignalError::invalid(format!(
            "`expires_in` must be 60 to {} seconds",
            MAX_TTL.as_secs()
        ))
        .into());
    }
    let now = now_ms();
    // Two equal codes out of 2^50 is a once-in-forever event; the store's unique hash catches it.
    for _ in 0..3 {
        let code = ShareCode::random();
        let new = NewInvite {
            id: super::code::random_id("inv"),
            room_id: room.id.clone(),
            code_hash: code.hash(),
            role: role_str(request.role.unwrap_or_default()).to_owned(),
            max_uses: request.max_uses,
            expires_at: now + ttl.as_millis() as i64,
            created_by: caller.user.clone(),
            now,
        };
        match control.store().create_invite(&new).await {
            Ok(invite) => {
                tracing::info!(event = "invite.created", "share code made");
                let detail = json!({"role": invite.role, "max_uses": invite.max_uses});
                let (room, id) = (Some(invite.room_id.as_str()), Some(invite.id.as_str()));
                control.record(ApiKind::InviteCreated, room, Some(&caller.user), id, detail);
                let invite = InviteView::new(invite, now);
                let code = code.display();
                return Ok((StatusCode::CREATED, Json(NewCode { code, invite })));
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(SignalError::Internal.into())
}

/// A room's share codes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InviteList {
    /// Newest first.
    pub invites: Vec<InviteView>,
}

/// The share codes of one of the caller's rooms.
#[utoipa::path(
    get, path = "/v1/rooms/{room}/invites", tag = "invites",
    security(("bearer" = [])),
    params(("room" = String, Path, description = "The room's id")),
    responses(
        (status = 200, description = "The room's codes", body = InviteList),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    )
)]
async fn list(
    State(control): State<Control>,
    caller: Caller,
    PathParams(room): PathParams<String>,
) -> Result<Json<InviteList>, Refused> {
    let room = control.visible_room(&caller, &room).await?;
    let now = now_ms();
    let invites = control.store().invites(&room.id).await?;
    Ok(Json(InviteList {
        invites: invites
            .into_iter()
            .map(|i| InviteView::new(i, now))
            .collect(),
    }))
}

/// Revokes a share code of one of the caller's rooms.
#[utoipa::path(
    delete, path = "/v1/rooms/{room}/invites/{invite}", tag = "invites",
    security(("bearer" = [])),
    params(
        ("room" = String, Path, description = "The room's id"),
        ("invite" = String, Path, description = "The code's id"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    )
)]
async fn revoke(
    State(control): State<Control>,
    caller: Caller,
    PathParams((room, invite)): PathParams<(String, String)>,
) -> Result<StatusCode, Refused> {
    let room = control.visible_room(&caller, &room).await?;
    if !control
        .store()
        .revoke_invite(&room.id, &invite, now_ms())
        .await?
    {
        return Err(SignalError::NotFound(format!("no live code `{invite}` in this room")).into());
    }
    tracing::info!(event = "invite.revoked", "share code revoked");
    let user = Some(caller.user.as_str());
    control.record(
        ApiKind::InviteRevoked,
        Some(&room.id),
        user,
        Some(&invite),
        Value::Null,
    );
    Ok(StatusCode::NO_CONTENT)
}

/// What a share code leads to, before using it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InvitePreview {
    /// The room's id.
    pub room: String,
    /// The room's name.
    pub room_name: String,
    /// The role it grants.
    #[schema(schema_with = openapi::role)]
    pub role: Role,
    /// Whether redeemers wait in the room's lobby.
    pub lobby: bool,
    /// When it stops working, Unix seconds.
    pub expires_at: i64,
    /// Uses left; null: any number.
    pub uses_left: Option<i64>,
    /// Whether it works now.
    pub status: InviteStatus,
}

fn no_code() -> SignalError {
    SignalError::NotFound("no such share code, or it expired, was used up or was revoked".into())
}

impl Control {
    /// The invite of a typed code, with its room; budgeted per address.
    async fn lookup(
        &self,
        address: Option<std::net::IpAddr>,
        typed: &str,
    ) -> Result<(ShareCode, Invite, switchboard_store::Room), Refused> {
        self.0
            .guard
            .charge(Budget::Invite, address, Instant::now())?;
        let code = ShareCode::parse(typed).ok_or_else(no_code)?;
        let invite = self.store().invite_by_code(&code.hash()).await?;
        let invite = invite.ok_or_else(no_code)?;
        let room = self.live_room(&invite.room_id).await?;
        let room = room.ok_or_else(no_code)?;
        Ok((code, invite, room))
    }
}

/// Shows what a share code leads to without using it up (safe for link previews).
#[utoipa::path(
    get, path = "/v1/invites/{code}", tag = "invites",
    params(("code" = String, Path, description = "The code as typed (any case, hyphens optional)")),
    responses(
        (status = 200, description = "What the code leads to", body = InvitePreview),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    )
)]
async fn preview(
    State(control): State<Control>,
    ClientAddress(address): ClientAddress,
    PathParams(code): PathParams<String>,
) -> Result<Json<InvitePreview>, Refused> {
    let (_, invite, room) = control.lookup(address, &code).await?;
    let now = now_ms();
    Ok(Json(InvitePreview {
        status: status(&invite, now),
        room: room.id,
        room_name: room.name,
        role: role_of(&invite.role),
        lobby: room.lobby,
        expires_at: seconds(invite.expires_at),
        uses_left: invite.max_uses.map(|max| (max - invite.uses).max(0)),
    }))
}

/// `POST /v1/invites/{code}/redeem`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redemption {
    /// The display name to join with; at most 64 characters.
    #[serde(default)]
    #[schema(max_length = 64, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub name: Option<String>,
}

/// Uses a share code once: a room token for a new guest user id, with the code's role, or, when
/// the room's lobby is on, a lobby token (`lobby: true`) whose session knocks and waits for a host.
/// No account is needed.
#[utoipa::path(
    post, path = "/v1/invites/{code}/redeem", tag = "invites",
    params(("code" = String, Path, description = "The code as typed (any case, hyphens optional)")),
    request_body = Redemption,
    responses(
        (status = 200, description = "A room token, or a lobby token", body = GuestToken),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    )
)]
async fn redeem(
    State(control): State<Control>,
    ClientAddress(address): ClientAddress,
    PathParams(code): PathParams<String>,
    JsonBody(request): JsonBody<Redemption>,
) -> Result<Json<GuestToken>, Refused> {
    let name = clean_name(request.name)?;
    let (code, _, room) = control.lookup(address, &code).await?;
    let lobby = room.lobby;
    let invite = control
        .store()
        .redeem_invite(&code.hash(), now_ms())
        .await?;
    let invite = invite.ok_or_else(no_code)?;
    let room = RoomId::parse(&invite.room_id)?;
    let role = role_of(&invite.role);
    // A lobby token needs only to last until its session knocks; the knock has its own expiry.
    let ttl = if lobby {
        Duration::from_millis(control.node().config().knock_timeout_ms)
    } else {
        GUEST_TOKEN_TTL
    };
    let token = GuestToken::mint(control.node(), random_user(), &room, role, name, ttl, lobby)?;
    tracing::info!(event = "invite.redeemed", role = ?role, lobby, "share code redeemed");
    let detail = json!({"role": role, "lobby": lobby});
    let (room, id) = (Some(room.as_str()), Some(invite.id.as_str()));
    control.record(ApiKind::InviteRedeemed, room, Some(&token.user), id, detail);
    Ok(Json(token))
}
