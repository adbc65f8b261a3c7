//! Opening what a [`Server`](crate::Server) listens on, one set of
//! listeners per worker.

use super::listener::{self, ListenAddr, Listener, SocketFile, WorkerListener};
use super::sys::{self, ListenerOptions};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// What the builder was asked to listen on.
#[derive(Debug)]
pub(super) enum Listen {
    /// A TCP address: a `SO_REUSEPORT` socket per worker.
    Tcp(io::Result<SocketAddr>),
    /// A Unix socket keel binds at this path.
    Unix(PathBuf),
    /// Sockets opened elsewhere.
    Given(Vec<Listener>),
}

/// The listeners, opened.
pub(super) struct Opened {
    /// Worker `i`'s listeners.
    pub(super) per_worker: Vec<Vec<WorkerListener>>,
    pub(super) addrs: Vec<ListenAddr>,
    pub(super) socket_file: Option<SocketFile>,
    /// Every worker's list holds duplicates of the same sockets (else
    /// each worker has sockets of its own).
    pub(super) shared: bool,
}

/// Opens (or adopts) the listeners of `workers` workers.
pub(super) fn open(
    listen: Listen,
    unix_mode: u32,
    workers: usize,
    options: ListenerOptions,
) -> io::Result<Opened> {
    let (shared, socket_file) = match listen {
        Listen::Tcp(addr) => return reuseport(addr?, workers, options),
        Listen::Unix(path) => {
            let (listener, file) = listener::bind_unix(&path, unix_mode, options.backlog)?;
            (vec![listener], Some(file))
        }
        Listen::Given(listeners) => {
            if listeners.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "no listener given",
                ));
            }
            let adopted = listeners.into_iter().map(|l| listener::adopt(l, options));
            (adopted.collect::<io::Result<Vec<_>>>()?, None)
        }
    };
    let shared_by_all = (|| {
        let addrs = shared
            .iter()
            .map(|l| l.listener.local_addr())
            .collect::<io::Result<Vec<_>>>()?;
        // One socket, one queue: each worker polls and accepts from its
        // own duplicate of it (AF_UNIX has no SO_REUSEPORT, and an
        // inherited socket is one socket however many workers share it).
        let mut per_worker = Vec::with_capacity(workers);
        for _ in 1..workers {
            let copies = shared.iter().map(WorkerListener::try_clone);
            per_worker.push(copies.collect::<io::Result<Vec<_>>>()?);
        }
        Ok((addrs, per_worker))
    })();
    match shared_by_all {
        Ok((addrs, mut per_worker)) => {
            per_worker.insert(0, shared);
            Ok(Opened {
                per_worker,
                addrs,
                socket_file,
                shared: true,
            })
        }
        Err(e) => {
            if let Some(file) = socket_file {
                file.remove();
            }
            Err(e)
        }
    }
}

/// A `SO_REUSEPORT` listener per worker on `addr`: the kernel spreads new
/// connections over their queues.
fn reuseport(addr: SocketAddr, workers: usize, options: ListenerOptions) -> io::Result<Opened> {
    let first = sys::reuseport_listener(addr, options)?;
    let local_addr = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..workers {
        sockets.push(sys::reuseport_listener(local_addr, options)?);
    }
    let per_worker = sockets
        .into_iter()
        .map(|socket| {
            vec![WorkerListener {
                listener: Listener::Tcp(socket),
                serve_on_accept: options.defer_accept.is_some(),
            }]
        })
        .collect();
    Ok(Opened {
        per_worker,
        addrs: vec![ListenAddr::Tcp(local_addr)],
        socket_file: None,
        shared: false,
    })
}
