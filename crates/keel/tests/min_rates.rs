//! Minimum data rates over real sockets: a body trickled below
//! `min_body_rate` (buffered or streamed) gets its 408 at the end of a
//! window, one sent at the rate with pauses goes on for many windows; a
//! reader taking response bytes below `min_send_rate` is dropped, one that
//! reads in bursts gets the whole answer; a slow reader's answer waits in
//! the worker's queue, not in the kernel's (`max_unsent_per_socket`), until
//! the reader shows it is fast.

mod util;

use keel::{Config, Request, Response, Router};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use util::upload::{HashSink, Log};
use util::{app, get, parse_all, read_to_close, TestServer};

/// A 300 ms window and 1000 bytes/s: each window must bring 300 bytes.
fn body_rate() -> Config {
    Config {
        body_timeout: Duration::from_millis(300),
        min_body_rate: 1000,
        ..Config::default()
    }
}

/// Writes `total` bytes of body, `piece` bytes every `every`; stops early
/// (without failing) once the server has closed.
fn trickle(stream: &mut TcpStream, total: usize, piece: usize, every: Duration) {
    let mut sent = 0;
    while sent < total {
        let n = piece.min(total - sent);
        if stream.write_all(&vec![b'x'; n]).is_err() {
            return;
        }
        sent += n;
        std::thread::sleep(every);
    }
}

/// Sends `head`, then its body of `total` bytes at 10 bytes every 50 ms:
/// 200 bytes/s, progress all the time, yet 60 bytes a window where 300
/// are due. Asserts the 408, the close, within two windows and a margin,
/// and the counted timeout.
fn trickle_gets_408(server: &TestServer, head: &[u8], total: usize) {
    let mut stream = server.connect();
    stream.write_all(head).unwrap();
    let started = Instant::now();
    let mut writer = stream.try_clone().unwrap();
    let sender =
        std::thread::spawn(move || trickle(&mut writer, total, 10, Duration::from_millis(50)));
    let responses = parse_all(&read_to_close(&mut stream));
    assert_eq!(responses[0].status, 408);
    assert!(responses[0].closes());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.handle().stats().timeouts, 1);
    sender.join().unwrap();
}

#[test]
fn a_buffered_body_trickled_below_the_rate_gets_408_after_one_window() {
    let server = TestServer::with(app, body_rate(), 1);
    let head = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4000\r\n\r\n";
    trickle_gets_408(&server, head, 4000);
}

#[test]
fn a_body_at_the_rate_goes_on_for_many_windows() {
    let server = TestServer::with(app, body_rate(), 1);
    let mut stream = server.connect();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    // 100 bytes every 50 ms: 2000 bytes/s, twice the rate, for about a
    // second: more than three windows.
    trickle(&mut stream, 2000, 100, Duration::from_millis(50));
    assert!(started.elapsed() > Duration::from_millis(900));
    let mut answer = vec![0; 4096];
    let n = stream.read(&mut answer).unwrap();
    let responses = parse_all(&answer[..n]);
    assert_eq!(responses[0].status, 200);
    assert_eq!(responses[0].body.len(), 2000);
    assert_eq!(server.handle().stats().timeouts, 0);
}

#[test]
fn a_streamed_body_trickled_below_the_rate_gets_408() {
    // Before minimum rates, a streamed body's deadline restarted with every
    // byte: one byte now and then held the upload open for ever.
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let sink_log = Arc::clone(&log);
    let routes = Router::new()
        .put("/hash", move |_: &Request<'_>, res: &mut Response<'_>| {
            let responder = res.defer();
            res.read_body(HashSink::new(responder, &sink_log));
        })
        .stream_body()
        .build()
        .unwrap();
    let server = TestServer::with(routes, body_rate(), 1);
    let head = b"PUT /hash HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n";
    trickle_gets_408(&server, head, 100_000);
    assert_eq!(log.lock().unwrap().len(), 1, "the sink was told it failed");
}

/// A 300 ms window and 100 KB/s: each window must see 30 KB read.
fn send_rate() -> Config {
    Config {
        write_timeout: Duration::from_millis(300),
        min_send_rate: 100_000,
        ..Config::default()
    }
}

