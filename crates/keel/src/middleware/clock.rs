//! Where middleware reads the time: the real clocks, or a hand-driven one
//! for tests.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of time for [`RateLimit`](super::RateLimit) and
/// [`AccessLog`](super::AccessLog): [`SystemClock`] in production,
/// [`ManualClock`] in tests that must not sleep.
pub trait Clock: Send + Sync + 'static {
    /// Monotonic time since a fixed, arbitrary origin (never goes back).
    fn monotonic(&self) -> Duration;

    /// Wall-clock seconds since the Unix epoch (for log timestamps).
    fn unix_secs(&self) -> u64;
}

/// The real clocks: [`Instant`] for [`Clock::monotonic`], [`SystemTime`]
/// for [`Clock::unix_secs`].
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose monotonic origin is now.
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }

    fn unix_secs(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A clock that moves only when told to. Clones share the same time, so a
/// test keeps one and hands a clone to the middleware.
///
/// ```
/// use keel::middleware::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new(1_000_000_000);
/// let seen_by_middleware = clock.clone();
/// clock.advance(Duration::from_millis(1500));
/// assert_eq!(seen_by_middleware.monotonic(), Duration::from_millis(1500));
/// assert_eq!(seen_by_middleware.unix_secs(), 1_000_000_001);
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    /// Nanoseconds since the monotonic origin.
    nanos: Arc<AtomicU64>,
    /// Unix seconds at the monotonic origin.
    unix_origin: u64,
}

impl ManualClock {
    /// A clock at monotonic zero whose wall clock reads `unix_secs`.
    pub fn new(unix_secs: u64) -> Self {
        ManualClock {
            nanos: Arc::new(AtomicU64::new(0)),
            unix_origin: unix_secs,
        }
    }

    /// Moves both clocks forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(by, Relaxed);
    }
}

impl Clock for ManualClock {
    fn monotonic(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Relaxed))
    }

    fn unix_secs(&self) -> u64 {
        self.unix_origin + self.nanos.load(Relaxed) / 1_000_000_000
    }
}
