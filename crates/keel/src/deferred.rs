//! Deferred responses: a handler hands a [`Responder`] to another thread and
//! returns; the answer comes back to the worker through a channel and its
//! mio `Waker`, and leaves in request order.

use crate::response::ResponseShape;
use crate::{Response, StatusCode};
use bytes::{Bytes, BytesMut};
use crossbeam_channel::Sender;
use mio::Waker;
use std::cell::Cell;
use std::sync::Arc;

/// A finished deferred response on its way back to its worker.
pub(crate) struct Completion {
    /// Slab key of the connection.
    pub(crate) key: usize,
    /// Which deferral on this worker it answers: a connection that closed, or
    /// timed out waiting, no longer expects it.
    pub(crate) ticket: u64,
    pub(crate) bytes: BytesMut,
    pub(crate) large: Vec<(usize, Bytes)>,
    pub(crate) keep_alive: bool,
    pub(crate) status: u16,
}

/// Where one worker's deferred responses come back to.
pub(crate) struct Deferral {
    sender: Sender<Completion>,
    waker: Option<Arc<Waker>>,
    server_line: Arc<[u8]>,
    next_ticket: Cell<u64>,
}

impl Deferral {
    pub(crate) fn new(
        sender: Sender<Completion>,
        waker: Option<Arc<Waker>>,
        server_line: &[u8],
    ) -> Self {
        Deferral {
            sender,
            waker,
            server_line: server_line.into(),
            next_ticket: Cell::new(0),
        }
    }

    /// A responder for the response `shape` on connection `key`, and its ticket.
    pub(crate) fn responder(&self, key: usize, shape: ResponseShape) -> (Responder, u64) {
        let ticket = self.next_ticket.get() + 1;
        self.next_ticket.set(ticket);
        let responder = Responder {
            sender: self.sender.clone(),
            waker: self.waker.clone(),
            server_line: Arc::clone(&self.server_line),
            key,
            ticket,
            shape,
            answered: false,
        };
        (responder, ticket)
    }
}

/// The right to answer one request later, from any thread.
///
/// Get one from [`Response::defer`]; call [`respond`](Responder::respond)
/// once, with the same response-writing API as a handler. Later pipelined
/// requests on the same connection wait until it has answered, so responses
/// still leave in request order. A responder dropped without answering sends
/// `500 Internal Server Error` (as does one whose `respond` closure panics);
/// if the connection closed meanwhile, the answer is dropped.
///
/// ```
/// use keel::testing::MemoryConn;
/// use keel::{Request, Response};
/// use std::time::Duration;
///
/// let mut conn = MemoryConn::new(|req: &Request<'_>, res: &mut Response<'_>| {
///     let name = req.path().trim_start_matches('/').to_owned();
///     let responder = res.defer();
///     std::thread::spawn(move || {
///         responder.respond(|res| {
///             res.body(format!("hello {name}").as_bytes());
///         });
///     });
/// });
/// conn.send(b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n");
/// assert!(conn.settle(Duration::from_secs(5)));
/// assert!(conn.recv().ends_with(b"\r\n\r\nhello later"));
/// ```
pub struct Responder {
    sender: Sender<Completion>,
    waker: Option<Arc<Waker>>,
    server_line: Arc<[u8]>,
    key: usize,
    ticket: u64,
    shape: ResponseShape,
    answered: bool,
}

impl Responder {
    /// Writes the response with `write` and sends it to the connection.
    /// Allocates the response's buffer (about 1 KiB to start).
    pub fn respond(mut self, write: impl FnOnce(&mut Response<'_>)) {
        let mut bytes = BytesMut::with_capacity(1024);
        let mut large = Vec::new();
        let mut res = Response::with_shape(&mut bytes, &mut large, self.shape, &self.server_line);
        write(&mut res);
        res.finish();
        let (status, keep_alive) = (res.status_code().as_u16(), res.keeps_alive());
        self.answered = true;
        self.send(bytes, large, keep_alive, status);
    }

    fn send(&self, bytes: BytesMut, large: Vec<(usize, Bytes)>, keep_alive: bool, status: u16) {
        let completion = Completion {
            key: self.key,
            ticket: self.ticket,
            bytes,
            large,
            keep_alive,
            status,
        };
        // A stopped worker has dropped its receiver: the answer has nowhere to go.
        if self.sender.send(completion).is_ok() {
            if let Some(waker) = &self.waker {
                let _ = waker.wake();
            }
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let mut bytes = BytesMut::with_capacity(256);
        let mut large = Vec::new();
        let shape = ResponseShape {
            keep_alive: false,
            ..self.shape
        };
        let mut res = Response::with_shape(&mut bytes, &mut large, shape, &self.server_line);
        res.status(StatusCode::INTERNAL_SERVER_ERROR)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(b"Internal Server Error\n");
        self.send(bytes, large, false, 500);
    }
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("ticket", &self.ticket)
            .finish()
    }
}
