//! Who a request comes from. Behind a reverse proxy every request arrives
//! from the proxy, so the client's address is read from the one header the
//! proxy writes (`server.forwarded_header`: `X-Forwarded-For`, or RFC 7239
//! `Forwarded`), and only when the peer is one of `server.trusted_proxies`.
//! The client is the rightmost address in that header that is not a
//! trusted proxy: each proxy appends what it saw, so what a client writes
//! into the header itself stays on the left and is never believed, and the
//! other header, which the proxy passes through untouched, is never read.
//! A request from any other peer is that peer.
//!
//! Limits key on [`ClientKey`]: an IPv4 address, or an IPv6 address cut to
//! `server.ipv6_limit_prefix` bits (a /64 by default, what one subscriber
//! usually holds), so a client cannot escape a limit by rotating addresses
//! inside its own network.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use actix_web::http::header::HeaderMap;

/// The wider IPv6 network sessions are also counted by.
const NETWORK_PREFIX: u8 = 48;

/// A network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or a lone
/// address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    bits: u8,
}

/// Why a CIDR was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a network such as 10.0.0.0/8, 2001:db8::/32 or 127.0.0.1")]
pub struct InvalidCidr(String);

impl FromStr for Cidr {
    type Err = InvalidCidr;

    fn from_str(raw: &str) -> Result<Self, InvalidCidr> {
        let invalid = || InvalidCidr(raw.to_owned());
        let (address, bits) = match raw.trim().split_once('/') {
            Some((address, bits)) => (address, Some(bits)),
            None => (raw.trim(), None),
        };
        let address: IpAddr = address.parse().map_err(|_| invalid())?;
        let width = if address.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(bits) => bits.parse::<u8>().ok().filter(|b| *b <= width),
            None => Some(width),
        }
        .ok_or_else(invalid)?;
        Ok(Self {
            network: masked(address, bits),
            bits,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.bits)
    }
}

impl Cidr {
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        address.is_ipv4() == self.network.is_ipv4() && masked(address, self.bits) == self.network
    }
}

/// An IPv4-mapped IPv6 address is its IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// `address` with all but its first `bits` bits zeroed.
fn masked(address: IpAddr, bits: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            IpAddr::from((u32::from(v4) & mask).to_be_bytes())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            IpAddr::from((u128::from(v6) & mask).to_be_bytes())
        }
    }
}

/// What a limit counts a client as: its IPv4 address, or its IPv6 network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// The key as the actors' limits take it: an IPv6 network as its 128
    /// bits, an IPv4 address placed in `::1:0:0/96`, a reserved range no
    /// client is ever in.
    pub fn id(self) -> mikabot_actors::limits::ClientId {
        mikabot_actors::limits::ClientId(match self.0 {
            IpAddr::V4(v4) => (1 << 32) | u128::from(u32::from(v4)),
            IpAddr::V6(v6) => u128::from(v6),
        })
    }

    pub fn of(address: IpAddr, ipv6_prefix: u8) -> Self {
        match canonical(address) {
            v4 @ IpAddr::V4(_) => Self(v4),
            v6 => Self(masked(v6, ipv6_prefix.min(128))),
        }
    }
}

/// Which header a trusted proxy writes the client's address into.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` (nginx's `$proxy_add_x_forwarded_for`, Caddy,
    /// HAProxy, most load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=…`.
    Forwarded,
}

/// The addresses whose forwarded headers are believed, and how IPv6
/// clients are grouped.
#[derive(Clone, Debug, Default)]
pub struct ClientAddressing {
    pub trusted_proxies: Vec<Cidr>,
    pub header: ForwardedHeader,
    pub ipv6_prefix: u8,
}

impl ClientAddressing {
    fn trusted(&self, address: IpAddr) -> bool {
        self.trusted_proxies
            .iter()
            .any(|cidr| cidr.contains(address))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = canonical(peer?);
        if !self.trusted(peer) {
            return Some(peer);
        }
        let chain = forwarded_chain(headers, self.header);
        // From the right: the first hop no trusted proxy vouches for is the
        // client. A hop that is not an address ("unknown", a hidden name)
        // ends the walk at the last proxy known.
        let mut client = peer;
        for hop in chain.iter().rev() {
            match hop {
                Some(address) if self.trusted(*address) => client = *address,
                Some(address) => return Some(*address),
                None => return Some(client),
            }
        }
        Some(client)
    }

    /// The key a request's client is counted under.
    pub fn key(&self, address: IpAddr) -> ClientKey {
        ClientKey::of(address, self.ipv6_prefix)
    }

    /// The wider network an IPv6 client's sessions are also counted in (a
    /// /48, what one site is usually given, so that a client holding many
    /// /64s cannot fill the node); none for IPv4.
    pub fn network(&self, address: IpAddr) -> Option<ClientKey> {
        match canonical(address) {
            IpAddr::V4(_) => None,
            v6 => Some(ClientKey::of(v6, NETWORK_PREFIX.min(self.ipv6_prefix))),
        }
    }
}

/// The forwarded-for chain of `header`, leftmost (the original client, as
/// claimed) first. `None` marks a hop that is not an address.
fn forwarded_chain(headers: &HeaderMap, header: ForwardedHeader) -> Vec<Option<IpAddr>> {
    if header == ForwardedHeader::Forwarded {
        return headers
            .get_all("forwarded")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|line| line.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| hop(value.trim().trim_matches('"')))
                })
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(','))
        .map(|hop_text| hop(hop_text.trim()))
        .collect()
}

