//! The audit log: what each journal record says as an audit line, and `GET /v1/audit`, which
//! reads them (admin grant only).
//!
//! User ids never reach the log raw: the writer keeps the same keyed hash the server's logs use
//! (`crate::observe::UserHasher`, keyed from the server secret), so a line can be followed to the
//! other lines of one user but, without the secret, not joined to an account.

use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_core::Event;
use switchboard_protocol::{KnockEnd, PeerLeftReason, SignalError};
use switchboard_store::{AuditEntry, AuditQuery, NewAuditEntry};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    Control,
    extract::{Caller, QueryParams, Refused},
    openapi::{BadRequest, Forbidden, Unauthorized},
    seconds,
};
use crate::{journal::Record, observe::UserHasher};

pub(super) fn routes() -> OpenApiRouter<Control> {
    OpenApiRouter::new().routes(routes!(list))
}

/// The audit line `record` makes, if it makes one.
pub fn entry(record: &Record, hasher: &UserHasher) -> Option<NewAuditEntry> {
    let line = |at: i64, kind: &str, room: Option<&str>, user: Option<&str>| NewAuditEntry {
        at,
        kind: kind.to_owned(),
        room_id: room.map(str::to_owned),
        actor: user.map(|user| hasher.hash(user)),
        subject: None,
        detail: String::new(),
    };
    let (mut line, subject, detail) = match record {
        Record::Api(api) => (
            line(
                api.at,
                api.kind.as_str(),
                api.room.as_deref(),
                api.user.as_deref(),
            ),
            api.subject.clone(),
            api.detail.clone(),
        ),
        Record::Hub { event, at } => match event {
            Event::Joined {
                room,
                peer,
                user,
                members,
            } => (
                line(*at, "join", Some(room.as_str()), Some(user)),
                Some(peer.as_str().to_owned()),
                json!({ "members": members }),
            ),
            Event::Left {
                room,
                peer,
                user,
                reason,
                members,
            } => {
                let kind = match reason {
                    PeerLeftReason::Kicked => "kick",
                    _ => "leave",
                };
                (
                    line(*at, kind, Some(room.as_str()), Some(user)),
                    Some(peer.as_str().to_owned()),
                    json!({ "reason": reason.as_str(), "members": members }),
                )
            }
            // The session ids stay out: a session id is what a resume presents.
            Event::Replaced { room, user, .. } => (
                line(*at, "replace", Some(room.as_str()), Some(user)),
                None,
                Value::Null,
            ),
            Event::ModeChanged { room, mode } => (
                line(*at, "mode_changed", Some(room.as_str()), None),
                None,
                json!({ "mode": mode }),
            ),
            Event::MediaChanged {
                room,
                media_mode,
                media,
            } => (
                line(*at, "call_media_changed", Some(room.as_str()), None),
                None,
                json!({ "media_mode": media_mode, "media": media }),
            ),
            Event::Knocked {
                room, ticket, user, ..
            } => (
                line(*at, "knock", Some(room.as_str()), Some(user)),
                Some(ticket.as_str().to_owned()),
                Value::Null,
            ),
            Event::KnockEnded {
                room,
                ticket,
                outcome,
                by,
            } => {
                let kind = match outcome {
                    KnockEnd::Admitted => "admit",
                    KnockEnd::Denied => "deny",
                    _ => "knock_ended",
                };
                (
                    line(*at, kind, Some(room.as_str()), None),
                    Some(ticket.as_str().to_owned()),
                    json!({ "outcome": outcome.as_str(), "by": by.as_ref().map(|p| p.as_str()) }),
                )
            }
            _ => return None,
        },
    };
    line.subject = subject;
    line.detail = match detail {
        Value::Null => String::new(),
        detail => detail.to_string(),
    };
    Some(line)
}

/// Largest page of `GET /v1/audit`.
const MAX_PAGE: u32 = 500;

/// `GET /v1/audit` filters and paging; every filter is optional.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Only this room's lines.
    #[serde(default)]
    #[param(max_length = 64)]
    pub room: Option<String>,
    /// Only lines of this kind (`join`, `leave`, `kick`, `login_failed`, ...; docs/api.md).
    #[serde(default)]
    #[param(max_length = 32)]
    pub kind: Option<String>,
    /// Only lines at or after this time, Unix seconds.
    #[serde(default)]
    #[param(minimum = 0)]
    pub since: Option<u32>,
    /// Only lines before this time, Unix seconds.
    #[serde(default)]
    #[param(minimum = 0)]
    pub until: Option<u32>,
    /// The `next` of the previous page.
    #[serde(default)]
    #[param(minimum = 1)]
    pub before: Option<u64>,
    /// Lines per page, 1 to 500 (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// One line of the audit log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditLine {
    /// Increases with each line; pages are cut by it.
    pub id: i64,
    /// When it happened, Unix seconds.
    pub at: i64,
    /// What happened.
    pub kind: String,
    /// The room, if any.
    pub room: Option<String>,
    /// A keyed hash of the user who acted or was acted on (the same as in the server's logs).
    pub actor: Option<String>,
    /// What it happened to: a peer id, a knock's ticket, a share code's id, a guest's id.
    pub subject: Option<String>,
    /// Details: a reason, a mode, a count.
    #[schema(value_type = Object)]
    pub detail: Value,
}

