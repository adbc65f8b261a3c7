//! A small pool of threads for blocking work (database calls, file I/O), so
//! that handlers never block their event loop.

use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Threads the global pool starts with when [`init`] was not called.
pub const DEFAULT_THREADS: usize = 16;
/// Jobs that may wait in the global pool's queue; past it [`BlockingPool::spawn`] refuses.
pub const DEFAULT_QUEUE: usize = 16 * 1024;

/// A fixed set of threads running jobs from a bounded queue. A job that
/// panics is contained; its thread goes on.
#[derive(Debug)]
pub struct BlockingPool {
    jobs: Sender<Job>,
    threads: usize,
}

/// The pool is full: the job was not queued (answer `503` rather than wait).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolFull;

impl std::fmt::Display for PoolFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the blocking pool's queue is full")
    }
}

impl std::error::Error for PoolFull {}

impl BlockingPool {
    /// Starts `threads` threads (at least one) sharing a queue of at most
    /// `queue` waiting jobs.
    ///
    /// # Panics
    ///
    /// When the OS refuses to start a thread.
    pub fn new(threads: usize, queue: usize) -> BlockingPool {
        let threads = threads.max(1);
        let (jobs, waiting) = crossbeam_channel::bounded::<Job>(queue.max(1));
        for i in 0..threads {
            let waiting: Receiver<Job> = waiting.clone();
            std::thread::Builder::new()
                .name(format!("keel-blocking-{i}"))
                .spawn(move || {
                    for job in waiting {
                        // A panic is the job's own business (a Responder it
                        // owned answers 500 while unwinding); the thread lives on.
                        let _ = catch_unwind(AssertUnwindSafe(job));
                    }
                })
                .expect("start a blocking-pool thread");
        }
        BlockingPool { jobs, threads }
    }

    /// Queues `job`; allocates its box.
    ///
    /// # Errors
    ///
    /// [`PoolFull`] when the queue holds its maximum already.
    pub fn spawn(&self, job: impl FnOnce() + Send + 'static) -> Result<(), PoolFull> {
        match self.jobs.try_send(Box::new(job)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(PoolFull),
        }
    }

    /// How many threads run jobs.
    pub fn threads(&self) -> usize {
        self.threads
    }
}

static GLOBAL: OnceLock<BlockingPool> = OnceLock::new();

/// Sizes the global pool before its first use; returns `false` (and changes
/// nothing) if it is already running.
pub fn init(threads: usize, queue: usize) -> bool {
    let mut started = false;
    GLOBAL.get_or_init(|| {
        started = true;
        BlockingPool::new(threads, queue)
    });
    started
}

/// The process-wide pool behind [`crate::Response::offload`]; started with
/// [`DEFAULT_THREADS`] threads on first use unless [`init`] came first.
pub fn global() -> &'static BlockingPool {
    GLOBAL.get_or_init(|| BlockingPool::new(DEFAULT_THREADS, DEFAULT_QUEUE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn runs_jobs_and_survives_panics() {
        let pool = BlockingPool::new(1, 8);
        pool.spawn(|| panic!("contained")).unwrap();
        let (tx, rx) = crossbeam_channel::bounded(1);
        pool.spawn(move || tx.send(7).unwrap()).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(7));
    }

    #[test]
    fn a_full_queue_refuses() {
        let pool = BlockingPool::new(1, 1);
        let (hold_tx, hold_rx) = crossbeam_channel::bounded::<()>(0);
        let (started_tx, started_rx) = crossbeam_channel::bounded(1);
        pool.spawn(move || {
            started_tx.send(()).unwrap();
            let _ = hold_rx.recv();
        })
        .unwrap();
        started_rx.recv().unwrap();
        pool.spawn(|| {}).unwrap(); // waits in the queue
        assert_eq!(pool.spawn(|| {}), Err(PoolFull));
        drop(hold_tx);
    }
}
