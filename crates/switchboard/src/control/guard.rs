//! The budgets of the public endpoints: logins, registrations and share-code requests per client
//! address, and the lockout of a username after repeated failed logins.
//!
//! The lockout is kept per normalized username whether or not an account has it, so a lock says
//! nothing about which accounts exist. IPv6 addresses are budgeted per /64, the block one
//! subscriber usually holds. Maps hold recently seen keys only: each is pruned when it grows past
//! [`PRUNE_AT`] and, past [`MAX_KEYS`] keys that are all still in use, an address not seen before
//! is refused (fail closed) while a username's failures simply go uncounted (the address budget
//! still applies).

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use switchboard_core::{KeyedBuckets, Lockout};
use switchboard_protocol::SignalError;

use super::settings::ApiSettings;
use crate::error::TooManyRequests;

/// Keys a map may hold before it is pruned.
const PRUNE_AT: usize = 10_000;
/// Keys a map holds at most.
const MAX_KEYS: usize = 100_000;

/// Which public endpoint a request is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// `POST /v1/auth/login`.
    Login,
    /// `POST /v1/accounts`.
    Register,
    /// `GET /v1/invites/{code}` and `POST /v1/invites/{code}/redeem`.
    Invite,
}

/// See the module documentation.
pub struct Guard {
    login: Mutex<KeyedBuckets<IpAddr>>,
    register: Mutex<KeyedBuckets<IpAddr>>,
    invite: Mutex<KeyedBuckets<IpAddr>>,
    accounts: Mutex<Lockout<String>>,
}

/// The key an address is budgeted under: itself, or its /64 for IPv6.
fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

fn limited(what: &str, wait: Duration) -> TooManyRequests {
    tracing::info!(
        event = "rate.limited",
        scope = what,
        "API request over budget"
    );
    TooManyRequests {
        error: SignalError::RateLimited(format!("too many {what} requests; retry later")),
        retry_after: wait.max(Duration::from_secs(1)),
    }
}

impl Guard {
    /// Budgets from `settings`.
    pub fn new(settings: &ApiSettings) -> Guard {
        Guard {
            login: Mutex::new(KeyedBuckets::new(settings.logins())),
            register: Mutex::new(KeyedBuckets::new(settings.registrations())),
            invite: Mutex::new(KeyedBuckets::new(settings.invite_requests())),
            accounts: Mutex::new(Lockout::new(settings.lockout())),
        }
    }

    /// Charges one request of `budget` to `address`.
    pub fn charge(
        &self,
        budget: Budget,
        address: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), TooManyRequests> {
        let Some(address) = address else {
            return Ok(());
        };
        let (buckets, what) = match budget {
            Budget::Login => (&self.login, "login"),
            Budget::Register => (&self.register, "registration"),
            Budget::Invite => (&self.invite, "share code"),
        };
        let mut buckets = buckets.lock();
        if buckets.len() >= PRUNE_AT {
            buckets.prune(now);
        }
        if buckets.len() >= MAX_KEYS {
            return Err(limited(what, Duration::from_secs(60)));
        }
        buckets
            .try_take(address_key(address), now)
            .map_err(|wait| limited(what, wait))
    }

    /// `Err` while `username` is locked out.
    pub fn account_open(&self, username: &str, now: Instant) -> Result<(), TooManyRequests> {
        self.accounts
            .lock()
            .check(&username.to_owned(), now)
            .map_err(|wait| limited("login", wait))
    }

    /// A failed login for `username`.
    pub fn login_failed(&self, username: &str, now: Instant) {
        let mut accounts = self.accounts.lock();
        if accounts.len() >= PRUNE_AT {
            accounts.prune(now);
        }
        if accounts.len() < MAX_KEYS {
            accounts.failed(username.to_owned(), now);
        }
    }

    /// A successful login for `username`.
    pub fn login_succeeded(&self, username: &str) {
        self.accounts.lock().succeeded(&username.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_budgeted_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(address_key(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn budgets_are_separate_and_lockouts_per_username() {
        let settings = ApiSettings {
            login_burst_per_address: 2.0,
            login_failures_before_lockout: 2,
            ..ApiSettings::default()
        };
        let guard = Guard::new(&settings);
        let now = Instant::now();
        let ip = Some("10.0.0.1".parse().unwrap());
        assert!(guard.charge(Budget::Login, ip, now).is_ok());
        assert!(guard.charge(Budget::Login, ip, now).is_ok());
        let refused = guard.charge(Budget::Login, ip, now).unwrap_err();
        assert!(refused.retry_after >= Duration::from_secs(1));
        assert!(
            guard.charge(Budget::Invite, ip, now).is_ok(),
            "another budget"
        );
        guard.login_failed("ann", now);
        assert!(guard.account_open("ann", now).is_ok());
        guard.login_failed("ann", now);
        assert!(guard.account_open("ann", now).is_err());
        assert!(guard.account_open("bob", now).is_ok());
        guard.login_succeeded("ann");
        assert!(guard.account_open("ann", now).is_ok());
    }
}
