//! Server settings: defaults, then a TOML file, then `SWITCHBOARD_*` environment variables, then
//! command-line flags, each overriding the one before.
//!
//! This file holds [`Config`], every setting with its default, and what other parts of the server
//! read from it; `load` layers the sources, `check` refuses values that contradict each other, and
//! `sfu` is the `[sfu]` table.

mod check;
mod load;
mod sfu;
#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return its large error type
mod tests;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};
use switchboard_core::{CoreConfig, RateLimits};
use switchboard_protocol::{IceServer, Limits, MediaMode};

use crate::edge::forwarded::{ForwardedHeader, TrustedProxies};
pub use load::ConfigError;
pub use sfu::SfuSettings;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// Every setting of `switchboard serve`. Field names are the TOML keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// PEM certificate chain: with `tls_key`, the listener serves HTTPS and wss:// only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// How often the certificate files are looked at for a renewal, in ms (SIGHUP also reloads).
    pub tls_reload_ms: u64,
    /// How long a connection may take to send a request's head (line and headers), in ms,
    /// counted from when the server starts waiting for it: a new connection's first request, or
    /// the next one on a kept-alive connection. Past it the connection is closed.
    pub header_timeout_ms: u64,
    /// How long a request's body may take to arrive in full after its head, in ms. Past it the
    /// request is answered 408 `request_timeout` and the connection closed.
    pub body_timeout_ms: u64,
    /// Where the server keeps local state: the generated development secret, and the SQLite
    /// database (`switchboard.db`) when `database_url` is not set.
    pub data_dir: PathBuf,
    /// The database of accounts, stored rooms and share codes: `postgres://user@host/db` in
    /// production, or `sqlite://path`. Unset: the SQLite file `switchboard.db` in `data_dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// The control API's token lifetimes and budgets.
    pub api: crate::control::settings::ApiSettings,
    /// HS256 secret for tokens. Without one, a development secret is generated into `data_dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// How long a shutdown waits for sessions to close, in ms.
    pub shutdown_grace_ms: u64,
    /// Members per room.
    pub max_peers: usize,
    /// Rooms one session may be in at once.
    pub max_rooms_per_session: usize,
    /// Interval of WebSocket pings, in ms.
    pub heartbeat_ms: u64,
    /// Silence after which a transport counts as lost, in ms.
    pub heartbeat_timeout_ms: u64,
    /// How long a lost session may be resumed, in ms.
    pub resume_ms: u64,
    /// A room without client messages for this long is closed, in ms.
    pub room_idle_ms: u64,
    /// How long a lobby guest's knock waits for a host's answer, in ms.
    pub knock_timeout_ms: u64,
    /// Server messages kept per session for resume.
    pub outbox_limit: usize,
    /// STUN/TURN servers handed to clients in `joined`.
    pub ice_servers: Vec<IceServer>,
    /// Message size limits and the clock window.
    pub limits: Limits,
    /// How long a long-poll request waits for a message before answering `[]`, in ms.
    pub poll_wait_ms: u64,
    /// How long an SSE stream lives before the server ends it (the client reconnects), in ms.
    pub sse_lifetime_ms: u64,
    /// Upper bound of the random time added to each SSE stream's lifetime, in ms.
    pub sse_jitter_ms: u64,
    /// Interval of SSE comment lines that keep idle streams open through proxies, in ms.
    pub sse_heartbeat_ms: u64,
    /// The `retry:` an SSE stream announces: how soon EventSource reconnects, in ms.
    pub sse_retry_ms: u64,
    /// Browser origins (`scheme://host[:port]`, or `*`) allowed to open sessions besides the
    /// server's own. Empty: same origin and loopback origins (`localhost`, `127.0.0.1`, `[::1]`,
    /// any port), for development. Requests without `Origin` (non-browser clients) always pass.
    pub allowed_origins: Vec<String>,
    /// Proxies and load balancers (CIDRs such as `10.0.0.0/8`, or addresses) whose connections
    /// name their client in `forwarded_header`: the client's address there is the one per-address
    /// budgets and caps charge, and `X-Forwarded-Proto` / `X-Forwarded-Host` count for the origin
    /// check. Empty: every connection is its own client and those headers are ignored.
    pub trusted_proxies: Vec<String>,
    /// The header a trusted proxy names the client in: `x-forwarded-for` (with
    /// `X-Forwarded-Proto` and `X-Forwarded-Host`) or `forwarded` (RFC 7239). Only this one is
    /// read: a client could send the other through a proxy that does not set it.
    pub forwarded_header: ForwardedHeader,
    /// JWKS of an identity provider whose tokens are accepted besides HS256 ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// How often the JWKS is fetched again, in ms.
    pub jwks_refresh_ms: u64,
    /// Bound on one JWKS fetch (connect and body), in ms.
    pub jwks_timeout_ms: u64,
    /// Least time between refreshes caused by tokens naming an unknown `kid`, in ms.
    pub jwks_cooldown_ms: u64,
    /// PEM files of public keys (RSA, EC P-256, Ed25519) whose tokens are accepted.
    pub jwt_public_keys: Vec<PathBuf>,
    /// Algorithms accepted for tokens verified with `jwks_url` or `jwt_public_keys`.
    pub jwt_algorithms: Vec<String>,
    /// Required `iss` of tokens verified with a public key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` of tokens verified with a public key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_audience: Option<String>,
    /// OTLP/HTTP collector (such as `http://127.0.0.1:4318`); traces are exported only when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// Message and request budgets.
    pub rate_limits: RateLimits,
    /// Sessions one user may hold at once.
    pub max_sessions_per_user: usize,
    /// Sessions one client address may hold at once.
    pub max_sessions_per_address: usize,
    /// Open client streams (WebSocket, SSE, pending polls) the node accepts in all; past it new
    /// ones get 503 `unavailable`. Unset: derived from the open-files limit
    /// ([`crate::open_files::max_connections`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// Threads that run connections. Unset: one per CPU the process may use; with one, the
    /// single-threaded scheduler ([`crate::runtime`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_threads: Option<std::num::NonZeroUsize>,
    /// Whether `POST /v1/token` hands out guest tokens (the web app's lobby uses it). On by default
    /// for local runs; turn it off in production and mint tokens in your own backend.
    pub guest_access: bool,
    /// Shared secret of a TURN server (coturn's `static-auth-secret`): each session gets
    /// time-limited credentials for `turn_urls` in `joined.ice_servers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn_secret: Option<String>,
    /// `turn:` / `turns:` URLs the minted credentials are for.
    pub turn_urls: Vec<String>,
    /// How long minted TURN credentials stay valid, in ms.
    pub turn_ttl_ms: u64,
    /// Redis of a cluster (`redis://host:port/db`): set, the node serves rooms shared with every
    /// node using the same Redis and prefix. Unset: a single node with no external service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and channel, so several clusters can share one Redis.
    pub redis_prefix: String,
    /// This node's id in logs, metrics and the shared store (letters, digits, `_`, `-`, `.`; at
    /// most 64). Unset: generated at each start. Ids must differ between running nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// Media setting of new rooms: `auto` (mesh for two, through the SFU from three), `mesh` or
    /// `sfu` (which needs `sfu.udp_port`). Without an SFU, `auto` rooms stay mesh.
    pub media_mode: MediaMode,
    /// The SFU (selective forwarding unit) built into the server; off unless `udp_port` is set.
    pub sfu: SfuSettings,
    /// Days the audit log keeps a line; 0 keeps lines forever.
    pub audit_retention_days: u32,
    /// `[[webhooks]]`: the receivers of webhook events.
    pub webhooks: Vec<crate::control::webhooks::WebhookSettings>,
    /// `[webhook_delivery]`: timeouts and retries of webhook deliveries.
    pub webhook_delivery: crate::control::webhooks::WebhookDelivery,
}

