//! Whether a link's host and port are the shortener itself.
//!
//! A link to the shortener's own address redirects to another short link;
//! two such links redirect to each other forever, each hop a click. Hosts
//! are compared as a browser reads them (WHATWG host parsing, the `url`
//! crate): `127.1`, `2130706433`, `0x7f.0.0.1`, `0177.0.0.1`,
//! `[::ffff:127.0.0.1]` and `0` all name 127.0.0.1 or 0.0.0.0, so a string
//! comparison misses them.
//!
//! A name that reaches this machine only through DNS (a wildcard DNS
//! service answering 127.0.0.1) is not caught: that needs a lookup per
//! link, and the answer may change after the check.

use std::net::{IpAddr, SocketAddr};
use url::Host;

/// A host as compared: a domain in lowercase without its trailing dot, or
/// an IP address with an IPv4-mapped IPv6 address taken as the IPv4 one
/// (both reach the same socket).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CanonicalHost {
    Domain(String),
    Ip(IpAddr),
}

impl CanonicalHost {
    /// The canonical form of a host the `url` crate parsed.
    pub fn of<S: AsRef<str>>(host: &Host<S>) -> CanonicalHost {
        match host {
            Host::Domain(name) => {
                CanonicalHost::Domain(name.as_ref().trim_end_matches('.').to_ascii_lowercase())
            }
            Host::Ipv4(ip) => CanonicalHost::Ip(IpAddr::V4(*ip)),
            Host::Ipv6(ip) => CanonicalHost::Ip(canonical_ip(IpAddr::V6(*ip))),
        }
    }

    /// Whether this host is the machine itself whatever interface the
    /// shortener listens on: `localhost` and names under it (RFC 6761),
    /// loopback addresses (127/8, `::1`) and the unspecified addresses
    /// (`0.0.0.0`, `::`), which Linux connects to loopback.
    fn is_this_machine(&self) -> bool {
        match self {
            CanonicalHost::Domain(name) => name == "localhost" || name.ends_with(".localhost"),
            CanonicalHost::Ip(ip) => ip.is_loopback() || ip.is_unspecified(),
        }
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`; any other address as it is.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Where the shortener answers: its base URL's host and port, and the
/// address it listens on. Links there are refused ([`super::url`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnAddress {
    /// Hosts other than this machine's loopback names, with their port.
    endpoints: Vec<(CanonicalHost, u16)>,
    /// Ports on which every loopback or unspecified address and every
    /// `localhost` name is the shortener.
    loopback_ports: Vec<u16>,
}

impl OwnAddress {
    /// From the base URL (`https://sho.rt`) and the listen address.
    ///
    /// A base URL without a port stands for both 80 and 443: a proxy in
    /// front usually answers on both, and one redirects to the other. A
    /// base URL or listen address on this machine (loopback, unspecified,
    /// `localhost`) makes every such address with its port the
    /// shortener too. A base URL that does not parse adds nothing.
    pub fn new(base_url: &str, listen: Option<SocketAddr>) -> OwnAddress {
        let mut own = OwnAddress::default();
        if let Ok(base) = url::Url::parse(base_url) {
            if let Some(host) = base.host() {
                let host = CanonicalHost::of(&host);
                match base.port() {
                    Some(port) => own.add(host, port),
                    None => {
                        own.add(host.clone(), 80);
                        own.add(host, 443);
                    }
                }
            }
        }
        if let Some(addr) = listen {
            own.add(CanonicalHost::Ip(canonical_ip(addr.ip())), addr.port());
        }
        own
    }

    /// Port 0 (`--addr 127.0.0.1:0`: the kernel picks the port when the
    /// server binds) names no port a link could reach: it adds nothing, or
    /// every link to port 0 of this machine would count as the shortener.
    fn add(&mut self, host: CanonicalHost, port: u16) {
        if port == 0 {
            return;
        }
        if host.is_this_machine() {
            self.loopback_ports.push(port);
        } else {
            self.endpoints.push((host, port));
        }
    }

    /// Whether `host:port` reaches the shortener.
    pub fn is(&self, host: &CanonicalHost, port: u16) -> bool {
        if host.is_this_machine() && self.loopback_ports.contains(&port) {
            return true;
        }
        self.endpoints
            .iter()
            .any(|(own, own_port)| own == host && *own_port == port)
    }
}
