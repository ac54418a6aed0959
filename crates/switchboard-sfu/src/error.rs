//! SfuError: why the SFU refused a peer's message, mapped onto the protocol's error codes.

use switchboard_protocol::ErrorCode;

/// A refusal sent back to the peer as an `error` message; the peer's session and media go on
/// unless the variant says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SfuError {
    /// The SDP or candidate does not parse or cannot be applied.
    #[error("{0}")]
    BadSdp(String),
    /// A published m-line offers no codec the SFU forwards.
    #[error("{0}")]
    UnsupportedCodec(String),
    /// Over the m-line or published-track limit.
    #[error("{0}")]
    TooManyTracks(String),
    /// A subscription names a track the room does not have.
    #[error("no track `{0}` in this room")]
    UnknownTrack(String),
    /// Muting another member's track without being a host, or unmuting it.
    #[error("{0}")]
    Forbidden(String),
    /// The participant's media connection failed and was dropped; a new offer starts again.
    #[error("{0}")]
    MediaFailed(String),
}

impl SfuError {
    /// The documented code.
    pub fn code(&self) -> ErrorCode {
        match self {
            SfuError::BadSdp(_) => ErrorCode::BadSdp,
            SfuError::UnsupportedCodec(_) => ErrorCode::UnsupportedCodec,
            SfuError::TooManyTracks(_) => ErrorCode::TooManyTracks,
            SfuError::UnknownTrack(_) => ErrorCode::UnknownTrack,
            SfuError::Forbidden(_) => ErrorCode::Forbidden,
            SfuError::MediaFailed(_) => ErrorCode::MediaUnavailable,
        }
    }
}
