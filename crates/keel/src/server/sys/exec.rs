//! Starting a successor with this process's listening sockets on
//! descriptors 3, 4... (the systemd protocol): everything is prepared
//! before `fork`, the child only moves descriptors and `execve`s.
//!
//! A failed `execve` is reported through a pipe of our own, numbered
//! above every descriptor the child moves things onto. `Command` has an
//! error pipe too, but it is opened during `spawn` and takes the lowest
//! free number, which can be 3 or 4: moving a socket there closed it, and
//! a program that does not exist looked started (seen in CI).

use std::ffi::{CString, OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// What the child exits with when it cannot `execve` (as a shell does for
/// a command it cannot run); its error goes through [`ExecReport`].
const EXEC_FAILED: libc::c_int = 127;

/// `LISTEN_PID=` and room for any pid's digits and the closing NUL.
const PID_SLOT: usize = b"LISTEN_PID=".len() + 10 + 1;

/// Everything the child of [`exec_with_listeners`] needs, made before
/// `fork`: after it, in a copy of a process with other threads (one of
/// which may hold the allocator's lock), the child may only make
/// async-signal-safe calls, so it must not allocate.
struct Prepared {
    program: CString,
    /// `argv`'s pointers, NUL-ended, into `_args`.
    argv: Vec<*const libc::c_char>,
    _args: Vec<CString>,
    /// `envp`'s pointers, NUL-ended, into `_env` and, last, the pid slot.
    envp: Vec<*const libc::c_char>,
    _env: Vec<CString>,
    /// `LISTEN_PID=` then the child's pid, written by the child through
    /// `pid_digits`: both it and `envp`'s last pointer come from one raw
    /// pointer to this buffer, never used through the `Vec` again.
    _pid_slot: Vec<u8>,
    pid_digits: *mut u8,
    /// The descriptors to hand over, in order: each goes to `3 + i`. Each
    /// is a close-on-exec duplicate numbered above every target, so that
    /// moving one never overwrites another still to move.
    fds: Vec<OwnedFd>,
    /// The write end of the error pipe, close-on-exec and numbered above
    /// every target: a successful `execve` closes it, a failed one writes
    /// its errno there.
    report: OwnedFd,
}

// SAFETY: the raw pointers point into the heap buffers `Prepared` owns
// (`_args`, `_env`, `_pid_slot`), which move with it and are never
// reallocated; they are only read or written in the forked child, which
// has a single thread.
unsafe impl Send for Prepared {}
// SAFETY: as above; `&Prepared` exposes nothing (the closure that owns it
// needs `&mut` to run).
unsafe impl Sync for Prepared {}

/// Makes `command` start `program` with `args` and exactly the environment
/// `env` (`NAME=value` entries) plus `LISTEN_PID=<the child's pid>`, with
/// `fds[i]` as its descriptor `3 + i` (and nothing else beyond what
/// `command` sets up: stdio, directory). This is the systemd protocol
/// (`sd_listen_fds(3)`), which needs the child's pid in its environment:
/// known only after `fork`, so the child writes it into a slot made
/// before, then `execve`s itself rather than returning to `Command` (which
/// would replace the environment prepared here with its own).
///
/// `program` must be a path (no `PATH` search happens). A failing `execve`
/// (or `dup2`) makes the child exit with 127; the returned report gives
/// its error once [`Command::spawn`] has returned and `command` is
/// dropped (it holds the pipe's write end until then).
pub(crate) fn exec_with_listeners(
    command: &mut Command,
    program: &OsStr,
    args: &[OsString],
    env: &[OsString],
    fds: &[BorrowedFd<'_>],
) -> io::Result<ExecReport> {
    let cstring = |s: &OsStr| {
        CString::new(s.as_bytes()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a NUL byte in an argument or variable",
            )
        })
    };
    let program = cstring(program)?;
    let mut all_args = vec![program.clone()];
    for arg in args {
        all_args.push(cstring(arg)?);
    }
    let env = env
        .iter()
        .map(|e| cstring(e))
        .collect::<io::Result<Vec<_>>>()?;
    let mut pid_slot = b"LISTEN_PID=".to_vec();
    pid_slot.resize(PID_SLOT, 0);
    let slot = pid_slot.as_mut_ptr();
    // SAFETY: 11 is within the slot's PID_SLOT bytes.
    let pid_digits = unsafe { slot.add(11) };
    let first_free = 3 + fds.len() as RawFd;
    let fds = fds
        .iter()
        .map(|fd| fd.try_clone_to_owned_above(first_free))
        .collect::<io::Result<Vec<_>>>()?;
    let (reader, writer) = cloexec_pipe()?;
    let report = writer.as_fd().try_clone_to_owned_above(first_free)?;
    let argv = all_args
        .iter()
        .map(|a| a.as_ptr())
        .chain([std::ptr::null()]);
    let envp = env.iter().map(|e| e.as_ptr());
    let envp = envp.chain([slot.cast_const().cast(), std::ptr::null()]);
    let mut prepared = Prepared {
        program,
        argv: argv.collect(),
        _args: all_args,
        envp: envp.collect(),
        _env: env,
        _pid_slot: pid_slot,
        pid_digits,
        fds,
        report,
    };
    let in_child = move || -> io::Result<()> {
        let prepared = &mut prepared;
        // SAFETY: getpid cannot fail and touches no memory.
        let pid = unsafe { libc::getpid() };
        // SAFETY: `pid_digits` points at the 11 bytes after `LISTEN_PID=`
        // in the slot `prepared` owns, and nothing else refers to them:
        // a pid has at most 10 digits, then the NUL.
        unsafe { write_decimal(prepared.pid_digits, pid.unsigned_abs()) };
        for (target, fd) in (3..).zip(&prepared.fds) {
            // SAFETY: dup2 on an open descriptor we own, to a number above
            // stdio; the copy has no close-on-exec flag, so it survives
            // the execve. Every source is numbered above every target.
            if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
                fail_in_child(&prepared.report);
            }
        }
        // SAFETY: the three arrays are NUL-terminated arrays of pointers to
        // NUL-terminated strings, all alive in `prepared`. On success it
        // does not return.
        unsafe {
            libc::execve(
                prepared.program.as_ptr(),
                prepared.argv.as_ptr(),
                prepared.envp.as_ptr(),
            )
        };
        fail_in_child(&prepared.report)
    };
    // SAFETY: the closure makes only async-signal-safe calls (getpid, dup2,
    // execve, write, _exit) and plain writes into memory prepared before
    // the fork; it allocates nothing and never returns to `Command`, whose
    // own error pipe the dup2s may have overwritten.
    unsafe { command.pre_exec(in_child) };
    Ok(ExecReport(std::fs::File::from(reader)))
}

