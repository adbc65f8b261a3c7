//! Table tests of range requests: one wire sample per case, each citing the
//! RFC 9110 rule it checks.

use super::*;
use crate::files::wire::with_request;
use std::time::SystemTime;

use RangeDecision::{Full, Partial, Unsatisfiable};

fn span(first: u64, last: u64) -> RangeDecision {
    Partial(ByteRange { first, last })
}

/// The decision for `GET` with `Range: value` on a file of `len` bytes.
fn decide(value: &str, len: u64) -> RangeDecision {
    let file = Validators::from_parts(1, None, len, SystemTime::now());
    let wire = format!("GET /f HTTP/1.1\r\nHost: x\r\nRange: {value}\r\n\r\n");
    with_request(&wire, |req| select_range(req, &file, len))
}

#[test]
fn range_forms_on_a_100_byte_file() {
    let cases = [
        // §14.1.2 int-range and suffix-range.
        ("14.1.2 first-last", "bytes=0-9", span(0, 9)),
        ("14.1.2 first-", "bytes=10-", span(10, 99)),
        ("14.1.2 -suffix", "bytes=-10", span(90, 99)),
        ("14.1.2 suffix = length", "bytes=-100", span(0, 99)),
        (
            "14.1.2 suffix longer than the file",
            "bytes=-1000",
            span(0, 99),
        ),
        (
            "14.1.2 last past the end is the end",
            "bytes=90-1000",
            span(90, 99),
        ),
        ("14.1.2 last byte", "bytes=99-99", span(99, 99)),
        ("14.1.2 first byte", "bytes=0-0", span(0, 0)),
        ("14.1.2 whole file", "bytes=0-", span(0, 99)),
        ("14.1 unit is case-insensitive", "BYTES=0-9", span(0, 9)),
        ("14.1 unit is case-insensitive", "Bytes=0-9", span(0, 9)),
        // §14.1.1 satisfiable or not.
        ("14.1.1 first at the end", "bytes=100-", Unsatisfiable),
        ("14.1.1 first past the end", "bytes=100-200", Unsatisfiable),
        ("14.1.1 zero suffix", "bytes=-0", Unsatisfiable),
        (
            "14.1.1 none satisfiable",
            "bytes=200-300, -0",
            Unsatisfiable,
        ),
        (
            "14.1.1 saturated first",
            "bytes=18446744073709551616-",
            Unsatisfiable,
        ),
        (
            "14.1.2 saturated last",
            "bytes=0-18446744073709551616",
            span(0, 99),
        ),
        (
            "14.1.2 saturated suffix",
            "bytes=-99999999999999999999999",
            span(0, 99),
        ),
        (
            "14.2 the satisfiable ones",
            "bytes=0-9, 200-300",
            span(0, 9),
        ),
        // §5.6.1 lists, and coalescing (§15.3.7: a server MAY coalesce).
        (
            "5.6.1 OWS around commas",
            "bytes= 0-9 ,\t10-19",
            span(0, 19),
        ),
        ("5.6.1 empty members", "bytes=0-9,,10-19,", span(0, 19)),
        ("15.3.7 overlapping", "bytes=0-50,25-75", span(0, 75)),
        (
            "15.3.7 out of order, adjacent",
            "bytes=50-99,0-49",
            span(0, 99),
        ),
        ("15.3.7 contained", "bytes=0-99,10-20", span(0, 99)),
        ("15.3.7 repeated", "bytes=5-5,5-5", span(5, 5)),
        ("14.2 disjoint: whole file", "bytes=0-9,20-29", Full),
        ("14.2 a one-byte gap: whole file", "bytes=0-9,11-19", Full),
        ("14.2 suffix and head: whole file", "bytes=-5,0-4", Full),
        // §14.2: an unknown unit or an invalid ranges-specifier is ignored.
        ("14.2 unknown unit", "items=0-9", Full),
        ("14.1.1 no equals sign", "bytes 0-9", Full),
        ("14.1.1 last < first", "bytes=9-0", Full),
        ("14.1.1 one invalid spec", "bytes=0-9,9-0", Full),
        ("14.1.1 no spec", "bytes=", Full),
        ("14.1.1 only empty members", "bytes=,,", Full),
        ("14.1.1 letters", "bytes=a-b", Full),
        ("14.1.1 spaces inside a spec", "bytes=0 - 9", Full),
        ("14.1.1 a bare dash", "bytes=-", Full),
        ("14.1.1 a sign", "bytes=+1-2", Full),
        ("14.1.1 hex", "bytes=0x10-", Full),
        ("14.1.1 no dash", "bytes=10", Full),
        ("14.1.1 space before equals", "bytes =0-9", Full),
        ("14.1.1 a parameter", "bytes=0-9;x=1", Full),
        ("14.1.1 two dashes", "bytes=0-9-", Full),
    ];
    for (rule, value, expected) in cases {
        assert_eq!(decide(value, 100), expected, "§{rule}: Range: {value}");
    }
}

