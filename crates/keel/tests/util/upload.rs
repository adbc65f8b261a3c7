//! Uploads generated on the fly (never stored) and the sinks that check
//! them on the server: for the streamed-body tests.

use keel::body::{BodyError, BodySink, SinkWaker, Trailers};
use keel::Responder;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

/// Body bytes sent per write.
pub const PIECE: usize = 64 * 1024;

/// The `index`th piece of a generated body: cheap to make, different from
/// its neighbours, the same on both sides.
pub fn piece(index: u64, buf: &mut [u8; PIECE]) {
    for (i, word) in buf.chunks_exact_mut(8).enumerate() {
        word.copy_from_slice(&(index.wrapping_mul(0x9E37_79B9) ^ i as u64).to_le_bytes());
    }
}

/// Writes `len` generated body bytes to `stream` (as chunks when
/// `chunked`, without the last chunk); returns their SHA-256, in hex.
pub fn send_body(stream: &mut TcpStream, len: u64, chunked: bool) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = Box::new([0u8; PIECE]);
    let mut sent = 0u64;
    let mut index = 0;
    while sent < len {
        piece(index, &mut buf);
        let n = (len - sent).min(PIECE as u64) as usize;
        if chunked {
            stream.write_all(format!("{n:x}\r\n").as_bytes())?;
        }
        stream.write_all(&buf[..n])?;
        if chunked {
            stream.write_all(b"\r\n")?;
        }
        hasher.update(&buf[..n]);
        sent += n as u64;
        index += 1;
    }
    Ok(hex(&hasher.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How a sink's body ended, as the tests see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    Ended { bytes: u64, trailers: String },
    Failed(BodyError),
}

/// Every body end the sinks saw, in order.
pub type Log = Arc<Mutex<Vec<Seen>>>;

/// A sink on the worker that hashes the body and answers
/// `<bytes> <sha256>` (and `; <trailer>=<value>` per trailer) at its end,
/// or the error's status when it fails.
pub struct HashSink {
    hasher: Sha256,
    bytes: u64,
    responder: Option<Responder>,
    log: Log,
}

impl HashSink {
    pub fn new(responder: Responder, log: &Log) -> Self {
        HashSink {
            hasher: Sha256::new(),
            bytes: 0,
            responder: Some(responder),
            log: Arc::clone(log),
        }
    }
}

impl BodySink for HashSink {
    fn data(&mut self, data: &[u8], _: &SinkWaker) -> usize {
        self.hasher.update(data);
        self.bytes += data.len() as u64;
        data.len()
    }

    fn end(&mut self, trailers: &Trailers<'_>) {
        let trailers: String = trailers
            .iter()
            .map(|(name, value)| format!("; {name}={}", String::from_utf8_lossy(value)))
            .collect();
        let digest = hex(&std::mem::take(&mut self.hasher).finalize());
        let answer = format!("{} {digest}{trailers}", self.bytes);
        self.log.lock().unwrap().push(Seen::Ended {
            bytes: self.bytes,
            trailers,
        });
        if let Some(responder) = self.responder.take() {
            responder.respond(|res| res.body(answer.as_bytes()));
        }
    }

    fn fail(&mut self, error: BodyError) {
        self.log.lock().unwrap().push(Seen::Failed(error));
        if let Some(responder) = self.responder.take() {
            responder.respond(|res| {
                res.status(error.status())
                    .body(error.to_string().as_bytes())
            });
        }
    }
}
