//! The client threads of the fault test and what they share: following cached
//! links, creating links, asking for unknown slugs, watching `/health`, and the
//! keep-alive client that never panics.

use crate::tally::Tally;
use crate::util;
use crate::{CUT_PHASE, GIVE_UP, SWITCHING};
use serde_json::Value;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// What every client thread shares.
pub(crate) struct Run<'a> {
    pub(crate) addr: SocketAddr,
    pub(crate) phase: &'a AtomicUsize,
    pub(crate) stop: &'a AtomicBool,
    pub(crate) tally: &'a Tally,
    pub(crate) restored_at: &'a Mutex<Option<Instant>>,
    pub(crate) recovered_after: &'a Mutex<Option<Duration>>,
    /// Status and body of the latest `/health` answer.
    pub(crate) last_health: &'a Mutex<String>,
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
pub(crate) struct Cached {
    pub(crate) slug: String,
    pub(crate) url: String,
    /// `302`s the clients got for it.
    pub(crate) redirects: AtomicU64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Redirect,
    Create,
    Unknown,
    Health,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Redirect => "redirect (cached)",
            Kind::Create => "create",
            Kind::Unknown => "unknown slug",
            Kind::Health => "/health",
        }
    }
}

pub(crate) fn follow_cached(run: &Run<'_>, links: &[Cached], offset: usize) {
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

pub(crate) fn create_links(
    run: &Run<'_>,
    thread: usize,
    acknowledged: &Mutex<Vec<(String, String)>>,
) {
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

pub(crate) fn follow_unknown(run: &Run<'_>) {
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

pub(crate) fn watch_health(run: &Run<'_>) {
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

pub(crate) fn health_is_ok(res: &util::Response) -> bool {
    let body: Value = serde_json::from_slice(&res.body).unwrap_or_default();
    res.status == 200 && body["status"] == "ok" && body["change_feed"] == "connected"
}

pub(crate) fn get(path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    util::request("GET", path, headers, b"")
}

pub(crate) fn create_request(url: &str) -> Vec<u8> {
    let body = serde_json::json!({ "url": url }).to_string();
    util::request(
        "POST",
        "/api/links",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

pub(crate) fn json(res: &util::Response) -> Value {
    serde_json::from_slice(&res.body).unwrap_or_else(|e| panic!("{e}: {:?}", res.text()))
}

/// A keep-alive HTTP/1.1 client that never panics: every failure is an
/// `Err` the caller records.
pub(crate) struct Client {
    addr: SocketAddr,
    conn: Option<TcpStream>,
}

impl Client {
    pub(crate) fn new(addr: SocketAddr) -> Client {
        Client { addr, conn: None }
    }

    /// Sends `raw` and reads one response, waiting up to [`GIVE_UP`];
    /// returns it with the time it took. A kept-alive connection the
    /// server closed before answering is replaced once.
    pub(crate) fn call(
        &mut self,
        raw: &[u8],
        is_head: bool,
    ) -> (Result<util::Response, String>, Duration) {
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
