//! The attack harness (`benches/attack/run.sh`, the `attack` binary): for one
//! running server, a well-behaved client ([`probe`]) alone, then the same
//! client while an attack runs, with the server's memory, descriptors and
//! CPU read from `/proc` ([`procfs`]). [`soak`] mixes good and bad traffic
//! for minutes and checks that nothing grows.
//!
//! The attacks: many slow connections from one thread ([`crowd`]: slowloris,
//! slow bodies, slow readers, descriptor exhaustion) and fast floods in
//! threads of their own ([`floods`]: churn, a pipeline that never reads,
//! maximal heads). Everything stays on 127.0.0.1 and stops at a deadline.

pub mod crowd;
pub mod floods;
pub mod http;
pub mod phase;
pub mod probe;
pub mod procfs;
pub mod soak;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A flag that tells threads to stop; clones share it.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A flag not set yet.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Tells every holder to stop.
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`Stop::set`] was called.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Sleeps until `deadline`, waking every 10 ms to look at the flag;
    /// `false` when the flag was set.
    pub fn sleep_until(&self, deadline: Instant) -> bool {
        loop {
            if self.is_set() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            thread::sleep((deadline - now).min(Duration::from_millis(10)));
        }
    }
}

/// What an attack achieved; each attack fills what applies to it.
#[derive(Clone, Debug, Default)]
pub struct AttackReport {
    /// Connections open when it stopped.
    pub held: usize,
    /// Connections opened.
    pub connects: u64,
    /// Connects that failed or timed out.
    pub connect_errors: u64,
    /// Connections the server closed or reset (each opened again).
    pub closed_by_server: u64,
    /// Bytes written.
    pub bytes_sent: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// Requests sent (whole ones).
    pub requests: u64,
    /// Answers with the expected status (the header flood).
    pub responses: u64,
    /// How long it ran.
    pub seconds: f64,
}

impl AttackReport {
    /// Adds another thread's report to this one.
    pub fn merge(&mut self, other: &AttackReport) {
        self.held += other.held;
        self.connects += other.connects;
        self.connect_errors += other.connect_errors;
        self.closed_by_server += other.closed_by_server;
        self.bytes_sent += other.bytes_sent;
        self.bytes_read += other.bytes_read;
        self.requests += other.requests;
        self.responses += other.responses;
        self.seconds = self.seconds.max(other.seconds);
    }

    /// Connections opened per second.
    pub fn connects_per_second(&self) -> f64 {
        self.connects as f64 / self.seconds.max(1e-3)
    }
}

/// The attacks, in the order the script runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attack {
    /// Many connections each sending one more header byte every few seconds.
    Slowloris,
    /// Valid heads with a `Content-Length`, then the body at 1 byte/s.
    SlowBody,
    /// Requests for a large answer, read at 1 KiB/s.
    SlowReader,
    /// Connects and closes as fast as one core can.
    Churn,
    /// One connection writing pipelined requests without reading.
    PipelineFlood,
    /// Heads just under every default limit, as fast as answered.
    HeaderFlood,
    /// More idle connections than the server's descriptor limit.
    FdExhaustion,
}

impl Attack {
    /// Every attack.
    pub const ALL: [Attack; 7] = [
        Attack::Slowloris,
        Attack::SlowBody,
        Attack::SlowReader,
        Attack::Churn,
        Attack::PipelineFlood,
        Attack::HeaderFlood,
        Attack::FdExhaustion,
    ];

