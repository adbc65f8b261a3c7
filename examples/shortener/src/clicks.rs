//! Click counting without a store write on the redirect path.
//!
//! A click is one increment in an in-memory map owned by the thread that
//! served it (each thread is given its own shard the first time it counts),
//! keyed by link, day, referrer host and browser family. Once a second a
//! flusher thread drains every shard, sums the counts per link and writes
//! them to the store in one transaction, as a batch with an id of its own.
//! A failed batch is kept (bounded) and retried as it was, same id and
//! same counts, so that a store which did commit it but could not say so
//! recognizes the retry and counts nothing twice. [`Clicks::flush`] on shutdown writes the
//! rest, so a graceful stop loses nothing and a crash loses at most one
//! interval.
//!
//! Recording allocates nothing once a thread's map has grown to hold the
//! keys of an interval: draining keeps the map's capacity.
//!
//! A link with a click budget is read from the store with
//! [`Clicks::unflushed`] added to its count, inside
//! [`Clicks::between_flushes`], so that a reload (after an edit, an
//! eviction or the cache's time to live) does not hand out again the clicks
//! taken since the last flush.

use crate::model::{day_of, Day, LinkClicks, UnixTime};
use crate::store::{SharedStore, StoreError};
use crate::validate::contains_ignore_ascii_case;
use foldhash::fast::RandomState;
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Number of count shards; threads beyond it share.
const SHARDS: usize = 64;

/// Distinct keys one shard holds per interval before new referrer hosts
/// are counted as [`OTHER_HOST`].
const MAX_KEYS_PER_SHARD: usize = 50_000;

/// Link-count entries a failed flush keeps for the next try; past it the
/// oldest counts are dropped (and counted in [`ClickCounters::dropped`]).
const MAX_PENDING_LINKS: usize = 200_000;

/// Longest referrer host kept; longer ones count as [`LONG_HOST`].
pub const MAX_HOST_LEN: usize = 62;

/// Referrer host recorded when a shard is full of distinct hosts.
pub const OTHER_HOST: &str = "(other)";
/// Referrer host recorded for hosts over [`MAX_HOST_LEN`] bytes.
pub const LONG_HOST: &str = "(long)";

/// A browser family, from the `User-Agent` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AgentFamily {
    Bot,
    Curl,
    Wget,
    Edge,
    Opera,
    Firefox,
    Chrome,
    Safari,
    Other,
    Unknown,
}

impl AgentFamily {
    /// Classifies a `User-Agent` value; order matters, as most browsers
    /// name others in theirs (Edge says Chrome and Safari).
    pub fn of(user_agent: Option<&str>) -> AgentFamily {
        let Some(ua) = user_agent.filter(|ua| !ua.is_empty()) else {
            return AgentFamily::Unknown;
        };
        let has = |needle: &str| ua.contains(needle);
        let lower_has = |needle: &str| contains_ignore_ascii_case(ua.as_bytes(), needle.as_bytes());
        if lower_has("bot") || lower_has("crawl") || lower_has("spider") || lower_has("preview") {
            AgentFamily::Bot
        } else if ua.starts_with("curl/") {
            AgentFamily::Curl
        } else if ua.starts_with("Wget/") {
            AgentFamily::Wget
        } else if has("Edg/") || has("Edge/") {
            AgentFamily::Edge
        } else if has("OPR/") || has("Opera") {
            AgentFamily::Opera
        } else if has("Firefox/") {
            AgentFamily::Firefox
        } else if has("Chrome/") || has("Chromium/") || has("CriOS/") {
            AgentFamily::Chrome
        } else if has("Safari/") {
            AgentFamily::Safari
        } else {
            AgentFamily::Other
        }
    }

    /// The name shown in stats.
    pub fn name(self) -> &'static str {
        match self {
            AgentFamily::Bot => "bot",
            AgentFamily::Curl => "curl",
            AgentFamily::Wget => "wget",
            AgentFamily::Edge => "edge",
            AgentFamily::Opera => "opera",
            AgentFamily::Firefox => "firefox",
            AgentFamily::Chrome => "chrome",
            AgentFamily::Safari => "safari",
            AgentFamily::Other => "other",
            AgentFamily::Unknown => "unknown",
        }
    }
}

