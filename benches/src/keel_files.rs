//! Files from a root directory on keel with [`Response::file`]: the keel
//! side of `load/files.sh`, against tower-http's `ServeDir` on hyper
//! ([`crate::hyper_files`]).
//!
//! [`serve_file`] is one handler doing what `ServeDir` does for a file, so
//! that both servers do the same work per request: decode and check the
//! path, open, `fstat`, `Content-Type` from the extension (the same table,
//! `mime_guess`), `Last-Modified`, `Accept-Ranges: bytes`,
//! `If-Modified-Since` -> 304 and `If-Unmodified-Since` -> 412, one
//! `Range` -> 206 (several, or none satisfiable -> 416, as tower-http),
//! no `ETag` (tower-http sends none). It is a stand-in until keel has a
//! `ServeDir` of its own (issue 14): then [`routes`] mounts that instead.
//!
//! Paths: the catch-all is percent-decoded; a component other than a plain
//! name (`..`, a root, `.` is skipped) or a name that is not UTF-8 answers
//! 404, as tower-http does. A directory answers 404 (tower-http looks for its
//! `index.html`; the benchmark's root holds files only). Symbolic links are
//! followed (tower-http follows them too). The file is opened on the worker:
//! a cached directory entry costs a few microseconds, and it is what a
//! benchmark of cached files measures.

use httpdate::HttpDate;
use keel::{Request, Response, Router, Routes, StatusCode};
use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

/// 412 and 416 have no named constant in keel's `StatusCode` yet.
const PRECONDITION_FAILED: StatusCode = status(412);
const RANGE_NOT_SATISFIABLE: StatusCode = status(416);

const fn status(code: u16) -> StatusCode {
    match StatusCode::from_u16(code) {
        Some(status) => status,
        None => panic!("not a status code"),
    }
}

/// The routes: `GET` (and `HEAD`) `/*path` served from `root`.
pub fn routes(root: PathBuf) -> Routes {
    Router::new()
        .get(
            "/*path",
            move |req: &Request<'_>, res: &mut Response<'_>| {
                serve_file(&root, req, res);
            },
        )
        .build()
        .expect("the routes are valid")
}

thread_local! {
    /// The path being opened, reused: each worker keeps one buffer instead
    /// of allocating a path per request.
    static PATH: RefCell<PathBuf> = RefCell::new(PathBuf::new());
}

/// Answers the file at the request's `path` parameter under `root` (see the
/// module's documentation for what it checks and sends).
pub fn serve_file(root: &Path, req: &Request<'_>, res: &mut Response<'_>) {
    let raw = req.param("path").unwrap_or_default();
    let opened = keel::percent_decode(raw, false).and_then(|relative| {
        PATH.with_borrow_mut(|path| {
            path.as_mut_os_string().clear();
            path.push(root);
            push_relative(path, &relative)?;
            Some((File::open(&*path), content_type(&relative)))
        })
    });
    let (file, content_type) = match opened {
        Some((Ok(file), content_type)) => (file, content_type),
        None => return not_found(res),
        Some((Err(e), _)) if is_missing(&e) => return not_found(res),
        Some((Err(_), _)) => return server_error(res),
    };
    let meta = match file.metadata() {
        Ok(meta) if meta.is_file() => meta,
        Ok(_) => return not_found(res),
        Err(_) => return server_error(res),
    };
    let modified = meta.modified().ok();
    if let Some(status) = precondition(req, modified) {
        let res = res.status(status);
        if let Some(modified) = modified {
            res.header("Last-Modified", http_date(modified));
        }
        return res.body(b"");
    }
    let len = meta.len();
    res.header("Content-Type", content_type)
        .header("Accept-Ranges", "bytes");
    if let Some(modified) = modified {
        res.header("Last-Modified", http_date(modified));
    }
    let range = match req.header_str("Range") {
        None => 0..len,
        Some(header) => match single_range(header, len) {
            Some(range) => {
                let mut value = [0u8; 72];
                let n = write_into(&mut value, |w| {
                    write!(w, "bytes {}-{}/{len}", range.start, range.end - 1)
                });
                res.status(StatusCode::PARTIAL_CONTENT)
                    .header("Content-Range", &value[..n]);
                range
            }
            None => {
                let mut value = [0u8; 40];
                let n = write_into(&mut value, |w| write!(w, "bytes */{len}"));
                return res
                    .status(RANGE_NOT_SATISFIABLE)
                    .header("Content-Range", &value[..n])
                    .body(b"");
            }
        },
    };
    if res.file(file, range).is_err() {
        server_error(res);
    }
}

