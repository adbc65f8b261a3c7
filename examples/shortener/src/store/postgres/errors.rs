//! Mapping PostgreSQL errors to [`StoreError`].

use crate::store::StoreError;
use postgres::error::SqlState;

/// Maps a PostgreSQL error to the failure the API answers with: whatever a
/// retry may cure (the connection, a timeout, a conflict with another
/// transaction, a server shutting down or failing over) is `Unavailable`.
pub(super) fn db_err(e: postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        if *db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some("links_slug_key") {
            return StoreError::SlugTaken;
        }
        let message = format!("{} ({})", db.message(), db.code().code());
        return if retryable(db.code()) {
            StoreError::Unavailable(message)
        } else {
            StoreError::Failed(message)
        };
    }
    let message = e.to_string();
    if e.is_closed() || has_io_cause(&e) || message.contains("timeout") {
        StoreError::Unavailable(message)
    } else {
        StoreError::Failed(message)
    }
}

/// SQLSTATEs worth a retry.
fn retryable(code: &SqlState) -> bool {
    let code = code.code();
    code.starts_with("08") // connection exception
        || matches!(
            code,
            "40001" // serialization_failure
                | "40P01" // deadlock_detected
                | "40003" // statement_completion_unknown
                | "25006" // read_only_sql_transaction: a standby after a failover
                | "25P03" // idle_in_transaction_session_timeout
                | "53200" // out_of_memory
                | "53300" // too_many_connections
                | "55P03" // lock_not_available
                | "57014" // query_canceled: statement_timeout
                | "57P01" // admin_shutdown
                | "57P02" // crash_shutdown
                | "57P03" // cannot_connect_now
                | "57P05" // idle_session_timeout
        )
}

fn has_io_cause(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = e.source();
    while let Some(c) = cause {
        if c.is::<std::io::Error>() {
            return true;
        }
        cause = c.source();
    }
    false
}
