//! The `[sfu]` table: the SFU's socket, the address it announces, and its per-participant limits.
//! A table of its own in the file, so a type of its own here.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

/// The `[sfu]` table. See docs/sfu.md.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SfuSettings {
    /// The UDP port all media goes through, the first worker's: worker `i` of `workers` binds
    /// `udp_port + i`. Unset: no SFU runs and no port is bound. `0`: ports the system picks
    /// (tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub udp_port: Option<u16>,
    /// A TCP port for ICE-TCP (RFC 6544, RFC 4571 framing), for clients whose network blocks
    /// UDP: announced beside the UDP candidate, with the same address; worker `i` binds
    /// `tcp_port + i`. Unset: UDP only. `0`: ports the system picks (tests). Needs `udp_port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_port: Option<u16>,
    /// The address the UDP socket (and the ICE-TCP listener) binds.
    pub bind: IpAddr,
    /// The address announced to clients (their ICE candidate), when it is not `bind`: the
    /// public address of a host behind NAT or of a container's host. Required when `bind` is
    /// unspecified (`0.0.0.0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<IpAddr>,
    /// Media workers: each a task with a UDP socket (and ICE-TCP port) of its own, holding whole
    /// rooms, so a node uses as many cores for media as it runs workers.
    pub workers: usize,
    /// Most m-lines one offer to the SFU may carry.
    pub max_media_lines: usize,
    /// Most tracks one participant may publish.
    pub max_published_tracks: usize,
    /// Messages to the SFU waiting for its worker; past it a message is refused with
    /// `media_unavailable`.
    pub queue: usize,
    /// Each subscriber's downlink for video, in kbit/s: all of it without `bwe`,
    /// the starting estimate with it.
    pub downlink_kbps: u64,
    /// Estimate each subscriber's downlink and choose simulcast layers by the estimate.
    pub bwe: bool,
}

impl Default for SfuSettings {
    fn default() -> Self {
        let sfu = switchboard_sfu::SfuConfig::new(Vec::new());
        SfuSettings {
            udp_port: None,
            tcp_port: None,
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            public_ip: None,
            workers: 1,
            max_media_lines: sfu.max_media_lines,
            max_published_tracks: sfu.max_published_tracks,
            queue: 1024,
            downlink_kbps: sfu.default_downlink_bps / 1000,
            bwe: sfu.bwe,
        }
    }
}

impl SfuSettings {
    /// The port worker `worker` binds given the first worker's `base`: `base + worker`, or `0`
    /// (one the system picks) when `base` is; `None` past 65535.
    pub fn worker_port(base: u16, worker: usize) -> Option<u16> {
        if base == 0 {
            return Some(0);
        }
        base.checked_add(u16::try_from(worker).ok()?)
    }

    /// The address announced to clients, with `port` (the bound one).
    pub fn announced(&self, port: u16) -> Option<SocketAddr> {
        let ip = self
            .public_ip
            .or((!self.bind.is_unspecified()).then_some(self.bind))?;
        Some(SocketAddr::new(ip, port))
    }
}
