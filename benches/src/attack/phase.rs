//! The two phases of one attack run, and their report rows: a baseline (the
//! well-behaved client alone), then the attack: the attack alone for a ramp
//! (its connections open), then the attack and the client together, measured.

use super::probe::{Probe, ProbeReport, ProbeSpec};
use super::procfs::{Sampler, Usage};
use super::{start, Attack, AttackReport, Sizes, Target};
use std::fmt::Write as _;
use std::thread;
use std::time::Duration;

/// How often the server's memory and descriptors are read.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// How long each phase runs.
#[derive(Clone, Copy, Debug)]
pub struct Durations {
    /// The baseline, measured.
    pub baseline: Duration,
    /// The attack alone before the measurement starts.
    pub ramp: Duration,
    /// The attack with the client, measured.
    pub attack: Duration,
}

/// One phase's results.
#[derive(Debug)]
pub struct PhaseRow {
    /// `baseline` or `attack`.
    pub phase: &'static str,
    /// What the well-behaved client saw.
    pub probe: ProbeReport,
    /// What the server cost.
    pub usage: Usage,
    /// What the attack achieved (`None` in the baseline).
    pub attack: Option<AttackReport>,
}

/// Runs the baseline and the attack phase of `attack` against `target`.
pub fn run(attack: Attack, target: &Target, sizes: &Sizes, durations: Durations) -> [PhaseRow; 2] {
    let probe = target.probe();
    let (probe_report, usage) = measured(target.pid, &probe, durations.baseline);
    let baseline = PhaseRow {
        phase: "baseline",
        probe: probe_report,
        usage,
        attack: None,
    };
    let running = start(attack, target, sizes);
    thread::sleep(durations.ramp);
    let (probe_report, usage) = measured(target.pid, &probe, durations.attack);
    let attacked = PhaseRow {
        phase: "attack",
        probe: probe_report,
        usage,
        attack: Some(running.finish()),
    };
    [baseline, attacked]
}

/// The well-behaved client and the sampler, together for `seconds`.
fn measured(pid: u32, probe: &ProbeSpec, span: Duration) -> (ProbeReport, Usage) {
    let sampler = Sampler::start(pid, SAMPLE_EVERY);
    let client = Probe::start(probe);
    thread::sleep(span);
    let report = client.finish();
    (report, sampler.finish())
}

impl PhaseRow {
    /// The machine-readable line the script turns into tables:
    /// `ROW key=value...`, with `attack` and `server` first.
    pub fn row(&self, attack: Attack, server: &str) -> String {
        let p = &self.probe;
        let mut line = format!(
            "ROW attack={} server={server} phase={} requests={} success={:.2} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} failures={} rss_mib={:.1} fds={} cpu={:.0} tcp_queued_mib={:.0}",
            attack.name(),
            self.phase,
            p.requests(),
            p.success_percent(),
            p.latency_ms(0.5),
            p.latency_ms(0.99),
            p.latency_ms(1.0),
            p.failures(),
            self.usage.rss_max_mib(),
            self.usage.fds_max(),
            self.usage.cpu_percent,
            self.usage.tcp_queued_max_mib(),
        );
        if let Some(a) = &self.attack {
            // Writing to a String cannot fail.
            let _ = write!(
                line,
                " held={} connects={} connects_per_s={:.0} connect_errors={} closed={} sent_kib={} read_kib={} requests_sent={} answered={}",
                a.held,
                a.connects,
                a.connects_per_second(),
                a.connect_errors,
                a.closed_by_server,
                a.bytes_sent / 1024,
                a.bytes_read / 1024,
                a.requests,
                a.responses,
            );
        }
        line
    }
}
