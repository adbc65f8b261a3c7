//! Replacing a running server with a new process without dropping a
//! connection: the old process hands its listening sockets to the new one
//! as systemd does (`LISTEN_FDS`), so both accept from the very same
//! kernel queues, waits until the new one says it serves, then drains.
//!
//! The successor learns the sockets from `LISTEN_PID`, `LISTEN_FDS` and
//! `LISTEN_FDNAMES` ([`crate::systemd_listeners`] reads them), and how to
//! say it is ready from `KEEL_READY_FD`: one end of a Unix socket pair,
//! the descriptor right after the sockets. It writes one byte there
//! ([`notify_predecessor`]); the old process reads it
//! ([`Successor::wait_ready`]), or reads the end of the stream when the
//! successor exits (or closes it) first.

use super::listener::Listener;
use super::sys;
use super::systemd::{InheritedListener, MAX_INHERITED};
use parking_lot::Mutex;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// The variable naming the descriptor a successor reports readiness on.
pub(crate) const READY_FD: &str = "KEEL_READY_FD";

/// The variables the hand-over sets: never passed on from this process.
const HANDOVER_VARIABLES: [&str; 4] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", READY_FD];

/// This process's end of the readiness channel, when a predecessor
/// started it (taken from `KEEL_READY_FD` by [`crate::systemd_listeners`]).
static PREDECESSOR: Mutex<Option<UnixStream>> = Mutex::new(None);

/// Keeps the readiness channel for [`notify_predecessor`].
pub(crate) fn set_predecessor(channel: UnixStream) {
    *PREDECESSOR.lock() = Some(channel);
}

/// Tells the process that started this one with [`spawn_successor`] that
/// this one serves now (call it once every server is started): the old
/// process then stops accepting and drains. Returns `Ok(false)` when no
/// predecessor waits (the process was started otherwise, or was told
/// already). [`crate::systemd_listeners`] must have run first: it takes
/// the channel with the sockets.
///
/// # Errors
///
/// When the byte cannot be written (the predecessor is gone: it gave up
/// waiting, or was killed). Nothing to undo then: this process serves.
pub fn notify_predecessor() -> io::Result<bool> {
    let Some(mut channel) = PREDECESSOR.lock().take() else {
        return Ok(false);
    };
    channel.write_all(b"R")?;
    Ok(true)
}

/// A process started by [`spawn_successor`], holding this one's listening
/// sockets. Until [`wait_ready`](Successor::wait_ready) says it serves,
/// keep serving: it may fail to start (a bad flag, a store it cannot open)
/// and exit, and then nothing was lost.
#[derive(Debug)]
pub struct Successor {
    child: Child,
    ready: UnixStream,
}

impl Successor {
    /// The successor's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the successor reports that it serves
    /// ([`notify_predecessor`]), for up to `timeout`.
    ///
    /// # Errors
    ///
    /// - `UnexpectedEof` when it exited (or closed the channel) without
    ///   reporting; the message gives its exit status when it is known
    ///   within a second.
    /// - `TimedOut` when it did not report in time: it is killed (and
    ///   reaped) then, so that two generations do not go on serving
    ///   side by side.
    ///
    /// This process keeps its sockets and keeps serving in every case.
    pub fn wait_ready(&mut self, timeout: Duration) -> io::Result<()> {
        self.ready
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        let mut byte = [0u8; 1];
        loop {
            match self.ready.read(&mut byte) {
                Ok(1..) => return Ok(()),
                Ok(0) => {
                    let pid = self.id();
                    let status = self.exit_status(Duration::from_secs(1));
                    let status =
                        status.map_or_else(|| "still running".to_owned(), |s| s.to_string());
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the successor (pid {pid}) stopped before it was ready ({status})"),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    let pid = self.id();
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "the successor (pid {pid}) was not ready within {timeout:?}: killed"
                        ),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The child process: to wait for it, or signal it.
    pub fn into_child(self) -> Child {
        self.child
    }

    fn exit_status(&mut self, within: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + within;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
                _ => return None,
            }
        }
    }
}

/// Starts `command` as this server's successor, handing it `listeners`
/// as systemd socket activation does: descriptors 3, 4... in order, with
/// `LISTEN_PID` (its pid), `LISTEN_FDS` and, when any listener has a name,
/// `LISTEN_FDNAMES` (`unknown` for one without, as systemd writes it);
/// and `KEEL_READY_FD`, its end of the readiness channel
/// ([`notify_predecessor`], [`Successor::wait_ready`]). Both processes then
/// accept from the same sockets: nothing queued is lost, whichever of them
/// takes it. Get the listeners from
/// [`ServerHandle::listeners`](crate::ServerHandle::listeners) (every one,
/// or a socket's queue is left with nobody accepting once this process
/// stops).
///
/// The successor's environment is this process's with `command`'s
/// changes (`env_clear` cannot be seen through `Command` and is not
/// honoured) and the variables above; its stdio, directory and the rest
/// are `command`'s. The program must be given as a path (no `PATH`
/// search): `std::env::current_exe()` for "the same binary".
///
/// Everything the child needs is prepared before `fork`; after it, the
/// child only writes its pid into a prepared slot, moves the sockets into
/// place and `execve`s (see `sys::exec_with_listeners`).
///
/// # Errors
///
/// `InvalidInput` for no listeners or more than [`MAX_INHERITED`], a
/// name systemd would refuse (more than 255 characters, or not printable
/// ASCII, or a colon), a program that is not a path, a NUL byte in an
/// argument; as `fork`/`execve` otherwise (a program that does not exist
/// fails here, not later).
pub fn spawn_successor(
    mut command: Command,
    listeners: &[InheritedListener],
) -> io::Result<Successor> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    if listeners.is_empty() || listeners.len() > MAX_INHERITED {
        return Err(invalid(format!(
            "{} listeners to hand over: 1 to {MAX_INHERITED} go",
            listeners.len()
        )));
    }
    let program = command.get_program().to_owned();
    if !program.as_encoded_bytes().contains(&b'/') {
        return Err(invalid(format!(
            "the successor's program {program:?} is not a path"
        )));
    }
    let names = fd_names(listeners).map_err(invalid)?;
    let (ours, theirs) = UnixStream::pair()?;
    let mut env: Vec<OsString> = environment(&command);
    env.push(format!("LISTEN_FDS={}", listeners.len()).into());
    if let Some(names) = names {
        env.push(format!("LISTEN_FDNAMES={names}").into());
    }
    env.push(format!("{READY_FD}={}", 3 + listeners.len()).into());
    let mut fds: Vec<BorrowedFd<'_>> = listeners.iter().map(|l| fd_of(&l.listener)).collect();
    fds.push(theirs.as_fd());
    let args: Vec<OsString> = command.get_args().map(OsStr::to_owned).collect();
    let report = sys::exec_with_listeners(&mut command, &program, &args, &env, &fds)?;
    let mut child = command.spawn()?;
    // The prepared duplicates live in `command`: close this process's
    // copies (the error pipe's write end among them, or the report waits
    // for ever), and its copy of the successor's end of the channel, so
    // that the channel ends when the successor does.
    drop(command);
    drop(theirs);
    if let Err(e) = report.outcome() {
        // The child exits without running anything: reap it.
        let _ = child.wait();
        return Err(e);
    }
    Ok(Successor { child, ready: ours })
}

