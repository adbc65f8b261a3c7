//! The streaming contract of [`crate::streams`] as a hyper 1.x service: the
//! baseline of `load/streams.sh`.
//!
//! - `/upload` reads hyper's `Incoming` body frame by frame into SHA-256.
//! - `/download` answers with http-body-util's `Channel` body (a tokio
//!   bounded mpsc of [`DOWNLOAD_QUEUE`] frames, which is what a
//!   `StreamBody` over a tokio mpsc amounts to, without another crate),
//!   filled by a task of its own with [`CHUNK`]-sized clones of one
//!   pre-filled `Bytes`: every chunk pays for the hand-off between tasks.
//! - `/events`: each client gets a `Channel` of [`EVENT_QUEUE`] events; one
//!   broadcaster task sends every event to every client in turn, waiting
//!   while a client's queue is full. No client misses an event and the rate
//!   is that of the slowest client (a benchmark's choice: a client that stops
//!   reading without closing stalls everyone).
//!
//! Connections use hyper's defaults for writes (vectored writes, so a 64 KiB
//! chunk is not copied into the head buffer) and `TCP_NODELAY`.

use crate::hyper_app;
use crate::streams::{self, CHUNK, DOWNLOAD_QUEUE, EVENT_QUEUE};
use http_body_util::channel::{Channel, Sender};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, SERVER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// New SSE clients waiting for the broadcaster to take them in.
const SUBSCRIBE_QUEUE: usize = 1024;

type Body = Either<Full<Bytes>, Channel<Bytes>>;

/// What every connection shares: the download chunk and the way in to the
/// broadcaster.
#[derive(Clone)]
struct Streams {
    chunk: Bytes,
    subscribe: mpsc::Sender<Sender<Bytes>>,
}

fn response(status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(SERVER, HeaderValue::from_static("hyper"));
    res
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    response(
        status,
        "text/plain",
        Either::Left(Full::new(Bytes::from_static(body.as_bytes()))),
    )
}

/// The `bytes=N` of a query string.
fn requested_bytes(query: Option<&str>) -> Option<u64> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("bytes="))?
        .parse()
        .ok()
}

impl Streams {
    async fn handle(self, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        let res = match (req.method(), req.uri().path()) {
            (&Method::POST, "/upload") => upload(req.into_body()).await,
            (&Method::POST, "/discard") => discard(req.into_body()).await,
            (&Method::GET, "/download") => match requested_bytes(req.uri().query()) {
                Some(n) => self.download(n),
                None => text(StatusCode::BAD_REQUEST, "want /download?bytes=N\n"),
            },
            (&Method::GET, "/events") => self.events().await,
            (_, path @ ("/upload" | "/discard" | "/download" | "/events")) => {
                let allow = if matches!(path, "/upload" | "/discard") {
                    "POST"
                } else {
                    "GET"
                };
                let mut res = text(StatusCode::METHOD_NOT_ALLOWED, "");
                res.headers_mut()
                    .insert(ALLOW, HeaderValue::from_static(allow));
                res
            }
            _ => text(StatusCode::NOT_FOUND, "Not Found\n"),
        };
        Ok(res)
    }

    fn download(&self, bytes: u64) -> Response<Body> {
        let (mut tx, body) = Channel::new(DOWNLOAD_QUEUE);
        let chunk = self.chunk.clone();
        tokio::spawn(async move {
            let mut left = bytes;
            while left > 0 {
                let len = usize::try_from(left).map_or(CHUNK, |left| left.min(CHUNK));
                // The connection is gone: stop producing.
                if tx.send_data(chunk.slice(..len)).await.is_err() {
                    return;
                }
                left -= len as u64;
            }
        });
        let mut res = response(
            StatusCode::OK,
            "application/octet-stream",
            Either::Right(body),
        );
        res.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(bytes));
        res
    }

    async fn events(&self) -> Response<Body> {
        let (tx, body) = Channel::new(EVENT_QUEUE);
        if self.subscribe.send(tx).await.is_err() {
            return text(StatusCode::SERVICE_UNAVAILABLE, "no broadcaster\n");
        }
        let mut res = response(StatusCode::OK, "text/event-stream", Either::Right(body));
        res.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        res
    }
}

/// Hashes the body as it arrives; answers the digest, or `400` when the body
/// breaks off (the client is gone or framed it wrong).
async fn upload(mut body: Incoming) -> Response<Body> {
    let mut hasher = Sha256::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    hasher.update(data);
                }
            }
            Err(_) => return text(StatusCode::BAD_REQUEST, "the body broke off\n"),
        }
    }
    let digest = streams::hex(&hasher.finalize());
    response(
        StatusCode::OK,
        "text/plain",
        Either::Left(Full::new(Bytes::from(digest))),
    )
}

/// Reads the body frame by frame, keeping nothing, and answers its length:
/// the upload without the hash, so what is measured is the server's own
/// cost of receiving.
async fn discard(mut body: Incoming) -> Response<Body> {
    let mut len = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => len += frame.data_ref().map_or(0, |d| d.len() as u64),
            Err(_) => return text(StatusCode::BAD_REQUEST, "the body broke off\n"),
        }
    }
    response(
        StatusCode::OK,
        "text/plain",
        Either::Left(Full::new(Bytes::from(len.to_string()))),
    )
}

/// Sends event 1, 2, ... to every subscribed client, each event to all of
/// them before the next; drops a client whose connection is gone. Sleeps
/// while nobody listens.
async fn broadcast(mut subscribers: mpsc::Receiver<Sender<Bytes>>) {
    let mut clients: Vec<Sender<Bytes>> = Vec::new();
    let mut counter = 0u64;
    loop {
        if clients.is_empty() {
            match subscribers.recv().await {
                Some(client) => clients.push(client),
                None => return,
            }
        }
        while let Ok(client) = subscribers.try_recv() {
            clients.push(client);
        }
        counter += 1;
        // One allocation per event, shared by every client's frame.
        let event = Bytes::from(streams::event(counter));
        let mut live = 0;
        for i in 0..clients.len() {
            if clients[i].send_data(event.clone()).await.is_ok() {
                clients.swap(live, i);
                live += 1;
            }
        }
        clients.truncate(live);
    }
}

/// Serves the streaming contract on every connection `listener` accepts,
/// with one broadcaster task for `/events`.
pub async fn accept_loop(listener: TcpListener) {
    let (subscribe, subscribers) = mpsc::channel(SUBSCRIBE_QUEUE);
    tokio::spawn(broadcast(subscribers));
    let streams = Streams {
        chunk: Bytes::from(streams::pattern(CHUNK)),
        subscribe,
    };
    hyper_app::accept_each(listener, move |stream: TcpStream| {
        let streams = streams.clone();
        async move {
            let mut builder = http1::Builder::new();
            builder.keep_alive(true);
            let service = service_fn(move |req| streams.clone().handle(req));
            // A peer that resets or sends garbage ends its connection.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::requested_bytes;

    #[test]
    fn reads_the_requested_size() {
        assert_eq!(requested_bytes(Some("bytes=1048576")), Some(1_048_576));
        assert_eq!(requested_bytes(Some("x=1&bytes=7")), Some(7));
        assert_eq!(requested_bytes(Some("bytes=-1")), None);
        assert_eq!(requested_bytes(Some("bytes=")), None);
        assert_eq!(requested_bytes(None), None);
    }
}
