//! systemd socket activation (`sd_listen_fds(3)`): the listening sockets a
//! `.socket` unit opened, handed to this process as descriptors 3, 4...
//! with `LISTEN_PID` (the process they are for), `LISTEN_FDS` (how many)
//! and `LISTEN_FDNAMES` (their names, colon-separated, optional).

use super::listener::Listener;
use super::sys;
use socket2::{Domain, SockRef, Type};
use std::ffi::OsStr;
use std::fmt;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};

/// The first inherited descriptor (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;

/// Most sockets taken from `LISTEN_FDS`: far more than a service listens
/// on, few enough that a wrong count cannot make this process claim
/// thousands of descriptors it does not own.
pub const MAX_INHERITED: usize = 64;

/// The variables, removed once read.
const VARIABLES: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];

/// Set by the first reading: descriptors are taken once per process.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Why the sockets systemd passed could not be taken.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActivationError {
    /// Neither `LISTEN_PID` nor `LISTEN_FDS` is set: the process was not
    /// socket-activated (or the sockets were taken already). Not a fault:
    /// a program falls back to binding its own sockets.
    NotActivated,
    /// One of `LISTEN_PID` and `LISTEN_FDS` is set without the other.
    Missing(&'static str),
    /// A variable is not a positive decimal number (or, for
    /// `LISTEN_FDNAMES`, not names of printable characters).
    Malformed {
        /// `LISTEN_PID`, `LISTEN_FDS` or `LISTEN_FDNAMES`.
        variable: &'static str,
        /// Its value, lossily decoded.
        value: String,
    },
    /// `LISTEN_PID` names another process: the sockets were meant for it
    /// (a parent that did not clear the variables), not for this one.
    OtherProcess {
        /// The pid in `LISTEN_PID`.
        listen_pid: u32,
        /// This process's pid.
        pid: u32,
    },
    /// More than [`MAX_INHERITED`] sockets.
    TooMany(usize),
    /// `LISTEN_FDNAMES` has a different number of names than `LISTEN_FDS`
    /// has sockets.
    NameCount {
        /// Names given.
        names: usize,
        /// Sockets given.
        fds: usize,
    },
    /// A descriptor is not a listening stream socket of a known family
    /// (IPv4, IPv6, Unix), or is not open.
    NotAListener {
        /// The descriptor.
        fd: RawFd,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for ActivationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActivationError::NotActivated => f.write_str("not socket-activated (no LISTEN_FDS)"),
            ActivationError::Missing(name) => write!(f, "{name} is not set"),
            ActivationError::Malformed { variable, value } => {
                write!(f, "{variable}={value:?} is malformed")
            }
            ActivationError::OtherProcess { listen_pid, pid } => write!(
                f,
                "LISTEN_PID={listen_pid} is another process (this one is {pid})"
            ),
            ActivationError::TooMany(count) => write!(
                f,
                "LISTEN_FDS={count} is more than the {MAX_INHERITED} sockets taken"
            ),
            ActivationError::NameCount { names, fds } => {
                write!(f, "LISTEN_FDNAMES has {names} names for {fds} sockets")
            }
            ActivationError::NotAListener { fd, reason } => {
                write!(f, "inherited descriptor {fd}: {reason}")
            }
        }
    }
}

impl std::error::Error for ActivationError {}

/// A socket systemd passed, with its name (`FileDescriptorName=` in the
/// `.socket` unit; the unit's name by default).
#[derive(Debug)]
pub struct InheritedListener {
    /// The listening socket, owned by this process now (close-on-exec).
    pub listener: Listener,
    /// Its name, when `LISTEN_FDNAMES` was set.
    pub name: Option<String>,
}

/// Takes the listening sockets systemd passed to this process, in order
/// (descriptor 3 first), checked to be listening stream sockets (TCP or
/// Unix), and removes `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` from
/// the environment so that a child process does not take them for its
/// own. [`Server::from_systemd`](crate::Server::from_systemd) serves on all
/// of them; this is for a program that routes them by name.
///
/// A process started by [`crate::spawn_successor`] also finds
/// `KEEL_READY_FD` here: the channel [`crate::notify_predecessor`] writes
/// to once this process serves, taken (close-on-exec) and removed from the
/// environment too. A value that is not a descriptor numbered after the
/// sockets is [`ActivationError::Malformed`]; one that is not a connected
/// Unix stream socket is [`ActivationError::NotAListener`].
///
/// Call it at the start of `main`, before other threads run: changing the
/// environment races with C code reading it on another thread (Rust's own
/// `std::env` calls hold a lock). Descriptors are taken once per process:
/// a second call answers [`ActivationError::NotActivated`].
///
/// # Errors
///
/// [`ActivationError::NotActivated`] when the variables are not set; the
/// others when they are set wrong (see each variant). The variables are
/// removed either way.
pub fn systemd_listeners() -> Result<Vec<InheritedListener>, ActivationError> {
    let var = |name| std::env::var_os(name);
    let (pid, fds, names) = (var(VARIABLES[0]), var(VARIABLES[1]), var(VARIABLES[2]));
    let ready = std::env::var_os(super::successor::READY_FD);
    for name in VARIABLES.into_iter().chain([super::successor::READY_FD]) {
        std::env::remove_var(name);
    }
    let activation = parse(
        std::process::id(),
        pid.as_deref(),
        fds.as_deref(),
        names.as_deref(),
    )?;
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Err(ActivationError::NotActivated);
    }
    let mut taken = Vec::with_capacity(activation.count);
    for (i, name) in (0..activation.count).zip(activation.names_or_none()) {
        let fd = FIRST_FD + i as RawFd;
        let not_a_listener = |reason: String| ActivationError::NotAListener { fd, reason };
        let owned = sys::take_inherited_fd(fd).map_err(|e| not_a_listener(e.to_string()))?;
        let listener = listener_of(owned).map_err(not_a_listener)?;
        taken.push(InheritedListener { listener, name });
    }
    if let Some(value) = ready {
        let channel = ready_channel(&value, activation.count)?;
        super::successor::set_predecessor(channel);
    }
    Ok(taken)
}

