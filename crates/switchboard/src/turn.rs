//! TURN credentials with the standard shared-secret scheme ("TURN REST API", coturn's
//! `use-auth-secret` / `static-auth-secret`): the username is `expiry:user` (expiry in Unix
//! seconds) and the password is `base64(HMAC-SHA1(secret, username))`. The TURN server recomputes
//! the password from the username and refuses it after the expiry, so the signaling server and the
//! TURN server share nothing but the secret.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use switchboard_protocol::IceServer;

/// The TURN settings (`turn_secret`, `turn_urls`, `turn_ttl_ms`), as the configuration holds them.
#[derive(Debug, Clone, Copy)]
pub struct TurnSettings<'a> {
    /// The secret shared with the TURN server.
    pub secret: Option<&'a str>,
    /// The TURN server's URLs.
    pub urls: &'a [String],
    /// How long minted credentials stay valid, in milliseconds.
    pub ttl_ms: u64,
}

/// Mints per-session TURN credentials for the configured URLs.
#[derive(Clone)]
pub struct TurnMinter {
    secret: Vec<u8>,
    urls: Vec<String>,
    ttl: Duration,
}

impl std::fmt::Debug for TurnMinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnMinter")
            .field("secret", &"<redacted>")
            .field("urls", &self.urls)
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// The password for `username`: `base64(HMAC-SHA1(secret, username))`.
pub fn password(secret: &[u8], username: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

impl TurnMinter {
    /// A minter for the settings' secret and URLs, if both are set.
    pub fn new(settings: TurnSettings<'_>) -> Option<TurnMinter> {
        let secret = settings.secret.filter(|s| !s.is_empty())?;
        if settings.urls.is_empty() {
            return None;
        }
        Some(TurnMinter {
            secret: secret.as_bytes().to_vec(),
            urls: settings.urls.to_vec(),
            ttl: Duration::from_millis(settings.ttl_ms),
        })
    }

    /// Credentials for `user`, valid until `now_unix_s` plus the TTL.
    pub fn ice_server(&self, user: &str, now_unix_s: u64) -> IceServer {
        let expiry = now_unix_s + self.ttl.as_secs().max(1);
        let username = format!("{expiry}:{user}");
        IceServer {
            urls: self.urls.clone(),
            credential: Some(password(&self.secret, &username)),
            username: Some(username),
        }
    }
}

/// Checks the TURN settings: URLs must be `turn:` or `turns:`, a secret needs URLs and a TTL of at
/// least a second.
pub fn check(settings: TurnSettings<'_>) -> Result<(), String> {
    if let Some(url) = settings
        .urls
        .iter()
        .find(|u| !(u.starts_with("turn:") || u.starts_with("turns:")))
    {
        return Err(format!(
            "turn_urls must be turn: or turns: URLs (STUN servers go in ice_servers), not `{url}`"
        ));
    }
    let has_secret = settings.secret.is_some_and(|s| !s.is_empty());
    if has_secret && settings.urls.is_empty() {
        return Err("turn_secret is set but turn_urls is empty".into());
    }
    if !has_secret && !settings.urls.is_empty() {
        return Err("turn_urls is set but turn_secret is missing".into());
    }
    if has_secret && settings.ttl_ms < 1000 {
        return Err("turn_ttl_ms must be at least 1000".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings with an hour's TTL.
    fn settings<'a>(secret: Option<&'a str>, urls: &'a [String]) -> TurnSettings<'a> {
        TurnSettings {
            secret,
            urls,
            ttl_ms: 3_600_000,
        }
    }

    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        // RFC 2202, test case 2: effcdf6ae5eb2fa2d27416d5f184df9c259a7c79.
        assert_eq!(
            password(b"Jefe", "what do ya want for nothing?"),
            "7/zfauXrL6LSdBbV8YTfnCWafHk="
        );
    }

    #[test]
    fn credentials_follow_the_shared_secret_scheme() {
        let urls = ["turn:turn.example.org:3478?transport=udp".to_owned()];
        let minter = TurnMinter::new(settings(Some("north"), &urls)).unwrap();
        let server = minter.ice_server("alice", 1_763_782_800);
        assert_eq!(server.urls, urls);
        assert_eq!(server.username.as_deref(), Some("1763786400:alice"));
        // Independently: printf '1763786400:alice' | openssl dgst -sha1 -hmac north -binary | base64
        assert_eq!(
            server.credential.as_deref(),
            Some("muQ/7ficfb87ww0jghvnhnnAVBo=")
        );
        assert!(!format!("{minter:?}").contains("north"));
    }

    #[test]
    fn minting_needs_a_secret_and_urls() {
        assert!(TurnMinter::new(settings(None, &[])).is_none());
        let only_secret = settings(Some("s"), &[]);
        assert!(TurnMinter::new(only_secret).is_none());
        assert!(check(only_secret).is_err());
        let turn = ["turn:t.example.org".to_owned()];
        assert!(check(settings(None, &turn)).is_err());
        let stun = ["stun:t.example.org".to_owned()];
        assert!(check(settings(Some("s"), &stun)).is_err());
        assert!(check(settings(None, &[])).is_ok());
        let short = TurnSettings {
            ttl_ms: 999,
            ..settings(Some("s"), &turn)
        };
        assert!(check(short).is_err());
    }
}
