//! The worker's socket calls: what woke a connection, writing its queued
//! output (files with `sendfile`), and reading what a closing peer still sends.

use crate::deferred::Message;
use crate::files::readahead::{ColdChunk, PROBE_FROM, PROBE_STEP};
use crate::http1::conn::{Conn, Env};
use crate::http1::output::{Front, Output};
use crate::server::stats::WorkerCounters;
use crate::server::sys;
use crate::transport::Stream;
use crate::Handler;
use std::io::{self, IoSlice, Read, Write};

/// Most slices handed to one `writev`.
const MAX_IOVECS: usize = 64;

/// What woke a connection up: the poller's readiness, or `ANY` when the
/// worker drives it for another reason (an accept, a deferred response, a
/// deadline, a spent read budget) and must not assume the socket is empty.
#[derive(Clone, Copy)]
pub(super) struct Wake {
    /// The socket may hold bytes to read.
    pub(super) may_read: bool,
    /// The peer has shut its side: read on to the end of the stream.
    pub(super) read_closed: bool,
}

impl Wake {
    pub(super) const ANY: Wake = Wake {
        may_read: true,
        read_closed: false,
    };

    pub(super) fn from_event(event: &mio::event::Event) -> Wake {
        let read_closed = event.is_read_closed();
        Wake {
            // epoll reports a socket's whole readiness at the time: an event
            // without READABLE (say, the WRITABLE a new registration gets)
            // means there was nothing to read.
            may_read: event.is_readable() || read_closed || event.is_error(),
            read_closed,
        }
    }
}

/// Most file bytes handed to one `sendfile`, and to one connection in one
/// turn: a fast reader of a large file must not hold the worker (nginx's
/// `sendfile_max_chunk` is 2 MiB).
const FILE_BYTES_PER_TURN: usize = 2 * 1024 * 1024;

/// How far a [`flush`] got.
#[derive(Debug)]
pub(super) enum Flushed {
    /// All written, or the socket is full (WRITABLE brings it back), or a
    /// pool thread reads the next chunk in (its message brings it back).
    Stopped,
    /// This turn's share of file bytes is spent with the socket still
    /// writable: drive the connection again before the next poll.
    TurnSpent,
    /// The next chunk of a file is not in the page cache: have it read in
    /// off the event loop ([`read_ahead`]).
    Cold(ColdChunk),
}

/// Writes queued output until done, the socket would block or this turn's
/// file share is spent. Adds the bytes written to `written`. With
/// `ask_page_cache`, a file chunk not in the page cache is returned as
/// [`Flushed::Cold`] instead of sent.
pub(super) fn flush(
    stream: &mut Stream,
    conn: &mut Conn,
    counters: &WorkerCounters,
    written: &mut u64,
    ask_page_cache: bool,
) -> io::Result<Flushed> {
    let mut file_bytes = 0;
    // A TLS stream's ciphertext from before goes first.
    match stream.push_unsent() {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flushed::Stopped),
        Err(e) => return Err(e),
    }
    while conn.output.pending() > 0 {
        let result = match conn.output.only_memory() {
            // Most answers: one buffer, one write, no iovec array to fill.
            Some(bytes) => stream.write(bytes),
            None => match write_front(stream, &mut conn.output, &mut file_bytes, ask_page_cache) {
                Ok(written) => written,
                Err(stop) => return stop,
            },
        };
        match result {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                conn.output.advance(n);
                counters.bytes_out.add(n as u64);
                *written += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Flushed::Stopped)
}

