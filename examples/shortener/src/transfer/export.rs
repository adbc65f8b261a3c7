//! `shortener export`: every link as CSV in this shortener's own format.

use super::formats::escape_cell;
use super::TransferError;
use crate::model;
use crate::store::{Store, StoreError};
use std::fs::File;
use std::io::Write;
use std::path::Path;

/// The columns [`export`] writes, in order.
pub const EXPORT_HEADER: [&str; 8] = [
    "slug",
    "url",
    "created_at",
    "expires_at",
    "disabled",
    "max_clicks",
    "clicks",
    "password_hash",
];

/// Writes every link, oldest first, as CSV with [`EXPORT_HEADER`]; times
/// are RFC 3339, an absent time, budget or password an empty field.
/// Returns the number of links written.
///
/// A password link's PHC hash goes in `password_hash`, so that it stays
/// protected when imported elsewhere (an export without it would turn it
/// into an open redirect). The file is therefore a secret: write it with
/// [`create_export_file`].
///
/// A cell that a spreadsheet would read as a formula (starting with `=`,
/// `+`, `-`, `@`, tab or CR, as a slug may start with `-`) is written
/// with a `'` in front; [`super::import`] removes it again.
///
/// Streams: one link in memory at a time.
///
/// # Errors
///
/// [`TransferError::Csv`] or [`TransferError::Io`] when `out` fails,
/// [`TransferError::Store`] when the store does.
pub fn export(store: &dyn Store, out: impl Write) -> Result<u64, TransferError> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(EXPORT_HEADER)?;
    let mut rows = 0;
    let mut write_error = None;
    let result = store.for_each(&mut |link| {
        let record = [
            link.slug.clone(),
            link.url.clone(),
            model::format_time(link.created_at),
            link.expires_at.map(model::format_time).unwrap_or_default(),
            link.disabled.to_string(),
            link.max_clicks.map(|n| n.to_string()).unwrap_or_default(),
            link.clicks.to_string(),
            link.password_hash.clone().unwrap_or_default(),
        ];
        let cells = record.each_ref().map(|cell| escape_cell(cell));
        match writer.write_record(cells.iter().map(|cell| cell.as_bytes())) {
            Ok(()) => {
                rows += 1;
                Ok(())
            }
            Err(e) => {
                write_error = Some(e);
                // Only stops the walk; the CSV error is returned below.
                Err(StoreError::Failed(String::from("export output failed")))
            }
        }
    });
    if let Some(e) = write_error {
        return Err(e.into());
    }
    result?;
    writer.flush()?;
    Ok(rows)
}

/// Creates (or empties) the export file at `path`, readable and writable
/// by its owner only (mode 0600): it holds password hashes. An existing
/// regular file is narrowed to 0600 too, before anything is written.
///
/// # Errors
///
/// When the file cannot be created or its mode set.
pub fn create_export_file(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        // The mode above applies to a new file only. A device or pipe
        // (`/dev/stdout`) is not ours to change.
        if file.metadata()?.is_file() {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}
