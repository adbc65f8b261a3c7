//! Who may do what: scoped bearer API keys ([`crate::keys`]), or, with no
//! key configured (keyless mode), clients on this machine that address
//! this server by a loopback name or the base URL's host (so a page on
//! another name that resolves here, DNS rebinding, is refused) and that,
//! when sent from a web page (`Origin`), come from a page of this very
//! origin (so another local site cannot use it). Those are `admin`; anyone
//! else gets `403`.
//!
//! Every route that checks a key goes through [`ApiAuth::check`]: a client
//! whose attempts failed too often in the last minute is refused with
//! `429` before its key is even looked at, so a right guess after a run of
//! wrong ones is not told apart from them.

use crate::api::{retry_after, ApiError};
use crate::keys::{KeySet, Scope};
use keel::middleware::{Flow, Middleware, RateLimit};
use keel::{Request, Response, StatusCode};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

/// Decides the scope of each request.
pub struct ApiAuth {
    keys: KeySet,
    /// `host[:port]` of the base URL, lowercase: a `Host` keyless mode
    /// trusts besides the loopback names.
    own_host: String,
    /// Failed attempts per client; see the module docs.
    failures: RateLimit,
}

impl ApiAuth {
    /// Checks requests against `keys` (empty: keyless mode, see the
    /// [module docs](self)), charging every failure to `failures`.
    pub fn new(keys: KeySet, own_host: &str, failures: RateLimit) -> ApiAuth {
        ApiAuth {
            keys,
            own_host: own_host.to_ascii_lowercase(),
            failures,
        }
    }

    /// Whether no key is configured.
    pub fn keyless(&self) -> bool {
        self.keys.is_empty()
    }

    /// The scope `req` holds, or `None` once the refusal (`401`, `403`, or
    /// `429` after too many failures) is written to `res`.
    pub fn check(&self, req: &Request<'_>, res: &mut Response<'_>) -> Option<Scope> {
        const FAILURES: &str =
            "too many failed API key attempts from this client, retry after the Retry-After delay";
        if let Err(wait) = self.failures.check(req) {
            rate_limited(res, wait, FAILURES);
            return None;
        }
        match self.scope_of(req) {
            Ok(scope) => Some(scope),
            Err(error) => {
                match self.failures.charge(req) {
                    Ok(()) => error.write(res),
                    Err(wait) => rate_limited(res, wait, FAILURES),
                }
                None
            }
        }
    }

    /// Like [`check`](ApiAuth::check) for routes that also answer without
    /// a key (`/health`): a request that offers no credential (no
    /// `Authorization`, and not a trusted keyless client) is
    /// [`Anonymous`](Access::Anonymous) and nothing is written; any other
    /// is checked.
    pub fn check_optional(&self, req: &Request<'_>, res: &mut Response<'_>) -> Access {
        let offers_key = req.header("authorization").is_some();
        if !offers_key && (!self.keyless() || self.local_scope(req).is_err()) {
            return Access::Anonymous;
        }
        match self.check(req, res) {
            Some(scope) => Access::Held(scope),
            None => Access::Refused,
        }
    }

    /// A middleware that lets through requests holding `scope` (or more).
    pub fn require(self: &Arc<Self>, scope: Scope) -> Require {
        Require {
            auth: Arc::clone(self),
            scope,
            limit: None,
        }
    }

    fn scope_of(&self, req: &Request<'_>) -> Result<Scope, ApiError> {
        if self.keyless() {
            return self.local_scope(req);
        }
        let key = bearer(req).ok_or_else(ApiError::unauthorized)?;
        self.keys.scope_of(key).ok_or_else(ApiError::unauthorized)
    }

    /// Keyless mode: `admin` for a loopback peer that names this server by
    /// a loopback name or the base URL's host (so a page on another name
    /// that resolves here, DNS rebinding, is refused) and, when the request
    /// comes from a web page (`Origin`), from a page of this very origin
    /// (so another local site cannot use it). Anyone else: `403`.
    fn local_scope(&self, req: &Request<'_>) -> Result<Scope, ApiError> {
        if !req.peer_addr().ip().to_canonical().is_loopback() {
            return Err(ApiError::forbidden(
                "no API key is configured: the API answers this machine only",
            ));
        }
        let mut hosts = headers(req, "host");
        let host = match (hosts.next(), hosts.next()) {
            (Some(host), None) if self.trusted_host(host) => host,
            _ => {
                return Err(ApiError::forbidden(
                    "no API key is configured: address this server as localhost, a loopback \
                     address or its base URL's host",
                ))
            }
        };
        if !headers(req, "origin").all(|origin| same_origin(origin, host)) {
            return Err(ApiError::forbidden(
                "no API key is configured: requests from other web origins are refused",
            ));
        }
        Ok(Scope::Admin)
    }

    fn trusted_host(&self, host: &str) -> bool {
        is_loopback_host(host) || host.eq_ignore_ascii_case(&self.own_host)
    }
}

/// What [`ApiAuth::check_optional`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No credential offered.
    Anonymous,
    /// A credential holding this scope.
    Held(Scope),
    /// A credential refused; the refusal is written.
    Refused,
}

/// Lets through requests that hold a scope; see [`ApiAuth::require`].
pub struct Require {
    auth: Arc<ApiAuth>,
    scope: Scope,
    /// Charged once the scope is proven (the write limit).
    limit: Option<Arc<RateLimit>>,
}

impl Require {
    /// Also charges `limit` for each request let through, after auth: a
    /// client without a key cannot spend the budget of the client it
    /// pretends to be.
    pub fn limited(mut self, limit: &Arc<RateLimit>) -> Require {
        self.limit = Some(Arc::clone(limit));
        self
    }
}

