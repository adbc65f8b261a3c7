//! CSV import and export, for moving links in from another shortener or
//! out to a backup.
//!
//! Export writes this shortener's own format; import reads it and the
//! exports of other shorteners (YOURLS, Shlink, and most that name their
//! columns `url`/`long_url` and `slug`/`short_code`), matching column names
//! without regard to case, spaces or underscores.

use crate::model::{self, NewLink, UnixTime};
use crate::store::{Store, StoreError, MAX_BATCH, SLUG_ATTEMPTS};
use crate::{slug, validate};
use std::io::{Read, Write};

/// The columns [`export`] writes, in order.
pub const EXPORT_HEADER: [&str; 7] = [
    "slug",
    "url",
    "created_at",
    "expires_at",
    "disabled",
    "max_clicks",
    "clicks",
];

/// Import column names (lowercase, letters and digits only) for each field,
/// as this shortener and others spell them.
const URL_NAMES: &[&str] = &["url", "longurl", "originalurl", "target"];
const SLUG_NAMES: &[&str] = &["slug", "shortcode", "keyword", "code"];
/// A full short URL, whose last path segment is the slug: the fallback when
/// there is no slug column (Bitly-style exports).
const SHORT_URL_NAMES: &[&str] = &["shorturl", "shortlink"];
const CREATED_NAMES: &[&str] = &[
    "createdat",
    "created",
    "datecreated",
    "createddate",
    "timestamp",
];
const EXPIRES_NAMES: &[&str] = &["expiresat", "expires", "validuntil"];
const MAX_CLICKS_NAMES: &[&str] = &["maxclicks", "maxvisits"];
const DISABLED_NAMES: &[&str] = &["disabled"];
const CLICKS_NAMES: &[&str] = &["clicks", "visits", "visitscount"];

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

/// What an [`import`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Links created.
    pub imported: u64,
    /// Rows left out: line number in the file where the row starts (the
    /// header is line 1) and why, in file order.
    pub skipped: Vec<(u64, String)>,
}

