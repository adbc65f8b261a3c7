//! The well-behaved client: what a real user sees while the server is under
//! attack. Two threads, each paced: one keep-alive connection sending
//! sequential requests (default 100/s), and new-connection requests
//! (connect, request, read, close; default 20/s). A request succeeds when its
//! whole answer, with the expected status and body length, arrives before
//! the timeout; its latency runs from just before the connect (when it opens
//! one) to the last body byte.

use super::http::{self, Answer, Failure};
use super::Stop;
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// What the well-behaved client sends and expects.
#[derive(Clone, Debug)]
pub struct ProbeSpec {
    /// The server.
    pub addr: SocketAddr,
    /// One request, as bytes (see [`http::request`]).
    pub request: Vec<u8>,
    /// The status a correct answer has.
    pub status: u16,
    /// The body length a correct answer has.
    pub body_len: usize,
    /// How long one request may take, connect included.
    pub timeout: Duration,
    /// Requests per second on the keep-alive connection (0: none).
    pub keep_alive_per_second: u32,
    /// Requests per second on new connections (0: none).
    pub new_connection_per_second: u32,
}

/// One request's outcome.
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    /// From the start of the request (or its connect) to its end.
    pub took: Duration,
    /// `None` when it succeeded.
    pub failure: Option<Failure>,
    /// Whether it went on the keep-alive connection (else on a new one).
    pub keep_alive: bool,
}

/// What the client saw over a phase.
#[derive(Clone, Debug, Default)]
pub struct ProbeReport {
    /// Every request's outcome, both threads together.
    pub outcomes: Vec<Outcome>,
}

impl ProbeReport {
    /// Requests sent.
    pub fn requests(&self) -> usize {
        self.outcomes.len()
    }

    /// Requests that failed.
    pub fn failed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.failure.is_some()).count()
    }

    /// Share of requests that succeeded, in percent (100 with no request).
    pub fn success_percent(&self) -> f64 {
        if self.outcomes.is_empty() {
            return 100.0;
        }
        100.0 * (self.requests() - self.failed()) as f64 / self.requests() as f64
    }

    /// The `q` quantile (0 to 1, nearest rank) of the latencies, in ms.
    /// Failed requests count too, at the time they took to fail: a timeout
    /// counts as the whole timeout, so failures cannot flatter the
    /// percentiles by being left out.
    pub fn latency_ms(&self, q: f64) -> f64 {
        let mut took: Vec<Duration> = self.outcomes.iter().map(|o| o.took).collect();
        if took.is_empty() {
            return 0.0;
        }
        took.sort_unstable();
        let rank = ((q * took.len() as f64).ceil() as usize).clamp(1, took.len());
        took[rank - 1].as_secs_f64() * 1000.0
    }

    /// Failures counted by kind and by connection, e.g.
    /// `timeout:3/new,closed:1/ka` (`ka`: on the keep-alive connection,
    /// `new`: on a new one), or `-`.
    pub fn failures(&self) -> String {
        let mut counts = BTreeMap::new();
        for outcome in &self.outcomes {
            if let Some(failure) = outcome.failure {
                *counts
                    .entry((failure, outcome.keep_alive))
                    .or_insert(0usize) += 1;
            }
        }
        if counts.is_empty() {
            return "-".to_owned();
        }
        let parts: Vec<String> = counts
            .iter()
            .map(|((kind, keep_alive), n)| {
                let on = if *keep_alive { "ka" } else { "new" };
                format!("{}:{n}/{on}", kind.name())
            })
            .collect();
        parts.join(",")
    }
}

/// The running client; [`Probe::finish`] stops it and returns what it saw.
pub struct Probe {
    stop: Stop,
    threads: Vec<JoinHandle<Vec<Outcome>>>,
}

impl Probe {
    /// Starts the client's threads.
    ///
    /// # Panics
    ///
    /// When a thread cannot be spawned.
    pub fn start(spec: &ProbeSpec) -> Probe {
        let stop = Stop::new();
        let mut threads = Vec::new();
        for keep_alive in [true, false] {
            let rate = if keep_alive {
                spec.keep_alive_per_second
            } else {
                spec.new_connection_per_second
            };
            if rate == 0 {
                continue;
            }
            let (spec, stop) = (spec.clone(), stop.clone());
            let period = Duration::from_secs(1) / rate;
            let name = if keep_alive {
                "probe-keep-alive"
            } else {
                "probe-new-conn"
            };
            let thread = thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || run(&spec, keep_alive, period, &stop))
                .expect("spawn a probe thread");
            threads.push(thread);
        }
        Probe { stop, threads }
    }

    /// Stops the client and returns every outcome.
    ///
    /// # Panics
    ///
    /// When a probe thread panicked.
    pub fn finish(self) -> ProbeReport {
        self.stop.set();
        let mut outcomes = Vec::new();
        for thread in self.threads {
            outcomes.extend(thread.join().expect("probe thread"));
        }
        ProbeReport { outcomes }
    }
}

/// One thread's paced loop: the next request starts one period after the
/// previous one started, or at once when the previous one took longer.
fn run(spec: &ProbeSpec, keep_alive: bool, period: Duration, stop: &Stop) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut conn: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(4096);
    let mut next = Instant::now();
    while !stop.is_set() {
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
            continue;
        }
        next = now + period;
        let started = Instant::now();
        let deadline = started + spec.timeout;
        let result = if keep_alive {
            one_request(spec, &mut conn, &mut buf, deadline)
        } else {
            let mut fresh = None;
            one_request(spec, &mut fresh, &mut buf, deadline)
        };
        let took = started.elapsed();
        // The socket deadlines bound each read; an answer completed past the
        // timeout (the thread scheduled late) is late all the same.
        let result = result.and_then(|()| {
            if took > spec.timeout {
                Err(Failure::Timeout)
            } else {
                Ok(())
            }
        });
        if result.is_err() {
            // A broken or late connection is not reused; the next request connects.
            conn = None;
        }
        outcomes.push(Outcome {
            took,
            failure: result.err(),
            keep_alive,
        });
    }
    outcomes
}

/// Sends the request on `conn` (connecting first when it is `None`) and
/// checks the answer.
fn one_request(
    spec: &ProbeSpec,
    conn: &mut Option<TcpStream>,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<(), Failure> {
    let stream = match conn {
        Some(stream) => stream,
        None => {
            buf.clear();
            conn.insert(http::connect(spec.addr, deadline)?)
        }
    };
    http::send(stream, &spec.request, deadline)?;
    let Answer { status, body_len } = http::read_response(stream, buf, false, deadline)?;
    if status != spec.status {
        return Err(Failure::Status);
    }
    if body_len != spec.body_len {
        return Err(Failure::Length);
    }
    Ok(())
}
