//! A process out of descriptors (`EMFILE`): the worker counts the failed
//! `accept`, backs off instead of retrying in a loop (no core spins), and
//! frees a descriptor by closing its oldest idle connection as soon as it
//! has one, so the client waiting in the kernel's queue is served.
//!
//! Runs without the test harness: it fills the process's descriptor
//! table, which no other test may share.

mod util;

use keel::Config;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use util::{app, get, read_responses, TestServer};

/// Connections mid-request (bodies still arriving) while descriptors run out.
const HOGS: usize = 8;

fn main() {
    out_of_descriptors_backs_off_then_evicts_an_idle_connection();
    println!(
        "descriptors: EMFILE backs off without spinning, then evicts the oldest idle connection"
    );
}

fn out_of_descriptors_backs_off_then_evicts_an_idle_connection() {
    let server = TestServer::with(app, Config::default(), 1);
    let mut hogs: Vec<TcpStream> = (0..HOGS).map(|_| server.connect()).collect();
    for hog in &mut hogs {
        hog.write_all(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab")
            .unwrap();
    }
    wait_for(|| server.handle().stats().connections_open == HOGS as u64);
    // Connected now, but silent: with deferred accepts the kernel keeps it
    // until it speaks, and by then no descriptor is left to accept it with.
    let mut late = server.connect();
    let mut cpu = CpuClock::open();

    let fillers = exhaust_descriptors();
    late.write_all(&get("/n/9")).unwrap();
    wait_for(|| server.handle().stats().accept_errors >= 1);

    // Nothing to evict (every connection is mid-request): the worker backs
    // off. A worker that retried in a loop would burn a whole core here.
    let stats = server.handle().stats();
    let (cpu_before, started) = (cpu.seconds(), Instant::now());
    std::thread::sleep(Duration::from_secs(1));
    let busy = (cpu.seconds() - cpu_before) / started.elapsed().as_secs_f64();
    let retries = server.handle().stats().accept_errors - stats.accept_errors;
    assert!(
        busy < 0.15,
        "the process used {busy:.2} of a core while out of descriptors"
    );
    assert!(
        (1..=30).contains(&retries),
        "{retries} failed accepts in a second: a back-off of 100 ms makes about 10"
    );
    assert_eq!(server.handle().stats().evictions, 0);
    late.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(
        late.read(&mut [0u8; 1]).is_err(),
        "served without a descriptor?"
    );

    // The hogs finish and wait idle: the next retry closes the oldest one,
    // whose descriptor takes the late client in.
    for hog in &mut hogs {
        hog.write_all(b"cd").unwrap();
        assert_eq!(read_responses(hog, 1)[0].body, b"abcd");
    }
    late.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let answered = Instant::now();
    assert_eq!(read_responses(&mut late, 1)[0].body, b"9");
    assert!(answered.elapsed() < Duration::from_secs(2));
    assert!(server.handle().stats().evictions >= 1);
    drop(fillers);
}

/// Lowers the soft `RLIMIT_NOFILE` to a little above the descriptors in
/// use, then opens `/dev/null` until none is left. The files returned
/// hold the table full.
fn exhaust_descriptors() -> Vec<File> {
    let in_use = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
    rlimit::Resource::NOFILE.set(in_use + 16, hard).unwrap();
    let mut fillers = Vec::new();
    while let Ok(file) = File::open("/dev/null") {
        fillers.push(file);
        assert!(fillers.len() < 10_000, "the limit did not take");
    }
    fillers
}

/// The process's CPU time, read from `/proc/self/stat` through a file
/// opened while descriptors are still to be had.
struct CpuClock(File);

impl CpuClock {
    fn open() -> CpuClock {
        CpuClock(File::open("/proc/self/stat").unwrap())
    }

    /// User plus system time, in seconds.
    fn seconds(&mut self) -> f64 {
        let mut text = String::new();
        self.0.seek(SeekFrom::Start(0)).unwrap();
        self.0.read_to_string(&mut text).unwrap();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = text[text.rfind(')').unwrap() + 2..].split(' ').collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        // The kernel reports in USER_HZ, 100 on Linux.
        ticks / 100.0
    }
}

fn wait_for(done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(5), "timed out");
        std::thread::sleep(Duration::from_millis(5));
    }
}