impl From<AuditEntry> for AuditLine {
    fn from(entry: AuditEntry) -> Self {
        AuditLine {
            id: entry.id,
            at: seconds(entry.at),
            kind: entry.kind,
            room: entry.room_id,
            actor: entry.actor,
            subject: entry.subject,
            detail: serde_json::from_str(&entry.detail).unwrap_or_else(|_| json!({})),
        }
    }
}

/// A page of the audit log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// Lines, newest first.
    pub lines: Vec<AuditLine>,
    /// Where the next (older) page starts (its `before`); null on the last page.
    pub next: Option<i64>,
}

/// The audit log, newest first (admin grant only).
#[utoipa::path(
    get, path = "/v1/audit", tag = "admin",
    security(("bearer" = [])),
    params(AuditFilter),
    responses(
        (status = 200, description = "A page of the audit log", body = AuditPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    )
)]
async fn list(
    State(control): State<Control>,
    caller: Caller,
    QueryParams(filter): QueryParams<AuditFilter>,
) -> Result<Json<AuditPage>, Refused> {
    let limit = filter.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(SignalError::invalid(format!("`limit` must be 1 to {MAX_PAGE}")).into());
    }
    // The bounds the document declares, so a filter never silently matches nothing.
    let too_long =
        |value: &Option<String>, max: usize| value.as_ref().is_some_and(|v| v.len() > max);
    if too_long(&filter.room, 64) || too_long(&filter.kind, 32) || filter.before == Some(0) {
        return Err(SignalError::invalid(
            "`room` is at most 64 bytes, `kind` at most 32, `before` at least 1",
        )
        .into());
    }
    if !control.is_admin(&caller).await? {
        return Err(SignalError::Forbidden("the audit log needs the admin grant".into()).into());
    }
    let ms = |s: Option<u32>| s.map(|s| i64::from(s) * 1000);
    let query = AuditQuery {
        room_id: filter.room,
        kind: filter.kind,
        since: ms(filter.since),
        until: ms(filter.until),
        before: filter
            .before
            .map(|id| i64::try_from(id).unwrap_or(i64::MAX)),
        // One more than asked tells whether there is a next page.
        limit: limit + 1,
    };
    let mut entries = control.store().audit(&query).await?;
    let next = (entries.len() > limit as usize).then(|| {
        entries.truncate(limit as usize);
        entries.last().map_or(0, |entry| entry.id)
    });
    Ok(Json(AuditPage {
        lines: entries.into_iter().map(AuditLine::from).collect(),
        next,
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchboard_protocol::{PeerId, RoomId};

    use super::*;
    use crate::journal::{ApiKind, ApiRecord};

    #[test]
    fn a_kick_is_kept_with_the_user_hashed() {
        let hasher = UserHasher::new(b"a secret of the server");
        let event = Event::Left {
            room: RoomId::parse("r1").unwrap(),
            peer: PeerId::parse("p1").unwrap(),
            user: Arc::from("alice"),
            reason: PeerLeftReason::Kicked,
            members: 1,
        };
        let line = entry(&Record::Hub { event, at: 5 }, &hasher).unwrap();
        assert_eq!(line.kind, "kick");
        assert_eq!(line.room_id.as_deref(), Some("r1"));
        assert_eq!(line.subject.as_deref(), Some("p1"));
        let actor = line.actor.unwrap();
        assert_eq!(actor, hasher.hash("alice"));
        assert!(!actor.contains("alice"));
        assert_ne!(actor, UserHasher::new(b"another secret").hash("alice"));
        let detail: Value = serde_json::from_str(&line.detail).unwrap();
        assert_eq!(detail, json!({"reason": "kicked", "members": 1}));
    }

    #[test]
    fn api_actions_are_kept_and_relays_are_not() {
        let hasher = UserHasher::new(b"k");
        let failed = ApiRecord {
            at: 9,
            kind: ApiKind::LoginFailed,
            room: None,
            user: None,
            subject: None,
            detail: Value::Null,
        };
        let line = entry(&Record::Api(failed), &hasher).unwrap();
        assert_eq!(
            (line.kind.as_str(), line.at, line.actor),
            ("login_failed", 9, None)
        );
        assert_eq!(line.detail, "");
        let relay = Event::Relayed {
            kind: "offer",
            recipients: 1,
        };
        assert_eq!(
            entry(
                &Record::Hub {
                    event: relay,
                    at: 0
                },
                &hasher
            ),
            None
        );
    }
}
