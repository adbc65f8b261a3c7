//! `shortener import`: links from this shortener's export or another's.

use super::formats::{self, parse_flag, parse_when, slug_of_short_url, unescape_cell};
use super::{TransferError, EXPORT_HEADER};
use crate::model::NewLink;
use crate::store::{Store, StoreError, MAX_BATCH, SLUG_ATTEMPTS};
use crate::validate::OwnAddress;
use crate::{slug, validate};
use std::io::Read;

/// Skipped rows an [`ImportReport`] tells about one by one; the rest are
/// only counted, so a file of any size keeps the report small.
pub const MAX_SKIPS_TOLD: usize = 1000;

/// What an [`import`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Links created.
    pub imported: u64,
    /// Rows left out: line number in the file where the row starts (the
    /// header is line 1) and why, in file order; the first
    /// [`MAX_SKIPS_TOLD`] of them.
    pub skipped: Vec<(u64, String)>,
    /// Rows left out in all.
    pub skipped_total: u64,
}

impl ImportReport {
    /// Counts a skipped row, and keeps why while there is room.
    fn skip(&mut self, line: u64, reason: String) {
        self.skipped_total += 1;
        if self.skipped.len() < MAX_SKIPS_TOLD {
            self.skipped.push((line, reason));
        }
    }
}

/// Reads links from CSV and creates them, in batches of [`MAX_BATCH`]
/// (one transaction each).
///
/// The header decides which column is which (see the module docs); only a
/// URL column is required. Per row:
///
/// - the URL is checked and normalized like the API's (`own` is this
///   shortener, refused as a target);
/// - the slug is kept, so old short links keep working; an empty or missing
///   one gets a generated slug. Imported rows are never merged with existing
///   links or with each other, even for the same URL: the file says what
///   links exist, and each row becomes one;
/// - `created_at` (RFC 3339, `YYYY-MM-DD HH:MM:SS` as UTC, or Unix seconds)
///   is kept, and `expires_at` too, even when past: an expired link stays
///   expired;
/// - `max_clicks` and `disabled` are kept; a click or visit count becomes
///   the link's total (there is no per-day breakdown to import);
/// - `password_hash` (this shortener's export) is kept when it is an
///   Argon2 PHC string no costlier to check than this shortener's own;
///   a row with any other hash is skipped, never imported unprotected;
/// - in this shortener's own format (the header is [`EXPORT_HEADER`]),
///   the `'` that export put before a cell a spreadsheet would read as a
///   formula is removed again.
///
/// A row that breaks a rule or whose slug is taken is skipped and reported
/// with its line number; the rest go in.
///
/// # Errors
///
/// [`TransferError::MissingColumn`] when there is no URL column (nothing is
/// imported), [`TransferError::Csv`] when the input cannot be read,
/// [`TransferError::Store`] when the store fails; batches already written
/// stay.
pub fn import(
    store: &dyn Store,
    input: impl Read,
    own: &OwnAddress,
) -> Result<ImportReport, TransferError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let columns = Columns::find(reader.headers()?)?;
    let mut report = ImportReport::default();
    let mut batch = Batch::default();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(0, csv::Position::line);
                match columns.row(&record, own, line) {
                    Ok((new, extra)) => batch.push(new, extra),
                    Err(reason) => report.skip(line, reason),
                }
            }
            // A row that is not UTF-8 is one bad row; the reader goes on.
            Err(e) if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => {
                let line = e.position().map_or(0, csv::Position::line);
                report.skip(line, String::from("row is not valid UTF-8"));
            }
            Err(e) => return Err(e.into()),
        }
        if batch.links.len() == MAX_BATCH {
            batch.flush(store, &mut report)?;
        }
    }
    batch.flush(store, &mut report)?;
    // Rows refused by the store are known after the ones refused here.
    report.skipped.sort_by_key(|(line, _)| *line);
    Ok(report)
}

/// Where each field is in a row.
struct Columns {
    url: usize,
    slug: Option<usize>,
    short_url: Option<usize>,
    created: Option<usize>,
    expires: Option<usize>,
    max_clicks: Option<usize>,
    disabled: Option<usize>,
    clicks: Option<usize>,
    password_hash: Option<usize>,
    /// This shortener's own export: its cells are escaped against
    /// formulas.
    escaped: bool,
}

/// What an imported row needs besides its [`NewLink`]: where it came from
/// and what `create_many` cannot set.
struct Extra {
    line: u64,
    generated_slug: bool,
}

