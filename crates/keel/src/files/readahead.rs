//! Bringing a cold part of a file into the page cache off the event loop.
//!
//! `sendfile` from pages that are not cached waits for the disk, and the
//! whole worker with it (measured: a 200 MiB cold download on this
//! machine's virtual disk held other clients' answers up to 11 ms, against
//! 4.5 ms warm). As nginx does with its `aio threads`, the worker asks
//! first whether the next chunk's pages are cached (`preadv2` with
//! `RWF_NOWAIT`), and when they are not, a thread of the blocking pool
//! reads them in while the connection waits and the worker serves others.

use std::cell::RefCell;
use std::fs::File;
use std::os::unix::fs::FileExt;

/// Chunks smaller than this are sent without asking: the question would
/// cost a system call on every medium-sized file for little gain.
pub(crate) const PROBE_FROM: usize = 64 * 1024;

/// The distance between two pages asked about in one chunk of a file
/// found cold before (a warm file is asked about at each chunk's ends):
/// 33 questions for a 2 MiB chunk, each a system call of a microsecond or
/// two, small beside the disk's pace.
pub(crate) const PROBE_STEP: usize = 64 * 1024;

/// The piece read at a time by a pool thread (its own buffer, kept).
const SCRATCH: usize = 64 * 1024;

/// A chunk of a file whose pages are not all cached: its own descriptor
/// (a duplicate), so that the read goes on whatever the connection does.
#[derive(Debug)]
pub(crate) struct ColdChunk {
    pub(crate) file: File,
    pub(crate) offset: u64,
    pub(crate) len: usize,
}

impl ColdChunk {
    /// Reads the chunk through, so that its pages are cached when this
    /// returns (or the file ended, or failed: `sendfile` will then say so).
    pub(crate) fn read_in(&self) {
        thread_local! {
            static BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH]);
        }
        BUF.with_borrow_mut(|buf| {
            let mut done = 0;
            while done < self.len {
                let want = (self.len - done).min(buf.len());
                match self
                    .file
                    .read_at(&mut buf[..want], self.offset + done as u64)
                {
                    Ok(0) | Err(_) => return,
                    Ok(n) => done += n,
                }
            }
        });
    }
}
