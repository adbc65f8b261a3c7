//! Password links: Argon2id hashes in the PHC string format, computed in a
//! lane of their own, and the guess limits that guard them.
//!
//! - [`argon`]: hashing and checking on memory each thread reuses.
//! - [`lane`]: the few threads every Argon2 operation runs on, refusing at
//!   once when full, so that guesses never take the store's blocking pool.
//! - [`per_link`]: how many wrong guesses a link takes before it makes
//!   every guesser wait (the per-client limit is keel's `RateLimit`).

pub mod argon;
pub mod lane;
pub mod per_link;

pub use lane::{Lane, LaneError, Verdict};
pub use per_link::LinkGuesses;

use crate::api::ApiError;
use keel::StatusCode;
use std::sync::OnceLock;

/// Shortest password a link may be given (in bytes); links stored with a
/// shorter one before this rule still open with it.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Lane threads when [`init`] was not called.
pub const DEFAULT_THREADS: usize = 2;

static LANE: OnceLock<Lane> = OnceLock::new();

/// Starts the process-wide lane with `threads` threads. Only the first
/// call (or first use) sets it up: returns whether this call did.
pub fn init(threads: usize) -> bool {
    let mut started = false;
    LANE.get_or_init(|| {
        started = true;
        Lane::new(threads)
    });
    started
}

/// The process-wide lane (started with [`DEFAULT_THREADS`] if [`init`]
/// was not called).
pub fn lane() -> &'static Lane {
    LANE.get_or_init(|| Lane::new(DEFAULT_THREADS))
}

/// The PHC string of `password` with a fresh random salt, hashed on the
/// [`lane`] while this thread (a blocking-pool thread) waits.
///
/// # Errors
///
/// `503 busy` when the lane has no room for a while; `500 internal` when
/// hashing fails (it does not for valid parameters).
pub fn hash(password: &str) -> Result<String, ApiError> {
    lane().hash(password).map_err(|error| match error {
        LaneError::Busy => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", error.to_string())
        }
        LaneError::Hash(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("hashing failed: {error}"),
        ),
    })
}
