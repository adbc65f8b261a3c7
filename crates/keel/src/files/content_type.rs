//! The media type of a file from its extension, with `mime_guess` (the
//! table most Rust servers use), and `charset=utf-8` for text.

use std::fmt::{self, Write};
use std::path::Path;

use super::fixed::FixedStr;

/// What a file of an unknown extension is sent as (RFC 9110 §8.3: a
/// recipient may treat unknown data as this).
const UNKNOWN: &str = "application/octet-stream";

/// The parameter added to `text/*` types: browsers would otherwise guess
/// the charset, and a text file served by keel is expected to be UTF-8.
const UTF8: &str = "; charset=utf-8";

/// A `Content-Type` field value for a file, chosen from its extension
/// (case-insensitive): a static string, or for `text/*` the type with
/// `; charset=utf-8` in a buffer inside the value. Built without allocating;
/// pass it to `Response::header`.
///
/// ```
/// use keel::files::ContentType;
/// use std::path::Path;
///
/// assert_eq!(ContentType::from_path(Path::new("site.CSS")).as_str(), "text/css; charset=utf-8");
/// assert_eq!(ContentType::from_path(Path::new("logo.png")).as_str(), "image/png");
/// assert_eq!(ContentType::from_path(Path::new("data.bin")).as_str(), "application/octet-stream");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ContentType(Value);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Value {
    Static(&'static str),
    WithCharset(FixedStr<96>),
}

impl ContentType {
    /// The type of the file at `path`, from its extension; a path without
    /// one, or with one not in the table, is `application/octet-stream`.
    /// For a precompressed variant (`app.js.gz`), pass the original's path:
    /// the type is the original's, the coding goes in `Content-Encoding`.
    pub fn from_path(path: &Path) -> Self {
        path.extension()
            .and_then(|ext| ext.to_str())
            .map_or(Self(Value::Static(UNKNOWN)), Self::from_extension)
    }

    /// The type for the extension `ext` (without its dot, case-insensitive).
    pub fn from_extension(ext: &str) -> Self {
        let media_type = mime_guess::from_ext(ext).first_raw().unwrap_or(UNKNOWN);
        let is_text = media_type
            .get(..5)
            .is_some_and(|kind| kind.eq_ignore_ascii_case("text/"));
        if !is_text {
            return Self(Value::Static(media_type));
        }
        let mut text = FixedStr::new();
        match write!(text, "{media_type}{UTF8}") {
            Ok(()) => Self(Value::WithCharset(text)),
            // Longer than any type in the table: sent without the charset.
            Err(fmt::Error) => Self(Value::Static(media_type)),
        }
    }

    /// The field value.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Value::Static(media_type) => media_type,
            Value::WithCharset(text) => text.as_str(),
        }
    }
}

impl AsRef<[u8]> for ContentType {
    fn as_ref(&self) -> &[u8] {
        self.as_str().as_bytes()
    }
}

impl fmt::Debug for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_of_the_files_a_site_serves() {
        let cases = [
            ("index.html", "text/html; charset=utf-8"),
            ("INDEX.HTM", "text/html; charset=utf-8"),
            ("site.css", "text/css; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("notes.txt", "text/plain; charset=utf-8"),
            ("data.csv", "text/csv; charset=utf-8"),
            ("module.mjs", "application/javascript"),
            ("data.json", "application/json"),
            ("logo.svg", "image/svg+xml"),
            ("logo.png", "image/png"),
            ("photo.jpeg", "image/jpeg"),
            ("app.wasm", "application/wasm"),
            ("font.woff2", "font/woff2"),
            ("movie.mp4", "video/mp4"),
            ("archive.zip", "application/zip"),
            ("doc.pdf", "application/pdf"),
            ("blob.unknownext", UNKNOWN),
            ("Makefile", UNKNOWN),
            ("dir.d/noext", UNKNOWN),
            (".env", UNKNOWN),
            ("a.", UNKNOWN),
        ];
        for (name, expected) in cases {
            let got = ContentType::from_path(Path::new(name));
            assert_eq!(got.as_str(), expected, "{name}");
            assert_eq!(got.as_ref(), expected.as_bytes());
        }
    }
}
