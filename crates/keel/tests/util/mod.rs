//! Shared helpers for the socket tests: a server on an ephemeral port, a raw
//! TCP client, and a small response reader that checks framing exactly.
#![allow(dead_code)]

pub mod memory;
#[cfg(feature = "tls")]
pub mod tls;
pub mod upload;

use keel::{Config, Handler, Request, Response, ServerHandle, StatusCode};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// keel's own test server (shut down when dropped), with raw-socket helpers.
pub struct TestServer {
    inner: keel::testing::TestServer,
}

impl TestServer {
    pub fn start(handler: impl Handler) -> TestServer {
        Self::with(handler, Config::default(), 1)
    }

    pub fn with(handler: impl Handler, config: Config, workers: usize) -> TestServer {
        TestServer {
            inner: keel::testing::TestServer::with_config(handler, config, workers),
        }
    }

    pub fn handle(&self) -> &ServerHandle {
        self.inner.handle()
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr()
    }

    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        stream
    }

    /// Sends `request` on a new connection and reads until the server closes.
    pub fn exchange(&self, request: &[u8]) -> Vec<u8> {
        let mut stream = self.connect();
        stream.write_all(request).unwrap();
        read_to_close(&mut stream)
    }
}

/// Reads until the peer closes; panics if that takes over 5 s.
pub fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return out,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "no close after {:?} ({e}); got {:?}",
                started.elapsed(),
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

/// Reads until what arrived ends with `end` (a `HEAD` answer has no body to
/// frame by, so a known last response marks the end); panics if the peer
/// closes first, or after 5 s.
pub fn read_until_ending(stream: &mut TcpStream, end: &[u8]) -> Vec<u8> {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while !got.ends_with(end) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no {:?} after 5 s; got {:?}",
            String::from_utf8_lossy(end),
            String::from_utf8_lossy(&got)
        );
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed; got {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// Whether the server closed the connection: a read sees end of stream.
pub fn is_closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Ok(0))
        || matches!(stream.read(&mut byte), Err(e) if e.kind() == ErrorKind::ConnectionReset)
}

pub type Resp = keel::testing::TestResponse;

/// One response from the start of `bytes` and the bytes it took; `None`
/// while incomplete. Panics on bytes that are not a response.
pub fn parse_response(
    bytes: &[u8],
    head_request: bool,
    until_close: bool,
) -> Option<(Resp, usize)> {
    match keel::testing::parse_response(bytes, head_request, until_close) {
        Ok(parsed) => Some(parsed),
        Err(keel::testing::ResponseParseError::Incomplete) => None,
        Err(e) => panic!("{e:?}: {:?}", String::from_utf8_lossy(bytes)),
    }
}

/// Every response in `bytes`, which must hold whole responses only.
pub fn parse_all(bytes: &[u8]) -> Vec<Resp> {
    keel::testing::parse_responses(bytes)
        .unwrap_or_else(|e| panic!("{e:?}: {:?}", String::from_utf8_lossy(bytes)))
}

/// Reads exactly `count` responses from a keep-alive connection.
pub fn read_responses(stream: &mut impl Read, count: usize) -> Vec<Resp> {
    let mut got = Vec::new();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    while got.len() < count {
        while let Some((resp, used)) = parse_response(&buf, false, false) {
            got.push(resp);
            buf.drain(..used);
            if got.len() == count {
                assert!(
                    buf.is_empty(),
                    "unexpected extra bytes: {:?}",
                    String::from_utf8_lossy(&buf)
                );
                return got;
            }
        }
        let n = stream.read(&mut chunk).expect("read a response");
        assert!(n > 0, "closed after {} of {count} responses", got.len());
        buf.extend_from_slice(&chunk[..n]);
    }
    got
}

/// The handler most tests use.
///
/// - `/plaintext`: `Hello, World!`
/// - `/echo`: the body, with the request's content type
/// - `/panic`: panics
/// - `/n/<k>`: answers `k` (to check order)
/// - `/chunked`: a streamed body in three chunks
/// - `/big/<n>`: `n` bytes as a shared buffer (sent with writev)
/// - `/info`: method, path, decoded path, query param `q`, version, host, peer
/// - `/sleep/<ms>`: blocks the worker for `ms` milliseconds, then answers
/// - `/close`: answers with `Connection: close`
pub fn app(req: &Request<'_>, res: &mut Response<'_>) {
    let path = req.path();
    match path {
        "/plaintext" => res
            .header("Content-Type", "text/plain")
            .body(b"Hello, World!"),
        "/echo" => {
            let content_type = req
                .header("content-type")
                .unwrap_or(b"application/octet-stream");
            res.header("Content-Type", content_type).body(req.body());
        }
        "/panic" => panic!("handler panics on purpose"),
        "/chunked" => {
            res.header("Content-Type", "text/plain").chunked();
            res.write(b"one,").write(b"two,").write(b"three");
        }
        "/info" => {
            let text = format!(
                "{} {} {} q={:?} {:?} host={:?} peer_ip={}",
                req.method(),
                req.path(),
                req.path_decoded().unwrap_or_default(),
                req.query_param("q"),
                req.version(),
                req.header_str("host"),
                req.peer_addr().ip(),
            );
            res.body(text.as_bytes());
        }
        "/close" => {
            res.close().body(b"bye");
        }
        "/worker" => {
            let name = std::thread::current().name().unwrap_or("?").to_owned();
            res.body(name.as_bytes());
        }
        _ if path.starts_with("/n/") => res.body(&path.as_bytes()[3..]),
        _ if path.starts_with("/big/") => {
            let n: usize = path[5..].parse().unwrap();
            let body: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            res.body_bytes(keel::Bytes::from(body));
        }
        _ if path.starts_with("/sleep/") => {
            std::thread::sleep(Duration::from_millis(path[7..].parse().unwrap()));
            res.body(b"slept");
        }
        _ => {
            res.status(StatusCode::NOT_FOUND).body(b"not found");
        }
    }
}

pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

/// Sends `head`, which announces a large body, then up to 1 MiB of that
/// body while the server may already have answered and closed (a refusal
/// from the head), and returns the first answer as text: it must reach a
/// client that is still sending.
pub fn answer_to_an_upload(server: &TestServer, head: &[u8]) -> String {
    let mut stream = server.connect();
    stream.write_all(head).unwrap();
    let junk = vec![b'x'; 64 * 1024];
    for _ in 0..16 {
        if stream.write_all(&junk).is_err() {
            break;
        }
    }
    let mut reply = vec![0u8; 4096];
    let n = stream.read(&mut reply).unwrap();
    String::from_utf8_lossy(&reply[..n]).into_owned()
}

/// An access log's sink the test reads back.
#[derive(Clone, Default)]
pub struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink {
    /// Everything written so far, taken out.
    pub fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}
