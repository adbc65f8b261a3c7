//! The shortener on PostgreSQL across a bad network: a slow link, a lossy
//! link, a cut link, then the link back.
//!
//! ```sh
//! examples/shortener/tests/faults.sh      # installs what is missing, then runs it
//! cargo test -p shortener --test faults -- --ignored --nocapture   # as root
//! ```
//!
//! Ignored by default: it needs root, iproute2 (`ip`, `tc`), iptables
//! where the kernel has no netem, and PostgreSQL (`faults.sh` installs
//! what is missing), and runs for about 65 seconds.
//! Run with `--ignored` on a machine that lacks one of them, it fails and
//! says which.
//!
//! # The network
//!
//! The test makes a network namespace of its own (`keel-faults-PID`) and
//! a veth pair on a private /30 (`10.231.x.1` on the host side, `.2`
//! inside), and starts a PostgreSQL cluster *inside* the namespace,
//! listening on the inside address only (`scripts/pg.sh start DIR PORT
//! ADDR NETNS`). The shortener runs on the host and reaches the database
//! through the veth pair, so every packet between them can be delayed or
//! dropped there:
//!
//! - with `tc qdisc ... netem` on both veth ends when the kernel has
//!   `sch_netem`;
//! - otherwise (kernels built without it, such as some CI virtual
//!   machines) with netfilter rules inside the namespace: `iptables -m
//!   statistic` drops for loss, `DROP` for the cut, and `NFQUEUE` to a
//!   delay line in this process (a thread in the namespace holding every
//!   packet for the delay before it accepts it) for delay. Both directions
//!   are delayed or dropped, as with netem on both ends.
//!
//! `KEEL_FAULTS_IMPAIR=netem` or `=netfilter` forces one. The namespace, the
//! veth pair (deleted with it) and the cluster are removed on drop, also
//! when the test fails; `faults.sh` also removes those of a run that was
//! killed.
//!
//! # The run
//!
//! One shortener (the debug binary) with `--request-timeout-ms 3000`,
//! short pool timeouts and `--flush-ms 200`. Phases of [`PHASE`] each:
//! healthy, 200 ms delay each way, 30 % loss each way, the link cut (all
//! packets dropped), the link restored. Throughout, client threads:
//!
//! - follow links created and cached before the faults began: every one
//!   must be a `302` to the right place, in every phase;
//! - create links: `201` (the slug is remembered) or `503` with
//!   `Retry-After`, nothing else;
//! - ask for slugs that do not exist: `404`, or `503` with `Retry-After`;
//! - read `/health`: never `ok` while the link is cut.
//!
//! Every answer must come within the request deadline plus [`SLACK`].
//! After the link is back, `/health` must say `ok` with the change feed
//! connected within [`RECOVERY`]; every link acknowledged with `201` must
//! be in the database (read with SQL, not through the shortener's cache);
//! and once the instance has stopped (its last flush), each cached link's
//! click count in the database must equal the redirects the clients got,
//! no fewer (failed batches are kept and retried) and no more (a retried
//! batch is not counted twice).
//!
//! With `--nocapture` it prints a table per phase: requests, outcomes and
//! the slowest answer of each kind (and the most threads the server had),
//! and, when `/health` took more than 5 s to come back, what the database
//! sessions were doing second by second.
//!
//! The test drove two fixes it now holds: keel's own `503` at the request
//! deadline carries `Retry-After`, and the store has the *server* drop a
//! session whose client vanished within seconds (server-side
//! `tcp_user_timeout` and keepalives), so a retried click batch does not
//! wait on its first attempt's locks.

mod clients;
mod lab;
mod nfqueue;
mod tally;
#[path = "../util/mod.rs"]
mod util;

use clients::{
    create_links, create_request, follow_cached, follow_unknown, get, health_is_ok, json,
    watch_health, Cached, Client, Run,
};
use lab::{Backend, Lab};
use tally::Tally;

