//! Click counting without a store write on the redirect path.
//!
//! A click is one increment in an in-memory map owned by the thread that
//! served it (each thread is given its own shard the first time it counts),
//! keyed by link, day, referrer host and browser family. Once a second a
//! flusher thread drains every shard into a sealed batch (summed per link
//! with hash maps, see `aggregate.rs`) and writes it to the store in one
//! transaction, under an id of its own. A failed batch is kept (bounded)
//! and retried as it was, same id and same counts, so that a store which
//! did commit it but could not say so recognizes the retry and counts
//! nothing twice. [`Clicks::flush`] on shutdown writes the rest, so a
//! graceful stop loses nothing and a crash loses at most one interval.
//!
//! No lock is held across a store write that the redirect path or a
//! reader needs: a batch is written from a shared snapshot, and marked
//! committed afterwards, in a moment.
//!
//! One link's referrer hosts are bounded at every step: per shard
//! (`KEYS_PER_LINK_PER_SHARD`), per batch ([`REFERRERS_PER_INTERVAL`])
//! and in the store ([`REFERRER_ROWS_PER_LINK`]); past each, clicks count as
//! [`OTHER_HOST`]. Link previews and crawlers ([`AgentFamily::is_automated`])
//! are counted under their family only, never in the total nor against a
//! click budget.
//!
//! Recording allocates nothing once a thread's map has grown to hold the
//! keys of an interval: draining keeps the map's capacity.
//!
//! A link with a click budget is read from the store inside
//! [`Clicks::with_unflushed`], which adds the clicks the read cannot have
//! seen, so that a reload (after an edit, an eviction or the cache's time
//! to live) does not hand out again the clicks taken since the last flush.
//!
//! Every click recorded is also published to [`live::Live`], the hub of the
//! live page, at the cost of an atomic load when nobody watches the link.

mod agent;
mod aggregate;
mod host;
pub mod live;

pub use agent::AgentFamily;
pub use aggregate::{fit_stored_referrers, REFERRERS_PER_INTERVAL, REFERRER_ROWS_PER_LINK};
pub use host::{Host, LONG_HOST, MAX_HOST_LEN, OTHER_HOST};

use crate::model::{day_of, Day, LinkClicks, UnixTime};
use crate::store::{SharedStore, StoreError};
use crate::striped::{thread_index, StripedCounter};
use aggregate::aggregate;
use foldhash::fast::RandomState;
use parking_lot::{Condvar, Mutex};
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

/// Keys with a named referrer host one link gets in one shard per
/// interval; past it, its clicks count as [`OTHER_HOST`]. Bounds what
/// `Referer` spam on one link costs in memory and at the next flush, with
/// room above [`REFERRERS_PER_INTERVAL`] for a host seen under several
/// browser families, so that the batch's top hosts are still chosen by
/// clicks.
const KEYS_PER_LINK_PER_SHARD: u32 = 4 * REFERRERS_PER_INTERVAL as u32;

/// Link-count entries a failed flush keeps for the next try; past it the
/// oldest counts are dropped (and counted in [`ClickCounters::dropped`]).
const MAX_PENDING_LINKS: usize = 200_000;

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
    /// `Referer` and `User-Agent` values. An automated visit keeps no
    /// referrer: it is counted under its family only.
    pub fn new(link_id: i64, now: UnixTime, referer: Option<&str>, agent: Option<&str>) -> Click {
        let agent = AgentFamily::of(agent);
        Click {
            link_id,
            day: day_of(now),
            referrer: if agent.is_automated() {
                Host::NONE
            } else {
                Host::of_referer(referer)
            },
            agent,
        }
    }
}

/// Flush counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct ClickCounters {
    /// Clicks recorded, automated visits included (striped: every
    /// redirect adds to it, from every worker).
    pub recorded: StripedCounter,
    /// Visits of link previews and crawlers, counted apart.
    pub automated: StripedCounter,
    /// Clicks whose referrer host was past a cap and counted as
    /// [`OTHER_HOST`] (in a shard or a batch).
    pub referrers_folded: AtomicU64,
    /// Clicks written to the store (automated visits aside).
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

/// One thread's counts since the last flush.
#[derive(Default)]
struct Shard {
    counts: CountMap,
    /// Keys with a named referrer host in `counts`, per link: bounds what
    /// one link's `Referer` spam costs (see [`KEYS_PER_LINK_PER_SHARD`]).
    named_per_link: HashMap<i64, u32, RandomState>,
}