/// Writes every link, oldest first, as CSV with [`EXPORT_HEADER`]; times
/// are RFC 3339, an absent time or budget an empty field. Returns the
/// number of links written.
///
/// Password hashes are not exported: a CSV file travels and is read by
/// people, and a hash from here means nothing to another shortener. Such
/// links come back without a password when imported.
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
        ];
        match writer.write_record(&record) {
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

/// Reads links from CSV and creates them, in batches of [`MAX_BATCH`]
/// (one transaction each).
///
/// The header decides which column is which (see the module docs); only a
/// URL column is required. Per row:
///
/// - the URL is checked and normalized like the API's (`own_host` is this
///   shortener's host, refused as a target);
/// - the slug is kept, so old short links keep working; an empty or missing
///   one gets a generated slug. Imported rows are never merged with existing
///   links or with each other, even for the same URL: the file says what
///   links exist, and each row becomes one;
/// - `created_at` (RFC 3339, `YYYY-MM-DD HH:MM:SS` as UTC, or Unix seconds)
///   is kept, and `expires_at` too, even when past: an expired link stays
///   expired;
/// - `max_clicks` and `disabled` are kept; a click or visit count becomes
///   the link's total (there is no per-day breakdown to import).
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
    own_host: &str,
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
                match columns.row(&record, own_host, line) {
                    Ok((new, extra)) => batch.push(new, extra),
                    Err(reason) => report.skipped.push((line, reason)),
                }
            }
            // A row that is not UTF-8 is one bad row; the reader goes on.
            Err(e) if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => {
                let line = e.position().map_or(0, csv::Position::line);
                report
                    .skipped
                    .push((line, String::from("row is not valid UTF-8")));
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
            url: find(URL_NAMES).ok_or(TransferError::MissingColumn("url"))?,
            slug: find(SLUG_NAMES),
            short_url: find(SHORT_URL_NAMES),
            created: find(CREATED_NAMES),
            expires: find(EXPIRES_NAMES),
            max_clicks: find(MAX_CLICKS_NAMES),
            disabled: find(DISABLED_NAMES),
            clicks: find(CLICKS_NAMES),
        })
    }

    /// Parses and checks one record; `Err` is the reason to skip it.
    fn row(
        &self,
        record: &csv::StringRecord,
        own_host: &str,
        line: u64,
    ) -> Result<(NewLink, Extra), String> {
        let field =
            |column: Option<usize>| column.and_then(|i| record.get(i)).filter(|v| !v.is_empty());
        let url = field(Some(self.url)).ok_or("url is empty")?;
        let url = validate::url(url, own_host).map_err(|e| e.to_string())?;
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
        // Always a slug: an imported row is never answered with an existing
        // link (see `import`).
        let new = NewLink {
            url,
            slug: Some(slug),
            expires_at,
            max_clicks,
            password_hash: None,
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

/// `https://sho.rt/abc?x#y` -> `abc`.
fn slug_of_short_url(short_url: &str) -> &str {
    let path = short_url.split(['?', '#']).next().unwrap_or_default();
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
}

/// RFC 3339, `YYYY-MM-DD HH:MM:SS` taken as UTC (YOURLS, MySQL dumps), or
/// Unix seconds.
fn parse_when(text: &str) -> Option<UnixTime> {
    if let Some(at) = model::parse_time(text) {
        return Some(at);
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let (date, time) = text.split_once(' ')?;
    model::parse_time(&format!("{date}T{time}Z"))
}

fn parse_flag(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" => Ok(true),
        "false" | "0" | "no" | "n" => Ok(false),
        _ => Err(format!("disabled must be true or false: {text:?}")),
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
                        report
                            .skipped
                            .push((extra.line, format!("slug {slug:?} is already taken")));
                    }
                    Err(e) => report.skipped.push((extra.line, e.to_string())),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Link, LinkClicks, LinkPatch};
    use crate::store::SqliteStore;

    const OWN: &str = "sho.rt";

    fn temp_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("s.db").to_str().unwrap()).unwrap();
        (dir, store)
    }

    fn all_links(store: &dyn Store) -> Vec<Link> {
        let mut links = Vec::new();
        store
            .for_each(&mut |link| {
                links.push(link.clone());
                Ok(())
            })
            .unwrap();
        links
    }

    fn import_str(store: &dyn Store, csv: &str) -> ImportReport {
        import(store, csv.as_bytes(), OWN).unwrap()
    }

    #[test]
    fn export_then_import_round_trips_everything_but_passwords() {
        let (_a, from) = temp_store();
        let plain = NewLink {
            url: "https://a.example/".into(),
            ..NewLink::default()
        };
        from.create(&plain).unwrap();
        let full = NewLink {
            url: "https://b.example/x?y=1,2".into(),
            slug: Some("full".into()),
            expires_at: Some(1_900_000_000),
            max_clicks: Some(10),
            password_hash: Some("$argon2id$secret".into()),
            created_at: Some(1_700_000_000),
            ..NewLink::default()
        };
        let id = from.create(&full).unwrap().link.id;
        from.update(
            "full",
            &LinkPatch {
                disabled: Some(true),
                ..LinkPatch::default()
            },
        )
        .unwrap();
        from.record_clicks(
            "b1",
            &[LinkClicks {
                link_id: id,
                total: 4,
                days: vec![(1, 4)],
                ..LinkClicks::default()
            }],
        )
        .unwrap();

        let mut csv = Vec::new();
        assert_eq!(export(&from, &mut csv).unwrap(), 2);
        let text = String::from_utf8(csv.clone()).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("slug,url,created_at,expires_at,disabled,max_clicks,clicks")
        );
        assert_eq!(
            lines.nth(1),
            Some("full,\"https://b.example/x?y=1,2\",2023-11-14T22:13:20Z,2030-03-17T17:46:40Z,true,10,4")
        );
        assert!(!text.contains("argon2"));

        let (_b, to) = temp_store();
        let report = import(&to, csv.as_slice(), OWN).unwrap();
        assert_eq!(
            report,
            ImportReport {
                imported: 2,
                skipped: vec![]
            }
        );
        let strip = |links: Vec<Link>| -> Vec<Link> {
            links
                .into_iter()
                .map(|l| Link {
                    id: 0,
                    password_hash: None,
                    ..l
                })
                .collect()
        };
        assert_eq!(strip(all_links(&to)), strip(all_links(&from)));
    }

    #[test]
    fn export_reports_a_failing_output() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let (_dir, store) = temp_store();
        store
            .create(&NewLink {
                url: "https://a.example/".into(),
                ..NewLink::default()
            })
            .unwrap();
        assert!(matches!(
            export(&store, Broken),
            Err(TransferError::Csv(_) | TransferError::Io(_))
        ));
    }

    #[test]
    fn imports_a_shlink_export() {
        let (_dir, store) = temp_store();
        let csv = "\u{feff}Short URL,Long URL,Title,Tags,Created,Short code,Visits\n\
            https://s.test/abc12,https://example.com/one,One,\"a,b\",2021-03-14T10:00:00+01:00,abc12,42\n\
            https://s.test/xyz98,https://example.com/two,Two,,2021-03-15T10:00:00+00:00,,0\n";
        assert_eq!(
            import_str(&store, csv),
            ImportReport {
                imported: 2,
                skipped: vec![]
            }
        );
        let one = store.get("abc12").unwrap().unwrap();
        assert_eq!(
            (one.url.as_str(), one.created_at, one.clicks),
            ("https://example.com/one", 1_615_712_400, 42)
        );
        // No short code: the slug comes from the short URL.
        assert_eq!(
            store.get("xyz98").unwrap().unwrap().url,
            "https://example.com/two"
        );
        assert_eq!(store.stats("abc12").unwrap().unwrap().total, 42);

        // The web client's camelCase export.
        let csv = "createdAt,domain,shortCode,shortUrl,longUrl,title,tags,visits\n\
            2022-01-01T00:00:00+00:00,s.test,camel,https://s.test/camel,https://example.com/3,,,7\n";
        assert_eq!(import_str(&store, csv).imported, 1);
        assert_eq!(store.get("camel").unwrap().unwrap().clicks, 7);
    }

    #[test]
    fn imports_a_yourls_export() {
        let (_dir, store) = temp_store();
        let csv = "keyword,url,title,timestamp,ip,clicks\n\
            ozh,http://ozh.org/,Ozh,2009-06-23 18:08:07,127.0.0.1,12\n\
            yourls,http://yourls.org/,YOURLS,2009-06-23 18:08:07,127.0.0.1,3\n";
        assert_eq!(
            import_str(&store, csv),
            ImportReport {
                imported: 2,
                skipped: vec![]
            }
        );
        let ozh = store.get("ozh").unwrap().unwrap();
        assert_eq!(
            (ozh.url.as_str(), ozh.created_at, ozh.clicks),
            ("http://ozh.org/", 1_245_780_487, 12)
        );
    }

    #[test]
    fn bad_rows_are_skipped_with_their_line_numbers() {
        let (_dir, store) = temp_store();
        store
            .create(&NewLink {
                url: "https://x.example/".into(),
                slug: Some("taken".into()),
                ..NewLink::default()
            })
            .unwrap();
        let mut csv = b"url,slug,created_at,max_clicks,disabled,title\n\
            https://ok.example/,good,,,,\n\
            ftp://nope.example/,ftp1,,,,\n\
            https://ok.example/,api,,,,\n\
            https://ok.example/,taken,,,,\n\
            https://ok.example/,good,,,,\n\
            https://ok.example/,when,yesterday,,,\"two\nlines\"\n\
            https://sho.rt/self,self,,,,\n\
            https://ok.example/,zero,,0,,\n\
            https://ok.example/,flag,,,maybe,\n\
            ,empty,,,,\n"
            .to_vec();
        csv.extend_from_slice(
            b"https://ok.example/,bad\xff,,,,\nhttps://ok.example/,last,,,yes,\n",
        );
        let report = import(&store, csv.as_slice(), OWN).unwrap();
        assert_eq!(report.imported, 2, "{report:?}");
        let lines: Vec<u64> = report.skipped.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7, 9, 10, 11, 12, 13], "{report:?}");
        let reason = |line| &report.skipped.iter().find(|(l, _)| *l == line).unwrap().1;
        assert!(reason(3).contains("http"), "{}", reason(3));
        assert!(reason(4).contains("reserved"));
        assert!(reason(5).contains("taken"));
        assert!(reason(6).contains("taken"));
        assert!(reason(7).contains("created_at"));
        assert!(reason(9).contains("this shortener"));
        assert!(reason(12).contains("url"));
        assert!(store.get("last").unwrap().unwrap().disabled);
    }

    #[test]
    fn rows_without_slugs_get_fresh_links_never_merged() {
        let (_dir, store) = temp_store();
        let existing = store
            .create(&NewLink {
                url: "https://a.example/".into(),
                ..NewLink::default()
            })
            .unwrap();
        let report = import_str(&store, "Long URL\nhttps://a.example/\nhttps://a.example/\n");
        assert_eq!(report.imported, 2);
        let links = all_links(&store);
        assert_eq!(links.len(), 3);
        assert!(links
            .iter()
            .skip(1)
            .all(|l| l.id != existing.link.id && l.url == "https://a.example/"));
    }

    #[test]
    fn a_missing_url_column_is_fatal_and_imports_nothing() {
        let (_dir, store) = temp_store();
        let result = import(&store, "slug,title\nabc,x\n".as_bytes(), OWN);
        assert!(matches!(result, Err(TransferError::MissingColumn("url"))));
        assert!(all_links(&store).is_empty());
    }

    #[test]
    fn large_imports_go_in_batches() {
        let (_dir, store) = temp_store();
        let mut csv = String::from("url,code\n");
        for n in 0..(MAX_BATCH * 2 + 5) {
            csv.push_str(&format!("https://a.example/{n},s{n:05}\n"));
        }
        let report = import_str(&store, &csv);
        assert_eq!(
            (report.imported, report.skipped.len()),
            ((MAX_BATCH * 2 + 5) as u64, 0)
        );
        assert_eq!(
            store.get("s02004").unwrap().unwrap().url,
            "https://a.example/2004"
        );
    }

    #[test]
    fn times_parse_in_the_formats_other_shorteners_write() {
        assert_eq!(parse_when("2021-03-14T10:00:00Z"), Some(1_615_716_000));
        assert_eq!(parse_when("2021-03-14 10:00:00"), Some(1_615_716_000));
        assert_eq!(parse_when("1615716000"), Some(1_615_716_000));
        assert_eq!(parse_when("14/03/2021"), None);
        assert_eq!(slug_of_short_url("https://s.test/abc/?x=1#f"), "abc");
    }
}