use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// `--request-timeout-ms` of the instance under test.
const DEADLINE: Duration = Duration::from_millis(3000);
/// How much later than the deadline an answer may come (scheduling, the
/// server's coarse timer).
const SLACK: Duration = Duration::from_secs(1);
/// How long a client waits before it calls a request unanswered: well past
/// the bound, so that a late answer is seen (and reported) as late.
const GIVE_UP: Duration = Duration::from_secs(10);
/// Length of each phase; `KEEL_FAULTS_PHASE_SECS` overrides it (longer
/// phases give rarer failures a chance to show).
const PHASE: Duration = Duration::from_secs(12);
/// How soon after the link is back `/health` must be `ok` again.
const RECOVERY: Duration = Duration::from_secs(15);
/// Links created and cached before the faults, followed throughout.
const CACHED_LINKS: usize = 16;
/// The delay of the slow phase, each way.
const DELAY: Duration = Duration::from_millis(200);
/// The loss of the lossy phase, each way, in percent.
const LOSS_PERCENT: u32 = 30;
/// PostgreSQL's port inside the namespace (which has nothing else).
const PG_PORT: u16 = 5432;

/// What the link between the shortener and the database does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    Delay(Duration),
    Loss(u32),
    Cut,
}

/// The phases, in order.
const PHASES: [(&str, Fault); 5] = [
    ("healthy", Fault::None),
    ("delay 200ms", Fault::Delay(DELAY)),
    ("loss 30%", Fault::Loss(LOSS_PERCENT)),
    ("cut", Fault::Cut),
    ("restored", Fault::None),
];
const CUT_PHASE: usize = 3;
/// The phase number while the link changes between two phases.
const SWITCHING: usize = usize::MAX;
const RESTORED_PHASE: usize = 4;

