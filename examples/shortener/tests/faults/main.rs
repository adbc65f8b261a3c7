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

mod lab;
mod nfqueue;
#[path = "../util/mod.rs"]
mod util;

use lab::{Backend, Lab};

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
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

// ---------------------------------------------------------------------------
// The clients.

/// What every client thread shares.
struct Run<'a> {
    addr: SocketAddr,
    phase: &'a AtomicUsize,
    stop: &'a AtomicBool,
    tally: &'a Tally,
    restored_at: &'a Mutex<Option<Instant>>,
    recovered_after: &'a Mutex<Option<Duration>>,
    /// Status and body of the latest `/health` answer.
    last_health: &'a Mutex<String>,
}

impl Run<'_> {
    /// The phase under way; `None` while the link changes (the caller
    /// waits).
    fn phase(&self) -> Option<usize> {
        match self.phase.load(Ordering::SeqCst) {
            SWITCHING => {
                thread::sleep(Duration::from_millis(5));
                None
            }
            phase => Some(phase),
        }
    }

    fn running(&self) -> bool {
        !self.stop.load(Ordering::SeqCst)
    }
}

/// A link created and cached before the faults.
struct Cached {
    slug: String,
    url: String,
    /// `302`s the clients got for it.
    redirects: AtomicU64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Redirect,
    Create,
    Unknown,
    Health,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Redirect => "redirect (cached)",
            Kind::Create => "create",
            Kind::Unknown => "unknown slug",
            Kind::Health => "/health",
        }
    }
}

fn follow_cached(run: &Run<'_>, links: &[Cached], offset: usize) {
    let mut client = Client::new(run.addr);
    let mut i = offset;
    while run.running() {
        let link = &links[i % links.len()];
        i += 1;
        let Some(phase) = run.phase() else { continue };
        let (res, took) = client.call(&get(&format!("/{}", link.slug), &[]), false);
        let outcome = match res {
            Ok(res) if res.status == 302 && res.header("location") == Some(link.url.as_str()) => {
                link.redirects.fetch_add(1, Ordering::Relaxed);
                Ok(String::from("302"))
            }
            Ok(res) => Err(format!("{} {:?}", res.status, res.text())),
            Err(e) => Err(e),
        };
        run.tally.record(phase, Kind::Redirect, took, outcome);
        thread::sleep(Duration::from_millis(5));
    }
}

fn create_links(run: &Run<'_>, thread: usize, acknowledged: &Mutex<Vec<(String, String)>>) {
    let mut client = Client::new(run.addr);
    let mut n = 0;
    while run.running() {
        let Some(phase) = run.phase() else { continue };
        n += 1;
        let url = format!("https://example.com/faults/{phase}/{thread}/{n}");
        let (res, took) = client.call(&create_request(&url), false);
        let outcome = match res {
            Ok(res) if res.status == 201 => match serde_json::from_slice::<Value>(&res.body) {
                Ok(body) if body["url"] == url.as_str() && body["slug"].is_string() => {
                    let slug = body["slug"].as_str().unwrap_or_default().to_owned();
                    acknowledged.lock().unwrap().push((slug, url));
                    Ok(String::from("201"))
                }
                _ => Err(format!("201 with {:?}", res.text())),
            },
            Ok(res) => unavailable(&res),
            Err(e) => Err(e),
        };
        run.tally.record(phase, Kind::Create, took, outcome);
        thread::sleep(Duration::from_millis(20));
    }
}

fn follow_unknown(run: &Run<'_>) {
    let mut client = Client::new(run.addr);
    let mut random = Random::new(7);
    while run.running() {
        let Some(phase) = run.phase() else { continue };
        let slug = random.slug(12);
        let accept = [("Accept", "application/json")];
        let (res, took) = client.call(&get(&format!("/{slug}"), &accept), false);
        let outcome = match res {
            Ok(res) if res.status == 404 => Ok(String::from("404")),
            Ok(res) => unavailable(&res),
            Err(e) => Err(e),
        };
        run.tally.record(phase, Kind::Unknown, took, outcome);
        thread::sleep(Duration::from_millis(20));
    }
}

fn watch_health(run: &Run<'_>) {
    let mut client = Client::new(run.addr);
    while run.running() {
        let Some(phase) = run.phase() else { continue };
        let (res, took) = client.call(&get("/health", &[]), false);
        let outcome = match res {
            Ok(res) => {
                *run.last_health.lock().unwrap() = format!("{} {}", res.status, res.text().trim());
                let body = serde_json::from_slice::<Value>(&res.body).ok();
                let status = body.as_ref().and_then(|b| b["status"].as_str());
                let feed = body.as_ref().and_then(|b| b["change_feed"].as_str());
                match (res.status, status) {
                    (200 | 503, Some(status)) => {
                        let restored = *run.restored_at.lock().unwrap();
                        if let Some(at) = restored.filter(|_| health_is_ok(&res)) {
                            let mut first = run.recovered_after.lock().unwrap();
                            first.get_or_insert_with(|| at.elapsed());
                        }
                        let retry_after = res.header("retry-after").is_some();
                        if phase == CUT_PHASE && status == "ok" {
                            Err(format!("{} says ok while the link is cut", res.status))
                        } else if res.status == 503 && !retry_after {
                            Err(format!("503 {status:?} without Retry-After"))
                        } else {
                            Ok(format!("{} {status}/{}", res.status, feed.unwrap_or("?")))
                        }
                    }
                    _ => unavailable(&res).map(|o| format!("{o} (not JSON)")),
                }
            }
            Err(e) => Err(e),
        };
        run.tally.record(phase, Kind::Health, took, outcome);
        thread::sleep(Duration::from_millis(200));
    }
}

