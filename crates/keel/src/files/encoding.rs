//! Content codings (RFC 9110 §8.4, §12.5.3): which precompressed variant
//! of a file a client accepts, and which media types are worth compressing.

use super::fields;
use crate::request::Request;

/// A content coding keel can serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `br` (Brotli, RFC 7932).
    Brotli,
    /// `gzip` (RFC 1952).
    Gzip,
    /// No coding: the representation as it is.
    Identity,
}

impl Encoding {
    /// The `Content-Encoding` value to send, `None` for [`Encoding::Identity`]
    /// (which is never sent, RFC 9110 §8.4.1).
    pub fn content_encoding(self) -> Option<&'static str> {
        match self {
            Encoding::Brotli => Some("br"),
            Encoding::Gzip => Some("gzip"),
            Encoding::Identity => None,
        }
    }

    /// The suffix of the precompressed file next to the original (`.br`,
    /// `.gz`; empty for [`Encoding::Identity`]), as nginx's `gzip_static`
    /// and `brotli_static` look for it.
    pub fn file_suffix(self) -> &'static str {
        match self {
            Encoding::Brotli => ".br",
            Encoding::Gzip => ".gz",
            Encoding::Identity => "",
        }
    }
}

/// Which coded variants of a representation exist besides the identity one
/// (which always does): precompressed files found next to a file, or the
/// codings a compression layer can produce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Variants {
    /// A Brotli variant exists.
    pub brotli: bool,
    /// A gzip variant exists.
    pub gzip: bool,
}

/// The best of the `available` codings (identity always among them) that
/// `req`'s `Accept-Encoding` accepts (RFC 9110 §12.5.3):
///
/// - every line of the field makes one list; codings and `q` are
///   case-insensitive; `x-gzip` is `gzip` (§8.4.1.3);
/// - a coding's weight is its own entry's `q` (default 1), else that of `*`;
///   unlisted, `br` and `gzip` are not acceptable, and identity is
///   acceptable (unless `identity;q=0`, or `*;q=0` without an `identity`
///   entry, excludes it) with the lowest weight, 0.001: a client that lists
///   only `gzip;q=0.5` gets gzip;
///   a coding listed twice gets its lowest weight; an entry whose `q` is not
///   a valid qvalue is skipped;
/// - the highest weight above 0 wins; on a tie the smaller variant:
///   Brotli, then gzip, then identity;
/// - no `Accept-Encoding` at all, or an empty one: identity. (§12.5.3 lets
///   a server send any coding to a client that sent no field; a client that
///   did not ask may not decode it.)
///
/// `None` when no available coding is acceptable (identity excluded and
/// nothing else fits): answer `406 Not Acceptable`, or send identity anyway
/// as §12.5.3 allows. Allocates nothing.
///
/// Send `Vary: Accept-Encoding` with every answer whose coding this chose,
/// identity included, so caches keep the variants apart.
///
/// ```
/// use keel::files::{negotiate_encoding, Encoding, Variants};
/// use keel::testing::MemoryConn;
/// use keel::{Request, Response};
///
/// let mut conn = MemoryConn::new(|req: &Request<'_>, res: &mut Response<'_>| {
///     let both = Variants { brotli: true, gzip: true };
///     let chosen = negotiate_encoding(req, both).unwrap_or(Encoding::Identity);
///     res.body(chosen.file_suffix().as_bytes());
/// });
/// conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip, br;q=0.5\r\n\r\n");
/// assert!(conn.recv().ends_with(b"\r\n\r\n.gz"));
/// ```
pub fn negotiate_encoding(req: &Request<'_>, available: Variants) -> Option<Encoding> {
    let mut weights = Weights::default();
    let mut sent = false;
    for line in fields::lines(req, "accept-encoding") {
        sent = true;
        for member in fields::members(line) {
            weights.add(member);
        }
    }
    if !sent {
        return Some(Encoding::Identity);
    }
    let candidates = [
        (
            Encoding::Brotli,
            available.brotli,
            weights.brotli.or(weights.any),
        ),
        (Encoding::Gzip, available.gzip, weights.gzip.or(weights.any)),
        (
            Encoding::Identity,
            true,
            weights.identity.or(weights.any).or(Some(1)),
        ),
    ];
    let mut best: Option<(Encoding, u16)> = None;
    for (encoding, exists, weight) in candidates {
        let weight = weight.unwrap_or(0);
        // Strictly greater: on a tie the earlier (smaller) variant stays.
        let better = match best {
            None => true,
            Some((_, top)) => weight > top,
        };
        if exists && weight > 0 && better {
            best = Some((encoding, weight));
        }
    }
    best.map(|(encoding, _)| encoding)
}

