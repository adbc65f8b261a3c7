//! The one `unsafe` that is not an OS call: bytes known to be ASCII seen
//! as text, and cut, without decoding them again as UTF-8.

/// A private copy of up to `N` bytes, kept only when every one is ASCII:
/// bytes found equal to it are text without being tested again.
#[derive(Debug)]
pub(crate) struct AsciiCopy<const N: usize> {
    bytes: [u8; N],
    /// How many of `bytes` are the copy; all below 0x80.
    len: usize,
}

impl<const N: usize> Default for AsciiCopy<N> {
    fn default() -> Self {
        AsciiCopy {
            bytes: [0; N],
            len: 0,
        }
    }
}

impl<const N: usize> AsciiCopy<N> {
    /// Copies `bytes` when they fit and every one is ASCII; whether it did.
    /// When not, the copy is left empty.
    pub(crate) fn set(&mut self, bytes: &[u8]) -> bool {
        self.len = 0;
        if bytes.len() > N || !bytes.is_ascii() {
            return false;
        }
        self.bytes[..bytes.len()].copy_from_slice(bytes);
        self.len = bytes.len();
        true
    }

    /// `bytes` as text, when they equal the copy.
    #[inline(always)]
    pub(crate) fn matches<'a>(&self, bytes: &'a [u8]) -> Option<AsciiText<'a>> {
        (bytes == &self.bytes[..self.len]).then_some(AsciiText(bytes))
    }
}

/// Bytes equal to an [`AsciiCopy`], hence ASCII: any part of them is text.
/// Made only by [`AsciiCopy::matches`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct AsciiText<'a>(&'a [u8]);

impl<'a> AsciiText<'a> {
    /// The text at `range`, or `None` past the end.
    #[inline]
    pub(crate) fn get(self, range: std::ops::Range<usize>) -> Option<&'a str> {
        let part = self.0.get(range)?;
        // SAFETY: `self.0` compared equal to an `AsciiCopy`'s bytes, and
        // `AsciiCopy::set` keeps bytes only after testing that every one is
        // below 0x80 (nothing else in this file writes them; the fields are
        // private). So `part`, a subslice, holds only one-byte characters
        // and is valid UTF-8 whatever its bounds.
        Some(unsafe { std::str::from_utf8_unchecked(part) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ascii_that_fits_is_kept_and_only_equal_bytes_match() {
        let mut copy = AsciiCopy::<8>::default();
        assert!(copy.set(b"GET /"));
        let text = copy.matches(b"GET /").expect("equal");
        assert_eq!(text.get(0..3), Some("GET"));
        assert_eq!(text.get(4..9), None);
        assert!(copy.matches(b"GET /x").is_none());
        assert!(copy.matches(b"GET !").is_none());
        // Not ASCII, or too long: nothing is kept, and only empty bytes match.
        for refused in [&b"caf\xc3\xa9"[..], b"\xff", b"123456789"] {
            assert!(!copy.set(refused));
            assert!(copy.matches(refused).is_none());
            assert!(copy.matches(b"GET /").is_none());
            assert!(copy.matches(b"").is_some());
        }
    }
}
