//! A small pool of threads for blocking work (database calls, file I/O), so
//! that handlers never block their event loop.

use crate::Responder;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

/// One queued piece of work.
enum Job {
    /// Runs whatever happens.
    Plain(Box<dyn FnOnce() + Send + 'static>),
    /// Answers a deferred request: skipped when the request was abandoned.
    Answer(Responder, Box<dyn FnOnce(Responder) + Send + 'static>),
}

/// Threads the global pool starts with when [`init`] was not called.
pub const DEFAULT_THREADS: usize = 16;
/// Jobs that may wait in the global pool's queue; past it [`BlockingPool::spawn`] refuses.
pub const DEFAULT_QUEUE: usize = 16 * 1024;

/// A fixed set of threads running jobs from a bounded queue. A job that
/// panics is contained; its thread goes on.
///
/// A job that answers a deferred request ([`spawn_answer`](BlockingPool::spawn_answer),
/// [`Response::offload`](crate::Response::offload)) is skipped when its
/// request was [abandoned](crate::Responder#abandoned-deferrals) while it
/// waited (keel answered `503` at the deadline, or the client left): work
/// nobody will see is not done, and a backlog of such jobs drains at once.
#[derive(Debug)]
pub struct BlockingPool {
    jobs: Sender<Job>,
    threads: usize,
    skipped: Arc<AtomicU64>,
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
        let skipped = Arc::new(AtomicU64::new(0));
        for i in 0..threads {
            let waiting: Receiver<Job> = waiting.clone();
            let skipped = Arc::clone(&skipped);
            std::thread::Builder::new()
                .name(format!("keel-blocking-{i}"))
                .spawn(move || {
                    for job in waiting {
                        // A panic is the job's own business (a Responder it
                        // owned answers 500 while unwinding); the thread lives on.
                        let _ = catch_unwind(AssertUnwindSafe(|| match job {
                            Job::Plain(job) => job(),
                            // Dropping an abandoned responder sends nothing.
                            Job::Answer(responder, _) if responder.is_abandoned() => {
                                skipped.fetch_add(1, Relaxed);
                            }
                            Job::Answer(responder, job) => job(responder),
                        }));
                    }
                })
                .expect("start a blocking-pool thread");
        }
        BlockingPool {
            jobs,
            threads,
            skipped,
        }
    }

    /// Queues `job`; allocates its box.
    ///
    /// # Errors
    ///
    /// [`PoolFull`] when the queue holds its maximum already.
    pub fn spawn(&self, job: impl FnOnce() + Send + 'static) -> Result<(), PoolFull> {
        self.jobs
            .try_send(Job::Plain(Box::new(job)))
            .map_err(|_| PoolFull)
    }

    /// Queues `job` to answer a deferred request through `responder`; the
    /// pool skips it, without calling it, if the request is
    /// [abandoned](crate::Responder#abandoned-deferrals) by the time a
    /// thread takes it. Allocates the job's box.
    ///
    /// ```
    /// use keel::blocking::BlockingPool;
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let pool = Arc::new(BlockingPool::new(1, 8));
    /// let mut conn = MemoryConn::new(move |_: &Request<'_>, res: &mut Response<'_>| {
    ///     let responder = res.defer();
    ///     if let Err((_full, responder)) = pool.spawn_answer(responder, |responder| {
    ///         responder.respond(|res| res.body(b"done"));
    ///     }) {
    ///         responder.respond(|res| {
    ///             res.status(keel::StatusCode::SERVICE_UNAVAILABLE).body(b"busy");
    ///         });
    ///     }
    /// });
    /// conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    /// assert!(conn.settle(Duration::from_secs(5)));
    /// assert!(conn.recv().ends_with(b"\r\n\r\ndone"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`PoolFull`] when the queue holds its maximum already, with the
    /// responder given back to answer otherwise (a `503`).
    #[allow(clippy::result_large_err)] // the responder comes back to be used
    pub fn spawn_answer(
        &self,
        responder: Responder,
        job: impl FnOnce(Responder) + Send + 'static,
    ) -> Result<(), (PoolFull, Responder)> {
        match self.jobs.try_send(Job::Answer(responder, Box::new(job))) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => match job {
                Job::Answer(responder, _) => Err((PoolFull, responder)),
                Job::Plain(_) => unreachable!("an answer job came back as another kind"),
            },
        }
    }

    /// Jobs skipped so far because their request was abandoned before a
    /// thread took them.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Relaxed)
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
