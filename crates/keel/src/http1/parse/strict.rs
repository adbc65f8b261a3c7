//! The strict rules httparse does not apply itself: CRLF line ends, the
//! bytes RFC 3986 allows in a request target, and `HTTP/1.x` (x > 1) served
//! as HTTP/1.1. Each rule is relaxed by one [`crate::Leniency`] field.

use super::{byte_class, skip_empty_lines};

/// Whether every line end of a head httparse accepted is CRLF (RFC 9112
/// §2.2: a bare LF is a line end a recipient MAY accept; behind a front end
/// that does not, the two read different messages, so strict refuses it).
/// The empty lines before the request line are held to the same rule: a
/// bare LF there is refused too (strict mode skips CRLF ones only).
///
/// No scan of the head: httparse passes no CR that is not followed by an LF
/// and no obs-fold, so each line but the first starts right after an LF,
/// and the lines are the request line, one per header field (whose name
/// httparse points at), and the final empty line. Checking the byte before
/// each of those LFs costs one comparison a line.
pub(super) fn line_ends_are_crlf(
    head: &[u8],
    method: &str,
    headers: &[httparse::Header<'_>],
) -> bool {
    let offset = |field: &str| field.as_ptr() as usize - head.as_ptr() as usize;
    let skipped = offset(method);
    let leading_crlf = head[..skipped].chunks(2).all(|pair| pair == b"\r\n");
    // The final empty line, which must be CRLF too.
    let Some(last_line) = head.len().checked_sub(2) else {
        return false;
    };
    // No early exit: a load and a compare a line, no branch.
    let ends_crlf = |line_start: usize| head.get(line_start.wrapping_sub(2)) == Some(&b'\r');
    let fields_crlf = headers
        .iter()
        .fold(true, |ok, h| ok & ends_crlf(offset(h.name)));
    leading_crlf & fields_crlf & ends_crlf(last_line) & (head[last_line] == b'\r')
}

/// In [`PATH_AND_QUERY`]: RFC 3986 allows the byte in a path or a query.
const ALLOWED: u8 = 1;
/// In [`PATH_AND_QUERY`]: the byte is not `%`, which starts an escape.
const NOT_PERCENT: u8 = 2;

/// Bytes RFC 3986 allows in the path and query of a request target
/// (RFC 9112 §3.2, RFC 3986 §3.3, §3.4): unreserved, sub-delims, `:`, `@`,
/// `/`, `?`, and `%` (which must start a `%XX` escape). Not `#` (a fragment
/// is never sent), and `[`/`]` only in an IP-literal authority. Two bits a
/// byte, so that one pass also tells whether any `%` needs a look.
static PATH_AND_QUERY: [u8; 256] = {
    let allowed = byte_class(b"-._~!$&'()*+,;=:@/?%", true);
    let mut table = [0; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = match (allowed[b], b == b'%' as usize) {
            (false, _) => 0,
            (true, true) => ALLOWED,
            (true, false) => ALLOWED | NOT_PERCENT,
        };
        b += 1;
    }
    table
};

/// Whether the path and query of a target (origin-form, or what follows the
/// authority of an absolute-form one) hold only the bytes RFC 3986 allows,
/// each `%` followed by two hex digits (RFC 3986 §2.1). One table lookup and
/// AND a byte, no early exit; the escapes get a second look only when there
/// is a `%` (in few targets).
pub(super) fn is_path_and_query(bytes: &[u8]) -> bool {
    let all = bytes.iter().fold(ALLOWED | NOT_PERCENT, |all, &b| {
        all & PATH_AND_QUERY[b as usize]
    });
    all & ALLOWED != 0 && (all & NOT_PERCENT != 0 || escapes_are_complete(bytes))
}

/// Whether each `%` in `bytes` is followed by two hex digits.
fn escapes_are_complete(bytes: &[u8]) -> bool {
    bytes
        .split(|&b| b == b'%')
        .skip(1)
        .all(|after| after.len() >= 2 && after[..2].iter().all(u8::is_ascii_hexdigit))
}

/// RFC 9110 §2.5, §6.2: a request line with `HTTP/1.x`, x > 1, is a minor
/// version we do not speak but whose major we do; the server answers as
/// HTTP/1.1. httparse refuses such a version, so once the request line is
/// complete its minor digit is rewritten to `1` in the connection's own
/// buffer, and the head parsed again. Only a complete line is rewritten, so
/// the verdict is the same however the bytes were split.
///
/// Returns whether it rewrote the digit (`false`: a version we refuse).
pub(crate) fn serve_later_minor_as_1_1(buf: &mut [u8]) -> bool {
    let skipped = buf.len() - skip_empty_lines(buf).len();
    let Some(line_len) = buf[skipped..].iter().position(|&b| b == b'\n') else {
        return false;
    };
    let line = &buf[skipped..skipped + line_len];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // ` HTTP/1.` and one digit 2-9 end the line.
    let Some(version_at) = line.len().checked_sub(9) else {
        return false;
    };
    if &line[version_at..version_at + 8] != b" HTTP/1."
        || !(b'2'..=b'9').contains(&line[version_at + 8])
    {
        return false;
    }
    buf[skipped + version_at + 8] = b'1';
    true
}
