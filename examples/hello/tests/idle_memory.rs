//! What an idle keep-alive connection costs the server: the design says it
//! holds no buffer, so 10 000 of them must add little to `hello`'s resident
//! memory. Nor may 10 000 heads stalled half-way (a slowloris): each gives
//! its read buffer back and keeps only its bytes.
//!
//! Slow (10 000 sockets): `cargo test -p hello -- --ignored --nocapture`.

mod util;

use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};
use util::{read_response, Hello};

/// Idle keep-alive connections to hold open.
const CONNECTIONS: usize = 10_000;
/// Most resident memory one idle connection may add, in bytes.
const MAX_BYTES_PER_CONNECTION: u64 = 2048;
/// Every this many connections gets a second request at the end.
const RECHECK_EVERY: usize = 100;
/// Descriptors each process needs beyond the connections (listener, epoll,
/// pipes, the test harness...).
const FD_HEADROOM: u64 = 1024;

const REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// Raises this process's `RLIMIT_NOFILE` soft limit to at least `needed`
/// (and the hard limit too, when it is lower and we may). Children inherit it.
fn raise_nofile_limit(needed: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit`, and `limit` is a valid,
    // exclusively borrowed `rlimit` for the duration of the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0, "getrlimit: {}", io::Error::last_os_error());
    if limit.rlim_cur >= needed {
        return;
    }
    let raised = libc::rlimit {
        rlim_cur: needed,
        rlim_max: limit.rlim_max.max(needed),
    };
    // SAFETY: setrlimit only reads the `rlimit` it is given, a valid local.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) };
    assert_eq!(
        rc,
        0,
        "cannot raise RLIMIT_NOFILE from {}/{} (soft/hard) to {needed}: {} \
         (run as root, or raise the hard limit: `ulimit -Hn {needed}`)",
        limit.rlim_cur,
        limit.rlim_max,
        io::Error::last_os_error()
    );
}

/// The soft "Max open files" limit of process `pid`.
fn open_files_limit(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("read limits");
    limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|soft| soft.parse().ok())
        .unwrap_or(u64::MAX) // "unlimited"
}

/// The kernel's cap on a listen backlog.
fn somaxconn() -> usize {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(128)
}

/// Waits until the server's resident size stops changing (three equal
/// readings 50 ms apart) with exactly `fds` descriptors open.
/// Returns the settled RSS in bytes.
fn settled_rss(hello: &Hello, fds: usize) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = hello.rss_bytes();
    let mut same = 0;
    loop {
        thread::sleep(Duration::from_millis(50));
        let rss = hello.rss_bytes();
        let fds_ok = hello.open_fds() == fds;
        same = if rss == last && fds_ok { same + 1 } else { 0 };
        last = rss;
        if same >= 2 {
            return rss;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not settle in 10 s: RSS {rss} B, {} fds (want {fds})",
            hello.open_fds()
        );
    }
}

fn kib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0
}

/// The two tests open 10 000 connections each: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A `hello` with one worker and room for the connections, warmed up: the
/// first request touches lazily built state (the Date cache, the buffer
/// pool's first buffers, the slab), which is not per connection. Returns
/// it with its descriptor count and settled RSS.
fn warm_hello() -> (Hello, usize, u64) {
    let needed = CONNECTIONS as u64 + FD_HEADROOM;
    raise_nofile_limit(needed);
    // Spawned after the raise, so the server inherits the limit.
    let hello = Hello::start(1);
    let server_limit = open_files_limit(hello.pid());
    assert!(
        server_limit >= needed,
        "hello may open only {server_limit} files, needs {needed}"
    );
    let base_fds = hello.open_fds();
    let mut buf = Vec::with_capacity(1024);
    {
        let mut warm = TcpStream::connect(hello.addr()).expect("connect");
        for _ in 0..3 {
            warm.write_all(REQUEST).expect("write");
            let response = read_response(&mut warm, &mut buf).expect("warm-up response");
            assert_eq!(response.status, 200);
        }
    }
    // Settled once the server has closed the warm-up connection too.
    let rss_before = settled_rss(&hello, base_fds);
    (hello, base_fds, rss_before)
}

#[test]
#[ignore = "slow: run with --ignored in CI"]
fn heads_stalled_half_way_hold_no_read_buffer() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (hello, base_fds, rss_before) = warm_hello();
    // Each connection sends the first half of a head, then nothing: within
    // the 10 s header timeout, the test's whole run.
    let (first_half, second_half) = REQUEST.split_at(30);
    let batch = (somaxconn() / 2).clamp(64, 1000);
    let mut conns: Vec<TcpStream> = Vec::with_capacity(CONNECTIONS);
    while conns.len() < CONNECTIONS {
        for _ in 0..batch.min(CONNECTIONS - conns.len()) {
            let mut stream = TcpStream::connect(hello.addr()).expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            stream.write_all(first_half).expect("write");
            conns.push(stream);
        }
    }
    let rss_after = settled_rss(&hello, base_fds + CONNECTIONS);
    let per_connection = rss_after.saturating_sub(rss_before) / CONNECTIONS as u64;
    println!(
        "idle_memory: {CONNECTIONS} heads stalled half-way: hello VmRSS {:.0} KiB before, \
         {:.0} KiB after = {per_connection} B per connection (limit {MAX_BYTES_PER_CONNECTION} B)",
        kib(rss_before),
        kib(rss_after),
    );
    assert!(
        per_connection < MAX_BYTES_PER_CONNECTION,
        "a stalled half head costs {per_connection} B of resident memory: does it keep its \
         read buffer?"
    );
    // The parked bytes are the head's start: finishing a sample of heads
    // gets each its answer.
    let mut buf = Vec::with_capacity(1024);
    for (i, stream) in conns.iter_mut().enumerate().step_by(RECHECK_EVERY) {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        stream.write_all(second_half).expect("second half");
        let response = read_response(stream, &mut buf)
            .unwrap_or_else(|e| panic!("response on #{i}: {e}; stderr:\n{}", hello.stderr()));
        assert_eq!(response.status, 200, "#{i}: {response:?}");
        assert_eq!(response.body, b"Hello, World!", "#{i}");
    }
}

#[test]
#[ignore = "slow: run with --ignored in CI"]
fn idle_keep_alive_connections_hold_no_buffers() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let (mut hello, base_fds, rss_before) = warm_hello();
    let mut buf = Vec::with_capacity(1024);

    // Open the connections in batches smaller than the accept queue (the
    // listen backlog is capped by somaxconn), one request and its answer on
    // each, so every connection has served a request and is now idle.
    let batch = (somaxconn() / 2).clamp(64, 1000);
    let mut conns: Vec<TcpStream> = Vec::with_capacity(CONNECTIONS);
    let opened = Instant::now();
    while conns.len() < CONNECTIONS {
        let from = conns.len();
        let to = (from + batch).min(CONNECTIONS);
        for i in from..to {
            let mut stream = TcpStream::connect(hello.addr())
                .unwrap_or_else(|e| panic!("connect #{i}: {e}; stderr:\n{}", hello.stderr()));
            stream.set_nodelay(true).expect("nodelay");
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("read timeout");
            stream
                .write_all(REQUEST)
                .unwrap_or_else(|e| panic!("write on #{i}: {e}"));
            conns.push(stream);
        }
        for (i, stream) in conns.iter_mut().enumerate().take(to).skip(from) {
            let response = read_response(stream, &mut buf)
                .unwrap_or_else(|e| panic!("response on #{i}: {e}; stderr:\n{}", hello.stderr()));
            assert_eq!(response.status, 200, "#{i}: {response:?}");
            assert_eq!(response.body, b"Hello, World!", "#{i}");
            assert_eq!(response.header("connection"), None, "#{i} stays open");
        }
    }
    let open_time = opened.elapsed();

    let rss_after = settled_rss(&hello, base_fds + CONNECTIONS);
    let growth = rss_after.saturating_sub(rss_before);
    let per_connection = growth / CONNECTIONS as u64;
    println!(
        "idle_memory: {CONNECTIONS} idle keep-alive connections (opened and served in \
         {open_time:.2?}, batches of {batch}): hello VmRSS {:.0} KiB before, {:.0} KiB after, \
         growth {:.0} KiB = {per_connection} B per connection (limit {MAX_BYTES_PER_CONNECTION} B)",
        kib(rss_before),
        kib(rss_after),
        kib(growth),
    );

    // Every connection still works: a second request on a sample of them.
    let rechecked = Instant::now();
    for (i, stream) in conns.iter_mut().enumerate().step_by(RECHECK_EVERY) {
        stream
            .write_all(REQUEST)
            .unwrap_or_else(|e| panic!("second write on #{i}: {e}"));
        let response = read_response(stream, &mut buf)
            .unwrap_or_else(|e| panic!("second response on #{i}: {e}"));
        assert_eq!(response.status, 200, "#{i}: {response:?}");
        assert_eq!(response.body, b"Hello, World!", "#{i}");
    }
    let sample = CONNECTIONS.div_ceil(RECHECK_EVERY);
    let rss_rechecked = settled_rss(&hello, base_fds + CONNECTIONS);
    println!(
        "idle_memory: {sample} connections answered a second request in {:.2?}; \
         VmRSS now {:.0} KiB",
        rechecked.elapsed(),
        kib(rss_rechecked)
    );

    assert!(
        per_connection < MAX_BYTES_PER_CONNECTION,
        "an idle keep-alive connection costs {per_connection} B of resident memory \
         (RSS {rss_before} B -> {rss_after} B over {CONNECTIONS} connections); \
         the limit is {MAX_BYTES_PER_CONNECTION} B: does an idle connection keep a buffer?"
    );

    // Shutdown closes the idle connections at once and reports the counts.
    let stopping = Instant::now();
    hello.signal(libc::SIGTERM);
    let status = hello
        .wait_timeout(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("hello still running 5 s after SIGTERM"));
    let stop_time = stopping.elapsed();
    let stderr = hello.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let requests = 3 + CONNECTIONS + sample;
    let accepted = 1 + CONNECTIONS;
    assert!(
        stderr.contains(&format!(
            "stopped after {requests} requests on {accepted} connections"
        )),
        "{stderr}"
    );
    println!(
        "idle_memory: SIGTERM with {CONNECTIONS} idle connections: exit 0 in {stop_time:.2?}; \
         test took {:.2?}",
        started.elapsed()
    );
}
