//! Tokens already verified with the server's own secret. The HTTP transports present the token
//! with every poll and every post; keeping what a token proved makes its signature check (base64,
//! JSON, HMAC-SHA256: most of a poll's CPU) a once-per-token cost instead of a per-request one.
//!
//! Only HS256 tokens are kept: their key is the server's secret, fixed while the server runs, so a
//! token verified once stays good until it expires. Tokens from an identity provider are checked
//! every time, since their key set can change under them (JWKS rotation). A token is kept by its
//! whole text and compared in full, so nothing but the exact token verified finds the entry; one
//! that failed is never kept.

use std::collections::HashMap;

use parking_lot::Mutex;
use switchboard_core::Identity;

/// Tokens kept at most (a few hundred bytes each, with their identity).
pub const CAPACITY: usize = 16_384;

/// Longer tokens are verified every time rather than kept.
const MAX_TOKEN_BYTES: usize = 4096;

/// See the module documentation.
pub struct VerifiedTokens {
    entries: Mutex<HashMap<Box<str>, Verified>>,
    capacity: usize,
}

struct Verified {
    identity: Identity,
    /// The last Unix second at which the token is accepted (its `exp` plus the leeway).
    until: u64,
}

impl VerifiedTokens {
    /// An empty set holding at most `capacity` tokens.
    pub fn new(capacity: usize) -> Self {
        VerifiedTokens {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// What `token` proved, if it was verified and is still good at `now` (Unix seconds).
    pub fn get(&self, token: &str, now: u64) -> Option<Identity> {
        let mut entries = self.entries.lock();
        let verified = entries.get(token)?;
        if now <= verified.until {
            return Some(verified.identity.clone());
        }
        entries.remove(token);
        None
    }

    /// Keeps what `token` proved, accepted until the Unix second `until`. When full, expired
    /// tokens go first, then an arbitrary quarter of the rest (the table's order is random).
    pub fn insert(&self, token: &str, identity: &Identity, until: u64, now: u64) {
        if token.len() > MAX_TOKEN_BYTES || until < now {
            return;
        }
        let mut entries = self.entries.lock();
        if entries.len() >= self.capacity && !entries.contains_key(token) {
            entries.retain(|_, v| now <= v.until);
            if entries.len() >= self.capacity {
                let mut evict = (self.capacity / 4).max(1);
                entries.retain(|_, _| match evict {
                    0 => true,
                    _ => {
                        evict -= 1;
                        false
                    }
                });
            }
        }
        entries.insert(
            token.into(),
            Verified {
                identity: identity.clone(),
                until,
            },
        );
    }

    /// Tokens kept now.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// Whether no token is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use switchboard_protocol::{Role, RoomGrant};

    use super::*;

    fn identity(user: &str) -> Identity {
        Identity {
            user: user.into(),
            role: Role::Guest,
            name: None,
            grant: RoomGrant::parse("r1").unwrap(),
            lobby: false,
            address: None,
            ice_servers: Vec::new(),
        }
    }

    #[test]
    fn a_kept_token_is_found_until_it_expires_then_dropped() {
        let kept = VerifiedTokens::new(8);
        kept.insert("t1", &identity("ann"), 100, 50);
        assert_eq!(&*kept.get("t1", 50).unwrap().user, "ann");
        assert_eq!(&*kept.get("t1", 100).unwrap().user, "ann");
        assert!(kept.get("t1", 101).is_none());
        assert!(kept.is_empty());
    }

    #[test]
    fn only_the_exact_token_finds_its_entry() {
        let kept = VerifiedTokens::new(8);
        kept.insert("header.claims.sig", &identity("ann"), 100, 50);
        assert!(kept.get("header.claims.sig2", 50).is_none());
        assert!(kept.get("header.claims.si", 50).is_none());
        assert!(kept.get("HEADER.claims.sig", 50).is_none());
    }

    #[test]
    fn expired_and_oversized_tokens_are_not_kept() {
        let kept = VerifiedTokens::new(8);
        kept.insert("old", &identity("ann"), 49, 50);
        kept.insert(&"x".repeat(MAX_TOKEN_BYTES + 1), &identity("ann"), 100, 50);
        assert!(kept.is_empty());
    }

    #[test]
    fn a_full_set_drops_expired_tokens_first_then_a_quarter() {
        let kept = VerifiedTokens::new(8);
        for i in 0..8 {
            let until = if i < 3 { 60 } else { 100 };
            kept.insert(&format!("t{i}"), &identity("ann"), until, 50);
        }
        assert_eq!(kept.len(), 8);
        // At 70 three have expired: they make the room.
        kept.insert("new", &identity("bob"), 100, 70);
        assert_eq!(kept.len(), 6);
        for i in 3..8 {
            assert!(kept.get(&format!("t{i}"), 70).is_some());
        }
        kept.insert("t8", &identity("bob"), 100, 70);
        kept.insert("t9", &identity("bob"), 100, 70);
        assert_eq!(kept.len(), 8);
        // Nothing expired: a quarter goes, and the new token is kept.
        kept.insert("t10", &identity("cy"), 100, 70);
        assert_eq!(kept.len(), 7);
        assert_eq!(&*kept.get("t10", 70).unwrap().user, "cy");
    }
}
