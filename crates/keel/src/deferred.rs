//! Deferred responses: a handler hands a [`Responder`] to another thread and
//! returns; the answer comes back to the worker through a channel and its
//! mio `Waker`, and leaves in request order.

use crate::http1::output::Segment;
use crate::response::ResponseShape;
use crate::stream::{BodyStream, StreamShared};
use crate::{field, Response, StatusCode};
use bytes::BytesMut;
use crossbeam_channel::Sender;
use mio::Waker;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;

/// A finished deferred response on its way back to its worker.
pub(crate) struct Completion {
    /// Slab key of the connection.
    pub(crate) key: usize,
    /// Which deferral on this worker it answers: a connection that closed, or
    /// timed out waiting, no longer expects it.
    pub(crate) ticket: u64,
    pub(crate) bytes: BytesMut,
    pub(crate) large: Vec<(usize, Segment)>,
    pub(crate) keep_alive: bool,
    pub(crate) status: u16,
    /// Body bytes of the response, for [`DeferredOutcome::Answered`].
    pub(crate) body_len: usize,
    /// For the head of a streamed response: the queue its body comes through.
    pub(crate) stream: Option<Arc<StreamShared>>,
}

/// What other threads tell a worker about one of its connections.
pub(crate) enum Message {
    /// A deferred response, whole, or the head of a streamed one.
    Answer(Completion),
    /// A paused body sink has room again (see [`crate::body::SinkWaker`]).
    Resume { key: usize, ticket: u64 },
    /// A streamed response has more to send, or ended.
    Stream { key: usize, ticket: u64 },
    /// A cold chunk of a file is read into the page cache (see
    /// [`crate::files::readahead`]).
    DiskRead { key: usize, ticket: u64 },
}

impl Message {
    /// The slab key of the connection it is for.
    pub(crate) fn key(&self) -> usize {
        match self {
            Message::Answer(done) => done.key,
            Message::Resume { key, .. }
            | Message::Stream { key, .. }
            | Message::DiskRead { key, .. } => *key,
        }
    }
}

/// Sends [`Message`]s to one worker and wakes it. Cloning it allocates
/// nothing.
#[derive(Clone)]
pub(crate) struct Notifier {
    sender: Sender<Message>,
    waker: Option<Arc<Waker>>,
}

impl Notifier {
    /// Sends `message`; a stopped worker has dropped its receiver, and the
    /// message has nowhere to go.
    pub(crate) fn send(&self, message: Message) {
        if self.sender.send(message).is_ok() {
            if let Some(waker) = &self.waker {
                let _ = waker.wake();
            }
        }
    }
}

/// Where one worker's deferred responses come back to.
pub(crate) struct Deferral {
    notifier: Notifier,
    server_line: Arc<[u8]>,
    next_ticket: Cell<u64>,
    /// Bytes a streamed response may queue (see [`crate::BodyStream`]).
    stream_window: usize,
}

impl Deferral {
    pub(crate) fn new(
        sender: Sender<Message>,
        waker: Option<Arc<Waker>>,
        server_line: &[u8],
        stream_window: usize,
    ) -> Self {
        Deferral {
            notifier: Notifier { sender, waker },
            server_line: server_line.into(),
            next_ticket: Cell::new(0),
            stream_window,
        }
    }

    pub(crate) fn stream_window(&self) -> usize {
        self.stream_window
    }

    /// A fresh ticket: which deferral, body sink or stream on this worker a
    /// message is about, so that one for a closed connection whose slab
    /// key was reused is recognised and dropped.
    pub(crate) fn ticket(&self) -> u64 {
        let ticket = self.next_ticket.get() + 1;
        self.next_ticket.set(ticket);
        ticket
    }

    pub(crate) fn notifier(&self) -> Notifier {
        self.notifier.clone()
    }