impl Columns {
    fn find(header: &csv::StringRecord) -> Result<Columns, TransferError> {
        // `Long URL`, `long_url` and `longUrl` all become `longurl`; a
        // byte-order mark on the first name goes too.
        let names: Vec<String> = header
            .iter()
            .map(|name| {
                name.chars()
                    .filter(char::is_ascii_alphanumeric)
                    .map(|c| c.to_ascii_lowercase())
                    .collect()
            })
            .collect();
        let find = |aliases: &[&str]| {
            names
                .iter()
                .position(|name| aliases.contains(&name.as_str()))
        };
        Ok(Columns {
            url: find(formats::URL_NAMES).ok_or(TransferError::MissingColumn("url"))?,
            slug: find(formats::SLUG_NAMES),
            short_url: find(formats::SHORT_URL_NAMES),
            created: find(formats::CREATED_NAMES),
            expires: find(formats::EXPIRES_NAMES),
            max_clicks: find(formats::MAX_CLICKS_NAMES),
            disabled: find(formats::DISABLED_NAMES),
            clicks: find(formats::CLICKS_NAMES),
            password_hash: find(formats::PASSWORD_HASH_NAMES),
            escaped: header.iter().eq(EXPORT_HEADER),
        })
    }

    /// Parses and checks one record; `Err` is the reason to skip it.
    fn row(
        &self,
        record: &csv::StringRecord,
        own: &OwnAddress,
        line: u64,
    ) -> Result<(NewLink, Extra), String> {
        let field = |column: Option<usize>| {
            let cell = column.and_then(|i| record.get(i))?;
            let cell = if self.escaped {
                unescape_cell(cell)
            } else {
                cell
            };
            Some(cell).filter(|v| !v.is_empty())
        };
        let url = field(Some(self.url)).ok_or("url is empty")?;
        let url = validate::url(url, own).map_err(|e| e.to_string())?;
        let given = field(self.slug).or_else(|| field(self.short_url).map(slug_of_short_url));
        let (slug, generated_slug) = match given {
            Some(given) => {
                validate::slug(given).map_err(|e| format!("{e}: {given:?}"))?;
                (given.to_owned(), false)
            }
            None => (slug::generate(), true),
        };
        let time = |column, name| {
            field(column)
                .map(|v| parse_when(v).ok_or(format!("{name} is not a time: {v:?}")))
                .transpose()
        };
        let created_at = time(self.created, "created_at")?;
        let expires_at = time(self.expires, "expires_at")?;
        let max_clicks = match field(self.max_clicks) {
            None => None,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    return Err(format!(
                        "max_clicks must be a whole number of 1 or more: {v:?}"
                    ))
                }
            },
        };
        let disabled = field(self.disabled).map_or(Ok(false), parse_flag)?;
        let clicks = match field(self.clicks) {
            None => 0,
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| format!("clicks is not a count: {v:?}"))?,
        };
        let password_hash = field(self.password_hash)
            .map(formats::password_hash)
            .transpose()?;
        // Always a slug: an imported row is never answered with an existing
        // link (see `import`).
        let new = NewLink {
            url,
            slug: Some(slug),
            expires_at,
            max_clicks,
            password_hash,
            created_at,
            disabled,
            clicks,
        };
        Ok((
            new,
            Extra {
                line,
                generated_slug,
            },
        ))
    }
}

/// Rows waiting for the next `create_many`.
#[derive(Default)]
struct Batch {
    links: Vec<NewLink>,
    /// One per link, in the same order.
    extras: Vec<Extra>,
}

impl Batch {
    fn push(&mut self, new: NewLink, extra: Extra) {
        self.links.push(new);
        self.extras.push(extra);
    }

    /// Creates the batch in one transaction. A generated slug that happens
    /// to be taken is replaced and tried again.
    fn flush(&mut self, store: &dyn Store, report: &mut ImportReport) -> Result<(), TransferError> {
        let mut attempt: usize = 0;
        while !self.links.is_empty() {
            attempt += 1;
            let results = store.create_many(&self.links)?;
            let links = std::mem::take(&mut self.links);
            let extras = std::mem::take(&mut self.extras);
            for ((mut new, extra), result) in links.into_iter().zip(extras).zip(results) {
                match result {
                    Ok(_) => report.imported += 1,
                    Err(StoreError::SlugTaken)
                        if extra.generated_slug && attempt < SLUG_ATTEMPTS =>
                    {
                        new.slug = Some(slug::generate());
                        self.push(new, extra);
                    }
                    Err(StoreError::SlugTaken) => {
                        let slug = new.slug.unwrap_or_default();
                        report.skip(extra.line, format!("slug {slug:?} is already taken"));
                    }
                    Err(e) => report.skip(extra.line, e.to_string()),
                }
            }
        }
        Ok(())
    }
}
