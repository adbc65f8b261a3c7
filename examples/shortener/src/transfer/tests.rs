//! Import and export against a real SQLite store.

use super::formats::{escape_cell, parse_when, slug_of_short_url, unescape_cell};
use super::*;
use crate::model::{Link, LinkClicks, LinkPatch, NewLink};
use crate::store::{SqliteStore, Store, MAX_BATCH};
use crate::validate::OwnAddress;
use std::io::Write;

fn own() -> OwnAddress {
    OwnAddress::new("https://sho.rt", None)
}

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
    import(store, csv.as_bytes(), &own()).unwrap()
}

/// A well-formed Argon2id PHC string with this shortener's parameters
/// (only parsed here; tests/transfer_cli.rs checks a real password).
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$\
    Jdk7SG0ahqQ8Om3yGKa/8PqcaNDWkbvr0HmI4t3yEnk";

#[test]
fn export_then_import_round_trips_everything() {
    let (_a, from) = temp_store();
    let plain = NewLink {
        url: "https://a.example/".into(),
        ..NewLink::default()
    };
    from.create(&plain).unwrap();
    // A slug may start with `-`, which a spreadsheet reads as a formula.
    let dash = NewLink {
        url: "https://c.example/".into(),
        slug: Some("-abc".into()),
        ..NewLink::default()
    };
    let full = NewLink {
        url: "https://b.example/x?y=1,2".into(),
        slug: Some("full".into()),
        expires_at: Some(1_900_000_000),
        max_clicks: Some(10),
        password_hash: Some(HASH.into()),
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
    from.create(&dash).unwrap();

    let mut csv = Vec::new();
    assert_eq!(export(&from, &mut csv).unwrap(), 3);
    let text = String::from_utf8(csv.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "slug,url,created_at,expires_at,disabled,max_clicks,clicks,password_hash"
    );
    assert_eq!(
        lines[2],
        format!("full,\"https://b.example/x?y=1,2\",2023-11-14T22:13:20Z,2030-03-17T17:46:40Z,true,10,4,\"{HASH}\"")
    );
    assert!(lines[3].starts_with("'-abc,https://c.example/,"), "{text}");

    let (_b, to) = temp_store();
    let report = import(&to, csv.as_slice(), &own()).unwrap();
    assert_eq!(
        report,
        ImportReport {
            imported: 3,
            skipped: vec![],
            skipped_total: 0,
        }
    );
    let strip = |links: Vec<Link>| -> Vec<Link> {
        links.into_iter().map(|l| Link { id: 0, ..l }).collect()
    };
    assert_eq!(strip(all_links(&to)), strip(all_links(&from)));
    assert_eq!(
        to.get("full").unwrap().unwrap().password_hash.as_deref(),
        Some(HASH)
    );
    assert_eq!(to.get("-abc").unwrap().unwrap().url, "https://c.example/");
}

#[test]
fn the_formula_escape_is_undone_exactly() {
    for (cell, written) in [
        ("-abc", "'-abc"),
        ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"),
        ("+1", "'+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        // The escape itself is escaped, so a cell that already starts with
        // one comes back as it was.
        ("'-abc", "''-abc"),
        ("'", "''"),
        ("'abc", "''abc"),
        ("abc", "abc"),
        ("a-b", "a-b"),
        ("", ""),
        ("https://a.example/", "https://a.example/"),
    ] {
        assert_eq!(escape_cell(cell), written, "{cell:?}");
        assert_eq!(unescape_cell(written), cell, "{written:?}");
    }
}

#[test]
fn only_this_shortener_s_own_format_is_unescaped() {
    let (_dir, store) = temp_store();
    // Another tool's (or an older export's) header: a leading `'` is data,
    // and `'-abc` is no slug.
    let report = import_str(
        &store,
        "slug,url\n'-abc,https://a.example/\n-abc,https://b.example/\n",
    );
    assert_eq!(report.imported, 1, "{report:?}");
    assert_eq!(report.skipped[0].0, 2);
    assert_eq!(
        store.get("-abc").unwrap().unwrap().url,
        "https://b.example/"
    );
}

#[test]
fn password_hashes_are_imported_only_when_they_are_sound_argon2() {
    let (_dir, store) = temp_store();
    let header = EXPORT_HEADER.join(",");
    let row = |slug: &str, hash: &str| {
        format!("{slug},https://{slug}.example/,2024-01-01T00:00:00Z,,false,,0,\"{hash}\"\n")
    };
    let costly = HASH.replace("m=19456", "m=4194304");
    let argon2i = HASH.replace("argon2id", "argon2i");
    let csv = [
        header + "\n",
        row("good", HASH),
        row("argon2i", &argon2i),
        row("open", ""),
        row("junk", "not a hash"),
        row(
            "bcrypt",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        ),
        row("nosalt", "$argon2id$v=19$m=19456,t=2,p=1"),
        row("costly", &costly),
        row(
            "badb64",
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$!!",
        ),
    ]
    .concat();
    let report = import_str(&store, &csv);
    assert_eq!(report.imported, 3, "{report:?}");
    let lines: Vec<u64> = report.skipped.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, [5, 6, 7, 8, 9], "{report:?}");
    assert!(report
        .skipped
        .iter()
        .all(|(_, why)| why.contains("password_hash")));
    assert!(report.skipped[3].1.contains("costs more"), "{report:?}");
    assert_eq!(
        store.get("good").unwrap().unwrap().password_hash.as_deref(),
        Some(HASH)
    );
    assert_eq!(
        store
            .get("argon2i")
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some(argon2i.as_str())
    );
    assert_eq!(store.get("open").unwrap().unwrap().password_hash, None);
    for skipped in ["junk", "bcrypt", "nosalt", "costly", "badb64"] {
        assert!(store.get(skipped).unwrap().is_none(), "{skipped}");
    }
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
            skipped: vec![],
            skipped_total: 0,
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
            skipped: vec![],
            skipped_total: 0,
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
    csv.extend_from_slice(b"https://ok.example/,bad\xff,,,,\nhttps://ok.example/,last,,,yes,\n");
    let report = import(&store, csv.as_slice(), &own()).unwrap();
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
    let result = import(&store, "slug,title\nabc,x\n".as_bytes(), &own());
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
