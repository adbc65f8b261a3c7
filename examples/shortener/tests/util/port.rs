//! A loopback port held for one server under test.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// A loopback port held for one server.
///
/// keel binds with `SO_REUSEPORT`, so a second process of ours binding a
/// port in use does not fail: it joins, and the kernel splits connections
/// between the two. Binding `:0` and dropping the listener would leave the
/// port free for a parallel test to pick too, with no error to retry on.
/// This socket is bound (with `SO_REUSEPORT`, so the server can join it)
/// but never listens, so it takes no connection; while it lives, the
/// kernel hands the port to no other `bind(0)`.
pub(super) struct PortReservation {
    _socket: socket2::Socket,
    pub(super) addr: SocketAddr,
}

impl PortReservation {
    pub(super) fn new(ip: Ipv4Addr) -> PortReservation {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        socket.set_reuse_port(true).expect("SO_REUSEPORT");
        socket
            .bind(&SocketAddr::V4(SocketAddrV4::new(ip, 0)).into())
            .expect("bind a free port");
        let addr = socket
            .local_addr()
            .expect("local address")
            .as_socket()
            .expect("an IP address");
        PortReservation {
            _socket: socket,
            addr,
        }
    }
}
