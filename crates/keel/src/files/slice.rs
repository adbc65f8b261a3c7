//! A slice of an open file queued as a response body: sent from the page
//! cache with `sendfile(2)`, never read into the process.

use std::fs::File;

/// `len` bytes of `file` from `offset`, waiting in a connection's output
/// queue. Dropping it (the answer is out, or the connection closed) closes
/// the file.
#[derive(Debug)]
pub(crate) struct FileSlice {
    pub(crate) file: File,
    pub(crate) offset: u64,
    pub(crate) len: usize,
}
