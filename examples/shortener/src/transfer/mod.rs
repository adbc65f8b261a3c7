//! CSV import and export, for moving links in from another shortener or
//! out to a backup.
//!
//! Export writes this shortener's own format ([`EXPORT_HEADER`]); import
//! reads it and the exports of other shorteners (YOURLS, Shlink, Kutt, and
//! most that name their columns `url`/`long_url` and `slug`/`short_code`),
//! matching column names without regard to case, spaces or underscores.
//!
//! The split: [`export`](export()) writes, [`import`](import()) reads,
//! `formats` holds what a cell may say (column names, times, password
//! hashes, the formula escape both sides share).

mod export;
mod formats;
mod import;

pub use export::{create_export_file, export, EXPORT_HEADER};
pub use import::{import, ImportReport, MAX_SKIPS_TOLD};

use crate::store::StoreError;

/// Why an import or export stopped.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The CSV could not be read or written.
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),
    /// The output could not be written.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The store failed as a whole; rows of earlier batches stay imported.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The header names no column for a required field.
    #[error("no {0} column in the CSV header")]
    MissingColumn(&'static str),
}

#[cfg(test)]
mod tests;
