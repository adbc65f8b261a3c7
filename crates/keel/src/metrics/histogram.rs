//! The per-worker request-latency histogram: fixed buckets, written by its
//! worker alone (plain loads and stores, no locked instruction, no
//! allocation), read from any thread.

use crate::server::stats::Counter;
use std::time::Duration;

/// Upper bounds of the request-latency histogram's buckets, in increasing
/// order; a last bucket, `+Inf`, takes everything above the last bound.
///
/// From 50 µs to 10 s, three steps a decade (1, 2.5, 5, as Prometheus'
/// default buckets): fine enough to see a handler that blocks, coarse enough
/// that observing a latency is a few compares and two stores.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(keel::LATENCY_BUCKETS[0], Duration::from_micros(50));
/// assert_eq!(keel::LATENCY_BUCKETS.last(), Some(&Duration::from_secs(10)));
/// assert!(keel::LATENCY_BUCKETS.windows(2).all(|w| w[0] < w[1]));
/// ```
pub const LATENCY_BUCKETS: [Duration; 17] = [
    Duration::from_micros(50),
    Duration::from_micros(100),
    Duration::from_micros(250),
    Duration::from_micros(500),
    Duration::from_millis(1),
    Duration::from_micros(2500),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_millis(2500),
    Duration::from_secs(5),
    Duration::from_secs(10),
];

/// The bounds in nanoseconds, for the hot path's compares.
const BOUNDS_NS: [u64; LATENCY_BUCKETS.len()] = {
    let mut ns = [0; LATENCY_BUCKETS.len()];
    let mut i = 0;
    while i < ns.len() {
        ns[i] = LATENCY_BUCKETS[i].as_nanos() as u64;
        i += 1;
    }
    ns
};

/// One worker's latency histogram. Each bucket counts the observations that
/// fell in it alone (not cumulative): an observation is one store to its
/// bucket and one to the sum. Readers make the counts cumulative, and take
/// the count as the sum of the buckets, so a scrape's `+Inf` bucket always
/// equals its `_count` even while the worker writes.
#[derive(Default, Debug)]
pub(crate) struct Histogram {
    /// `buckets[i]`: observations `<= LATENCY_BUCKETS[i]` and above the
    /// bound before; the last one: above every bound.
    buckets: [Counter; LATENCY_BUCKETS.len() + 1],
    sum_ns: Counter,
}

impl Histogram {
    /// Records one latency. Only the owning worker may call it.
    #[inline]
    pub(crate) fn observe(&self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        // Most requests land in the first buckets: a forward scan stops early.
        let i = BOUNDS_NS
            .iter()
            .position(|&bound| ns <= bound)
            .unwrap_or(BOUNDS_NS.len());
        self.buckets[i].add(1);
        self.sum_ns.add(ns);
    }

    /// The counts so far.
    pub(crate) fn snapshot(&self) -> LatencySnapshot {
        LatencySnapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].get()),
            sum_ns: self.sum_ns.get(),
        }
    }
}

/// A histogram read at one moment (per bucket, not cumulative).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LatencySnapshot {
    pub(crate) buckets: [u64; LATENCY_BUCKETS.len() + 1],
    pub(crate) sum_ns: u64,
}

impl LatencySnapshot {
    /// Observations in all buckets.
    pub(crate) fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Observations `<= LATENCY_BUCKETS[i]` (for `i == LATENCY_BUCKETS.len()`:
    /// all of them), cumulative as Prometheus wants them.
    pub(crate) fn cumulative(&self) -> [u64; LATENCY_BUCKETS.len() + 1] {
        let mut total = 0;
        std::array::from_fn(|i| {
            total += self.buckets[i];
            total
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(latency: Duration) -> LatencySnapshot {
        let h = Histogram::default();
        h.observe(latency);
        h.snapshot()
    }

    fn bucket_of(latency: Duration) -> usize {
        let s = one(latency);
        assert_eq!(s.count(), 1);
        s.buckets.iter().position(|&n| n == 1).unwrap()
    }

    #[test]
    fn a_bound_belongs_to_its_own_bucket_and_one_nanosecond_more_to_the_next() {
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            assert_eq!(bucket_of(*bound), i, "{bound:?}");
            let above = *bound + Duration::from_nanos(1);
            assert_eq!(bucket_of(above), i + 1, "{above:?}");
        }
        assert_eq!(bucket_of(Duration::ZERO), 0);
        assert_eq!(bucket_of(Duration::from_secs(3600)), LATENCY_BUCKETS.len());
        assert_eq!(bucket_of(Duration::MAX), LATENCY_BUCKETS.len());
    }

    #[test]
    fn sum_and_count_add_up() {
        let h = Histogram::default();
        let seen = [
            Duration::from_micros(10),
            Duration::from_micros(70),
            Duration::from_micros(70),
            Duration::from_millis(3),
            Duration::from_secs(11),
        ];
        seen.iter().for_each(|&d| h.observe(d));
        let s = h.snapshot();
        assert_eq!(s.count(), 5);
        assert_eq!(
            s.sum_ns,
            seen.iter().map(|d| d.as_nanos() as u64).sum::<u64>()
        );
        let cumulative = s.cumulative();
        assert_eq!(cumulative[0], 1); // <= 50 µs
        assert_eq!(cumulative[1], 3); // <= 100 µs
        assert_eq!(cumulative[5], 3); // <= 2.5 ms
        assert_eq!(cumulative[6], 4); // <= 5 ms
        assert_eq!(cumulative[16], 4); // <= 10 s
        assert_eq!(cumulative[17], 5); // +Inf
        assert!(cumulative.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn readable_from_another_thread() {
        let h = std::sync::Arc::new(Histogram::default());
        h.observe(Duration::from_micros(200));
        let reader = std::sync::Arc::clone(&h);
        let s = std::thread::spawn(move || reader.snapshot())
            .join()
            .unwrap();
        assert_eq!(s.count(), 1);
        assert_eq!(s.buckets[2], 1);
    }
}
