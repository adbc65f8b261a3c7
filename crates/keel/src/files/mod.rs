//! Files as response bodies: a slice of an open file goes out with
//! `sendfile(2)` from the page cache (see [`Response::file`](crate::Response::file)).

pub(crate) mod readahead;
pub(crate) mod slice;