/// A `503` with `Retry-After` is an outcome; anything else breaks the
/// contract.
fn unavailable(res: &util::Response) -> Result<String, String> {
    match (res.status, res.header("retry-after")) {
        (503, Some(_)) => Ok(String::from("503")),
        (503, None) => Err(format!("503 without Retry-After: {:?}", res.text())),
        (status, _) => Err(format!("{status} {:?}", res.text())),
    }
}

fn health_is_ok(res: &util::Response) -> bool {
    let body: Value = serde_json::from_slice(&res.body).unwrap_or_default();
    res.status == 200 && body["status"] == "ok" && body["change_feed"] == "connected"
}

fn get(path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    util::request("GET", path, headers, b"")
}

fn create_request(url: &str) -> Vec<u8> {
    let body = serde_json::json!({ "url": url }).to_string();
    util::request(
        "POST",
        "/api/links",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

fn json(res: &util::Response) -> Value {
    serde_json::from_slice(&res.body).unwrap_or_else(|e| panic!("{e}: {:?}", res.text()))
}

/// A keep-alive HTTP/1.1 client that never panics: every failure is an
/// `Err` the caller records.
struct Client {
    addr: SocketAddr,
    conn: Option<TcpStream>,
}

impl Client {
    fn new(addr: SocketAddr) -> Client {
        Client { addr, conn: None }
    }

    /// Sends `raw` and reads one response, waiting up to [`GIVE_UP`];
    /// returns it with the time it took. A kept-alive connection the
    /// server closed before answering is replaced once.
    fn call(&mut self, raw: &[u8], is_head: bool) -> (Result<util::Response, String>, Duration) {
        let started = Instant::now();
        let mut result = Err(String::new());
        for _ in 0..2 {
            let reused = self.conn.is_some();
            match self.try_call(raw, is_head, started) {
                Err((e, true)) if reused => result = Err(e),
                other => {
                    result = other.map_err(|(e, _)| e);
                    break;
                }
            }
        }
        (result, started.elapsed())
    }

    /// `Err((why, nothing_received))`.
    fn try_call(
        &mut self,
        raw: &[u8],
        is_head: bool,
        started: Instant,
    ) -> Result<util::Response, (String, bool)> {
        let mut stream = match self.conn.take() {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect_timeout(&self.addr, GIVE_UP)
                    .map_err(|e| (format!("connect: {e}"), false))?;
                let _ = stream.set_nodelay(true);
                stream
            }
        };
        stream
            .write_all(raw)
            .map_err(|e| (format!("send: {e}"), true))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match keel::testing::parse_response(&buf, is_head, false) {
                Ok((res, _)) => {
                    if !res.closes() {
                        self.conn = Some(stream);
                    }
                    return Ok(res);
                }
                Err(keel::testing::ResponseParseError::Incomplete) => {}
                Err(e) => return Err((format!("bad response {e:?}"), false)),
            }
            let left = GIVE_UP.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err((format!("no answer within {GIVE_UP:?}"), false));
            }
            let _ = stream.set_read_timeout(Some(left));
            match stream.read(&mut chunk) {
                Ok(0) => return Err((String::from("closed without an answer"), buf.is_empty())),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err((format!("no answer within {GIVE_UP:?}"), false))
                }
                Err(e) => return Err((format!("read: {e}"), buf.is_empty())),
            }
        }
    }
}

/// Outcomes per phase and kind, and every broken promise.
#[derive(Default)]
struct Tally {
    rows: Mutex<BTreeMap<(usize, Kind), Row>>,
    failures: Mutex<Vec<String>>,
    /// When each phase began.
    phase_started: Mutex<[Option<Instant>; PHASES.len()]>,
    /// When each phase ended (the next fault went in after).
    phase_ended: Mutex<[Option<Instant>; PHASES.len()]>,
    /// Answers that needed the database, sent while the link was cut:
    /// when sent, when answered, what.
    through_cut: Mutex<Vec<(Instant, Instant, String)>>,
}

#[derive(Default)]
struct Row {
    requests: u64,
    outcomes: BTreeMap<String, u64>,
    max: Duration,
    min: Option<Duration>,
}

