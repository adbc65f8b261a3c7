//! The per-link guess limit: a link takes a few wrong guesses, then each
//! further guess waits twice as long as the one before, whoever sends it.
//!
//! The per-client limit alone does not stop guessing from many addresses
//! (a botnet, a /64 is one client but there are many /64s); this one counts
//! against the link. Its cost: while a link backs off, its owner's visitors
//! wait too, which is why the free guesses and the longest wait are bounded.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The wait after the first guess past the free ones; it doubles with
/// every further guess.
pub const FIRST_WAIT: Duration = Duration::from_secs(1);
/// The longest wait between two guesses at one link.
pub const LONGEST_WAIT: Duration = Duration::from_secs(600);
/// A link with no wrong guess for this long starts afresh.
pub const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Most links tracked; past it the one guessed at longest ago is forgotten.
pub const MAX_LINKS: usize = 10_000;

/// Wrong guesses per link; see the [module docs](self).
pub struct LinkGuesses {
    free: u32,
    capacity: usize,
    links: Mutex<HashMap<Box<str>, Tally>>,
}

#[derive(Clone, Copy, Debug)]
struct Tally {
    /// Guesses counted (a guess counts when it starts; one that turns out
    /// right, or is never checked, is given back).
    wrong: u32,
    last: Instant,
    /// No guess before this.
    until: Instant,
}

impl LinkGuesses {
    /// `free` guesses per link before the waits begin (at least 1), at
    /// most [`MAX_LINKS`] links tracked.
    pub fn new(free: u32) -> LinkGuesses {
        LinkGuesses::with_capacity(free, MAX_LINKS)
    }

    fn with_capacity(free: u32, capacity: usize) -> LinkGuesses {
        LinkGuesses {
            free: free.max(1),
            capacity: capacity.max(1),
            links: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a guess at `slug` before it is checked (so that guesses in
    /// flight at once are counted too).
    ///
    /// # Errors
    ///
    /// How long until the link takes another guess, when it is waiting.
    pub fn charge(&self, slug: &str, now: Instant) -> Result<(), Duration> {
        let mut links = self.links.lock();
        if let Some(tally) = links.get_mut(slug) {
            // Callers read the clock before the lock: a guess that read it
            // just before another one took the lock would otherwise see
            // that one's `until` in its future and be refused while
            // guesses are still free.
            let now = now.max(tally.last);
            if now.saturating_duration_since(tally.last) >= FORGET_AFTER {
                *tally = Tally::fresh(now);
            }
            if now < tally.until {
                return Err(tally.until - now);
            }
            tally.wrong = tally.wrong.saturating_add(1);
            tally.last = now;
            tally.until = now + self.wait_after(tally.wrong);
            return Ok(());
        }
        if links.len() >= self.capacity {
            evict(&mut links, now);
        }
        let mut tally = Tally::fresh(now);
        tally.wrong = 1;
        tally.until = now + self.wait_after(1);
        links.insert(slug.into(), tally);
        Ok(())
    }

    /// Gives back a guess [charged](Self::charge) that was not wrong: it
    /// was right, or it was never checked.
    pub fn refund(&self, slug: &str) {
        let mut links = self.links.lock();
        if let Some(tally) = links.get_mut(slug) {
            tally.wrong = tally.wrong.saturating_sub(1);
            tally.until = tally.last + self.wait_after(tally.wrong);
        }
    }

    /// The wait before the next guess after `wrong` counted guesses.
    fn wait_after(&self, wrong: u32) -> Duration {
        match wrong.checked_sub(self.free) {
            None => Duration::ZERO,
            Some(past) => FIRST_WAIT
                .saturating_mul(1 << past.min(16))
                .min(LONGEST_WAIT),
        }
    }

    /// How many links are tracked now.
    pub fn links(&self) -> usize {
        self.links.lock().len()
    }
}

impl Tally {
    fn fresh(now: Instant) -> Tally {
        Tally {
            wrong: 0,
            last: now,
            until: now,
        }
    }
}

/// Makes room: forgets links past [`FORGET_AFTER`], or else the one guessed
/// at longest ago.
fn evict(links: &mut HashMap<Box<str>, Tally>, now: Instant) {
    let before = links.len();
    links.retain(|_, tally| now.saturating_duration_since(tally.last) < FORGET_AFTER);
    if links.len() < before {
        return;
    }
    let oldest = links
        .iter()
        .min_by_key(|(_, tally)| tally.last)
        .map(|(slug, _)| slug.clone());
    if let Some(slug) = oldest {
        links.remove(&slug);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_guesses_then_doubling_waits_then_forgotten() {
        let guesses = LinkGuesses::new(3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(guesses.charge("s", t0), Ok(()));
        }
        assert_eq!(guesses.charge("s", t0), Err(FIRST_WAIT));
        // Another link is not held up.
        assert_eq!(guesses.charge("other", t0), Ok(()));
        let t1 = t0 + FIRST_WAIT;
        assert_eq!(guesses.charge("s", t1), Ok(()));
        assert_eq!(guesses.charge("s", t1), Err(FIRST_WAIT * 2));
        let t2 = t1 + FIRST_WAIT * 2;
        assert_eq!(guesses.charge("s", t2), Ok(()));
        assert_eq!(guesses.charge("s", t2), Err(FIRST_WAIT * 4));
        // The waits stop growing at the longest.
        let mut now = t2;
        for _ in 0..30 {
            now += LONGEST_WAIT;
            assert_eq!(guesses.charge("s", now), Ok(()));
        }
        assert_eq!(guesses.charge("s", now), Err(LONGEST_WAIT));
        // An hour without a guess: free guesses again.
        let later = now + FORGET_AFTER;
        for _ in 0..3 {
            assert_eq!(guesses.charge("s", later), Ok(()));
        }
        assert!(guesses.charge("s", later).is_err());
    }

    #[test]
    fn a_guess_that_read_the_clock_first_but_locked_second_is_still_free() {
        let guesses = LinkGuesses::new(3);
        let early = Instant::now();
        let late = early + Duration::from_micros(5);
        assert_eq!(guesses.charge("s", late), Ok(()));
        assert_eq!(guesses.charge("s", early), Ok(()));
        assert_eq!(guesses.charge("s", early), Ok(()));
        // Past the free ones, an early clock still waits the whole wait.
        assert_eq!(guesses.charge("s", early), Err(FIRST_WAIT));
    }

    #[test]
    fn right_or_unchecked_guesses_are_given_back() {
        let guesses = LinkGuesses::new(2);
        let now = Instant::now();
        assert_eq!(guesses.charge("s", now), Ok(()));
        assert_eq!(guesses.charge("s", now), Ok(()));
        assert!(guesses.charge("s", now).is_err());
        guesses.refund("s");
        assert_eq!(guesses.charge("s", now), Ok(()));
        assert!(guesses.charge("s", now).is_err());
    }

    #[test]
    fn the_table_stays_bounded() {
        let guesses = LinkGuesses::with_capacity(5, 100);
        let t0 = Instant::now();
        for i in 0..1000u32 {
            let now = t0 + Duration::from_millis(u64::from(i));
            assert_eq!(guesses.charge(&format!("link-{i}"), now), Ok(()));
        }
        assert_eq!(guesses.links(), 100);
        // The newest are the ones kept.
        let late = t0 + Duration::from_millis(999);
        for _ in 0..4 {
            assert_eq!(guesses.charge("link-999", late), Ok(()));
        }
        assert!(guesses.charge("link-999", late).is_err());
    }
}
