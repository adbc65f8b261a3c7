//! The handler's view of a request: slices borrowed from the connection's buffer.

use crate::peer::{Peer, PeerCredentials, UNIX_PEER_ADDR};
use std::borrow::Cow;
use std::net::SocketAddr;

/// HTTP protocol version of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0
    Http10,
    /// HTTP/1.1
    Http11,
}

/// One parsed request. Every accessor returns a slice of the connection's read
/// buffer: nothing is copied, and nothing may outlive the handler call.
///
/// ```
/// # use keel::{Request, Response};
/// fn handle(req: &Request<'_>, res: &mut Response<'_>) {
///     let agent = req.header("user-agent").unwrap_or(b"unknown");
///     res.header("Content-Type", "text/plain").write(agent);
/// }
/// ```
pub struct Request<'a> {
    pub(crate) method: &'a str,
    pub(crate) target: &'a str,
    pub(crate) version: Version,
    pub(crate) headers: &'a [httparse::Header<'a>],
    pub(crate) body: &'a [u8],
    pub(crate) peer: Peer,
    /// What the connection's TLS handshake agreed; `None` on plain HTTP.
    pub(crate) tls: Option<&'a crate::tls::TlsInfo>,
    /// Path parameters captured by a router, as (name, raw value).
    pub(crate) params: &'a [(&'a str, &'a str)],
}

