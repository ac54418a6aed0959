//! `POST /v1/token`: guest tokens for the web app's lobby, when `guest_access` is on.
//!
//! Body `{"room": "standup", "name": "Ann"}` (`name` optional). The answer is
//! `{"token", "user", "room", "role", "name"?, "expires_at"}`: an HS256 token for exactly that room,
//! for a new random user id, valid for [`GUEST_TOKEN_TTL`]. The role is `host` when the room has no
//! members at that moment (whoever opens a room runs it) and `guest` otherwise.
//!
//! Guest access lets anyone who can reach the server into any room that is not stored, so it is
//! meant for local runs and demos; production deployments set `guest_access = false` and mint
//! tokens in their own backend. With it off the endpoint answers 403 `forbidden`, and so it does
//! for a room stored through the control API ([`crate::control`]): its owner decides who joins
//! (share codes, room tokens), not whoever asks first.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::{
    Json,
    body::Bytes,
    extract::State,
    response::{IntoResponse, Response},
};
use rand::Rng;
use serde::{Deserialize, Serialize};
use switchboard_protocol::{Role, RoomId, SignalError};

use crate::{control::Control, error::ApiError, node::Node, transport::http::ClientAddress};

/// How long a guest token is valid. Long enough for a long call: a resume after a network drop
/// presents the token again.
pub const GUEST_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    room: String,
    #[serde(default)]
    name: Option<String>,
}

/// A room token and what it grants: the answer of `POST /v1/token`, and of the control API's
/// `POST /v1/rooms/{room}/tokens` and `POST /v1/invites/{code}/redeem`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = RoomToken)]
pub struct GuestToken {
    /// The JWT.
    pub token: String,
    /// Its `sub`.
    pub user: String,
    /// The room it grants.
    pub room: String,
    /// `host` or `guest`.
    #[schema(schema_with = crate::control::openapi::role)]
    pub role: Role,
    /// The display name it carries.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
    /// A lobby token: its session may only `knock` on the room, and `join` once a host admits
    /// it (docs/protocol.md, Lobby).
    #[serde(default)]
    pub lobby: bool,
}

impl GuestToken {
    /// A token for `user` in `room`, signed with the server's secret, valid for `ttl`; a lobby
    /// token when `lobby` is set.
    pub fn mint(
        node: &Node,
        user: String,
        room: &RoomId,
        role: Role,
        name: Option<String>,
        ttl: Duration,
        lobby: bool,
    ) -> Result<GuestToken, SignalError> {
        let token = node
            .signer()
            .mint_as(&user, room.as_str(), role, name.clone(), ttl, lobby)?;
        let expires_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            + ttl.as_secs().max(1);
        Ok(GuestToken {
            token,
            user,
            room: room.as_str().to_owned(),
            role,
            name,
            expires_at,
            lobby,
        })
    }
}

/// A display name cleaned up: trimmed, control characters refused, at most [`MAX_NAME_CHARS`].
pub(crate) fn clean_name(name: Option<String>) -> Result<Option<String>, SignalError> {
    let Some(name) = name else { return Ok(None) };
    let name = name.trim();
    if name.is_empty() {
        return Ok(None);
    }
    if name.chars().any(char::is_control) {
        return Err(SignalError::invalid(
            "`name` must not contain control characters",
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(SignalError::invalid(format!(
            "`name` must be at most {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(Some(name.to_owned()))
}

pub(crate) fn random_user() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let id: String = (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("guest-{id}")
}

/// `POST /v1/token`.
pub async fn token(
    State(control): State<Control>,
    ClientAddress(address): ClientAddress,
    body: Bytes,
) -> Result<Response, Response> {
    control
        .node()
        .admit_new_session(address)
        .map_err(IntoResponse::into_response)?;
    issue(&control, &body)
        .await
        .map_err(IntoResponse::into_response)
}

async fn issue(control: &Control, body: &[u8]) -> Result<Response, ApiError> {
    let node = control.node();
    if !node.config().guest_access {
        return Err(SignalError::Forbidden(
            "guest access is disabled on this server; ask for an invitation token".into(),
        )
        .into());
    }
    let request: TokenRequest = serde_json::from_slice(body).map_err(|e| {
        SignalError::invalid(format!("expected {{\"room\": ..., \"name\": ...}}: {e}"))
    })?;
    let room = RoomId::parse(&request.room)?;
    let name = clean_name(request.name)?;
    if control.live_room(room.as_str()).await?.is_some() {
        return Err(SignalError::Forbidden(format!(
            "room `{room}` is stored: join it with a share code or a token from its owner"
        ))
        .into());
    }
    let role = if node.hub().room_size(&room) == 0 {
        Role::Host
    } else {
        Role::Guest
    };
    let token = GuestToken::mint(
        node,
        random_user(),
        &room,
        role,
        name,
        GUEST_TOKEN_TTL,
        false,
    )?;
    tracing::info!(event = "guest.token", role = ?role, "guest token issued");
    let mut response = Json(token).into_response();
    crate::transport::http::no_buffering(&mut response);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(clean_name(None).unwrap(), None);
        assert_eq!(clean_name(Some("   ".into())).unwrap(), None);
        assert_eq!(
            clean_name(Some("  Ann B. ".into())).unwrap().as_deref(),
            Some("Ann B.")
        );
        assert_eq!(
            clean_name(Some("é".repeat(64)))
                .unwrap()
                .map(|n| n.chars().count()),
            Some(64)
        );
        assert!(clean_name(Some("é".repeat(65))).is_err());
        assert!(clean_name(Some("a\nb".into())).is_err());
    }

    #[test]
    fn users_are_random() {
        let a = random_user();
        assert!(a.starts_with("guest-") && a.len() == 22);
        assert_ne!(a, random_user());
    }
}