/// The readiness channel a predecessor passed (`KEEL_READY_FD`, see
/// [`crate::spawn_successor`]): a connected Unix stream socket numbered
/// after the `count` sockets.
fn ready_channel(value: &OsStr, count: usize) -> Result<UnixStream, ActivationError> {
    let variable = super::successor::READY_FD;
    let fd = number(variable, value)?;
    let first_free = FIRST_FD as u32 + count as u32;
    let fd = match RawFd::try_from(fd) {
        Ok(fd) if fd as u32 >= first_free => fd,
        _ => {
            return Err(ActivationError::Malformed {
                variable,
                value: value.to_string_lossy().into_owned(),
            })
        }
    };
    let not_a_channel = |reason: &str| ActivationError::NotAListener {
        fd,
        reason: format!("{variable}: {reason}"),
    };
    let owned = sys::take_inherited_fd(fd).map_err(|e| not_a_channel(&e.to_string()))?;
    let socket = SockRef::from(&owned);
    let is_stream = socket.r#type().is_ok_and(|t| t == Type::STREAM);
    let is_unix = socket.domain().is_ok_and(|d| d == Domain::UNIX);
    if !is_stream || !is_unix || socket.is_listener().unwrap_or(true) {
        return Err(not_a_channel("not a connected Unix stream socket"));
    }
    Ok(UnixStream::from(owned))
}

/// The listener an inherited descriptor holds, by its family.
fn listener_of(fd: OwnedFd) -> Result<Listener, String> {
    let socket = SockRef::from(&fd);
    let domain = socket.domain().map_err(|e| e.to_string())?;
    if socket.r#type().map_err(|e| e.to_string())? != Type::STREAM {
        return Err("not a stream socket".to_owned());
    }
    if !socket.is_listener().map_err(|e| e.to_string())? {
        return Err("not a listening socket".to_owned());
    }
    match domain {
        Domain::IPV4 | Domain::IPV6 => Ok(Listener::Tcp(std::net::TcpListener::from(fd))),
        Domain::UNIX => Ok(Listener::Unix(std::os::unix::net::UnixListener::from(fd))),
        other => Err(format!("a socket of an unknown family ({other:?})")),
    }
}

/// What the variables say, checked.
#[derive(Debug, PartialEq, Eq)]
struct Activation {
    count: usize,
    /// One per socket, or none without `LISTEN_FDNAMES`.
    names: Vec<String>,
}

impl Activation {
    fn names_or_none(&self) -> impl Iterator<Item = Option<String>> + '_ {
        let named = self.names.iter().cloned().map(Some);
        named.chain(std::iter::repeat(None))
    }
}

/// Reads the variables as this process (`pid`) sees them.
fn parse(
    pid: u32,
    listen_pid: Option<&OsStr>,
    listen_fds: Option<&OsStr>,
    names: Option<&OsStr>,
) -> Result<Activation, ActivationError> {
    let (listen_pid, listen_fds) = match (listen_pid, listen_fds) {
        (None, None) => return Err(ActivationError::NotActivated),
        (None, Some(_)) => return Err(ActivationError::Missing(VARIABLES[0])),
        (Some(_), None) => return Err(ActivationError::Missing(VARIABLES[1])),
        (Some(p), Some(f)) => (p, f),
    };
    let listen_pid = number(VARIABLES[0], listen_pid)?;
    if listen_pid != pid {
        return Err(ActivationError::OtherProcess { listen_pid, pid });
    }
    let count = number(VARIABLES[1], listen_fds)? as usize;
    if count > MAX_INHERITED {
        return Err(ActivationError::TooMany(count));
    }
    let names = match names {
        None => Vec::new(),
        Some(text) => {
            let malformed = || ActivationError::Malformed {
                variable: VARIABLES[2],
                value: text.to_string_lossy().into_owned(),
            };
            let text = text.to_str().ok_or_else(malformed)?;
            let names: Vec<String> = text.split(':').map(str::to_owned).collect();
            // sd_notify's rule for a name: up to 255 printable ASCII
            // characters (no colon: it separates them).
            let valid = |n: &String| n.len() <= 255 && n.bytes().all(|b| b.is_ascii_graphic());
            if !names.iter().all(valid) {
                return Err(malformed());
            }
            if names.len() != count {
                return Err(ActivationError::NameCount {
                    names: names.len(),
                    fds: count,
                });
            }
            names
        }
    };
    Ok(Activation { count, names })
}

/// A positive decimal number of digits alone (no sign, space or `0x`).
fn number(variable: &'static str, text: &OsStr) -> Result<u32, ActivationError> {
    let malformed = || ActivationError::Malformed {
        variable,
        value: text.to_string_lossy().into_owned(),
    };
    let text = text.to_str().ok_or_else(malformed)?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    match text.parse::<u32>() {
        Ok(0) | Err(_) => Err(malformed()),
        Ok(n) => Ok(n),
    }
}

#[cfg(test)]
mod tests;