    /// The name on the command line and in the reports.
    pub fn name(self) -> &'static str {
        match self {
            Attack::Slowloris => "slowloris",
            Attack::SlowBody => "slow-body",
            Attack::SlowReader => "slow-reader",
            Attack::Churn => "churn",
            Attack::PipelineFlood => "pipeline-flood",
            Attack::HeaderFlood => "header-flood",
            Attack::FdExhaustion => "fd-exhaustion",
        }
    }

    /// The attack named `name`.
    pub fn parse(name: &str) -> Option<Attack> {
        Attack::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// The server under attack and what its routes answer.
#[derive(Clone, Debug)]
pub struct Target {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its process, for `/proc`.
    pub pid: u32,
    /// The well-behaved client's `GET` target.
    pub path: String,
    /// The status its answer has.
    pub status: u16,
    /// The body length its answer has.
    pub body_len: usize,
    /// A route taking `POST` bodies (the slow body and the soak's uploads).
    pub upload_path: String,
    /// Header lines (without CRLF) every upload carries, e.g. an API key.
    pub upload_headers: Vec<String>,
    /// A route with a large answer for the slow reader; `None`: the slow
    /// reader pipelines [`Sizes::slow_reader_pipeline`] requests for `path`.
    pub large_path: Option<String>,
}

impl Target {
    /// `hello` (or hyper-hello) at `addr`, process `pid`: `GET /plaintext`
    /// for the well-behaved client, `POST /echo`, `GET /large`.
    pub fn hello(addr: SocketAddr, pid: u32) -> Target {
        Target {
            addr,
            pid,
            path: "/plaintext".to_owned(),
            status: 200,
            body_len: 13,
            upload_path: "/echo".to_owned(),
            upload_headers: Vec::new(),
            large_path: Some("/large".to_owned()),
        }
    }

    /// The well-behaved client's request.
    pub fn probe_request(&self) -> Vec<u8> {
        http::request("GET", &self.path, &[], b"")
    }

    /// The well-behaved client of every run: 100 keep-alive requests/s and
    /// 20 new-connection requests/s, each to be answered within 2 s.
    pub fn probe(&self) -> probe::ProbeSpec {
        probe::ProbeSpec {
            addr: self.addr,
            request: self.probe_request(),
            status: self.status,
            body_len: self.body_len,
            timeout: Duration::from_secs(2),
            keep_alive_per_second: 100,
            new_connection_per_second: 20,
        }
    }
}

/// The attacks' sizes and rates, each from an environment variable (named in
/// brackets) with the default.
#[derive(Clone, Debug)]
pub struct Sizes {
    /// Slowloris connections (`SLOWLORIS_CONNS`, 10,000).
    pub slowloris_conns: usize,
    /// Seconds between two header bytes of one connection (`SLOWLORIS_INTERVAL`, 3).
    pub slowloris_interval: Duration,
    /// Slow-body connections (`SLOW_BODY_CONNS`, 1,000).
    pub slow_body_conns: usize,
    /// Their `Content-Length` (`SLOW_BODY_LENGTH`, 10,000: under hello's 1 MiB
    /// body limit and the shortener's 16 KiB one for `POST /api/links`).
    pub slow_body_length: usize,
    /// Slow-reader connections (`SLOW_READER_CONNS`, 1,000).
    pub slow_reader_conns: usize,
    /// Bytes each reads a second (`SLOW_READER_RATE`, 1,024).
    pub slow_reader_rate: usize,
    /// Their `SO_RCVBUF` (`SLOW_READER_RCVBUF`, 4,096).
    pub slow_reader_rcvbuf: usize,
    /// Pipelined requests per slow reader without a large route
    /// (`SLOW_READER_PIPELINE`, 2,000).
    pub slow_reader_pipeline: usize,
    /// Most bytes the pipeline flood writes (`PIPELINE_MAX_MIB`, 512 MiB).
    pub pipeline_max_bytes: u64,
    /// Header-flood connections (`HEADER_FLOOD_CONNS`, 4).
    pub header_flood_conns: usize,
    /// Idle connections of descriptor exhaustion (`FD_CONNS`, 1,000).
    pub fd_conns: usize,
    /// Most connects a second of one crowd (`CONNECTS_PER_SECOND`, 5,000).
    pub connects_per_second: u32,
}

impl Sizes {
    /// The sizes, from the environment.
    ///
    /// # Errors
    ///
    /// A variable that is set but not a number.
    pub fn from_env() -> Result<Sizes, String> {
        Ok(Sizes {
            slowloris_conns: env("SLOWLORIS_CONNS", 10_000)?,
            slowloris_interval: Duration::from_secs(env("SLOWLORIS_INTERVAL", 3)?),
            slow_body_conns: env("SLOW_BODY_CONNS", 1_000)?,
            slow_body_length: env("SLOW_BODY_LENGTH", 10_000)?,
            slow_reader_conns: env("SLOW_READER_CONNS", 1_000)?,
            slow_reader_rate: env("SLOW_READER_RATE", 1_024)?,
            slow_reader_rcvbuf: env("SLOW_READER_RCVBUF", 4_096)?,
            slow_reader_pipeline: env("SLOW_READER_PIPELINE", 2_000)?,
            pipeline_max_bytes: env::<u64>("PIPELINE_MAX_MIB", 512)? << 20,
            header_flood_conns: env("HEADER_FLOOD_CONNS", 4)?,
            fd_conns: env("FD_CONNS", 1_000)?,
            connects_per_second: env("CONNECTS_PER_SECOND", 5_000)?,
        })
    }
}

/// The number in environment variable `name`, or `default` when it is unset.
///
/// # Errors
///
/// When it is set but not a number.
pub fn env<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|_| format!("{name}: not a number: {text:?}")),
        Err(_) => Ok(default),
    }
}

/// A running attack: its threads and their stop flag.
pub struct Running {
    stop: Stop,
    threads: Vec<JoinHandle<AttackReport>>,
}

