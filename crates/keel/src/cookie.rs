//! Setting cookies (RFC 6265): a `Set-Cookie` builder formatted straight into
//! the response. Reading them is [`crate::Request::cookie`].

use crate::{InvalidHeader, Response};
use std::fmt;
use std::time::Duration;

/// The `SameSite` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    /// Sent only with same-site requests.
    Strict,
    /// Also sent with top-level navigations from other sites (the browsers' default).
    Lax,
    /// Sent with every request; browsers require `Secure` with it.
    None,
}

/// A `Set-Cookie` header value. Borrows its strings; formatting it into a
/// response allocates nothing.
///
/// ```
/// use keel::testing::MemoryConn;
/// use keel::{Cookie, Request, Response, SameSite};
/// use std::time::Duration;
///
/// let mut conn = MemoryConn::new(|_req: &Request<'_>, res: &mut Response<'_>| {
///     let cookie = Cookie::new("session", "abc123")
///         .path("/")
///         .max_age(Duration::from_secs(3600))
///         .http_only()
///         .secure()
///         .same_site(SameSite::Lax);
///     res.set_cookie(&cookie).unwrap();
/// });
/// conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
/// let reply = String::from_utf8(conn.recv()).unwrap();
/// assert!(reply.contains(
///     "\r\nSet-Cookie: session=abc123; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Lax\r\n"
/// ));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Cookie<'a> {
    name: &'a str,
    value: &'a str,
    path: Option<&'a str>,
    domain: Option<&'a str>,
    max_age: Option<Duration>,
    secure: bool,
    http_only: bool,
    same_site: Option<SameSite>,
}

impl<'a> Cookie<'a> {
    /// `name=value`, with no attributes.
    pub fn new(name: &'a str, value: &'a str) -> Self {
        Cookie {
            name,
            value,
            path: None,
            domain: None,
            max_age: None,
            secure: false,
            http_only: false,
            same_site: None,
        }
    }

    /// A cookie that tells the browser to delete `name` (empty, `Max-Age=0`).
    /// Give it the same `path` and `domain` the cookie was set with.
    pub fn removal(name: &'a str) -> Self {
        Cookie::new(name, "").max_age(Duration::ZERO)
    }

    /// `Path=path`.
    pub fn path(mut self, path: &'a str) -> Self {
        self.path = Some(path);
        self
    }

    /// `Domain=domain`.
    pub fn domain(mut self, domain: &'a str) -> Self {
        self.domain = Some(domain);
        self
    }

    /// `Max-Age`, in whole seconds.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// `Secure`: HTTPS only.
    pub fn secure(mut self) -> Self {
        self.secure = true;
        self
    }

    /// `HttpOnly`: hidden from scripts.
    pub fn http_only(mut self) -> Self {
        self.http_only = true;
        self
    }

    /// `SameSite=...`.
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = Some(same_site);
        self
    }

    /// Whether name, value and attributes use only the characters RFC 6265 allows.
    fn is_valid(&self) -> bool {
        let token = |s: &str| !s.is_empty() && s.bytes().all(crate::http1::parse::is_token_byte);
        // cookie-octet: visible ASCII except DQUOTE, comma, semicolon, backslash.
        let octets = |s: &str| {
            s.bytes()
                .all(|b| matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E))
        };
        // attribute values: any visible ASCII or space but ';'.
        let attr = |s: &str| s.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b';');
        token(self.name)
            && octets(self.value)
            && self.path.map_or(true, attr)
            && self.domain.map_or(true, attr)
    }
}

impl fmt::Display for Cookie<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.value)?;
        if let Some(path) = self.path {
            write!(f, "; Path={path}")?;
        }
        if let Some(domain) = self.domain {
            write!(f, "; Domain={domain}")?;
        }
        if let Some(max_age) = self.max_age {
            write!(f, "; Max-Age={}", max_age.as_secs())?;
        }
        if self.secure {
            f.write_str("; Secure")?;
        }
        if self.http_only {
            f.write_str("; HttpOnly")?;
        }
        match self.same_site {
            Some(SameSite::Strict) => f.write_str("; SameSite=Strict"),
            Some(SameSite::Lax) => f.write_str("; SameSite=Lax"),
            Some(SameSite::None) => f.write_str("; SameSite=None"),
            None => Ok(()),
        }
    }
}

impl Response<'_> {
    /// Adds a `Set-Cookie` header.
    ///
    /// # Errors
    ///
    /// [`InvalidHeader`] when the name is not a token or the value or an
    /// attribute holds characters a cookie may not (RFC 6265 §4.1.1).
    ///
    /// # Panics
    ///
    /// When the body has begun.
    pub fn set_cookie(&mut self, cookie: &Cookie<'_>) -> Result<&mut Self, InvalidHeader> {
        if !cookie.is_valid() {
            return Err(InvalidHeader);
        }
        self.header_fmt("Set-Cookie", format_args!("{cookie}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_validates() {
        assert_eq!(Cookie::new("a", "b").to_string(), "a=b");
        assert_eq!(
            Cookie::removal("a").path("/x").domain("e.org").to_string(),
            "a=; Path=/x; Domain=e.org; Max-Age=0"
        );
        assert!(Cookie::new("a", "b").is_valid());
        for bad in [
            Cookie::new("", "b"),
            Cookie::new("a b", "b"),
            Cookie::new("a", "b;c"),
            Cookie::new("a", "b c"),
            Cookie::new("a", "\"b\""),
            Cookie::new("a", "b").path("/x;y"),
            Cookie::new("a", "b").domain("e\r\n.org"),
        ] {
            assert!(!bad.is_valid(), "{bad:?}");
        }
    }
}
