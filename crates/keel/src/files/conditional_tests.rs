//! Table tests of the preconditions: one wire sample per case, each citing
//! the RFC 9110 rule it checks.

use super::*;
use crate::files::wire::with_request;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT; ETag "10-ae1b981bc490a00-20".
fn file() -> Validators {
    let modified = UNIX_EPOCH + Duration::from_secs(784_111_777);
    Validators::from_parts(0x10, Some(modified), 0x20, SystemTime::now())
}

const ETAG: &str = "\"10-ae1b981bc490a00-20\"";
const DATE: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
const DATE_RFC850: &str = "Sunday, 06-Nov-94 08:49:37 GMT";
const DATE_ASCTIME: &str = "Sun Nov  6 08:49:37 1994";
const SECOND_BEFORE: &str = "Sun, 06 Nov 1994 08:49:36 GMT";
const SECOND_AFTER: &str = "Sun, 06 Nov 1994 08:49:38 GMT";

use Precondition::{NotModified as N304, PreconditionFailed as P412, Proceed as GO};

/// `(rule, method, header lines, expected)`.
type Case = (&'static str, &'static str, String, Precondition);

fn cases() -> Vec<Case> {
    let h = |lines: &[(&str, &str)]| -> String {
        lines
            .iter()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect()
    };
    let weak = format!("W/{ETAG}");
    vec![
        ("no precondition", "GET", h(&[]), GO),
        // §13.1.1 If-Match, strong comparison.
        ("13.1.1 match", "GET", h(&[("If-Match", ETAG)]), GO),
        ("13.1.1 other tag", "GET", h(&[("If-Match", "\"x\"")]), P412),
        ("13.1.1 *", "GET", h(&[("If-Match", "*")]), GO),
        (
            "13.1.1 weak never strong-matches",
            "GET",
            h(&[("If-Match", &weak)]),
            P412,
        ),
        (
            "13.1.1 list",
            "GET",
            h(&[("If-Match", &format!("\"a\", {ETAG}"))]),
            GO,
        ),
        (
            "13.1.1 comma inside a tag",
            "GET",
            h(&[("If-Match", &format!("\"a,b\",{ETAG}"))]),
            GO,
        ),
        (
            "5.3 two lines are one list",
            "GET",
            h(&[("If-Match", "\"a\""), ("If-Match", ETAG)]),
            GO,
        ),
        (
            "5.6.1 empty members",
            "PUT",
            h(&[("If-Match", &format!(" , ,\"a\" , ,{ETAG},"))]),
            GO,
        ),
        (
            "13.1.1 no member matches",
            "PUT",
            h(&[("If-Match", "\"a\" , , \"b\"")]),
            P412,
        ),
        (
            "13.1.1 unquoted is no tag",
            "GET",
            h(&[("If-Match", "10-ae1b981bc490a00-20")]),
            P412,
        ),
        (
            "13.1.1 unclosed quote",
            "GET",
            h(&[("If-Match", "\"10-ae1b981bc490a00-20")]),
            P412,
        ),
        (
            "13.1.1 garbage after a tag",
            "GET",
            h(&[("If-Match", &format!("{ETAG}x"))]),
            P412,
        ),
        ("13.1.1 empty list", "GET", h(&[("If-Match", "")]), P412),
        // §13.1.4 If-Unmodified-Since.
        (
            "13.1.4 same date",
            "GET",
            h(&[("If-Unmodified-Since", DATE)]),
            GO,
        ),
        (
            "13.1.4 modified since",
            "PUT",
            h(&[("If-Unmodified-Since", SECOND_BEFORE)]),
            P412,
        ),
        (
            "13.1.4 later date",
            "GET",
            h(&[("If-Unmodified-Since", SECOND_AFTER)]),
            GO,
        ),
        (
            "13.1.4 invalid date ignored",
            "GET",
            h(&[("If-Unmodified-Since", "yesterday")]),
            GO,
        ),
        (
            "13.1.4 two lines ignored",
            "GET",
            h(&[
                ("If-Unmodified-Since", SECOND_BEFORE),
                ("If-Unmodified-Since", SECOND_BEFORE),
            ]),
            GO,
        ),
        (
            "13.1.4 ignored with If-Match",
            "GET",
            h(&[("If-Match", ETAG), ("If-Unmodified-Since", SECOND_BEFORE)]),
            GO,
        ),
        (
            "13.2.2 If-Match decides first",
            "GET",
            h(&[("If-Match", "\"x\""), ("If-Unmodified-Since", SECOND_AFTER)]),
            P412,
        ),
        // §13.1.2 If-None-Match, weak comparison.
        ("13.1.2 match", "GET", h(&[("If-None-Match", ETAG)]), N304),
        (
            "13.1.2 weak matches weakly",
            "GET",
            h(&[("If-None-Match", &weak)]),
            N304,
        ),
        ("13.1.2 *", "GET", h(&[("If-None-Match", "*")]), N304),
        (
            "13.1.2 other tag",
            "GET",
            h(&[("If-None-Match", "\"x\"")]),
            GO,
        ),
        ("13.1.2 HEAD", "HEAD", h(&[("If-None-Match", ETAG)]), N304),
        (
            "13.1.2 other methods 412",
            "PUT",
            h(&[("If-None-Match", ETAG)]),
            P412,
        ),
        (
            "13.1.2 * other methods 412",
            "POST",
            h(&[("If-None-Match", "*")]),
            P412,
        ),
        (
            "5.3 two lines",
            "GET",
            h(&[("If-None-Match", "\"x\""), ("If-None-Match", &weak)]),
            N304,
        ),
        (
            "13.1.2 malformed matches nothing",
            "GET",
            h(&[("If-None-Match", "junk")]),
            GO,
        ),
        (
            "13.1.2 case of W/ matters",
            "GET",
            h(&[("If-None-Match", &format!("w/{ETAG}"))]),
            GO,
        ),
        // §13.1.3 If-Modified-Since.
        (
            "13.1.3 same date",
            "GET",
            h(&[("If-Modified-Since", DATE)]),
            N304,
        ),
        (
            "13.1.3 later date",
            "GET",
            h(&[("If-Modified-Since", SECOND_AFTER)]),
            N304,
        ),
        (
            "13.1.3 earlier date",
            "GET",
            h(&[("If-Modified-Since", SECOND_BEFORE)]),
            GO,
        ),
        (
            "5.6.7 RFC 850 date",
            "GET",
            h(&[("If-Modified-Since", DATE_RFC850)]),
            N304,
        ),
        (
            "5.6.7 asctime date",
            "HEAD",
            h(&[("If-Modified-Since", DATE_ASCTIME)]),
            N304,
        ),
        (
            "13.1.3 invalid date ignored",
            "GET",
            h(&[("If-Modified-Since", "Sun, 06 Nov 1994")]),
            GO,
        ),
        (
            "13.1.3 two lines ignored",
            "GET",
            h(&[("If-Modified-Since", DATE), ("If-Modified-Since", DATE)]),
            GO,
        ),
        (
            "13.1.3 ignored with If-None-Match",
            "GET",
            h(&[
                ("If-None-Match", "\"x\""),
                ("If-Modified-Since", SECOND_AFTER),
            ]),
            GO,
        ),
        (
            "13.1.3 GET and HEAD only",
            "POST",
            h(&[("If-Modified-Since", SECOND_AFTER)]),
            GO,
        ),
        // §13.2.2 order.
        (
            "13.2.2 If-Match before If-None-Match",
            "GET",
            h(&[("If-None-Match", ETAG), ("If-Match", "\"x\"")]),
            P412,
        ),
        (
            "13.2.2 If-Unmodified-Since before If-None-Match",
            "GET",
            h(&[
                ("If-None-Match", ETAG),
                ("If-Unmodified-Since", SECOND_BEFORE),
            ]),
            P412,
        ),
        (
            "13.2.2 both hold, then 304",
            "GET",
            h(&[("If-Match", ETAG), ("If-None-Match", ETAG)]),
            N304,
        ),
        (
            "13.2.1 OPTIONS ignores them",
            "OPTIONS",
            h(&[("If-Match", "\"x\"")]),
            GO,
        ),
        (
            "13.2.1 TRACE ignores them",
            "TRACE",
            h(&[("If-None-Match", "*")]),
            GO,
        ),
    ]
}