/// The weight of each coding that matters, in thousandths; `None` when not
/// listed.
#[derive(Default)]
struct Weights {
    brotli: Option<u16>,
    gzip: Option<u16>,
    identity: Option<u16>,
    any: Option<u16>,
}

impl Weights {
    /// One `codings [ weight ]` member of the list.
    fn add(&mut self, member: &[u8]) {
        let mut parts = member.split(|&b| b == b';');
        let coding = fields::trim_ows(parts.next().unwrap_or_default());
        let mut weight = 1000;
        for param in parts.map(fields::trim_ows) {
            let (name, value) = match param.iter().position(|&b| b == b'=') {
                Some(at) => (&param[..at], Some(&param[at + 1..])),
                None => (param, None),
            };
            if fields::trim_ows(name).eq_ignore_ascii_case(b"q") {
                // Exactly `q=qvalue` (§12.4.2): `q = 1` or a bare `q` is
                // malformed, and a malformed member is dropped.
                match value.and_then(qvalue) {
                    Some(q) if name.len() == 1 => weight = q,
                    _ => return,
                }
            }
        }
        let slot = match known_coding(coding) {
            Some(Known::Brotli) => &mut self.brotli,
            Some(Known::Gzip) => &mut self.gzip,
            Some(Known::Identity) => &mut self.identity,
            Some(Known::Any) => &mut self.any,
            None => return,
        };
        *slot = Some(slot.map_or(weight, |old| old.min(weight)));
    }
}

/// The codings [`Weights`] keeps.
enum Known {
    Brotli,
    Gzip,
    Identity,
    Any,
}

/// The coding `name` if [`Weights`] keeps it; case-insensitive.
fn known_coding(name: &[u8]) -> Option<Known> {
    let is = |known: &str| name.eq_ignore_ascii_case(known.as_bytes());
    if is("br") {
        Some(Known::Brotli)
    } else if is("gzip") || is("x-gzip") {
        Some(Known::Gzip)
    } else if is("identity") {
        Some(Known::Identity)
    } else if is("*") {
        Some(Known::Any)
    } else {
        None
    }
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )` (RFC 9110
/// §12.4.2) in thousandths.
fn qvalue(text: &[u8]) -> Option<u16> {
    let (whole, fraction) = match text {
        [whole, b'.', fraction @ ..] => (*whole, fraction),
        [whole] => (*whole, &[][..]),
        _ => return None,
    };
    if fraction.len() > 3 || !fraction.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let thousandths = fraction
        .iter()
        .chain(std::iter::repeat(&b'0'))
        .take(3)
        .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    match whole {
        b'0' => Some(thousandths),
        b'1' if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Whether a response of `content_type` (a `Content-Type` value,
/// parameters allowed) is worth compressing: text (but not
/// `text/event-stream`, whose events must leave as they come), JSON, XML,
/// JavaScript, SVG and other `+json`/`+xml` types, WebAssembly, uncompressed
/// fonts and icons. Never images, audio or video in compressed formats,
/// archives, or `application/octet-stream`: coding them again costs CPU and
/// saves nothing. Case-insensitive, allocates nothing.
///
/// ```
/// use keel::files::is_compressible;
///
/// assert!(is_compressible("text/html; charset=utf-8"));
/// assert!(is_compressible("image/svg+xml"));
/// assert!(!is_compressible("image/png"));
/// assert!(!is_compressible("text/event-stream"));
/// ```
pub fn is_compressible(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let is = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let ends_with = |suffix: &str| {
        subtype.len() >= suffix.len()
            && subtype.as_bytes()[subtype.len() - suffix.len()..]
                .eq_ignore_ascii_case(suffix.as_bytes())
    };
    if is(kind, "text") {
        return !is(subtype, "event-stream");
    }
    if ends_with("+json") || ends_with("+xml") {
        return true;
    }
    const APPLICATION: [&str; 14] = [
        "json",
        "javascript",
        "ecmascript",
        "x-javascript",
        "xml",
        "wasm",
        "x-ndjson",
        "yaml",
        "toml",
        "x-tar",
        "x-www-form-urlencoded",
        "graphql",
        "vnd.ms-fontobject",
        "x-font-ttf",
    ];
    const FONT: [&str; 3] = ["ttf", "otf", "collection"];
    const IMAGE: [&str; 3] = ["bmp", "x-icon", "vnd.microsoft.icon"];
    let listed = |list: &[&str]| list.iter().any(|name| is(subtype, name));
    (is(kind, "application") && listed(&APPLICATION))
        || (is(kind, "font") && listed(&FONT))
        || (is(kind, "image") && listed(&IMAGE))
}

#[cfg(test)]
#[path = "encoding_tests.rs"]
mod tests;
