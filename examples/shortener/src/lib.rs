//! keel's reference application: a URL shortener.
//!
//! Built on keel's public API only. The redirect path is answered on the
//! worker from an in-memory [cache](cache); everything that touches the
//! [store](store) runs on keel's blocking pool through a deferred response.
//! See `docs/shortener.md` for the design and how to run it.

pub mod api;
pub mod app;
pub mod assets;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod clicks;
pub mod keys;
pub mod model;
pub mod password;
pub mod qr;
pub mod redirect;
pub mod slug;
pub mod store;
pub mod striped;
pub mod telemetry;
pub mod tls;
pub mod transfer;
pub mod validate;
pub mod web;
