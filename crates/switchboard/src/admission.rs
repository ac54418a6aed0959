//! Admission control in front of the hub: the per-address budget for new sessions and tokens, and
//! the cap on open client streams. Both refuse with a clear HTTP error instead of letting a flood
//! or a full server turn into a crash.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use switchboard_core::{Rate, TokenBucket};
use switchboard_protocol::SignalError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{
    config::Config,
    error::{ApiError, TooManyRequests},
};

/// See the module documentation.
pub struct Admission {
    rate: Rate,
    /// Buckets of addresses seen recently; full ones are forgotten by [`Admission::prune`].
    by_address: Mutex<HashMap<IpAddr, TokenBucket>>,
    connections: Arc<Semaphore>,
    max_connections: usize,
}

impl Admission {
    /// Limits from `config`.
    pub fn new(config: &Config) -> Self {
        let max_connections = crate::open_files::max_connections(config.max_connections);
        Admission {
            rate: config.rate_limits.sessions_per_address(),
            by_address: Mutex::new(HashMap::new()),
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
        let Some(address) = address.filter(|_| self.rate.is_on()) else {
            return Ok(());
        };
        let mut buckets = self.by_address.lock();
        let bucket = buckets
            .entry(address)
            .or_insert_with(|| TokenBucket::new(self.rate, now));
        if bucket.try_take(self.rate, now) {
            return Ok(());
        }
        let retry_after = bucket.wait(self.rate, now).max(Duration::from_secs(1));
        drop(buckets);
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
        self.by_address
            .lock()
            .retain(|_, b| !b.is_full(self.rate, now));
    }
}
