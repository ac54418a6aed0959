//! When a failed delivery is tried again, and when it is given up: exponential backoff from
//! `retry_base_ms`, doubling per failure up to `retry_max_ms`, until the event is `max_age_ms`
//! old. A pure rule over the times it is given (Unix milliseconds), tested without a clock.

use super::settings::WebhookDelivery;

/// What to do with a delivery that just failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again at this time.
    RetryAt(i64),
    /// Drop it: it would be tried after its maximum age.
    GiveUp,
}

/// Whether an event made at `created_at` is too old to try at `now`.
pub fn expired(settings: &WebhookDelivery, created_at: i64, now: i64) -> bool {
    now.saturating_sub(created_at) > settings.max_age_ms as i64
}

/// The next step for an event made at `created_at` that has now failed `failures` times (this one
/// included), at `now`.
pub fn after_failure(settings: &WebhookDelivery, failures: i64, created_at: i64, now: i64) -> Next {
    let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 62)).unwrap_or(62);
    let wait = (settings.retry_base_ms)
        .saturating_mul(1u64.checked_shl(doublings).unwrap_or(u64::MAX))
        .min(settings.retry_max_ms);
    let at = now.saturating_add(wait as i64);
    match expired(settings, created_at, at) {
        true => Next::GiveUp,
        false => Next::RetryAt(at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> WebhookDelivery {
        WebhookDelivery {
            timeout_ms: 1_000,
            retry_base_ms: 1_000,
            retry_max_ms: 8_000,
            max_age_ms: 60_000,
        }
    }

    #[test]
    fn waits_double_per_failure_up_to_the_cap() {
        let s = settings();
        let waits: Vec<_> = (1..=6)
            .map(|failures| match after_failure(&s, failures, 0, 10_000) {
                Next::RetryAt(at) => at - 10_000,
                Next::GiveUp => panic!("young enough"),
            })
            .collect();
        assert_eq!(waits, [1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
        // Absurd failure counts neither overflow nor go below the base.
        assert_eq!(after_failure(&s, i64::MAX, 0, 0), Next::RetryAt(8_000));
        assert_eq!(after_failure(&s, 0, 0, 0), Next::RetryAt(1_000));
    }

    #[test]
    fn gives_up_once_the_next_try_would_be_past_the_maximum_age() {
        let s = settings();
        assert_eq!(after_failure(&s, 1, 0, 59_000), Next::RetryAt(60_000));
        assert_eq!(after_failure(&s, 1, 0, 59_001), Next::GiveUp);
        assert!(!expired(&s, 0, 60_000));
        assert!(expired(&s, 0, 60_001));
    }
}
