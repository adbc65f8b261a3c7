//! A finding of the fuzz harness: when a streamed request body fails (bad
//! chunked framing, past its limit, its deadline), keel closes the
//! connection after the deferred answer, and that answer, written by a
//! `Responder`, must say so: `Connection: close` (RFC 9112 §9.6), as
//! keel's own error responses do, or a client that pipelined its next
//! request loses it without warning. The worker marks the deferral's claim
//! before the sink hears of the failure; the responder reads the mark.

use keel::body::{BodyError, BodySink, SinkWaker, Trailers};
use keel::testing::MemoryConn;
use keel::{Request, Responder, Response, Router};

/// Answers the body's error with its status, and nothing else.
struct Plain(Option<Responder>);

impl BodySink for Plain {
    fn data(&mut self, data: &[u8], _: &SinkWaker) -> usize {
        data.len()
    }

    fn end(&mut self, _: &Trailers<'_>) {
        if let Some(responder) = self.0.take() {
            responder.respond(|res| res.body(b"ok"));
        }
    }

    fn fail(&mut self, error: BodyError) {
        if let Some(responder) = self.0.take() {
            responder.respond(|res| res.status(error.status()).body(b"failed"));
        }
    }
}

#[test]
fn the_answer_to_a_failed_streamed_body_says_the_connection_closes() {
    let routes = Router::new()
        .put("/up", |_: &Request<'_>, res: &mut Response<'_>| {
            let responder = Some(res.defer());
            res.read_body(Plain(responder));
        })
        .stream_body()
        .build()
        .expect("routes");
    let mut conn = MemoryConn::new(routes);
    // A chunk size that is not hex, then a pipelined request.
    conn.send(
        b"PUT /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\nzz\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert!(conn.settle(std::time::Duration::from_secs(5)));
    let reply = String::from_utf8(conn.recv()).expect("text");
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
    assert!(conn.is_closed(), "the connection closes after the answer");
    assert!(
        reply.contains("\r\nConnection: close\r\n"),
        "closed without saying so:\n{reply}"
    );
}