impl Default for Config {
    fn default() -> Self {
        let core = CoreConfig::default();
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls_cert: None,
            tls_key: None,
            tls_reload_ms: 5_000,
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            data_dir: PathBuf::from(".switchboard"),
            database_url: None,
            api: Default::default(),
            secret: None,
            log_format: LogFormat::Text,
            shutdown_grace_ms: 10_000,
            max_peers: core.max_peers,
            max_rooms_per_session: core.max_rooms_per_session,
            heartbeat_ms: core.heartbeat_interval.as_millis() as u64,
            heartbeat_timeout_ms: core.heartbeat_timeout.as_millis() as u64,
            resume_ms: core.resume_window.as_millis() as u64,
            room_idle_ms: core.room_idle_timeout.as_millis() as u64,
            knock_timeout_ms: core.knock_timeout.as_millis() as u64,
            outbox_limit: core.outbox_limit,
            ice_servers: core.ice_servers,
            limits: core.limits,
            poll_wait_ms: 25_000,
            sse_lifetime_ms: 300_000,
            sse_jitter_ms: 60_000,
            sse_heartbeat_ms: 15_000,
            sse_retry_ms: 1_000,
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeader::default(),
            jwks_url: None,
            jwks_refresh_ms: 300_000,
            jwks_timeout_ms: 5_000,
            jwks_cooldown_ms: 30_000,
            jwt_public_keys: Vec::new(),
            jwt_algorithms: vec!["RS256".into(), "ES256".into(), "EdDSA".into()],
            jwt_issuer: None,
            jwt_audience: None,
            otlp_endpoint: None,
            rate_limits: RateLimits::default(),
            max_sessions_per_user: core.max_sessions_per_user,
            max_sessions_per_address: core.max_sessions_per_address,
            max_connections: None,
            worker_threads: None,
            guest_access: true,
            turn_secret: None,
            turn_urls: Vec::new(),
            turn_ttl_ms: 86_400_000,
            redis_url: None,
            redis_prefix: "switchboard".into(),
            node_id: None,
            media_mode: core.media_mode,
            sfu: SfuSettings::default(),
            audit_retention_days: 90,
            webhooks: Vec::new(),
            webhook_delivery: Default::default(),
        }
    }
}

