//! Loading the settings: the layers (defaults, file, environment, flags) merged by figment, and
//! the error a bad or contradictory setting gives.

use std::path::Path;

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::Serialize;

use super::Config;

/// Top-level keys, also the names environment variables may set (`SWITCHBOARD_<KEY>`); other
/// `SWITCHBOARD_*` variables (such as the client's) are not settings and are ignored.
const KEYS: &[&str] = &[
    "listen",
    "tls_cert",
    "tls_key",
    "tls_reload_ms",
    "header_timeout_ms",
    "body_timeout_ms",
    "data_dir",
    "database_url",
    "api",
    "secret",
    "log_format",
    "shutdown_grace_ms",
    "max_peers",
    "max_rooms_per_session",
    "heartbeat_ms",
    "heartbeat_timeout_ms",
    "resume_ms",
    "room_idle_ms",
    "knock_timeout_ms",
    "outbox_limit",
    "ice_servers",
    "limits",
    "poll_wait_ms",
    "sse_lifetime_ms",
    "sse_jitter_ms",
    "sse_heartbeat_ms",
    "sse_retry_ms",
    "allowed_origins",
    "trusted_proxies",
    "forwarded_header",
    "jwks_url",
    "jwks_refresh_ms",
    "jwks_timeout_ms",
    "jwks_cooldown_ms",
    "jwt_public_keys",
    "jwt_algorithms",
    "jwt_issuer",
    "jwt_audience",
    "otlp_endpoint",
    "rate_limits",
    "max_sessions_per_user",
    "max_sessions_per_address",
    "max_connections",
    "worker_threads",
    "guest_access",
    "turn_secret",
    "turn_urls",
    "turn_ttl_ms",
    "redis_url",
    "redis_prefix",
    "node_id",
    "media_mode",
    "sfu",
    "audit_retention_days",
    "webhooks",
    "webhook_delivery",
];

/// A setting that could not be read or makes no sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file, an environment variable or a flag has a bad value or an unknown key.
    #[error("configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    /// Values that parse but contradict each other.
    #[error("configuration: {0}")]
    Inconsistent(String),
}

impl Config {
    /// Loads defaults < `file` (if given) < `SWITCHBOARD_*` environment < `overrides` (flags).
    pub fn load(file: Option<&Path>, overrides: &impl Serialize) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Inconsistent(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        let env = Env::prefixed("SWITCHBOARD_").split("__").filter(|key| {
            // Keys are not lowercased yet when filtered.
            let top = key.as_str().split('.').next().unwrap_or_default();
            KEYS.iter().any(|k| k.eq_ignore_ascii_case(top))
        });
        let config: Config = figment
            .merge(env)
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(Box::new)?;
        config.check()?;
        Ok(config)
    }
}