impl Shard {
    /// The key a click not yet in `counts` is counted under: its own, or
    /// with its referrer as [`OTHER_HOST`] past a cap.
    fn admit(&mut self, click: Click, counters: &ClickCounters) -> Click {
        if !click.referrer.is_named() {
            return click;
        }
        let named = self.named_per_link.entry(click.link_id).or_insert(0);
        if *named < KEYS_PER_LINK_PER_SHARD && self.counts.len() < MAX_KEYS_PER_SHARD {
            *named += 1;
            return click;
        }
        counters.referrers_folded.fetch_add(1, Ordering::Relaxed);
        Click {
            referrer: Host::other(),
            ..click
        }
    }
}

/// A batch of counts as written to the store, kept as is until it is.
struct Sealed {
    id: String,
    /// Shared with the flush writing it, which holds no lock meanwhile.
    links: Arc<[LinkClicks]>,
    /// The commit number ([`Clicks::commits`]) it got once the store took
    /// it; kept until no reader that may not have seen it is left.
    committed: Option<u64>,
}

/// Per-thread click counts and their flusher. See the [module docs](self).
pub struct Clicks {
    shards: Box<[Mutex<Shard>]>,
    /// Batches sealed and not known to every reader to be in the store,
    /// oldest first, each retried as it was sealed (same id, same counts)
    /// so that the store can tell a retry from a new batch. Locked for
    /// moments only, never across a store call; a flush seals the shards'
    /// counts into it under this lock, so that a click is always either in
    /// a shard or here.
    pending: Mutex<VecDeque<Sealed>>,
    /// Uncommitted batches when the last flush ended, for
    /// [`Clicks::pending_batches`].
    pending_after_flush: AtomicUsize,
    /// Batches committed so far: numbers them, and tells a reader which
    /// ones its store read may have missed.
    commits: AtomicU64,
    /// The `commits` each open [`Clicks::with_unflushed`] started at: a
    /// committed batch stays in `pending` while one of them is older.
    windows: Mutex<Vec<u64>>,
    /// Held by a flush from start to end, so that the timer's and a
    /// shutdown's do not interleave. Nothing else takes it.
    flush_turn: Mutex<()>,
    /// Names this process's batches: `<random>-<sequence>`.
    instance: u64,
    sequence: AtomicU64,
    pub counters: ClickCounters,
    /// The live page's hub: every click recorded is published to it.
    pub live: Arc<live::Live>,
    stop: Mutex<bool>,
    wake: Condvar,
    stopped: AtomicBool,
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
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            pending: Mutex::new(VecDeque::new()),
            pending_after_flush: AtomicUsize::new(0),
            commits: AtomicU64::new(0),
            windows: Mutex::new(Vec::new()),
            flush_turn: Mutex::new(()),
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
            counters: ClickCounters::default(),
            live: Arc::new(live::Live::new()),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            stopped: AtomicBool::new(false),
        }
    }

    fn my_shard(&self) -> &Mutex<Shard> {
        &self.shards[thread_index() % SHARDS]
    }

    /// Counts one click, and publishes it to [`Clicks::live`] once it is
    /// in a shard (so that a store read with the unflushed clicks, made
    /// after a watcher saw it, counts it too). Allocates nothing once this
    /// thread's map holds the interval's keys.
    pub fn record(&self, click: Click) {
        self.counters.recorded.add(1);
        if click.agent.is_automated() {
            self.counters.automated.add(1);
        }
        self.count(click);
        self.live.publish(&click);
    }

    /// Adds `click` to this thread's shard.
    fn count(&self, click: Click) {
        let mut shard = self.my_shard().lock();
        if let Some(count) = shard.counts.get_mut(&click) {
            *count += 1;
            return;
        }
        let click = shard.admit(click, &self.counters);
        *shard.counts.entry(click).or_insert(0) += 1;
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
    /// writes the uncommitted batches oldest first, stopping at the first
    /// failure. `write` runs with no lock held that recording or a reader
    /// needs. Returns the links written.
    ///
    /// # Errors
    ///
    /// `write`'s error; the batch it failed on and those after stay pending.
    pub fn flush_with(
        &self,
        mut write: impl FnMut(&str, &[LinkClicks]) -> Result<(), StoreError>,
    ) -> Result<usize, StoreError> {
        let _one_at_a_time = self.flush_turn.lock();
        self.seal();
        let mut written = 0;
        loop {
            let next = self
                .pending
                .lock()
                .iter()
                .find(|batch| batch.committed.is_none())
                .map(|batch| (batch.id.clone(), Arc::clone(&batch.links)));
            let Some((id, links)) = next else {
                break;
            };
            if let Err(error) = write(&id, &links) {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                self.purge_committed();
                let mut pending = self.pending.lock();
                self.drop_excess(&mut pending);
                let waiting = pending.iter().filter(|b| b.committed.is_none()).count();
                self.pending_after_flush.store(waiting, Ordering::Relaxed);
                return Err(error);
            }
            self.mark_committed(&id);
            let clicks: u64 = links.iter().map(|l| l.total).sum();
            self.counters.flushed.fetch_add(clicks, Ordering::Relaxed);
            self.counters.flushes.fetch_add(1, Ordering::Relaxed);
            self.counters
                .last_batch_links
                .store(links.len() as u64, Ordering::Relaxed);
            written += links.len();
        }
        self.purge_committed();
        self.pending_after_flush.store(0, Ordering::Relaxed);
        Ok(written)
    }

    /// Drains every shard into a new pending batch, under the `pending`
    /// lock (held for the sum, never for store I/O): a reader sees each
    /// click in a shard or in the batch, never in neither.
    fn seal(&self) {
        let mut pending = self.pending.lock();
        let mut drained = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            drained.extend(shard.counts.drain());
            shard.named_per_link.clear();
        }
        if drained.is_empty() {
            return;
        }
        let batch = aggregate(drained);
        self.counters
            .referrers_folded
            .fetch_add(batch.folded, Ordering::Relaxed);
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        pending.push_back(Sealed {
            id: format!("{:016x}-{sequence}", self.instance),
            links: batch.links.into(),
            committed: None,
        });
    }

    /// Numbers batch `id` as committed, now that the store took it.
    fn mark_committed(&self, id: &str) {
        let mut pending = self.pending.lock();
        if let Some(batch) = pending.iter_mut().find(|batch| batch.id == id) {
            batch.committed = Some(self.commits.fetch_add(1, Ordering::SeqCst) + 1);
        }
    }

    /// Forgets the committed batches that every open reader's store read
    /// started after (they are in what it read).
    fn purge_committed(&self) {
        let windows = self.windows.lock();
        let oldest = windows.iter().copied().min().unwrap_or(u64::MAX);
        self.pending
            .lock()
            .retain(|batch| batch.committed.is_none_or(|at| at > oldest));
    }

    /// Drops the oldest uncommitted batches past [`MAX_PENDING_LINKS`] links.
    fn drop_excess(&self, pending: &mut VecDeque<Sealed>) {
        let mut links: usize = pending
            .iter()
            .filter(|b| b.committed.is_none())
            .map(|b| b.links.len())
            .sum();
        while links > MAX_PENDING_LINKS {
            let Some(at) = pending.iter().position(|b| b.committed.is_none()) else {
                break;
            };
            let Some(oldest) = pending.remove(at) else {
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

    /// Runs `read` (one store read) with what it cannot have seen:
    /// [`Unflushed::of`] counts each click that is not in a store read
    /// started inside `read`, so that the two add up to at least every
    /// click taken (a batch committing while `read` runs may be counted in
    /// both: a reload then allows fewer clicks until the next one, never
    /// more). Never waits for a flush nor for the store: a flush under way
    /// goes on meanwhile.
    pub fn with_unflushed<T>(&self, read: impl FnOnce(&Unflushed<'_>) -> T) -> T {
        let since = {
            let mut windows = self.windows.lock();
            let since = self.commits.load(Ordering::SeqCst);
            windows.push(since);
            since
        };
        let window = Unflushed {
            clicks: self,
            since,
        };
        read(&window)
    }
}

/// The clicks a store read inside [`Clicks::with_unflushed`] may not have
/// seen. Closes its window when dropped.
pub struct Unflushed<'a> {
    clicks: &'a Clicks,
    /// `commits` when the window opened: batches committed later may be
    /// missing from the read.
    since: u64,
}

impl Unflushed<'_> {
    /// Clicks on link `link_id` that count against its budget and that a
    /// store read in this window may have missed: in the shards, in
    /// batches not yet committed (failed flushes' too) and in batches
    /// committed since the window opened. Scans every shard: for the rare
    /// store read of a link with a click budget, not for the redirect path.
    pub fn of(&self, link_id: i64) -> u64 {
        // Held over the shard scan: a flush seals under it, so no click is
        // between a shard and a batch meanwhile.
        let pending = self.clicks.pending.lock();
        let sealed = pending
            .iter()
            .filter(|batch| batch.committed.is_none_or(|at| at > self.since))
            .flat_map(|batch| batch.links.iter())
            .filter(|l| l.link_id == link_id)
            .fold(0u64, |total, l| total.saturating_add(l.total));
        self.clicks.shards.iter().fold(sealed, |total, shard| {
            shard
                .lock()
                .counts
                .iter()
                .filter(|(click, _)| click.link_id == link_id && !click.agent.is_automated())
                .fold(total, |total, (_, count)| total.saturating_add(*count))
        })
    }
}

impl Drop for Unflushed<'_> {
    fn drop(&mut self) {
        let mut windows = self.clicks.windows.lock();
        if let Some(at) = windows.iter().position(|since| *since == self.since) {
            windows.swap_remove(at);
        }
    }
}

impl Clicks {
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

#[cfg(test)]
mod tests;
