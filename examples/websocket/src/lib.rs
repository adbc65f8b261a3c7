//! A WebSocket echo and chat server on keel: the opening handshake is an
//! HTTP request that keel answers `101 Switching Protocols` with
//! [`keel::Response::upgrade`]; the connection then belongs to a thread of
//! this crate, which speaks WebSocket over it with `tungstenite` (framing,
//! masking, control frames and the close handshake are tungstenite's; this
//! crate holds no codec of its own).
//!
//! - `GET /echo`: each text or binary message is sent back as it came.
//! - `GET /chat`: one room; each message goes to every other member, text
//!   as `guest-N: <text>`, binary as it is. Joins and leaves are announced.
//!
//! Each WebSocket has its own thread, up to [`Limits::max_sockets`] at once
//! (more are refused with `503` before the upgrade); a message may be at
//! most [`Limits::max_message`] bytes (a larger one is refused with close
//! code 1009 before its payload is read); a socket silent for
//! [`Limits::idle`] is closed (1001).

#![forbid(unsafe_code)]

mod chat;
mod session;

pub use chat::Room;

use keel::{Handler, Request, Response, StatusCode, Upgraded};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tungstenite::handshake::derive_accept_key;

/// What one WebSocket may cost the server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// WebSockets open at once (one thread each); more are answered `503`.
    pub max_sockets: usize,
    /// Largest message, in bytes, whole or in fragments.
    pub max_message: usize,
    /// A socket that sends nothing for this long is closed.
    pub idle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sockets: 256,
            max_message: 1 << 20,
            idle: Duration::from_secs(300),
        }
    }
}

/// The HTTP side: answers the opening handshakes and hands each accepted
/// WebSocket to a thread of its own.
pub struct App {
    limits: Limits,
    open: Arc<AtomicUsize>,
    room: Arc<Room>,
}

impl App {
    /// An app with `limits` and an empty chat room.
    pub fn new(limits: Limits) -> App {
        App {
            limits,
            open: Arc::new(AtomicUsize::new(0)),
            room: Arc::new(Room::default()),
        }
    }

    /// Accepts a WebSocket opening handshake (RFC 6455 §4.2) and starts
    /// `run` on its own thread with the upgraded connection; or answers why
    /// not: `405` for a method other than GET, `426` for a request that does
    /// not ask for `websocket` version 13, `400` for a malformed key, `503`
    /// when [`Limits::max_sockets`] are open.
    fn accept(
        &self,
        req: &Request<'_>,
        res: &mut Response<'_>,
        run: impl FnOnce(Upgraded) + Send + 'static,
    ) {
        if req.method() != "GET" {
            res.status(StatusCode::METHOD_NOT_ALLOWED)
                .header("Allow", "GET")
                .body(b"a WebSocket opens with GET\n");
            return;
        }
        if req.header("sec-websocket-version") != Some(b"13") {
            res.status(StatusCode::UPGRADE_REQUIRED)
                .header("Upgrade", "websocket")
                .header("Sec-WebSocket-Version", "13")
                .body(b"this is a WebSocket endpoint (version 13)\n");
            return;
        }
        let Some(key) = req.header("sec-websocket-key").filter(|k| is_nonce(k)) else {
            res.status(StatusCode::BAD_REQUEST)
                .body(b"Sec-WebSocket-Key must be 16 bytes in base64\n");
            return;
        };
        let Some(slot) = Slot::take(&self.open, self.limits.max_sockets) else {
            res.status(StatusCode::SERVICE_UNAVAILABLE)
                .header("Retry-After", "5")
                .body(b"too many WebSockets open; try again later\n");
            return;
        };
        res.header("Sec-WebSocket-Accept", derive_accept_key(key));
        let upgraded = res.upgrade("websocket", move |stream| {
            // The callback runs on keel's worker: start the thread, return.
            // If the thread cannot start, the closure is dropped, and with
            // it the socket (closed) and the slot (freed).
            let _ = std::thread::Builder::new()
                .name("websocket".into())
                .spawn(move || {
                    let _slot = slot;
                    run(stream);
                });
        });
        if upgraded.is_err() {
            // Not `Connection: upgrade` + `Upgrade: websocket`, or HTTP/1.0;
            // the slot went with the dropped callback.
            res.status(StatusCode::UPGRADE_REQUIRED)
                .header("Upgrade", "websocket")
                .header("Sec-WebSocket-Version", "13")
                .body(b"this is a WebSocket endpoint: ask to upgrade to websocket\n");
        }
    }
}

impl Handler for App {
    fn handle(&self, req: &Request<'_>, res: &mut Response<'_>) {
        let limits = self.limits;
        match req.path() {
            "/echo" => self.accept(req, res, move |stream| session::echo(stream, limits)),
            "/chat" => {
                let room = Arc::clone(&self.room);
                self.accept(req, res, move |stream| room.serve(stream, limits));
            }
            "/" => res
                .header("Content-Type", "text/plain; charset=utf-8")
                .body(b"WebSocket endpoints: /echo (echo), /chat (a chat room)\n"),
            _ => res.status(StatusCode::NOT_FOUND).body(b"not found\n"),
        }
    }
}

/// Whether `key` is a WebSocket nonce: 16 bytes in base64, which is 22
/// base64 characters and `==` (RFC 6455 §4.1).
fn is_nonce(key: &[u8]) -> bool {
    let base64 = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    key.len() == 24 && key[..22].iter().all(base64) && &key[22..] == b"=="
}

/// One of the [`Limits::max_sockets`] places, freed when dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        let taken = open.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(Arc::clone(open));
        (taken < max).then_some(slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_16_bytes_in_base64() {
        assert!(is_nonce(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_nonce(b"dGhlIHNhbXBsZSBub25jZQ="));
        assert!(!is_nonce(b"dGhlIHNhbXBsZSBub25jZQ=a"));
        assert!(!is_nonce(b"dGhlIHNhbXBsZSBub25j\r\nQ=="));
        assert!(!is_nonce(b""));
    }

    #[test]
    fn slots_run_out_and_come_back() {
        let open = Arc::new(AtomicUsize::new(0));
        let a = Slot::take(&open, 2).unwrap();
        let _b = Slot::take(&open, 2).unwrap();
        assert!(Slot::take(&open, 2).is_none());
        drop(a);
        assert!(Slot::take(&open, 2).is_some());
        assert_eq!(open.load(Ordering::Acquire), 1);
    }
}
