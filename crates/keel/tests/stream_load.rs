//! Streams at scale, in bounded memory (release, kept out of the default
//! run; CI runs them): a 2 GiB upload hashed as it arrives, 200 uploads of
//! 100 MiB at once, and 1 GiB streamed to a slow reader.
//!
//! `cargo test --release -p keel --test stream_load -- --ignored --nocapture`
//!
//! The server runs in this process, so the process's resident memory is
//! the server's plus the clients' (fixed buffers); it is sampled every
//! few milliseconds while the streams run.

mod util;

use keel::body::{BodyError, BodySink, SinkWaker, Trailers};
use keel::{Config, Request, Responder, Response, Router};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use util::upload::{send_body, HashSink, Log, PIECE};
use util::{read_responses, TestServer};

const MIB: u64 = 1024 * 1024;

/// One scenario at a time: each measures the memory of the whole process.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a number");
    kib * 1024
}

/// The highest resident memory seen while `work` runs.
fn peak_rss_during<T>(work: impl FnOnce() -> T) -> (T, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut peak = rss();
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(rss());
                std::thread::sleep(Duration::from_millis(5));
            }
            peak.max(rss())
        })
    };
    let out = work();
    stop.store(true, Ordering::Relaxed);
    (out, sampler.join().unwrap())
}

/// Counts bytes and answers the count: no hashing, for many uploads at once.
struct Count(u64, Option<Responder>);

impl BodySink for Count {
    fn data(&mut self, data: &[u8], _: &SinkWaker) -> usize {
        self.0 += data.len() as u64;
        data.len()
    }

    fn end(&mut self, _: &Trailers<'_>) {
        let n = self.0;
        if let Some(r) = self.1.take() {
            r.respond(|res| res.body(n.to_string().as_bytes()));
        }
    }

    fn fail(&mut self, error: BodyError) {
        if let Some(r) = self.1.take() {
            r.respond(|res| res.status(error.status()).body(b""));
        }
    }
}

fn server() -> TestServer {
    let log: Log = Arc::default();
    let routes = Router::new()
        .put("/hash", move |_: &Request<'_>, res: &mut Response<'_>| {
            let responder = res.defer();
            res.read_body(HashSink::new(responder, &log));
        })
        .stream_body()
        .put("/count", |_: &Request<'_>, res: &mut Response<'_>| {
            let responder = res.defer();
            res.read_body(Count(0, Some(responder)));
        })
        .stream_body()
        .get(
            "/stream/:bytes",
            |req: &Request<'_>, res: &mut Response<'_>| {
                let total: u64 = req.param("bytes").unwrap().parse().unwrap();
                let mut body = res.stream();
                std::thread::spawn(move || {
                    let piece = vec![b's'; PIECE];
                    let mut left = total;
                    while left > 0 {
                        let n = left.min(PIECE as u64) as usize;
                        if body.send(&piece[..n]).is_err() {
                            return;
                        }
                        left -= n as u64;
                    }
                    let _ = body.finish();
                });
            },
        )
        .build()
        .unwrap();
    TestServer::with(routes, Config::default(), 2)
}

fn upload(server: &TestServer, path: &str, len: u64) -> (String, String) {
    let mut stream = server.connect();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    write!(
        stream,
        "PUT {path} HTTP/1.1\r\nHost: a\r\nContent-Length: {len}\r\n\r\n"
    )
    .unwrap();
    let digest = if path == "/hash" {
        send_body(&mut stream, len, false).unwrap()
    } else {
        let piece = vec![b'u'; PIECE];
        let mut left = len;
        while left > 0 {
            let n = left.min(PIECE as u64) as usize;
            stream.write_all(&piece[..n]).unwrap();
            left -= n as u64;
        }
        String::new()
    };
    let reply = read_responses(&mut stream, 1);
    (String::from_utf8_lossy(&reply[0].body).into_owned(), digest)
}

#[test]
#[ignore = "2 GiB through the server: run in release (CI does)"]
fn a_2_gib_upload_is_hashed_and_the_server_grows_under_8_mib() {
    let _alone = alone();
    let server = server();
    upload(&server, "/hash", 8 * MIB); // warm up: buffers, threads
    let before = rss();
    let len = 2048 * MIB;
    let started = Instant::now();
    let ((answer, digest), peak) = peak_rss_during(|| upload(&server, "/hash", len));
    let took = started.elapsed();
    assert_eq!(answer, format!("{len} {digest}"));
    let growth = peak.saturating_sub(before);
    eprintln!(
        "2 GiB upload hashed in {took:.2?} ({:.0} MB/s); RSS {} KiB -> peak {} KiB (+{} KiB)",
        len as f64 / took.as_secs_f64() / 1e6,
        before / 1024,
        peak / 1024,
        growth / 1024
    );
    assert!(growth < 8 * MIB, "RSS grew by {growth} bytes");
}

#[test]
#[ignore = "20 GiB through the server: run in release (CI does)"]
fn two_hundred_uploads_of_100_mib_at_once_stay_in_bounded_memory() {
    let _alone = alone();
    let server = Arc::new(server());
    upload(&server, "/count", MIB);
    let before = rss();
    let started = Instant::now();
    let (answers, peak) = peak_rss_during(|| {
        let clients: Vec<_> = (0..200)
            .map(|_| {
                let server = Arc::clone(&server);
                std::thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn(move || upload(&server, "/count", 100 * MIB).0)
                    .unwrap()
            })
            .collect();
        clients
            .into_iter()
            .map(|c| c.join().unwrap())
            .collect::<Vec<_>>()
    });
    let took = started.elapsed();
    let want = (100 * MIB).to_string();
    assert!(answers.iter().all(|a| *a == want), "{answers:?}");
    let growth = peak.saturating_sub(before);
    eprintln!(
        "200 x 100 MiB uploads in {took:.2?}; RSS {} KiB -> peak {} KiB (+{} KiB)",
        before / 1024,
        peak / 1024,
        growth / 1024
    );
    // 128 KiB of read buffer per upload is 25 MiB; the rest is the
    // clients' threads and buffers.
    assert!(growth < 64 * MIB, "RSS grew by {growth} bytes");
}

#[test]
#[ignore = "1 GiB through the server: run in release (CI does)"]
fn a_1_gib_stream_to_a_slow_reader_stays_in_bounded_memory() {
    let _alone = alone();
    let server = server();
    let before = rss();
    let len = 1024 * MIB;
    let started = Instant::now();
    let (received, peak) = peak_rss_during(|| {
        let mut stream = server.connect();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        write!(
            stream,
            "GET /stream/{len} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        // A reader slower than the producer: small reads, a pause every 64.
        let mut buf = [0u8; 16 * 1024];
        let mut total = 0u64;
        let mut reads = 0u64;
        loop {
            let n = stream.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n as u64;
            reads += 1;
            if reads % 64 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        total
    });
    let took = started.elapsed();
    // The head and the chunk framing come on top of the body's bytes.
    assert!(received > len && received < len + len / 100, "{received}");
    let growth = peak.saturating_sub(before);
    eprintln!(
        "1 GiB streamed to a slow reader in {took:.2?}; RSS {} KiB -> peak {} KiB (+{} KiB)",
        before / 1024,
        peak / 1024,
        growth / 1024
    );
    assert!(growth < 8 * MIB, "RSS grew by {growth} bytes");
}