impl Middleware for Require {
    fn before(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
        match self.auth.check(req, res) {
            Some(held) if held >= self.scope => {
                match self.limit.as_deref().map(|l| l.charge(req)) {
                    Some(Err(wait)) => {
                        rate_limited(
                            res,
                            wait,
                            "too many writes from this client, retry after the Retry-After delay",
                        );
                        Flow::Stop
                    }
                    _ => Flow::Continue,
                }
            }
            Some(_) => {
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "insufficient_scope",
                    match self.scope {
                        Scope::Read => "this needs a key with the read scope",
                        Scope::Write => "this needs a key with the write scope",
                        Scope::Admin => "this needs a key with the admin scope",
                    },
                )
                .write(res);
                Flow::Stop
            }
            None => Flow::Stop,
        }
    }
}

/// Writes the JSON `429` of a limit whose next token is `wait` away.
fn rate_limited(res: &mut Response<'_>, wait: Duration, message: &'static str) {
    retry_after(res, wait);
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message).write(res);
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer<'a>(req: &Request<'a>) -> Option<&'a str> {
    let value = req.header_str("authorization")?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Every value of the header `name` (a value that is not UTF-8 as `""`,
/// which no check accepts).
fn headers<'a>(req: &'a Request<'a>, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    req.headers()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, value)| std::str::from_utf8(value).unwrap_or("").trim())
}

/// `localhost`, an address in 127.0.0.0/8 or `[::1]`, with or without a
/// port.
fn is_loopback_host(host: &str) -> bool {
    let (name, port, bracketed) = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inside, "")) => (inside, None, true),
            Some((inside, after)) => match after.strip_prefix(':') {
                Some(port) => (inside, Some(port), true),
                None => return false,
            },
            None => return false,
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port), false),
            None => (host, None, false),
        },
    };
    let port_ok =
        port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    if !port_ok {
        return false;
    }
    if bracketed {
        return name.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    }
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether `origin` (`scheme://host[:port]`) is the origin of a page served
/// to the `Host` `host`.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        && authority.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel::middleware::HandlerExt;
    use keel::testing::MemoryConn;

    const ADMIN: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const READ: &str = "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr";

    fn auth(keys: &str) -> Arc<ApiAuth> {
        let mut set = KeySet::default();
        if !keys.is_empty() {
            set.add_file(keys, "test").unwrap();
        }
        let failures = RateLimit::new(3, Duration::from_secs(60));
        Arc::new(ApiAuth::new(set, "sho.rt", failures))
    }

    fn status(auth: &Arc<ApiAuth>, scope: Scope, head: &str) -> u16 {
        let app =
            (|_: &Request<'_>, res: &mut Response<'_>| res.body(b"ok")).with(auth.require(scope));
        let mut conn = MemoryConn::new(app);
        conn.send(format!("GET / HTTP/1.1\r\n{head}\r\n").as_bytes());
        conn.responses().unwrap()[0].status
    }

    #[test]
    fn keys_hold_their_scope_and_no_more() {
        let auth = auth(&format!("admin {ADMIN}\nread {READ}\n"));
        let with = |key: &str| format!("Host: a\r\nAuthorization: Bearer {key}\r\n");
        assert_eq!(status(&auth, Scope::Read, &with(READ)), 200);
        assert_eq!(status(&auth, Scope::Write, &with(READ)), 403);
        assert_eq!(status(&auth, Scope::Admin, &with(ADMIN)), 200);
        assert_eq!(status(&auth, Scope::Read, "Host: a\r\n"), 401);
    }

    #[test]
    fn failures_lock_the_client_out_even_with_a_right_key() {
        let auth = auth(&format!("admin {ADMIN}\n"));
        for _ in 0..3 {
            let head = "Host: a\r\nAuthorization: Bearer wrong-wrong-wrong-wrong\r\n";
            assert_eq!(status(&auth, Scope::Read, head), 401);
        }
        let right = format!("Host: a\r\nAuthorization: Bearer {ADMIN}\r\n");
        assert_eq!(status(&auth, Scope::Read, &right), 429);
    }

    #[test]
    fn keyless_mode_trusts_loopback_names_and_this_origin_only() {
        // MemoryConn's peer is a loopback address.
        let auth = auth("");
        for host in [
            "127.0.0.1",
            "localhost:8080",
            "127.9.9.9:1",
            "[::1]:80",
            "Sho.rt",
        ] {
            assert_eq!(
                status(&auth, Scope::Admin, &format!("Host: {host}\r\n")),
                200,
                "{host}"
            );
        }
        let refused = [
            "Host: evil.example\r\n",
            "Host: evil.example:8080\r\n",
            "Host: 127.0.0.1.evil.example\r\n",
            "Host: localhost:80x\r\n",
            "Host: localhost:8080\r\nOrigin: http://evil.example\r\n",
            "Host: localhost:8080\r\nOrigin: http://localhost:9999\r\n",
            "Host: localhost:8080\r\nOrigin: null\r\n",
        ];
        for head in refused {
            let auth = self::auth("");
            assert_eq!(status(&auth, Scope::Read, head), 403, "{head}");
        }
        let same = "Host: localhost:8080\r\nOrigin: http://localhost:8080\r\n";
        assert_eq!(status(&auth, Scope::Admin, same), 200);
    }

    #[test]
    fn loopback_hosts() {
        for yes in [
            "localhost",
            "LOCALHOST:1",
            "127.0.0.1",
            "127.1.2.3:65535",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(is_loopback_host(yes), "{yes}");
        }
        for no in [
            "",
            "localhost.",
            "127.1",
            "[::1",
            "[::2]:80",
            "10.0.0.1",
            "localhost:",
            "a:b:c",
        ] {
            assert!(!is_loopback_host(no), "{no}");
        }
    }
}
