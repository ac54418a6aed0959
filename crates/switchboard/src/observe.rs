//! Turns core events into structured log lines with stable event names.
//!
//! User ids never appear raw: they are replaced by a keyed hash (HMAC-SHA256 with a key derived
//! from the server secret, first 12 hex digits), stable within a deployment so one user's lines can
//! be followed, but not reversible without the secret. Tokens, SDP and candidates are never logged.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_core::Event;

/// Derives user hashes for logs.
#[derive(Clone)]
pub struct UserHasher {
    key: Vec<u8>,
}

impl UserHasher {
    /// A hasher keyed from the server secret (never the secret itself, so a leaked log key is not a
    /// signing key).
    pub fn new(secret: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"switchboard log user hash v1");
        UserHasher {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    /// The log form of `user`.
    pub fn hash(&self, user: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(user.as_bytes());
        let digest = mac.finalize().into_bytes();
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Writes one log line for `event`.
pub fn log_event(hasher: &UserHasher, event: &Event) {
    match event {
        Event::SessionOpened { session, user } => {
            tracing::info!(event = "session.opened", %session, user = %hasher.hash(user), "session opened")
        }
        Event::SessionResumed {
            session,
            user,
            replayed,
        } => tracing::info!(
            event = "session.resumed",
            %session,
            user = %hasher.hash(user),
            replayed,
            "session resumed"
        ),
        Event::ResumeFailed { code } => {
            tracing::info!(event = "session.resume_failed", code = %code, "resume refused")
        }
        Event::SessionDetached { session, reason } => tracing::info!(
            event = "session.detached",
            %session,
            reason = reason.as_str(),
            "transport lost; waiting for resume"
        ),
        Event::SessionClosed {
            session,
            user,
            reason,
        } => tracing::info!(
            event = "session.closed",
            %session,
            user = %hasher.hash(user),
            reason = reason.as_str(),
            "session closed"
        ),
        Event::Joined {
            room,
            peer,
            user,
            members,
        } => tracing::info!(
            event = "room.join",
            %room,
            %peer,
            user = %hasher.hash(user),
            members,
            "joined room"
        ),
        Event::Left {
            room,
            peer,
            user,
            reason,
            members,
        } => tracing::info!(
            event = "room.leave",
            %room,
            %peer,
            user = %hasher.hash(user),
            reason = reason.as_str(),
            members,
            "left room"
        ),
        Event::Replaced {
            room,
            user,
            old,
            new,
        } => tracing::info!(
            event = "session.replaced",
            %room,
            user = %hasher.hash(user),
            old = %old,
            new = %new,
            "newer session took over"
        ),
        Event::RoomOpened { room } => {
            tracing::debug!(event = "room.opened", %room, "room opened")
        }
        Event::RoomClosed { room, reason } => {
            tracing::info!(event = "room.closed", %room, reason = reason.as_str(), "room closed")
        }
        Event::ModeChanged { room, mode } => {
            tracing::info!(event = "room.mode", %room, mode = ?mode, "mode changed")
        }
        Event::MediaChanged {
            room,
            media_mode,
            media,
        } => tracing::info!(
            event = "room.media",
            %room,
            media_mode = ?media_mode,
            media = ?media,
            "media changed"
        ),
        Event::Knocked {
            room, ticket, user, ..
        } => tracing::info!(
            event = "lobby.knock",
            %room,
            %ticket,
            user = %hasher.hash(user),
            "a guest knocked"
        ),
        Event::KnockEnded {
            room,
            ticket,
            outcome,
            by,
        } => tracing::info!(
            event = "lobby.knock_ended",
            %room,
            %ticket,
            outcome = outcome.as_str(),
            by = by.as_ref().map(|p| p.as_str()),
            "a knock ended"
        ),
        Event::Relayed { kind, recipients } => {
            tracing::debug!(event = relay_event(kind), recipients, "relayed")
        }
        Event::RateLimited {
            scope,
            session,
            warned: true,
        } => {
            tracing::info!(event = "rate.limited", scope = scope.as_str(), %session, "messages dropped over budget")
        }
        Event::Received { .. } | Event::RateLimited { .. } => {}
        Event::Rejected { code } => {
            tracing::debug!(event = "message.rejected", code = %code, "message rejected")
        }
    }
}

pub(crate) fn relay_event(kind: &str) -> &'static str {
    match kind {
        "offer" => "relay.offer",
        "answer" => "relay.answer",
        "candidate" => "relay.candidate",
        "call_start" => "relay.call_start",
        "call_end" => "relay.call_end",
        _ => "relay.message",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_hash_is_stable_keyed_and_short() {
        let a = UserHasher::new(b"secret-a");
        let b = UserHasher::new(b"secret-b");
        assert_eq!(a.hash("alice"), a.hash("alice"));
        assert_ne!(a.hash("alice"), a.hash("bob"));
        assert_ne!(a.hash("alice"), b.hash("alice"));
        assert_eq!(a.hash("alice").len(), 12);
        assert!(!a.hash("alice").contains("alice"));
    }
}
