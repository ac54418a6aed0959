//! Validation: the settings that parse but make no sense alone or together, refused at start with
//! a message naming the keys, so a bad deployment fails before it serves anyone.

use switchboard_protocol::MediaMode;

use super::{Config, ConfigError, SfuSettings};

/// Most media workers one node runs: far past the cores of one machine, and a bound on the
/// sockets one setting can ask for.
const MAX_SFU_WORKERS: usize = 256;

impl Config {
    /// Refuses values that contradict each other or that the server cannot run with.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Inconsistent(m.to_owned()));
        if self.heartbeat_ms == 0 {
            return bad("heartbeat_ms must be positive");
        }
        if self.knock_timeout_ms < 1000 {
            return bad("knock_timeout_ms must be at least 1000");
        }
        if self.heartbeat_timeout_ms <= self.heartbeat_ms {
            return bad("heartbeat_timeout_ms must be longer than heartbeat_ms");
        }
        if self.max_peers == 0 || self.max_rooms_per_session == 0 || self.outbox_limit == 0 {
            return bad("max_peers, max_rooms_per_session and outbox_limit must be positive");
        }
        if self.poll_wait_ms >= self.heartbeat_timeout_ms
            || self.sse_heartbeat_ms >= self.heartbeat_timeout_ms
            || self.sse_heartbeat_ms == 0
        {
            return bad(
                "poll_wait_ms and sse_heartbeat_ms must be positive and shorter than heartbeat_timeout_ms",
            );
        }
        if self.limits.max_frame_bytes < 1024 {
            return bad("limits.max_frame_bytes must be at least 1024");
        }
        if self.jwks_refresh_ms == 0 || self.jwks_timeout_ms == 0 {
            return bad("jwks_refresh_ms and jwks_timeout_ms must be positive");
        }
        if let Err(e) = crate::origin::OriginPolicy::new(&self.allowed_origins) {
            return bad(&e);
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return bad("tls_cert and tls_key are set together or not at all");
        }
        if self.tls_reload_ms == 0 {
            return bad("tls_reload_ms must be positive");
        }
        if self.header_timeout_ms == 0 || self.body_timeout_ms == 0 {
            return bad("header_timeout_ms and body_timeout_ms must be positive");
        }
        if let Err(e) = self.proxies() {
            return bad(&e);
        }
        if let Err(e) = crate::turn::check(self.turn()) {
            return bad(&e);
        }
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        };
        if !name_ok(&self.redis_prefix) {
            return bad("redis_prefix must be 1 to 64 letters, digits, `_`, `-` or `.`");
        }
        if let Some(id) = &self.node_id
            && !name_ok(id)
        {
            return bad("node_id must be 1 to 64 letters, digits, `_`, `-` or `.`");
        }
        if self.media_mode == MediaMode::Sfu && self.sfu.udp_port.is_none() {
            return bad("media_mode = \"sfu\" needs the SFU: set sfu.udp_port");
        }
        if self.sfu.tcp_port.is_some() && self.sfu.udp_port.is_none() {
            return bad("sfu.tcp_port needs the SFU: set sfu.udp_port too");
        }
        if self.sfu.udp_port.is_some() {
            if self.sfu.announced(0).is_none() {
                return bad(
                    "sfu.bind is unspecified: set sfu.public_ip, the address clients reach",
                );
            }
            if self.sfu.public_ip.is_some_and(|ip| ip.is_unspecified()) {
                return bad("sfu.public_ip must be an address clients can reach");
            }
            if self.sfu.max_media_lines == 0
                || self.sfu.max_published_tracks == 0
                || self.sfu.downlink_kbps == 0
                || self.sfu.queue == 0
            {
                return bad(
                    "sfu.max_media_lines, sfu.max_published_tracks, sfu.queue and sfu.downlink_kbps must be positive",
                );
            }
            if !(1..=MAX_SFU_WORKERS).contains(&self.sfu.workers) {
                return bad(&format!("sfu.workers must be 1 to {MAX_SFU_WORKERS}"));
            }
            let last = self.sfu.workers - 1;
            let past_end = |base: Option<u16>| {
                base.is_some_and(|b| SfuSettings::worker_port(b, last).is_none())
            };
            if past_end(self.sfu.udp_port) || past_end(self.sfu.tcp_port) {
                return bad(
                    "sfu.udp_port + sfu.workers - 1 (and sfu.tcp_port's) must be a port, 65535 at most",
                );
            }
        }
        if let Err(e) = self.api.check() {
            return bad(&e);
        }
        if let Err(e) =
            crate::control::webhooks::settings::check(&self.webhooks, &self.webhook_delivery)
        {
            return bad(&e);
        }
        Ok(())
    }
}
