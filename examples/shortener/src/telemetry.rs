//! The app's own metrics, shown at `/metrics` after keel's: cache hits and
//! misses, the store's change feed, store call latency per operation,
//! click flushes.

use crate::cache::RedirectCache;
use crate::clicks::Clicks;
use keel::LATENCY_BUCKETS;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A kind of store call, the label of its latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOp {
    Get,
    Create,
    CreateMany,
    Update,
    Delete,
    List,
    Stats,
    RecordClicks,
    Ping,
}

impl StoreOp {
    const ALL: [StoreOp; 9] = [
        StoreOp::Get,
        StoreOp::Create,
        StoreOp::CreateMany,
        StoreOp::Update,
        StoreOp::Delete,
        StoreOp::List,
        StoreOp::Stats,
        StoreOp::RecordClicks,
        StoreOp::Ping,
    ];

    fn name(self) -> &'static str {
        match self {
            StoreOp::Get => "get",
            StoreOp::Create => "create",
            StoreOp::CreateMany => "create_many",
            StoreOp::Update => "update",
            StoreOp::Delete => "delete",
            StoreOp::List => "list",
            StoreOp::Stats => "stats",
            StoreOp::RecordClicks => "record_clicks",
            StoreOp::Ping => "ping",
        }
    }
}

/// A latency histogram on keel's [`LATENCY_BUCKETS`]; counts per bucket,
/// made cumulative when rendered.
#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_ns: AtomicU64,
    errors: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration, ok: bool) {
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|bound| elapsed <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The app's counters.
#[derive(Default)]
pub struct Telemetry {
    store: [Histogram; StoreOp::ALL.len()],
    /// Link changes the store's change feed reported (each dropped the
    /// slug from the cache).
    pub feed_changes: AtomicU64,
    /// Times the change feed's connection was lost (each cleared the cache
    /// when it came back).
    pub feed_losses: AtomicU64,
}

impl Telemetry {
    pub fn new() -> Telemetry {
        Telemetry::default()
    }

    /// Records one store call.
    pub fn observe_store(&self, op: StoreOp, elapsed: Duration, ok: bool) {
        self.store[op as usize].observe(elapsed, ok);
    }

    /// Appends the app's metrics in the Prometheus text format (0.0.4).
    pub fn render_into(&self, out: &mut String, cache: &RedirectCache, clicks: &Clicks) {
        let c = &cache.counters;
        let load = |v: &AtomicU64| v.load(Ordering::Relaxed);
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
            );
        };
        counter(
            "shortener_cache_hits_total",
            "Redirects answered from the cache.",
            c.hits.get(),
        );
        counter(
            "shortener_cache_negative_hits_total",
            "Unknown slugs answered from the cache of misses.",
            c.negative_hits.get(),
        );
        counter(
            "shortener_cache_misses_total",
            "Lookups that went to the store.",
            c.misses.get(),
        );
        counter(
            "shortener_cache_stale_hits_total",
            "Redirects answered from an expired cache entry: while one visit reads the link again, or while the store cannot be read.",
            c.stale_hits.get(),
        );
        counter(
            "shortener_cache_evictions_total",
            "Links evicted to stay within bounds.",
            c.evictions.get(),
        );
        counter(
            "shortener_change_feed_changes_total",
            "Link changes heard through the store's change feed (each drops the slug from the cache).",
            load(&self.feed_changes),
        );
        counter(
            "shortener_change_feed_losses_total",
            "Times the store's change feed was lost (the cache is cleared when it is back).",
            load(&self.feed_losses),
        );
        let k = &clicks.counters;
        counter(
            "shortener_clicks_recorded_total",
            "Clicks counted in memory.",
            k.recorded.get(),
        );
        counter(
            "shortener_clicks_automated_total",
            "Visits of link previews and crawlers, counted apart from clicks.",
            k.automated.get(),
        );
        counter(
            "shortener_click_referrers_folded_total",
            "Clicks whose referrer host was past a per-link cap, counted as (other).",
            load(&k.referrers_folded),
        );
        counter(
            "shortener_clicks_flushed_total",
            "Clicks written to the store.",
            load(&k.flushed),
        );
        counter(
            "shortener_click_flushes_total",
            "Click batches written to the store.",
            load(&k.flushes),
        );
        counter(
            "shortener_click_flush_failures_total",
            "Click batches the store refused (kept for the next flush).",
            load(&k.failures),
        );
        counter(
            "shortener_clicks_dropped_total",
            "Clicks dropped after too many failed flushes.",
            load(&k.dropped),
        );
        let _ = write!(
            out,
            "# HELP shortener_click_flush_last_links Links in the last click batch written.\n\
             # TYPE shortener_click_flush_last_links gauge\n\
             shortener_click_flush_last_links {}\n\
             # HELP shortener_cache_links Links in the cache.\n\
             # TYPE shortener_cache_links gauge\n\
             shortener_cache_links {}\n\
             # HELP shortener_live_watchers Open live click streams.\n\
             # TYPE shortener_live_watchers gauge\n\
             shortener_live_watchers {}\n",
            load(&k.last_batch_links),
            cache.len(),
            clicks.live.watchers(),
        );
        let name = "shortener_store_call_duration_seconds";
        let _ = write!(
            out,
            "# HELP {name} Store call latency by operation.\n# TYPE {name} histogram\n"
        );
        for op in StoreOp::ALL {
            let h = &self.store[op as usize];
            let mut cumulative = 0;
            for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                cumulative += load(&h.buckets[i]);
                let _ = writeln!(
                    out,
                    "{name}_bucket{{op=\"{}\",le=\"{}\"}} {cumulative}",
                    op.name(),
                    bound.as_secs_f64()
                );
            }
            cumulative += load(&h.buckets[LATENCY_BUCKETS.len()]);
            let _ = writeln!(
                out,
                "{name}_bucket{{op=\"{}\",le=\"+Inf\"}} {cumulative}",
                op.name()
            );
            let _ = writeln!(
                out,
                "{name}_sum{{op=\"{}\"}} {}",
                op.name(),
                load(&h.sum_ns) as f64 / 1e9
            );
            let _ = writeln!(out, "{name}_count{{op=\"{}\"}} {cumulative}", op.name());
        }
        let errors = "shortener_store_call_errors_total";
        let _ = write!(
            out,
            "# HELP {errors} Store calls that failed, by operation.\n# TYPE {errors} counter\n"
        );
        for op in StoreOp::ALL {
            let _ = writeln!(
                out,
                "{errors}{{op=\"{}\"}} {}",
                op.name(),
                load(&self.store[op as usize].errors)
            );
        }
    }
}
