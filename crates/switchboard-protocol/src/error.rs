//! The fixed list of error codes and the one error type every layer maps onto them.
//!
//! Codes are part of the contract: clients branch on them, so a variant's code never changes.
//! Messages are for humans and carry no internals.

use serde::{Deserialize, Serialize};

use crate::{PeerId, RoomId};

/// A documented error code, as sent in `error.payload.code` and in HTTP error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not a well-formed message (bad JSON, missing or mistyped field, bad id syntax).
    InvalidMessage,
    /// `type` names no client message.
    UnknownType,
    /// The frame or one of its fields is over its documented limit.
    PayloadTooLarge,
    /// HTTP: a request's body did not arrive in full within the server's `body_timeout_ms`.
    RequestTimeout,
    /// Missing, malformed, expired or wrongly signed token.
    Unauthorized,
    /// Authenticated, but not allowed: outside the room grant, guest in `host_only`, host-only action.
    Forbidden,
    /// The message names a room the session has not joined.
    NotInRoom,
    /// `to` (or a kick target) is not a member of the room.
    UnknownPeer,
    /// The room already holds `max_peers` members.
    RoomFull,
    /// A rate budget is spent; the message was dropped.
    RateLimited,
    /// `seq` is not above the last accepted client `seq`; the message was dropped.
    DuplicateSeq,
    /// `ts` is outside the accepted clock skew window.
    StaleTs,
    /// The session to resume is gone (resume window passed, or messages it needs were released).
    SessionExpired,
    /// The requested peer id is already used by another member of the room.
    PeerTaken,
    /// An unknown session or route.
    NotFound,
    /// What the request would make exists already (a taken username or room id).
    Conflict,
    /// The server cannot take more sessions right now.
    Unavailable,
    /// A bug or an unavailable dependency on the server; details are only in the server's log.
    Internal,
    /// SFU rooms: an `offer`/`answer`/`candidate` to `sfu` the SFU cannot parse or apply.
    BadSdp,
    /// SFU rooms: a published m-line offers no codec the SFU forwards (Opus, VP8).
    UnsupportedCodec,
    /// SFU rooms: over the limit of m-lines in one offer or of published tracks per participant.
    TooManyTracks,
    /// SFU rooms: a `subscribe` names a track the room does not have.
    UnknownTrack,
    /// SFU rooms: the media server is not running, is busy, or dropped this participant's media
    /// connection; send a new offer to start again.
    MediaUnavailable,
}

