//! A connection's queued response bytes: written with one `writev`, files
//! among them with `sendfile`.

use crate::files::slice::FileSlice;
use crate::server::pool::BufferPool;
use bytes::{Bytes, BytesMut};
use std::fs::File;
use std::io::IoSlice;

/// A body sent from its own storage instead of being copied into the
/// output buffer.
#[derive(Debug)]
pub(crate) enum Segment {
    /// A shared buffer, written with `writev`.
    Shared(Bytes),
    /// A slice of an open file, sent with `sendfile`.
    File(FileSlice),
}

impl Segment {
    pub(crate) fn len(&self) -> usize {
        match self {
            Segment::Shared(bytes) => bytes.len(),
            Segment::File(slice) => slice.len,
        }
    }
}

/// Where the next unwritten byte of an [`Output`] is.
pub(crate) enum Front<'s> {
    /// In memory: `writev` these many slices of the `iov` filled.
    Memory(usize),
    /// In a file: `len` bytes of `file` from `offset` come next.
    File {
        file: &'s File,
        offset: u64,
        len: usize,
    },
}

/// Queued response bytes: the output buffer, with large shared bodies and
/// files spliced in at recorded offsets, and how much of it all has been
/// written.
#[derive(Default)]
pub(crate) struct Output {
    pub(super) buf: Option<BytesMut>,
    /// (offset in `buf` before which the segment goes, the segment)
    large: Vec<(usize, Segment)>,
    sent: usize,
    /// What is known of the page cache for the file at the front.
    disk: Disk,
    /// A chunk of a file queued here was not in the page cache: ask about
    /// the rest closely (see [`crate::files::readahead`]).
    cold: bool,
}

/// Whether the next chunk of the file at the front of the output may be
/// sent without waiting for the disk (see [`crate::files::readahead`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Disk {
    /// Ask the page cache before sending.
    #[default]
    Unknown,
    /// A pool thread reads the chunk in; its message carries this ticket.
    /// `until` is a position in the output (as `sent` counts), which names
    /// one file's chunk where a file offset would not.
    Reading { ticket: u64, until: usize },
    /// Read in up to this position of the output: send without asking.
    ReadUntil(usize),
}

impl Output {
    /// Bytes queued and not yet written.
    pub(crate) fn pending(&self) -> usize {
        let buffered = self.buf.as_ref().map_or(0, BytesMut::len);
        buffered + self.large.iter().map(|(_, s)| s.len()).sum::<usize>() - self.sent
    }

    /// The unwritten bytes when all of them are in the buffer (no shared
    /// body or file queued): most answers, written without an iovec array.
    #[inline]
    pub(crate) fn only_memory(&self) -> Option<&[u8]> {
        if !self.large.is_empty() {
            return None;
        }
        self.buf.as_deref().map(|buf| &buf[self.sent..])
    }

