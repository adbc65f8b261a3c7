//! Everything that talks to the OS beyond mio: listener sockets, reads into
//! uninitialised buffer space, CPU pinning, starting a successor with our
//! listening sockets; and ASCII bytes seen as text ([`AsciiCopy`]). All of
//! keel's `unsafe` lives here.

use crate::peer::PeerCredentials;
use bytes::BytesMut;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

mod exec;
mod text;
pub(crate) use exec::exec_with_listeners;
pub(crate) use text::AsciiCopy;

/// How the listeners are made; accepted sockets inherit the TCP options.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ListenerOptions {
    pub(crate) backlog: i32,
    /// `TCP_DEFER_ACCEPT`: see [`crate::Server::defer_accept`].
    pub(crate) defer_accept: Option<Duration>,
    /// `TCP_NOTSENT_LOWAT`: see [`crate::Config::max_unsent_per_socket`].
    pub(crate) max_unsent: Option<usize>,
}

/// A non-blocking listener with `SO_REUSEPORT`, so that every worker can own
/// one on the same port and the kernel spreads connections between them.
/// With `defer_accept`, a connection is only handed over once its first
/// bytes are in (see [`crate::Server::defer_accept`]).
pub(crate) fn reuseport_listener(
    addr: SocketAddr,
    options: ListenerOptions,
) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    // Accepted sockets inherit TCP_NODELAY and TCP_NOTSENT_LOWAT from the
    // listener on Linux (see the tests below), which saves a setsockopt each
    // per connection.
    socket.set_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    if let Some(wait) = options.defer_accept {
        // In whole seconds, at least one (the kernel turns it into a count
        // of SYN-ACK retransmissions).
        let seconds = wait.as_secs().max(1);
        set_tcp_option(&socket, libc::TCP_DEFER_ACCEPT, seconds)?;
    }
    if let Some(bytes) = options.max_unsent {
        set_unsent_limit(&socket, bytes)?;
    }
    socket.listen(options.backlog)?;
    Ok(socket.into())
}

/// Sets `TCP_NOTSENT_LOWAT` on a TCP socket: see
/// [`crate::Config::max_unsent_per_socket`]. Set on a listener, its
/// accepted sockets inherit it.
pub(crate) fn set_unsent_limit(socket: &impl AsRawFd, bytes: usize) -> io::Result<()> {
    set_tcp_option(socket, libc::TCP_NOTSENT_LOWAT, bytes as u64)
}

/// Lifts the listener's `TCP_NOTSENT_LOWAT` from one accepted socket: back
/// to the system's default (no limit unless `net.ipv4.tcp_notsent_lowat`
/// sets one), for a peer that reads fast enough to use large send buffers.
pub(crate) fn lift_unsent_limit(socket: &impl AsRawFd) -> io::Result<()> {
    set_tcp_option(socket, libc::TCP_NOTSENT_LOWAT, 0)
}

