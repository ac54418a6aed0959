//! The control plane's settings: the `[api]` table of the configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchboard_core::{LockoutPolicy, Rate};

/// `[api]`: token lifetimes and the budgets of the public account and share-code endpoints.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// Lifetime of an access token (the API's bearer token), in ms.
    pub access_token_ttl_ms: u64,
    /// Lifetime of a refresh token, in ms; each use replaces it with a new one.
    pub refresh_token_ttl_ms: u64,
    /// Login attempts per second from one client address.
    pub logins_per_sec_per_address: f64,
    /// Burst of `logins_per_sec_per_address`.
    pub login_burst_per_address: f64,
    /// Consecutive failed logins of one username that lock it for a while (the last of them
    /// brings the lock).
    pub login_failures_before_lockout: u32,
    /// The first lock's length, in ms; it doubles with each further failure.
    pub lockout_base_ms: u64,
    /// The longest lock, in ms.
    pub lockout_max_ms: u64,
    /// New accounts per second from one client address.
    pub registrations_per_sec_per_address: f64,
    /// Burst of `registrations_per_sec_per_address`.
    pub registration_burst_per_address: f64,
    /// Share-code previews and redemptions per second from one client address.
    pub invite_requests_per_sec_per_address: f64,
    /// Burst of `invite_requests_per_sec_per_address`.
    pub invite_burst_per_address: f64,
    /// How long after its end an expired room or share code, or an expired or revoked refresh
    /// token, is kept before the expiry sweep deletes it, in ms.
    pub expired_grace_ms: u64,
    /// How often the expiry sweep runs, in ms.
    pub expiry_sweep_every_ms: u64,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            access_token_ttl_ms: 15 * 60 * 1000,
            refresh_token_ttl_ms: 30 * 24 * 3600 * 1000,
            logins_per_sec_per_address: 0.2,
            login_burst_per_address: 10.0,
            login_failures_before_lockout: 5,
            lockout_base_ms: 1000,
            lockout_max_ms: 15 * 60 * 1000,
            registrations_per_sec_per_address: 0.02,
            registration_burst_per_address: 10.0,
            invite_requests_per_sec_per_address: 1.0,
            invite_burst_per_address: 30.0,
            expired_grace_ms: 24 * 3600 * 1000,
            expiry_sweep_every_ms: 3600 * 1000,
        }
    }
}

impl ApiSettings {
    /// What makes no sense, if anything.
    pub fn check(&self) -> Result<(), String> {
        if self.access_token_ttl_ms < 1000 || self.refresh_token_ttl_ms < self.access_token_ttl_ms {
            return Err(
                "api.access_token_ttl_ms must be at least 1000 and api.refresh_token_ttl_ms at \
                 least as long"
                    .into(),
            );
        }
        if self.lockout_base_ms == 0 || self.lockout_max_ms < self.lockout_base_ms {
            return Err(
                "api.lockout_base_ms must be positive and at most api.lockout_max_ms".into(),
            );
        }
        if self.expiry_sweep_every_ms < 1000 {
            return Err("api.expiry_sweep_every_ms must be at least 1000".into());
        }
        Ok(())
    }

    /// Login attempts of one address.
    pub fn logins(&self) -> Rate {
        Rate {
            per_sec: self.logins_per_sec_per_address,
            burst: self.login_burst_per_address,
        }
    }

    /// Registrations of one address.
    pub fn registrations(&self) -> Rate {
        Rate {
            per_sec: self.registrations_per_sec_per_address,
            burst: self.registration_burst_per_address,
        }
    }

    /// Share-code requests of one address.
    pub fn invite_requests(&self) -> Rate {
        Rate {
            per_sec: self.invite_requests_per_sec_per_address,
            burst: self.invite_burst_per_address,
        }
    }

    /// When failed logins lock a username.
    pub fn lockout(&self) -> LockoutPolicy {
        let max = Duration::from_millis(self.lockout_max_ms);
        LockoutPolicy {
            failures_to_lock: self.login_failures_before_lockout,
            base: Duration::from_millis(self.lockout_base_ms),
            max,
            // Failures are remembered at least as long as the longest lock.
            forget_after: max.max(Duration::from_secs(15 * 60)),
        }
    }
}
