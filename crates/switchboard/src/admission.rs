//! Admission control in front of the hub: the per-address budget for new sessions and tokens, and
//! the cap on open client streams. Both refuse with a clear HTTP error instead of letting a flood
//! or a full server turn into a crash.

use std::{
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use switchboard_core::KeyedBuckets;
use switchboard_protocol::SignalError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{
    config::Config,
    error::{ApiError, TooManyRequests},
};

/// See the module documentation.
pub struct Admission {
    /// Buckets of addresses seen recently; full ones are forgotten by [`Admission::prune`].
    by_address: Mutex<KeyedBuckets<IpAddr>>,
    connections: Arc<Semaphore>,
    max_connections: usize,
}

impl Admission {
    /// Limits from `config`.
    pub fn new(config: &Config) -> Self {
        let max_connections = crate::open_files::max_connections(config.max_connections);
        Admission {
            by_address: Mutex::new(KeyedBuckets::new(config.rate_limits.sessions_per_address())),
            connections: Arc::new(Semaphore::new(max_connections)),
            max_connections,
        }
    }

    /// Charges one new session or token to `address`: `Err` is a 429 with `Retry-After`.
    pub fn new_session(
        &self,
        address: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), TooManyRequests> {
        let Some(address) = address else {
            return Ok(());
        };
        let Err(wait) = self.by_address.lock().try_take(address, now) else {
            return Ok(());
        };
        let retry_after = wait.max(Duration::from_secs(1));
        tracing::info!(
            event = "rate.limited",
            scope = "address",
            "new sessions from one address over budget"
        );
        Err(TooManyRequests {
            error: SignalError::RateLimited(
                "too many new sessions from this address; retry later".into(),
            ),
            retry_after,
        })
    }

    /// A place among the open client streams, held until the stream ends.
    pub fn connection(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.connections.clone().try_acquire_owned().map_err(|_| {
            tracing::warn!(
                event = "server.full",
                max = self.max_connections,
                "connection refused: server full"
            );
            ApiError(SignalError::Unavailable(format!(
                "the server is full ({} connections); retry later",
                self.max_connections
            )))
        })
    }

    /// Forgets addresses whose budget is full again.
    pub fn prune(&self, now: Instant) {
        self.by_address.lock().prune(now);
    }
}