    /// A responder for the response `shape` on connection `key`, its
    /// ticket, and the worker's side of the deferral. Allocates the claim
    /// the two sides share (the one allocation a deferral makes here).
    pub(crate) fn responder(&self, key: usize, shape: ResponseShape) -> (Responder, u64, Watch) {
        let ticket = self.ticket();
        let claim = Arc::new(Claim {
            state: AtomicU8::new(PENDING),
            close: AtomicBool::new(false),
        });
        let watch = Watch {
            claim: Arc::clone(&claim),
            observer: None,
        };
        let responder = Responder {
            claim,
            notifier: self.notifier.clone(),
            server_line: Arc::clone(&self.server_line),
            key,
            ticket,
            shape,
            window: self.stream_window,
            answered: false,
        };
        (responder, ticket, watch)
    }
}

/// The deferral is still open: neither side has claimed it.
const PENDING: u8 = 0;
/// The responder claimed it: its answer is on the way to the worker.
const ANSWERED: u8 = 1;
/// The worker claimed it: it answered `503` at the deadline, or the
/// connection closed. The responder's answer would go nowhere.
const ABANDONED: u8 = 2;

/// Who answers one deferred request: the [`Responder`] or the worker
/// (a deadline `503`, a closed connection). Exactly one side wins it, so
/// a responder can tell whether its answer counts.
#[derive(Debug)]
pub(crate) struct Claim {
    state: AtomicU8,
    /// The connection closes after this answer (its streamed request body
    /// failed): the answer must say `Connection: close`.
    close: AtomicBool,
}

impl Claim {
    /// Takes the deferral for `side`; `false` when the other side has it.
    fn settle(&self, side: u8) -> bool {
        // AcqRel: whatever a side did before it claimed is visible to the
        // side that reads the verdict.
        self.state
            .compare_exchange(PENDING, side, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The connection will close after this answer: say so in it.
    pub(crate) fn close_after_answer(&self) {
        self.close.store(true, Ordering::Release);
    }

    fn is_abandoned(&self) -> bool {
        self.state.load(Ordering::Acquire) == ABANDONED
    }
}

/// How a deferred response ended, as told to the observers that
/// middleware registers with [`Response::on_deferred_end`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeferredOutcome {
    /// The responder's answer was queued on the connection.
    Answered {
        /// Its status.
        status: StatusCode,
        /// Its body bytes ([`Response::body_len`]).
        body_len: usize,
    },
    /// No answer came by the deadline: keel answered `503 Service
    /// Unavailable` itself and closes the connection.
    TimedOut {
        /// Body bytes of keel's `503`.
        body_len: usize,
    },
    /// The connection closed before an answer was queued (the client left,
    /// or the server stopped).
    Closed,
}

impl DeferredOutcome {
    /// The status the client got: the answer's, `503` for a timeout, none
    /// when the connection closed first.
    pub fn status(self) -> Option<StatusCode> {
        match self {
            DeferredOutcome::Answered { status, .. } => Some(status),
            DeferredOutcome::TimedOut { .. } => Some(StatusCode::SERVICE_UNAVAILABLE),
            DeferredOutcome::Closed => None,
        }
    }

    /// Body bytes of the response the client got; none when it got none.
    pub fn body_len(self) -> Option<usize> {
        match self {
            DeferredOutcome::Answered { body_len, .. } | DeferredOutcome::TimedOut { body_len } => {
                Some(body_len)
            }
            DeferredOutcome::Closed => None,
        }
    }
}

/// A callback told how a deferred response ended.
type Observer = Box<dyn FnOnce(DeferredOutcome) + Send>;

/// The worker's side of one deferral: the claim it shares with the
/// [`Responder`], and who to tell how it ended. Dropped without an
/// outcome (the connection closed), it abandons the deferral, so that a
/// queued job for it is skipped, and tells its observers `Closed`.
pub(crate) struct Watch {
    claim: Arc<Claim>,
    observer: Option<Observer>,
}

impl Watch {
    /// Adds `observer`, told once how the deferral ended, after any added
    /// before it. Allocates its box (and one more for each after the first).
    pub(crate) fn observe(&mut self, observer: impl FnOnce(DeferredOutcome) + Send + 'static) {
        self.observer = Some(match self.observer.take() {
            None => Box::new(observer),
            Some(first) => Box::new(move |outcome| {
                first(outcome);
                observer(outcome);
            }),
        });
    }

