//! Issue 12's load test: two floods at once, and everyone else keeps being
//! served.
//!
//! One client sends 300,000 cache-hit redirects with a `Referer` host each
//! (pipelined on one connection) while 600 password guesses arrive from
//! 600 source addresses (127.0.1.1 on: the server tells them apart by peer
//! address alone, as it would on the internet). Meanwhile another client,
//! every 20 ms, reads a link through the API with a `read` key and follows
//! a `max_clicks` link. Asserted: neither of its requests ever gets a 503,
//! the p99 of each stays under 100 ms, the server's peak resident memory
//! stays under 150 MB, and the store holds at most
//! `REFERRER_ROWS_PER_LINK` referrer rows for the spammed link.
//!
//! A load test wants the release build: kept out of the default run, CI
//! runs it with
//! `cargo test --release -p shortener --test attack_load -- --ignored --nocapture`.

mod util;

use serde_json::json;
use shortener::clicks::REFERRER_ROWS_PER_LINK;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use util::attack::{connect_from, loopback_client, peak_rss_kib, referrer_rows, spam};
use util::{form_encode, read_response, request, Options, Response, Shortener};

const SPAM: usize = 300_000;
const GUESSES: u32 = 600;
/// Guessing threads; each sends its share of the guesses one after another.
const GUESSERS: u32 = 40;
const PROBE_EVERY: Duration = Duration::from_millis(20);
const P99_LIMIT: Duration = Duration::from_millis(100);
const PEAK_RSS_LIMIT_KIB: u64 = 150 * 1024;

/// Latencies of one kind of probe, and the statuses that were not the one
/// expected.
#[derive(Default)]
struct Probes {
    took: Vec<Duration>,
    unexpected: Vec<u16>,
}

impl Probes {
    fn record(&mut self, expected: u16, started: Instant, res: &Response) {
        self.took.push(started.elapsed());
        if res.status != expected {
            self.unexpected.push(res.status);
        }
    }

    /// The `q` quantile (0 to 1) of the latencies, nearest rank.
    fn quantile(&self, q: f64) -> Duration {
        let mut sorted = self.took.clone();
        sorted.sort();
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    fn summary(&self) -> String {
        format!(
            "{} probes, p50 {:?}, p99 {:?}, max {:?}",
            self.took.len(),
            self.quantile(0.5),
            self.quantile(0.99),
            self.quantile(1.0)
        )
    }
}

/// `POST /slug` of the password form from source address `from`.
fn guess_from(server: &Shortener, n: u32, slug: &str) -> u16 {
    let body = format!("password={}", form_encode(&format!("wrong guess {n}")));
    let raw = request(
        "POST",
        &format!("/{slug}"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    );
    let mut stream = connect_from(server, loopback_client(n));
    stream.write_all(&raw).expect("send a guess");
    read_response(&mut stream, false).status
}

#[test]
#[ignore = "a load test: run in release (see the module docs)"]
fn floods_of_referrers_and_guesses_slow_no_one_else() {
    let admin = format!("admin-{}", shortener::keys::generate().unwrap());
    let reader = format!("read-{}", shortener::keys::generate().unwrap());
    let server = Options::new()
        .env(
            "SHORTENER_API_KEYS",
            &format!("admin:{admin},read:{reader}"),
        )
        .key(&admin)
        // The defaults of a real deployment, not the suite's small ones.
        .arg("--blocking-threads", "16")
        .start();
    server.create_slug("spammed", "https://example.com/spammed");
    server.create_slug("probed", "https://example.com/probed");
    server
        .create(json!({"url": "https://example.com/b", "slug": "budget", "max_clicks": 1_000_000}));
    server.create(json!({
        "url": "https://example.com/locked", "slug": "locked", "password": "correct horse battery"
    }));
    assert_eq!(server.get("/spammed").status, 302, "cached before the spam");
    assert_eq!(server.get("/budget").status, 302, "cached before the spam");

    let floods_on = AtomicBool::new(true);
    let read_auth = format!("Bearer {reader}");
    let started = Instant::now();
    let (spammed, guesses, api, budget) = thread::scope(|s| {
        let spammer = s.spawn(|| spam(&server, "spammed", SPAM));
        let guessers: Vec<_> = (0..GUESSERS)
            .map(|t| {
                let server = &server;
                s.spawn(move || {
                    (t..GUESSES)
                        .step_by(GUESSERS as usize)
                        .map(|n| guess_from(server, n, "locked"))
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        let prober = s.spawn(|| {
            let (mut api, mut budget) = (Probes::default(), Probes::default());
            while floods_on.load(Ordering::SeqCst) {
                let asked = Instant::now();
                let res = server.request(
                    "GET",
                    "/api/links/probed",
                    &[("Authorization", read_auth.as_str())],
                    b"",
                );
                api.record(200, asked, &res);
                let asked = Instant::now();
                budget.record(302, asked, &server.get("/budget"));
                thread::sleep(PROBE_EVERY.saturating_sub(asked.elapsed()));
            }
            (api, budget)
        });
        let spammed = spammer.join().unwrap();
        let guesses: Vec<u16> = guessers
            .into_iter()
            .flat_map(|g| g.join().unwrap())
            .collect();
        // One more flush interval under the probes: the spam's flush.
        thread::sleep(Duration::from_millis(1500));
        floods_on.store(false, Ordering::SeqCst);
        let (api, budget) = prober.join().unwrap();
        (spammed, guesses, api, budget)
    });
    let floods_took = started.elapsed();

    let count = |status: u16| guesses.iter().filter(|&&s| s == status).count();
    let peak = peak_rss_kib(server.pid());
    let totals = server.stats_when_total("spammed", SPAM as u64 + 1, Duration::from_secs(10));
    let rows = referrer_rows(&server, "spammed");
    eprintln!(
        "floods took {floods_took:?}: {spammed} of {SPAM} spam requests redirected; \
         {} guesses: {} checked (401), {} refused by a limit (429), {} refused busy (503), {} other",
        guesses.len(),
        count(401),
        count(429),
        count(503),
        guesses.len() - count(401) - count(429) - count(503),
    );
    eprintln!("API read with a key: {}", api.summary());
    eprintln!("max_clicks redirect: {}", budget.summary());
    eprintln!(
        "peak RSS {} KiB; {rows} referrer rows stored for the spammed link (cap {REFERRER_ROWS_PER_LINK}); total {}",
        peak, totals["total"]
    );

    assert_eq!(spammed, SPAM, "every spam request was redirected");
    assert_eq!(guesses.len(), GUESSES as usize);
    assert_eq!(
        count(401) + count(429) + count(503),
        guesses.len(),
        "a guess is checked or refused, nothing else: {guesses:?}"
    );
    for (name, probes) in [("API read", &api), ("max_clicks redirect", &budget)] {
        assert!(probes.took.len() >= 50, "{name}: too few probes ran");
        assert!(
            probes.unexpected.is_empty(),
            "{name} got {:?}",
            probes.unexpected
        );
        assert!(
            probes.quantile(0.99) < P99_LIMIT,
            "{name}: {}",
            probes.summary()
        );
    }
    assert!(peak < PEAK_RSS_LIMIT_KIB, "peak RSS {peak} KiB");
    assert!(
        rows <= REFERRER_ROWS_PER_LINK as i64,
        "{rows} referrer rows stored"
    );
    // Every probe of the budgeted link spent exactly one click.
    server.stats_when_total(
        "budget",
        budget.took.len() as u64 + 1,
        Duration::from_secs(10),
    );
}
