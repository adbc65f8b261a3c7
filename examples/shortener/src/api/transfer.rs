//! `POST /api/import` and `GET /api/export`: the CSV of
//! [`crate::transfer`] over HTTP, streamed both ways. An import reads the
//! upload as it arrives and stores it in batches, never holding the file;
//! an export writes rows as the store yields them, at the pace of the
//! client. Both need the `admin` key (an export holds every password
//! hash).

use super::{json_headers, ApiError};
use crate::app::State;
use crate::transfer::{self, TransferError};
use flate2::write::GzEncoder;
use keel::middleware::Compression;
use keel::{field, BodyStream, Request, Response, StatusCode};
use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The largest CSV an import takes (a million links is about 150 MB).
pub const MAX_IMPORT_BODY: usize = 1 << 30;
/// Skipped rows an import's answer lists one by one (all are counted).
const SKIPS_ANSWERED: usize = 100;
/// Imports at a time, and exports: each holds a blocking-pool thread for
/// as long as its client takes to send or read.
const IMPORTS_AT_ONCE: usize = 1;
const EXPORTS_AT_ONCE: usize = 2;

/// Counts the transfers in progress against their caps.
#[derive(Debug, Default)]
pub struct TransferSlots {
    imports: Arc<AtomicUsize>,
    exports: Arc<AtomicUsize>,
}

/// A transfer's place, given back when dropped: it moves into the job,
/// so a job the pool refused (dropped unrun) gives it back too.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn take(count: &Arc<AtomicUsize>, cap: usize) -> Option<Slot> {
    count
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < cap).then_some(n + 1)
        })
        .ok()
        .map(|_| Slot(Arc::clone(count)))
}

/// `POST /api/import`: the body is read on a blocking-pool thread as it
/// arrives; the answer says what was imported and what was skipped.
pub fn import(state: &Arc<State>, req: &Request<'_>, res: &mut Response<'_>) {
    let Some(slot) = take(&state.transfers.imports, IMPORTS_AT_ONCE) else {
        return ApiError::busy("an import is already running").write(res);
    };
    let body = res.body_reader();
    let state = Arc::clone(state);
    super::offload(req, res, move |res| {
        let _slot = slot;
        let report =
            transfer::import(&*state.store, body, &state.own_address).map_err(import_error)?;
        if report.imported > 0 {
            // A slug just imported may be cached as missing (for a few
            // seconds): forget what the cache knows.
            state.cache.clear();
        }
        let skips: Vec<_> = report
            .skipped
            .iter()
            .take(SKIPS_ANSWERED)
            .map(|(line, reason)| serde_json::json!({"line": line, "reason": reason}))
            .collect();
        json_headers(res);
        res.json(&serde_json::json!({
            "imported": report.imported,
            "skipped": report.skipped_total,
            "skips": skips,
        }));
        Ok(())
    });
}

/// What a failed import says.
fn import_error(error: TransferError) -> ApiError {
    let io_kind = match &error {
        TransferError::Io(e) => Some(e.kind()),
        TransferError::Csv(e) => match e.kind() {
            csv::ErrorKind::Io(e) => Some(e.kind()),
            _ => None,
        },
        _ => None,
    };
    match (error, io_kind) {
        (_, Some(io::ErrorKind::TimedOut)) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            "the upload stopped arriving",
        ),
        (_, Some(io::ErrorKind::InvalidData)) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the upload is over the import limit or badly framed",
        ),
        (_, Some(_)) => ApiError::bad_request("incomplete", "the upload ended early"),
        (TransferError::Store(e), None) => e.into(),
        (error, None) => ApiError::bad_request("bad_csv", error.to_string()),
    }
}

/// `GET /api/export`: every link as CSV, streamed from a blocking-pool
/// thread while the store yields rows, gzipped on the fly for a client that
/// accepts gzip (`Vary: Accept-Encoding` either way). A failure half-way
/// cuts the body short (no last chunk, and no gzip trailer: see
/// [`Cuttable`]), so the client never takes a partial file for a whole one.
pub fn export(state: &Arc<State>, req: &Request<'_>, res: &mut Response<'_>) {
    let Some(slot) = take(&state.transfers.exports, EXPORTS_AT_ONCE) else {
        return ApiError::busy("too many exports are running").write(res);
    };
    let gzip = Compression::accepts(req);
    let job_state = Arc::clone(state);
    super::offload_responder(res, move |responder: keel::Responder| {
        let _slot = slot;
        let Some(body) = responder.stream(|res| {
            res.field(field!("Content-Type", "text/csv; charset=utf-8"))
                .header("Content-Disposition", "attachment; filename=\"links.csv\"")
                .field(field!("Cache-Control", "no-store"))
                .field(field!("X-Content-Type-Options", "nosniff"))
                .field(field!("Vary", "Accept-Encoding"));
            if gzip {
                res.field(field!("Content-Encoding", "gzip"));
            }
        }) else {
            return; // the client is gone already
        };
        if let Err(error) = send_export(&*job_state.store, body, gzip) {
            eprintln!("shortener: export stopped: {error}");
        }
    });
}

/// Writes every link into `body`, gzipped or not, and ends it: with the
/// gzip trailer and the last chunk when the export is whole, with an abort
/// (neither) when it fails.
fn send_export(
    store: &dyn crate::store::Store,
    mut body: BodyStream,
    gzip: bool,
) -> Result<(), TransferError> {
    if !gzip {
        return match transfer::export(store, &mut body) {
            Ok(_) => {
                let _ = body.finish();
                Ok(())
            }
            Err(error) => {
                body.abort();
                Err(error)
            }
        };
    }
    // Level 1, the fastest: an export holds a blocking-pool thread for as
    // long as it runs, and higher levels buy little on URLs and hashes.
    let mut encoder = GzEncoder::new(Cuttable(Some(body)), flate2::Compression::fast());
    if let Err(error) = transfer::export(store, &mut encoder) {
        // Taken out before the encoder drops: its drop writes the gzip
        // trailer, and a cut export would then decode as a whole file.
        if let Some(body) = encoder.get_mut().0.take() {
            body.abort();
        }
        return Err(error);
    }
    // On an error here the body drops inside the encoder: dropped
    // unfinished, a `BodyStream` aborts.
    let mut done = encoder.finish()?;
    if let Some(body) = done.0.take() {
        let _ = body.finish();
    }
    Ok(())
}

/// The export's body under its gzip encoder, taken back out when the
/// export fails: writes after that fail, so the encoder cannot finish the
/// stream (its drop tries to).
struct Cuttable(Option<BodyStream>);

impl Write for Cuttable {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.0 {
            Some(body) => body.write(data),
            None => Err(io::Error::from(io::ErrorKind::BrokenPipe)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.0 {
            Some(body) => body.flush(),
            None => Err(io::Error::from(io::ErrorKind::BrokenPipe)),
        }
    }
}
