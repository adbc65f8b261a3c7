//! Who the client is: the peer, or the address that trusted proxies report
//! for it; and how client addresses are grouped for limits.

use crate::Request;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// A block of IP addresses in CIDR notation: `10.0.0.0/8`, `2001:db8::/32`,
/// or one address (`192.0.2.1` is `192.0.2.1/32`). Names the proxies a
/// [`ForwardedClient`] trusts.
///
/// Host bits are cleared (`10.1.2.3/8` is `10.0.0.0/8`). An IPv4-mapped IPv6
/// address (`::ffff:10.0.0.1`) is the IPv4 address it maps, both as a block
/// and when [`contains`](Cidr::contains) is asked.
///
/// Hand-written rather than taken from a crate: it is std's address parser,
/// a prefix length and a mask.
///
/// ```
/// use keel::middleware::Cidr;
///
/// let private: Cidr = "10.0.0.0/8".parse().unwrap();
/// assert!(private.contains("10.200.0.1".parse().unwrap()));
/// assert!(private.contains("::ffff:10.0.0.1".parse().unwrap()));
/// assert!(!private.contains("11.0.0.1".parse().unwrap()));
/// assert!("10.0.0.0/33".parse::<Cidr>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a [`Cidr`] could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CidrError {
    /// The part before `/` is not an IPv4 or IPv6 address.
    Address,
    /// The prefix length is not a number of at most 32 (IPv4) or 128 (IPv6).
    Prefix,
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CidrError::Address => "not an IP address (expected e.g. 10.0.0.0/8 or 2001:db8::/32)",
            CidrError::Prefix => {
                "prefix length past the address's bits (32 for IPv4, 128 for IPv6)"
            }
        })
    }
}

impl std::error::Error for CidrError {}

impl Cidr {
    /// The loopback blocks, `127.0.0.0/8` and `::1/128`.
    pub const LOOPBACK: [Cidr; 2] = [
        Cidr {
            network: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
            prefix: 8,
        },
        Cidr {
            network: IpAddr::V6(Ipv6Addr::LOCALHOST),
            prefix: 128,
        },
    ];

    /// The block of `prefix` leading bits of `addr`.
    ///
    /// # Errors
    ///
    /// [`CidrError::Prefix`] when `prefix` is past the address's bits.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Cidr, CidrError> {
        let (addr, prefix) = match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => (IpAddr::V4(v4), prefix - 96),
                _ => (addr, prefix),
            },
            IpAddr::V4(_) => (addr, prefix),
        };
        let network = match addr {
            IpAddr::V4(v4) if prefix <= 32 => {
                IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask_u32(prefix)))
            }
            IpAddr::V6(v6) if prefix <= 128 => {
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask_u128(prefix)))
            }
            _ => return Err(CidrError::Prefix),
        };
        Ok(Cidr { network, prefix })
    }

    /// Whether `ip` lies in this block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask_u32(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask_u128(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Cidr, CidrError> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| CidrError::Address)?;
        let prefix = match prefix {
            // Digits only: `u8::from_str` would take a leading `+`.
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().map_err(|_| CidrError::Prefix)?
            }
            Some(_) => return Err(CidrError::Prefix),
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        Cidr::new(addr, prefix)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn mask_u32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_u128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is; others unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The address a limit charges for `ip`: IPv4 addresses one by one, IPv6
/// addresses by their /64 (a single host usually holds a whole /64, so one
/// per /128 would let it dodge any limit), IPv4-mapped IPv6 as IPv4.
pub(super) fn limit_group(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask_u128(64))),
        v4 => v4,
    }
}

