//! Listening sockets: TCP (one `SO_REUSEPORT` socket per worker, see
//! [`sys::reuseport_listener`]), a Unix socket keel binds, and sockets a
//! caller or systemd opened. A socket given as one (Unix, or inherited) is
//! shared: each worker accepts from its own duplicate of it.

use crate::peer::Peer;
use crate::server::sys::{self, ListenerOptions};
use crate::transport::Stream;
use mio::event::Source;
use mio::{Interest, Registry, Token};
use socket2::{Domain, SockAddr, SockRef, Socket, Type};
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// A listening socket opened elsewhere (by the caller, or inherited from
/// systemd), for [`Server::from_listeners`](crate::Server::from_listeners).
#[derive(Debug)]
pub enum Listener {
    /// A TCP listener (IPv4 or IPv6).
    Tcp(TcpListener),
    /// A Unix stream socket listener.
    Unix(UnixListener),
}

impl From<TcpListener> for Listener {
    fn from(listener: TcpListener) -> Self {
        Listener::Tcp(listener)
    }
}

impl From<UnixListener> for Listener {
    fn from(listener: UnixListener) -> Self {
        Listener::Unix(listener)
    }
}

impl Listener {
    /// The address it listens on.
    ///
    /// # Errors
    ///
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<ListenAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().map(ListenAddr::Tcp),
            Listener::Unix(l) => l.local_addr().map(ListenAddr::Unix),
        }
    }

    /// A duplicate: the same socket (and queue) under another descriptor.
    ///
    /// # Errors
    ///
    /// As `dup(2)`.
    pub fn try_clone(&self) -> io::Result<Listener> {
        Ok(match self {
            Listener::Tcp(l) => Listener::Tcp(l.try_clone()?),
            Listener::Unix(l) => Listener::Unix(l.try_clone()?),
        })
    }

    fn socket(&self) -> SockRef<'_> {
        match self {
            Listener::Tcp(l) => SockRef::from(l),
            Listener::Unix(l) => SockRef::from(l),
        }
    }
}

/// Where a server listens: see [`ServerHandle::listen_addrs`](crate::ServerHandle::listen_addrs).
#[derive(Clone, Debug)]
pub enum ListenAddr {
    /// A TCP address and port.
    Tcp(SocketAddr),
    /// A Unix socket: its path, or an abstract or unnamed address.
    Unix(std::os::unix::net::SocketAddr),
}

impl fmt::Display for ListenAddr {
    /// `127.0.0.1:8080`, `[::1]:8080`, `unix:/run/app.sock` (as nginx
    /// writes an upstream), `unix:@name` for an abstract address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(addr) => write!(f, "{addr}"),
            ListenAddr::Unix(addr) => match addr.as_pathname() {
                Some(path) => write!(f, "unix:{}", path.display()),
                None => {
                    use std::os::linux::net::SocketAddrExt;
                    match addr.as_abstract_name() {
                        Some(name) => write!(f, "unix:@{}", String::from_utf8_lossy(name)),
                        None => f.write_str("unix:(unnamed)"),
                    }
                }
            },
        }
    }
}

/// One worker's listener, as the worker thread receives it.
#[derive(Debug)]
pub(crate) struct WorkerListener {
    pub(crate) listener: Listener,
    /// The socket holds connections until their first bytes arrive
    /// (`TCP_DEFER_ACCEPT`): serve a new one at once.
    pub(crate) serve_on_accept: bool,
}

impl WorkerListener {
    /// A duplicate for another worker: the same socket, so the same queue.
    pub(crate) fn try_clone(&self) -> io::Result<WorkerListener> {
        Ok(WorkerListener {
            listener: self.listener.try_clone()?,
            serve_on_accept: self.serve_on_accept,
        })
    }
}

/// Makes a socket opened elsewhere ready for the workers: checked to be a
/// listening stream socket, non-blocking (the flag is on the socket: the
/// caller's copy becomes non-blocking too). A TCP one gets the options
/// keel's own listeners have, which its accepted sockets inherit:
/// `TCP_NODELAY` and `TCP_NOTSENT_LOWAT` ([`crate::Config::max_unsent_per_socket`]).
pub(crate) fn adopt(listener: Listener, options: ListenerOptions) -> io::Result<WorkerListener> {
    let socket = listener.socket();
    let not = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_owned());
    if socket.r#type()? != Type::STREAM {
        return Err(not("not a stream socket"));
    }
    if !socket.is_listener()? {
        return Err(not("not a listening socket (listen(2) was not called)"));
    }
    socket.set_nonblocking(true)?;
    let serve_on_accept = match &listener {
        Listener::Tcp(l) => {
            socket.set_nodelay(true)?;
            if let Some(bytes) = options.max_unsent {
                sys::set_unsent_limit(l, bytes)?;
            }
            sys::defers_accept(l)
        }
        // An AF_UNIX peer connects, then writes: its request is rarely in
        // at the accept.
        Listener::Unix(_) => false,
    };
    Ok(WorkerListener {
        listener,
        serve_on_accept,
    })
}

