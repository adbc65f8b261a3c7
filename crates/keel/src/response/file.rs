//! A file as the whole body: [`Response::file`].

use super::{Framing, Response, Stage};
use crate::files::slice::FileSlice;
use crate::http1::output::Segment;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;

/// Room kept for the server's part of the head (status line,
/// `Content-Length`, `Date`, `Server`, `Connection`) when a small file is
/// read into the output buffer's spare room.
const HEAD_ROOM: usize = 256;

impl Response<'_> {
    /// Sends bytes `range` of `file` as the whole body and completes the
    /// response: `Content-Length` is the range's length. The body is not
    /// read into memory: it goes from the page cache to the socket with
    /// `sendfile(2)` once the head and everything queued before it are
    /// out, a bounded share per turn of the worker, and the file closes
    /// when it is sent (or the connection closes). Except a body that fits
    /// in the output buffer's spare room as it is (a few kilobytes): that
    /// one is read into it now, so that head and body leave in one write
    /// with the answers pipelined around them, where `sendfile` would cost
    /// a second system call and a second packet. Neither allocates. A
    /// `HEAD` answer sends the head only.
    ///
    /// Status and headers (`Content-Type`, validators, `Content-Range`)
    /// are the caller's; [`ServeDir`](crate::files) sets them for a file
    /// tree. If the file is cut short while it is being sent, the client
    /// gets fewer bytes than the head promised and the connection closes:
    /// a client can tell an incomplete download.
    ///
    /// ```no_run
    /// use keel::{Request, Response};
    /// fn download(_req: &Request<'_>, res: &mut Response<'_>) {
    ///     let Ok(file) = std::fs::File::open("/srv/big.iso") else {
    ///         return res.status(keel::StatusCode::NOT_FOUND).body(b"");
    ///     };
    ///     let len = file.metadata().map_or(0, |m| m.len());
    ///     res.header("Content-Type", "application/octet-stream");
    ///     if res.file(file, 0..len).is_err() {
    ///         res.status(keel::StatusCode::INTERNAL_SERVER_ERROR).body(b"");
    ///     }
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// A body read now (see above) could not be read, or the file ends
    /// before `range.end`: then nothing was written and the response can
    /// still be answered otherwise.
    ///
    /// # Panics
    ///
    /// After the body began, or when `range` ends before it starts.
    pub fn file(&mut self, file: File, range: Range<u64>) -> io::Result<()> {
        assert!(self.stage == Stage::Headers, "file() after the body began");
        let len = range
            .end
            .checked_sub(range.start)
            .expect("file(): a range that ends before it starts");
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let room = self.out.capacity() - self.out.len();
        if self.sends_body() && len.saturating_add(HEAD_ROOM) <= room {
            return self.read_in(&file, range.start, len);
        }
        self.write_head(Framing::Length(len));
        self.body_len = len;
        if self.sends_body() {
            let slice = FileSlice {
                file,
                offset: range.start,
                len,
            };
            self.large.push((self.out.len(), Segment::File(slice)));
        }
        self.stage = Stage::Done;
        Ok(())
    }

    /// Reads the body into the output buffer's spare room after the
    /// header section, then puts the server's head in front (as a
    /// buffered body does).
    fn read_in(&mut self, file: &File, offset: u64, len: usize) -> io::Result<()> {
        self.open_head();
        let section_end = self.out.len();
        self.out.extend_from_slice(b"\r\n");
        let body_start = self.out.len();
        self.out.resize(body_start + len, 0);
        if let Err(error) = file.read_exact_at(&mut self.out[body_start..], offset) {
            self.out.truncate(section_end);
            return Err(error);
        }
        self.body_len = len;
        self.stage = Stage::Done;
        self.insert_server_fields(Framing::Length(len), section_end);
        Ok(())
    }
}
