//! gzip (RFC 1952) with one deflate state per worker thread, reset between
//! responses, so that a compressed response allocates nothing once the
//! thread has compressed one of its size.
//!
//! flate2's own `GzEncoder` makes a new deflate state (hundreds of KiB) per
//! use, and its reusable `Compress` writes raw deflate only (gzip framing
//! needs a zlib C backend): so the ten-byte header and the eight-byte
//! trailer are written here, around flate2's raw deflate and CRC-32.

use flate2::{Compress, Crc, FlushCompress, Status};
use std::cell::RefCell;

/// The gzip member header: magic, deflate, no flags, no mtime, no extra
/// flags, OS unknown (RFC 1952 §2.3).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// The output buffer a thread keeps between responses; past this it is
/// freed after use, so one huge response does not pin its size per thread.
const KEPT_CAPACITY: usize = 1024 * 1024;

/// A deflate state and its output buffer, kept per thread.
pub(super) struct Gzip {
    level: u32,
    deflate: Compress,
    crc: Crc,
    out: Vec<u8>,
}

thread_local! {
    static GZIP: RefCell<Option<Gzip>> = const { RefCell::new(None) };
}

/// Runs `work` with this thread's compressor at `level` (1 to 9), made on
/// first use (or when another layer's level differs from the last one).
pub(super) fn with_gzip<R>(level: u32, work: impl FnOnce(&mut Gzip) -> R) -> R {
    GZIP.with(|cell| {
        let mut cell = cell.borrow_mut();
        let gzip = match &mut *cell {
            Some(gzip) if gzip.level == level => gzip,
            slot => slot.insert(Gzip {
                level,
                deflate: Compress::new(flate2::Compression::new(level), false),
                crc: Crc::new(),
                out: Vec::new(),
            }),
        };
        let result = work(gzip);
        if gzip.out.capacity() > KEPT_CAPACITY {
            gzip.out = Vec::new();
        }
        result
    })
}

impl Gzip {
    /// What the last [`compress`](Gzip::compress) wrote.
    pub(super) fn output(&self) -> &[u8] {
        &self.out
    }

    /// Compresses `body` as one gzip member (see [`output`](Gzip::output));
    /// false if deflate failed (it does not on a reset state, but that is
    /// flate2's to say).
    pub(super) fn compress(&mut self, body: &[u8]) -> bool {
        self.deflate.reset();
        self.crc.reset();
        self.crc.update(body);
        self.out.clear();
        // Text compresses several times over: a quarter is usually enough,
        // and the buffer doubles when it is not.
        self.out.reserve(HEADER.len() + body.len() / 4 + 64);
        self.out.extend_from_slice(&HEADER);
        loop {
            let consumed = self.deflate.total_in() as usize;
            match self
                .deflate
                .compress_vec(&body[consumed..], &mut self.out, FlushCompress::Finish)
            {
                Ok(Status::StreamEnd) => break,
                Ok(Status::Ok | Status::BufError) => self.out.reserve(self.out.capacity()),
                Err(_) => return false,
            }
        }
        self.out.extend_from_slice(&self.crc.sum().to_le_bytes());
        // ISIZE: the input's length modulo 2^32 (RFC 1952 §2.3.1).
        self.out.extend_from_slice(&self.crc.amount().to_le_bytes());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut plain)
            .unwrap();
        plain
    }

    fn packed(body: &[u8], level: u32) -> Vec<u8> {
        with_gzip(level, |gz| {
            assert!(gz.compress(body));
            gz.output().to_vec()
        })
    }

    /// Bytes deflate cannot shrink (xorshift).
    fn noise(len: usize) -> Vec<u8> {
        let mut x = 0x2545_f491_u32;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    #[test]
    fn round_trips_at_every_level_and_size() {
        // Empty, tiny, text, and incompressible bytes larger than the
        // first reservation (the output buffer must grow).
        let text = "{\"slug\":\"abc\",\"target\":\"https://example.org/\"},".repeat(500);
        let noise = noise(100_000);
        for level in 1..=9 {
            for body in [&b""[..], b"a", text.as_bytes(), &noise] {
                let packed = packed(body, level);
                assert_eq!(gunzip(&packed), body, "level {level}, {} bytes", body.len());
            }
        }
        let packed = packed(text.as_bytes(), 6);
        assert!(packed.len() * 10 < text.len(), "{} bytes", packed.len());
    }

    #[test]
    fn a_huge_output_buffer_is_not_kept() {
        let noise = noise(2 * KEPT_CAPACITY);
        let len = packed(&noise, 1).len();
        assert!(len > noise.len());
        let kept = GZIP.with(|cell| cell.borrow().as_ref().unwrap().out.capacity());
        assert_eq!(kept, 0);
    }
}
