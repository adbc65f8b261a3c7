//! The JSON API of the real `shortener` binary over real sockets: every
//! endpoint of docs/shortener.md and every error it lists.

mod bulk;
mod create;
mod errors;
mod links;
mod stats;
#[path = "../util/mod.rs"]
mod util;
