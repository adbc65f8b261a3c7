//! `RequestId`: give every request an id, echoed as a response header.

use super::{Flow, Middleware};
use crate::{Request, Response};
use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest request id, in bytes, accepted from a client (and the size of the
/// stack buffer an id lives in).
pub const MAX_ID_LEN: usize = 64;

/// Tags each request with an id and sends it back as a response header
/// (`X-Request-Id` by default).
///
/// An id the client sent in that header is kept when it is a sane token: 1
/// to [`max_len`](RequestId::max_len) bytes (64 by default) of ASCII letters,
/// digits and `-_.:+/=@~`. Otherwise (missing, too long, odd bytes) a fresh
/// one is made: a random per-thread prefix of 16 hex digits, `-`, and that
/// thread's request counter in hex (`3f2a9c0d5e7b1a48-1c`). Ids made on one
/// thread never repeat; two threads draw prefixes independently (a clash is
/// a 1 in 2^64 chance).
///
/// The handler (and inner layers) can read the id of the request being
/// served with [`RequestId::current`].
///
/// # Cost
///
/// Allocates nothing: the id is formatted into a buffer on the stack.
///
/// # Examples
///
/// ```
/// use keel::middleware::{HandlerExt, RequestId};
/// use keel::testing::MemoryConn;
/// use keel::{Request, Response};
///
/// let app = (|_: &Request<'_>, res: &mut Response<'_>| {
///     let id = RequestId::current().unwrap();
///     res.body(id.as_str().as_bytes());
/// })
/// .with(RequestId::new());
/// let mut conn = MemoryConn::new(app);
///
/// conn.send(b"GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: req-42\r\n\r\n");
/// let reply = String::from_utf8(conn.recv()).unwrap();
/// assert!(reply.contains("\r\nX-Request-Id: req-42\r\n"));
/// assert!(reply.ends_with("\r\n\r\nreq-42"));
///
/// conn.send(b"GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: no spaces please\r\n\r\n");
/// let reply = String::from_utf8(conn.recv()).unwrap();
/// assert!(!reply.contains("no spaces"));
/// assert!(reply.contains("\r\nX-Request-Id: "));
/// ```
#[derive(Clone, Debug)]
pub struct RequestId {
    header: Box<str>,
    max_len: usize,
    trust_incoming: bool,
}

impl RequestId {
    /// Reads and writes `X-Request-Id`, accepting client ids up to 64 bytes.
    pub fn new() -> Self {
        RequestId {
            header: "X-Request-Id".into(),
            max_len: MAX_ID_LEN,
            trust_incoming: true,
        }
    }

    /// Uses header `name` instead of `X-Request-Id`, both ways.
    ///
    /// # Panics
    ///
    /// When `name` is empty or not an HTTP token.
    pub fn header(mut self, name: &str) -> Self {
        assert!(
            !name.is_empty() && name.bytes().all(crate::http1::parse::is_token_byte),
            "request id header {name:?} is not a token"
        );
        self.header = name.into();
        self
    }

    /// Accepts client ids of at most `max_len` bytes (clamped to 1..=64).
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len.clamp(1, MAX_ID_LEN);
        self
    }

    /// Whether a client's id is kept (`true`, the default) or every request
    /// gets a fresh one (for a server facing clients it does not trust).
    pub fn trust_incoming(mut self, trust: bool) -> Self {
        self.trust_incoming = trust;
        self
    }

    /// The id of the request this thread is serving, between this layer's
    /// `before` and `after`; `None` outside them.
    pub fn current() -> Option<RequestIdValue> {
        CURRENT.with(Cell::get)
    }

    fn accepts(&self, id: &[u8]) -> bool {
        !id.is_empty() && id.len() <= self.max_len && id.iter().all(|&b| is_id_byte(b))
    }
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId::new()
    }
}

