//! The tokio runtime `switchboard serve` runs on: one worker thread per CPU the process may use,
//! and tokio's single-threaded scheduler when that is one CPU.
//!
//! A multi-threaded runtime with a single worker still pays for what several workers need (its
//! run queue is shared through atomics, every poll batch is timed for work stealing), about 8% of
//! the instructions a WebSocket relay costs (`docs/benchmarks.md`); the current-thread scheduler
//! does the same work without it. A node given one core (a container
//! with a one-CPU quota, `taskset`) gets it without being told.

use std::{io, num::NonZeroUsize};

use tokio::runtime::{Builder, Runtime};

/// The runtime for `configured` worker threads, or one per CPU the process may use when unset.
/// Logged as `server.runtime`.
pub fn build(configured: Option<NonZeroUsize>) -> io::Result<Runtime> {
    // available_parallelism honours the CPU affinity mask and cgroup CPU quotas.
    let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let workers = configured.map_or(cpus, NonZeroUsize::get);
    let single = workers == 1;
    let scheduler = if single {
        "current_thread"
    } else {
        "multi_thread"
    };
    tracing::info!(
        event = "server.runtime",
        workers,
        cpus,
        scheduler,
        "{workers} worker thread(s), {scheduler} scheduler ({cpus} CPU(s) available)"
    );
    let mut builder = if single {
        Builder::new_current_thread()
    } else {
        let mut b = Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    builder.enable_all().build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worker_runs_on_the_current_thread_scheduler() {
        let rt = build(NonZeroUsize::new(1)).unwrap();
        assert_eq!(
            rt.handle().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::CurrentThread
        );
        let rt = build(NonZeroUsize::new(3)).unwrap();
        assert_eq!(
            rt.handle().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::MultiThread
        );
        assert_eq!(rt.metrics().num_workers(), 3);
    }
}
