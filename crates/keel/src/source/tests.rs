//! A [`Source`] framing what its [`BodySource`] adds, and how a body ends.

use super::*;
use crate::http1::output::Segment;

/// One pull of `source` with `room`; returns the bytes written to the
/// buffer, the bytes the source added, how the body stands, and the large
/// pieces with the buffer offsets they go before.
fn pull_once(
    source: &mut Source,
    room: usize,
) -> (String, usize, StreamEnd, Vec<(usize, Segment)>) {
    let mut buf = BytesMut::new();
    let mut large = Vec::new();
    let (added, end) = source.pull(&mut buf, &mut large, room);
    let text = String::from_utf8(buf.to_vec()).unwrap();
    (text, added, end, large)
}

fn source(framing: StreamFraming, f: impl FnMut(&mut Pull<'_>) + Send + 'static) -> Box<Source> {
    Source::boxed(f, framing)
}

#[test]
fn chunked_pieces_are_framed_and_the_finish_is_the_last_chunk() {
    let mut left = 2;
    let mut s = source(StreamFraming::Chunked, move |out| {
        assert_eq!(out.send(b"hello "), Ok(()));
        assert_eq!(out.room(), 10 - 6);
        assert_eq!(out.send(b""), Ok(()), "an empty piece is no chunk");
        left -= 1;
        if left == 0 {
            assert_eq!(out.finish(), Ok(()));
            assert_eq!(out.finish(), Ok(()), "twice is once");
            assert_eq!(out.send(b"late"), Err(StreamError::WrongLength));
        }
    });
    let (text, added, end, _) = pull_once(&mut s, 10);
    assert_eq!(text, "6\r\nhello \r\n");
    assert_eq!((added, end), (6, StreamEnd::Open));
    let (text, added, end, _) = pull_once(&mut s, 10);
    assert_eq!(text, "6\r\nhello \r\n0\r\n\r\n");
    assert_eq!((added, end), (6, StreamEnd::Finished));
}

#[test]
fn a_pull_always_begins_with_room_for_something() {
    let mut s = source(StreamFraming::UntilClose, |out| {
        while out.room() > 0 {
            out.send(b"x").unwrap();
        }
    });
    let (text, added, end, _) = pull_once(&mut s, 0);
    assert_eq!((text.as_str(), added, end), ("x", 1, StreamEnd::Open));
}

#[test]
fn a_large_piece_is_a_segment_between_its_size_line_and_crlf() {
    let big = Bytes::from(vec![b'x'; WRITEV_THRESHOLD]);
    let piece = big.clone();
    let mut s = source(StreamFraming::Chunked, move |out| {
        out.send_bytes(piece.clone()).unwrap();
        out.send_bytes(Bytes::from_static(b"small")).unwrap();
        out.finish().unwrap();
    });
    let (text, added, end, large) = pull_once(&mut s, 1 << 20);
    assert_eq!(text, "1000\r\n\r\n5\r\nsmall\r\n0\r\n\r\n");
    assert_eq!((added, end), (WRITEV_THRESHOLD + 5, StreamEnd::Finished));
    assert_eq!(large.len(), 1);
    let (at, Segment::Shared(bytes)) = &large[0] else {
        panic!("a shared segment");
    };
    assert_eq!(*at, "1000\r\n".len(), "after its size line");
    assert_eq!(bytes.as_ptr(), big.as_ptr(), "not copied");
}

#[test]
fn a_declared_length_is_kept_exactly() {
    let mut s = source(StreamFraming::Length(8), |out| {
        assert_eq!(out.send(b"12345"), Ok(()));
        assert_eq!(
            out.send(b"6789"),
            Err(StreamError::WrongLength),
            "one too many"
        );
        assert_eq!(out.send(b"678"), Ok(()));
        assert_eq!(out.finish(), Ok(()));
    });
    let (text, added, end, _) = pull_once(&mut s, 100);
    assert_eq!(text, "12345678", "no chunk framing");
    assert_eq!((added, end), (8, StreamEnd::Finished));

    let mut short = source(StreamFraming::Length(8), |out| {
        out.send(b"1234").unwrap();
        assert_eq!(out.finish(), Err(StreamError::WrongLength));
    });
    let (_, added, end, _) = pull_once(&mut short, 100);
    assert_eq!(
        (added, end),
        (4, StreamEnd::Aborted),
        "short: the connection closes"
    );
}

#[test]
fn until_close_sends_the_bytes_as_they_are() {
    let mut s = source(StreamFraming::UntilClose, |out| {
        out.send(b"raw").unwrap();
        out.finish().unwrap();
    });
    let (text, _, end, _) = pull_once(&mut s, 100);
    assert_eq!((text.as_str(), end), ("raw", StreamEnd::Finished));
}

#[test]
fn a_body_that_may_not_be_sent_never_asks_its_source() {
    let mut s = source(StreamFraming::Nothing, |_| panic!("asked"));
    let (text, added, end, _) = pull_once(&mut s, 100);
    assert_eq!((text.as_str(), added, end), ("", 0, StreamEnd::Finished));
}

#[test]
fn a_source_that_aborts_panics_or_adds_nothing_ends_the_body_unfinished() {
    let mut aborts = source(StreamFraming::Chunked, |out| {
        out.send(b"part").unwrap();
        out.abort();
        assert_eq!(out.send(b"more"), Err(StreamError::Closed));
        assert_eq!(out.finish(), Err(StreamError::Closed));
    });
    let (text, added, end, _) = pull_once(&mut aborts, 100);
    assert_eq!(
        text, "4\r\npart\r\n",
        "no last chunk: the client sees it cut"
    );
    assert_eq!((added, end), (4, StreamEnd::Aborted));

    let mut panics = source(StreamFraming::Chunked, |out| {
        out.send(b"part").unwrap();
        panic!("the source's bug");
    });
    let (_, added, end, _) = pull_once(&mut panics, 100);
    assert_eq!((added, end), (4, StreamEnd::Aborted));

    let mut idle = source(StreamFraming::Chunked, |_| {});
    let (_, added, end, _) = pull_once(&mut idle, 100);
    assert_eq!(
        (added, end),
        (0, StreamEnd::Aborted),
        "nothing would ask it again"
    );
}
