//! Who a request comes from: its TCP peer, or, when that peer is a trusted proxy
//! (`trusted_proxies`), the client the proxy says it forwarded the request for.
//!
//! Behind a proxy every connection comes from the proxy's address, which would put every client
//! into one per-address budget. A proxy names the client in `X-Forwarded-For` (or `Forwarded`,
//! RFC 7239), appending the address it received the request from to whatever list the request
//! already carried. So the list is read from the right: each entry was written by the hop after
//! it, and while that hop is a trusted proxy the entry can be believed. The client is the
//! rightmost entry that is not itself a trusted proxy; whatever stands left of it was written by
//! the client and is ignored, which is what defeats a client sending a made-up `X-Forwarded-For`.
//! An entry that is not an address (`unknown`, an obfuscated `_name`, garbage) ends the walk: the
//! client is then the last hop known, a trusted proxy.
//!
//! Only one of the two headers is read ([`ForwardedHeader`], the `forwarded_header` setting): a
//! proxy that sets one passes the other through as the client sent it, so reading both would let
//! a client choose its own address. The scheme and host the client used (for the origin check)
//! come from `X-Forwarded-Proto` / `X-Forwarded-Host`, or from the `proto=` / `host=` of the
//! `Forwarded` element the walk ended on.
//!
//! From a peer that is not trusted none of these headers is read: its address is the client's.
//! The peer is judged once per connection, so with no `trusted_proxies` (the default) deriving
//! the client costs nothing per request.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderValue, header::FORWARDED};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Which header names the client behind a trusted proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For`, with `X-Forwarded-Proto` and `X-Forwarded-Host`: what nginx, HAProxy,
    /// Envoy and the cloud load balancers set.
    #[default]
    XForwardedFor,
    /// `Forwarded` (RFC 7239): `for=`, `proto=` and `host=` of its elements.
    Forwarded,
}

/// The `trusted_proxies` setting, parsed: the networks whose connections may name their client.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ForwardedHeader,
}

/// Who sent a request, once judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The client's address: the peer's, or the one a trusted proxy forwarded for. Per-address
    /// budgets and caps are charged to it.
    pub address: IpAddr,
    /// What a trusted proxy said about the request the client sent it; `None` for a request
    /// that came straight from its client.
    pub forwarded: Option<Forwarded>,
}

/// The scheme and host a client used to reach a trusted proxy, as the proxy reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forwarded {
    /// `http` or `https` (`ws` and `wss` are read as these).
    pub scheme: Option<&'static str>,
    /// The `Host` the client sent, as the proxy reports it.
    pub host: Option<String>,
}

impl Client {
    /// A client that connected directly from `peer`.
    pub fn direct(peer: SocketAddr) -> Client {
        Client {
            address: peer.ip().to_canonical(),
            forwarded: None,
        }
    }
}

