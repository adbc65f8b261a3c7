//! Others' latency while one client downloads a file that is not in the
//! page cache: keel with and without `Config::cold_file_readahead`.
//!
//! ```text
//! cold_file --file PATH [--rounds N] [--warm]
//! ```
//!
//! For each round and each setting (readahead on, then off, alternating
//! which goes first), a fresh one-worker server on 127.0.0.1 answers
//! `GET /file` with the whole of PATH (`Response::file`) and
//! `GET /plaintext` with 13 bytes. The file's pages are dropped from the
//! page cache first (`posix_fadvise(DONTNEED)`, unless `--warm`), one
//! client downloads it, and another sends `GET /plaintext` one at a time
//! (0.2 ms apart) until the download ends. Prints one line per run: the
//! download's time, the read-aheads the server counted, and the plaintext
//! requests' count, p50, p99 and max latency. The disk's speed decides
//! what the worker would wait: `benches/load/cold_file.sh` throttles it.

use keel::{Config, Request, Response, StatusCode};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static FILE: OnceLock<PathBuf> = OnceLock::new();

fn serve(req: &Request<'_>, res: &mut Response<'_>) {
    if req.path() == "/plaintext" {
        return res.body(b"Hello, World!");
    }
    let Ok(file) = std::fs::File::open(FILE.get().unwrap()) else {
        return res.status(StatusCode::NOT_FOUND).body(b"");
    };
    let len = file.metadata().map_or(0, |m| m.len());
    if res.file(file, 0..len).is_err() {
        res.status(StatusCode::INTERNAL_SERVER_ERROR).body(b"");
    }
}

/// Reads one `GET /plaintext` answer (its length is fixed).
fn plaintext(stream: &mut TcpStream, buf: &mut [u8]) {
    stream
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: b\r\n\r\n")
        .unwrap();
    let mut got = 0;
    while !buf[..got].ends_with(b"Hello, World!") {
        let n = stream.read(&mut buf[got..]).unwrap();
        assert!(n > 0, "closed");
        got += n;
    }
}

fn run(readahead: bool, cold: bool) -> String {
    let path = FILE.get().unwrap();
    let len = std::fs::metadata(path).unwrap().len() as usize;
    if cold {
        let file = std::fs::File::open(path).unwrap();
        // SAFETY: an open descriptor; advice only.
        unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    }
    let config = Config {
        cold_file_readahead: readahead,
        ..Config::default()
    };
    let server = keel::Server::bind("127.0.0.1:0")
        .workers(1)
        .config(config)
        .serve(serve)
        .unwrap();
    let addr = server.local_addr();
    let download = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        let started = Instant::now();
        stream
            .write_all(b"GET /file HTTP/1.1\r\nHost: b\r\n\r\n")
            .unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0;
        while got < len {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "closed after {got} bytes");
            got += n;
        }
        started.elapsed()
    });
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut buf = [0u8; 512];
    let mut latencies = Vec::new();
    while !download.is_finished() {
        let started = Instant::now();
        plaintext(&mut stream, &mut buf);
        latencies.push(started.elapsed());
        std::thread::sleep(Duration::from_micros(200));
    }
    let took = download.join().unwrap();
    let readaheads = server.stats().file_readaheads;
    server.shutdown(Duration::ZERO);
    server.join();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    format!(
        "readahead={} cold={cold} download_s={:.2} readaheads={readaheads} requests={} p50_ms={:.3} p99_ms={:.2} max_ms={:.2}",
        if readahead { "on" } else { "off" },
        took.as_secs_f64(),
        latencies.len(),
        at(0.5),
        at(0.99),
        at(1.0),
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut rounds, mut cold) = (1, true);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--file" => FILE.set(args.next().expect("--file PATH").into()).unwrap(),
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--rounds N")
            }
            "--warm" => cold = false,
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(FILE.get().is_some(), "--file PATH");
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for readahead in order {
            println!("{}", run(readahead, cold));
        }
    }
}
