//! The structured request generator of `pipeline`: valid requests, and
//! what the handler must see of each.

use super::{streaming, Cursor};
use std::fmt::Write as _;

/// A request the generator wrote, as the handler should see it.
pub(crate) struct Sent {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) http10: bool,
    pub(crate) body: Vec<u8>,
    /// The connection must close after its response.
    pub(crate) closes: bool,
    /// It switches protocols: what follows it is no longer HTTP.
    pub(crate) upgrades: bool,
    /// The trailer fields a streamed body's sink must be told.
    pub(crate) trailers: Vec<(String, Vec<u8>)>,
    /// Where it ends in the byte stream.
    pub(crate) end: usize,
}

pub(crate) fn generate_request(cur: &mut Cursor<'_>, wire: &mut Vec<u8>) -> Sent {
    const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];
    const TARGETS: [&str; 20] = [
        "/",
        "/echo?q=a%20b&r=+",
        "/chunked",
        "/big",
        "/status",
        "/write",
        "/hdr",
        "/close",
        "/panic",
        "/misuse",
        "http://fuzz/echo",
        "*",
        "/defer",
        "/stream",
        "/stream/1",
        "/stream/3",
        "/stream/10",
        "/stream/18",
        "/pieces",
        "/upgrade",
    ];
    let method = METHODS[usize::from(cur.byte()) % METHODS.len()];
    let mut target = TARGETS[usize::from(cur.byte()) % TARGETS.len()];
    if target == "*" && method != "OPTIONS" {
        target = "/";
    }
    let flags = cur.byte();
    let http10 = flags & 1 != 0;
    let keep_alive_10 = flags & 2 != 0;
    let close = flags & 4 != 0;
    let lower = flags & 8 != 0;
    let mut kind = (flags >> 4) & 3; // 0 none, 1 length, 2 chunked, 3 "Content-Length: 0"
    let expect = flags & 64 != 0;
    let trailers = flags & 128 != 0;
    if http10 && kind == 2 {
        kind = 1; // chunked is not HTTP/1.0
    }
    let len = usize::from(cur.byte());
    let body = if kind == 1 || kind == 2 {
        cur.take(len).to_vec()
    } else {
        Vec::new()
    };
    let name = |n: &'static str| {
        if lower {
            n.to_ascii_lowercase()
        } else {
            n.to_owned()
        }
    };

    // HTTP/1.2 to 1.9 for one length in five: served as HTTP/1.1
    // (RFC 9110 §2.5), which is what the handler must see.
    let minor = match (http10, len % 5) {
        (true, _) => 0,
        (false, 4) => 2 + len / 5 % 8,
        (false, _) => 1,
    };
    let _ = write!(
        wire_str(wire),
        "{method} {target} HTTP/1.{minor}\r\n{}: fuzz\r\n",
        name("Host")
    );
    if http10 && keep_alive_10 {
        let _ = write!(wire_str(wire), "{}: keep-alive\r\n", name("Connection"));
    }
    if close {
        let _ = write!(wire_str(wire), "{}: close\r\n", name("Connection"));
    }
    let upgrade = target == "/upgrade";
    if upgrade {
        let _ = write!(
            wire_str(wire),
            "{}: upgrade\r\n{}: x\r\n",
            name("Connection"),
            name("Upgrade")
        );
    }
    if expect && !http10 && kind != 0 {
        let _ = write!(wire_str(wire), "{}: 100-continue\r\n", name("Expect"));
    }
    match kind {
        1 => {
            let _ = write!(
                wire_str(wire),
                "{}: {}\r\n\r\n",
                name("Content-Length"),
                body.len()
            );
            wire.extend_from_slice(&body);
        }
        2 => {
            let _ = write!(
                wire_str(wire),
                "{}: chunked\r\n\r\n",
                name("Transfer-Encoding")
            );
            let mut rest = &body[..];
            while !rest.is_empty() {
                let size_byte = cur.byte();
                let size = (usize::from(size_byte) % 64 + 1).min(rest.len());
                let (chunk, after) = rest.split_at(size);
                if size_byte & 192 == 192 {
                    // Every form of RFC 9112 §7.1.1: BWS, a bare name, a
                    // token value, a quoted-string with an escape.
                    let _ = write!(wire_str(wire), "{size:x} ; a\t;b = c;d=\"x\\\"y\"\r\n");
                } else if size_byte & 64 != 0 {
                    let _ = write!(wire_str(wire), "{size:X};ext=\"v\"\r\n");
                } else {
                    let _ = write!(wire_str(wire), "{size:x}\r\n");
                }
                wire.extend_from_slice(chunk);
                wire.extend_from_slice(b"\r\n");
                rest = after;
            }
            wire.extend_from_slice(b"0\r\n");
            if trailers {
                wire.extend_from_slice(b"X-Trailer: yes\r\n");
            }
            wire.extend_from_slice(b"\r\n");
        }
        3 => {
            let _ = write!(wire_str(wire), "{}: 0\r\n\r\n", name("Content-Length"));
        }
        _ => wire.extend_from_slice(b"\r\n"),
    }
    let streamed_body = target.starts_with(streaming::STREAM_PREFIX);
    // Answered by `answer`, which may stream its body (to close, for 1.0).
    let answer_closes = http10 && body.len() / 4 % 3 == 1;
    let defer_closes = (target == "/defer" && (body.len() % 4 == 2 || answer_closes))
        || (streamed_body && answer_closes);
    let path_closes = defer_closes
        || matches!(target, "/close" | "/panic" | "/misuse")
        || (http10 && matches!(target, "/chunked" | "/pieces"))
        || (http10 && target == "/status" && body.len() / 2 % 3 == 2);
    Sent {
        method: method.to_owned(),
        target: target.to_owned(),
        http10,
        closes: close || (http10 && !keep_alive_10) || path_closes,
        // RFC 9110 §7.8: not for HTTP/1.0; not on a closing connection.
        upgrades: upgrade && !http10 && !close,
        trailers: if streamed_body && kind == 2 && trailers {
            vec![("x-trailer".to_owned(), b"yes".to_vec())]
        } else {
            Vec::new()
        },
        end: wire.len(),
        body,
    }
}

/// Lets `write!` append formatted text to the byte vector.
fn wire_str(wire: &mut Vec<u8>) -> impl std::fmt::Write + '_ {
    struct W<'a>(&'a mut Vec<u8>);
    impl std::fmt::Write for W<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.extend_from_slice(s.as_bytes());
            Ok(())
        }
    }
    W(wire)
}
