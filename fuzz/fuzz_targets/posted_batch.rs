//! A posted body holding a JSON array of client messages: the batch splitter hands back each
//! element as a slice of the body, in order, and each goes through the one parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_protocol::{Limits, parse_client_message, split_batch};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parts) = split_batch(text) else {
        return;
    };
    let base = text.as_ptr() as usize;
    let mut after = 0;
    for part in parts {
        // Each element is a piece of the body, past the one before it.
        let at = part.as_ptr() as usize - base;
        assert!(
            at >= after && at + part.len() <= text.len(),
            "an element outside the body"
        );
        after = at + part.len();
        let _ = parse_client_message(part, &Limits::default());
    }
});
