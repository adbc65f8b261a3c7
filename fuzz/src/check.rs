//! Splitting a connection's output into responses and checking each
//! against what the handler wrote, and the whole against the counters.

use super::{describe, find, show, BodyFraming, Call};
use keel::Config;

/// One response as it came out.
pub(crate) struct Parsed {
    pub(crate) interim: bool,
    /// Its bytes, `Date` values blanked.
    pub(crate) normalized: Vec<u8>,
}

/// The parts of a response head the checks look at.
struct Head {
    len: usize,
    status: u16,
    content_length: Vec<Vec<u8>>,
    transfer_encoding: Vec<Vec<u8>>,
    connection: Vec<Vec<u8>>,
    dates: Vec<Vec<u8>>,
    servers: Vec<Vec<u8>>,
    content_type: Vec<Vec<u8>>,
    echoed: Vec<Vec<u8>>,
    partial: bool,
}

fn parse_head(bytes: &[u8]) -> Result<Head, String> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut slots);
    let len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Err("truncated response head".into()),
        Err(e) => return Err(format!("malformed response head: {e}")),
    };
    if response.version != Some(1) {
        return Err("not an HTTP/1.1 response".into());
    }
    let mut head = Head {
        len,
        status: response.code.unwrap_or_default(),
        content_length: Vec::new(),
        transfer_encoding: Vec::new(),
        connection: Vec::new(),
        dates: Vec::new(),
        servers: Vec::new(),
        content_type: Vec::new(),
        echoed: Vec::new(),
        partial: false,
    };
    for h in response.headers.iter() {
        let value = h.value.to_vec();
        match h.name.to_ascii_lowercase().as_str() {
            "content-length" => head.content_length.push(value),
            "transfer-encoding" => head.transfer_encoding.push(value),
            "connection" => head.connection.push(value),
            "date" => head.dates.push(value),
            "server" => head.servers.push(value),
            "content-type" => head.content_type.push(value),
            "x-echo" => head.echoed.push(value),
            "x-partial" => head.partial = true,
            _ => {}
        }
    }
    Ok(head)
}

