//! The password lane: a few threads of its own that run every Argon2
//! operation, apart from the store's blocking pool.
//!
//! Each operation holds 19 MiB and a core for tens of milliseconds. On the
//! shared blocking pool, a burst of guesses took every thread (the API
//! answered `503` meanwhile) and every thread's 19 MiB. Here at most
//! `threads` operations run at once, each on the [`Memory`] its thread
//! keeps, and at most `threads` more wait:
//!
//! - a guess that finds the queue full is refused at once
//!   ([`Verdict::Busy`]), never queued behind store calls, never making
//!   them wait; one that waited past [`MAX_QUEUE_WAIT`] (its client has
//!   likely given up) is refused without being computed;
//! - hashing a new password (create, patch: authenticated writes) has its
//!   own queue, served first, and waits up to [`HASH_WAIT`] for room.

use super::argon::{self, HashError, Memory};
use crossbeam_channel::{bounded, select, Receiver, SendTimeoutError, Sender, TrySendError};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// Longest a guess waits in the queue before it is refused unchecked.
pub const MAX_QUEUE_WAIT: Duration = Duration::from_secs(2);
/// Longest a new password waits for room in the hash queue.
pub const HASH_WAIT: Duration = Duration::from_secs(2);

/// What a guess came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Match,
    Wrong,
    /// Not checked: the lane was full, or the guess waited too long.
    Busy,
}

/// Why a new password was not hashed.
#[derive(Debug, thiserror::Error)]
pub enum LaneError {
    #[error("password hashing is busy, try again")]
    Busy,
    #[error(transparent)]
    Hash(#[from] HashError),
}

type Then = Box<dyn FnOnce(Verdict) + Send>;

struct Guess {
    guess: String,
    hash: Box<str>,
    queued: Instant,
    then: Then,
}

struct NewPassword {
    password: String,
    reply: Sender<Result<String, HashError>>,
}

/// The lane; see the [module docs](self).
pub struct Lane {
    guesses: Sender<Guess>,
    hashes: Sender<NewPassword>,
    threads: usize,
}

impl Lane {
    /// A lane of `threads` threads (at least 1), each with a queue slot.
    pub fn new(threads: usize) -> Lane {
        let threads = threads.max(1);
        let (guesses, guess_queue) = bounded(threads);
        let (hashes, hash_queue) = bounded(threads);
        for n in 0..threads {
            let (guess_queue, hash_queue) = (guess_queue.clone(), hash_queue.clone());
            std::thread::Builder::new()
                .name(format!("password-{n}"))
                .spawn(move || work(&guess_queue, &hash_queue))
                .expect("a password thread starts");
        }
        Lane {
            guesses,
            hashes,
            threads,
        }
    }

    /// How many operations run at once at most.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Whether a guess now would be refused: a cheap look before work is
    /// spent on one (a race may still refuse it).
    pub fn is_full(&self) -> bool {
        self.guesses.is_full()
    }

    /// Checks `guess` against `hash` on a lane thread and calls `then`
    /// with the verdict there, or here at once with [`Verdict::Busy`] when
    /// the queue is full.
    pub fn verify(
        &self,
        guess: String,
        hash: Box<str>,
        then: impl FnOnce(Verdict) + Send + 'static,
    ) {
        let job = Guess {
            guess,
            hash,
            queued: Instant::now(),
            then: Box::new(then),
        };
        match self.guesses.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                (job.then)(Verdict::Busy);
            }
        }
    }

    /// [`verify`](Self::verify), waiting here for the verdict (from a
    /// blocking-pool thread, which holds no store connection meanwhile).
    pub fn verify_wait(&self, guess: String, hash: Box<str>) -> Verdict {
        let (reply, verdict) = bounded(1);
        self.verify(guess, hash, move |v| {
            let _ = reply.send(v);
        });
        verdict.recv().unwrap_or(Verdict::Busy)
    }

    /// The PHC string of `password`, hashed on a lane thread while this
    /// one waits.
    ///
    /// # Errors
    ///
    /// [`LaneError::Busy`] when the hash queue stayed full for
    /// [`HASH_WAIT`]; [`LaneError::Hash`] when hashing failed.
    pub fn hash(&self, password: &str) -> Result<String, LaneError> {
        let (reply, result) = bounded(1);
        let job = NewPassword {
            password: password.to_owned(),
            reply,
        };
        match self.hashes.send_timeout(job, HASH_WAIT) {
            Ok(()) => {}
            Err(SendTimeoutError::Timeout(_) | SendTimeoutError::Disconnected(_)) => {
                return Err(LaneError::Busy)
            }
        }
        match result.recv() {
            Ok(hashed) => Ok(hashed?),
            Err(_) => Err(LaneError::Busy),
        }
    }
}

/// One lane thread: new passwords first, then guesses, on its own memory.
fn work(guesses: &Receiver<Guess>, hashes: &Receiver<NewPassword>) {
    let mut memory = Memory::default();
    loop {
        let next = match hashes.try_recv() {
            Ok(job) => Ok(Job::Hash(job)),
            Err(_) => select! {
                recv(hashes) -> job => job.map(Job::Hash),
                recv(guesses) -> job => job.map(Job::Guess),
            },
        };
        let Ok(job) = next else {
            return; // The lane was dropped.
        };
        // A panic (in `then`, say) costs its job, not the thread.
        let _ = catch_unwind(AssertUnwindSafe(|| run(job, &mut memory)));
    }
}

enum Job {
    Guess(Guess),
    Hash(NewPassword),
}

fn run(job: Job, memory: &mut Memory) {
    match job {
        Job::Hash(job) => {
            let _ = job.reply.send(argon::hash(&job.password, memory));
        }
        Job::Guess(job) if job.queued.elapsed() > MAX_QUEUE_WAIT => (job.then)(Verdict::Busy),
        Job::Guess(job) => {
            let verdict = if argon::verify(&job.guess, &job.hash, memory) {
                Verdict::Match
            } else {
                Verdict::Wrong
            };
            (job.then)(verdict);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn guesses_past_the_queue_are_refused_at_once_and_hashes_still_run() {
        let lane = Lane::new(1);
        let hash: Box<str> = lane.hash("correct horse").unwrap().into();
        assert_eq!(
            lane.verify_wait("correct horse".into(), hash.clone()),
            Verdict::Match
        );
        assert_eq!(
            lane.verify_wait("wrong horse".into(), hash.clone()),
            Verdict::Wrong
        );

        // One running, one queued: the rest of a burst is refused here,
        // before `verify` returns.
        let busy = Arc::new(AtomicUsize::new(0));
        let (done, finished) = bounded(64);
        for _ in 0..20 {
            let (busy, done) = (Arc::clone(&busy), done.clone());
            lane.verify("guess".into(), hash.clone(), move |verdict| {
                if verdict == Verdict::Busy {
                    busy.fetch_add(1, Ordering::SeqCst);
                }
                let _ = done.send(verdict);
            });
        }
        assert!(busy.load(Ordering::SeqCst) >= 18, "{busy:?}");
        let checked = (0..20)
            .map(|_| finished.recv().unwrap())
            .filter(|v| *v != Verdict::Busy)
            .count();
        assert!((1..=2).contains(&checked), "{checked}");
        // Hashing has its own queue: a full guess queue does not stop it.
        assert!(lane.hash("another one").is_ok());
    }
}
