//! The worker's budget of request body bytes in flight
//! ([`Config::max_body_in_flight`](crate::Config::max_body_in_flight)).

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// Body bytes held by one worker's requests still arriving, against a cap.
/// Owned by the worker; each reservation gives its bytes back when dropped
/// (its request answered, refused, or its connection gone), so no exit path
/// can leak budget. One thread touches it; the `Arc` keeps connections `Send`.
#[derive(Clone, Debug)]
pub(crate) struct BodyBudget {
    used: Arc<AtomicUsize>,
    cap: usize,
}

impl BodyBudget {
    pub(crate) fn new(cap: usize) -> Self {
        BodyBudget {
            used: Arc::new(AtomicUsize::new(0)),
            cap,
        }
    }

    /// Takes `bytes` from the budget; `None` when that would pass the cap.
    pub(crate) fn reserve(&self, bytes: usize) -> Option<Reservation> {
        let mut reservation = Reservation {
            budget: self.clone(),
            bytes: 0,
        };
        reservation.grow_to(bytes).then_some(reservation)
    }

    /// Bytes reserved now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Relaxed)
    }
}

/// Bytes taken from a [`BodyBudget`], given back on drop.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: BodyBudget,
    bytes: usize,
}

impl Reservation {
    /// Grows the reservation to `total` bytes (never shrinks it); `false`,
    /// and no change, when that would pass the cap.
    pub(crate) fn grow_to(&mut self, total: usize) -> bool {
        let more = total.saturating_sub(self.bytes);
        if more == 0 {
            return true;
        }
        let used = self.budget.used.load(Relaxed);
        if used.saturating_add(more) > self.budget.cap {
            return false;
        }
        self.budget.used.store(used + more, Relaxed);
        self.bytes = total;
        true
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_stop_at_the_cap_and_give_back_on_drop() {
        let budget = BodyBudget::new(100);
        let a = budget.reserve(60).expect("fits");
        assert!(budget.reserve(41).is_none());
        let mut b = budget.reserve(10).expect("fits");
        assert!(b.grow_to(40) && !b.grow_to(41));
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 40);
        drop(b);
        assert_eq!(budget.used(), 0);
    }
}