/// Splits the output into responses and checks each against the handler's
/// log, then the whole against the counters. Panics on any violation.
/// `answered_timeouts`: timeouts counted for requests the handler took (a
/// deferred answer not given in time, a streamed body not arriving in time).
pub(crate) fn check_output(
    out: &[u8],
    calls: &[Call],
    stats: &keel::Stats,
    config: &Config,
    closed: bool,
    quiet_close: bool,
    answered_timeouts: u64,
) -> Vec<Parsed> {
    let fail = |at: usize, what: String| -> ! {
        panic!(
            "{what} (response at byte {at})\n--- output:\n{}\n--- handler calls:\n{}--- {stats:?}",
            show(out),
            describe(calls)
        )
    };
    let mut responses = Vec::new();
    let mut pos = 0;
    let mut finals = 0usize;
    let mut last_closes = false;
    let (mut seen_4xx, mut seen_5xx) = (0u64, 0u64);
    while pos < out.len() {
        let rest = &out[pos..];
        let head = parse_head(rest).unwrap_or_else(|e| fail(pos, e));
        let status = head.status;
        if (100..200).contains(&status) && status != 101 {
            if &rest[..head.len] != b"HTTP/1.1 100 Continue\r\n\r\n" {
                fail(pos, "unexpected interim response".into());
            }
            if responses.last().is_some_and(|r: &Parsed| r.interim) {
                fail(pos, "two interim responses in a row".into());
            }
            responses.push(Parsed {
                interim: true,
                normalized: rest[..head.len].to_vec(),
            });
            pos += head.len;
            continue;
        }
        let call = calls.get(finals);
        finals += 1;
        match status {
            400..=499 => seen_4xx += 1,
            500..=599 => seen_5xx += 1,
            _ => {}
        }
        let is_head = call.is_some_and(|c| c.method == "HEAD");
        let closes = head
            .connection
            .iter()
            .any(|v| v.eq_ignore_ascii_case(b"close"));
        let keep_alive_header = head
            .connection
            .iter()
            .any(|v| v.eq_ignore_ascii_case(b"keep-alive"));
        if head.dates.len() != 1 || head.dates[0].len() != 29 {
            fail(pos, "needs one 29-byte Date".into());
        }
        let server: Vec<Vec<u8>> = config
            .server_name
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        if head.servers != server {
            fail(pos, format!("Server headers should be {server:?}"));
        }
        if head.content_length.len() > 1 || head.transfer_encoding.len() > 1 {
            fail(pos, "repeated framing header".into());
        }
        if !head.content_length.is_empty() && !head.transfer_encoding.is_empty() {
            fail(pos, "both Content-Length and Transfer-Encoding".into());
        }
        let length = head.content_length.first().map(|v| {
            std::str::from_utf8(v)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or_else(|| fail(pos, "bad Content-Length".into()))
        });
        let chunked = match head.transfer_encoding.first() {
            None => false,
            Some(v) if v.as_slice() == b"chunked" => true,
            Some(_) => fail(pos, "bad Transfer-Encoding".into()),
        };
        // A 101 ends HTTP on the connection: no body, nothing after it.
        let no_body_status = matches!(status, 101 | 204 | 304);
        if no_body_status && (length.is_some() || chunked) {
            fail(pos, format!("framing header on a {status}"));
        }
        // Where the body ends, by the response's own framing.
        let body_start = head.len;
        let (body, end) = if no_body_status || is_head {
            (Vec::new(), body_start)
        } else if chunked {
            decode_chunked(&rest[body_start..])
                .map(|(body, n)| (body, body_start + n))
                .unwrap_or_else(|e| fail(pos, e))
        } else if let Some(n) = length {
            if rest.len() - body_start < n {
                fail(pos, format!("Content-Length {n} but fewer bytes follow"));
            }
            (rest[body_start..body_start + n].to_vec(), body_start + n)
        } else {
            if !closes {
                fail(
                    pos,
                    "body delimited by close without Connection: close".into(),
                );
            }
            (rest[body_start..].to_vec(), rest.len())
        };
        if closes && pos + end != out.len() {
            fail(pos, "bytes after a Connection: close response".into());
        }
        if status == 101 && pos + end != out.len() {
            fail(pos, "bytes after a 101 Switching Protocols".into());
        }
        last_closes = closes;

        match call {
            Some(call) => {
                let reply = &call.reply;
                if status != reply.status {
                    fail(
                        pos,
                        format!("status {status}, handler wanted {}", reply.status),
                    );
                }
                if closes == reply.keep_alive {
                    fail(
                        pos,
                        format!(
                            "Connection: close is {closes}, keep-alive was {}",
                            reply.keep_alive
                        ),
                    );
                }
                if call.http10 && reply.keep_alive && !keep_alive_header {
                    fail(
                        pos,
                        "HTTP/1.0 keep-alive without Connection: keep-alive".into(),
                    );
                }
                if head.partial {
                    fail(pos, "a panicking handler's half response leaked".into());
                }
                let trim = |v: &Vec<u8>| v.trim_ascii().to_vec();
                let echoed: Vec<Vec<u8>> = reply.echoed.iter().map(trim).collect();
                if head.echoed.iter().map(trim).collect::<Vec<_>>() != echoed {
                    fail(pos, format!("X-Echo headers differ from {echoed:?}"));
                }
                if !no_body_status {
                    let framing_ok = match reply.framing {
                        BodyFraming::Length => length == Some(reply.body.len()),
                        BodyFraming::Chunked => chunked,
                        BodyFraming::UntilClose => length.is_none() && !chunked && closes,
                    };
                    if !framing_ok {
                        fail(pos, format!("framing differs from {:?}", reply.framing));
                    }
                    if !is_head && body != reply.body {
                        fail(pos, "body differs from what the handler wrote".into());
                    }
                }
            }
            None if finals == calls.len() + 1 => {
                // The server's own answer to a refused request, or a 408.
                let known = [400, 408, 413, 414, 417, 431, 501, 505];
                if !known.contains(&status) {
                    fail(pos, format!("unexpected status {status} from the server"));
                }
                if !closes {
                    fail(pos, "an error response must close the connection".into());
                }
                if body.last() != Some(&b'\n') || length != Some(body.len()) {
                    fail(
                        pos,
                        "an error response has a text body with a length".into(),
                    );
                }
                if head.content_type != [b"text/plain; charset=utf-8".to_vec()] {
                    fail(pos, "an error response is text/plain".into());
                }
            }
            None => fail(
                pos,
                "more responses than handler calls plus one error".into(),
            ),
        }
        let mut normalized = rest[..end].to_vec();
        if let Some(at) = find(&normalized[..head.len], b"\r\nDate: ") {
            normalized[at + 8..at + 8 + 29].fill(b'x');
        }
        responses.push(Parsed {
            interim: false,
            normalized,
        });
        pos += end;
    }

    let fail = |what: String| fail(out.len(), what);
    // A streamed body still arriving when the input ended: its call (the
    // last) has no answer yet, and counts as a request.
    let unanswered = calls.iter().filter(|c| c.reply.status == 0).count();
    if unanswered > 1 || (unanswered == 1 && calls.last().is_some_and(|c| c.reply.status != 0)) {
        fail("an unanswered call before the last".into());
    }
    if (finals + unanswered) as u64 != stats.requests {
        fail(format!(
            "{finals} responses, requests counter {}",
            stats.requests
        ));
    }
    let refused = stats.parse_errors + stats.timeouts - answered_timeouts;
    if refused > 1 || calls.len() as u64 + refused != stats.requests {
        fail(format!(
            "{} handler calls do not add up with the counters",
            calls.len()
        ));
    }
    if (finals > calls.len()) != (refused == 1) {
        fail("the server's error response and its counter disagree".into());
    }
    let panics = calls.iter().filter(|c| c.reply.panicked).count() as u64;
    if stats.handler_panics != panics {
        fail(format!(
            "handler_panics {}, {panics} panicked",
            stats.handler_panics
        ));
    }
    if (stats.responses_4xx, stats.responses_5xx) != (seen_4xx, seen_5xx) {
        fail(format!("4xx/5xx counters, saw {seen_4xx}/{seen_5xx}"));
    }
    if stats.bytes_out != out.len() as u64 {
        fail(format!("bytes_out {}", stats.bytes_out));
    }
    if last_closes && !closed {
        fail("still open after Connection: close".into());
    }
    if closed && !last_closes && !quiet_close {
        fail("closed without saying Connection: close".into());
    }
    responses
}

/// Decodes the chunked body at the start of `bytes`, strictly as keel writes
/// it (no extensions, no trailers). Returns the body and the encoded length.
fn decode_chunked(bytes: &[u8]) -> Result<(Vec<u8>, usize), String> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let line_end = find(&bytes[pos..], b"\r\n").ok_or("truncated chunk size")? + pos;
        let digits = std::str::from_utf8(&bytes[pos..line_end]).map_err(|_| "chunk size")?;
        let size =
            usize::from_str_radix(digits, 16).map_err(|_| format!("chunk size {digits:?}"))?;
        if digits.is_empty() || digits.starts_with(['+', '-']) {
            return Err(format!("chunk size {digits:?}"));
        }
        pos = line_end + 2;
        if size == 0 {
            if bytes.get(pos..pos + 2) != Some(&b"\r\n"[..]) {
                return Err("no CRLF after the last chunk".into());
            }
            return Ok((body, pos + 2));
        }
        let data = bytes.get(pos..pos + size).ok_or("truncated chunk")?;
        body.extend_from_slice(data);
        pos += size;
        if bytes.get(pos..pos + 2) != Some(&b"\r\n"[..]) {
            return Err("no CRLF after chunk data".into());
        }
        pos += 2;
    }
}
