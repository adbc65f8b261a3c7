//! TLS over a plain stream: rustls in the worker's loop ([`stream`]), and
//! what a listener presents ([`config`]).

pub(crate) mod config;
pub(crate) mod stream;