/// A referrer host, inline so that counting a click allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Host {
    len: u8,
    bytes: [u8; MAX_HOST_LEN],
}

impl Host {
    /// The lowercase host of a `Referer` value; empty for none or one
    /// without a host, [`LONG_HOST`] past [`MAX_HOST_LEN`].
    pub fn of_referer(referer: Option<&str>) -> Host {
        let Some(referer) = referer else {
            return Host::from_str("");
        };
        let rest = match referer.split_once("://") {
            Some((_, rest)) => rest,
            None => return Host::from_str(""),
        };
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = match host_port.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host_port.split(':').next().unwrap_or(""),
        };
        if host.len() > MAX_HOST_LEN {
            return Host::from_str(LONG_HOST);
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':'))
        {
            return Host::from_str(OTHER_HOST);
        }
        let mut out = Host::from_str("");
        out.len = host.len() as u8;
        for (dst, src) in out.bytes.iter_mut().zip(host.bytes()) {
            *dst = src.to_ascii_lowercase();
        }
        out
    }

    fn from_str(host: &str) -> Host {
        let mut out = Host {
            len: host.len() as u8,
            bytes: [0; MAX_HOST_LEN],
        };
        out.bytes[..host.len()].copy_from_slice(host.as_bytes());
        out
    }

    /// The host text.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

/// One click's key: what the stats distinguish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Click {
    pub link_id: i64,
    pub day: Day,
    pub referrer: Host,
    pub agent: AgentFamily,
}

impl Click {
    /// The click on link `link_id` at `now` from a request with these
    /// `Referer` and `User-Agent` values.
    pub fn new(link_id: i64, now: UnixTime, referer: Option<&str>, agent: Option<&str>) -> Click {
        Click {
            link_id,
            day: day_of(now),
            referrer: Host::of_referer(referer),
            agent: AgentFamily::of(agent),
        }
    }
}

/// Flush counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct ClickCounters {
    /// Clicks recorded.
    pub recorded: AtomicU64,
    /// Clicks written to the store.
    pub flushed: AtomicU64,
    /// Flushes that wrote at least one link.
    pub flushes: AtomicU64,
    /// Links in the last flush written.
    pub last_batch_links: AtomicU64,
    /// Flushes the store refused (their counts were kept).
    pub failures: AtomicU64,
    /// Clicks dropped because too many failed flushes piled up.
    pub dropped: AtomicU64,
}

type CountMap = HashMap<Click, u64, RandomState>;

/// Per-thread click counts and their flusher. See the [module docs](self).
pub struct Clicks {
    shards: Box<[Mutex<CountMap>]>,
    next_shard: AtomicUsize,
    /// Batches not yet acknowledged by the store, oldest first, each
    /// retried as it was sealed (same id, same counts) so that the store
    /// can tell a retry from a new batch.
    pending: Mutex<VecDeque<Sealed>>,
    /// `pending`'s length when the last flush ended, for
    /// [`Clicks::pending_batches`]: a flush holds `pending` while it writes,
    /// which on a slow or cut network lasts seconds.
    pending_after_flush: AtomicUsize,
    /// Names this process's batches: `<random>-<sequence>`.
    instance: u64,
    sequence: AtomicU64,
    /// Held exclusively by a flush (serializing the timer's and a
    /// shutdown's), shared by [`Clicks::between_flushes`]: while it is
    /// shared, every click is either in the store or in `pending` and the
    /// shards, never on its way between them.
    flushing: RwLock<()>,
    pub counters: ClickCounters,
    stop: Mutex<bool>,
    wake: Condvar,
    stopped: AtomicBool,
}

thread_local! {
    /// This thread's shard in each `Clicks` it has counted into, by the
    /// `Clicks` address (tests run several apps in one process).
    static MY_SHARD: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, usize::MAX)) };
}

