//! Files from a root directory on hyper 1.x with tower-http's `ServeDir`:
//! the baseline of `load/files.sh`, in its usual setup (the service wrapped
//! for hyper with hyper-util's `TowerToHyperService`, which clones it per
//! request, as axum does).
//!
//! `ServeDir::new(root)` with its defaults: files are opened and read on
//! tokio's blocking pool (`tokio::fs`) in chunks of 64 KiB, each chunk a
//! `Bytes` written by hyper; no `sendfile` (tower-http#381). It answers
//! `Content-Type` (`mime_guess`), `Accept-Ranges: bytes`, `Last-Modified`
//! and `Content-Length`, no `ETag`; `If-Modified-Since`,
//! `If-Unmodified-Since` and one `Range` (several: 416).

use crate::hyper_app;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::path::PathBuf;
use tokio::net::{TcpListener, TcpStream};
use tower_http::services::ServeDir;

/// Serves the files under `root` on every connection `listener` accepts.
pub async fn accept_loop(listener: TcpListener, root: PathBuf) {
    let service = TowerToHyperService::new(ServeDir::new(root));
    hyper_app::accept_each(listener, move |stream: TcpStream| {
        let service = service.clone();
        async move {
            let mut builder = http1::Builder::new();
            builder.keep_alive(true);
            // A peer that resets or sends garbage ends its connection.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    })
    .await;
}
