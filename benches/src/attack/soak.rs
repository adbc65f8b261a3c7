//! The soak: minutes of mixed traffic against one running server, the
//! well-behaved client ([`super::probe`]) throughout, the server's memory and
//! descriptors read each second ([`super::procfs`]). It fails when the
//! well-behaved traffic sees any error, when the resident memory at the end
//! exceeds the one at minute 1 by more than a bound, or when the descriptors
//! do not come back to their count before the traffic once it stops.
//!
//! The mix, one action after another on a fresh connection each, paced:
//! well-behaved (checked): a keep-alive burst, 16 pipelined requests in one
//! write, `Connection: close`, an upload to the echo route; bad (answers
//! counted, not checked): a malformed head, an oversized head, a body cut
//! short, a reset in the middle of a head, a reset with an answer unread.

use super::http::{self, Failure};
use super::probe::{Probe, ProbeReport};
use super::procfs::{self, Sampler, Usage};
use super::{Stop, Target};
use socket2::SockRef;
use std::collections::BTreeMap;
use std::io::Read;
use std::thread;
use std::time::{Duration, Instant};

/// What the soak runs and the bounds it checks.
#[derive(Clone, Debug)]
pub struct SoakSpec {
    /// How long the traffic runs.
    pub duration: Duration,
    /// Actions of the mix per second.
    pub mix_per_second: u32,
    /// Most the resident memory may grow from minute 1 (or half the run,
    /// when shorter than two minutes) to the end, KiB.
    pub rss_growth_kib: u64,
    /// How long the descriptors may take to come back once the traffic stops.
    pub settle: Duration,
}

/// The actions of the mix, in the order they repeat.
const MIX: [Action; 9] = [
    Action::KeepAliveBurst,
    Action::Pipelined,
    Action::Malformed,
    Action::Close,
    Action::Oversized,
    Action::Upload,
    Action::CutShort,
    Action::ResetMidHead,
    Action::ResetUnread,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    KeepAliveBurst,
    Pipelined,
    Close,
    Upload,
    Malformed,
    Oversized,
    CutShort,
    ResetMidHead,
    ResetUnread,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::KeepAliveBurst => "keep-alive",
            Action::Pipelined => "pipelined",
            Action::Close => "close",
            Action::Upload => "upload",
            Action::Malformed => "malformed",
            Action::Oversized => "oversized",
            Action::CutShort => "cut-short",
            Action::ResetMidHead => "reset-mid-head",
            Action::ResetUnread => "reset-unread",
        }
    }

    /// Whether its failures count against the server.
    fn well_behaved(self) -> bool {
        matches!(
            self,
            Action::KeepAliveBurst | Action::Pipelined | Action::Close | Action::Upload
        )
    }
}

/// Counts per action: done, and what went wrong (well-behaved) or what the
/// server answered (bad).
#[derive(Default, Debug)]
struct MixReport {
    done: BTreeMap<Action, u64>,
    errors: BTreeMap<(Action, String), u64>,
}

/// The soak's verdict and its numbers.
#[derive(Debug)]
pub struct SoakReport {
    /// The well-behaved client's requests.
    pub probe: ProbeReport,
    /// The server's readings, one a second.
    pub usage: Usage,
    /// Descriptors open before the traffic.
    pub fds_before: usize,
    /// Descriptors open once the traffic stopped and the server settled.
    pub fds_after: usize,
    /// Resident KiB at the reference point (minute 1) and at the end.
    pub rss_reference_kib: u64,
    /// Resident KiB at the end of the traffic.
    pub rss_end_kib: u64,
    /// One line per problem; empty when the soak passed.
    pub problems: Vec<String>,
    /// The mix's counts, one line.
    pub mix: String,
}

/// Runs the soak against `target` (its upload route echoes the body).
pub fn run(target: &Target, spec: &SoakSpec) -> SoakReport {
    let fds_before = procfs::fds(target.pid);
    let probe = target.probe();
    let sampler = Sampler::start(target.pid, Duration::from_secs(1));
    let client = Probe::start(&probe);
    let stop = Stop::new();
    let mixer = {
        let (target, stop, rate) = (target.clone(), stop.clone(), spec.mix_per_second);
        thread::Builder::new()
            .name("soak-mix".to_owned())
            .spawn(move || mix(&target, rate, &stop))
            .expect("spawn the mixer")
    };
    let _ = Stop::new().sleep_until(Instant::now() + spec.duration);
    stop.set();
    let mix_report = mixer.join().expect("mixer thread");
    let probe_report = client.finish();
    let usage = sampler.finish();

    let settled_by = Instant::now() + spec.settle;
    let mut fds_after = procfs::fds(target.pid);
    while fds_after > fds_before && Instant::now() < settled_by {
        thread::sleep(Duration::from_millis(100));
        fds_after = procfs::fds(target.pid);
    }

    let reference_at = spec.duration.as_secs_f64().min(120.0) / 2.0;
    let rss_at = |at: f64| {
        usage
            .samples
            .iter()
            .find(|s| s.at >= at)
            .or(usage.samples.last())
            .map_or(0, |s| s.rss_kib)
    };
    let rss_reference_kib = rss_at(reference_at);
    let rss_end_kib = usage.samples.last().map_or(0, |s| s.rss_kib);

    let mut problems = Vec::new();
    if !procfs::alive(target.pid) {
        problems.push("the server is gone".to_owned());
    }
    if probe_report.failed() > 0 {
        problems.push(format!(
            "the well-behaved client saw {} errors in {} requests ({})",
            probe_report.failed(),
            probe_report.requests(),
            probe_report.failures()
        ));
    }
    for ((action, what), n) in &mix_report.errors {
        if action.well_behaved() {
            problems.push(format!("{} (well-behaved): {what} x{n}", action.name()));
        }
    }
    if rss_end_kib > rss_reference_kib + spec.rss_growth_kib {
        problems.push(format!(
            "resident memory grew from {rss_reference_kib} KiB at {reference_at:.0} s to {rss_end_kib} KiB at the end (bound +{} KiB)",
            spec.rss_growth_kib
        ));
    }
    if fds_after > fds_before {
        problems.push(format!(
            "{fds_after} descriptors open {:.0} s after the traffic stopped, {fds_before} before it",
            spec.settle.as_secs_f64()
        ));
    }
    SoakReport {
        probe: probe_report,
        usage,
        fds_before,
        fds_after,
        rss_reference_kib,
        rss_end_kib,
        problems,
        mix: mix_report.summary(),
    }
}

