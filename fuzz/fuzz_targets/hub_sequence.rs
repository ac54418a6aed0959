//! The hub driven by any sequence of operations (sessions opening and closing, joins, leaves,
//! relays, mode changes, kicks, clients that stop reading, lost transports, resumes, clock jumps),
//! the simulation's invariants checked after each: no message delivered twice or outside its room
//! and target, every session's seq rising by exactly one, each client's view of its rooms matching
//! the others' and the hub's counts, and everyone told at shutdown.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchboard_core::fuzz_sequence(data));