    /// The claim, for a streamed request body whose failure must make the
    /// answer say `Connection: close` (see `Claim::close_after_answer`).
    pub(crate) fn claim(&self) -> Arc<Claim> {
        Arc::clone(&self.claim)
    }

    /// The worker gives up waiting: `true` when it may answer itself,
    /// `false` when the responder's answer is already on its way.
    pub(crate) fn abandon(&self) -> bool {
        self.claim.settle(ABANDONED)
    }

    /// Tells the observers how the deferral ended.
    pub(crate) fn finish(&mut self, outcome: DeferredOutcome) {
        if let Some(observer) = self.observer.take() {
            observer(outcome);
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.abandon();
        self.finish(DeferredOutcome::Closed);
    }
}

/// The right to answer one request later, from any thread.
///
/// Get one from [`Response::defer`]; call [`respond`](Responder::respond)
/// once, with the same response-writing API as a handler. Later pipelined
/// requests on the same connection wait until it has answered, so responses
/// still leave in request order. A responder dropped without answering sends
/// `500 Internal Server Error` (as does one whose `respond` closure panics).
///
/// # Abandoned deferrals
///
/// When the answer does not come by the deferred deadline, keel answers
/// `503` itself; when the connection closes, nobody is left to answer. Either
/// way the deferral is *abandoned*: [`is_abandoned`](Responder::is_abandoned)
/// turns `true` (a long job can stop early), a job queued with
/// [`Response::offload`] is skipped without running, and `respond` writes
/// nothing and returns `false`. The worker and the responder settle who
/// answers through one atomic claim, so exactly one of them does: when
/// `respond` returns `true` the client gets this answer, never a `503` as
/// well; when it returns `false` the client never sees it, and the work done
/// for it (a row written) is the app's to undo or to report.
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
///         let taken = responder.respond(|res| {
///             res.body(format!("hello {name}").as_bytes());
///         });
///         assert!(taken);
///     });
/// });
/// conn.send(b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n");
/// assert!(conn.settle(Duration::from_secs(5)));
/// assert!(conn.recv().ends_with(b"\r\n\r\nhello later"));
/// ```
pub struct Responder {
    claim: Arc<Claim>,
    notifier: Notifier,
    server_line: Arc<[u8]>,
    key: usize,
    ticket: u64,
    shape: ResponseShape,
    /// See [`Deferral::stream_window`].
    window: usize,
    answered: bool,
}

impl Responder {
    /// Writes the response with `write` and sends it to the connection.
    /// Returns whether the answer was taken: `false` when the deferral was
    /// [abandoned](Responder#abandoned-deferrals) (the client got keel's
    /// `503`, or its connection closed) before `write` returned; nothing is
    /// sent then, and `write` is not called if that was already so.
    ///
    /// Allocates the response's buffer (about 1 KiB to start).
    pub fn respond(mut self, write: impl FnOnce(&mut Response<'_>)) -> bool {
        if self.claim.is_abandoned() {
            self.answered = true;
            return false;
        }
        let mut bytes = BytesMut::with_capacity(1024);
        let mut large = Vec::new();
        let shape = self.shape();
        let mut res = Response::with_shape(&mut bytes, &mut large, shape, &self.server_line);
        write(&mut res);
        res.finish();
        let (status, keep_alive) = (res.status_code().as_u16(), res.keeps_alive());
        let body_len = res.body_len();
        self.answered = true;
        if !self.claim.settle(ANSWERED) {
            return false;
        }
        self.send(bytes, large, keep_alive, status, body_len, None);
        true
    }

    /// Answers with a streamed body: `head` sets the status and headers
    /// (it writes no body), the head goes out with
    /// `Transfer-Encoding: chunked`, and the returned [`BodyStream`] sends
    /// the body piece by piece, with backpressure. `None` when the
    /// deferral was [abandoned](Responder#abandoned-deferrals): nobody
    /// would read it.
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response};
    ///
    /// let mut conn = MemoryConn::new(|_: &Request<'_>, res: &mut Response<'_>| {
    ///     let responder = res.defer();
    ///     std::thread::spawn(move || {
    ///         let Some(mut body) = responder.stream(|res| {
    ///             res.header("Content-Type", "text/csv");
    ///         }) else {
    ///             return;
    ///         };
    ///         for row in 0..3 {
    ///             if body.send(format!("{row},row {row}\n").as_bytes()).is_err() {
    ///                 return; // the client left
    ///             }
    ///         }
    ///         let _ = body.finish();
    ///     });
    /// });
    /// conn.send(b"GET /export HTTP/1.1\r\nHost: a\r\n\r\n");
    /// assert!(conn.settle(std::time::Duration::from_secs(5)));
    /// let reply = conn.responses().unwrap();
    /// assert_eq!(reply[0].body, b"0,row 0\n1,row 1\n2,row 2\n");
    /// ```
    ///
    /// Allocates the head's buffer and the stream's queue.
    ///
    /// # Panics
    ///
    /// When `head` writes a body.
    pub fn stream(self, head: impl FnOnce(&mut Response<'_>)) -> Option<BodyStream> {
        self.start_stream(head, None)
    }

    /// As [`stream`](Responder::stream), with a declared `Content-Length`
    /// (see [`Response::stream_with_length`]).
    ///
    /// # Panics
    ///
    /// When `head` writes a body.
    pub fn stream_with_length(
        self,
        len: usize,
        head: impl FnOnce(&mut Response<'_>),
    ) -> Option<BodyStream> {
        self.start_stream(head, Some(len))
    }

    fn start_stream(
        mut self,
        head: impl FnOnce(&mut Response<'_>),
        length: Option<usize>,
    ) -> Option<BodyStream> {
        if self.claim.is_abandoned() {
            self.answered = true;
            return None;
        }
        let mut bytes = BytesMut::with_capacity(512);
        let mut large = Vec::new();
        let shape = self.shape();
        let mut res = Response::with_shape(&mut bytes, &mut large, shape, &self.server_line);
        head(&mut res);
        let framing = res.begin_stream(length);
        let (status, keep_alive) = (res.status_code().as_u16(), res.keeps_alive());
        self.answered = true;
        if !self.claim.settle(ANSWERED) {
            return None;
        }
        let shared = StreamShared::new(
            self.notifier.clone(),
            self.key,
            self.ticket,
            self.window,
            framing,
        );
        let stream = BodyStream::new(Arc::clone(&shared));
        self.send(bytes, large, keep_alive, status, 0, Some(shared));
        Some(stream)
    }

    /// The shape the request decided, closing when the worker asked.
    fn shape(&self) -> ResponseShape {
        ResponseShape {
            keep_alive: self.shape.keep_alive && !self.claim.close.load(Ordering::Acquire),
            ..self.shape
        }
    }

    /// Whether the deferral was [abandoned](Responder#abandoned-deferrals):
    /// keel answered `503` at the deadline or the connection closed, so no
    /// answer will reach the client. A long job checks it to stop early.
    /// One atomic load.
    pub fn is_abandoned(&self) -> bool {
        self.claim.is_abandoned()
    }

    fn send(
        &self,
        bytes: BytesMut,
        large: Vec<(usize, Segment)>,
        keep_alive: bool,
        status: u16,
        body_len: usize,
        stream: Option<Arc<StreamShared>>,
    ) {
        let completion = Completion {
            key: self.key,
            ticket: self.ticket,
            bytes,
            large,
            keep_alive,
            status,
            body_len,
            stream,
        };
        self.notifier.send(Message::Answer(completion));
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if self.answered || !self.claim.settle(ANSWERED) {
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
            .field(field!("Content-Type", "text/plain; charset=utf-8"))
            .body(b"Internal Server Error\n");
        let body_len = res.body_len();
        self.send(bytes, large, false, 500, body_len, None);
    }
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("ticket", &self.ticket)
            .finish()
    }
}