impl<'a> Request<'a> {
    /// The method, e.g. `"GET"` (case-sensitive, as sent).
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// The request target as sent: path and query (`/a/b?c=d`), an absolute
    /// URI, or `*`.
    pub fn target(&self) -> &'a str {
        self.target
    }

    /// The path of the target, without the query and, for an absolute-form
    /// target, without scheme and authority. Not percent-decoded.
    pub fn path(&self) -> &'a str {
        let mut path = self.target;
        if !path.starts_with('/') && path != "*" {
            path = absolute_form_path(path);
        }
        // Eight bytes at a time: `split_once('?')` goes through the
        // generic char searcher, several times the cost on a short path.
        match crate::http1::parse::find_byte(path.as_bytes(), b'?') {
            Some(query) => &path[..query],
            None => path,
        }
    }

    /// The query string after `?`, not decoded, or `None` without one.
    pub fn query(&self) -> Option<&'a str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The path with `%XX` escapes decoded; borrows when there are none.
    /// `None` when the decoded bytes are not UTF-8.
    ///
    /// Allocates only when the path contains an escape.
    pub fn path_decoded(&self) -> Option<Cow<'a, str>> {
        percent_decode(self.path(), false)
    }

    /// The value of the first query parameter called `name`, `+` and `%XX`
    /// decoded (`application/x-www-form-urlencoded` rules).
    pub fn query_param(&self, name: &str) -> Option<Cow<'a, str>> {
        find_pair(self.query_pairs(), name)
    }

    /// The query's `key=value` pairs, raw (not decoded), in order.
    pub fn query_pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        url_pairs(self.query().unwrap_or(""))
    }

    /// The body's `key=value` pairs when it is an HTML form
    /// (`application/x-www-form-urlencoded`), raw, in order; none when the
    /// body is not UTF-8.
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response};
    ///
    /// let mut conn = MemoryConn::new(|req: &Request<'_>, res: &mut Response<'_>| {
    ///     let url = req.form_param("url").unwrap_or_default();
    ///     res.body(url.as_bytes());
    /// });
    /// conn.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 31\r\n\r\nurl=https%3A%2F%2Fa.b%2F&slug=x");
    /// assert!(conn.recv().ends_with(b"\r\n\r\nhttps://a.b/"));
    /// ```
    pub fn form_pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        url_pairs(std::str::from_utf8(self.body).unwrap_or(""))
    }

    /// The first form field called `name`, decoded; see [`Request::form_pairs`].
    /// Allocates only when the value holds an escape.
    pub fn form_param(&self, name: &str) -> Option<Cow<'a, str>> {
        find_pair(self.form_pairs(), name)
    }

    /// The value of the cookie `name` from the `Cookie` header(s), as sent.
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response};
    ///
    /// let mut conn = MemoryConn::new(|req: &Request<'_>, res: &mut Response<'_>| {
    ///     res.body(req.cookie("session").unwrap_or("none").as_bytes());
    /// });
    /// conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nCookie: theme=dark; session=abc123\r\n\r\n");
    /// assert!(conn.recv().ends_with(b"\r\n\r\nabc123"));
    /// ```
    pub fn cookie(&self, name: &str) -> Option<&'a str> {
        self.cookies().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Every cookie the request carries, as (name, value), in order.
    pub fn cookies(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("cookie"))
            .filter_map(|h| std::str::from_utf8(h.value).ok())
            .flat_map(|line| line.split(';'))
            .filter_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                Some((name, value))
            })
    }

    /// HTTP/1.0 or HTTP/1.1.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The value of the first header field called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// [`Request::header`] as UTF-8, `None` when absent or not UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&'a str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The `Last-Event-ID` a Server-Sent Events client sends when it
    /// reconnects: the id of the last event it received (see
    /// [`sse::Event::id`](crate::sse::Event::id)). `None` when absent, not
    /// UTF-8, or holding a NUL, CR or LF (which no event id can hold).
    /// Borrows, allocates nothing.
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response};
    ///
    /// let mut conn = MemoryConn::new(|req: &Request<'_>, res: &mut Response<'_>| {
    ///     res.body(req.last_event_id().unwrap_or("none").as_bytes());
    /// });
    /// conn.send(b"GET /events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 41\r\n\r\n");
    /// assert!(conn.recv().ends_with(b"\r\n\r\n41"));
    /// ```
    pub fn last_event_id(&self) -> Option<&'a str> {
        self.header_str("last-event-id")
            .filter(|id| !id.bytes().any(|b| matches!(b, b'\0' | b'\r' | b'\n')))
    }

    /// Every header field, in order, as `(name, value)`.
    pub fn headers(&self) -> impl ExactSizeIterator<Item = (&'a str, &'a [u8])> + '_ {
        self.headers.iter().map(|h| (h.name, h.value))
    }

    /// The whole body, after chunked decoding; empty when there is none.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The address of the client's end of the connection: the TCP peer's
    /// address and port.
    ///
    /// A peer on a Unix socket has no address: it is `0.0.0.0:0`
    /// ([`Request::UNIX_PEER_ADDR`]), which is not loopback (behind a proxy
    /// on a Unix socket every request comes from that proxy: treating it as
    /// this machine would make every remote client local) and which a rate
    /// limit keyed by peer address counts as one client. The real client of
    /// a proxy is in its `X-Forwarded-For`, believed only when the operator
    /// trusts Unix peers ([`ForwardedClient::trust_unix_peers`]). Tell a
    /// Unix peer by [`Request::peer_credentials`].
    ///
    /// [`ForwardedClient::trust_unix_peers`]: crate::middleware::ForwardedClient::trust_unix_peers
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer.addr()
    }

    /// What the connection's TLS handshake agreed (the name the client
    /// asked for, the version, the cipher suite, whether it resumed);
    /// `None` for a request over plain HTTP. See [`crate::tls`].
    pub fn tls(&self) -> Option<&'a crate::tls::TlsInfo> {
        self.tls
    }

    /// What [`Request::peer_addr`] returns for a peer on a Unix socket.
    pub const UNIX_PEER_ADDR: SocketAddr = UNIX_PEER_ADDR;

    /// The process at the other end of a Unix socket connection (its pid,
    /// uid and gid as the kernel recorded them when it connected:
    /// `SO_PEERCRED`, which the peer cannot forge); `None` for a TCP peer.
    /// Read once per connection, at accept; this call copies 12 bytes.
    ///
    /// A handler may serve a local operator tool (`uid == 0`, or the
    /// server's own uid) differently from a proxy's user, say.
    pub fn peer_credentials(&self) -> Option<PeerCredentials> {
        self.peer.credentials()
    }

    /// The path parameter `name` captured by the router (`/links/:slug`
    /// gives `param("slug")`), as it appears in the path: not decoded.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// Every captured path parameter, in path order, as (name, raw value).
    pub fn params(&self) -> &'a [(&'a str, &'a str)] {
        self.params
    }

    /// The same request seen with `params` as its path parameters: how a
    /// router hands its captures to the handler it picked. Copies a few
    /// pointers, allocates nothing.
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response};
    ///
    /// fn links(req: &Request<'_>, res: &mut Response<'_>) {
    ///     let slug = req.path().strip_prefix("/links/").unwrap_or("");
    ///     let captures = [("slug", slug)];
    ///     let routed = req.with_params(&captures);
    ///     res.body(routed.param("slug").unwrap_or("none").as_bytes());
    /// }
    /// let mut conn = MemoryConn::new(links);
    /// conn.send(b"GET /links/abc HTTP/1.1\r\nHost: x\r\n\r\n");
    /// assert!(conn.recv().ends_with(b"\r\n\r\nabc"));
    /// ```
    pub fn with_params<'b>(&'b self, params: &'b [(&'b str, &'b str)]) -> Request<'b> {
        Request {
            method: self.method,
            target: self.target,
            version: self.version,
            headers: self.headers,
            body: self.body,
            peer: self.peer,
            tls: self.tls,
            params,
        }
    }
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("target", &self.target)
            .field("version", &self.version)
            .field("headers", &self.headers.len())
            .field("body", &self.body.len())
            .field("peer", &self.peer)
            .finish()
    }
}

