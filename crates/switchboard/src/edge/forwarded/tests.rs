//! The client behind trusted proxies, header by header.

use super::*;

const PROXY: &str = "10.0.0.2:50000";

fn proxies(header: ForwardedHeader) -> TrustedProxies {
    let nets = ["10.0.0.0/8".to_owned(), "2001:db8:ffff::1".to_owned()];
    TrustedProxies::new(&nets, header).unwrap()
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

fn client(header: ForwardedHeader, peer: &str, pairs: &[(&'static str, &str)]) -> Client {
    proxies(header).client(peer.parse().unwrap(), &headers(pairs))
}

fn address(header: ForwardedHeader, peer: &str, pairs: &[(&'static str, &str)]) -> String {
    client(header, peer, pairs).address.to_string()
}

use ForwardedHeader::{Forwarded as Rfc, XForwardedFor as Xff};

#[test]
fn an_untrusted_peer_is_its_own_client_whatever_it_says() {
    let spoof = [
        ("x-forwarded-for", "198.51.100.1"),
        (
            "forwarded",
            "for=198.51.100.1;proto=https;host=evil.example",
        ),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example"),
    ];
    for header in [Xff, Rfc] {
        let c = client(header, "203.0.113.9:1234", &spoof);
        assert_eq!(c, Client::direct("203.0.113.9:1234".parse().unwrap()));
        assert_eq!(c.forwarded, None);
    }
}

#[test]
fn the_rightmost_untrusted_hop_is_the_client() {
    // The client made up the first entry; the proxy appended the address it saw.
    let xff = [("x-forwarded-for", "198.51.100.1, 203.0.113.7")];
    assert_eq!(address(Xff, PROXY, &xff), "203.0.113.7");
    // A chain of trusted proxies is skipped.
    let chain = [(
        "x-forwarded-for",
        "198.51.100.1, 203.0.113.7, 10.1.1.1,10.2.2.2",
    )];
    assert_eq!(address(Xff, PROXY, &chain), "203.0.113.7");
    // Several header lines are one list, in order.
    let lines = [
        ("x-forwarded-for", "198.51.100.1"),
        ("x-forwarded-for", "203.0.113.7, 10.1.1.1"),
    ];
    assert_eq!(address(Xff, PROXY, &lines), "203.0.113.7");
    // Every hop trusted: the leftmost is as far as anyone can tell.
    let inside = [("x-forwarded-for", "10.9.9.9, 10.1.1.1")];
    assert_eq!(address(Xff, PROXY, &inside), "10.9.9.9");
    // No header: the proxy itself (its health checks, say).
    assert_eq!(address(Xff, PROXY, &[]), "10.0.0.2");
}

#[test]
fn what_is_not_an_address_ends_the_walk_at_the_last_trusted_hop() {
    for list in [
        "garbage, 10.1.1.1",
        "unknown,10.1.1.1",
        "198.51.100.1, , 10.1.1.1",
    ] {
        let xff = [("x-forwarded-for", list)];
        assert_eq!(address(Xff, PROXY, &xff), "10.1.1.1", "{list}");
    }
    let bad = [("x-forwarded-for", "not an address")];
    assert_eq!(address(Xff, PROXY, &bad), "10.0.0.2");
}

#[test]
fn hops_are_read_in_every_form_proxies_write() {
    for (entry, expected) in [
        ("203.0.113.7", "203.0.113.7"),
        ("203.0.113.7:4711", "203.0.113.7"),
        ("2001:db8::7", "2001:db8::7"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("[2001:db8::7]:4711", "2001:db8::7"),
        ("\"[2001:db8::7]:4711\"", "2001:db8::7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
    ] {
        assert_eq!(
            node_address(entry).unwrap().to_string(),
            expected,
            "{entry}"
        );
    }
    for entry in [
        "",
        "unknown",
        "_hidden",
        "203.0.113.7:",
        "203.0.113.7:x",
        "[::1]x",
        "[::1",
    ] {
        assert_eq!(node_address(entry), None, "{entry}");
    }
    // An IPv4 peer seen through a dual-stack socket is trusted as its IPv4 address.
    let mapped = [("x-forwarded-for", "203.0.113.7")];
    assert_eq!(address(Xff, "[::ffff:10.0.0.2]:1", &mapped), "203.0.113.7");
    assert_eq!(address(Xff, "[2001:db8:ffff::1]:1", &mapped), "203.0.113.7");
}

#[test]
fn proto_and_host_come_from_a_trusted_proxy() {
    let pairs = [
        ("x-forwarded-for", "203.0.113.7"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "app.example, internal"),
    ];
    let forwarded = client(Xff, PROXY, &pairs).forwarded.unwrap();
    assert_eq!(forwarded.scheme, Some("https"));
    assert_eq!(forwarded.host.as_deref(), Some("app.example"));
    let odd = [("x-forwarded-proto", "gopher")];
    assert_eq!(client(Xff, PROXY, &odd).forwarded.unwrap().scheme, None);
}

#[test]
fn the_forwarded_header_is_read_element_by_element() {
    let rfc = [(
        "forwarded",
        "for=198.51.100.1;host=spoof.example, for=\"203.0.113.7:1\";proto=https;host=\"app.example\", for=10.1.1.1;proto=http",
    )];
    let c = client(Rfc, PROXY, &rfc);
    assert_eq!(c.address.to_string(), "203.0.113.7");
    let forwarded = c.forwarded.unwrap();
    assert_eq!(forwarded.scheme, Some("https"));
    assert_eq!(forwarded.host.as_deref(), Some("app.example"));
    // Quoted commas and semicolons do not split.
    let quoted = [("forwarded", "for=\"[2001:db8::7]\";host=\"a,b;c\"")];
    let c = client(Rfc, PROXY, &quoted);
    assert_eq!(c.address.to_string(), "2001:db8::7");
    assert_eq!(c.forwarded.unwrap().host.as_deref(), Some("a,b;c"));
    // An obfuscated hop stops the walk; the proto of its element still counts.
    let hidden = [("forwarded", "for=203.0.113.7, for=_hidden;proto=https")];
    let c = client(Rfc, PROXY, &hidden);
    assert_eq!(c.address.to_string(), "10.0.0.2");
    assert_eq!(c.forwarded.unwrap().scheme, Some("https"));
}

#[test]
fn only_the_configured_header_is_read() {
    let both = [
        ("x-forwarded-for", "198.51.100.1"),
        ("forwarded", "for=203.0.113.7"),
    ];
    assert_eq!(address(Xff, PROXY, &both), "198.51.100.1");
    assert_eq!(address(Rfc, PROXY, &both), "203.0.113.7");
}

#[test]
fn bad_entries_are_errors() {
    for bad in ["10.0.0.0/33", "ten", "10.0.0.0/8/8", ""] {
        assert!(
            TrustedProxies::new(&[bad.to_owned()], Xff).is_err(),
            "{bad}"
        );
    }
    let host_bits = TrustedProxies::new(&["10.1.2.3/8".to_owned()], Xff).unwrap();
    assert!(host_bits.trusts("10.200.0.1".parse().unwrap()));
    assert!(!TrustedProxies::default().trusts("10.200.0.1".parse().unwrap()));
}
