//! Who may write: bearer API keys, or loopback clients when no key is set.

use crate::api::ApiError;
use keel::middleware::{Flow, Middleware};
use keel::{Request, Response};

/// Checks `Authorization: Bearer <key>` against the configured keys; with
/// none configured, lets loopback clients through and refuses the rest.
///
/// Behind a reverse proxy on the same host every client is a loopback
/// client: configure keys there.
pub struct ApiAuth {
    keys: Vec<Box<[u8]>>,
}

impl ApiAuth {
    pub fn new(keys: &[String]) -> ApiAuth {
        ApiAuth {
            keys: keys
                .iter()
                .map(|k| k.trim())
                .filter(|k| !k.is_empty())
                .map(|k| k.as_bytes().into())
                .collect(),
        }
    }

    /// Whether `req` may write.
    pub fn allows(&self, req: &Request<'_>) -> Result<(), ApiError> {
        if self.keys.is_empty() {
            return if req.peer_addr().ip().to_canonical().is_loopback() {
                Ok(())
            } else {
                Err(ApiError::forbidden(
                    "no API key is configured: writes are accepted from this machine only",
                ))
            };
        }
        let Some(given) = bearer(req) else {
            return Err(ApiError::unauthorized());
        };
        // Every key is compared in full, so the time taken does not say
        // which one, or how much of one, matched.
        let matched = self.keys.iter().fold(false, |found, key| {
            found | constant_time_eq(key, given.as_bytes())
        });
        if matched {
            Ok(())
        } else {
            Err(ApiError::unauthorized())
        }
    }
}

impl Middleware for ApiAuth {
    fn before(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
        match self.allows(req) {
            Ok(()) => Flow::Continue,
            Err(error) => {
                error.write(res);
                Flow::Stop
            }
        }
    }
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

/// Byte equality whose time depends on the lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel::middleware::HandlerExt;
    use keel::testing::MemoryConn;

    fn status(auth: ApiAuth, request: &[u8]) -> u16 {
        let app = (|_: &Request<'_>, res: &mut Response<'_>| res.body(b"ok")).with(auth);
        let mut conn = MemoryConn::new(app);
        conn.send(request);
        conn.responses().unwrap()[0].status
    }

    #[test]
    fn keys_are_required_when_configured() {
        let keys = || ApiAuth::new(&["s3cret".into(), " other ".into()]);
        assert_eq!(status(keys(), b"POST / HTTP/1.1\r\nHost: a\r\n\r\n"), 401);
        assert_eq!(
            status(
                keys(),
                b"POST / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer nope\r\n\r\n"
            ),
            401
        );
        assert_eq!(
            status(
                keys(),
                b"POST / HTTP/1.1\r\nHost: a\r\nAuthorization: Basic s3cret\r\n\r\n"
            ),
            401
        );
        assert_eq!(
            status(
                keys(),
                b"POST / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer s3cret\r\n\r\n"
            ),
            200
        );
        assert_eq!(
            status(
                keys(),
                b"POST / HTTP/1.1\r\nHost: a\r\nAuthorization: bearer other\r\n\r\n"
            ),
            200
        );
    }

    #[test]
    fn without_keys_loopback_clients_may_write() {
        // MemoryConn's peer is a loopback address.
        assert_eq!(
            status(ApiAuth::new(&[]), b"POST / HTTP/1.1\r\nHost: a\r\n\r\n"),
            200
        );
    }
}
