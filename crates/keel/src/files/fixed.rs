//! A string in a fixed-size buffer: how the files rules write header values
//! (`ETag`, `Last-Modified`, `Content-Range`, `Content-Type`) without
//! allocating.

use std::fmt;

/// Up to `N` bytes of UTF-8 text, written with `write!` and read back as
/// `&str`. A write past `N` bytes fails with [`fmt::Error`] and leaves the
/// text as it was before that `write_str` call.
#[derive(Clone, Copy)]
pub(crate) struct FixedStr<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> FixedStr<N> {
    /// An empty string.
    pub(crate) const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }

    /// The text written so far.
    pub(crate) fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in (see `write_str`), so the
        // bytes are UTF-8; the fallback is never taken.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl<const N: usize> fmt::Write for FixedStr<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let room = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl<const N: usize> fmt::Debug for FixedStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> PartialEq for FixedStr<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl<const N: usize> Eq for FixedStr<N> {}

#[cfg(test)]
mod tests {
    use super::FixedStr;
    use std::fmt::Write;

    #[test]
    fn writes_up_to_capacity_and_refuses_more() {
        let mut text = FixedStr::<8>::new();
        assert_eq!(write!(text, "{}-{}", 12, 34), Ok(()));
        assert_eq!(text.as_str(), "12-34");
        assert!(write!(text, "xyzw").is_err());
        assert_eq!(text.as_str(), "12-34", "a refused write leaves the text");
        assert_eq!(write!(text, "xyz"), Ok(()));
        assert_eq!(text.as_str(), "12-34xyz");
    }
}
