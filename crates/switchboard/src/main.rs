//! The `switchboard` binary: parses arguments and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

/// Every relayed message is kept, as one allocation per recipient, until the client acknowledges
/// it, and a client's acknowledgement frees dozens at once: glibc's allocator handles those bursts
/// with more work and worse locality than jemalloc's per-size slabs, and holds more memory per
/// idle session (docs/benchmarks.md, round nine).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    switchboard::cli::Cli::parse().run()
}
