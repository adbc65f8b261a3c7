//! `strict_split`: the strict parsing rules (bare LF, `HTTP/1.x`, empty
//! `Host`, target bytes, fragments and userinfo, chunk extensions,
//! `Content-Length` lists) under the differential split check, each with and
//! without the `Leniency` field that relaxes it.

use super::handler::install_panic_filter;
use super::input::{split_at_lengths, Cursor, Finish};
use super::{same_answers_whole_and_split, show};
use keel::{Config, Leniency};

/// Answered first: whatever follows, its answer must come out.
const BEFORE: &[u8] = b"GET /before HTTP/1.1\r\nHost: fuzz\r\n\r\n";
/// Answered last, and only if the request before it was served.
const AFTER: &[u8] = b"GET /after HTTP/1.1\r\nHost: fuzz\r\n\r\n";

/// What the server must do with a generated request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Reaches the handler, the connection stays open.
    Served,
    /// This status, `Connection: close`, nothing read after it.
    Refused(u16),
}

/// One request aimed at a strict rule, and what the server must answer.
struct Probe {
    wire: Vec<u8>,
    verdict: Verdict,
}

/// Input layout: a knobs byte (bits 0-2: `bare_lf`, `empty_host`,
/// `target_bytes`; bits 4-7: number of split points), one length byte per
/// split point, a byte choosing the rule, then the bytes that rule's
/// generator reads. The stream is [`BEFORE`], the probe, [`AFTER`]; the
/// whole and split deliveries must agree (`differential_split`'s check), and
/// the probe must get its verdict under the chosen leniency.
pub fn strict_split(data: &[u8]) {
    install_panic_filter();
    let mut cur = Cursor(data);
    let knobs = cur.byte();
    let lenient = Leniency {
        bare_lf: knobs & 1 != 0,
        empty_host: knobs & 2 != 0,
        target_bytes: knobs & 4 != 0,
    };
    let config = Config {
        lenient,
        ..Config::default()
    };
    let lens: Vec<u8> = (0..knobs >> 4).map(|_| cur.byte()).collect();
    let probe = generate_probe(&mut cur, lenient);
    let stream = [BEFORE, &probe.wire, AFTER].concat();
    let pieces = split_at_lengths(&stream, &lens);
    let t = same_answers_whole_and_split(&config, &stream, &pieces, Finish::Nothing);

    let context = || format!("{lenient:?}, stream:\n{}", show(&stream));
    let statuses: Vec<u16> = t
        .responses
        .iter()
        .filter(|r| !r.interim)
        .map(|r| status_of(&r.normalized))
        .collect();
    let targets: Vec<&str> = t.calls.iter().map(|c| c.target.as_str()).collect();
    match probe.verdict {
        Verdict::Served => {
            assert_eq!(statuses, [200, 200, 200], "served; {}", context());
            assert_eq!(targets.len(), 3, "handler calls; {}", context());
            assert_eq!(targets[2], "/after", "{}", context());
            assert!(!t.closed, "closed; {}", context());
        }
        Verdict::Refused(status) => {
            assert_eq!(statuses, [200, status], "refused; {}", context());
            assert_eq!(targets, ["/before"], "handler calls; {}", context());
            assert!(t.closed, "not closed; {}", context());
            let last = &t.responses[t.responses.len() - 1].normalized;
            assert!(
                super::find(last, b"\r\nConnection: close\r\n").is_some(),
                "no Connection: close; {}",
                context()
            );
        }
    }
}