impl MixReport {
    fn summary(&self) -> String {
        let mut parts = Vec::new();
        for (action, n) in &self.done {
            parts.push(format!("{}={n}", action.name()));
        }
        for ((action, what), n) in &self.errors {
            parts.push(format!("{}:{what}={n}", action.name()));
        }
        parts.join(" ")
    }
}

/// The mixer's loop: the actions in turn, `rate` a second, until `stop`.
fn mix(target: &Target, rate: u32, stop: &Stop) -> MixReport {
    let mut report = MixReport::default();
    let period = Duration::from_secs(1) / rate.max(1);
    let mut next = Instant::now();
    for (turn, action) in MIX.iter().copied().cycle().enumerate() {
        if !stop.sleep_until(next) {
            break;
        }
        next += period;
        let outcome = act(action, target, turn);
        *report.done.entry(action).or_default() += 1;
        if let Err(what) = outcome {
            *report.errors.entry((action, what)).or_default() += 1;
        }
    }
    report
}

/// One action on a fresh connection. `Err` names what went wrong (a
/// well-behaved action) or what the server answered (a bad one).
fn act(action: Action, target: &Target, turn: usize) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let failed = |f: Failure| f.name().to_owned();
    let mut stream = http::connect(target.addr, deadline).map_err(failed)?;
    let mut buf = Vec::new();
    let probe = target.probe_request();
    let expect = |stream: &mut _, buf: &mut Vec<u8>, status: u16, len: usize| {
        let answer = http::read_response(stream, buf, false, deadline).map_err(failed)?;
        if answer.status != status || answer.body_len != len {
            return Err(format!("{}/{}B", answer.status, answer.body_len));
        }
        Ok(())
    };
    match action {
        Action::KeepAliveBurst => {
            for _ in 0..10 {
                http::send(&mut stream, &probe, deadline).map_err(failed)?;
                expect(&mut stream, &mut buf, target.status, target.body_len)?;
            }
        }
        Action::Pipelined => {
            http::send(&mut stream, &probe.repeat(16), deadline).map_err(failed)?;
            for _ in 0..16 {
                expect(&mut stream, &mut buf, target.status, target.body_len)?;
            }
        }
        Action::Close => {
            let request =
                http::request("GET", &target.path, &["Connection: close".to_owned()], b"");
            http::send(&mut stream, &request, deadline).map_err(failed)?;
            expect(&mut stream, &mut buf, target.status, target.body_len)?;
            // The server must close after the answer.
            stream
                .set_read_timeout(Some(Duration::from_secs(2)))
                .map_err(|e| e.to_string())?;
            if !matches!(stream.read(&mut [0u8; 64]), Ok(0)) {
                return Err("not closed after Connection: close".to_owned());
            }
        }
        Action::Upload => {
            // Sizes from 1 byte to 256 KiB, a different one each turn.
            let len = 1 + (turn * 7919) % (256 * 1024);
            let body = vec![b'u'; len];
            let request = http::request("POST", &target.upload_path, &target.upload_headers, &body);
            http::send(&mut stream, &request, deadline).map_err(failed)?;
            expect(&mut stream, &mut buf, 200, len)?;
        }
        Action::Malformed => {
            http::send(
                &mut stream,
                b"GET /plaintext HTTP/1.1\r\nBad Header\r\n\r\n",
                deadline,
            )
            .map_err(failed)?;
            return answered(&mut stream, &mut buf, 400, deadline);
        }
        Action::Oversized => {
            let head = super::floods::maximal_head(&target.path, 100, 20, 32 * 1024);
            http::send(&mut stream, &head, deadline).map_err(failed)?;
            return answered(&mut stream, &mut buf, 431, deadline);
        }
        Action::CutShort => {
            let mut request = http::request(
                "POST",
                &target.upload_path,
                &target.upload_headers,
                &[b'c'; 1000],
            );
            request.truncate(request.len() - 900);
            http::send(&mut stream, &request, deadline).map_err(failed)?;
        }
        Action::ResetMidHead => {
            http::send(&mut stream, &probe[..probe.len() / 2], deadline).map_err(failed)?;
            // Not fatal: without it the close is a FIN, which the mix covers too.
            let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        }
        Action::ResetUnread => {
            http::send(&mut stream, &probe.repeat(4), deadline).map_err(failed)?;
            let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        }
    }
    Ok(())
}

/// A bad action's answer: `Err` names it when it is not `status`.
fn answered(
    stream: &mut std::net::TcpStream,
    buf: &mut Vec<u8>,
    status: u16,
    deadline: Instant,
) -> Result<(), String> {
    match http::read_response(stream, buf, false, deadline) {
        Ok(answer) if answer.status == status => Ok(()),
        Ok(answer) => Err(format!("answered {}", answer.status)),
        Err(f) => Err(f.name().to_owned()),
    }
}