/// One hop: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn hop(raw: &str) -> Option<IpAddr> {
    if let Ok(address) = raw.parse::<IpAddr>() {
        return Some(canonical(address));
    }
    if let Some(rest) = raw.strip_prefix('[') {
        let (address, _) = rest.split_once(']')?;
        return address.parse().ok().map(canonical);
    }
    let (address, port) = raw.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    address.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    fn ip(raw: &str) -> IpAddr {
        raw.parse().expect("an address")
    }

    fn behind(proxies: &[&str]) -> ClientAddressing {
        ClientAddressing {
            trusted_proxies: proxies.iter().map(|p| p.parse().expect("a CIDR")).collect(),
            header: ForwardedHeader::XForwardedFor,
            ipv6_prefix: 64,
        }
    }

    #[test]
    fn networks_parse_and_contain_what_they_should() {
        let ten: Cidr = "10.0.0.0/8".parse().expect("valid");
        assert!(ten.contains(ip("10.200.3.4")));
        assert!(ten.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped");
        assert!(!ten.contains(ip("11.0.0.1")));
        let v6: Cidr = "2001:db8::/32".parse().expect("valid");
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        let lone: Cidr = "127.0.0.1".parse().expect("valid");
        assert_eq!(lone.to_string(), "127.0.0.1/32");
        assert_eq!(
            "10.9.9.9/8".parse::<Cidr>().expect("valid").to_string(),
            "10.0.0.0/8"
        );
        let everything: Cidr = "0.0.0.0/0".parse().expect("valid");
        assert!(everything.contains(ip("203.0.113.9")));
        for bad in ["10.0.0.0/33", "2001:db8::/129", "ten", "10.0.0.0/", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let addressing = behind(&["127.0.0.1"]);
        let spoofed = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("forwarded", "for=198.51.100.2"),
        ]);
        assert_eq!(
            addressing.client(Some(ip("203.0.113.5")), &spoofed),
            Some(ip("203.0.113.5"))
        );
        // With no proxy trusted at all, the same.
        assert_eq!(
            ClientAddressing::default().client(Some(ip("127.0.0.1")), &spoofed),
            Some(ip("127.0.0.1"))
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() {
        let addressing = behind(&["127.0.0.1", "10.0.0.0/8"]);
        // The client wrote "1.1.1.1" itself; nginx appended what it saw.
        let chain = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.0.0.2")]);
        assert_eq!(
            addressing.client(Some(ip("127.0.0.1")), &chain),
            Some(ip("203.0.113.7"))
        );
        // Several header lines are one chain.
        let lines = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.8:5123"),
        ]);
        assert_eq!(
            addressing.client(Some(ip("127.0.0.1")), &lines),
            Some(ip("203.0.113.8"))
        );
        // Only the configured header is read: a client's own Forwarded
        // header, passed through by a proxy that writes X-Forwarded-For,
        // changes nothing.
        let both = headers(&[
            ("x-forwarded-for", "198.51.100.9"),
            (
                "forwarded",
                "for=192.0.2.60;proto=https, for=\"[2001:db8:cafe::17]:4711\";by=10.0.0.1",
            ),
        ]);
        assert_eq!(
            addressing.client(Some(ip("127.0.0.1")), &both),
            Some(ip("198.51.100.9"))
        );
        let rfc = ClientAddressing {
            header: ForwardedHeader::Forwarded,
            ..addressing.clone()
        };
        assert_eq!(
            rfc.client(Some(ip("127.0.0.1")), &both),
            Some(ip("2001:db8:cafe::17")),
            "IPv6 in brackets with a port"
        );
        // Every hop a proxy, or none given: the last proxy is the client.
        let all_proxies = headers(&[("x-forwarded-for", "10.0.0.3, 10.0.0.2")]);
        assert_eq!(
            addressing.client(Some(ip("127.0.0.1")), &all_proxies),
            Some(ip("10.0.0.3"))
        );
        assert_eq!(
            addressing.client(Some(ip("127.0.0.1")), &HeaderMap::new()),
            Some(ip("127.0.0.1"))
        );
        // A hop that is not an address stops the walk.
        let hidden = headers(&[("forwarded", "for=198.51.100.3, for=unknown, for=10.0.0.4")]);
        assert_eq!(
            rfc.client(Some(ip("127.0.0.1")), &hidden),
            Some(ip("10.0.0.4"))
        );
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_prefix() {
        let addressing = behind(&[]);
        let a = addressing.key(ip("2001:db8:1:2:aaaa::1"));
        let b = addressing.key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        let c = addressing.key(ip("2001:db8:1:3::1"));
        assert_eq!(a, b, "one /64");
        assert_ne!(a, c);
        assert_ne!(
            addressing.key(ip("192.0.2.1")),
            addressing.key(ip("192.0.2.2"))
        );
        assert_eq!(
            addressing.key(ip("::ffff:192.0.2.1")),
            addressing.key(ip("192.0.2.1"))
        );
        let wide = ClientAddressing {
            ipv6_prefix: 48,
            ..behind(&[])
        };
        assert_eq!(
            wide.key(ip("2001:db8:1:2::1")),
            wide.key(ip("2001:db8:1:3::1"))
        );
    }
}