impl Config {
    /// This node's id: `node_id`, or one generated now.
    pub fn node_id(&self) -> String {
        use rand::Rng;
        self.node_id.clone().unwrap_or_else(|| {
            let suffix: String = rand::rng()
                .sample_iter(rand::distr::Alphanumeric)
                .take(10)
                .map(char::from)
                .collect();
            format!("node-{suffix}")
        })
    }

    /// The proxies whose connections may name their client.
    pub fn proxies(&self) -> Result<TrustedProxies, String> {
        TrustedProxies::new(&self.trusted_proxies, self.forwarded_header)
    }

    /// The TURN settings.
    pub fn turn(&self) -> crate::turn::TurnSettings<'_> {
        crate::turn::TurnSettings {
            secret: self.turn_secret.as_deref(),
            urls: &self.turn_urls,
            ttl_ms: self.turn_ttl_ms,
        }
    }

    /// The core's share of the settings.
    pub fn core(&self) -> CoreConfig {
        CoreConfig {
            limits: self.limits.clone(),
            max_peers: self.max_peers,
            max_rooms_per_session: self.max_rooms_per_session,
            heartbeat_interval: Duration::from_millis(self.heartbeat_ms),
            heartbeat_timeout: Duration::from_millis(self.heartbeat_timeout_ms),
            resume_window: Duration::from_millis(self.resume_ms),
            room_idle_timeout: Duration::from_millis(self.room_idle_ms),
            knock_timeout: Duration::from_millis(self.knock_timeout_ms),
            outbox_limit: self.outbox_limit,
            ice_servers: self.ice_servers.clone(),
            rate: self.rate_limits.clone(),
            max_sessions_per_user: self.max_sessions_per_user,
            max_sessions_per_address: self.max_sessions_per_address,
            media_mode: self.media_mode,
            sfu: self.sfu.udp_port.is_some(),
        }
    }

    /// Largest WebSocket frame read at all. Frames between `limits.max_frame_bytes` and this get a
    /// `payload_too_large` error and the connection stays open; larger ones close it with 1009, so
    /// a client cannot make the server buffer arbitrary amounts.
    pub fn hard_frame_cap(&self) -> usize {
        (self.limits.max_frame_bytes * 4).max(256 * 1024)
    }
}
