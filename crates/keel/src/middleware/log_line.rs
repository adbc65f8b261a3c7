//! The text of one access log line: the request's fields, the outcome,
//! the escaping and the timestamps of each [`LogFormat`].

use super::LogFormat;
use crate::{Request, Version};
use std::cell::Cell;
use std::io::Write;

thread_local! {
    /// (unix second, `10/Oct/2000:13:55:36 +0000`, `2000-10-10T13:55:36Z`)
    static TIME: Cell<(u64, [u8; 26], [u8; 20])> = const { Cell::new((u64::MAX, [0; 26], [0; 20])) };
}

/// The request's side of a line.
pub(super) struct Line<'r, 'a> {
    pub(super) req: &'r Request<'a>,
    pub(super) unix_secs: u64,
}

impl Line<'_, '_> {
    /// The fields before the status: time, peer, method, target, version.
    pub(super) fn write_request(&self, format: LogFormat, buf: &mut Vec<u8>) {
        let (clf_time, iso_time) = formatted_time(self.unix_secs);
        let req = self.req;
        // A Unix socket peer has no address: `unix`, as nginx logs it.
        let ip: &dyn std::fmt::Display = match req.peer_credentials() {
            Some(_) => &"unix",
            None => &req.peer_addr().ip(),
        };
        let version = match req.version() {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        };
        // Writing to a Vec cannot fail.
        if format == LogFormat::Json {
            let _ = write!(buf, "{{\"time\":\"");
            buf.extend_from_slice(&iso_time);
            let _ = write!(buf, "\",\"remote_addr\":\"{ip}\",\"method\":");
            json_string(buf, Some(req.method().as_bytes()));
            buf.extend_from_slice(b",\"target\":");
            json_string(buf, Some(req.target().as_bytes()));
            let _ = write!(buf, ",\"version\":\"{version}\"");
            return;
        }
        let _ = write!(buf, "{ip} - - [");
        buf.extend_from_slice(&clf_time);
        buf.extend_from_slice(b"] \"");
        clf_escaped(buf, req.method().as_bytes());
        buf.push(b' ');
        clf_escaped(buf, req.target().as_bytes());
        let _ = write!(buf, " {version}\"");
    }

    /// The request headers a format logs after the outcome: `Referer` and
    /// `User-Agent`, or nothing for [`LogFormat::Common`].
    pub(super) fn write_headers(&self, format: LogFormat, buf: &mut Vec<u8>) {
        let req = self.req;
        match format {
            LogFormat::Common => {}
            LogFormat::Combined => {
                for name in ["referer", "user-agent"] {
                    buf.extend_from_slice(b" \"");
                    clf_escaped(buf, req.header(name).unwrap_or(b"-"));
                    buf.push(b'"');
                }
            }
            LogFormat::Json => {
                buf.extend_from_slice(b",\"referer\":");
                json_string(buf, req.header("referer"));
                buf.extend_from_slice(b",\"user_agent\":");
                json_string(buf, req.header("user-agent"));
            }
        }
    }
}

/// The response's side of a line.
pub(super) struct Outcome {
    pub(super) status: u16,
    pub(super) bytes: Option<u64>,
    pub(super) micros: u64,
}

impl Outcome {
    /// One whole line: `request` writes the request's fields, `headers` the
    /// request headers the format logs, around this outcome.
    pub(super) fn write(
        &self,
        format: LogFormat,
        buf: &mut Vec<u8>,
        request: impl FnOnce(&mut Vec<u8>),
        headers: impl FnOnce(&mut Vec<u8>),
    ) {
        request(buf);
        // Writing to a Vec cannot fail.
        if format == LogFormat::Json {
            let _ = write!(buf, ",\"status\":{}", self.status);
            match self.bytes {
                Some(n) => drop(write!(buf, ",\"bytes\":{n}")),
                None => buf.extend_from_slice(b",\"bytes\":null"),
            }
            let _ = write!(buf, ",\"duration_us\":{}", self.micros);
            headers(buf);
            buf.extend_from_slice(b"}\n");
            return;
        }
        let _ = write!(buf, " {} ", self.status);
        // Apache's %b: "-" for no body bytes.
        match self.bytes {
            Some(n) if n > 0 => drop(write!(buf, "{n}")),
            _ => buf.push(b'-'),
        }
        headers(buf);
        let _ = writeln!(buf, " {}", self.micros);
    }
}

