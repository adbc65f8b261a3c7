//! One in-memory connection per server, kept open across requests: the
//! request handling work alone, without sockets or an event loop's wake-ups.
//!
//! keel goes through [`keel::testing::MemoryConn`] (the connection state
//! machine its workers run); hyper through `http1::Builder::serve_connection`
//! over a `tokio::io::duplex` pipe on a `current_thread` runtime. Each
//! [`request`](KeelMem::request) sends one request and takes back exactly one
//! complete response.

use crate::{hyper_app, keel_app, wire};
use keel::testing::MemoryConn;
use keel::Handler;
use std::future::Future;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::runtime::Runtime;

/// keel's connection state machine, in memory.
pub struct KeelMem<H> {
    conn: MemoryConn<H>,
    buf: Vec<u8>,
}

/// A keel in-memory connection serving the `hello` handler.
pub fn keel() -> KeelMem<impl Handler> {
    keel_with(keel_app::hello)
}

/// A keel in-memory connection serving `handler`.
pub fn keel_with<H: Handler>(handler: H) -> KeelMem<H> {
    KeelMem {
        conn: MemoryConn::new(handler),
        buf: Vec::with_capacity(8 * 1024),
    }
}

impl<H: Handler> KeelMem<H> {
    /// Sends `request` and returns the length of the one response it got.
    ///
    /// # Panics
    ///
    /// When the answer is not exactly one complete response.
    #[inline]
    pub fn request(&mut self, request: &[u8]) -> usize {
        self.request_with(request, wire::response_len)
    }

    /// [`request`](KeelMem::request), with `framing` telling the length of
    /// a complete response ([`wire::framed_len`] for a chunked one).
    ///
    /// # Panics
    ///
    /// As [`request`](KeelMem::request).
    #[inline]
    pub fn request_with(
        &mut self,
        request: &[u8],
        framing: impl Fn(&[u8]) -> Option<usize>,
    ) -> usize {
        self.conn.send(request);
        self.buf.clear();
        self.conn.recv_into(&mut self.buf);
        let len = framing(&self.buf).expect("a complete response");
        assert_eq!(len, self.buf.len(), "exactly one response");
        len
    }

    /// Sends `batch` (requests pipelined in one write) and returns the
    /// length of all `count` responses it got.
    ///
    /// # Panics
    ///
    /// When the answer is not exactly `count` complete responses.
    #[inline]
    pub fn pipelined(&mut self, batch: &[u8], count: usize) -> usize {
        self.conn.send(batch);
        self.buf.clear();
        self.conn.recv_into(&mut self.buf);
        let mut at = 0;
        for _ in 0..count {
            at += wire::response_len(&self.buf[at..]).expect("a complete response");
        }
        assert_eq!(at, self.buf.len(), "exactly {count} responses");
        at
    }

    /// The last response.
    pub fn last_response(&self) -> &[u8] {
        &self.buf
    }

    /// Sends `request` and returns a copy of its response.
    pub fn request_and_keep(&mut self, request: &[u8]) -> Vec<u8> {
        self.request(request);
        self.buf.clone()
    }
}

/// hyper's HTTP/1 connection over an in-memory pipe.
pub struct HyperMem {
    runtime: Runtime,
    client: DuplexStream,
    buf: Vec<u8>,
}

/// A hyper in-memory connection serving the `hello` service.
///
/// # Panics
///
/// When the runtime cannot be built.
pub fn hyper() -> HyperMem {
    hyper_with(hyper_app::serve_connection)
}

/// A hyper in-memory connection served by `serve`, given the server's end
/// of the pipe (a function like [`hyper_app::serve_connection`]).
///
/// # Panics
///
/// When the runtime cannot be built.
pub fn hyper_with<F, Fut>(serve: F) -> HyperMem
where
    F: FnOnce(DuplexStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current_thread runtime");
    let (client, server) = tokio::io::duplex(64 * 1024);
    runtime.spawn(serve(server));
    HyperMem {
        runtime,
        client,
        buf: Vec::with_capacity(8 * 1024),
    }
}

impl HyperMem {
    /// Sends `request` and returns the length of the one response it got.
    ///
    /// # Panics
    ///
    /// When the pipe breaks or the answer is not exactly one complete response.
    #[inline]
    pub fn request(&mut self, request: &[u8]) -> usize {
        self.request_with(request, wire::response_len)
    }

    /// [`request`](HyperMem::request), with `framing` telling the length
    /// of a complete response ([`wire::framed_len`] for a chunked one).
    ///
    /// # Panics
    ///
    /// As [`request`](HyperMem::request).
    #[inline]
    pub fn request_with(
        &mut self,
        request: &[u8],
        framing: impl Fn(&[u8]) -> Option<usize>,
    ) -> usize {
        let HyperMem {
            runtime,
            client,
            buf,
        } = self;
        runtime.block_on(async {
            client.write_all(request).await.expect("pipe open");
            buf.clear();
            loop {
                if let Some(len) = framing(buf) {
                    assert_eq!(len, buf.len(), "exactly one response");
                    return len;
                }
                let n = client.read_buf(buf).await.expect("pipe open");
                assert!(n > 0, "hyper closed the connection");
            }
        })
    }

    /// The last response.
    pub fn last_response(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(response: &[u8]) -> &[u8] {
        let at = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        &response[at..]
    }

    #[test]
    fn both_answer_the_same() {
        let mut keel = keel();
        let mut hyper = hyper();
        for _ in 0..3 {
            keel.request(wire::PLAINTEXT);
            hyper.request(wire::PLAINTEXT);
            assert_eq!(body(keel.last_response()), b"Hello, World!");
            assert_eq!(body(hyper.last_response()), b"Hello, World!");
            keel.request(wire::JSON);
            hyper.request(wire::JSON);
            assert_eq!(
                body(keel.last_response()),
                br#"{"message":"Hello, World!"}"#
            );
            assert_eq!(
                body(hyper.last_response()),
                br#"{"message":"Hello, World!"}"#
            );
        }
        let echo = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/x-test\r\nContent-Length: 3\r\n\r\nabc";
        keel.request(echo);
        hyper.request(echo);
        for response in [keel.last_response(), hyper.last_response()] {
            let text = String::from_utf8_lossy(response).to_ascii_lowercase();
            assert!(text.contains("content-type: text/x-test\r\n"), "{text}");
            assert!(text.ends_with("\r\n\r\nabc"), "{text}");
        }
        let large = b"GET /large HTTP/1.1\r\nHost: x\r\n\r\n";
        keel.request(large);
        hyper.request(large);
        for response in [keel.last_response(), hyper.last_response()] {
            assert_eq!(body(response), &hello::large_body()[..]);
            assert_eq!(body(response).len(), hello::LARGE_LEN);
        }
        let missing = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
        keel.request(missing);
        hyper.request(missing);
        assert!(keel.last_response().starts_with(b"HTTP/1.1 404"));
        assert!(hyper.last_response().starts_with(b"HTTP/1.1 404"));
    }
}