/// Requests `n` bytes from `/big/<n>` and reads `piece` bytes every
/// `every` until the answer is in, the server closes, or `stop` is set;
/// returns the bytes read.
fn read_slowly(
    server: &TestServer,
    n: usize,
    piece: usize,
    every: Duration,
    stop: &AtomicBool,
) -> usize {
    let mut stream = server.connect();
    stream.write_all(&get(&format!("/big/{n}"))).unwrap();
    let mut buf = vec![0; piece];
    let mut total = 0;
    while !stop.load(Ordering::Relaxed) {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return total,
            Ok(k) => total += k,
        }
        if total >= n {
            return total;
        }
        std::thread::sleep(every);
    }
    total
}

#[test]
fn a_reader_below_the_send_rate_is_dropped() {
    let server = TestServer::with(app, send_rate(), 1);
    let stop = AtomicBool::new(false);
    let (server, stop) = (&server, &stop);
    std::thread::scope(|scope| {
        // 1 KiB every 20 ms: about 50 KB/s, reading all the time, yet 15 KB
        // a window where 30 KB are due. 16 MB is more than the socket
        // buffers on both sides hold, so the server's queue waits on this
        // reader (which would take minutes to drain the kernel's buffers
        // and see the close: the server's counters tell).
        let n = 16_000_000;
        let reader =
            scope.spawn(move || read_slowly(server, n, 1024, Duration::from_millis(20), stop));
        let started = Instant::now();
        while server.handle().stats().requests == 0 || server.handle().stats().connections_open > 0
        {
            assert!(started.elapsed() < Duration::from_secs(5), "still open");
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() < n, "the whole answer came through");
    });
    assert_eq!(server.handle().stats().timeouts, 1);
}

#[test]
fn a_reader_in_bursts_above_the_rate_gets_everything() {
    let server = TestServer::with(app, send_rate(), 1);
    let started = Instant::now();
    // 512 KiB after each 200 ms pause: silent most of each window, yet
    // far above the rate on average, for about five windows.
    let n = 4_000_000;
    let every = Duration::from_millis(200);
    let read = read_slowly(&server, n, 512 * 1024, every, &AtomicBool::new(false));
    assert!(read >= n, "cut off after {read} bytes");
    assert!(started.elapsed() > Duration::from_millis(900));
    assert_eq!(server.handle().stats().timeouts, 0);
}

/// Bytes the kernel holds in the send queue (unsent plus unacknowledged)
/// of the server's end of the connection from `client`, from /proc/net/tcp.
fn server_send_queue(server: &TestServer, client: &TcpStream) -> u64 {
    let ours = client.local_addr().unwrap().port();
    let theirs = server.addr().port();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port = |field: &str| u16::from_str_radix(field.rsplit(':').next().unwrap(), 16).unwrap();
    table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|f| port(f[1]) == theirs && port(f[2]) == ours)
        .map(|f| u64::from_str_radix(f[4].split(':').next().unwrap(), 16).unwrap())
        .expect("the server's end in /proc/net/tcp")
}

/// Asks for 8 MB on a connection whose client (receive buffer `window`)
/// reads `first` bytes at once, then nothing; returns the server's send
/// queue after a pause.
fn queued_in_kernel(limit: Option<usize>, window: usize, first: usize) -> u64 {
    let config = Config {
        max_unsent_per_socket: limit,
        ..Config::default()
    };
    let server = TestServer::with(app, config, 1);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(window).unwrap();
    socket.connect(&server.addr().into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream.write_all(&get("/big/8000000")).unwrap();
    let mut buf = vec![0; first];
    stream.read_exact(&mut buf).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    server_send_queue(&server, &stream)
}

#[test]
fn a_slow_readers_answer_waits_in_the_worker_not_the_kernel() {
    // A small window: what the server writes mostly waits unsent.
    let limited = queued_in_kernel(Some(64 * 1024), 4096, 1024);
    let unlimited = queued_in_kernel(None, 4096, 1024);
    // The limit plus what is in flight to a 4 KiB window, against the
    // kernel's own growth (megabytes on Linux's defaults).
    assert!(limited < 256 * 1024, "{limited} bytes queued in the kernel");
    assert!(
        unlimited > 4 * limited,
        "without the limit only {unlimited}"
    );
}

#[test]
fn a_fast_reader_gets_the_kernels_buffers_back() {
    // 6 MB taken at once (a megabyte in 100 ms lifts the limit; six
    // chances, for a loaded machine) before the reader pauses: the kernel
    // then holds more than the limit for it.
    let fast = queued_in_kernel(Some(64 * 1024), 64 * 1024, 6_000_000);
    let slow = queued_in_kernel(Some(64 * 1024), 64 * 1024, 1024);
    assert!(
        fast > 4 * slow,
        "{fast} bytes queued, {slow} for a slow reader"
    );
}