/// A Unix socket's file, which the server that bound it removes when it
/// stops: only if the path still names that very socket (a server started
/// since in its place keeps its own).
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    pub(crate) fn remove(&self) {
        let same = std::fs::symlink_metadata(&self.path).is_ok_and(|meta| {
            meta.file_type().is_socket() && meta.dev() == self.dev && meta.ino() == self.ino
        });
        if same {
            // Gone meanwhile is as good as removed.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds a Unix stream socket at `path` with permissions `mode`, and
/// listens. A socket file already there is removed only when it is stale:
/// a socket nobody answers on (`connect` refused, as after a crash). A
/// live server there, or a file that is not a socket, is an error and is
/// left alone. The mode is set before `listen`, so there is no moment
/// when the socket accepts with the wrong permissions.
///
/// # Errors
///
/// `AddrInUse` when a server answers at `path`; `AlreadyExists` when
/// `path` is not a socket; as `bind(2)` otherwise (no such directory,
/// permission, a path longer than `sun_path`).
pub(crate) fn bind_unix(
    path: &Path,
    mode: u32,
    backlog: i32,
) -> io::Result<(WorkerListener, SocketFile)> {
    let address = SockAddr::unix(path)?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    match socket.bind(&address) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            remove_stale(path, &address)?;
            socket.bind(&address)?;
        }
        bound => bound?,
    }
    let file = std::fs::symlink_metadata(path)?;
    let file = SocketFile {
        path: path.to_owned(),
        dev: file.dev(),
        ino: file.ino(),
    };
    let listening = (|| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        socket.listen(backlog)?;
        socket.set_nonblocking(true)
    })();
    if let Err(e) = listening {
        file.remove();
        return Err(e);
    }
    let listener = WorkerListener {
        listener: Listener::Unix(UnixListener::from(std::os::fd::OwnedFd::from(socket))),
        serve_on_accept: false,
    };
    Ok((listener, file))
}

/// Removes the socket file at `path` if nobody answers on it.
fn remove_stale(path: &Path, address: &SockAddr) -> io::Result<()> {
    let shown = path.display();
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{shown} exists and is not a socket: left alone"),
        ));
    }
    // Non-blocking: a live server whose queue is full answers EAGAIN at
    // once instead of holding this connect.
    let probe = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    probe.set_nonblocking(true)?;
    match probe.connect(address) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path),
        Ok(()) => Err(in_use(&shown)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(in_use(&shown)),
        Err(e) => Err(e),
    }
}

fn in_use(path: &impl fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("a server is listening on {path}"),
    )
}

/// A worker's listener, registered with its poller.
pub(crate) enum Acceptor {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener),
}

impl Acceptor {
    pub(crate) fn new(listener: Listener) -> Acceptor {
        match listener {
            Listener::Tcp(l) => Acceptor::Tcp(mio::net::TcpListener::from_std(l)),
            Listener::Unix(l) => Acceptor::Unix(mio::net::UnixListener::from_std(l)),
        }
    }

    /// The next connection in the queue, and who is at its other end. A
    /// Unix peer whose credentials cannot be read is closed and reported
    /// as `ConnectionAborted` (the next one may be fine).
    pub(crate) fn accept(&self) -> io::Result<(Stream, Peer)> {
        match self {
            Acceptor::Tcp(l) => l.accept().map(|(s, addr)| (Stream::Tcp(s), Peer::Ip(addr))),
            Acceptor::Unix(l) => {
                let (stream, _) = l.accept()?;
                match sys::peer_credentials(&stream) {
                    Ok(credentials) => Ok((Stream::Unix(stream), Peer::Unix(credentials))),
                    Err(_) => Err(io::ErrorKind::ConnectionAborted.into()),
                }
            }
        }
    }
}

impl Source for Acceptor {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            Acceptor::Tcp(l) => l.register(registry, token, interest),
            Acceptor::Unix(l) => l.register(registry, token, interest),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            Acceptor::Tcp(l) => l.reregister(registry, token, interest),
            Acceptor::Unix(l) => l.reregister(registry, token, interest),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Acceptor::Tcp(l) => l.deregister(registry),
            Acceptor::Unix(l) => l.deregister(registry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: ListenerOptions = ListenerOptions {
        backlog: 16,
        defer_accept: None,
        max_unsent: Some(4096),
    };

    #[test]
    fn only_listening_stream_sockets_are_adopted_and_made_ready() {
        let unbound = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        unbound
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        let error = adopt(Listener::Tcp(unbound.into()), OPTIONS).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(
            error.to_string().contains("not a listening socket"),
            "{error}"
        );
        let datagram = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        let error = adopt(Listener::Tcp(datagram.into()), OPTIONS).unwrap_err();
        assert!(error.to_string().contains("not a stream socket"), "{error}");
        // A listening one comes out non-blocking with keel's TCP options,
        // serving at accept only when the socket defers accepts.
        let listening = TcpListener::bind("127.0.0.1:0").unwrap();
        let adopted = adopt(Listener::Tcp(listening), OPTIONS).unwrap();
        assert!(!adopted.serve_on_accept);
        let socket = adopted.listener.socket();
        assert!(socket.nodelay().unwrap());
        let Listener::Tcp(listener) = &adopted.listener else {
            unreachable!()
        };
        assert_eq!(
            listener.accept().unwrap_err().kind(),
            io::ErrorKind::WouldBlock,
            "non-blocking"
        );
        let deferring = sys::reuseport_listener(
            "127.0.0.1:0".parse().unwrap(),
            ListenerOptions {
                defer_accept: Some(std::time::Duration::from_secs(1)),
                ..OPTIONS
            },
        )
        .unwrap();
        assert!(
            adopt(Listener::Tcp(deferring), OPTIONS)
                .unwrap()
                .serve_on_accept
        );
    }
}
