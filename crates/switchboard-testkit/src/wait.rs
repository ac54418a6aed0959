//! Waiting, bounded: for something that must happen, never for proving that something did not
//! (that is the ping barrier's job).

use std::fmt::Debug;

use tokio::time::{Duration, Instant, sleep};

use crate::DEADLINE;

/// How long [`eventually`] waits between two looks.
const POLL: Duration = Duration::from_millis(10);

/// Runs `probe` until it gives `Ok`, at most until [`DEADLINE`]; then fails the test, saying
/// `what` was awaited and what the last look found.
pub async fn eventually<T, E: Debug, F: Future<Output = Result<T, E>>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let until = Instant::now() + DEADLINE;
    loop {
        let last = match probe().await {
            Ok(value) => return value,
            Err(last) => last,
        };
        assert!(
            Instant::now() < until,
            "{what}: not within {DEADLINE:?}; last seen: {last:?}"
        );
        sleep(POLL).await;
    }
}