/// `bytes` with `"`, `\` and bytes outside printable ASCII as `\"`, `\\`
/// and `\xhh`, as Apache writes them.
fn clf_escaped(buf: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        match b {
            b'"' | b'\\' => buf.extend_from_slice(&[b'\\', b]),
            b' '..=b'~' => buf.push(b),
            _ => {
                let hex = b"0123456789abcdef";
                buf.extend_from_slice(&[
                    b'\\',
                    b'x',
                    hex[usize::from(b >> 4)],
                    hex[usize::from(b & 15)],
                ]);
            }
        }
    }
}

/// `bytes` as a JSON string (invalid UTF-8 as U+FFFD), or `null`.
fn json_string(buf: &mut Vec<u8>, bytes: Option<&[u8]>) {
    let Some(bytes) = bytes else {
        buf.extend_from_slice(b"null");
        return;
    };
    buf.push(b'"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => buf.extend_from_slice(b"\\\""),
                '\\' => buf.extend_from_slice(b"\\\\"),
                '\n' => buf.extend_from_slice(b"\\n"),
                '\r' => buf.extend_from_slice(b"\\r"),
                '\t' => buf.extend_from_slice(b"\\t"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    let _ = write!(buf, "\\u{:04x}", c as u32);
                }
                c => {
                    let mut utf8 = [0; 4];
                    buf.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                }
            }
        }
        if !chunk.invalid().is_empty() {
            buf.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
    buf.push(b'"');
}

/// The two timestamp forms for `unix_secs`, formatted at most once a second
/// per thread.
fn formatted_time(unix_secs: u64) -> ([u8; 26], [u8; 20]) {
    TIME.with(|cache| {
        let (secs, clf, iso) = cache.get();
        if secs == unix_secs {
            return (clf, iso);
        }
        let (clf, iso) = format_time(unix_secs);
        cache.set((unix_secs, clf, iso));
        (clf, iso)
    })
}

/// `10/Oct/2000:13:55:36 +0000` and `2000-10-10T13:55:36Z`.
fn format_time(unix_secs: u64) -> ([u8; 26], [u8; 20]) {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let (year, month, day) = crate::server::date::civil_from_days((unix_secs / 86_400) as i64);
    let secs_of_day = unix_secs % 86_400;
    let (h, m, s) = (secs_of_day / 3600, secs_of_day / 60 % 60, secs_of_day % 60);
    let year = year.clamp(0, 9999) as u64;
    let mut clf = *b"01/Jan/1970:00:00:00 +0000";
    crate::server::date::put_two_digits(&mut clf[0..2], u64::from(day));
    clf[3..6].copy_from_slice(MONTHS[month as usize - 1]);
    crate::server::date::put_two_digits(&mut clf[7..9], year / 100);
    crate::server::date::put_two_digits(&mut clf[9..11], year % 100);
    crate::server::date::put_two_digits(&mut clf[12..14], h);
    crate::server::date::put_two_digits(&mut clf[15..17], m);
    crate::server::date::put_two_digits(&mut clf[18..20], s);
    let mut iso = *b"1970-01-01T00:00:00Z";
    crate::server::date::put_two_digits(&mut iso[0..2], year / 100);
    crate::server::date::put_two_digits(&mut iso[2..4], year % 100);
    crate::server::date::put_two_digits(&mut iso[5..7], u64::from(month));
    crate::server::date::put_two_digits(&mut iso[8..10], u64::from(day));
    crate::server::date::put_two_digits(&mut iso[11..13], h);
    crate::server::date::put_two_digits(&mut iso[14..16], m);
    crate::server::date::put_two_digits(&mut iso[17..19], s);
    (clf, iso)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times() {
        let cases: [(u64, &str, &str); 3] = [
            (0, "01/Jan/1970:00:00:00 +0000", "1970-01-01T00:00:00Z"),
            (
                971_186_136,
                "10/Oct/2000:13:55:36 +0000",
                "2000-10-10T13:55:36Z",
            ),
            (
                951_782_400,
                "29/Feb/2000:00:00:00 +0000",
                "2000-02-29T00:00:00Z",
            ),
        ];
        for (secs, clf, iso) in cases {
            let (c, i) = format_time(secs);
            assert_eq!((&c[..], &i[..]), (clf.as_bytes(), iso.as_bytes()), "{secs}");
        }
    }

    #[test]
    fn escapes() {
        let mut buf = Vec::new();
        clf_escaped(&mut buf, b"a\"b\\c\n\xff");
        assert_eq!(buf, b"a\\\"b\\\\c\\x0a\\xff");
        buf.clear();
        json_string(&mut buf, Some(b"a\"b\\c\n\x01caf\xc3\xa9\xff"));
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "\"a\\\"b\\\\c\\n\\u0001caf\u{e9}\u{fffd}\""
        );
    }
}
