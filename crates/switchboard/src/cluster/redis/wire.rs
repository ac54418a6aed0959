//! What goes over the wire to Redis besides the scripts themselves: the pub/sub channel names,
//! the doorbell payload `commit.lua` publishes, and a write's arguments to `commit.lua`.
//!
//! Each must match its Lua side byte for byte, so they are kept together and apart from the
//! connection handling.

use switchboard_core::{SessionId, SharedOp};

use crate::cluster::store::{
    Doorbell, KnockRecord, LogEntry, MemberRecord, Write, media_mode_name, mode_name,
};

/// The channel of `node`'s media inbox.
pub fn media_channel(prefix: &str, node: &str) -> String {
    format!("{prefix}:n:{{{node}}}:media")
}

/// The channel of `node`'s inbox.
pub fn inbox_channel(prefix: &str, node: &str) -> String {
    format!("{prefix}:n:{{{node}}}")
}

/// The cluster's channel of stored rooms made, changed or deleted
/// ([`Store::room_changed`](crate::cluster::store::Store::room_changed)).
pub fn policy_channel(prefix: &str) -> String {
    format!("{prefix}:policy")
}

/// A doorbell as `commit.lua` publishes it: `session\nposition\nkind\ntext`.
pub(super) fn parse_doorbell(payload: &str) -> Option<Doorbell> {
    let mut parts = payload.splitn(4, '\n');
    let session = SessionId::parse(parts.next()?)?;
    let position = parts.next()?.parse().ok()?;
    let kind = parts.next()?.to_owned();
    let text = parts.next()?.to_owned();
    Some(Doorbell {
        session,
        position,
        entry: LogEntry { kind, text },
    })
}

/// Appends `write` to a `commit.lua` call in the script's encoding.
pub(super) fn encode(call: &mut redis::ScriptInvocation<'_>, write: &Write) {
    match write {
        Write::Unlock { room, token } => {
            call.arg("U").arg(room.as_str()).arg(&**token);
        }
        Write::Released { session } => {
            call.arg("X").arg(session.as_str());
        }
        Write::Shared(op) => match op {
            SharedOp::Attached { session, user } => {
                call.arg("A").arg(session.as_str()).arg(&**user);
            }
            SharedOp::Ended { session } => {
                call.arg("E").arg(session.as_str());
            }
            SharedOp::Joined { room, member } => {
                call.arg("J")
                    .arg(room.as_str())
                    .arg(member.info.peer.as_str())
                    .arg(member.session.as_str())
                    .arg(MemberRecord::encode(member));
            }
            SharedOp::Left { room, peer } => {
                call.arg("L").arg(room.as_str()).arg(peer.as_str());
            }
            SharedOp::Mode { room, mode } => {
                call.arg("M").arg(room.as_str()).arg(mode_name(*mode));
            }
            SharedOp::MediaMode { room, media_mode } => {
                (call.arg("D").arg(room.as_str())).arg(media_mode_name(*media_mode));
            }
            SharedOp::Banned { room, user } => {
                call.arg("B").arg(room.as_str()).arg(&**user);
            }
            SharedOp::Forward { to, kind, text } => {
                call.arg("F").arg(to.as_str()).arg(*kind).arg(&**text);
            }
            SharedOp::Knocked { room, knock } => {
                // The room's knocks live as long as its latest, and a second more: a node that
                // dies leaves nothing behind for long.
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                let ttl = knock.expires_at.saturating_sub(now) + 1_000;
                call.arg("K")
                    .arg(room.as_str())
                    .arg(knock.ticket.as_str())
                    .arg(KnockRecord::encode(knock))
                    .arg(ttl);
            }
            SharedOp::KnockEnded { room, ticket } => {
                call.arg("G").arg(room.as_str()).arg(ticket.as_str());
            }
            SharedOp::ToHosts { room, kind, text } => {
                call.arg("H").arg(room.as_str()).arg(*kind).arg(&**text);
            }
            SharedOp::Logged {
                session,
                seq,
                inbound,
                kind,
                text,
                ..
            } => {
                call.arg("P")
                    .arg(session.as_str())
                    .arg(*seq)
                    .arg(*inbound)
                    .arg(*kind)
                    .arg(&**text);
            }
            SharedOp::Resumed {
                session,
                last_seq,
                inbound,
                hello,
                ..
            } => {
                call.arg("R")
                    .arg(session.as_str())
                    .arg(*last_seq)
                    .arg(*inbound)
                    .arg(&**hello);
            }
            SharedOp::ClientSeq {
                session,
                seq,
                active,
            } => {
                call.arg("C")
                    .arg(session.as_str())
                    .arg(*seq)
                    .arg(if *active { "1" } else { "0" });
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doorbells_parse_as_commit_lua_publishes_them() {
        let sid = "0123456789abcdefghijkl";
        let bell = parse_doorbell(&format!("{sid}\n7\noffer\n{{\"a\":\"x\\ny\"}}")).unwrap();
        assert_eq!(bell.session.as_str(), sid);
        assert_eq!(bell.position, 7);
        assert_eq!(bell.entry.kind, "offer");
        assert_eq!(bell.entry.text, "{\"a\":\"x\\ny\"}");
        assert!(parse_doorbell("short\n1\nx\ny").is_none());
        assert!(parse_doorbell(&format!("{sid}\nseven\nx\ny")).is_none());
    }
}
