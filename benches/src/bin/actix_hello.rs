//! The `hello` contract on actix-web 4: a peer of `load/run.sh`
//! (`PEERS=hyper,actix`).
//!
//! `actix_hello [--addr HOST:PORT] [--workers N]`: `N` actix workers (default
//! 1), each a single-threaded runtime, beside actix-server's accept thread.
//! Prints `listening on http://ADDR` once bound; stops on `SIGINT`/`SIGTERM`
//! (actix's own signal handling).
//!
//! Tuning, from actix-web's documentation (`HttpServer`), none of it a
//! handicap: no middleware (no `Logger`, no compression: the crate is built
//! without default features), keep-alive on (actix's default, 5 s idle),
//! keel's listen backlog (4096), `TCP_NODELAY` on every accepted socket as
//! keel and hyper set it, one handler matching method and path as hyper's
//! does (no router), static bodies as `Bytes` (no copy), actix's own cached
//! `Date` header. The response carries the same header fields as keel's and
//! hyper's: `Content-Type`, `Content-Length`, `Date` and `Server`.
#![forbid(unsafe_code)]

use actix_web::http::header::{HeaderValue, ALLOW, CONTENT_TYPE, SERVER};
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use keel_benches::contract::{self, Route, BACKLOG, MAX_BODY};
use keel_benches::server_cli;
use std::process::ExitCode;

const USAGE: &str = "usage: actix_hello [--addr HOST:PORT] [--workers N]
  --addr     listen address (default 127.0.0.1:8082)
  --workers  actix workers, each a single-threaded runtime (default 1)";

fn response(status: StatusCode, content_type: Option<HeaderValue>, body: Bytes) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    res.insert_header((SERVER, HeaderValue::from_static("actix")));
    if let Some(content_type) = content_type {
        res.insert_header((CONTENT_TYPE, content_type));
    }
    res.body(body)
}

/// The `hello` contract, as `hyper_app::hello` answers it.
async fn hello(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    match contract::route(req.method().as_str(), req.path()) {
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
            match payload.to_bytes_limited(MAX_BODY).await {
                Ok(Ok(body)) => response(StatusCode::OK, Some(content_type), body),
                Ok(Err(_)) => response(StatusCode::BAD_REQUEST, None, Bytes::new()),
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
    }
}

fn main() -> ExitCode {
    server_cli::run_peer("actix_hello", USAGE, "127.0.0.1:8082", |addr, workers| {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(|| App::new().default_service(web::to(hello)))
                .workers(workers)
                .backlog(BACKLOG)
                .tcp_nodelay(true)
                // The load scripts stop it between runs: no 30 s grace.
                .shutdown_timeout(1)
                .bind(addr)?;
            for bound in server.addrs() {
                server_cli::print_listening(bound);
            }
            server.run().await
        })
    })
}
