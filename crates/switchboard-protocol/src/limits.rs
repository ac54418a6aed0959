//! Size limits every transport enforces, announced to clients in `hello.payload.limits`.

use serde::{Deserialize, Serialize};

/// Byte limits on client messages. The defaults fit real calls (a multi-track SDP is 5-20 KB) with
/// room to spare, and keep one frame's worst-case cost small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest client frame (one WebSocket text frame, or one message of a POST), in bytes.
    pub max_frame_bytes: usize,
    /// Largest `payload.sdp` of an `offer` or `answer`, in bytes.
    pub max_sdp_bytes: usize,
    /// Largest `payload.candidate` of a `candidate`, in bytes.
    pub max_candidate_bytes: usize,
    /// Largest `join.payload.meta`, as encoded JSON, in bytes.
    pub max_meta_bytes: usize,
    /// Largest `message.payload`, as encoded JSON, in bytes.
    pub max_message_bytes: usize,
    /// Largest correlation `id`, `call_id` and `reason` string, in bytes.
    pub max_token_bytes: usize,
    /// How far a client's `ts` may be from server time, in milliseconds.
    pub ts_skew_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 64 * 1024,
            max_sdp_bytes: 48 * 1024,
            max_candidate_bytes: 1024,
            max_meta_bytes: 2 * 1024,
            max_message_bytes: 16 * 1024,
            max_token_bytes: 128,
            ts_skew_ms: 60_000,
        }
    }
}