/// A pipe, both ends close-on-exec: (read end, write end).
fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut ends: [libc::c_int; 2] = [-1; 2];
    // SAFETY: pipe2 writes two descriptors into the two-int array.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just made both descriptors; nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) })
}

/// In the forked child: writes errno into the report pipe and exits at
/// once, without running anything of this process's (no destructors,
/// no atexit handlers, no `Command` error path).
fn fail_in_child(report: &OwnedFd) -> ! {
    // SAFETY: errno is thread-local and readable after a failed call.
    let errno = unsafe { *libc::__errno_location() };
    let bytes = errno.to_ne_bytes();
    // SAFETY: write and _exit are async-signal-safe; `bytes` is a live
    // 4-byte array and `report` an open descriptor. Four bytes into a
    // pipe are written whole or not at all (below PIPE_BUF); nothing can
    // be done in the child about a failed write, and the parent then sees
    // the child exit before `execve`.
    unsafe {
        libc::write(report.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
        libc::_exit(EXEC_FAILED)
    }
}

/// The parent's end of a successor's error pipe.
#[derive(Debug)]
pub(crate) struct ExecReport(std::fs::File);

impl ExecReport {
    /// Waits for the child to `execve` (the pipe closes empty) or fail
    /// (it writes its errno): `Ok` or that error. Call it after `spawn`,
    /// with `command` dropped, or it waits for ever on its own write end.
    pub(crate) fn outcome(mut self) -> io::Result<()> {
        let mut report = Vec::with_capacity(4);
        self.0.read_to_end(&mut report)?;
        if report.is_empty() {
            return Ok(());
        }
        match <[u8; 4]>::try_from(report.as_slice()) {
            Ok(errno) => Err(io::Error::from_raw_os_error(i32::from_ne_bytes(errno))),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the successor's exec report was cut short",
            )),
        }
    }
}

/// Writes `n` in decimal at `out`, then a NUL.
///
/// # Safety
///
/// `out` must be valid for writing 11 bytes (u32's 10 digits and the NUL).
unsafe fn write_decimal(out: *mut u8, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        // SAFETY: i < len <= 10, within the 11 bytes the caller vouches for.
        unsafe { out.add(i).write(digits[len - 1 - i]) };
    }
    // SAFETY: len <= 10: the 11th byte at most.
    unsafe { out.add(len).write(0) };
}

/// A duplicate of a descriptor numbered at least `min`, close-on-exec.
trait DupAbove {
    fn try_clone_to_owned_above(&self, min: RawFd) -> io::Result<OwnedFd>;
}

impl DupAbove for BorrowedFd<'_> {
    fn try_clone_to_owned_above(&self, min: RawFd) -> io::Result<OwnedFd> {
        // SAFETY: F_DUPFD_CLOEXEC on a descriptor open for the borrow's
        // lifetime; it touches no memory.
        let fd = unsafe { libc::fcntl(self.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just made this descriptor; nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}