impl Middleware for RequestId {
    fn before(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
        let id = match req.header(&self.header) {
            Some(incoming) if self.trust_incoming && self.accepts(incoming) => {
                RequestIdValue::from_bytes(incoming)
            }
            _ => RequestIdValue::generate(),
        };
        res.header(&self.header, id.as_str());
        CURRENT.with(|current| current.set(Some(id)));
        Flow::Continue
    }

    fn after(&self, _req: &Request<'_>, _res: &mut Response<'_>) {
        CURRENT.with(|current| current.set(None));
    }
}

/// One request id, held on the stack (at most [`MAX_ID_LEN`] bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestIdValue {
    len: u8,
    bytes: [u8; MAX_ID_LEN],
}

impl RequestIdValue {
    /// The id.
    pub fn as_str(&self) -> &str {
        // Only ASCII id bytes are ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    /// Copies an id already checked by [`RequestId::accepts`].
    fn from_bytes(id: &[u8]) -> Self {
        let mut value = RequestIdValue {
            len: id.len() as u8,
            bytes: [0; MAX_ID_LEN],
        };
        value.bytes[..id.len()].copy_from_slice(id);
        value
    }

    /// A fresh id: this thread's prefix, `-`, this thread's counter.
    fn generate() -> Self {
        let (prefix, count) = GENERATOR.with(|generator| {
            let (mut prefix, count) = generator.get();
            if prefix == 0 {
                prefix = random_prefix();
            }
            generator.set((prefix, count.wrapping_add(1)));
            (prefix, count)
        });
        let mut value = RequestIdValue {
            len: 0,
            bytes: [0; MAX_ID_LEN],
        };
        value.push_hex(prefix, 16);
        value.bytes[usize::from(value.len)] = b'-';
        value.len += 1;
        value.push_hex(count, 1);
        value
    }

    /// Appends `n` in lowercase hex, at least `min_digits` long.
    fn push_hex(&mut self, n: u64, min_digits: u32) {
        let digits = (16 - n.leading_zeros() / 4).max(min_digits);
        for i in (0..digits).rev() {
            self.bytes[usize::from(self.len)] = b"0123456789abcdef"[(n >> (i * 4)) as usize & 15];
            self.len += 1;
        }
    }
}

impl fmt::Debug for RequestIdValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for RequestIdValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

thread_local! {
    /// (this thread's prefix, 0 until drawn; its next counter value)
    static GENERATOR: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    /// The id of the request being served on this thread.
    static CURRENT: Cell<Option<RequestIdValue>> = const { Cell::new(None) };
}

/// A non-zero prefix, different for every thread: a randomly keyed hash of a
/// process-wide sequence number and the time.
fn random_prefix() -> u64 {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(SEQUENCE.fetch_add(1, Relaxed));
    let now = SystemTime::now().duration_since(UNIX_EPOCH);
    hasher.write_u128(now.map_or(0, |d| d.as_nanos()));
    hasher.write_usize(&hasher as *const _ as usize);
    hasher.finish().max(1)
}

/// Bytes a client's id may hold: letters, digits and a few punctuation
/// marks that need no quoting in logs or headers.
fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.:+/=@~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_sane_tokens() {
        let layer = RequestId::new().max_len(8);
        let cases: [(&[u8], bool); 8] = [
            (b"abc", true),
            (b"A-b_c.9", true),
            (b"12345678", true),
            (b"123456789", false),
            (b"", false),
            (b"a b", false),
            (b"a\"b", false),
            (b"caf\xc3\xa9", false),
        ];
        for (id, ok) in cases {
            assert_eq!(layer.accepts(id), ok, "{:?}", String::from_utf8_lossy(id));
        }
    }

    #[test]
    fn generated_ids_differ_and_fit() {
        let a = RequestIdValue::generate();
        let b = RequestIdValue::generate();
        assert_ne!(a, b);
        assert!(a.as_str().len() >= 18, "{a}");
        assert_eq!(a.as_str()[..17], b.as_str()[..17]);
        assert!(RequestId::new().accepts(a.as_str().as_bytes()));
    }
}