impl Default for Clicks {
    fn default() -> Self {
        Clicks::new()
    }
}

impl Clicks {
    /// No counts yet.
    pub fn new() -> Clicks {
        Clicks {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(CountMap::default()))
                .collect(),
            next_shard: AtomicUsize::new(0),
            pending: Mutex::new(VecDeque::new()),
            pending_after_flush: AtomicUsize::new(0),
            instance: {
                let mut random = [0u8; 8];
                // Without a random source, the time makes clashes unlikely.
                if getrandom::fill(&mut random).is_err() {
                    let nanos = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos() as u64);
                    random = (nanos ^ u64::from(std::process::id())).to_le_bytes();
                }
                u64::from_le_bytes(random)
            },
            sequence: AtomicU64::new(0),
            flushing: RwLock::new(()),
            counters: ClickCounters::default(),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            stopped: AtomicBool::new(false),
        }
    }

    fn my_shard(&self) -> &Mutex<CountMap> {
        let me = self as *const Clicks as usize;
        let index = MY_SHARD.with(|cell| {
            let (owner, index) = cell.get();
            if owner == me && index != usize::MAX {
                return index;
            }
            let index = self.next_shard.fetch_add(1, Ordering::Relaxed) % SHARDS;
            cell.set((me, index));
            index
        });
        &self.shards[index]
    }

    /// Counts one click. Allocates nothing once this thread's map holds the
    /// interval's keys.
    pub fn record(&self, click: Click) {
        self.counters.recorded.fetch_add(1, Ordering::Relaxed);
        let mut counts = self.my_shard().lock();
        if let Some(count) = counts.get_mut(&click) {
            *count += 1;
            return;
        }
        let click = if counts.len() >= MAX_KEYS_PER_SHARD {
            Click {
                referrer: Host::from_str(OTHER_HOST),
                ..click
            }
        } else {
            click
        };
        *counts.entry(click).or_insert(0) += 1;
    }

    /// Writes every count gathered so far, and the batches of failed
    /// flushes, to `store`. On failure the batches are kept for the next
    /// flush, up to a bound.
    ///
    /// # Errors
    ///
    /// The store's error; the counts stay pending.
    pub fn flush(&self, store: &SharedStore) -> Result<usize, StoreError> {
        self.flush_with(|id, batch| store.record_clicks(id, batch))
    }

    /// [`Clicks::flush`] through `write`, which stores one batch (its id and
    /// counts) in one transaction (the app times it for `/metrics`). Seals
    /// the counts gathered since the last flush into a new batch, then
    /// writes the pending batches oldest first, stopping at the first
    /// failure. Returns the links written.
    ///
    /// # Errors
    ///
    /// `write`'s error; the batch it failed on and those after stay pending.
    pub fn flush_with(
        &self,
        mut write: impl FnMut(&str, &[LinkClicks]) -> Result<(), StoreError>,
    ) -> Result<usize, StoreError> {
        let _one_at_a_time = self.flushing.write();
        let mut drained = Vec::new();
        for shard in self.shards.iter() {
            drained.extend(shard.lock().drain());
        }
        let mut pending = self.pending.lock();
        if !drained.is_empty() {
            let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
            pending.push_back(Sealed {
                id: format!("{:016x}-{sequence}", self.instance),
                links: aggregate(drained),
            });
        }
        let mut written = 0;
        while let Some(batch) = pending.front() {
            if let Err(error) = write(&batch.id, &batch.links) {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                self.drop_excess(&mut pending);
                self.pending_after_flush
                    .store(pending.len(), Ordering::Relaxed);
                return Err(error);
            }
            let clicks: u64 = batch.links.iter().map(|l| l.total).sum();
            self.counters.flushed.fetch_add(clicks, Ordering::Relaxed);
            self.counters.flushes.fetch_add(1, Ordering::Relaxed);
            self.counters
                .last_batch_links
                .store(batch.links.len() as u64, Ordering::Relaxed);
            written += batch.links.len();
            pending.pop_front();
        }
        self.pending_after_flush.store(0, Ordering::Relaxed);
        Ok(written)
    }

    /// Drops the oldest pending batches past [`MAX_PENDING_LINKS`] links.
    fn drop_excess(&self, pending: &mut VecDeque<Sealed>) {
        let mut links: usize = pending.iter().map(|b| b.links.len()).sum();
        while links > MAX_PENDING_LINKS {
            let Some(oldest) = pending.pop_front() else {
                break;
            };
            links -= oldest.links.len();
            let clicks: u64 = oldest.links.iter().map(|l| l.total).sum();
            self.counters.dropped.fetch_add(clicks, Ordering::Relaxed);
        }
    }

    /// Batches waiting for the store after failed flushes, as the last
    /// flush left them. Never waits for a flush under way (`/health` asks
    /// while the store may take seconds to answer one).
    pub fn pending_batches(&self) -> usize {
        self.pending_after_flush.load(Ordering::Relaxed)
    }

    /// Runs `read` while no flush is under way: a store read inside it and
    /// [`Clicks::unflushed`] count each click once, in one or the other.
    /// Flushes wait meanwhile; keep it to one store read.
    pub fn between_flushes<T>(&self, read: impl FnOnce() -> T) -> T {
        let _no_flush = self.flushing.read();
        read()
    }

    /// Clicks on link `link_id` counted here and not yet in the store
    /// (also those of failed flushes). Exact inside
    /// [`Clicks::between_flushes`] only. Scans every shard: for the rare
    /// store read of a link with a click budget, not for the redirect path.
    pub fn unflushed(&self, link_id: i64) -> u64 {
        let pending = self
            .pending
            .lock()
            .iter()
            .flat_map(|batch| &batch.links)
            .filter(|l| l.link_id == link_id)
            .map(|l| l.total)
            .sum();
        self.shards.iter().fold(pending, |total, shard| {
            shard
                .lock()
                .iter()
                .filter(|(click, _)| click.link_id == link_id)
                .fold(total, |total, (_, count)| total.saturating_add(*count))
        })
    }

    /// Starts the thread that flushes every `interval` until [`Clicks::stop`],
    /// writing each batch with `write` (see [`Clicks::flush_with`]).
    pub fn start_flusher(
        self: &Arc<Self>,
        interval: Duration,
        write: impl Fn(&str, &[LinkClicks]) -> Result<(), StoreError> + Send + 'static,
    ) -> JoinHandle<()> {
        let clicks = Arc::clone(self);
        std::thread::Builder::new()
            .name(String::from("click-flusher"))
            .spawn(move || {
                let mut next = Instant::now() + interval;
                loop {
                    {
                        let mut stop = clicks.stop.lock();
                        while !*stop && Instant::now() < next {
                            clicks.wake.wait_until(&mut stop, next);
                        }
                        if *stop {
                            break;
                        }
                    }
                    next += interval;
                    if let Err(error) = clicks.flush_with(&write) {
                        eprintln!("shortener: click flush failed, kept for the next: {error}");
                    }
                }
                clicks.stopped.store(true, Ordering::Release);
            })
            .expect("spawning the click flusher")
    }

    /// Stops the flusher thread (it does not flush; call [`Clicks::flush`]
    /// after the server stopped).
    pub fn stop(&self) {
        *self.stop.lock() = true;
        self.wake.notify_all();
    }
}