#[test]
fn any_range_of_an_empty_file_is_unsatisfiable() {
    // §14.1.1: an int-range needs first-pos < length, and a suffix-range of
    // an empty representation selects nothing.
    for value in [
        "bytes=0-",
        "bytes=0-0",
        "bytes=-1",
        "bytes=-0",
        "bytes=0-9,-5",
    ] {
        assert_eq!(decide(value, 0), Unsatisfiable, "Range: {value}");
    }
    assert_eq!(
        decide("items=0-", 0),
        Full,
        "§14.2 an unknown unit is still ignored"
    );
}

#[test]
fn many_ranges_cost_nothing_and_are_ignored_past_the_limit() {
    // The attack of §14.2 ("many small ranges"): the limit stops the scan,
    // and no answer is ever larger than the file.
    let repeat = |spec: &str, n: usize| format!("bytes={}", vec![spec; n].join(","));
    assert_eq!(decide(&repeat("0-0", MAX_RANGES), 100), span(0, 0));
    assert_eq!(decide(&repeat("0-0", MAX_RANGES + 1), 100), Full);
    let disjoint: Vec<String> = (0..MAX_RANGES as u64)
        .map(|i| format!("{0}-{0}", 2 * i))
        .collect();
    assert_eq!(decide(&format!("bytes={}", disjoint.join(",")), 1000), Full);
    // Far past the limit, the parse stops at the limit: this returns at once.
    let huge = repeat("0-0", 50_000);
    assert_eq!(parse_range(huge.as_bytes(), 100), Full);
}

#[test]
fn only_a_single_range_field_on_a_get_is_honoured() {
    let file = Validators::from_parts(1, None, 100, SystemTime::now());
    let cases = [
        // §14.2: GET is the only method with range semantics.
        (
            "14.2 HEAD",
            "HEAD / HTTP/1.1\r\nRange: bytes=0-9\r\n\r\n",
            Full,
        ),
        (
            "14.2 POST",
            "POST / HTTP/1.1\r\nRange: bytes=0-9\r\n\r\n",
            Full,
        ),
        ("14.2 no Range", "GET / HTTP/1.1\r\n\r\n", Full),
        // §5.3: two lines combine into "bytes=0-9, bytes=10-19", not a range-set.
        (
            "5.3 two lines",
            "GET / HTTP/1.1\r\nRange: bytes=0-9\r\nRange: bytes=10-19\r\n\r\n",
            Full,
        ),
        // §13.1.5: a false If-Range means the whole representation.
        (
            "13.1.5 If-Range differs",
            "GET / HTTP/1.1\r\nRange: bytes=0-9\r\nIf-Range: \"other\"\r\n\r\n",
            Full,
        ),
        (
            "13.1.5 If-Range matches",
            "GET / HTTP/1.1\r\nRange: bytes=0-9\r\nIf-Range: \"1-0-64\"\r\n\r\n",
            span(0, 9),
        ),
    ];
    assert_eq!(file.etag(), "\"1-0-64\"");
    for (rule, wire, expected) in cases {
        let got = with_request(wire, |req| select_range(req, &file, 100));
        assert_eq!(got, expected, "§{rule}: {wire:?}");
    }
}

#[test]
fn content_range_values() {
    // §14.4: Content-Range = range-unit SP ( range-resp / unsatisfied-range ).
    let cases = [
        (
            ContentRange::partial(ByteRange { first: 0, last: 9 }, 100),
            "bytes 0-9/100",
        ),
        (ContentRange::unsatisfied(0), "bytes */0"),
        (
            ContentRange::partial(
                ByteRange {
                    first: u64::MAX - 1,
                    last: u64::MAX - 1,
                },
                u64::MAX,
            ),
            "bytes 18446744073709551614-18446744073709551614/18446744073709551615",
        ),
        (
            ContentRange::unsatisfied(u64::MAX),
            "bytes */18446744073709551615",
        ),
    ];
    for (value, expected) in cases {
        assert_eq!(value.as_str(), expected);
        assert_eq!(value.as_ref(), expected.as_bytes());
    }
    assert_eq!(
        ByteRange {
            first: 90,
            last: 99
        }
        .len(),
        10
    );
}
