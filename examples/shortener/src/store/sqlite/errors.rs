//! SQLite errors as the failures the API answers with.

use crate::store::StoreError;
use rusqlite::ErrorCode;

/// Maps a SQLite error to the failure the API answers with.
pub(super) fn db_err(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(e.to_string())
        }
        Some(ErrorCode::ConstraintViolation) if e.to_string().contains("links.slug") => {
            StoreError::SlugTaken
        }
        _ => StoreError::Failed(e.to_string()),
    }
}
