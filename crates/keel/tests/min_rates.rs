//! Minimum data rates over real sockets: a body trickled below
//! `min_body_rate` (buffered or streamed) gets its 408 at the end of a
//! window, one sent at the rate with pauses goes on for many windows; a
//! reader taking response bytes below `min_send_rate` is dropped, one that
//! reads in bursts gets the whole answer.

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

#[test]
fn a_buffered_body_trickled_below_the_rate_gets_408_after_one_window() {
    let server = TestServer::with(app, body_rate(), 1);
    let mut stream = server.connect();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4000\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    // 10 bytes every 50 ms: 200 bytes/s, progress all the time, yet 60
    // bytes a window where 300 are due.
    let mut writer = stream.try_clone().unwrap();
    let sender =
        std::thread::spawn(move || trickle(&mut writer, 4000, 10, Duration::from_millis(50)));
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
    let mut stream = server.connect();
    stream
        .write_all(b"PUT /hash HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let mut writer = stream.try_clone().unwrap();
    let sender =
        std::thread::spawn(move || trickle(&mut writer, 100_000, 10, Duration::from_millis(50)));
    let responses = parse_all(&read_to_close(&mut stream));
    assert_eq!(responses[0].status, 408);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.handle().stats().timeouts, 1);
    assert_eq!(log.lock().unwrap().len(), 1, "the sink was told it failed");
    sender.join().unwrap();
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