#[test]
#[ignore = "needs root, iproute2 and PostgreSQL, runs ~65 s: examples/shortener/tests/faults.sh"]
fn the_shortener_rides_out_a_slow_lossy_and_cut_database_link() {
    let started = Instant::now();
    let lab = Lab::new();
    println!(
        "faults: namespace {}, veth {} ({}) <-> {} ({}), PostgreSQL {} inside, faults by {}",
        lab.netns,
        lab.host_if,
        lab.host_ip,
        lab.inside_if,
        lab.inside_ip,
        lab.url,
        lab.backend.name()
    );
    let deadline_ms = DEADLINE.as_millis().to_string();
    let store = lab.url.clone();
    let server = util::Options::new()
        .arg("--store", &store)
        .arg("--request-timeout-ms", &deadline_ms)
        .arg("--flush-ms", "200")
        .arg("--workers", "2")
        .arg("--blocking-threads", "16")
        .arg("--pg-max-open", "16")
        .arg("--pg-connect-timeout-ms", "1000")
        .arg("--pg-checkout-timeout-ms", "1000")
        .arg("--pg-statement-timeout-ms", "1000")
        .arg("--pg-tcp-user-timeout-ms", "2000")
        .arg("--writes-per-minute", "1000000")
        .arg("--negative-ttl", "1")
        .start();
    let addr = server.addr();
    let pid = pid_of(server.data());

    // Healthy, feed connected, then the links everyone will follow, each
    // followed once so that it is cached.
    let mut client = Client::new(addr);
    util::poll(Duration::from_secs(10), || {
        let (res, _) = client.call(&get("/health", &[]), false);
        let body = res
            .ok()
            .and_then(|r| serde_json::from_slice::<Value>(&r.body).ok())?;
        (body["status"] == "ok" && body["change_feed"] == "connected").then_some(())
    })
    .expect("the shortener never became healthy on PostgreSQL");
    let tally = Tally::default();
    let mut links = Vec::new();
    for i in 0..CACHED_LINKS {
        let url = format!("https://example.com/cached/{i}");
        let (res, _) = client.call(&create_request(&url), false);
        let res = res.expect("create a link while healthy");
        assert_eq!(res.status, 201, "create while healthy: {}", res.text());
        let slug = json(&res)["slug"].as_str().unwrap().to_owned();
        links.push(Cached {
            slug,
            url,
            redirects: AtomicU64::new(0),
        });
    }
    for link in &links {
        let (res, _) = client.call(&get(&format!("/{}", link.slug), &[]), false);
        let res = res.expect("follow a link while healthy");
        assert_eq!(res.status, 302, "follow while healthy: {}", res.text());
        link.redirects.fetch_add(1, Ordering::Relaxed);
    }

    // The phases, clients running throughout.
    let phase = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let restored_at = Mutex::new(None::<Instant>);
    let recovered_after = Mutex::new(None::<Duration>);
    let acknowledged = Mutex::new(Vec::<(String, String)>::new());
    let max_threads = Mutex::new([0usize; PHASES.len()]);
    let last_health = Mutex::new(String::new());
    let recovery_trace = Mutex::new(Vec::<String>::new());
    let run = Run {
        addr,
        phase: &phase,
        stop: &stop,
        tally: &tally,
        restored_at: &restored_at,
        recovered_after: &recovered_after,
        last_health: &last_health,
    };
    thread::scope(|s| {
        for t in 0..2 {
            let (run, links) = (&run, &links);
            s.spawn(move || follow_cached(run, links, t));
        }
        for t in 0..2 {
            let (run, acknowledged) = (&run, &acknowledged);
            s.spawn(move || create_links(run, t, acknowledged));
        }
        s.spawn(|| follow_unknown(&run));
        s.spawn(|| watch_health(&run));
        for (i, (name, fault)) in PHASES.iter().enumerate() {
            // No request starts while the link changes: each is sent
            // entirely within one phase.
            phase.store(SWITCHING, Ordering::SeqCst);
            if let Some(previous) = i.checked_sub(1) {
                tally.phase_ended.lock().unwrap()[previous] = Some(Instant::now());
            }
            lab.impair(*fault);
            if i == RESTORED_PHASE {
                *restored_at.lock().unwrap() = Some(Instant::now());
            }
            tally.phase_started.lock().unwrap()[i] = Some(Instant::now());
            phase.store(i, Ordering::SeqCst);
            println!(
                "faults: phase {i} ({name}) at {:.1} s",
                secs(started.elapsed())
            );
            let until = Instant::now() + phase_length();
            let mut next_trace = Instant::now();
            while Instant::now() < until {
                let threads = pid.map_or(0, threads_of);
                let mut max = max_threads.lock().unwrap();
                max[i] = max[i].max(threads);
                drop(max);
                // Until /health is back: what the database is doing.
                let recovering = recovered_after.lock().unwrap().is_none();
                if i == RESTORED_PHASE && recovering && Instant::now() >= next_trace {
                    next_trace = Instant::now() + Duration::from_secs(1);
                    let at = restored_at.lock().unwrap().map(|t| t.elapsed());
                    let health = last_health.lock().unwrap().clone();
                    let mut trace = recovery_trace.lock().unwrap();
                    trace.push(format!(
                        "+{:.1} s /health {health}",
                        secs(at.unwrap_or_default())
                    ));
                    trace.extend(lab.activity().into_iter().map(|l| format!("    {l}")));
                }
                thread::sleep(Duration::from_millis(100));
            }
        }
        stop.store(true, Ordering::SeqCst);
    });

    // Recovery: /health back to ok with the feed connected.
    let restored = restored_at.lock().unwrap().expect("the link was restored");
    if recovered_after.lock().unwrap().is_none() {
        let mut client = Client::new(addr);
        let until = restored + RECOVERY;
        while Instant::now() < until {
            let (res, _) = client.call(&get("/health", &[]), false);
            if res.is_ok_and(|r| health_is_ok(&r)) {
                *recovered_after.lock().unwrap() = Some(restored.elapsed());
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
    let recovered = *recovered_after.lock().unwrap();
    let trace = recovery_trace.into_inner().unwrap();
    if recovered.is_none_or(|after| after > Duration::from_secs(5)) {
        println!("faults: recovery, second by second (/health, then busy database sessions):");
        for line in &trace {
            println!("  {line}");
        }
    }

    tally.print(&max_threads.lock().unwrap());
    println!(
        "faults: /health ok with the change feed connected {} after the link came back",
        recovered.map_or(String::from("never"), |d| format!("{:.1} s", secs(d)))
    );
    if let Backend::Netfilter(line) = &lab.backend {
        println!(
            "faults: delay line held {} packets",
            line.delayed.load(Ordering::Relaxed)
        );
    }

    // What the database holds, read with SQL.
    let acknowledged = acknowledged.into_inner().unwrap();
    let mut db = lab.sql();
    let slugs: Vec<&str> = acknowledged.iter().map(|(slug, _)| slug.as_str()).collect();
    let stored: HashMap<String, String> = db
        .query(
            "SELECT slug, url FROM links WHERE slug = ANY($1)",
            &[&slugs],
        )
        .expect("read the created links")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let lost: Vec<&(String, String)> = acknowledged
        .iter()
        .filter(|(slug, url)| stored.get(slug) != Some(url))
        .collect();
    println!(
        "faults: {} links acknowledged with 201, {} of them in the database",
        acknowledged.len(),
        acknowledged.len() - lost.len()
    );

    // Stop the instance (its last flush), then compare clicks.
    let mut server = server;
    let (status, stderr) = server.terminate();
    let cached: Vec<&str> = links.iter().map(|l| l.slug.as_str()).collect();
    let clicks: HashMap<String, (i64, i64)> = db
        .query(
            "SELECT l.slug, l.clicks, COALESCE((SELECT sum(d.count) FROM link_days d \
             WHERE d.link_id = l.id), 0)::bigint FROM links l WHERE l.slug = ANY($1)",
            &[&cached],
        )
        .expect("read the click counts")
        .iter()
        .map(|row| (row.get(0), (row.get(1), row.get(2))))
        .collect();
    let mut click_errors = Vec::new();
    let (mut got, mut stored_total) = (0u64, 0i64);
    for link in &links {
        let expected = link.redirects.load(Ordering::Relaxed);
        let (total, days) = clicks.get(&link.slug).copied().unwrap_or((-1, -1));
        got += expected;
        stored_total += total;
        if total != expected as i64 || days != total {
            click_errors.push(format!(
                "{}: {expected} redirects, {total} clicks stored ({days} by day)",
                link.slug
            ));
        }
    }
    println!("faults: {got} redirects followed, {stored_total} clicks stored");
    println!("faults: run time {:.0} s", secs(started.elapsed()));

    let failures = tally.failures.lock().unwrap();
    let mut problems = Vec::new();
    if !failures.is_empty() {
        problems.push(format!(
            "{} requests broke the contract (first {}):\n  {}",
            failures.len(),
            failures.len().min(40),
            failures[..failures.len().min(40)].join("\n  ")
        ));
    }
    if recovered.is_none_or(|after| after > RECOVERY) {
        problems.push(format!(
            "/health was not ok with the change feed connected within {RECOVERY:?} of the link coming back"
        ));
    }
    if !lost.is_empty() {
        problems.push(format!(
            "{} links acknowledged with 201 are not in the database: {lost:?}",
            lost.len()
        ));
    }
    if !click_errors.is_empty() {
        problems.push(format!(
            "click counts differ:\n  {}",
            click_errors.join("\n  ")
        ));
    }
    if !status.success() {
        problems.push(format!("the instance did not stop cleanly: {status}"));
    }
    problems.extend(tally.phase_checks());
    assert!(
        problems.is_empty(),
        "{}\n\nshortener stderr (tail):\n{}",
        problems.join("\n"),
        tail(&stderr, 40)
    );
}

fn phase_length() -> Duration {
    std::env::var("KEEL_FAULTS_PHASE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(PHASE, Duration::from_secs)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The pid of the shortener started on data directory `data` (the test
/// helpers keep the child to themselves): the process whose command line
/// names it.
fn pid_of(data: &Path) -> Option<u32> {
    let needle = data.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline);
            (cmdline.starts_with(util::binary()) && cmdline.split('\0').any(|a| a == needle))
                .then_some(pid)
        })
}

/// Threads of process `pid` now.
fn threads_of(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}
