//! Click counting without a store write on the redirect path.
//!
//! A click is one increment in an in-memory map owned by the thread that
//! served it (each thread is given its own shard the first time it counts),
//! keyed by link, day, referrer host and browser family. Once a second a
//! flusher thread drains every shard, sums the counts per link and writes
//! them to the store in one transaction. A failed flush keeps its counts
//! (bounded) for the next try. [`Clicks::flush`] on shutdown writes the
//! rest, so a graceful stop loses nothing and a crash loses at most one
//! interval.
//!
//! Recording allocates nothing once a thread's map has grown to hold the
//! keys of an interval: draining keeps the map's capacity.

use crate::model::{day_of, Day, LinkClicks, UnixTime};
use crate::store::SharedStore;
use crate::validate::contains_ignore_ascii_case;
use foldhash::fast::RandomState;
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
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
    /// Link counts of failed flushes, merged into the next.
    pending: Mutex<HashMap<i64, LinkClicks>>,
    /// Serializes flushes: the timer's and a shutdown's.
    flushing: Mutex<()>,
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
            pending: Mutex::new(HashMap::new()),
            flushing: Mutex::new(()),
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

    /// Writes every count gathered so far (and those of failed flushes) to
    /// `store` in one call. On failure the counts are kept for the next
    /// flush, up to a bound.
    ///
    /// # Errors
    ///
    /// The store's error; the counts stay pending.
    pub fn flush(&self, store: &SharedStore) -> Result<usize, crate::store::StoreError> {
        let _one_at_a_time = self.flushing.lock();
        let mut pending = std::mem::take(&mut *self.pending.lock());
        let mut drained = Vec::new();
        for shard in self.shards.iter() {
            drained.extend(shard.lock().drain());
        }
        for (click, count) in drained {
            let link = pending.entry(click.link_id).or_insert_with(|| LinkClicks {
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
        if pending.is_empty() {
            return Ok(0);
        }
        let batch: Vec<LinkClicks> = pending.values().cloned().collect();
        match store.record_clicks(&batch) {
            Ok(()) => {
                let clicks: u64 = batch.iter().map(|l| l.total).sum();
                self.counters.flushed.fetch_add(clicks, Ordering::Relaxed);
                self.counters.flushes.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .last_batch_links
                    .store(batch.len() as u64, Ordering::Relaxed);
                Ok(batch.len())
            }
            Err(error) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                if pending.len() > MAX_PENDING_LINKS {
                    let excess: Vec<i64> =
                        pending.keys().copied().skip(MAX_PENDING_LINKS).collect();
                    for id in excess {
                        if let Some(dropped) = pending.remove(&id) {
                            self.counters
                                .dropped
                                .fetch_add(dropped.total, Ordering::Relaxed);
                        }
                    }
                }
                *self.pending.lock() = pending;
                Err(error)
            }
        }
    }

    /// Starts the thread that flushes every `interval` until [`Clicks::stop`].
    pub fn start_flusher(
        self: &Arc<Self>,
        store: SharedStore,
        interval: Duration,
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
                    if let Err(error) = clicks.flush(&store) {
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
