//! keel against hyper on the same work.
//!
//! Both sides serve the contract of `examples/hello`:
//!
//! - `GET /plaintext` -> `Hello, World!` (`text/plain`)
//! - `GET /json` -> `{"message":"Hello, World!"}`, serialised per request
//! - `POST /echo` -> the request body, with the request's `Content-Type`
//! - `GET /large` -> 1 MiB from one shared buffer (`hello::large_body`),
//!   the slow-reader attack's answer
//! - `405` with `Allow` for another method on those paths, `404` elsewhere
//!
//! [`keel_app`] is the handler of `examples/hello` (its library); [`hyper_app`] is
//! the same contract as a hyper 1.x service, configured as hyper's docs
//! recommend for a fast HTTP/1 server. [`mem`] drives each through one
//! in-memory connection, [`wire`] holds the requests and a response framer
//! shared by the criterion benches (`benches/compare.rs`), the `insn-count`
//! binary (instruction counts under callgrind) and the `hyper-hello` binary
//! (the wrk baseline, `load/run.sh`).
//!
//! The streaming benches (`load/streams.sh`) have a contract of their own,
//! [`streams`]: a streamed upload hashed as it arrives, a streamed download
//! and server-sent events; [`hyper_streams`] serves it on hyper (the
//! `hyper_streams` binary), [`keel_streams`] on keel (the `keel_streams`
//! binary), and the `stream_client` binary drives both.
//! The file benches (`load/files.sh`) serve a directory: [`hyper_files`]
//! with tower-http's `ServeDir` (the `hyper_files` binary), [`keel_files`]
//! with `keel::files::ServeDir` (the `keel_files` binary).
//! [`gzip`] is the compression benches' contract: a 16 KiB JSON body
//! through keel's `Compression` and tower-http's, for `insn-count`.
//! The TLS benches (`load/tls.sh`): [`hyper_tls`] serves the hello
//! contract over tokio-rustls (the `hyper_tls` binary); [`tls_client`] is
//! the rustls client that times handshakes and holds idle TLS connections
//! open (the `tls_client` binary).
//! [`server_cli`] is the command line the hyper binaries share. [`attack`]
//! is the attack harness (`attack/run.sh`) and the soak (`attack/soak.sh`).
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod attack;
pub mod contract;
pub mod gzip;
pub mod hyper_app;
pub mod hyper_files;
pub mod hyper_streams;
pub mod hyper_tls;
pub mod keel_app;
pub mod keel_files;
pub mod keel_streams;
pub mod mem;
pub mod server_cli;
pub mod streams;
pub mod tls_client;
pub mod wire;