#[test]
fn preconditions_follow_rfc_9110_section_13() {
    let file = file();
    assert_eq!(file.etag(), ETAG);
    assert_eq!(file.last_modified(), Some(DATE));
    for (rule, method, lines, expected) in cases() {
        let wire = format!("{method} /f HTTP/1.1\r\nHost: x\r\n{lines}\r\n");
        let got = with_request(&wire, |req| check_preconditions(req, &file));
        assert_eq!(got, expected, "§{rule}: {wire:?}");
    }
}

#[test]
fn date_preconditions_need_a_last_modified() {
    // §13.1.3, §13.1.4: without a modification date the fields are ignored.
    let undated = Validators::from_parts(1, None, 1, SystemTime::now());
    for lines in [
        format!("If-Modified-Since: {SECOND_AFTER}\r\n"),
        format!("If-Unmodified-Since: {SECOND_BEFORE}\r\n"),
    ] {
        let wire = format!("GET / HTTP/1.1\r\n{lines}\r\n");
        let got = with_request(&wire, |req| check_preconditions(req, &undated));
        assert_eq!(got, GO, "{wire:?}");
    }
}

#[test]
fn if_range_needs_a_strong_match_or_the_exact_date() {
    let file = file();
    let weak = format!("W/{ETAG}");
    // §13.1.5, `(rule, If-Range lines, whether the Range applies)`.
    let cases: [(&str, &[&str], bool); 12] = [
        ("absent", &[], true),
        ("strong match", &[ETAG], true),
        ("weak tag never matches", &[&weak], false),
        ("other tag", &["\"x\""], false),
        ("exact date", &[DATE], true),
        ("same instant, RFC 850 form", &[DATE_RFC850], true),
        ("later date is no exact match", &[SECOND_AFTER], false),
        ("earlier date", &[SECOND_BEFORE], false),
        ("neither tag nor date", &["tomorrow"], false),
        (
            "a list is no entity-tag",
            &[&format!("{ETAG}, \"x\"")],
            false,
        ),
        ("a star is no entity-tag", &["*"], false),
        ("two lines", &[ETAG, ETAG], false),
    ];
    for (rule, lines, expected) in cases {
        let lines: String = lines.iter().map(|v| format!("If-Range: {v}\r\n")).collect();
        let wire = format!("GET / HTTP/1.1\r\nRange: bytes=0-1\r\n{lines}\r\n");
        let got = with_request(&wire, |req| if_range_holds(req, &file));
        assert_eq!(got, expected, "§13.1.5 {rule}: {wire:?}");
    }
    let undated = Validators::from_parts(1, None, 1, SystemTime::now());
    let wire = format!("GET / HTTP/1.1\r\nIf-Range: {DATE}\r\n\r\n");
    assert!(!with_request(&wire, |req| if_range_holds(req, &undated)));
}
