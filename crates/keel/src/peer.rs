//! Who is at the other end of a connection: an IP peer (TCP), or a local
//! process (a Unix socket), known by the credentials the kernel vouches for.

use std::net::{Ipv4Addr, SocketAddr};

/// The process at the other end of a Unix socket connection, as the kernel
/// recorded it when that process connected (`SO_PEERCRED`): it cannot be
/// forged by the peer. Read once per connection, at accept.
///
/// See [`Request::peer_credentials`](crate::Request::peer_credentials).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerCredentials {
    /// The peer's process id; 0 when that process lives in a PID namespace
    /// this one cannot see.
    pub pid: u32,
    /// The peer's effective user id when it connected.
    pub uid: u32,
    /// The peer's effective group id when it connected.
    pub gid: u32,
}

/// The other end of a connection, as the worker knows it from its accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Peer {
    /// A TCP peer: its address and port.
    Ip(SocketAddr),
    /// A local process over a Unix socket.
    Unix(PeerCredentials),
}

/// Who a request comes from, as its handler sees it: the peer, and what
/// the connection's TLS handshake agreed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Client<'a> {
    pub(crate) peer: Peer,
    pub(crate) tls: Option<&'a crate::tls::TlsInfo>,
}

/// What [`Request::peer_addr`](crate::Request::peer_addr) gives for a Unix
/// socket peer: `0.0.0.0:0`, an address no TCP peer can have (a connection
/// to `0.0.0.0` comes from a real local address), that is not loopback,
/// and that a rate limit keyed by peer address counts as one client.
pub(crate) const UNIX_PEER_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

impl Peer {
    /// The peer's IP address and port; [`UNIX_PEER_ADDR`] for a Unix peer.
    pub(crate) fn addr(self) -> SocketAddr {
        match self {
            Peer::Ip(addr) => addr,
            Peer::Unix(_) => UNIX_PEER_ADDR,
        }
    }

    /// The peer process's credentials, for a Unix peer.
    pub(crate) fn credentials(self) -> Option<PeerCredentials> {
        match self {
            Peer::Ip(_) => None,
            Peer::Unix(credentials) => Some(credentials),
        }
    }
}

impl From<SocketAddr> for Peer {
    fn from(addr: SocketAddr) -> Self {
        Peer::Ip(addr)
    }
}
