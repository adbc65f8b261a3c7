//! Test support: a [`Request`] parsed from a wire sample, so that each table
//! case of the files rules is the request as a client sends it.

use std::net::{Ipv4Addr, SocketAddr};

use crate::request::{Request, Version};

/// Runs `check` on the request head `wire` (which must be complete).
pub(crate) fn with_request<R>(wire: &str, check: impl FnOnce(&Request<'_>) -> R) -> R {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut parsed = httparse::Request::new(&mut headers);
    let status = parsed.parse(wire.as_bytes()).expect("a valid wire sample");
    assert!(status.is_complete(), "an incomplete wire sample: {wire:?}");
    let request = Request {
        method: parsed.method.expect("a method"),
        target: parsed.path.expect("a target"),
        version: Version::Http11,
        headers: parsed.headers,
        body: b"",
        peer: crate::peer::Peer::Ip(SocketAddr::from((Ipv4Addr::LOCALHOST, 1))),
        tls: None,
        params: &[],
    };
    check(&request)
}
