//! The attack harness's pieces against in-process servers (keel's hello and
//! the hyper baseline), small and short: the well-behaved client succeeds
//! against both and reports each kind of failure when it should; a crowd
//! holds its connections; the floods run.

use keel_benches::attack::http::Failure;
use keel_benches::attack::phase::{self, Durations};
use keel_benches::attack::probe::{Probe, ProbeReport, ProbeSpec};
use keel_benches::attack::{self, http, Attack, Sizes, Target};
use keel_benches::{hyper_app, keel_app};
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::thread;
use std::time::Duration;

fn spec(addr: SocketAddr) -> ProbeSpec {
    ProbeSpec {
        addr,
        request: http::request("GET", "/plaintext", &[], b""),
        status: 200,
        body_len: 13,
        timeout: Duration::from_millis(500),
        keep_alive_per_second: 100,
        new_connection_per_second: 20,
    }
}

fn probe_for(spec: &ProbeSpec, span: Duration) -> ProbeReport {
    let probe = Probe::start(spec);
    thread::sleep(span);
    probe.finish()
}

fn target(addr: SocketAddr) -> Target {
    Target::hello(addr, std::process::id())
}

fn small_sizes() -> Sizes {
    Sizes {
        slowloris_conns: 64,
        slowloris_interval: Duration::from_secs(1),
        slow_body_conns: 16,
        slow_body_length: 1000,
        slow_reader_conns: 8,
        slow_reader_rate: 1024,
        slow_reader_rcvbuf: 4096,
        slow_reader_pipeline: 10,
        pipeline_max_bytes: 64 << 20,
        header_flood_conns: 1,
        fd_conns: 16,
        connects_per_second: 1000,
    }
}

/// What `failures()` says when every request failed with `kind`.
fn split(kind: &str, report: &ProbeReport) -> String {
    let on_keep_alive = report.outcomes.iter().filter(|o| o.keep_alive).count();
    let on_new = report.requests() - on_keep_alive;
    assert!(on_keep_alive > 0 && on_new > 0, "both threads ran");
    format!("{kind}:{on_new}/new,{kind}:{on_keep_alive}/ka")
}

#[test]
fn the_probe_succeeds_against_both_servers() {
    let keel = keel_app::start_server().expect("keel starts");
    let hyper = hyper_app::ThreadServer::start().expect("hyper starts");
    for addr in [keel.local_addr(), hyper.local_addr()] {
        let report = probe_for(&spec(addr), Duration::from_millis(500));
        assert!(report.requests() >= 30, "{} requests", report.requests());
        assert_eq!(report.failures(), "-");
        assert!((report.success_percent() - 100.0).abs() < f64::EPSILON);
        assert!(report.latency_ms(0.99) < 500.0);
    }
}

#[test]
fn the_probe_reports_each_failure() {
    let keel = keel_app::start_server().expect("keel starts");
    let mut wrong_status = spec(keel.local_addr());
    wrong_status.status = 201;
    let report = probe_for(&wrong_status, Duration::from_millis(200));
    assert!(report.requests() > 0);
    assert_eq!(report.failures(), split("status", &report));

    let mut wrong_length = spec(keel.local_addr());
    wrong_length.body_len = 12;
    let report = probe_for(&wrong_length, Duration::from_millis(200));
    assert_eq!(report.failures(), split("length", &report));

    // A port nobody listens on: every connect is refused.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let report = probe_for(&spec(closed), Duration::from_millis(200));
    assert!(report.requests() > 0);
    assert_eq!(report.failures(), split("connect", &report));
    assert!(report.success_percent() < f64::EPSILON);

    // A server that accepts and never answers: timeouts, counted at their length.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let mut slow = spec(silent_addr);
    slow.timeout = Duration::from_millis(150);
    let report = probe_for(&slow, Duration::from_millis(400));
    assert!(report.requests() > 0);
    assert_eq!(report.failures(), split("timeout", &report));
    assert!(report.latency_ms(0.5) >= 150.0);
}

#[test]
fn a_slowloris_crowd_holds_its_connections() {
    let keel = keel_app::start_server().expect("keel starts");
    let durations = Durations {
        baseline: Duration::from_millis(300),
        ramp: Duration::from_millis(700),
        attack: Duration::from_millis(500),
    };
    let [baseline, attacked] = phase::run(
        Attack::Slowloris,
        &target(keel.local_addr()),
        &small_sizes(),
        durations,
    );
    assert_eq!(baseline.probe.failures(), "-");
    assert!(baseline.attack.is_none());
    let report = attacked.attack.as_ref().expect("an attack report");
    assert_eq!(report.held, 64, "{report:?}");
    assert_eq!(report.connects, 64, "{report:?}");
    assert_eq!(report.closed_by_server, 0, "{report:?}");
    // The opening and at least one drip byte each.
    assert!(report.bytes_sent > 64 * 40, "{report:?}");
    // This process holds both ends of each connection.
    assert!(attacked.usage.fds_max() >= 128, "{:?}", attacked.usage);
    let row = attacked.row(Attack::Slowloris, "keel");
    assert!(
        row.starts_with("ROW attack=slowloris server=keel phase=attack "),
        "{row}"
    );
    assert!(row.contains(" held=64 "), "{row}");
}

#[test]
fn the_floods_reach_the_server() {
    let keel = keel_app::start_server().expect("keel starts");
    let target = target(keel.local_addr());
    for (attack, check) in [
        (
            Attack::Churn,
            (|r| r.connects > 10) as fn(&attack::AttackReport) -> bool,
        ),
        (Attack::PipelineFlood, |r| r.requests > 100 && r.held == 1),
        (Attack::HeaderFlood, |r| {
            r.responses > 10 && r.responses == r.requests
        }),
        (Attack::SlowReader, |r| r.bytes_read > 0 && r.held == 8),
    ] {
        let running = attack::start(attack, &target, &small_sizes());
        thread::sleep(Duration::from_millis(1200));
        let report = running.finish();
        assert!(check(&report), "{}: {report:?}", attack.name());
    }
    // The server still answers afterwards.
    let report = probe_for(&spec(keel.local_addr()), Duration::from_millis(200));
    assert_eq!(report.failures(), "-");
}

#[test]
fn a_read_that_never_completes_is_a_timeout() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_millis(100);
    let mut stream = http::connect(addr, deadline).expect("connects");
    let (mut accepted, _) = silent.accept().unwrap();
    let mut buf = Vec::new();
    assert_eq!(
        http::read_response(&mut stream, &mut buf, false, deadline),
        Err(Failure::Timeout)
    );
    drop(stream);
    // The peer sees the close.
    assert_eq!(accepted.read(&mut [0u8; 8]).unwrap(), 0);
}
