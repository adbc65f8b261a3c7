//! The validators of a file (RFC 9110 §8.8): a strong `ETag` from its inode,
//! modification time and size, and its `Last-Modified` date.

use std::fmt::Write;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::fixed::FixedStr;

/// The longest `ETag` [`Validators`] writes: three 64-bit numbers in hex,
/// two dashes, two quotes.
const ETAG_MAX: usize = 2 + 3 * 16 + 2;

/// The length of an IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`.
const HTTP_DATE_LEN: usize = 29;

/// The first second `httpdate` cannot write (year 10000): its `From` panics
/// there.
const YEAR_10000: u64 = 253_402_300_800;

/// A file's validators, ready to be sent as `ETag` and `Last-Modified` and
/// compared with a request's conditional headers
/// ([`check_preconditions`](super::check_preconditions)).
///
/// Both header values live in fixed-size buffers inside the value: building
/// one and writing its headers into a response allocates nothing.
///
/// The `ETag` is `"<id hex>-<mtime ns hex>-<size hex>"` (the inode for a file):
/// it changes when the file is replaced (new inode), rewritten (new
/// modification time, to the nanosecond) or resized, and it says nothing of
/// the file's path. It is sent as a strong validator (RFC 9110 §8.8.1), as
/// nginx does with its modification time and size.
///
/// ```
/// use keel::files::Validators;
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
///
/// let modified = UNIX_EPOCH + Duration::new(784_111_777, 5);
/// let v = Validators::from_parts(0x2a, Some(modified), 1024, SystemTime::now());
/// assert_eq!(v.etag(), "\"2a-ae1b981bc490a05-400\"");
/// assert_eq!(v.last_modified(), Some("Sun, 06 Nov 1994 08:49:37 GMT"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validators {
    etag: FixedStr<ETAG_MAX>,
    /// Seconds since the epoch of `Last-Modified`, the precision an
    /// HTTP-date has, and the date itself.
    last_modified: Option<(u64, FixedStr<HTTP_DATE_LEN>)>,
}

impl Validators {
    /// The validators of an open file, from its `fstat` metadata. `now` is
    /// the time the response is made: a modification time in the future is
    /// sent as `now` (RFC 9110 §8.8.2.1).
    pub fn from_metadata(metadata: &Metadata, now: SystemTime) -> Self {
        Self::from_parts(
            metadata.ino(),
            metadata.modified().ok(),
            metadata.len(),
            now,
        )
    }

    /// The validators of a representation described by `id` (what tells
    /// apart two files of the same size and time: an inode, or a hash of
    /// embedded bytes), its modification time, if known, and its size.
    ///
    /// Without a modification time, or with one before 1970, there is no
    /// `Last-Modified`, and the date preconditions are not evaluated (RFC
    /// 9110 §13.1.3, §13.1.4).
    pub fn from_parts(id: u64, modified: Option<SystemTime>, size: u64, now: SystemTime) -> Self {
        let mut etag = FixedStr::new();
        // Nanoseconds since the epoch, negative before it; the low 64 bits
        // (two's complement) are enough to tell two writes apart.
        let mtime_ns = modified.map_or(0, nanos_since_epoch) as u64;
        // Cannot fail: ETAG_MAX holds three u64 in hex.
        let _ = write!(etag, "\"{id:x}-{mtime_ns:x}-{size:x}\"");
        let last_modified = modified
            .map(|modified| modified.min(now))
            .and_then(|modified| modified.duration_since(UNIX_EPOCH).ok())
            .map(|since_epoch| since_epoch.as_secs())
            .filter(|&secs| secs < YEAR_10000)
            .map(|secs| (secs, format_http_date(secs)));
        Self {
            etag,
            last_modified,
        }
    }

    /// The `ETag` field value, quotes included.
    pub fn etag(&self) -> &str {
        self.etag.as_str()
    }

    /// The `Last-Modified` field value (an IMF-fixdate), if there is one.
    pub fn last_modified(&self) -> Option<&str> {
        self.last_modified.as_ref().map(|(_, date)| date.as_str())
    }

    /// `Last-Modified` as seconds since the epoch.
    pub(crate) fn modified_secs(&self) -> Option<u64> {
        self.last_modified.as_ref().map(|(secs, _)| *secs)
    }

    /// The ETag's opaque part, between the quotes.
    pub(crate) fn opaque_tag(&self) -> &str {
        let etag = self.etag();
        &etag[1..etag.len() - 1]
    }
}

fn nanos_since_epoch(time: SystemTime) -> i128 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_nanos() as i128,
        Err(before) => -(before.duration().as_nanos() as i128),
    }
}

