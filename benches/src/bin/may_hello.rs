//! The `hello` contract on may_minihttp: a peer of `load/run.sh`
//! (`PEERS=hyper,may`).
//!
//! `may_hello [--addr HOST:PORT] [--workers N]`: `N` may scheduler threads
//! (default 1: `may::config().set_workers`), each running the connections'
//! coroutines. Prints `listening on http://ADDR` once bound; stops on
//! `SIGINT`/`SIGTERM` (their default action: may has no graceful stop).
//!
//! The shape of may_minihttp's own examples: an `HttpServiceFactory` making
//! one `HttpService` per connection, and the settings of its TechEmpower
//! example (a coroutine pool of 500, 4 KiB coroutine stacks). Its listener is
//! its own (backlog 1024, `SO_REUSEPORT`) and it leaves `TCP_NODELAY` off;
//! it always writes a whole batch of answers at once. Unlike its examples it
//! keeps the system allocator (theirs use mimalloc), as keel and hyper do.
//!
//! What the crate fixes and the contract cannot change: the `Server: M`
//! header, the reason phrase `Ok`, a body even for `HEAD`, and header values
//! that are `&'static str`, so there is no `/echo` (it would have to echo
//! the request's `Content-Type`) and no `/large` (a 1 MiB copy per answer):
//! those answer 404. `load/run.sh` asks for `/plaintext` (or `PATH_=/json`).
#![forbid(unsafe_code)]

use keel_benches::server_cli;
use may_minihttp::{HttpService, HttpServiceFactory, Request, Response};
use serde::Serialize;
use std::io;
use std::process::ExitCode;

const USAGE: &str = "usage: may_hello [--addr HOST:PORT] [--workers N]
  --addr     listen address, with a port other than 0 (default 127.0.0.1:8083)
  --workers  may scheduler threads (default 1)";

/// may_minihttp's TechEmpower example's settings.
const POOL_CAPACITY: usize = 500;
const STACK_SIZE: usize = 0x1000;

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

/// One per connection, as may_minihttp's factory makes them.
struct Hello;

impl HttpService for Hello {
    fn call(&mut self, req: Request, rsp: &mut Response) -> io::Result<()> {
        let is_get = matches!(req.method(), "GET" | "HEAD");
        match (is_get, req.path()) {
            (true, "/plaintext") => {
                rsp.header("Content-Type: text/plain").body("Hello, World!");
            }
            (true, "/json") => {
                let json = serde_json::to_vec(&Message {
                    message: "Hello, World!",
                })?;
                rsp.header("Content-Type: application/json").body_vec(json);
            }
            (false, "/plaintext" | "/json") => {
                rsp.status_code(405, "Method Not Allowed")
                    .header("Allow: GET, HEAD");
            }
            _ => {
                rsp.status_code(404, "Not Found")
                    .header("Content-Type: text/plain")
                    .body("Not Found\n");
            }
        }
        Ok(())
    }
}

struct HelloFactory;

impl HttpServiceFactory for HelloFactory {
    type Service = Hello;

    fn new_service(&self, _connection: usize) -> Hello {
        Hello
    }
}

fn main() -> ExitCode {
    server_cli::run_peer("may_hello", USAGE, "127.0.0.1:8083", |addr, workers| {
        // may_minihttp does not say which port it bound: port 0 cannot be announced.
        if addr.port() == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "may_hello needs a port other than 0",
            ));
        }
        may::config()
            .set_workers(workers)
            .set_pool_capacity(POOL_CAPACITY)
            .set_stack_size(STACK_SIZE);
        let server = HelloFactory.start(addr)?;
        server_cli::print_listening(addr);
        server
            .join()
            .map_err(|_| io::Error::other("the server's coroutine panicked"))
    })
}
