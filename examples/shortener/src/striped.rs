//! A counter every worker adds to on every redirect, without making them
//! share a cache line, and the per-thread index that spreads threads over
//! striped state: one `AtomicU64` would be written by every core on
//! every cache hit, its line moving between them (the likeliest limit of
//! the redirect path at 64 cores; docs/benchmarks.md, "Scaling").

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Cells per counter: one per thread up to this many (a worker per core
/// on a 64-core machine), shared beyond.
const STRIPES: usize = 64;

/// One cell on its own pair of cache lines (x86's adjacent-line
/// prefetcher moves lines in pairs).
#[derive(Default)]
#[repr(align(128))]
struct Cell128(AtomicU64);

/// A sum of [`STRIPES`] cells: each thread adds to its own (chosen once,
/// the same for every counter), a reader adds them up. 8 KiB each.
pub struct StripedCounter {
    cells: Box<[Cell128]>,
}

impl Default for StripedCounter {
    fn default() -> Self {
        StripedCounter {
            cells: (0..STRIPES).map(|_| Cell128::default()).collect(),
        }
    }
}

impl std::fmt::Debug for StripedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StripedCounter").field(&self.get()).finish()
    }
}

/// The next index a thread takes, round robin.
static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's index; `usize::MAX` until first asked.
    static THREAD_INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's index, taken round robin the first time it asks and the
/// same ever after: what spreads threads over striped state (these
/// counters' cells, the click recorder's shards) so that each keeps to
/// its own part.
pub fn thread_index() -> usize {
    THREAD_INDEX.with(|index| {
        if index.get() == usize::MAX {
            index.set(NEXT_THREAD.fetch_add(1, Ordering::Relaxed));
        }
        index.get()
    })
}

fn my_stripe() -> usize {
    thread_index() % STRIPES
}

impl StripedCounter {
    /// Adds `n` to this thread's cell.
    pub fn add(&self, n: u64) {
        self.cells[my_stripe()].0.fetch_add(n, Ordering::Relaxed);
    }

    /// The sum of every cell: what was added before the call, give or take
    /// the adds racing with it.
    pub fn get(&self) -> u64 {
        self.cells
            .iter()
            .map(|cell| cell.0.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn adds_from_many_threads_sum_exactly() {
        let counter = Arc::new(StripedCounter::default());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || {
                    let first = my_stripe();
                    for _ in 0..10_000 {
                        counter.add(1);
                    }
                    assert_eq!(my_stripe(), first, "a thread keeps its cell");
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(counter.get(), 80_000);
    }

    #[test]
    fn no_two_cells_share_a_pair_of_cache_lines() {
        let counter = StripedCounter::default();
        let address = |i: usize| &counter.cells[i] as *const Cell128 as usize;
        for i in 1..STRIPES {
            assert!(address(i) - address(i - 1) >= 128);
            assert_eq!(address(i) % 128, 0);
        }
    }
}
