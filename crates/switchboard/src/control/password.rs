//! Passwords: argon2id with OWASP's minimum parameters (19 MiB, 2 passes, 1 lane; argon2's
//! defaults), stored as PHC strings so the parameters can be raised later without locking anyone
//! out (a stored hash names its own).
//!
//! Hashing takes tens of milliseconds of CPU and 19 MiB on purpose, so it runs on the blocking
//! pool behind a semaphore of one permit per CPU: a burst of logins queues there and cannot starve
//! the signaling tasks or take memory without bound. A login for a username that has no account
//! verifies against a dummy hash, so it costs the same time as a wrong password: the answer's
//! timing does not tell whether the account exists.

use std::sync::Arc;

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use switchboard_protocol::SignalError;
use tokio::sync::Semaphore;

/// Shortest password accepted, in characters (NIST SP 800-63B).
pub const MIN_CHARS: usize = 8;
/// Longest password accepted, in characters: enough for passphrases, bounded so hashing stays
/// bounded.
pub const MAX_CHARS: usize = 1024;

/// See the module documentation.
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified when the account does not exist.
    dummy: String,
}

impl Passwords {
    /// Ready to hash; computes the dummy hash (one hashing's time).
    pub fn new() -> Result<Passwords, SignalError> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let random: [u8; 16] = rand::random();
        Ok(Passwords {
            permits: Arc::new(Semaphore::new(cpus)),
            dummy: hash(&random)?,
        })
    }

    /// Checks a new password's length.
    pub fn acceptable(password: &str) -> Result<(), SignalError> {
        if !(MIN_CHARS..=MAX_CHARS).contains(&password.chars().count()) {
            return Err(SignalError::invalid(format!(
                "`password` must be {MIN_CHARS} to {MAX_CHARS} characters"
            )));
        }
        Ok(())
    }

    /// The PHC string of `password`.
    pub async fn hash(&self, password: String) -> Result<String, SignalError> {
        self.blocking(move || hash(password.as_bytes())).await?
    }

    /// Whether `password` matches `stored`; with no stored hash, checks the dummy (and fails),
    /// taking the same time.
    pub async fn verify(&self, password: String, stored: Option<String>) -> bool {
        let (stored, real) = match stored {
            Some(stored) => (stored, true),
            None => (self.dummy.clone(), false),
        };
        let matches = self
            .blocking(move || verify(password.as_bytes(), &stored))
            .await;
        real && matches.unwrap_or(false)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, SignalError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| SignalError::Internal)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| SignalError::Internal)
    }
}

fn hash(password: &[u8]) -> Result<String, SignalError> {
    Argon2::default()
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|e| {
            tracing::error!(event = "password.hash_failed", error = %e, "cannot hash a password");
            SignalError::Internal
        })
}

fn verify(password: &[u8], stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|parsed| Argon2::default().verify_password(password, &parsed).is_ok())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify_only_their_password() {
        let passwords = Passwords::new().unwrap();
        let a = passwords.hash("correct horse".into()).await.unwrap();
        let b = passwords.hash("correct horse".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(
            passwords
                .verify("correct horse".into(), Some(a.clone()))
                .await
        );
        assert!(!passwords.verify("correct horsf".into(), Some(a)).await);
        assert!(!passwords.verify("anything".into(), None).await);
        assert!(
            !passwords
                .verify("x".into(), Some("not a hash".into()))
                .await
        );
        assert!(Passwords::acceptable("1234567").is_err());
        assert!(Passwords::acceptable("12345678").is_ok());
        assert!(Passwords::acceptable(&"x".repeat(MAX_CHARS + 1)).is_err());
    }
}