impl ErrorCode {
    /// Every code, in documentation order.
    pub const ALL: [ErrorCode; 23] = [
        ErrorCode::InvalidMessage,
        ErrorCode::UnknownType,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RequestTimeout,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotInRoom,
        ErrorCode::UnknownPeer,
        ErrorCode::RoomFull,
        ErrorCode::RateLimited,
        ErrorCode::DuplicateSeq,
        ErrorCode::StaleTs,
        ErrorCode::SessionExpired,
        ErrorCode::PeerTaken,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
        ErrorCode::BadSdp,
        ErrorCode::UnsupportedCodec,
        ErrorCode::TooManyTracks,
        ErrorCode::UnknownTrack,
        ErrorCode::MediaUnavailable,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotInRoom => "not_in_room",
            ErrorCode::UnknownPeer => "unknown_peer",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::DuplicateSeq => "duplicate_seq",
            ErrorCode::StaleTs => "stale_ts",
            ErrorCode::SessionExpired => "session_expired",
            ErrorCode::PeerTaken => "peer_taken",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::BadSdp => "bad_sdp",
            ErrorCode::UnsupportedCodec => "unsupported_codec",
            ErrorCode::TooManyTracks => "too_many_tracks",
            ErrorCode::UnknownTrack => "unknown_track",
            ErrorCode::MediaUnavailable => "media_unavailable",
        }
    }

    /// The HTTP status used when this code answers an HTTP request.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidMessage
            | ErrorCode::UnknownType
            | ErrorCode::BadSdp
            | ErrorCode::UnsupportedCodec => 400,
            ErrorCode::TooManyTracks => 409,
            ErrorCode::UnknownTrack => 404,
            ErrorCode::MediaUnavailable => 503,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotInRoom | ErrorCode::UnknownPeer | ErrorCode::NotFound => 404,
            ErrorCode::RoomFull
            | ErrorCode::PeerTaken
            | ErrorCode::DuplicateSeq
            | ErrorCode::Conflict => 409,
            ErrorCode::StaleTs => 422,
            ErrorCode::RateLimited => 429,
            ErrorCode::SessionExpired => 410,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a message or request was refused. Every variant maps to exactly one [`ErrorCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// See [`ErrorCode::InvalidMessage`].
    #[error("{0}")]
    InvalidMessage(String),
    /// See [`ErrorCode::UnknownType`].
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    /// See [`ErrorCode::PayloadTooLarge`].
    #[error("{what} is {size} bytes, over the limit of {limit}")]
    PayloadTooLarge {
        /// Which part of the message is too large.
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// See [`ErrorCode::RequestTimeout`].
    #[error("the request body did not arrive within {timeout_ms} ms")]
    RequestTimeout {
        /// The server's `body_timeout_ms`.
        timeout_ms: u64,
    },
    /// See [`ErrorCode::Unauthorized`].
    #[error("{0}")]
    Unauthorized(String),
    /// See [`ErrorCode::Forbidden`].
    #[error("{0}")]
    Forbidden(String),
    /// See [`ErrorCode::NotInRoom`].
    #[error("not a member of room `{0}`")]
    NotInRoom(RoomId),
    /// See [`ErrorCode::UnknownPeer`].
    #[error("no peer `{peer}` in room `{room}`")]
    UnknownPeer {
        /// The room searched.
        room: RoomId,
        /// The peer not found.
        peer: PeerId,
    },
    /// See [`ErrorCode::RoomFull`].
    #[error("room `{room}` is full ({max} peers)")]
    RoomFull {
        /// The full room.
        room: RoomId,
        /// Its capacity.
        max: usize,
    },
    /// See [`ErrorCode::RateLimited`].
    #[error("{0}")]
    RateLimited(String),
    /// See [`ErrorCode::DuplicateSeq`].
    #[error("seq {seq} is not above the last accepted seq {last}")]
    DuplicateSeq {
        /// The refused seq.
        seq: u64,
        /// The last accepted seq of the session.
        last: u64,
    },
    /// See [`ErrorCode::StaleTs`].
    #[error("ts is {skew_ms} ms away from server time; the window is {window_ms} ms")]
    StaleTs {
        /// Distance from server time.
        skew_ms: u64,
        /// The accepted window.
        window_ms: u64,
    },
    /// See [`ErrorCode::SessionExpired`].
    #[error("{0}")]
    SessionExpired(String),
    /// See [`ErrorCode::PeerTaken`].
    #[error("peer id `{0}` is taken in this room")]
    PeerTaken(PeerId),
    /// See [`ErrorCode::NotFound`].
    #[error("{0}")]
    NotFound(String),
    /// See [`ErrorCode::Conflict`].
    #[error("{0}")]
    Conflict(String),
    /// See [`ErrorCode::Unavailable`].
    #[error("{0}")]
    Unavailable(String),
    /// See [`ErrorCode::MediaUnavailable`].
    #[error("{0}")]
    MediaUnavailable(String),
    /// See [`ErrorCode::Internal`]. The detail stays in the server's log.
    #[error("internal error")]
    Internal,
}

impl SignalError {
    /// The documented code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            SignalError::InvalidMessage(_) => ErrorCode::InvalidMessage,
            SignalError::UnknownType(_) => ErrorCode::UnknownType,
            SignalError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            SignalError::RequestTimeout { .. } => ErrorCode::RequestTimeout,
            SignalError::Unauthorized(_) => ErrorCode::Unauthorized,
            SignalError::Forbidden(_) => ErrorCode::Forbidden,
            SignalError::NotInRoom(_) => ErrorCode::NotInRoom,
            SignalError::UnknownPeer { .. } => ErrorCode::UnknownPeer,
            SignalError::RoomFull { .. } => ErrorCode::RoomFull,
            SignalError::RateLimited(_) => ErrorCode::RateLimited,
            SignalError::DuplicateSeq { .. } => ErrorCode::DuplicateSeq,
            SignalError::StaleTs { .. } => ErrorCode::StaleTs,
            SignalError::SessionExpired(_) => ErrorCode::SessionExpired,
            SignalError::PeerTaken(_) => ErrorCode::PeerTaken,
            SignalError::NotFound(_) => ErrorCode::NotFound,
            SignalError::Conflict(_) => ErrorCode::Conflict,
            SignalError::Unavailable(_) => ErrorCode::Unavailable,
            SignalError::MediaUnavailable(_) => ErrorCode::MediaUnavailable,
            SignalError::Internal => ErrorCode::Internal,
        }
    }

    /// Shorthand for [`SignalError::InvalidMessage`].
    pub fn invalid(message: impl Into<String>) -> Self {
        SignalError::InvalidMessage(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_documented_strings() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json).unwrap();
            assert_eq!(back, code);
        }
    }

    #[test]
    fn contract_minimum_codes_exist() {
        let names: Vec<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        for required in [
            "invalid_message",
            "unknown_type",
            "payload_too_large",
            "unauthorized",
            "forbidden",
            "not_in_room",
            "unknown_peer",
            "room_full",
            "rate_limited",
            "duplicate_seq",
            "stale_ts",
            "session_expired",
            "internal",
        ] {
            assert!(names.contains(&required), "{required} missing");
        }
    }
}

#[cfg(test)]
mod docs_tests {
    use super::ErrorCode;

    /// Every code the server can send is documented for client authors.
    #[test]
    fn protocol_doc_lists_every_code() {
        let doc = include_str!("../../../docs/protocol.md");
        for code in ErrorCode::ALL {
            assert!(
                doc.contains(&format!("`{}`", code.as_str())),
                "docs/protocol.md does not document `{code}`"
            );
        }
    }
}
