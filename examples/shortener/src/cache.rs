//! The redirect cache: slug to link, in memory, bounded, shared by every
//! worker.
//!
//! A hit is answered on the worker thread without a store call and without
//! allocating: a read lock on one of [`SHARDS`] shards, a hash lookup with
//! the borrowed slug, and the caller's closure run on the borrowed entry.
//! Misses are cached too ("this slug does not exist") for a short time in a
//! separate, smaller map, so a flood of unknown slugs neither reaches the
//! store nor evicts the links people follow.
//!
//! Eviction is sampled LRU: when a shard is over its bounds, a few entries
//! picked at random are compared by last use and the oldest goes. Each
//! entry also has a time to live, the fallback that keeps several instances
//! sharing one database from serving a changed link forever.
//!
//! A load racing an update is resolved with a per-shard generation: an
//! update or delete bumps it, and a load that began before the bump does not
//! insert what it read.

use crate::model::{Link, UnixTime};
use crate::striped::StripedCounter;
use foldhash::fast::RandomState;
use indexmap::IndexMap;
use parking_lot::RwLock;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Number of independently locked shards.
pub const SHARDS: usize = 64;

/// Entries compared per eviction.
const EVICTION_SAMPLE: usize = 5;

/// Bytes counted for an entry beyond its strings: the map slot, the `Box`es
/// and the counters.
const ENTRY_OVERHEAD: usize = 96;

/// Cache bounds and lifetimes.
#[derive(Clone, Copy, Debug)]
pub struct CacheConfig {
    /// Most links kept, over all shards.
    pub max_entries: usize,
    /// Most bytes of links kept (slug, URL, hash and overhead), over all shards.
    pub max_bytes: usize,
    /// How long a link is served from memory before it is read again.
    pub ttl: Duration,
    /// The same for a link with a click budget, when shorter than `ttl`:
    /// the click flush interval. Its cached count knows the clicks taken
    /// here and those in the store when it was read; clicks other
    /// instances take reach the store with their flush and this cache
    /// with the next read, so a budget spent elsewhere is enforced here
    /// within about two flush intervals, not after `ttl`.
    pub budget_ttl: Duration,
    /// How long "no such slug" is remembered.
    pub negative_ttl: Duration,
    /// Most unknown slugs remembered, over all shards.
    pub max_negative: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_entries: 100_000,
            max_bytes: 64 << 20,
            ttl: Duration::from_secs(300),
            budget_ttl: Duration::from_secs(1),
            negative_ttl: Duration::from_secs(5),
            max_negative: 25_000,
        }
    }
}

/// A link as the redirect path needs it.
#[derive(Debug)]
pub struct CachedLink {
    pub id: i64,
    pub url: Box<str>,
    pub expires_at: Option<UnixTime>,
    pub disabled: bool,
    pub max_clicks: Option<u64>,
    pub password_hash: Option<Box<str>>,
    /// Clicks in the store when loaded plus those counted here since: the
    /// click budget is enforced against it.
    clicks: AtomicU64,
    /// Milliseconds since the cache began, at the last hit.
    last_used: AtomicU32,
    loaded: Instant,
    /// Past its time to live, a read from the store is under way (one at a
    /// time per entry; see [`Lookup::Stale`]).
    refreshing: AtomicBool,
}

impl CachedLink {
    /// The entry for `link`, loaded now.
    pub fn from_link(link: &Link) -> CachedLink {
        let now = Instant::now();
        CachedLink {
            id: link.id,
            url: link.url.as_str().into(),
            expires_at: link.expires_at,
            disabled: link.disabled,
            max_clicks: link.max_clicks,
            password_hash: link.password_hash.as_deref().map(Into::into),
            clicks: AtomicU64::new(link.clicks),
            last_used: AtomicU32::new(0),
            loaded: now,
            refreshing: AtomicBool::new(false),
        }
    }

    /// Takes one click from the budget: `false` when the link has none left
    /// (it answers `410`). Links without a budget always have one.
    pub fn take_click(&self) -> bool {
        match self.max_clicks {
            None => true,
            Some(max) => self.clicks.fetch_add(1, Ordering::Relaxed) < max,
        }
    }

