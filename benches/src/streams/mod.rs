//! The streaming contract that `load/streams.sh` drives, shared by its
//! servers (`hyper_streams`, and `keel_streams` once keel streams) and its
//! load client (`stream_client`):
//!
//! - `POST /upload` (`Content-Length` or chunked): the server hashes the body
//!   with SHA-256 as it arrives, never holding it whole, and answers `200`
//!   with the digest as [`DIGEST_HEX_LEN`] lower-case hex digits.
//! - `GET /download?bytes=N`: `200`, `Content-Length: N`, `N` bytes produced
//!   on another task in chunks of [`CHUNK`] through a bounded channel (the
//!   client counts them; their content is not checked). `400` without a
//!   readable `N`.
//! - `GET /events`: `200`, `text/event-stream`, chunked; one broadcaster
//!   sends [`event`]`(1)`, `event(2)`, ... to every connected client, waiting
//!   for the slowest, so that each client sees consecutive numbers. Nothing
//!   else goes in the stream (no comment heartbeats, no `id:`): the client
//!   counts two line feeds per event.
//!
//! This module holds the wire format of each ([`PATTERN_PERIOD`], [`hex`],
//! [`event`]); the client's side is in [`response`] (reading what either
//! server sends: a head, then a length or chunked body) and [`events`]
//! (counting and checking events).

pub mod events;
pub mod response;

pub use events::EventCounter;
pub use response::{read_body, read_head, BodyDecoder, Framing, Head, ReadBuf};

/// Bytes per chunk a download producer hands over, and per client write.
pub const CHUNK: usize = 64 * 1024;

/// Chunks a download's producer may run ahead of the connection (the
/// bounded channel between them).
pub const DOWNLOAD_QUEUE: usize = 4;

/// Events the broadcaster may run ahead of one SSE client (each client's
/// bounded channel).
pub const EVENT_QUEUE: usize = 16;

/// Upload and download bodies repeat `0, 1, ..., 250`: a prime period, so
/// that a shifted or dropped block changes the digest.
pub const PATTERN_PERIOD: usize = 251;

/// A SHA-256 digest in hex, as `/upload` answers it.
pub const DIGEST_HEX_LEN: usize = 64;

/// `len` bytes of the body pattern, starting at its beginning. A `len` that
/// is a multiple of [`PATTERN_PERIOD`] can be sent again and again and the
/// body stays one unbroken pattern.
pub fn pattern(len: usize) -> Vec<u8> {
    // `i % 251` is below 256, so the cast keeps every value.
    (0..len).map(|i| (i % PATTERN_PERIOD) as u8).collect()
}

/// `bytes` as lower-case hex digits.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// The event numbered `n` on the wire: `data: <n>\n\n`. Exactly two line
/// feeds per event, which is how the client counts them.
pub fn event(n: u64) -> String {
    format!("data: {n}\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_formats() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
        assert_eq!(event(42), "data: 42\n\n");
        let p = pattern(2 * PATTERN_PERIOD);
        assert_eq!((p[0], p[250], p[251]), (0, 250, 0));
    }
}
