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
use socket2::{Domain, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;

const USAGE: &str = "usage: may_hello [--addr HOST:PORT] [--workers N]
  --addr     listen address (default 127.0.0.1:8083; port 0: a free one)
  --workers  may scheduler threads (default 1)";

/// may_minihttp's TechEmpower example's settings.
const POOL_CAPACITY: usize = 500;
const STACK_SIZE: usize = 0x1000;

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
                let json = keel_benches::contract::json()?;
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

/// may_minihttp binds by address and does not say which port it got. For
/// port 0 this takes a free port first, on a bound socket that does not
/// listen (so it receives no connections) with `SO_REUSEPORT`, as may sets
/// it on its listener, so that may can bind the same port while the caller
/// holds this socket. Any other address is returned as it is.
fn reserve_port(addr: SocketAddr) -> io::Result<(SocketAddr, Option<Socket>)> {
    if addr.port() != 0 {
        return Ok((addr, None));
    }
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    let bound = socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("not an IP address"))?;
    Ok((bound, Some(socket)))
}

impl HttpServiceFactory for HelloFactory {
    type Service = Hello;

    fn new_service(&self, _connection: usize) -> Hello {
        Hello
    }
}

fn main() -> ExitCode {
    server_cli::run_peer("may_hello", USAGE, "127.0.0.1:8083", |addr, workers| {
        let (addr, reserved) = reserve_port(addr)?;
        may::config()
            .set_workers(workers)
            .set_pool_capacity(POOL_CAPACITY)
            .set_stack_size(STACK_SIZE);
        let server = HelloFactory.start(addr)?;
        drop(reserved);
        server_cli::print_listening(addr);
        server
            .join()
            .map_err(|_| io::Error::other("the server's coroutine panicked"))
    })
}