    /// Whether the link is expired or disabled at `now` (budget aside).
    pub fn is_gone(&self, now: UnixTime) -> bool {
        self.disabled || self.expires_at.is_some_and(|at| now >= at)
    }

    /// Whether the click budget is spent, without taking from it.
    pub fn is_spent(&self) -> bool {
        self.max_clicks
            .is_some_and(|max| self.clicks.load(Ordering::Relaxed) >= max)
    }

    /// Marks the link used at `ms` (since the cache's epoch), for eviction.
    /// A write only when the millisecond changed: a link every worker is
    /// redirecting to keeps its line shared between their cores instead of
    /// each hit taking it for writing.
    fn touch(&self, ms: u32) {
        if self.last_used.load(Ordering::Relaxed) != ms {
            self.last_used.store(ms, Ordering::Relaxed);
        }
    }

    fn bytes(&self, slug: &str) -> usize {
        ENTRY_OVERHEAD
            + slug.len()
            + self.url.len()
            + self.password_hash.as_ref().map_or(0, |h| h.len())
    }
}

/// What the cache knows about a slug.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// The link, borrowed for the duration of the closure.
    Hit(&'a CachedLink),
    /// The store said recently that no link has this slug.
    Missing,
    /// Past its time to live: answer from it, and when `refresh` is set
    /// (one caller at a time gets it) read it again from the store in the
    /// background, then [`RedirectCache::insert`] and
    /// [`RedirectCache::refresh_done`]. Serving while reading
    /// (stale-while-revalidate) keeps a slow or flapping store off the
    /// redirect path; the entry is at most one read out of date. Links
    /// with a click budget are never `Stale`: their budget needs the
    /// store's count first.
    Stale { link: &'a CachedLink, refresh: bool },
    /// Not cached: ask the store, then [`RedirectCache::insert`].
    Unknown,
}

/// A token taken before a store read; [`RedirectCache::insert`] drops the
/// result when the slug changed meanwhile.
#[derive(Clone, Copy, Debug)]
pub struct Generation(u64);

/// Counters the cache keeps, for `/metrics`.
/// Striped: every redirect adds to one of them, from every worker.
#[derive(Debug, Default)]
pub struct CacheCounters {
    pub hits: StripedCounter,
    pub negative_hits: StripedCounter,
    pub misses: StripedCounter,
    pub evictions: StripedCounter,
    /// Links served past their time to live because the store failed.
    pub stale_hits: StripedCounter,
}

#[derive(Default)]
struct Shard {
    links: IndexMap<Box<str>, CachedLink, RandomState>,
    missing: IndexMap<Box<str>, Instant, RandomState>,
    bytes: usize,
    generation: u64,
    /// xorshift state for picking eviction samples.
    random: u64,
}

/// The redirect cache. See the [module docs](self).
pub struct RedirectCache {
    shards: Box<[RwLock<Shard>]>,
    hasher: RandomState,
    config: CacheConfig,
    epoch: Instant,
    pub counters: CacheCounters,
}

impl RedirectCache {
    /// An empty cache with these bounds.
    pub fn new(config: CacheConfig) -> RedirectCache {
        let shards = (0..SHARDS)
            .map(|i| {
                RwLock::new(Shard {
                    random: 0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1),
                    ..Shard::default()
                })
            })
            .collect();
        RedirectCache {
            shards,
            hasher: RandomState::default(),
            config,
            epoch: Instant::now(),
            counters: CacheCounters::default(),
        }
    }

    /// How long `link` is served from memory: [`CacheConfig::budget_ttl`]
    /// for a link with a click budget, else [`CacheConfig::ttl`].
    fn ttl_of(&self, link: &CachedLink) -> Duration {
        match link.max_clicks {
            Some(_) => self.config.ttl.min(self.config.budget_ttl),
            None => self.config.ttl,
        }
    }

    fn shard(&self, slug: &str) -> &RwLock<Shard> {
        // The top bits pick the shard; the maps use their own hashers.
        let hash = self.hasher.hash_one(slug);
        &self.shards[(hash >> 58) as usize % SHARDS]
    }

    /// Looks `slug` up and runs `answer` on what is known, under the
    /// shard's read lock (keep it short: it writes a response head).
    /// Counts a hit, a negative hit or a miss. Allocates nothing.
    pub fn with<R>(&self, slug: &str, answer: impl FnOnce(Lookup<'_>) -> R) -> R {
        self.lookup(slug, true, answer)
    }

    /// [`with`](Self::with) without counting: for a second look after a
    /// miss was counted and the store read (the request was not answered
    /// from the cache). Allocates nothing.
    pub fn peek<R>(&self, slug: &str, answer: impl FnOnce(Lookup<'_>) -> R) -> R {
        self.lookup(slug, false, answer)
    }

    /// The link cached for `slug` even past its time to live, for when the
    /// store cannot be read: a redirect that may be up to a change old
    /// beats an error (stale-if-error). Entries that were invalidated are
    /// gone and are not served. Counts a stale hit; allocates nothing.
    pub fn stale<R>(&self, slug: &str, answer: impl FnOnce(Option<&CachedLink>) -> R) -> R {
        let shard = self.shard(slug).read();
        let link = shard.links.get(slug);
        if link.is_some() {
            self.counters.stale_hits.add(1);
        }
        answer(link)
    }

    fn lookup<R>(&self, slug: &str, count: bool, answer: impl FnOnce(Lookup<'_>) -> R) -> R {
        let counter = |c: &StripedCounter| {
            if count {
                c.add(1);
            }
        };
        let now = Instant::now();
        let shard = self.shard(slug).read();
        if let Some(link) = shard.links.get(slug) {
            let used = now.duration_since(self.epoch).as_millis() as u32;
            if now.duration_since(link.loaded) < self.ttl_of(link) {
                link.touch(used);
                counter(&self.counters.hits);
                return answer(Lookup::Hit(link));
            }
            if count && link.max_clicks.is_none() {
                link.touch(used);
                self.counters.stale_hits.add(1);
                // Load first: the swap (a write) only while no read is under way.
                let refresh = !link.refreshing.load(Ordering::Relaxed)
                    && !link.refreshing.swap(true, Ordering::Relaxed);
                return answer(Lookup::Stale { link, refresh });
            }
        } else if let Some(&until) = shard.missing.get(slug) {
            if now < until {
                counter(&self.counters.negative_hits);
                return answer(Lookup::Missing);
            }
        }
        counter(&self.counters.misses);
        answer(Lookup::Unknown)
    }

    /// The token to take before reading `slug` from the store.
    pub fn generation(&self, slug: &str) -> Generation {
        Generation(self.shard(slug).read().generation)
    }

    /// Caches what the store said about `slug` (`None`: no such link),
    /// unless the slug changed since `generation` was taken.
    ///
    /// A live entry already there stays: it was loaded after `generation`
    /// too (nothing changed since), and it holds the clicks taken from its
    /// budget since, which a replacement read from the store would not
    /// know of until they are flushed.
    pub fn insert(&self, slug: &str, link: Option<&Link>, generation: Generation) {
        let now = Instant::now();
        let mut shard = self.shard(slug).write();
        if shard.generation != generation.0 {
            return;
        }
        if link.is_some()
            && shard
                .links
                .get(slug)
                .is_some_and(|old| now.duration_since(old.loaded) < self.ttl_of(old))
        {
            return;
        }
        let limit_entries = (self.config.max_entries / SHARDS).max(1);
        let limit_bytes = (self.config.max_bytes / SHARDS).max(1);
        match link {
            Some(link) => {
                shard.missing.swap_remove(slug);
                let entry = CachedLink::from_link(link);
                entry.last_used.store(
                    now.duration_since(self.epoch).as_millis() as u32,
                    Ordering::Relaxed,
                );
                let bytes = entry.bytes(slug);
                if bytes > limit_bytes {
                    return;
                }
                if let Some(old) = shard.links.swap_remove(slug) {
                    shard.bytes -= old.bytes(slug);
                }
                while shard.links.len() >= limit_entries || shard.bytes + bytes > limit_bytes {
                    if !self.evict_one(&mut shard) {
                        break;
                    }
                }
                shard.bytes += bytes;
                shard.links.insert(slug.into(), entry);
            }
            None => {
                // Gone from the store: its old entry must not be served
                // again, stale or not.
                if let Some(old) = shard.links.swap_remove(slug) {
                    shard.bytes -= old.bytes(slug);
                }
                let limit = (self.config.max_negative / SHARDS).max(1);
                if shard.missing.len() >= limit {
                    // Unknown slugs are cheap to forget: drop a random one.
                    let victim = next_random(&mut shard.random) as usize % shard.missing.len();
                    shard.missing.swap_remove_index(victim);
                }
                shard
                    .missing
                    .insert(slug.into(), now + self.config.negative_ttl);
            }
        }
    }

    /// After the background read of a [`Lookup::Stale`] entry, whatever came
    /// of it: an entry still there was not replaced (the read failed, or a
    /// change raced it and kept its result out), so the next lookup may
    /// try again. It is served meanwhile.
    pub fn refresh_done(&self, slug: &str) {
        if let Some(link) = self.shard(slug).read().links.get(slug) {
            link.refreshing.store(false, Ordering::Relaxed);
        }
    }

    /// Drops `slug` from the cache after it was created, changed or
    /// deleted, and stops loads in flight from caching the old state.
    pub fn invalidate(&self, slug: &str) {
        let mut shard = self.shard(slug).write();
        shard.generation += 1;
        shard.missing.swap_remove(slug);
        if let Some(old) = shard.links.swap_remove(slug) {
            shard.bytes -= old.bytes(slug);
        }
    }

    /// Drops everything (a lost change feed in a multi-instance set-up).
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            let mut shard = shard.write();
            shard.generation += 1;
            shard.links.clear();
            shard.missing.clear();
            shard.bytes = 0;
        }
    }

    /// Makes every cached link due for a read from the store, as if its
    /// time to live had passed, without dropping it: the next lookup of a
    /// link is [`Lookup::Stale`] (served, and read again in the background)
    /// or, for a link with a click budget, a miss that [`stale`](Self::stale)
    /// still answers while the store cannot be read. For a change feed that
    /// reconnected (changes made meanwhile were not heard) while the store
    /// may still be slow or flapping: [`clear`](Self::clear) would leave
    /// nothing to serve then. Unknown slugs are forgotten.
    pub fn expire_all(&self) {
        // `loaded` this long ago is past every entry's time to live.
        let expired = Instant::now().checked_sub(self.config.ttl);
        for shard in self.shards.iter() {
            let mut shard = shard.write();
            // Loads in flight may have read what the feed did not announce.
            shard.generation += 1;
            shard.missing.clear();
            match expired {
                Some(at) => shard.links.values_mut().for_each(|link| link.loaded = at),
                // A clock younger than the time to live: drop them instead.
                None => {
                    shard.links.clear();
                    shard.bytes = 0;
                }
            }
        }
    }

    /// Links cached now, over all shards.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().links.len()).sum()
    }

    /// Whether no link is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of cached links, as counted against [`CacheConfig::max_bytes`].
    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.read().bytes).sum()
    }

    fn evict_one(&self, shard: &mut Shard) -> bool {
        let len = shard.links.len();
        if len == 0 {
            return false;
        }
        let mut victim = next_random(&mut shard.random) as usize % len;
        for _ in 1..EVICTION_SAMPLE.min(len) {
            let candidate = next_random(&mut shard.random) as usize % len;
            let used = |i: usize| shard.links[i].last_used.load(Ordering::Relaxed);
            if used(candidate) < used(victim) {
                victim = candidate;
            }
        }
        if let Some((slug, old)) = shard.links.swap_remove_index(victim) {
            shard.bytes -= old.bytes(&slug);
            self.counters.evictions.add(1);
        }
        true
    }
}

fn next_random(state: &mut u64) -> u64 {
    // xorshift64: eviction sampling needs spread, not secrecy.
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[cfg(test)]
mod tests;