fn fd_of(listener: &Listener) -> BorrowedFd<'_> {
    match listener {
        Listener::Tcp(l) => l.as_fd(),
        Listener::Unix(l) => l.as_fd(),
    }
}

/// `LISTEN_FDNAMES`, when any listener has a name.
fn fd_names(listeners: &[InheritedListener]) -> Result<Option<String>, String> {
    if listeners.iter().all(|l| l.name.is_none()) {
        return Ok(None);
    }
    let mut names = Vec::with_capacity(listeners.len());
    for listener in listeners {
        let name = listener.name.as_deref().unwrap_or("unknown");
        let valid = !name.is_empty()
            && name.len() <= 255
            && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if !valid {
            return Err(format!(
                "{name:?} cannot be a socket's name (LISTEN_FDNAMES)"
            ));
        }
        names.push(name);
    }
    Ok(Some(names.join(":")))
}

/// This process's environment with `command`'s changes, as `NAME=value`,
/// less the hand-over's own variables.
fn environment(command: &Command) -> Vec<OsString> {
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    for (name, value) in command.get_envs() {
        vars.retain(|(n, _)| n != name);
        if let Some(value) = value {
            vars.push((name.to_owned(), value.to_owned()));
        }
    }
    vars.retain(|(name, _)| !HANDOVER_VARIABLES.iter().any(|v| name == OsStr::new(v)));
    vars.into_iter()
        .map(|(name, value)| {
            let mut entry = name;
            entry.push("=");
            entry.push(value);
            entry
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: Option<&str>) -> InheritedListener {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        InheritedListener {
            listener: Listener::Tcp(listener),
            name: name.map(str::to_owned),
        }
    }

    #[test]
    fn names_go_as_systemd_writes_them_and_bad_ones_are_refused() {
        assert_eq!(fd_names(&[named(None), named(None)]), Ok(None));
        assert_eq!(
            fd_names(&[named(Some("http")), named(None)]),
            Ok(Some("http:unknown".to_owned()))
        );
        for bad in ["a:b", "has space", "", &"n".repeat(256)] {
            assert!(fd_names(&[named(Some(bad))]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_successor_does_not_inherit_a_previous_hand_over() {
        let mut command = Command::new("/bin/true");
        command.env("LISTEN_PID", "1").env("KEEP", "yes");
        let env = environment(&command);
        assert!(env.iter().any(|e| e == "KEEP=yes"));
        assert!(!env
            .iter()
            .any(|e| e.as_encoded_bytes().starts_with(b"LISTEN_PID=")));
    }

    #[test]
    fn what_cannot_be_a_successor_is_refused_before_fork() {
        let error = spawn_successor(Command::new("/bin/true"), &[]).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        let error = spawn_successor(Command::new("true"), &[named(None)]).unwrap_err();
        assert!(error.to_string().contains("not a path"), "{error}");
        let error = spawn_successor(Command::new("/nonexistent/keel"), &[named(None)]).unwrap_err();
        assert_eq!(
            error.kind(),
            io::ErrorKind::NotFound,
            "execve's error: {error}"
        );
    }

    /// The child moves the sockets onto descriptors 3, 4...: when those
    /// numbers are free in this process, `Command`'s own error pipe can
    /// land there and be overwritten, and a failed `execve` then looked
    /// like a started successor (seen once in CI). Free the low numbers
    /// on purpose and hand over enough sockets to cover them.
    #[test]
    fn a_failed_exec_is_reported_whatever_descriptors_are_free() {
        let placeholders: Vec<_> = (0..24).map(|_| named(None)).collect();
        let listeners: Vec<_> = (0..24).map(|_| named(None)).collect();
        drop(placeholders);
        for _ in 0..20 {
            let error = spawn_successor(Command::new("/nonexistent/keel"), &listeners)
                .expect_err("a program that does not exist cannot start");
            assert_eq!(error.kind(), io::ErrorKind::NotFound, "{error}");
        }
    }
}