/// The path (and query) of an absolute-form target: past
/// `scheme://authority`; `/` when the path is empty (`http://a?q`, RFC 9110
/// §4.2.1). Out of line, so that the usual origin-form path costs its
/// caller nothing for it.
#[cold]
fn absolute_form_path(target: &str) -> &str {
    match split_absolute_form(target) {
        Some((_, rest)) if rest.starts_with('/') => rest,
        _ => "/",
    }
}

/// An absolute-form target (`http://host:port/path?query`) as its
/// authority and the rest: the authority ends at the first `/`, `?` or `#`
/// (RFC 3986 §3.2), so `http://a?/b` has the path `/` and the query `/b`.
/// `None` without `://`.
pub(crate) fn split_absolute_form(target: &str) -> Option<(&str, &str)> {
    let after_scheme = target.find("://")? + 3;
    let rest = &target[after_scheme..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(rest.split_at(end))
}

/// `a=1&b=2` as raw pairs; a pair without `=` has an empty value.
fn url_pairs(encoded: &str) -> impl Iterator<Item = (&str, &str)> {
    encoded
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// The decoded value of the first pair whose decoded key is `name`.
fn find_pair<'a>(
    mut pairs: impl Iterator<Item = (&'a str, &'a str)>,
    name: &str,
) -> Option<Cow<'a, str>> {
    pairs
        .find(|(k, _)| percent_decode(k, true).is_some_and(|k| k == name))
        .and_then(|(_, v)| percent_decode(v, true))
}

/// Decodes `%XX` escapes (and `+` as space when `plus_is_space`). Borrows the
/// input when there is nothing to decode; an invalid escape is kept as it is.
/// `None` when the result is not UTF-8.
///
/// ```
/// assert_eq!(keel::percent_decode("a%20b+c", true).as_deref(), Some("a b c"));
/// assert_eq!(keel::percent_decode("100%", false).as_deref(), Some("100%"));
/// assert_eq!(keel::percent_decode("%FF", false), None);
/// ```
pub fn percent_decode(input: &str, plus_is_space: bool) -> Option<Cow<'_, str>> {
    let needs_work = |b: &u8| *b == b'%' || (plus_is_space && *b == b'+');
    if !input.as_bytes().iter().any(needs_work) {
        return Some(Cow::Borrowed(input));
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        match bytes[i] {
            b'%' => match (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn path_drops_query_and_absolute_form_prefix() {
        let cases = [
            ("/plaintext", "/plaintext", None),
            ("/a/b?c=d", "/a/b", Some("c=d")),
            ("/?", "/", Some("")),
            ("*", "*", None),
            ("http://host/x/y?q", "/x/y", Some("q")),
            ("https://host", "/", None),
            ("http://host?q", "/", Some("q")),
            ("http://x?/metrics", "/", Some("/metrics")),
            ("http://x?a/b/c?d", "/", Some("a/b/c?d")),
            ("HTTP://X/a", "/a", None),
            ("https://x:8080/p?q", "/p", Some("q")),
            ("http://[::1]:8080/v6", "/v6", None),
        ];
        for (target, path, query) in cases {
            let req = Request {
                method: "GET",
                target,
                version: Version::Http11,
                headers: &[],
                body: b"",
                peer: Peer::Ip(SocketAddr::from((Ipv4Addr::LOCALHOST, 1))),
                tls: None,
                params: &[],
            };
            assert_eq!(req.path(), path, "{target}");
            assert_eq!(req.query(), query, "{target}");
        }
    }

    #[test]
    fn last_event_id_is_utf8_without_nul_or_line_breaks() {
        let cases: [(&[u8], Option<&str>); 6] = [
            (b"41", Some("41")),
            (b"", Some("")),
            (b"a\0b", None),
            (b"a\rb", None),
            (b"a\nb", None),
            (b"\xff", None),
        ];
        for (value, expected) in cases {
            let headers = [httparse::Header {
                name: "Last-Event-Id",
                value,
            }];
            let req = Request {
                method: "GET",
                target: "/",
                version: Version::Http11,
                headers: &headers,
                body: b"",
                peer: Peer::Ip(SocketAddr::from((Ipv4Addr::LOCALHOST, 1))),
                tls: None,
                params: &[],
            };
            assert_eq!(req.last_event_id(), expected, "{value:?}");
        }
    }
}
