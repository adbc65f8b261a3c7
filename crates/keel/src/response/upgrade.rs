//! Answering `101 Switching Protocols` and keeping the callback the
//! connection is handed to once that answer is written.

use super::{Framing, Response, Stage};
use crate::upgrade::{OnUpgrade, UpgradeError, Upgraded};
use crate::{Request, StatusCode};

impl<'a> Response<'a> {
    /// Lets this response switch protocols for `request` (the handler's
    /// own call, not a head-time hook's nor a responder's).
    pub(crate) fn allow_upgrade(&mut self, request: &'a Request<'a>) {
        self.upgrade_request = Some(request);
    }

    /// Switches the connection to `protocol`: writes `101 Switching
    /// Protocols` with `Connection: upgrade`, `Upgrade: <protocol>` and the
    /// header lines added before this call (`Sec-WebSocket-Accept`, say),
    /// no body; this response is then complete. Once the `101` is written
    /// (after the responses to earlier pipelined requests), the connection
    /// leaves keel: the worker stops watching it, and calls `on_upgrade`
    /// with it as a blocking [`Upgraded`] stream, whose reads start with
    /// the bytes the client sent right after this request.
    ///
    /// `on_upgrade` runs **on the worker thread**: hand the stream to a
    /// thread of your own (or a pool) at once and return, as every other
    /// connection of that worker waits meanwhile. A panic in it is
    /// contained (counted in [`Stats::handler_panics`](crate::Stats)) and
    /// closes that connection alone.
    ///
    /// A request with a body may upgrade: keel reads the whole body under
    /// HTTP framing first (the handler sees it, as always), and only the
    /// bytes after it belong to the new protocol. With `Expect:
    /// 100-continue`, the `100` goes out before the `101`, as RFC 9110
    /// §7.8 asks.
    ///
    /// Costs one allocation (the callback's box), and at hand-over one copy
    /// of the bytes read ahead.
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response, StatusCode, Upgraded};
    /// use std::io::{Read, Write};
    ///
    /// /// Sends back what it reads, on its own thread.
    /// fn echo(mut stream: Upgraded) {
    ///     std::thread::spawn(move || {
    ///         let mut buf = [0; 4096];
    ///         while let Ok(n @ 1..) = stream.read(&mut buf) {
    ///             if stream.write_all(&buf[..n]).is_err() {
    ///                 break;
    ///             }
    ///         }
    ///     });
    /// }
    ///
    /// let mut conn = MemoryConn::new(|_: &Request<'_>, res: &mut Response<'_>| {
    ///     if res.upgrade("echo", echo).is_err() {
    ///         res.status(StatusCode::UPGRADE_REQUIRED)
    ///             .header("Upgrade", "echo")
    ///             .body(b"this resource speaks echo only\n");
    ///     }
    /// });
    /// conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nhello");
    /// let reply = String::from_utf8(conn.recv()).unwrap();
    /// assert!(reply.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    /// assert!(reply.contains("\r\nConnection: upgrade\r\nUpgrade: echo\r\n"));
    /// assert!(reply.ends_with("\r\n\r\n"), "no body");
    /// // What the client sent after its request is the new protocol's.
    /// assert_eq!(&conn.take_upgrade().unwrap()[..], b"hello");
    ///
    /// // A request that did not ask is answered as usual, and stays open.
    /// let mut conn = MemoryConn::new(|_: &Request<'_>, res: &mut Response<'_>| {
    ///     assert!(res.upgrade("echo", |_| {}).is_err());
    ///     res.status(StatusCode::UPGRADE_REQUIRED).body(b"");
    /// });
    /// conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    /// assert!(conn.recv().starts_with(b"HTTP/1.1 426 Upgrade Required\r\n"));
    /// assert!(!conn.is_closed() && conn.take_upgrade().is_none());
    /// ```
    ///
    /// # Errors
    ///
    /// [`UpgradeError`], and nothing is written: the request did not ask
    /// to upgrade (or is HTTP/1.0), did not offer `protocol` (compared
    /// ignoring ASCII case), or this response cannot hand its connection
    /// over (see [`UpgradeError::Unavailable`]).
    ///
    /// # Panics
    ///
    /// When the body has begun or the response was deferred or upgraded.
    pub fn upgrade(
        &mut self,
        protocol: &str,
        on_upgrade: impl FnOnce(Upgraded) + Send + 'static,
    ) -> Result<(), UpgradeError> {
        assert!(
            self.stage == Stage::Headers
                && !self.extras.as_ref().is_some_and(|e| e.on_upgrade.is_some()),
            "upgrade() after the response body began"
        );
        let request = self.upgrade_request.ok_or(UpgradeError::Unavailable)?;
        if !request.is_upgrade() {
            return Err(UpgradeError::NotRequested);
        }
        if !request
            .upgrade_protocols()
            .any(|offered| offered.eq_ignore_ascii_case(protocol))
        {
            return Err(UpgradeError::NotOffered);
        }
        if !self.keep_alive {
            return Err(UpgradeError::Unavailable);
        }
        // Not through `status`, which refuses a 1xx from a handler.
        if self.status_line_len != 0 {
            self.rewrite_status_line(StatusCode::SWITCHING_PROTOCOLS);
        }
        self.status = StatusCode::SWITCHING_PROTOCOLS;
        self.open_head();
        // The server's own lines, among the handler's: `header` keeps
        // `Connection` to the server. `protocol` equals an element of a
        // parsed field value, so it holds no CR, LF or comma.
        self.out
            .extend_from_slice(b"Connection: upgrade\r\nUpgrade: ");
        self.out.extend_from_slice(protocol.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        // A 1xx status: the head carries no length and no body follows.
        self.write_head(Framing::Length(0));
        self.stage = Stage::Done;
        self.extras().on_upgrade = Some(Box::new(on_upgrade));
        Ok(())
    }

    /// The callback of a response that switched protocols.
    pub(crate) fn take_upgrade(&mut self) -> Option<OnUpgrade> {
        self.extras.as_mut()?.on_upgrade.take()
    }
}
