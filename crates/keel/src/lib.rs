//! keel: an HTTP/1.1 server framework whose hot path neither allocates nor
//! copies request bytes.
//!
//! One [mio] event loop per core, each with its own `SO_REUSEPORT` listener,
//! connection slab and buffer pool. Requests are parsed in place with
//! [httparse]; a [`Handler`] sees a [`Request`] borrowed from the read buffer
//! and writes through a [`Response`] straight into the connection's output
//! buffer. Every pipelined request found in one read is answered with one write.
//!
//! ```no_run
//! use keel::{Request, Response, Server};
//!
//! let server = Server::bind("127.0.0.1:8080").serve(|req: &Request<'_>, res: &mut Response<'_>| {
//!     match req.path() {
//!         "/plaintext" => res.header("Content-Type", "text/plain").body(b"Hello, World!"),
//!         _ => res.status(keel::StatusCode::NOT_FOUND).body(b"not found"),
//!     }
//! })?;
//! server.join();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Limits and deadlines live in [`Config`]; malformed, oversized, ambiguous or
//! slow requests are answered by the server itself ([`ProtocolError`]) and the
//! connection is closed.
//!
//! Cargo features: `json` (default: `Request::json`, `Response::json`),
//! `compression` (default: the gzip layer), `tls` (TLS in the worker loop
//! with rustls: `Server::tls`, [`tls`]).

#![warn(missing_docs, unreachable_pub, clippy::undocumented_unsafe_blocks)]

pub mod blocking;
pub mod body;
mod cookie;
mod deferred;
pub mod files;
mod handler;
mod http1;
#[cfg(feature = "json")]
mod json;
mod metrics;
pub mod middleware;
mod peer;
mod request;
mod response;
mod router;
mod server;
mod source;
pub mod sse;
mod status;
mod stream;
pub mod testing;
pub mod tls;
mod transport;
mod upgrade;

#[doc = include_str!("../../../docs/guide.md")]
pub mod guide {}

pub use bytes::Bytes;
pub use bytes::BytesMut;
pub use cookie::{Cookie, SameSite};
pub use deferred::{DeferredOutcome, Responder};
pub use handler::Handler;
pub use http1::error::ProtocolError;
pub use http1::parse::leniency::Leniency;
#[cfg(feature = "json")]
pub use json::JsonError;
pub use metrics::histogram::LATENCY_BUCKETS;
pub use metrics::{AlreadyWired, Metrics};
pub use peer::PeerCredentials;
pub use request::{percent_decode, Request, Version};
pub use response::{Field, Held, InvalidHeader, Response};
pub use router::{PathMatch, RouteError, Router, Routes, MAX_PARAMS};
pub use server::config::Config;
pub use server::listener::{ListenAddr, Listener};
pub use server::stats::Stats;
pub use server::successor::{notify_predecessor, spawn_successor, Successor};
pub use server::systemd::{systemd_listeners, ActivationError, InheritedListener, MAX_INHERITED};
pub use server::{Server, ServerHandle};
pub use source::{BodySource, Pull};
pub use status::StatusCode;
pub use stream::{BodyStream, StreamError};
pub use upgrade::{UpgradeError, Upgraded, UpgradedSocket};
