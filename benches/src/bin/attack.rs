//! The attack harness's client (`benches/attack/run.sh`, `benches/attack/soak.sh`).
//!
//! `attack run NAME --addr A --pid P --server LABEL [target flags]`: a
//! baseline phase, then the attack NAME with the well-behaved client; prints
//! one `ROW` line per phase. `attack soak --addr A --pid P [target flags]`:
//! the soak; exits 1 when it fails. Sizes and durations come from the
//! environment (see `--help`).
#![forbid(unsafe_code)]

use keel_benches::attack::phase::{self, Durations};
use keel_benches::attack::soak::{self, SoakSpec};
use keel_benches::attack::{env, Attack, Sizes, Target};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str =
    "usage: attack run NAME --addr HOST:PORT --pid PID [--server LABEL] [target flags]
       attack soak --addr HOST:PORT --pid PID [--seconds N] [target flags]
  NAME: slowloris, slow-body, slow-reader, churn, pipeline-flood, header-flood, fd-exhaustion
  --addr          the server (127.0.0.1 only)
  --pid           its process, for /proc (memory, descriptors, CPU)
  --server        its name in the report rows (default: server)
  --seconds       soak: how long the traffic runs (default 180)
target flags (defaults: hello's contract):
  --path P        the well-behaved client's GET target (/plaintext)
  --status N      the status of its answer (200)
  --body-len N    the body length of its answer (13)
  --upload-path P a POST route that reads its body (/echo; the soak needs it to echo)
  --upload-header 'Name: value'  a header every upload carries (repeatable)
  --large-path P  a large answer for the slow reader (/large); 'none': pipeline
                  SLOW_READER_PIPELINE requests for --path instead
environment (defaults): BASELINE_SECONDS (5), RAMP_SECONDS (3), ATTACK_SECONDS (15),
  SLOWLORIS_CONNS (10000), SLOWLORIS_INTERVAL (3 s), SLOW_BODY_CONNS (1000),
  SLOW_BODY_LENGTH (10000), SLOW_READER_CONNS (1000), SLOW_READER_RATE (1024 B/s),
  SLOW_READER_RCVBUF (4096), SLOW_READER_PIPELINE (2000), PIPELINE_MAX_MIB (512),
  HEADER_FLOOD_CONNS (4),
  FD_CONNS (1000), CONNECTS_PER_SECOND (5000, per crowd);
  soak: MIX_PER_SECOND (50), SOAK_RSS_GROWTH_MIB (4), SOAK_SETTLE_SECONDS (10)";

enum Command {
    Run { attack: Attack, server: String },
    Soak { seconds: u64 },
}

fn parse() -> Result<(Command, Target), String> {
    let mut args = std::env::args().skip(1);
    let command = args.next().ok_or("no command")?;
    let attack = if command == "run" {
        let name = args.next().ok_or("run needs an attack name")?;
        Some(Attack::parse(&name).ok_or(format!("unknown attack {name:?}"))?)
    } else if command == "soak" {
        None
    } else if command == "-h" || command == "--help" {
        return Err(String::new());
    } else {
        return Err(format!("unknown command {command:?}"));
    };
    let (mut addr, mut pid, mut server, mut seconds) = (None, None, "server".to_owned(), 180);
    let mut target = Target::hello(([127, 0, 0, 1], 0).into(), 0);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = |what: &str| {
            value
                .parse::<u64>()
                .map_err(|_| format!("{what}: not a number: {value:?}"))
        };
        match flag.as_str() {
            "--addr" => addr = Some(value.parse().map_err(|_| format!("--addr: {value:?}"))?),
            "--pid" => pid = Some(u32::try_from(number("--pid")?).map_err(|e| e.to_string())?),
            "--server" => server = value,
            "--seconds" => seconds = number("--seconds")?,
            "--path" => target.path = value,
            "--status" => {
                target.status = u16::try_from(number("--status")?).map_err(|e| e.to_string())?
            }
            "--body-len" => {
                target.body_len =
                    usize::try_from(number("--body-len")?).map_err(|e| e.to_string())?
            }
            "--upload-path" => target.upload_path = value,
            "--upload-header" => target.upload_headers.push(value),
            "--large-path" => target.large_path = (value != "none").then_some(value),
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    target.addr = addr.ok_or("--addr is required")?;
    target.pid = pid.ok_or("--pid is required")?;
    if !target.addr.ip().is_loopback() {
        return Err(format!(
            "--addr {}: the harness attacks loopback addresses only",
            target.addr
        ));
    }
    let command = match attack {
        Some(attack) => Command::Run { attack, server },
        None => Command::Soak { seconds },
    };
    Ok((command, target))
}

fn seconds(name: &str, default: u64) -> Result<Duration, String> {
    env(name, default).map(Duration::from_secs)
}

fn main() -> ExitCode {
    let (command, target) = match parse() {
        Ok(parsed) => parsed,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("attack: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Run { attack, server } => run(attack, &server, &target),
        Command::Soak { seconds } => run_soak(seconds, &target),
    }
}

fn run(attack: Attack, server: &str, target: &Target) -> ExitCode {
    let settings = Sizes::from_env().and_then(|sizes| {
        let durations = Durations {
            baseline: seconds("BASELINE_SECONDS", 5)?,
            ramp: seconds("RAMP_SECONDS", 3)?,
            attack: seconds("ATTACK_SECONDS", 15)?,
        };
        Ok((sizes, durations))
    });
    let (sizes, durations) = match settings {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("attack: {message}");
            return ExitCode::from(2);
        }
    };
    for row in phase::run(attack, target, &sizes, durations) {
        println!("{}", row.row(attack, server));
    }
    ExitCode::SUCCESS
}

fn run_soak(seconds: u64, target: &Target) -> ExitCode {
    let spec = (|| -> Result<SoakSpec, String> {
        Ok(SoakSpec {
            duration: Duration::from_secs(seconds),
            mix_per_second: env("MIX_PER_SECOND", 50)?,
            rss_growth_kib: env::<u64>("SOAK_RSS_GROWTH_MIB", 4)? * 1024,
            settle: self::seconds("SOAK_SETTLE_SECONDS", 10)?,
        })
    })();
    let spec = match spec {
        Ok(spec) => spec,
        Err(message) => {
            eprintln!("attack: {message}");
            return ExitCode::from(2);
        }
    };
    let report = soak::run(target, &spec);
    println!("second  RSS KiB  descriptors");
    for sample in report.usage.samples.iter().step_by(10) {
        println!("{:6.0}  {:7}  {:11}", sample.at, sample.rss_kib, sample.fds);
    }
    println!(
        "well-behaved client: {} requests, {:.2}% ok, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, failures {}",
        report.probe.requests(),
        report.probe.success_percent(),
        report.probe.latency_ms(0.5),
        report.probe.latency_ms(0.99),
        report.probe.latency_ms(1.0),
        report.probe.failures()
    );
    println!("mix: {}", report.mix);
    println!(
        "RSS: {} KiB at the reference point, {} KiB at the end (bound +{} KiB); server CPU {:.0}%",
        report.rss_reference_kib, report.rss_end_kib, spec.rss_growth_kib, report.usage.cpu_percent
    );
    println!(
        "descriptors: {} before, {} after (max {} during)",
        report.fds_before,
        report.fds_after,
        report.usage.fds_max()
    );
    if report.problems.is_empty() {
        println!("SOAK PASSED");
        ExitCode::SUCCESS
    } else {
        for problem in &report.problems {
            println!("SOAK FAILED: {problem}");
        }
        ExitCode::FAILURE
    }
}
