use super::*;
use crate::http1::parse::{header_slots, parse_head};

/// wrk's request, with the header lines a polling client adds.
const HEAD: &[u8] = b"GET /plaintext?x=1 HTTP/1.1\r\nHost: localhost:8080\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n";

/// What a parse says, owned, to compare two parses.
type Owned = (String, String, u8, Vec<(String, Vec<u8>)>, Framing);

fn owned(req: &httparse::Request<'_, '_>, framing: Framing) -> Owned {
    let headers = req.headers.iter();
    (
        req.method.expect("method").to_owned(),
        req.path.expect("target").to_owned(),
        req.version.expect("version"),
        headers
            .map(|h| (h.name.to_owned(), h.value.to_vec()))
            .collect(),
        framing,
    )
}

/// Parses the head at `at` in `input` and remembers it, as a pass does.
fn parse_and_remember(memo: &mut HeadMemo, input: &[u8], at: usize) -> Owned {
    let mut slots = header_slots();
    let (req, framing) = parse_head(&input[at..], &mut slots, &Config::default())
        .expect("valid")
        .expect("complete");
    memo.remember(input, at, &req, &framing);
    owned(&req, framing)
}

/// The replay of the head at `start`, with every slice it gives checked to
/// lie in that head's own bytes (a handler borrows them from there).
fn replay(memo: &mut HeadMemo, input: &[u8], start: usize) -> Option<Owned> {
    let mut slots = memo_slots();
    let (req, framing) = memo.replay(input, start, &mut slots)?;
    let head = input[start..start + framing.head_len].as_ptr_range();
    let inside = |s: &[u8]| head.contains(&s.as_ptr()) || s.is_empty();
    assert!(inside(req.method.unwrap().as_bytes()) && inside(req.path.unwrap().as_bytes()));
    assert!(req
        .headers
        .iter()
        .all(|h| inside(h.name.as_bytes()) && inside(h.value)));
    Some(owned(&req, framing))
}

#[test]
fn a_repeated_head_replays_exactly_what_parsing_gives() {
    let eight_fields: Vec<u8> = [
        &b"GET / HTTP/1.1\r\nHost: a\r\n"[..],
        &b"A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG:\r\n\r\n"[..],
    ]
    .concat();
    let heads: [&[u8]; 8] = [
        HEAD,
        b"GET / HTTP/1.0\r\n\r\n",
        b"\r\nGET /after/an/empty/line HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HEAD /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET http://a:8080/b?c HTTP/1.1\r\nHost: a:8080\r\n\r\n",
        b"DELETE /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nX:  spaced value \t\r\n\r\n",
        &eight_fields,
    ];
    for head in heads {
        let input = head.repeat(3);
        let mut memo = HeadMemo::default();
        let first = parse_and_remember(&mut memo, &input, 0);
        for copy in 1..3 {
            let start = copy * head.len();
            assert!(memo.holds_head());
            let mut slots = header_slots();
            let (req, framing) = parse_head(&input[start..], &mut slots, &Config::default())
                .unwrap()
                .unwrap();
            let parsed = owned(&req, framing);
            assert_eq!(parsed, first);
            let shown = String::from_utf8_lossy(head);
            assert_eq!(replay(&mut memo, &input, start), Some(parsed), "{shown:?}");
        }
    }
}

#[test]
fn a_head_differing_in_any_byte_is_not_replayed() {
    for at in 0..HEAD.len() {
        for changed in [HEAD[at] ^ 0x01, HEAD[at] ^ 0x20, b'\n', b' '] {
            if changed == HEAD[at] {
                continue;
            }
            let mut input = HEAD.repeat(2);
            input[HEAD.len() + at] = changed;
            let mut memo = HeadMemo::default();
            parse_and_remember(&mut memo, &input, 0);
            assert_eq!(replay(&mut memo, &input, HEAD.len()), None, "byte {at}");
        }
    }
    // Equal up to its last byte, the second head runs past the end.
    let input = [HEAD, &HEAD[..HEAD.len() - 1]].concat();
    let mut memo = HeadMemo::default();
    parse_and_remember(&mut memo, &input, 0);
    assert_eq!(replay(&mut memo, &input, HEAD.len()), None);
}

#[test]
fn only_the_last_head_parsed_is_replayed_wherever_it_repeats() {
    let other = b"GET /other HTTP/1.1\r\nHost: a\r\n\r\n";
    let input = [HEAD, HEAD, other, HEAD, other].concat();
    let mut memo = HeadMemo::default();
    parse_and_remember(&mut memo, &input, 0);
    let first = replay(&mut memo, &input, HEAD.len()).expect("a repeat");
    // Bytes that are not the head again, one byte in: not replayed.
    assert_eq!(replay(&mut memo, &input, 1), None);
    // A different head after it is compared, and parsed; it is remembered
    // in the earlier one's place.
    assert_eq!(replay(&mut memo, &input, 2 * HEAD.len()), None);
    parse_and_remember(&mut memo, &input, 2 * HEAD.len());
    let after_other = 2 * HEAD.len() + other.len();
    assert_eq!(replay(&mut memo, &input, after_other), None);
    assert!(replay(&mut memo, &input, after_other + HEAD.len()).is_some());
    memo.forget();
    assert!(!memo.holds_head());
    assert_eq!(replay(&mut memo, &input, after_other + HEAD.len()), None);
    // What a replay gives depends on the memo's copy, not on the earlier
    // head's bytes: overwritten in the buffer, they change nothing.
    let mut input = HEAD.repeat(2);
    parse_and_remember(&mut memo, &input, 0);
    input[..HEAD.len()].fill(b'\xff');
    assert_eq!(replay(&mut memo, &input, HEAD.len()), Some(first));
}

#[test]
fn what_is_not_remembered_or_not_replayed() {
    let unremembered: [&[u8]; 3] = [
        // A body: its bytes sit between the two heads.
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
        // More header lines than the memo holds.
        b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\n\r\n",
        // A chunked body.
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ];
    for request in unremembered {
        let input = request.repeat(2);
        let mut memo = HeadMemo::default();
        parse_and_remember(&mut memo, &input, 0);
        assert!(!memo.holds_head());
    }
    // The last head in the buffer: no replay could use it.
    let mut memo = HeadMemo::default();
    parse_and_remember(&mut memo, HEAD, 0);
    assert!(!memo.holds_head());
    // A value with obs-text (RFC 9110 §5.5) is not ASCII: parsed each time.
    let latin1 = b"GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xe9\r\n\r\n";
    // Longer than the memo's copy.
    let long = [
        &b"GET /"[..],
        &[b'a'; MEMO_HEAD_BYTES],
        b" HTTP/1.1\r\nHost: a\r\n\r\n",
    ]
    .concat();
    for head in [&latin1[..], &long] {
        let input = head.repeat(2);
        let mut memo = HeadMemo::default();
        parse_and_remember(&mut memo, &input, 0);
        assert!(!memo.holds_head());
        assert_eq!(replay(&mut memo, &input, head.len()), None);
    }
}