impl Tally {
    /// Records one request: `Ok(outcome)` or `Err(what went wrong)`; an
    /// answer later than the deadline plus [`SLACK`] is a failure too.
    fn record(&self, phase: usize, kind: Kind, took: Duration, outcome: Result<String, String>) {
        let late = took > DEADLINE + SLACK;
        if phase == CUT_PHASE {
            let store_answered = matches!(&outcome, Ok(o) if o.starts_with("201")
                || o.starts_with("404") || o.starts_with("200"));
            if store_answered {
                let answered = Instant::now();
                let what = format!("{} {:?}", kind.name(), outcome);
                let mut through = self.through_cut.lock().unwrap();
                through.push((answered - took, answered, what));
            }
        }
        let label = match &outcome {
            Ok(o) if late => format!("{o} LATE"),
            Ok(o) => o.clone(),
            Err(_) => String::from("FAILED"),
        };
        let mut rows = self.rows.lock().unwrap();
        let row = rows.entry((phase, kind)).or_default();
        row.requests += 1;
        *row.outcomes.entry(label).or_insert(0) += 1;
        row.max = row.max.max(took);
        row.min = Some(row.min.map_or(took, |m| m.min(took)));
        drop(rows);
        let why = match outcome {
            Err(e) => Some(e),
            Ok(o) if late => Some(format!("{o} after {} ms", took.as_millis())),
            Ok(_) => None,
        };
        if let Some(why) = why {
            self.failures.lock().unwrap().push(format!(
                "phase {phase} ({}), {}: {why} ({} ms)",
                PHASES[phase].0,
                kind.name(),
                took.as_millis()
            ));
        }
    }

    fn print(&self, max_threads: &[usize; PHASES.len()]) {
        let rows = self.rows.lock().unwrap();
        println!();
        println!(
            "{:<12} {:<18} {:>8} {:>8}  outcomes",
            "phase", "kind", "requests", "max ms"
        );
        for (i, (name, _)) in PHASES.iter().enumerate() {
            for ((_, kind), row) in rows.range((i, Kind::Redirect)..=(i, Kind::Health)) {
                let outcomes: Vec<String> = row
                    .outcomes
                    .iter()
                    .map(|(o, n)| format!("{o}: {n}"))
                    .collect();
                println!(
                    "{:<12} {:<18} {:>8} {:>8}  {}",
                    name,
                    kind.name(),
                    row.requests,
                    row.max.as_millis(),
                    outcomes.join(", ")
                );
            }
            println!(
                "{:<12} {:<18} {:>8}",
                name, "(server threads)", max_threads[i]
            );
        }
        println!();
    }

    /// Checks that the faults took effect: the slow phase was slow and
    /// nothing was created through a cut link.
    fn phase_checks(&self) -> Vec<String> {
        let rows = self.rows.lock().unwrap();
        let mut problems = Vec::new();
        match rows.get(&(1, Kind::Create)) {
            Some(row) if row.min.unwrap_or_default() >= 2 * DELAY => {}
            Some(row) => problems.push(format!(
                "a create took {:?} in the delay phase: was the delay applied?",
                row.min.unwrap_or_default()
            )),
            None => problems.push(String::from("no create ran in the delay phase")),
        }
        let reported = rows.get(&(CUT_PHASE, Kind::Health)).is_some_and(|row| {
            row.outcomes
                .keys()
                .any(|o| o.contains("unavailable") || o.contains("degraded"))
        });
        if !reported {
            problems.push(String::from(
                "/health never reported unavailable or degraded while the link was cut",
            ));
        }
        // Answered before the link came back: then the link was not cut.
        // (A request sent late in the cut may be answered after it.)
        let began = self.phase_started.lock().unwrap()[CUT_PHASE];
        let ended = self.phase_ended.lock().unwrap()[CUT_PHASE];
        if let (Some(began), Some(ended)) = (began, ended) {
            let through: Vec<String> = self
                .through_cut
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, answered, _)| *answered < ended)
                .map(|(sent, answered, what)| {
                    format!(
                        "{what}: sent {:.3} s into the cut, answered {:.3} s into it",
                        sent.saturating_duration_since(began).as_secs_f64(),
                        answered.saturating_duration_since(began).as_secs_f64()
                    )
                })
                .collect();
            if !through.is_empty() {
                problems.push(format!(
                    "answers that needed the database came while the link was cut:\n  {}",
                    through.join("\n  ")
                ));
            }
        }
        for phase in 0..PHASES.len() {
            for kind in [Kind::Redirect, Kind::Create, Kind::Unknown, Kind::Health] {
                if !rows.contains_key(&(phase, kind)) {
                    problems.push(format!("no {} request ran in phase {phase}", kind.name()));
                }
            }
        }
        problems
    }
}

/// xorshift64*, enough for slugs nobody made.
struct Random(u64);

impl Random {
    fn new(salt: u64) -> Random {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Random((nanos ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn slug(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..len)
            .map(|_| ALPHABET[(self.next() % ALPHABET.len() as u64) as usize] as char)
            .collect()
    }
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
