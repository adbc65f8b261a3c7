//! gzip (RFC 1952) with one deflate state per worker thread, reset between
//! responses, so that a compressed response allocates nothing once the
//! thread has compressed one of its size (flate2's `GzEncoder` would make
//! a new state, hundreds of KiB, per response).
//!
//! flate2 runs on its zlib-rs backend (pure Rust): on a 16 KiB JSON body it
//! took 0.6x miniz_oxide's time at levels 4 and 6 (tests/compression_alloc.rs).

use flate2::{Compress, FlushCompress, Status};
use std::cell::RefCell;

/// deflate's largest window (32 KiB), as gzip tools use.
const WINDOW_BITS: u8 = 15;

/// The output buffer a thread keeps between responses; past this it is
/// freed after use, so one huge response does not pin its size per thread.
const KEPT_CAPACITY: usize = 1024 * 1024;

/// A deflate state with gzip framing and its output buffer, kept per thread.
pub(super) struct Gzip {
    level: u32,
    deflate: Compress,
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
                deflate: Compress::new_gzip(flate2::Compression::new(level), WINDOW_BITS),
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
        self.out.clear();
        // Text compresses several times over: a quarter is usually enough,
        // and the buffer doubles when it is not.
        self.out.reserve(body.len() / 4 + 64);
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
