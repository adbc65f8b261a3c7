//! The hyper side: the `hello` contract as a hyper 1.x service, and the
//! connection setup hyper's docs give for a fast HTTP/1 server.
//!
//! Tuning, all from hyper's own documentation, none of it a handicap:
//! HTTP/1 only (no version sniffing), keep-alive on, `pipeline_flush(true)`
//! (one flush for a pipelined batch), `writev(false)` (hyper copies each small
//! body into its head buffer and makes one plain write, instead of a `writev`
//! of head and body: every body here is tiny, and in a wrk run on loopback it
//! was as fast or faster), `TCP_NODELAY` on every accepted socket,
//! bodies as `Full<Bytes>` (static bytes need no copy, `Content-Length` is
//! known), hyper's own cached `Date` header, no timer (so no per-request
//! header-read deadline to arm: cheaper than keel, which runs its deadlines).
//! The response carries the same header fields as keel's: `Content-Type`,
//! `Content-Length`, `Date` and `Server`.

use crate::contract::{self, Route, BACKLOG, MAX_BODY};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE, SERVER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

pub(crate) fn response(
    status: StatusCode,
    content_type: Option<HeaderValue>,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    if let Some(content_type) = content_type {
        headers.insert(CONTENT_TYPE, content_type);
    }
    headers.insert(SERVER, HeaderValue::from_static("hyper"));
    res
}

/// The `hello` contract: what `examples/hello`'s handler answers, as a hyper service.
///
/// # Errors
///
/// Never: every failure is a response.
pub async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let res = match contract::route(req.method().as_str(), req.uri().path()) {
        Route::Plaintext => response(
            StatusCode::OK,
            Some(HeaderValue::from_static("text/plain")),
            Bytes::from_static(contract::PLAINTEXT),
        ),
        Route::Json => match contract::json() {
            Ok(json) => response(
                StatusCode::OK,
                Some(HeaderValue::from_static("application/json")),
                Bytes::from(json),
            ),
            Err(_) => response(StatusCode::INTERNAL_SERVER_ERROR, None, Bytes::new()),
        },
        Route::Large => response(
            StatusCode::OK,
            Some(HeaderValue::from_static("application/octet-stream")),
            hello::large_body(),
        ),
        Route::Echo => {
            let content_type = req
                .headers()
                .get(CONTENT_TYPE)
                .cloned()
                .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
            match Limited::new(req.into_body(), MAX_BODY).collect().await {
                Ok(body) => response(StatusCode::OK, Some(content_type), body.to_bytes()),
                Err(_) => response(StatusCode::PAYLOAD_TOO_LARGE, None, Bytes::new()),
            }
        }
        Route::MethodNotAllowed { allow } => {
            let mut res = response(StatusCode::METHOD_NOT_ALLOWED, None, Bytes::new());
            res.headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
            res
        }
        Route::NotFound => response(
            StatusCode::NOT_FOUND,
            Some(HeaderValue::from_static("text/plain")),
            Bytes::from_static(contract::NOT_FOUND),
        ),
    };
    Ok(res)
}

/// The HTTP/1 connection builder: keep-alive, pipelined flushes, flattened writes.
pub fn builder() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder.keep_alive(true).pipeline_flush(true).writev(false);
    builder
}

/// Serves [`hello`] on one connection until the peer closes it.
pub async fn serve_connection<I>(io: I)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // A peer that resets or sends garbage ends its connection; nothing to report.
    let _ = builder()
        .serve_connection(TokioIo::new(io), service_fn(hello))
        .await;
}

/// A listener on `addr` with keel's backlog and `SO_REUSEADDR` (so a restart
/// finds the port free). Must be called inside a tokio runtime.
///
/// # Errors
///
/// When the socket cannot be created, bound or put to listen.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Accepts connections forever, each served by [`hello()`] on its own task.
pub async fn accept_loop(listener: TcpListener) {
    accept_each(listener, serve_connection).await;
}

/// Accepts connections forever, with `TCP_NODELAY`, each served by
/// `serve(stream)` on its own task, as in hyper's server example.
pub async fn accept_each<F, Fut>(listener: TcpListener, mut serve: F)
where
    F: FnMut(TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                // Not fatal: the connection still works, only slower.
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off a little.
                eprintln!("hyper: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// A hyper server on a free port of 127.0.0.1, served by one thread running a
/// `current_thread` runtime (the in-process twin of keel's one worker).
/// Dropping it stops the server.
pub struct ThreadServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ThreadServer {
    /// Starts the thread and waits until it listens.
    ///
    /// # Errors
    ///
    /// When the runtime, the listener or the thread cannot be created.
    pub fn start() -> io::Result<ThreadServer> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = runtime.block_on(async { listen(SocketAddr::from(([127, 0, 0, 1], 0))) })?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("hyper-server".to_owned())
            .spawn(move || {
                runtime.block_on(async {
                    tokio::select! {
                        () = accept_loop(listener) => {}
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(ThreadServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ThreadServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
