//! Which journal records are webhook events, and what their bodies say: the Standard Webhooks
//! shape `{"type", "timestamp", "data"}`, with the room in `data` and as the delivery's stream (a
//! room's events reach each receiver in the order they happened).
//!
//! Bodies carry user ids as they are (the receiver is the product's own backend, which knows its
//! users); only the audit log hashes them.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};
use switchboard_core::{Event, RoomEnd};

use super::settings::WebhookEvent;
use crate::journal::{ApiKind, Record};

/// One event, before it is queued for each receiver that wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// Its type.
    pub kind: WebhookEvent,
    /// The room it happened in: the delivery stream.
    pub room: String,
    /// The body, as signed and sent.
    pub body: String,
}

/// The webhook event `record` is, if any.
pub fn outgoing(record: &Record) -> Option<Outgoing> {
    let (kind, at, data) = match record {
        Record::Hub { event, at } => {
            let (kind, data) = hub_event(event)?;
            (kind, *at, data)
        }
        Record::Api(api) if api.kind == ApiKind::InviteRedeemed => {
            let mut data = api.detail.clone();
            data["room"] = api.room.clone().into();
            data["invite"] = api.subject.clone().into();
            // The audit line hashes the guest's id; the product's backend gets it as it is.
            data["guest"] = api.user.clone().into();
            (WebhookEvent::InviteRedeemed, api.at, data)
        }
        Record::Api(_) => return None,
    };
    let room = data["room"].as_str()?.to_owned();
    let timestamp = UNIX_EPOCH + Duration::from_millis(u64::try_from(at).unwrap_or(0));
    let body = json!({
        "type": kind.as_str(),
        "timestamp": humantime::format_rfc3339_millis(timestamp).to_string(),
        "data": data,
    });
    Some(Outgoing {
        kind,
        room,
        body: body.to_string(),
    })
}

fn hub_event(event: &Event) -> Option<(WebhookEvent, Value)> {
    Some(match event {
        Event::RoomOpened { room } => (WebhookEvent::RoomStarted, json!({ "room": room.as_str() })),
        Event::RoomClosed { room, reason } => {
            let reason = match reason {
                RoomEnd::Empty => "empty",
                RoomEnd::Closed(reason) => reason.as_str(),
            };
            let data = json!({ "room": room.as_str(), "reason": reason });
            (WebhookEvent::RoomFinished, data)
        }
        Event::Joined {
            room,
            peer,
            user,
            members,
        } => {
            let data = json!({
                "room": room.as_str(), "peer": peer.as_str(), "user": &**user, "members": members,
            });
            (WebhookEvent::ParticipantJoined, data)
        }
        Event::Left {
            room,
            peer,
            user,
            reason,
            members,
        } => {
            let data = json!({
                "room": room.as_str(), "peer": peer.as_str(), "user": &**user,
                "reason": reason.as_str(), "members": members,
            });
            (WebhookEvent::ParticipantLeft, data)
        }
        Event::Knocked {
            room,
            ticket,
            user,
            name,
        } => {
            let data = json!({
                "room": room.as_str(), "ticket": ticket.as_str(), "user": &**user, "name": name,
            });
            (WebhookEvent::Knock, data)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchboard_protocol::{PeerId, PeerLeftReason, RoomId};

    use super::*;
    use crate::journal::ApiRecord;

    #[test]
    fn a_leave_is_participant_left_with_its_reason_in_the_rooms_stream() {
        let event = Event::Left {
            room: RoomId::parse("r1").unwrap(),
            peer: PeerId::parse("p1").unwrap(),
            user: Arc::from("alice"),
            reason: PeerLeftReason::Kicked,
            members: 2,
        };
        let out = outgoing(&Record::Hub {
            event,
            at: 1_800_000_000_123,
        })
        .unwrap();
        assert_eq!(
            (out.kind, out.room.as_str()),
            (WebhookEvent::ParticipantLeft, "r1")
        );
        let body: Value = serde_json::from_str(&out.body).unwrap();
        assert_eq!(
            body,
            json!({
                "type": "participant_left",
                "timestamp": "2027-01-15T08:00:00.123Z",
                "data": {"room": "r1", "peer": "p1", "user": "alice", "reason": "kicked", "members": 2},
            })
        );
    }

    #[test]
    fn a_redeemed_invite_is_an_event_and_other_api_actions_are_not() {
        let mut record = ApiRecord {
            at: 0,
            kind: ApiKind::InviteRedeemed,
            room: Some("r1".into()),
            user: Some("g1".into()),
            subject: Some("inv_1".into()),
            detail: json!({"role": "guest", "lobby": false}),
        };
        let out = outgoing(&Record::Api(record.clone())).unwrap();
        let body: Value = serde_json::from_str(&out.body).unwrap();
        assert_eq!(
            body["data"],
            json!({"room": "r1", "invite": "inv_1", "guest": "g1", "role": "guest", "lobby": false})
        );
        record.kind = ApiKind::InviteCreated;
        assert_eq!(outgoing(&Record::Api(record)), None);
        let relay = Event::Relayed {
            kind: "offer",
            recipients: 1,
        };
        assert_eq!(
            outgoing(&Record::Hub {
                event: relay,
                at: 0
            }),
            None
        );
    }
}