/// `secs` (before year 10000) as an IMF-fixdate, with `httpdate`.
fn format_http_date(secs: u64) -> FixedStr<HTTP_DATE_LEN> {
    let date = httpdate::HttpDate::from(UNIX_EPOCH + Duration::from_secs(secs));
    let mut text = FixedStr::new();
    // Cannot fail: an IMF-fixdate before year 10000 is 29 bytes.
    let _ = write!(text, "{date}");
    text
}

/// An HTTP-date in any of its three forms (RFC 9110 §5.6.7: IMF-fixdate,
/// RFC 850, asctime) as seconds since the epoch; `None` when it is none of
/// them, or not a real date.
pub(crate) fn parse_http_date(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?;
    let time = httpdate::parse_http_date(text).ok()?;
    time.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Duration = Duration::from_secs(1_700_000_000);

    fn at(secs: u64, nanos: u32) -> Option<SystemTime> {
        Some(UNIX_EPOCH + Duration::new(secs, nanos))
    }

    #[test]
    fn etag_changes_with_inode_mtime_nanos_and_size() {
        let now = UNIX_EPOCH + NOW;
        let base = Validators::from_parts(7, at(1_000, 0), 10, now);
        assert_eq!(base.etag(), "\"7-e8d4a51000-a\"");
        for other in [
            Validators::from_parts(8, at(1_000, 0), 10, now),
            Validators::from_parts(7, at(1_000, 1), 10, now),
            Validators::from_parts(7, at(1_000, 0), 11, now),
        ] {
            assert_ne!(other.etag(), base.etag());
            assert_eq!(other.last_modified(), base.last_modified());
        }
    }

    #[test]
    fn etag_fits_the_largest_numbers() {
        // One nanosecond before the epoch is -1: all ones in 64 bits.
        let before_epoch = Some(UNIX_EPOCH - Duration::from_nanos(1));
        let v = Validators::from_parts(u64::MAX, before_epoch, u64::MAX, UNIX_EPOCH + NOW);
        let all_ones = "ffffffffffffffff";
        assert_eq!(v.etag(), format!("\"{all_ones}-{all_ones}-{all_ones}\""));
        assert_eq!(v.etag().len(), ETAG_MAX);
        assert_eq!(v.opaque_tag(), &v.etag()[1..ETAG_MAX - 1]);
        assert_eq!(v.last_modified(), None, "before 1970: no Last-Modified");
    }

    #[test]
    fn last_modified_is_an_imf_fixdate_clamped_to_now() {
        let now = UNIX_EPOCH + NOW;
        let cases = [
            // RFC 9110 §5.6.7's example date.
            (
                at(784_111_777, 999_999_999),
                Some("Sun, 06 Nov 1994 08:49:37 GMT"),
            ),
            (at(0, 0), Some("Thu, 01 Jan 1970 00:00:00 GMT")),
            // RFC 9110 §8.8.2.1: a time in the future is sent as now.
            (
                at(NOW.as_secs() + 3_600, 0),
                Some("Tue, 14 Nov 2023 22:13:20 GMT"),
            ),
            // httpdate panics on these: no Last-Modified instead.
            (Some(UNIX_EPOCH - Duration::from_secs(1)), None),
            (None, None),
        ];
        for (modified, expected) in cases {
            let v = Validators::from_parts(1, modified, 1, now);
            assert_eq!(v.last_modified(), expected, "{modified:?}");
        }
        let far = UNIX_EPOCH + Duration::from_secs(YEAR_10000 + 10);
        let v = Validators::from_parts(1, Some(far), 1, far);
        assert_eq!(v.last_modified(), None, "year 10000 is not written");
    }

    #[test]
    fn http_dates_parse_in_all_three_forms() {
        // RFC 9110 §5.6.7: the same instant in each form.
        let cases: [(&[u8], Option<u64>); 7] = [
            (b"Sun, 06 Nov 1994 08:49:37 GMT", Some(784_111_777)),
            (b"Sunday, 06-Nov-94 08:49:37 GMT", Some(784_111_777)),
            (b"Sun Nov  6 08:49:37 1994", Some(784_111_777)),
            (b"Mon, 06 Nov 1994 08:49:37 GMT", None), // wrong weekday
            (b"06 Nov 1994", None),
            (b"yesterday", None),
            (b"Sun, 06 Nov 1994 08:49:37 GMT\xff", None),
        ];
        for (wire, expected) in cases {
            assert_eq!(
                parse_http_date(wire),
                expected,
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn from_metadata_reads_the_real_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, b"hello").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let v = Validators::from_metadata(&meta, SystemTime::now());
        let expected_prefix = format!("\"{:x}-", meta.ino());
        assert!(v.etag().starts_with(&expected_prefix), "{}", v.etag());
        assert!(v.etag().ends_with("-5\""), "{}", v.etag());
        assert!(v.last_modified().is_some());
    }
}