/// Whether a TCP listener holds new connections until their first bytes
/// arrive (`TCP_DEFER_ACCEPT` set, as [`reuseport_listener`] or a systemd
/// `.socket` unit's `DeferAcceptSec=` does). `false` when it cannot say.
pub(crate) fn defers_accept(listener: &impl AsRawFd) -> bool {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` is a live c_int and `len` holds its size, which the
    // kernel checks before writing at most that many bytes.
    let rc = unsafe {
        libc::getsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            std::ptr::from_mut(&mut value).cast(),
            &mut len,
        )
    };
    rc == 0 && value > 0
}

/// The credentials of the process at the other end of a Unix socket, as
/// the kernel recorded them at `connect` (`SO_PEERCRED`).
pub(crate) fn peer_credentials(socket: &impl AsRawFd) -> io::Result<PeerCredentials> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is a live ucred and `len` holds its size, which the
    // kernel checks before writing at most that many bytes.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            std::ptr::from_mut(&mut cred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCredentials {
        // Negative never happens; 0 is what the kernel says for a process
        // outside our PID namespace.
        pid: u32::try_from(cred.pid).unwrap_or(0),
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// Takes ownership of descriptor `fd`, inherited from the process that
/// started this one (systemd's `LISTEN_FDS`), and marks it close-on-exec
/// so that children do not inherit it in turn.
///
/// The caller must know that nothing else in this process owns `fd`: for
/// `LISTEN_FDS`, the descriptors from 3 were open at `exec` and are this
/// process's to take once (the variables are removed after reading).
///
/// # Errors
///
/// `EBADF` when `fd` is not open (a wrong `LISTEN_FDS`).
pub(crate) fn take_inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD reads the descriptor's flags; it touches no memory
    // and fails with EBADF on a descriptor that is not open.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above, on the descriptor just found open.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is open (checked just above) and, by this function's
    // contract (LISTEN_FDS hands it over, once), owned by nothing else in
    // this process: the OwnedFd becomes its one owner and closes it once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets an `IPPROTO_TCP` option that takes a C `int` (`value`, saturated).
fn set_tcp_option(socket: &impl AsRawFd, option: libc::c_int, value: u64) -> io::Result<()> {
    let value = libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
    // SAFETY: the option value is a live c_int and the length passed is its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            option,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends up to `len` bytes of `file` from `offset` to `socket` with
/// `sendfile(2)`: from the page cache to the socket, never through this
/// process's memory. Returns the bytes sent; `Ok(0)` with `len > 0` means
/// the file ends before `offset + len` (it was cut short).
pub(crate) fn send_file(
    socket: &impl AsRawFd,
    file: &impl AsRawFd,
    offset: u64,
    len: usize,
) -> io::Result<usize> {
    let mut offset =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: both descriptors are open for the call (borrowed), and
    // `offset` is a live off_t the kernel updates and we then drop.
    let sent = unsafe { libc::sendfile(socket.as_raw_fd(), file.as_raw_fd(), &mut offset, len) };
    usize::try_from(sent).map_err(|_| io::Error::last_os_error())
}

/// Whether the page of `file` holding byte `offset` is in the page cache,
/// asked with `preadv2(2)`'s `RWF_NOWAIT` (a one-byte read that fails with
/// `EAGAIN` rather than wait for the disk). A file system that cannot say
/// counts as cached: sending from it is what would have happened anyway.
pub(crate) fn page_cached(file: &impl AsRawFd, offset: u64) -> bool {
    let Ok(offset) = libc::off_t::try_from(offset) else {
        return true;
    };
    let mut byte = [0u8; 1];
    let iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: `iov` points at one live, writable byte, and the descriptor
    // is open for the call.
    let read = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
    read >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN)
}

/// The longest relative path [`open_beneath`] takes, with its NUL.
const MAX_PATH: usize = 4096;

/// Opens `relative` (no NUL in it) for reading, non-blocking (a FIFO must
/// not wait for a writer), from the directory `dir`,
/// with `openat2(2)`'s `RESOLVE_BENEATH`: the kernel refuses, with `EXDEV`,
/// any resolution that leaves `dir` (`..` above it, an absolute path, a
/// symlink pointing out), race-free and without allocating (the C string
/// is built on the stack). `ENOSYS` before Linux 5.6.
pub(crate) fn open_beneath(dir: &impl AsRawFd, relative: &[u8]) -> io::Result<std::fs::File> {
    if relative.len() >= MAX_PATH || relative.contains(&0) {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    let mut path = [0u8; MAX_PATH];
    path[..relative.len()].copy_from_slice(relative);
    // SAFETY: open_how is three integers (non-exhaustive in libc, so not
    // built with a literal): all zeros is a valid value, "no flags".
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: `path` is NUL-terminated (zeroed past `relative`, which holds
    // no NUL), `how` is a live open_how and its size is passed with it;
    // `dir` is an open descriptor for the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            std::ptr::from_ref(&how),
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = libc::c_int::try_from(fd).map_err(|_| io::Error::from(io::ErrorKind::Other))?;
    // SAFETY: the kernel just returned this descriptor, owned by no one else.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Looks at the next byte of a socket without taking it (`MSG_PEEK`):
/// `None` at the end of the stream.
pub(crate) fn peek_byte(socket: &impl AsRawFd) -> io::Result<Option<u8>> {
    let mut byte = 0u8;
    // SAFETY: `byte` is a live, exclusively borrowed u8; recv(2) writes at
    // most the one byte asked for, and the descriptor is open for the
    // borrow of `socket`.
    let n = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK,
        )
    };
    match n {
        n if n < 0 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        _ => Ok(Some(byte)),
    }
}

/// Reads once from `source` into the spare capacity of `buf`, growing its
/// length by the bytes read. The caller reserves the room first; with none
/// this returns `Ok(0)` without reading, so check for room before calling.
pub(crate) fn read_into(source: &impl AsRawFd, buf: &mut BytesMut) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    if spare.is_empty() {
        return Ok(0);
    }
    // SAFETY: `spare` is a live, exclusively borrowed region of `spare.len()`
    // bytes; read(2) writes at most that many bytes into it and reads none.
    let n = unsafe { libc::read(source.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: read(2) returned `n` (checked non-negative, and at most
    // `spare.len()` by its contract): the first `n` spare bytes are now
    // initialised, so the length may grow by `n`.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Raises this process's soft limit on open files to its hard limit, as a
/// server with thousands of connections needs (Go's runtime does the same).
/// Returns the soft limit now in force.
pub(crate) fn raise_open_file_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit whose soft value does not exceed its hard one.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
        limit = raised;
    }
    Ok(limit.rlim_cur)
}

/// Pins the calling thread to one CPU core.
pub(crate) fn pin_current_thread(core: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain bits; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let max_cores = 8 * std::mem::size_of::<libc::cpu_set_t>();
    if core >= max_cores {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "core index out of range",
        ));
    }
    // SAFETY: `core` was checked to be below the set's capacity just above.
    unsafe { libc::CPU_SET(core, &mut set) };
    // SAFETY: `set` is a valid, initialised cpu_set_t and the size passed is its size;
    // pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Bytes written to a TCP socket that the peer has not acknowledged yet
/// (`SIOCOUTQ`: unsent plus unacknowledged), so that what a peer has taken
/// is `written - unsent`, not merely what the kernel buffered for it.
/// `None` when the kernel will not say.
pub(crate) fn unsent_bytes(socket: &impl AsRawFd) -> Option<u64> {
    let mut queued: libc::c_int = 0;
    // SAFETY: `TIOCOUTQ` (`SIOCOUTQ` for TCP) writes one c_int through the
    // pointer, which points at a live c_int; the descriptor is open for
    // the borrow of `socket`.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
    if rc != 0 {
        return None;
    }
    u64::try_from(queued).ok()
}

/// Whether an `accept` failed for want of descriptors: `EMFILE` (the
/// process is at its `RLIMIT_NOFILE`) or `ENFILE` (the system is).
pub(crate) fn is_out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

#[cfg(test)]
mod tests;