/// The client of a request that came through trusted proxies.
///
/// Each proxy appends the address it received the request from to a
/// header (`X-Forwarded-For: client, proxy1, proxy2`); entries left of the
/// ones a trusted proxy wrote are whatever the client sent. So the client
/// is found from the right:
///
/// - A peer outside the trusted set is the client; its header is ignored.
/// - Otherwise the **last** field line of the header is read (a client's
///   own line comes first), its comma-separated entries from the right, and
///   the first address not in the trusted set is the client. When every
///   entry is trusted, the leftmost is. An entry that is not an address
///   (`unknown`, a bare name, garbage) ends the walk: the trusted hop right
///   of it stands for the client. No header: the peer.
///
/// Entries may be `IP`, `IPv4:port` or `[IPv6]:port`; IPv4-mapped IPv6 is
/// read as IPv4.
///
/// # Cost
///
/// A scan of the header fields and one pass over the last value, from the
/// right; allocates nothing.
///
/// ```
/// use keel::middleware::{Cidr, ForwardedClient};
/// use keel::testing::MemoryConn;
/// use keel::{Request, Response};
///
/// // MemoryConn's peer is 127.0.0.1: the proxy here.
/// let proxies = ForwardedClient::new("X-Forwarded-For", Cidr::LOOPBACK);
/// let mut conn = MemoryConn::new(move |req: &Request<'_>, res: &mut Response<'_>| {
///     res.body(proxies.client_ip(req).to_string().as_bytes());
/// });
/// // The client wrote the first entry; the proxy appended the second.
/// conn.send(b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6, 203.0.113.7\r\n\r\n");
/// assert!(conn.recv().ends_with(b"\r\n\r\n203.0.113.7"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardedClient {
    header: Box<str>,
    proxies: Box<[Cidr]>,
    unix_peers: bool,
}

impl ForwardedClient {
    /// Clients as the proxies in `proxies` report them in `header`
    /// (`X-Forwarded-For` is the usual one).
    pub fn new(header: &str, proxies: impl IntoIterator<Item = Cidr>) -> ForwardedClient {
        ForwardedClient {
            header: header.into(),
            proxies: proxies.into_iter().collect(),
            unix_peers: false,
        }
    }

    /// Whether a peer on a Unix socket (a proxy on this machine, such as
    /// nginx with `proxy_pass http://unix:...`) is trusted to name the
    /// client. Default `false`: its header is ignored, and the peer is the
    /// client, whose address is [`Request::UNIX_PEER_ADDR`] (so all Unix
    /// peers share one rate-limit bucket). Trust it only when every
    /// process that may connect to the socket is such a proxy: the
    /// socket's permissions say who may.
    ///
    /// Whether the peer is trusted is decided by this alone, never by the
    /// CIDR blocks: `0.0.0.0/0` does not trust Unix peers.
    ///
    /// ```
    /// use keel::middleware::ForwardedClient;
    /// use keel::testing::MemoryConn;
    /// use keel::{PeerCredentials, Request, Response};
    ///
    /// let nginx = PeerCredentials { pid: 100, uid: 33, gid: 33 };
    /// let proxies = ForwardedClient::new("X-Forwarded-For", []).trust_unix_peers(true);
    /// let mut conn = MemoryConn::new(move |req: &Request<'_>, res: &mut Response<'_>| {
    ///     res.body(proxies.client_ip(req).to_string().as_bytes());
    /// })
    /// .with_peer_credentials(nginx);
    /// conn.send(b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n");
    /// assert!(conn.recv().ends_with(b"\r\n\r\n203.0.113.7"));
    /// ```
    pub fn trust_unix_peers(mut self, trust: bool) -> ForwardedClient {
        self.unix_peers = trust;
        self
    }

    /// Whether peers on a Unix socket are trusted (see
    /// [`trust_unix_peers`](ForwardedClient::trust_unix_peers)).
    pub fn trusts_unix_peers(&self) -> bool {
        self.unix_peers
    }

    /// The header read.
    pub fn header(&self) -> &str {
        &self.header
    }

    /// The trusted proxies.
    pub fn proxies(&self) -> &[Cidr] {
        &self.proxies
    }