impl Running {
    /// Stops the attack and adds up what its threads achieved.
    ///
    /// # Panics
    ///
    /// When an attack thread panicked.
    pub fn finish(self) -> AttackReport {
        self.stop.set();
        let mut total = AttackReport::default();
        for thread in self.threads {
            total.merge(&thread.join().expect("attack thread"));
        }
        total
    }
}

/// Starts `attack` against `target`.
///
/// # Panics
///
/// When a thread cannot be spawned.
pub fn start(attack: Attack, target: &Target, sizes: &Sizes) -> Running {
    let stop = Stop::new();
    let mut threads = Vec::new();
    let mut spawn = |name: &str, work: Box<dyn FnOnce(&Stop) -> AttackReport + Send>| {
        let stop = stop.clone();
        let thread = thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                yield_to_the_client();
                work(&stop)
            })
            .expect("spawn an attack thread");
        threads.push(thread);
    };
    let (addr, max_bytes) = (target.addr, sizes.pipeline_max_bytes);
    let probe = target.probe_request();
    match attack {
        Attack::Churn => spawn(
            "churn",
            Box::new(move |stop| floods::churn(addr, &probe, stop)),
        ),
        Attack::PipelineFlood => spawn(
            "pipeline-flood",
            Box::new(move |stop| floods::pipeline(addr, &probe, max_bytes, stop)),
        ),
        Attack::HeaderFlood => {
            let head = floods::maximal_head(&target.path, 8_000, 99, 16_000);
            for _ in 0..sizes.header_flood_conns {
                let (head, status) = (head.clone(), target.status);
                spawn(
                    "header-flood",
                    Box::new(move |stop| floods::header_flood(addr, &head, status, stop)),
                );
            }
        }
        Attack::Slowloris | Attack::SlowBody | Attack::SlowReader | Attack::FdExhaustion => {
            let spec = crowd_spec(attack, target, sizes);
            spawn(
                attack.name(),
                Box::new(move |stop| crowd::run(&spec, stop).expect("a mio poll")),
            );
        }
    }
    Running { stop, threads }
}

/// Lowers the calling thread's priority to nice 19 (`renice` on its thread
/// id, from `/proc/thread-self`), so that an attack thread busy on the
/// harness's core does not delay the well-behaved client beside it: the
/// client's latency should be the server's. The attack still gets all the CPU
/// the client leaves. Best effort: without `renice` the thread keeps its
/// priority.
fn yield_to_the_client() {
    let tid = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|link| {
            let tid = link.file_name()?.to_str()?.to_owned();
            Some(tid)
        });
    if let Some(tid) = tid {
        let _ = std::process::Command::new("renice")
            .args(["-n", "19", "-p", &tid])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// What each connection of a crowd attack does.
fn crowd_spec(attack: Attack, target: &Target, sizes: &Sizes) -> crowd::CrowdSpec {
    let mut spec = crowd::CrowdSpec {
        addr: target.addr,
        connections: 0,
        opening: Vec::new(),
        drip: Vec::new(),
        drip_every: Duration::from_secs(1),
        reading: crowd::Reading::Discard,
        receive_buffer: None,
        connects_per_second: sizes.connects_per_second,
    };
    let partial_head = format!("GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\n", target.path).into_bytes();
    match attack {
        Attack::Slowloris => {
            spec.connections = sizes.slowloris_conns;
            spec.opening = partial_head;
            spec.drip = b"X-Slowloris: 1\r\n".to_vec();
            spec.drip_every = sizes.slowloris_interval;
        }
        Attack::SlowBody => {
            spec.connections = sizes.slow_body_conns;
            let mut head = format!(
                "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
                target.upload_path, sizes.slow_body_length
            );
            for line in &target.upload_headers {
                head.push_str(line);
                head.push_str("\r\n");
            }
            head.push_str("\r\n");
            spec.opening = head.into_bytes();
            spec.drip = b" ".to_vec();
        }
        Attack::SlowReader => {
            spec.connections = sizes.slow_reader_conns;
            spec.opening = match &target.large_path {
                Some(path) => http::request("GET", path, &[], b""),
                None => target.probe_request().repeat(sizes.slow_reader_pipeline),
            };
            spec.reading = crowd::Reading::PerSecond(sizes.slow_reader_rate);
            spec.receive_buffer = Some(sizes.slow_reader_rcvbuf);
        }
        Attack::FdExhaustion => {
            spec.connections = sizes.fd_conns;
            // One byte, so that TCP_DEFER_ACCEPT hands the connection over.
            spec.opening = b"G".to_vec();
        }
        Attack::Churn | Attack::PipelineFlood | Attack::HeaderFlood => {}
    }
    spec
}