impl TrustedProxies {
    /// Parses `trusted_proxies`: CIDRs (`10.0.0.0/8`, `fd00::/8`) or single addresses.
    pub fn new(entries: &[String], header: ForwardedHeader) -> Result<TrustedProxies, String> {
        let nets = entries
            .iter()
            .map(|entry| {
                let text = entry.trim();
                text.parse::<IpNet>()
                    .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        format!(
                            "trusted_proxies: `{text}` is not a network like 10.0.0.0/8 or an address"
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(TrustedProxies { nets, header })
    }

    /// Whether connections from `address` may name their client.
    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.nets.iter().any(|net| net.contains(&address))
    }

    /// The client of a request from `peer` carrying `headers`; see the module documentation.
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> Client {
        if !self.trusts(peer.ip()) {
            return Client::direct(peer);
        }
        match self.header {
            ForwardedHeader::XForwardedFor => self.by_x_forwarded(peer, headers),
            ForwardedHeader::Forwarded => self.by_forwarded(peer, headers),
        }
    }

    fn by_x_forwarded(&self, peer: SocketAddr, headers: &HeaderMap) -> Client {
        let mut address = peer.ip().to_canonical();
        let values = headers.get_all("x-forwarded-for");
        'walk: for value in values.iter().rev() {
            let Ok(text) = value.to_str() else { break };
            for entry in text.rsplit(',') {
                let Some(hop) = node_address(entry.trim()) else {
                    break 'walk;
                };
                address = hop;
                if !self.trusts(hop) {
                    break 'walk;
                }
            }
        }
        let forwarded = Forwarded {
            scheme: first(headers.get("x-forwarded-proto")).and_then(scheme),
            host: first(headers.get("x-forwarded-host")).map(str::to_owned),
        };
        Client {
            address,
            forwarded: Some(forwarded),
        }
    }

    fn by_forwarded(&self, peer: SocketAddr, headers: &HeaderMap) -> Client {
        let mut address = peer.ip().to_canonical();
        let mut forwarded = Forwarded::default();
        let values = headers.get_all(FORWARDED);
        'walk: for value in values.iter().rev() {
            let Ok(text) = value.to_str() else { break };
            for element in split_unquoted(text, ',').into_iter().rev() {
                // Written by a trusted hop: its proto and host are believed even when its `for`
                // is not an address.
                let element = Element::parse(element);
                forwarded = Forwarded {
                    scheme: element.proto.and_then(scheme),
                    host: element.host.map(str::to_owned),
                };
                let Some(hop) = element.node.and_then(node_address) else {
                    break 'walk;
                };
                address = hop;
                if !self.trusts(hop) {
                    break 'walk;
                }
            }
        }
        Client {
            address,
            forwarded: Some(forwarded),
        }
    }
}

/// The first of a comma-separated header's values.
fn first(value: Option<&HeaderValue>) -> Option<&str> {
    let text = value?.to_str().ok()?;
    let first = text.split(',').next()?.trim();
    (!first.is_empty()).then_some(first)
}

/// The scheme `http` or `https` a forwarded proto names.
fn scheme(proto: &str) -> Option<&'static str> {
    if proto.eq_ignore_ascii_case("https") || proto.eq_ignore_ascii_case("wss") {
        Some("https")
    } else if proto.eq_ignore_ascii_case("http") || proto.eq_ignore_ascii_case("ws") {
        Some("http")
    } else {
        None
    }
}

/// The address of one hop as a proxy writes it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:4711`, optionally in double quotes; `None` for anything else
/// (`unknown`, `_hidden`).
fn node_address(text: &str) -> Option<IpAddr> {
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    let address = if let Some(rest) = text.strip_prefix('[') {
        let (v6, port) = rest.split_once(']')?;
        if !(port.is_empty() || port.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        v6.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)?
    } else if let Ok(address) = text.parse::<IpAddr>() {
        address
    } else {
        let (v4, port) = text.split_once(':')?;
        if !is_port(port) {
            return None;
        }
        v4.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)?
    };
    Some(address.to_canonical())
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

/// `text` split at each `separator` outside double quotes.
fn split_unquoted(text: &str, separator: char) -> Vec<&str> {
    let mut quoted = false;
    let mut escaped = false;
    let mut cuts = vec![0];
    for (at, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => cuts.push(at + 1),
            _ => {}
        }
    }
    cuts.push(text.len() + 1);
    cuts.windows(2).map(|w| &text[w[0]..w[1] - 1]).collect()
}

/// One element of a `Forwarded` header: its `for`, `proto` and `host` (`by` and extensions are not
/// needed).
#[derive(Debug, Default, PartialEq, Eq)]
struct Element<'a> {
    node: Option<&'a str>,
    proto: Option<&'a str>,
    host: Option<&'a str>,
}

impl<'a> Element<'a> {
    fn parse(text: &'a str) -> Element<'a> {
        let mut element = Element::default();
        for pair in split_unquoted(text, ';') {
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let value = value.trim();
            let unquoted = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            let name = name.trim();
            if name.eq_ignore_ascii_case("for") {
                element.node = Some(value);
            } else if name.eq_ignore_ascii_case("proto") {
                element.proto = Some(unquoted);
            } else if name.eq_ignore_ascii_case("host") {
                element.host = Some(unquoted);
            }
        }
        element
    }
}

#[cfg(test)]
mod tests;
