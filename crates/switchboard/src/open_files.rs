//! The process's open-files limit (`RLIMIT_NOFILE`) and the `max_connections` it allows: every
//! client stream holds a socket, so a node whose cap is above its limit runs out of descriptors
//! before it can answer 503, and `accept(2)` fails instead.

use tokio::sync::Semaphore;

/// Descriptors kept out of `max_connections` whatever the limit: stdio and log files, the
/// runtime's epoll and wakers, the signal pipe, the listener and its spare (see
/// [`crate::listener`]), the identity provider's and the trace collector's connections. About a
/// dozen are in use; the rest is headroom.
const FIXED_RESERVE: u64 = 64;

/// A tenth of the limit is also kept out, for sockets that hold no `max_connections` place: plain
/// HTTP requests (`POST /v1/sessions`, posted messages, the token endpoint, the web app, health
/// checks, scrapes) and SSE and long-poll clients' keep-alive connections between requests.
const SHARE_RESERVE: u64 = 10;

/// `max_connections` when the limit is unknown or unlimited (no `getrlimit`, or `RLIM_INFINITY`).
const UNLIMITED_DEFAULT: usize = 10_000;

/// The `max_connections` an open-files limit of `open_files` leaves room for.
pub fn connection_cap(open_files: u64) -> usize {
    let reserve = FIXED_RESERVE + open_files / SHARE_RESERVE;
    usize::try_from(open_files.saturating_sub(reserve))
        .unwrap_or(usize::MAX)
        .min(Semaphore::MAX_PERMITS)
}

/// The cap on open client streams: `configured` if set, else what the open-files limit allows.
/// Logged as `server.fd_limit`, a warning when `configured` is above what the limit allows.
pub fn max_connections(configured: Option<usize>) -> usize {
    let Some(open_files) = soft_limit() else {
        return configured.unwrap_or(UNLIMITED_DEFAULT);
    };
    let allowed = connection_cap(open_files);
    match configured {
        None => {
            tracing::info!(
                event = "server.fd_limit",
                open_files,
                max_connections = allowed,
                "max_connections {allowed} derived from the open-files limit {open_files}"
            );
            allowed
        }
        Some(max) if max > allowed => {
            tracing::warn!(
                event = "server.fd_limit",
                open_files,
                max_connections = max,
                allowed,
                "max_connections {max} is above the {allowed} the open-files limit {open_files} \
                 leaves room for: past that, new connections are turned away at accept instead of \
                 answered by the server; raise the limit (LimitNOFILE, ulimit -n) or lower \
                 max_connections"
            );
            max
        }
        Some(max) => {
            tracing::info!(
                event = "server.fd_limit",
                open_files,
                max_connections = max,
                allowed,
                "max_connections {max} as configured"
            );
            max
        }
    }
}

/// Raises the soft open-files limit to the hard limit, as far as the hard limit is finite: the
/// soft limit is often 1,024 for historical reasons (`select(2)`), far below what a node holds.
/// Logged as `server.fd_limit_raised`.
#[cfg(unix)]
pub fn raise_soft_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let (Some(soft), Some(hard)) = (limit.current, limit.maximum) else {
        return;
    };
    if soft >= hard {
        return;
    }
    let raised = rustix::process::Rlimit {
        current: Some(hard),
        maximum: Some(hard),
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => tracing::info!(
            event = "server.fd_limit_raised",
            from = soft,
            to = hard,
            "raised the open-files limit from {soft} to the hard limit {hard}"
        ),
        Err(e) => tracing::warn!(
            event = "server.fd_limit_raised",
            from = soft,
            to = soft,
            error = %e,
            "could not raise the open-files limit to the hard limit {hard}: {e}"
        ),
    }
}

/// Without `setrlimit` there is nothing to raise.
#[cfg(not(unix))]
pub fn raise_soft_limit() {}

/// The soft open-files limit; `None` when unlimited.
#[cfg(unix)]
fn soft_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(not(unix))]
fn soft_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_a_fixed_part_and_a_tenth() {
        assert_eq!(connection_cap(1024), 1024 - 64 - 102);
        assert_eq!(connection_cap(16_384), 16_384 - 64 - 1638);
        assert_eq!(connection_cap(200_000), 200_000 - 64 - 20_000);
        assert_eq!(connection_cap(1_048_576), 1_048_576 - 64 - 104_857);
    }

    #[test]
    fn a_tiny_limit_leaves_no_room_rather_than_wrapping() {
        assert_eq!(connection_cap(0), 0);
        assert_eq!(connection_cap(64), 0);
        assert_eq!(connection_cap(71), 0);
        assert_eq!(connection_cap(72), 1);
    }

    #[test]
    fn a_huge_limit_stays_within_what_a_semaphore_holds() {
        assert_eq!(connection_cap(u64::MAX), Semaphore::MAX_PERMITS);
    }

    #[test]
    fn more_files_never_means_fewer_connections() {
        let caps: Vec<usize> = (0..5_000).map(connection_cap).collect();
        assert!(caps.windows(2).all(|w| w[0] <= w[1]));
    }
}
