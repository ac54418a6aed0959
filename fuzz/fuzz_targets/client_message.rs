//! One client message, as a WebSocket text frame or a posted body carries it: the parser either
//! takes it or refuses it with an error, within the limits, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_protocol::{Limits, parse_client_message};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Small limits too, so that every limit is reached by short inputs.
    for limits in [Limits::default(), small()] {
        if parse_client_message(text, &limits).is_ok() {
            assert!(
                text.len() <= limits.max_frame_bytes,
                "a frame over the limit was taken"
            );
        }
    }
});

fn small() -> Limits {
    Limits {
        max_frame_bytes: 1024,
        max_sdp_bytes: 64,
        max_candidate_bytes: 32,
        max_meta_bytes: 16,
        max_message_bytes: 64,
        ..Limits::default()
    }
}