    /// What comes next: the unwritten bytes in memory, in order, up to the
    /// next file (filling `iov`), or the unsent part of the file that is
    /// next.
    pub(crate) fn front<'s>(&'s self, iov: &mut [IoSlice<'s>]) -> Front<'s> {
        let Some(buf) = self.buf.as_deref() else {
            return Front::Memory(0);
        };
        let mut unsent = Unsent {
            skip: self.sent,
            count: 0,
        };
        let mut from = 0;
        for (at, segment) in &self.large {
            unsent.push(&buf[from..*at], iov);
            from = *at;
            match segment {
                Segment::Shared(body) => unsent.push(body, iov),
                Segment::File(slice) if unsent.skip >= slice.len => unsent.skip -= slice.len,
                // Memory before the file goes first.
                Segment::File(_) if unsent.count > 0 => return Front::Memory(unsent.count),
                Segment::File(slice) => {
                    return Front::File {
                        file: &slice.file,
                        offset: slice.offset + unsent.skip as u64,
                        len: slice.len - unsent.skip,
                    };
                }
            }
        }
        unsent.push(&buf[from..], iov);
        Front::Memory(unsent.count)
    }

    /// Whether a pool thread is reading the front file's next chunk in:
    /// nothing is sent until it is done.
    pub(crate) fn waits_for_disk(&self) -> bool {
        matches!(self.disk, Disk::Reading { .. })
    }

    /// How many of the front file's next bytes are known to be in the page
    /// cache (read in, or asked about): 0 when none is.
    pub(crate) fn known_cached(&self) -> usize {
        match self.disk {
            Disk::ReadUntil(until) => until.saturating_sub(self.sent),
            _ => 0,
        }
    }

    /// A pool thread reads the front file's next `len` bytes in, and will
    /// say so with `ticket`.
    pub(crate) fn wait_for_disk(&mut self, ticket: u64, len: usize) {
        let until = self.sent + len;
        self.disk = Disk::Reading { ticket, until };
        self.cold = true;
    }

    /// Whether a chunk of a file queued here was found cold.
    pub(crate) fn found_cold(&self) -> bool {
        self.cold
    }

    /// Sends the front file's next `len` bytes without asking the page
    /// cache again (they were found cached, or no thread was free to read
    /// them in: they go as they are).
    pub(crate) fn trust_disk(&mut self, len: usize) {
        self.disk = Disk::ReadUntil(self.sent + len);
    }

    /// The read-in with `ticket` is done. Returns whether it was this
    /// output's.
    pub(crate) fn disk_read(&mut self, ticket: u64) -> bool {
        match self.disk {
            Disk::Reading { ticket: t, until } if t == ticket => {
                self.disk = Disk::ReadUntil(until);
                true
            }
            _ => false,
        }
    }

    /// Records that `n` more bytes were written; forgets everything once all were.
    pub(crate) fn advance(&mut self, n: usize) {
        self.sent += n;
        if self.pending() == 0 {
            self.sent = 0;
            self.large.clear();
            self.disk = Disk::Unknown;
            self.cold = false;
            if let Some(buf) = self.buf.as_mut() {
                buf.clear();
            }
        }
    }

    /// Queues a response written elsewhere (a deferred one) after what is
    /// queued, without copying it: its pieces become shared segments.
    pub(super) fn splice(
        &mut self,
        mut bytes: BytesMut,
        large: Vec<(usize, Segment)>,
        pool: &mut BufferPool,
    ) {
        let at = self.buf.get_or_insert_with(|| pool.take()).len();
        let mut taken = 0;
        for (offset, segment) in large {
            let piece = bytes.split_to(offset - taken).freeze();
            taken = offset;
            if !piece.is_empty() {
                self.large.push((at, Segment::Shared(piece)));
            }
            self.large.push((at, segment));
        }
        if !bytes.is_empty() {
            self.large.push((at, Segment::Shared(bytes.freeze())));
        }
    }

    /// Queues a streamed body's framed bytes after what is queued: `buf`
    /// is copied (the stream keeps its buffer for the next pieces), the
    /// large pieces in `large` are moved. Allocates nothing once the output
    /// buffer and the list of pieces have grown to fit.
    pub(crate) fn append(
        &mut self,
        buf: &[u8],
        large: &mut Vec<(usize, Bytes)>,
        pool: &mut BufferPool,
    ) {
        let out = self.buf.get_or_insert_with(|| pool.take());
        let mut from = 0;
        for (at, body) in large.drain(..) {
            out.extend_from_slice(&buf[from..at]);
            self.large.push((out.len(), Segment::Shared(body)));
            from = at;
        }
        out.extend_from_slice(&buf[from..]);
    }

    pub(crate) fn buf_and_large(
        &mut self,
        pool: &mut BufferPool,
    ) -> (&mut BytesMut, &mut Vec<(usize, Segment)>) {
        (self.buf.get_or_insert_with(|| pool.take()), &mut self.large)
    }
}

/// A walk over the queued pieces in order: `skip` bytes already written
/// are passed over, the rest go into `iov` while it has room.
struct Unsent {
    skip: usize,
    count: usize,
}

impl Unsent {
    fn push<'s>(&mut self, piece: &'s [u8], iov: &mut [IoSlice<'s>]) {
        if self.skip >= piece.len() {
            self.skip -= piece.len();
        } else if self.count < iov.len() {
            iov[self.count] = IoSlice::new(&piece[self.skip..]);
            self.skip = 0;
            self.count += 1;
        }
    }
}
