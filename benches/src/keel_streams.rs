//! The streaming contract of [`crate::streams`] on keel: what
//! `load/streams.sh` compares with [`crate::hyper_streams`].
//!
//! - `/upload` streams its body into a [`BodySink`] on the worker that
//!   hashes each slice as it arrives (hyper: its `Incoming` body, frame by
//!   frame, in the connection's task).
//! - `/download` answers with a declared length and [`CHUNK`]-sized slices
//!   of one pre-filled buffer, sent without a copy (`send_bytes`), produced
//!   as [`DownloadFrom`] says: by a thread of its own through a
//!   [`keel::BodyStream`], every chunk paying for the hand-off between
//!   threads (the default); or on the worker by a [`keel::BodySource`],
//!   with no hand-off, as hyper's producer task shares its connection's
//!   thread.
//! - `/events`: each client's stream goes to one broadcaster thread, which
//!   sends every event to every client in turn, waiting while a client's
//!   stream is full (lockstep, as hyper's broadcaster).

use crate::streams::{self, CHUNK};
use keel::body::{BodyError, BodySink, SinkWaker, Trailers};
use keel::{Bytes, Pull, Request, Responder, Response, Router, Routes, StatusCode};
use sha2::{Digest, Sha256};

/// New SSE clients waiting for the broadcaster to take them in.
const SUBSCRIBE_QUEUE: usize = 1024;

/// Reads an upload as it arrives and answers its SHA-256 in hex (`/upload`),
/// or, without a hasher, its length (`/discard`: the upload without the
/// hash's cost).
struct Received {
    hasher: Option<Sha256>,
    len: u64,
    responder: Option<Responder>,
}

impl BodySink for Received {
    fn data(&mut self, data: &[u8], _: &SinkWaker) -> usize {
        if let Some(hasher) = &mut self.hasher {
            hasher.update(data);
        }
        self.len += data.len() as u64;
        data.len()
    }

    fn end(&mut self, _: &Trailers<'_>) {
        let answer = match self.hasher.take() {
            Some(hasher) => streams::hex(&hasher.finalize()),
            None => self.len.to_string(),
        };
        if let Some(responder) = self.responder.take() {
            responder.respond(|res| {
                res.header("Content-Type", "text/plain")
                    .body(answer.as_bytes());
            });
        }
    }

    fn fail(&mut self, error: BodyError) {
        if let Some(responder) = self.responder.take() {
            responder.respond(|res| res.status(error.status()).body(b""));
        }
    }
}

/// A handler that reads the upload into a [`Received`], hashing or not.
fn receive(hash: bool) -> impl Fn(&Request<'_>, &mut Response<'_>) + Send + Sync + 'static {
    move |_: &Request<'_>, res: &mut Response<'_>| {
        let responder = Some(res.defer());
        res.read_body(Received {
            hasher: hash.then(Sha256::new),
            len: 0,
            responder,
        });
    }
}

/// Where `/download`'s chunks are produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownloadFrom {
    /// A thread of its own, through a [`keel::BodyStream`].
    Thread,
    /// The worker, by a [`keel::BodySource`].
    Worker,
}

/// The routes, and the broadcaster thread behind `/events`.
pub fn routes(download_from: DownloadFrom) -> Routes {
    let chunk = Bytes::from(streams::pattern(CHUNK));
    let (subscribe, subscribers) = crossbeam_channel::bounded(SUBSCRIBE_QUEUE);
    std::thread::spawn(move || broadcast(subscribers));
    Router::new()
        .post("/upload", receive(true))
        .stream_body()
        .post("/discard", receive(false))
        .stream_body()
        .get(
            "/download",
            move |req: &Request<'_>, res: &mut Response<'_>| {
                let Some(total) = req
                    .query_param("bytes")
                    .and_then(|n| n.parse::<usize>().ok())
                else {
                    return res
                        .status(StatusCode::BAD_REQUEST)
                        .body(b"want /download?bytes=N\n");
                };
                // `piece=N`: pieces of N bytes (at most CHUNK), copied when
                // under 4 KiB, to show what each piece costs.
                let piece = req
                    .query_param("piece")
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|n| (1..=CHUNK).contains(n))
                    .unwrap_or(CHUNK);
                res.header("Content-Type", "application/octet-stream");
                let chunk = chunk.clone();
                if download_from == DownloadFrom::Worker {
                    let mut left = total;
                    return res.stream_from_with_length(total, move |out: &mut Pull<'_>| {
                        while left > 0 && out.room() > 0 {
                            let n = left.min(piece);
                            let _ = out.send_bytes(chunk.slice(..n));
                            left -= n;
                        }
                        if left == 0 {
                            let _ = out.finish();
                        }
                    });
                }
                let mut body = res.stream_with_length(total);
                std::thread::spawn(move || {
                    let mut left = total;
                    while left > 0 {
                        let n = left.min(piece);
                        if body.send_bytes(chunk.slice(..n)).is_err() {
                            return; // the client left
                        }
                        left -= n;
                    }
                    let _ = body.finish();
                });
            },
        )
        .get("/events", move |_: &Request<'_>, res: &mut Response<'_>| {
            let events = res.header("Content-Type", "text/event-stream").stream();
            // A full queue of newcomers: the stream is dropped, which
            // closes the connection.
            let _ = subscribe.try_send(events);
        })
        .build()
        .expect("the routes are valid")
}

/// Sends event 1, 2, ... to every subscribed client, each event to all of
/// them before the next; drops a client whose connection is gone. Waits
/// while nobody listens.
fn broadcast(subscribers: crossbeam_channel::Receiver<keel::BodyStream>) {
    let mut clients = Vec::new();
    let mut counter = 0u64;
    loop {
        if clients.is_empty() {
            match subscribers.recv() {
                Ok(client) => clients.push(client),
                Err(_) => return,
            }
        }
        clients.extend(subscribers.try_iter());
        counter += 1;
        let event = streams::event(counter);
        clients.retain_mut(|client| client.send(event.as_bytes()).is_ok());
    }
}