    /// Whether `ip` is a trusted proxy.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|cidr| cidr.contains(ip))
    }

    /// The client's address (see the [type docs](ForwardedClient)).
    pub fn client_ip(&self, req: &Request<'_>) -> IpAddr {
        let peer = canonical(req.peer_addr().ip());
        let trusted = match req.peer_credentials() {
            Some(_) => self.unix_peers,
            None => self.is_trusted(peer),
        };
        self.resolve(peer, trusted, req.headers())
    }

    fn resolve<'h>(
        &self,
        peer: IpAddr,
        peer_trusted: bool,
        headers: impl Iterator<Item = (&'h str, &'h [u8])>,
    ) -> IpAddr {
        if !peer_trusted {
            return peer;
        }
        let last_line = headers
            .filter(|(name, _)| name.eq_ignore_ascii_case(&self.header))
            .last();
        let Some((_, value)) = last_line else {
            return peer;
        };
        let mut client = peer;
        for entry in value.rsplit(|&b| b == b',') {
            let Some(hop) = parse_hop(entry.trim_ascii()) else {
                break;
            };
            client = hop;
            if !self.is_trusted(hop) {
                break;
            }
        }
        client
    }
}

/// One forwarded-for entry: `IP`, `IPv4:port`, `[IPv6]` or `[IPv6]:port`.
fn parse_hop(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?;
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(canonical(addr.ip()));
    }
    let bracketed = text.strip_prefix('[')?.strip_suffix(']')?;
    bracketed
        .parse::<Ipv6Addr>()
        .ok()
        .map(|v6| canonical(IpAddr::V6(v6)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_mask_and_contain() {
        assert_eq!(cidr("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(cidr("192.0.2.1").to_string(), "192.0.2.1/32");
        assert_eq!(cidr("2001:db8::1").to_string(), "2001:db8::1/128");
        assert_eq!(cidr("::ffff:10.0.0.0/104").to_string(), "10.0.0.0/8");
        assert_eq!(cidr("0.0.0.0/0").to_string(), "0.0.0.0/0");
        for bad in [
            "",
            "x",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/+8",
            "10.0.0/8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?}");
        }
        let net = cidr("10.0.0.0/8");
        assert!(net.contains(ip("10.255.255.255")));
        assert!(net.contains(ip("::ffff:10.0.0.1")));
        assert!(!net.contains(ip("11.0.0.0")));
        assert!(
            !net.contains(ip("::a00:1")),
            "IPv4-compatible is not mapped"
        );
        let v6 = cidr("2001:db8::/32");
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(cidr("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(!cidr("0.0.0.0/0").contains(ip("::1")));
    }

    #[test]
    fn ipv6_is_grouped_by_64_and_mapped_ipv4_is_ipv4() {
        assert_eq!(
            limit_group(ip("2001:db8:1:2:aaaa::1")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            limit_group(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            limit_group(ip("2001:db8:1:2::7"))
        );
        assert_ne!(
            limit_group(ip("2001:db8:1:2::1")),
            limit_group(ip("2001:db8:1:3::1"))
        );
        assert_eq!(limit_group(ip("::ffff:203.0.113.7")), ip("203.0.113.7"));
        assert_eq!(limit_group(ip("203.0.113.7")), ip("203.0.113.7"));
    }

    /// The client for a request from `peer` with these header lines.
    fn client(proxies: &[&str], peer: &str, lines: &[(&str, &str)]) -> IpAddr {
        let trusted = ForwardedClient::new("X-Forwarded-For", proxies.iter().map(|p| cidr(p)));
        let peer = canonical(ip(peer));
        trusted.resolve(
            peer,
            trusted.is_trusted(peer),
            lines.iter().map(|(name, value)| (*name, value.as_bytes())),
        )
    }

    #[test]
    fn the_rightmost_untrusted_address_of_the_last_line_is_the_client() {
        let xff = "X-Forwarded-For";
        let proxies = ["10.0.0.0/8", "2001:db8:ffff::/48"];
        // (peer, header lines, the client)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case<'_>] = &[
            // An untrusted peer is the client, whatever it sends.
            ("203.0.113.9", &[(xff, "198.51.100.1")], "203.0.113.9"),
            // A trusted peer without the header is the client.
            ("10.0.0.1", &[], "10.0.0.1"),
            ("10.0.0.1", &[("X-Real-Ip", "198.51.100.1")], "10.0.0.1"),
            // Spoofed leftmost entries lose to what the proxy appended.
            (
                "10.0.0.1",
                &[(xff, "6.6.6.6, 198.51.100.1")],
                "198.51.100.1",
            ),
            (
                "10.0.0.1",
                &[(xff, "6.6.6.6,198.51.100.1 , 10.0.0.2, 10.9.9.9")],
                "198.51.100.1",
            ),
            // The last field line counts; a client's own line comes first.
            (
                "10.0.0.1",
                &[(xff, "6.6.6.6"), ("x-forwarded-for", "198.51.100.2")],
                "198.51.100.2",
            ),
            // Every entry trusted: the leftmost.
            ("10.0.0.1", &[(xff, "10.0.0.3, 10.0.0.2")], "10.0.0.3"),
            // Not an address: the trusted hop right of it stands in.
            (
                "10.0.0.1",
                &[(xff, "198.51.100.1, unknown, 10.0.0.2")],
                "10.0.0.2",
            ),
            ("10.0.0.1", &[(xff, "198.51.100.1, ")], "10.0.0.1"),
            ("10.0.0.1", &[(xff, "")], "10.0.0.1"),
            // Ports and brackets; mapped IPv4 as IPv4 (peer and entries).
            ("10.0.0.1", &[(xff, "198.51.100.1:4711")], "198.51.100.1"),
            ("10.0.0.1", &[(xff, "[2001:db8::7]:443")], "2001:db8::7"),
            ("10.0.0.1", &[(xff, "[2001:db8::8]")], "2001:db8::8"),
            (
                "::ffff:10.0.0.1",
                &[(xff, "::ffff:198.51.100.3")],
                "198.51.100.3",
            ),
            (
                "2001:db8:ffff::1",
                &[(xff, "2001:db8::9, 2001:db8:ffff:1::1")],
                "2001:db8::9",
            ),
        ];
        for (peer, lines, want) in cases {
            assert_eq!(client(&proxies, peer, lines), ip(want), "{peer} {lines:?}");
        }
    }

    /// The client of a request over a Unix socket, with `trust` for Unix peers.
    fn unix_client(trust: bool, proxies: &[&str], wire: &[u8]) -> String {
        use crate::testing::MemoryConn;
        use crate::{PeerCredentials, Request, Response};
        let forwarded = ForwardedClient::new("X-Forwarded-For", proxies.iter().map(|p| cidr(p)))
            .trust_unix_peers(trust);
        let nginx = PeerCredentials {
            pid: 1,
            uid: 33,
            gid: 33,
        };
        let mut conn = MemoryConn::new(move |req: &Request<'_>, res: &mut Response<'_>| {
            res.body(forwarded.client_ip(req).to_string().as_bytes());
        })
        .with_peer_credentials(nginx);
        conn.send(wire);
        conn.responses().unwrap()[0].text()
    }

    #[test]
    fn a_unix_peer_names_the_client_only_when_unix_peers_are_trusted() {
        let spoof = b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6, 198.51.100.1\r\n\r\n";
        assert_eq!(unix_client(true, &[], spoof), "198.51.100.1");
        // Not trusted: the header is the attacker's word; the peer (one
        // address for every Unix peer) is the client.
        assert_eq!(unix_client(false, &[], spoof), "0.0.0.0");
        // Trusting every IP block trusts no Unix peer.
        assert_eq!(unix_client(false, &["0.0.0.0/0", "::/0"], spoof), "0.0.0.0");
        let none = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(unix_client(true, &[], none), "0.0.0.0");
    }
}
