//! One wire sample per case, and a reader written from the spec's parsing
//! rules (§9.2.6) that reads every sample back.

use super::*;

/// What a client dispatches: (event type, data, last event id, retry ms).
type Dispatched = (String, String, String, Option<u64>);

/// The spec's "interpret an event stream" for one stream, enough for the
/// fields written here: lines split at CRLF, CR or LF; one leading space
/// stripped from a value; `data` lines joined with LF; an id with NUL
/// ignored; `retry` only when all digits; a blank line dispatches; an
/// empty data buffer dispatches nothing.
fn read_stream(wire: &[u8]) -> Vec<Dispatched> {
    let text = std::str::from_utf8(wire).expect("UTF-8");
    let mut lines = Vec::new();
    for_each_line(text, |line| lines.push(line.to_owned()));
    // The stream ends after the last line break: the piece after it is an
    // incomplete line, which the client never reads.
    lines.pop();
    let (mut kind, mut data, mut id, mut retry) =
        (String::new(), String::new(), String::new(), None);
    let mut out = Vec::new();
    for line in lines {
        if line.is_empty() {
            if !data.is_empty() {
                data.pop();
                let name = if kind.is_empty() {
                    "message".into()
                } else {
                    kind.clone()
                };
                out.push((name, std::mem::take(&mut data), id.clone(), retry));
            }
            data.clear();
            kind.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((&line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => kind = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => id = value.to_owned(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                retry = value.parse().ok();
            }
            _ => {}
        }
    }
    out
}

fn wire(event: Event<'_>) -> Vec<u8> {
    let mut out = BytesMut::new();
    event.write_to(&mut out).expect("a valid event");
    assert_eq!(out.len(), event.encoded_len(), "encoded_len of {event:?}");
    out.to_vec()
}

#[test]
fn events_are_framed_as_the_spec_reads_them() {
    let cases: [(Event<'_>, &[u8], &str); 14] = [
        (Event::data("hello"), b"data: hello\n\n", "hello"),
        (Event::data(""), b"data:\n\n", ""),
        (Event::data("a\nb"), b"data: a\ndata: b\n\n", "a\nb"),
        (Event::data("a\r\nb"), b"data: a\ndata: b\n\n", "a\nb"),
        (Event::data("a\rb"), b"data: a\ndata: b\n\n", "a\nb"),
        (Event::data("a\n"), b"data: a\ndata:\n\n", "a\n"),
        (Event::data("\n"), b"data:\ndata:\n\n", "\n"),
        (
            Event::data("a\n\nb"),
            b"data: a\ndata:\ndata: b\n\n",
            "a\n\nb",
        ),
        (
            Event::data("a\r\r\nb"),
            b"data: a\ndata:\ndata: b\n\n",
            "a\n\nb",
        ),
        // One space is stripped by the client: the value's own survives.
        (Event::data(" x"), b"data:  x\n\n", " x"),
        // A line that looks like a field stays inside data.
        (
            Event::data("x\nid: 9"),
            b"data: x\ndata: id: 9\n\n",
            "x\nid: 9",
        ),
        (Event::data("é ✓"), "data: é ✓\n\n".as_bytes(), "é ✓"),
        (
            Event::data("d").event("clicks").id("7"),
            b"event: clicks\nid: 7\ndata: d\n\n",
            "d",
        ),
        (
            Event::data("d").id("").retry(Duration::from_millis(2500)),
            b"id:\nretry: 2500\ndata: d\n\n",
            "d",
        ),
    ];
    for (event, expected, data) in cases {
        let bytes = wire(event);
        assert_eq!(
            bytes,
            expected,
            "{event:?} gave {:?}",
            String::from_utf8_lossy(&bytes)
        );
        let read = read_stream(&bytes);
        assert_eq!(read.len(), 1, "{event:?} dispatched {read:?}");
        assert_eq!(read[0].1, data, "{event:?} read back");
    }
}

#[test]
fn fields_are_read_back_with_their_values() {
    let bytes = wire(
        Event::data("{}")
            .event("totals")
            .id("41")
            .retry(Duration::from_secs(3)),
    );
    assert_eq!(
        read_stream(&bytes),
        [("totals".into(), "{}".into(), "41".into(), Some(3000))]
    );
}

#[test]
fn retry_is_whole_milliseconds() {
    let cases: [(Duration, &[u8]); 4] = [
        (Duration::ZERO, b"retry: 0\ndata: x\n\n"),
        (Duration::from_micros(1999), b"retry: 1\ndata: x\n\n"),
        (Duration::from_secs(60), b"retry: 60000\ndata: x\n\n"),
        (
            Duration::MAX,
            b"retry: 18446744073709551615999\ndata: x\n\n",
        ),
    ];
    for (after, expected) in cases {
        assert_eq!(wire(Event::data("x").retry(after)), expected, "{after:?}");
    }
}

#[test]
fn fields_that_would_break_the_framing_are_refused_unwritten() {
    let cases = [
        (
            Event::data("x").event("a\ndata: injected"),
            InvalidEvent::LineBreakInEventName,
        ),
        (
            Event::data("x").event("a\r"),
            InvalidEvent::LineBreakInEventName,
        ),
        (
            Event::data("x").id("1\nevent: evil"),
            InvalidEvent::LineBreakInId,
        ),
        (Event::data("x").id("1\r"), InvalidEvent::LineBreakInId),
        (Event::data("x").id("1\0"), InvalidEvent::NulInId),
    ];
    for (event, error) in cases {
        let mut out = BytesMut::from(&b"kept"[..]);
        assert_eq!(event.write_to(&mut out), Err(error), "{event:?}");
        assert_eq!(event.validate(), Err(error), "{event:?}");
        assert_eq!(&out[..], b"kept", "{event:?} wrote something");
        assert!(!error.to_string().is_empty());
    }
}

#[test]
fn comments_never_start_a_field() {
    let cases: [(&str, &[u8]); 5] = [
        ("", b":\n\n"),
        ("ping", b": ping\n\n"),
        ("a\nb", b": a\n: b\n\n"),
        ("x\ndata: injected", b": x\n: data: injected\n\n"),
        ("a\r\n", b": a\n:\n\n"),
    ];
    for (text, expected) in cases {
        let mut out = BytesMut::new();
        comment(text, &mut out);
        assert_eq!(&out[..], expected, "{text:?}");
        assert!(read_stream(&out).is_empty(), "{text:?} dispatched an event");
    }
}

#[test]
fn writing_into_a_buffer_with_room_does_not_grow_it() {
    let event = Event::data("line\nline")
        .event("e")
        .id("1")
        .retry(Duration::from_secs(1));
    let mut out = BytesMut::with_capacity(event.encoded_len() + 4);
    let (at, capacity) = (out.as_ptr(), out.capacity());
    event.write_to(&mut out).unwrap();
    comment("", &mut out);
    assert_eq!(out.len(), event.encoded_len() + 3);
    assert_eq!((out.as_ptr(), out.capacity()), (at, capacity));
}
