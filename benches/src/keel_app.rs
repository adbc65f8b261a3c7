//! The keel side: the `hello` example's own handler, and an in-process server.

pub use hello::hello;
use keel::{Server, ServerHandle};
use std::io;

/// A keel server with one worker on a free port of 127.0.0.1, serving [`hello`].
///
/// # Errors
///
/// When the listener or the worker cannot be created.
pub fn start_server() -> io::Result<ServerHandle> {
    Server::bind("127.0.0.1:0").workers(1).serve(hello)
}
