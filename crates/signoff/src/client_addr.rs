//! Who the client is, as far as throttling and the audit trail are concerned.
//!
//! The TCP peer, unless the peer is one of the configured trusted proxies (`TRUSTED_PROXIES`):
//! then the address that proxy reports in `Forwarded` (RFC 7239) or `X-Forwarded-For`, walking the
//! chain from the right and skipping further trusted proxies. Forwarding headers from anyone else
//! are ignored: a client cannot choose its own address. For counting, an IPv6 client is its /64
//! (one subscriber usually holds a whole /64 and can rotate within it at will).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use http::HeaderMap;

/// A network in CIDR notation: `10.0.0.0/8`, `::1/128`, or a plain address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `addr` is in this range.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, canonical(addr)) {
            (IpAddr::V4(net), IpAddr::V4(addr)) => {
                prefix_eq(&net.octets(), &addr.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(addr)) => {
                prefix_eq(&net.octets(), &addr.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text.trim(), None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IP address"))?;
        let network = canonical(network);
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{prefix:?} is not a prefix length of 0 to {max}"))?,
        };
        Ok(Cidr { network, prefix })
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    if a[..full] != b[..full] {
        return false;
    }
    let rest = prefix % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

/// IPv4-mapped IPv6 (`::ffff:192.0.2.1`, what a dual-stack socket reports) as plain IPv4.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `addr` is one of the trusted proxies (`TRUSTED_PROXIES`).
pub fn is_trusted_proxy(addr: IpAddr, trusted: &[Cidr]) -> bool {
    let addr = canonical(addr);
    trusted.iter().any(|cidr| cidr.contains(addr))
}

/// The client's address: the peer, or what trusted proxies say on its behalf.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let peer = canonical(peer);
    if !is_trusted_proxy(peer, trusted) {
        return peer;
    }
    // The chain as the proxies appended it, nearest last.
    let chain = forwarded_chain(headers);
    let mut client = peer;
    for hop in chain.into_iter().rev() {
        let Some(hop) = hop.map(canonical) else {
            // An entry that is not an address ("unknown", obfuscated): stop at the last known.
            break;
        };
        client = hop;
        if !is_trusted_proxy(hop, trusted) {
            break;
        }
    }
    client
}

/// `Forwarded: for=…` entries if present, otherwise `X-Forwarded-For`; `None` for an entry that
/// is not an address.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<Option<IpAddr>> = headers
        .get_all(http::header::FORWARDED)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                name.eq_ignore_ascii_case("for")
                    .then(|| parse_node(value.trim().trim_matches('"')))
            })
        })
        .collect();
    if !forwarded.is_empty() {
        return forwarded;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|entry| parse_node(entry.trim()))
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:8080`, `[2001:db8::1]`, `[2001:db8::1]:8080`, `2001:db8::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    node.parse()
        .ok()
        .or_else(|| node.rsplit_once(':')?.0.parse().ok())
}

/// The key an address is counted under: an IPv4 address as is, an IPv6 address by its /64.
pub fn counting_key(addr: IpAddr) -> String {
    match canonical(addr) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

/// What the audit trail and the session list record about the client.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    /// The client: the TCP peer, or what a trusted proxy reports (`client_addr`).
    pub ip: Option<IpAddr>,
    /// The `User-Agent` the client sent, if any (bounded).
    pub user_agent: Option<String>,
}

impl RequestMeta {
    /// The client of a request with these headers from this TCP peer (axum handlers that are
    /// not server functions call this directly).
    pub fn of(headers: &http::HeaderMap, peer: Option<SocketAddr>, trusted: &[Cidr]) -> Self {
        RequestMeta {
            ip: peer.map(|addr| client_ip(addr.ip(), headers, trusted)),
            user_agent: headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_and_match() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.1.2.3")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.9.9.9")), "IPv4-mapped");
        let v6: Cidr = "2001:db8::/33".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:7fff::1")));
        assert!(!v6.contains(ip("2001:db8:8000::1")));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        for bad in ["10.0.0.0/33", "nonsense", "::1/129", "10.0.0.0/x"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let trusted: Vec<Cidr> = vec!["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
        let xff = headers(&[("x-forwarded-for", "203.0.113.9, 10.0.0.7")]);
        // From a trusted proxy: the rightmost address that is not a proxy.
        assert_eq!(
            client_ip(ip("127.0.0.1"), &xff, &trusted),
            ip("203.0.113.9")
        );
        // From anyone else: the peer, whatever it claims.
        assert_eq!(
            client_ip(ip("198.51.100.1"), &xff, &trusted),
            ip("198.51.100.1")
        );
        // A client cannot hide behind entries it prepends itself.
        let spoofed = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9")]);
        assert_eq!(
            client_ip(ip("127.0.0.1"), &spoofed, &trusted),
            ip("203.0.113.9")
        );
        let forwarded = headers(&[(
            "forwarded",
            "for=\"[2001:db8::1]:4711\";proto=https, for=10.0.0.2",
        )]);
        assert_eq!(
            client_ip(ip("10.0.0.3"), &forwarded, &trusted),
            ip("2001:db8::1")
        );
        // No header from a trusted proxy: the proxy itself.
        assert_eq!(
            client_ip(ip("10.0.0.3"), &HeaderMap::new(), &trusted),
            ip("10.0.0.3")
        );
        // Nothing trusted (the default): headers never count.
        assert_eq!(client_ip(ip("127.0.0.1"), &xff, &[]), ip("127.0.0.1"));
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        assert_eq!(
            counting_key(ip("2001:db8:1:2:aaaa::1")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            counting_key(ip("2001:db8:1:2:bbbb::9")),
            counting_key(ip("2001:db8:1:2:aaaa::1"))
        );
        assert_ne!(
            counting_key(ip("2001:db8:1:3::1")),
            counting_key(ip("2001:db8:1:2::1"))
        );
        assert_eq!(counting_key(ip("192.0.2.7")), "192.0.2.7");
        assert_eq!(counting_key(ip("::ffff:192.0.2.7")), "192.0.2.7");
    }
}