/// Appends the decoded request path to `path`, one plain name at a time;
/// `None` for anything that could leave the root.
fn push_relative(path: &mut PathBuf, relative: &str) -> Option<()> {
    if relative.contains('\0') {
        return None;
    }
    for component in Path::new(relative.trim_start_matches('/')).components() {
        match component {
            Component::Normal(name) => path.push(name),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(())
}

/// Errors that mean "no such file here" rather than a server fault.
fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::InvalidInput
    )
}

fn not_found(res: &mut Response<'_>) {
    res.status(StatusCode::NOT_FOUND).body(b"");
}

fn server_error(res: &mut Response<'_>) {
    res.status(StatusCode::INTERNAL_SERVER_ERROR).body(b"");
}

/// The type `mime_guess` gives the extension, as tower-http's `ServeDir`.
fn content_type(path: &str) -> &'static str {
    mime_guess::from_path(path)
        .first_raw()
        .unwrap_or("application/octet-stream")
}

/// 304 or 412 when `If-Modified-Since` or `If-Unmodified-Since` says so,
/// compared at a second's resolution as tower-http does; an unreadable date
/// is ignored.
fn precondition(req: &Request<'_>, modified: Option<SystemTime>) -> Option<StatusCode> {
    let modified = HttpDate::from(modified?);
    let date = |name| {
        req.header_str(name)
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .map(HttpDate::from)
    };
    if date("If-Unmodified-Since").is_some_and(|since| since < modified) {
        return Some(PRECONDITION_FAILED);
    }
    if date("If-Modified-Since").is_some_and(|since| since >= modified) {
        return Some(StatusCode::NOT_MODIFIED);
    }
    None
}

/// The one byte range of a `Range` header, end exclusive; `None` when the
/// header is malformed, asks for several ranges or none that the file has
/// (tower-http answers 416 to each, with the same parser).
fn single_range(header: &str, len: u64) -> Option<std::ops::Range<u64>> {
    let ranges = http_range_header::parse_range_header(header)
        .ok()?
        .validate(len)
        .ok()?;
    match ranges.as_slice() {
        [range] => Some(*range.start()..range.end() + 1),
        _ => None,
    }
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, 29 bytes), on the stack.
fn http_date(time: SystemTime) -> [u8; 29] {
    let mut out = [0u8; 29];
    write_into(&mut out, |w| write!(w, "{}", HttpDate::from(time)));
    out
}

/// Formats into `buf` without allocating; the length written.
fn write_into(buf: &mut [u8], format: impl FnOnce(&mut &mut [u8]) -> io::Result<()>) -> usize {
    let capacity = buf.len();
    let mut rest = buf;
    // Every caller's buffer holds its longest value.
    format(&mut rest).expect("the buffer holds the value");
    capacity - rest.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_paths_that_leave_the_root() {
        let mut path = PathBuf::from("/srv");
        assert_eq!(push_relative(&mut path, "a/./b.txt"), Some(()));
        assert_eq!(path, Path::new("/srv/a/b.txt"));
        for bad in ["../etc/passwd", "a/../../x", "a/\0b"] {
            assert_eq!(
                push_relative(&mut PathBuf::from("/srv"), bad),
                None,
                "{bad}"
            );
        }
        // A leading slash (from `//x` or `/%2Fx`) stays under the root.
        let mut path = PathBuf::from("/srv");
        assert_eq!(push_relative(&mut path, "/etc/passwd"), Some(()));
        assert_eq!(path, Path::new("/srv/etc/passwd"));
    }

    #[test]
    fn reads_one_range_only() {
        assert_eq!(single_range("bytes=0-9", 100), Some(0..10));
        assert_eq!(single_range("bytes=90-", 100), Some(90..100));
        assert_eq!(single_range("bytes=-5", 100), Some(95..100));
        assert_eq!(single_range("bytes=0-1,5-6", 100), None);
        assert_eq!(single_range("bytes=100-", 100), None);
        assert_eq!(single_range("lines=1-2", 100), None);
    }

    #[test]
    fn formats_dates_and_types() {
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(784_111_777);
        assert_eq!(&http_date(time), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(content_type("a/b.html"), "text/html");
        assert_eq!(content_type("data.bin"), "application/octet-stream");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