/// A batch of counts as written to the store, kept as is until it is.
struct Sealed {
    id: String,
    links: Vec<LinkClicks>,
}

/// Sums drained per-click counts into per-link counts.
fn aggregate(drained: Vec<(Click, u64)>) -> Vec<LinkClicks> {
    let mut links: HashMap<i64, LinkClicks> = HashMap::new();
    for (click, count) in drained {
        let link = links.entry(click.link_id).or_insert_with(|| LinkClicks {
            link_id: click.link_id,
            ..LinkClicks::default()
        });
        link.total += count;
        add(&mut link.days, click.day, count);
        add(
            &mut link.referrers,
            click.referrer.as_str().to_owned(),
            count,
        );
        add(&mut link.agents, click.agent.name().to_owned(), count);
    }
    links.into_values().collect()
}

/// Adds `count` to `key`'s entry in a small association list.
fn add<K: PartialEq>(list: &mut Vec<(K, u64)>, key: K, count: u64) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some((_, total)) => *total += count,
        None => list.push((key, count)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unflushed_clicks_are_counted_until_written() {
        let clicks = Clicks::new();
        let at = 1_795_600_800;
        clicks.record(Click::new(1, at, None, Some("curl/8")));
        clicks.record(Click::new(1, at, Some("https://a.example/"), None));
        clicks.record(Click::new(2, at, None, None));
        std::thread::scope(|s| {
            s.spawn(|| clicks.record(Click::new(1, at + 86_400, None, None)));
        });
        assert_eq!(clicks.between_flushes(|| clicks.unflushed(1)), 3);
        assert_eq!(clicks.unflushed(2), 1);
        assert_eq!(clicks.unflushed(3), 0);
        // A failed flush keeps them pending; a good one writes them.
        let mut failed_id = String::new();
        let failed = clicks.flush_with(|id, _| {
            failed_id = id.to_owned();
            // Asked while a flush writes: the last flush's count, at once.
            assert_eq!(clicks.pending_batches(), 0);
            Err(StoreError::Unavailable("down".into()))
        });
        assert!(failed.is_err());
        assert_eq!(clicks.pending_batches(), 1);
        assert_eq!(clicks.unflushed(1), 3);
        // Clicks after the failure go in a batch of their own: the failed
        // one is retried first, under the same id, with the same counts.
        clicks.record(Click::new(2, at, None, None));
        let mut written = Vec::new();
        let links = clicks.flush_with(|id, batch| {
            let mut batch = batch.to_vec();
            batch.sort_by_key(|l| l.link_id);
            written.push((
                id.to_owned(),
                batch.iter().map(|l| l.total).collect::<Vec<_>>(),
            ));
            Ok(())
        });
        assert_eq!(links.unwrap(), 3);
        assert_eq!(clicks.pending_batches(), 0);
        assert_eq!(written.len(), 2);
        assert_eq!(written[0], (failed_id.clone(), vec![3, 1]));
        assert_ne!(written[1].0, failed_id);
        assert_eq!(written[1].1, [1]);
        assert_eq!(clicks.unflushed(1), 0);
        assert_eq!(clicks.unflushed(2), 0);
        assert_eq!(clicks.counters.flushed.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn agents_are_classified_by_family() {
        let cases = [
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", "chrome"),
            ("Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0", "edge"),
            ("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0", "firefox"),
            ("Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15", "safari"),
            ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot"),
            ("Slackbot-LinkExpanding 1.0", "bot"),
            ("curl/8.5.0", "curl"),
            ("Wget/1.21", "wget"),
            ("something", "other"),
            ("", "unknown"),
        ];
        for (ua, family) in cases {
            assert_eq!(AgentFamily::of(Some(ua)).name(), family, "{ua}");
        }
        assert_eq!(AgentFamily::of(None), AgentFamily::Unknown);
    }

    #[test]
    fn referrer_hosts_are_lowercased_and_bounded() {
        let host = |r: Option<&str>| Host::of_referer(r).as_str().to_owned();
        assert_eq!(
            host(Some("https://News.Example.com:443/a?b")),
            "news.example.com"
        );
        assert_eq!(host(Some("http://user@h.example/")), "h.example");
        assert_eq!(host(Some("http://[::1]:8080/")), "::1");
        assert_eq!(host(Some("android-app://com.slack/")), "com.slack");
        assert_eq!(host(Some("not a url")), "");
        assert_eq!(host(None), "");
        let long = format!("https://{}.com/", "a".repeat(80));
        assert_eq!(host(Some(&long)), LONG_HOST);
        assert_eq!(host(Some("https://bad host/")), OTHER_HOST);
    }
}