/// The status code of a response's bytes.
fn status_of(response: &[u8]) -> u16 {
    std::str::from_utf8(&response[9..12])
        .ok()
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// Served if `relaxed`, else a 400.
fn unless(relaxed: bool) -> Verdict {
    if relaxed {
        Verdict::Served
    } else {
        Verdict::Refused(400)
    }
}

/// A request breaking (or keeping) one strict rule, chosen by the input.
fn generate_probe(cur: &mut Cursor<'_>, lenient: Leniency) -> Probe {
    let pick = |cur: &mut Cursor<'_>, options: &[&'static [u8]]| {
        options[usize::from(cur.byte()) % options.len()]
    };
    let rule = cur.byte() % 7;
    let (wire, verdict) = match rule {
        // RFC 9112 §2.2: each line end of the head CRLF or LF, by a bit mask.
        0 => {
            let mask = cur.byte();
            let lines: [&[u8]; 5] = [b"", b"GET /lf HTTP/1.1", b"Host: fuzz", b"X: 1", b""];
            let mut wire = Vec::new();
            for (i, line) in lines.iter().enumerate() {
                // The leading empty line is there only when bit 5 says so.
                if i == 0 && mask & 32 == 0 {
                    continue;
                }
                wire.extend_from_slice(line);
                let bare = mask & (1 << i) != 0;
                wire.extend_from_slice(if bare { b"\n" } else { b"\r\n" });
            }
            let any_bare = wire
                .iter()
                .enumerate()
                .any(|(i, &b)| b == b'\n' && (i == 0 || wire[i - 1] != b'\r'));
            (wire, unless(!any_bare || lenient.bare_lf))
        }
        // RFC 9110 §2.5: HTTP/1.0 to 1.9 served, other majors 505.
        1 => {
            let version = pick(
                cur,
                &[
                    b"1.0", b"1.1", b"1.2", b"1.5", b"1.9", b"2.0", b"0.9", b"3.0",
                ],
            );
            let wire = [
                b"GET /v HTTP/".as_slice(),
                version,
                b"\r\nHost: fuzz\r\nConnection: keep-alive\r\n\r\n",
            ]
            .concat();
            let verdict = if version[0] == b'1' {
                Verdict::Served
            } else {
                Verdict::Refused(505)
            };
            (wire, verdict)
        }
        // RFC 9110 §7.2: an empty Host value, however much whitespace.
        2 => {
            let host = pick(cur, &[b"", b" ", b"\t", b"  \t ", b" fuzz"]);
            let wire = [b"GET /host HTTP/1.1\r\nHost:".as_slice(), host, b"\r\n\r\n"].concat();
            let empty = host.trim_ascii().is_empty();
            (wire, unless(!empty || lenient.empty_host))
        }
        // RFC 3986: one byte (or escape) in the path or the query.
        3 => {
            let allowed: &[&[u8]] = &[
                b"a", b"-", b"~", b"!", b"$", b"'", b"(", b"*", b";", b"=", b":", b"@", b"%41",
                b"%fF",
            ];
            let disallowed: &[&[u8]] = &[
                b"\\",
                b"\"",
                b"<",
                b">",
                b"^",
                b"`",
                b"{",
                b"|",
                b"}",
                b"[",
                b"]",
                b"%",
                b"%4",
                b"%zz",
                b"\xc3\xa9",
                b"\xe2\x9c\x93",
            ];
            let choice = usize::from(cur.byte());
            let in_query = cur.byte() & 1 != 0;
            let all = allowed.len() + disallowed.len();
            let (piece, ok) = match choice % all {
                i if i < allowed.len() => (allowed[i], true),
                i => (disallowed[i - allowed.len()], false),
            };
            let target = [
                if in_query {
                    b"/t?q=".as_slice()
                } else {
                    b"/t/"
                },
                piece,
            ]
            .concat();
            let wire = [
                b"GET ".as_slice(),
                &target,
                b" HTTP/1.1\r\nHost: fuzz\r\n\r\n",
            ]
            .concat();
            (wire, unless(ok || lenient.target_bytes))
        }
        // RFC 9112 §3.2, RFC 9110 §4.2.4: a fragment or userinfo (or a target
        // that is not UTF-8, which httparse refuses), never served.
        4 => {
            let target = pick(
                cur,
                &[
                    b"/f#x",
                    b"/f?a#",
                    b"http://fuzz/f#x",
                    b"http://u@fuzz/f",
                    b"/f\xff",
                    b"http://fuzz/f",
                ],
            );
            let wire = [
                b"GET ".as_slice(),
                target,
                b" HTTP/1.1\r\nHost: fuzz\r\n\r\n",
            ]
            .concat();
            let fine = target.is_ascii() && !target.contains(&b'#') && !target.contains(&b'@');
            (wire, unless(fine))
        }
        // RFC 9112 §7.1.1: a chunk extension, valid or not.
        5 => {
            let valid: &[&[u8]] = &[
                b"",
                b";a",
                b";a=b",
                b" ; a = b",
                b"\t;a=\"x y\"",
                b";a=\"\\\"\";b",
            ];
            let invalid: &[&[u8]] = &[
                b";",
                b" ;",
                b";=v",
                b";a=",
                b";a=b c",
                b";a ",
                b";a=\"b",
                b";a=\"b\"c",
                b";a=b;",
                b";a@b",
                b" ",
            ];
            let choice = usize::from(cur.byte()) % (valid.len() + invalid.len());
            let (ext, ok) = match choice {
                i if i < valid.len() => (valid[i], true),
                i => (invalid[i - valid.len()], false),
            };
            let wire = [
                b"POST /chunk HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked\r\n\r\n3"
                    .as_slice(),
                ext,
                b"\r\nabc\r\n0\r\n\r\n",
            ]
            .concat();
            (wire, unless(ok))
        }
        // RFC 9110 §8.6: Content-Length lists.
        _ => {
            let value = pick(
                cur,
                &[b"3", b"3, 3", b"3,3", b"3,", b",3", b"3,,3", b",", b"3, 4"],
            );
            let wire = [
                b"POST /length HTTP/1.1\r\nHost: fuzz\r\nContent-Length: ".as_slice(),
                value,
                b"\r\n\r\nabc",
            ]
            .concat();
            let elements: Vec<&[u8]> = value
                .split(|&b| b == b',')
                .map(|e| e.trim_ascii())
                .collect();
            let ok = elements.iter().all(|e| *e == b"3");
            (wire, unless(ok))
        }
    };
    Probe { wire, verdict }
}