/// Writes the front of `output` when it holds shared bodies or files: the
/// memory up to the next file with `writev`, or the file with `sendfile`
/// (see [`flush`]). `Err` is what `flush` returns at once. Out of line: its
/// iovec array would make every flush's stack frame larger.
#[inline(never)]
fn write_front(
    stream: &mut Stream,
    output: &mut Output,
    file_bytes: &mut usize,
    ask_page_cache: bool,
) -> Result<io::Result<usize>, io::Result<Flushed>> {
    // A chunk found cached is not asked about again while it is sent
    // in pieces (one per flush, as the socket takes them).
    let mut found_cached = None;
    let result = {
        let mut iov = [IoSlice::new(&[]); MAX_IOVECS];
        match output.front(&mut iov) {
            Front::Memory(1) => stream.write(&iov[0]),
            Front::Memory(n) => stream.write_vectored(&iov[..n]),
            Front::File { .. } if output.waits_for_disk() => {
                return Err(Ok(Flushed::Stopped));
            }
            Front::File { .. } if *file_bytes >= FILE_BYTES_PER_TURN => {
                return Err(Ok(Flushed::TurnSpent));
            }
            Front::File { file, offset, len } => {
                let mut len = len.min(FILE_BYTES_PER_TURN - *file_bytes);
                let known = output.known_cached();
                if known > 0 {
                    // Only what was asked about (or read in) goes
                    // without asking.
                    len = len.min(known);
                } else if ask_page_cache && len >= PROBE_FROM {
                    // Warm files are asked about at the chunk's ends
                    // only; once one was cold, every PROBE_STEP.
                    let step = if output.found_cold() { PROBE_STEP } else { len };
                    if !chunk_cached(file, offset, len, step) {
                        return Err(file
                            .try_clone()
                            .map(|file| Flushed::Cold(ColdChunk { file, offset, len })));
                    }
                    found_cached = Some(len);
                }
                let sent = stream.send_file(file, offset, len);
                if let Ok(n) = sent {
                    *file_bytes += n;
                }
                // Zero bytes of a file: it was cut short after its
                // length went out in the head; the answer cannot be
                // completed.
                sent.and_then(|n| if n == 0 { Err(cut_short()) } else { Ok(n) })
            }
        }
    };
    if let Some(len) = found_cached {
        output.trust_disk(len);
    }
    Ok(result)
}

/// Whether the pages of a file chunk are in the page cache, asked every
/// `step` bytes and at its last byte. In a file being read from the disk,
/// the kernel's own read-ahead may still be reading pages in the middle of
/// a chunk whose ends are in, and `sendfile` would wait for them: there
/// the step is short.
fn chunk_cached(file: &std::fs::File, offset: u64, len: usize, step: usize) -> bool {
    let last = offset + len as u64 - 1;
    (offset..last)
        .step_by(step.max(1))
        .chain(std::iter::once(last))
        .all(|at| sys::page_cached(file, at))
}

/// Has a pool thread read `chunk` into the page cache, then tell the
/// worker (which drives the connection again). Returns whether it waits
/// for that; `false` when the pool is full: the chunk is then sent as it
/// is, as it would have been without asking.
pub(super) fn read_ahead(
    chunk: ColdChunk,
    key: usize,
    output: &mut Output,
    env: &Env<'_, impl Handler + ?Sized>,
) -> bool {
    let len = chunk.len;
    let ticket = env.deferral.ticket();
    let notifier = env.deferral.notifier();
    let job = move || {
        chunk.read_in();
        notifier.send(Message::DiskRead { key, ticket });
    };
    if crate::blocking::global().spawn(job).is_ok() {
        output.wait_for_disk(ticket, len);
        env.counters.file_readaheads.add(1);
        true
    } else {
        output.trust_disk(len);
        false
    }
}

fn cut_short() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "file shorter than its answer")
}

/// Whether a peer that shut its sending side sent nothing after: no
/// pipelined request waits behind the deferred one.
pub(super) fn peer_left(stream: &Stream) -> bool {
    match stream.peek_byte() {
        Ok(next) => next.is_none(),
        Err(e) => e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::Interrupted,
    }
}

/// Reads and drops what a closing peer still sends. Returns whether the
/// connection is finished (end of stream or an error).
pub(super) fn linger_read(stream: &mut Stream, scratch: &mut [u8]) -> bool {
    loop {
        match stream.read(scratch) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}
