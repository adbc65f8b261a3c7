//! The fast attacks, each on blocking sockets in threads of its own:
//! connection churn, a pipelined flood that never reads, and heads just
//! under every limit as fast as the server answers them.

use super::http;
use super::{AttackReport, Stop};
use socket2::SockRef;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Connects and closes as fast as one thread can, until `stop`: every other
/// connection sends `request` before its close, none reads. Each close is a
/// reset (`SO_LINGER` 0), so the client's ports do not pile up in
/// `TIME_WAIT`.
pub fn churn(addr: SocketAddr, request: &[u8], stop: &Stop) -> AttackReport {
    let started = Instant::now();
    let mut report = AttackReport::default();
    let mut sends = false;
    while !stop.is_set() {
        let stream = match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(stream) => stream,
            Err(_) => {
                report.connect_errors += 1;
                continue;
            }
        };
        report.connects += 1;
        sends = !sends;
        if sends {
            match (&stream).write(request) {
                Ok(n) => {
                    report.bytes_sent += n as u64;
                    report.requests += 1;
                }
                Err(_) => report.closed_by_server += 1,
            }
        }
        // Not fatal: without it the close is a FIN and the port waits a while.
        let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    }
    report.seconds = started.elapsed().as_secs_f64();
    report
}

/// Writes `request` back to back on one connection, never reading, until
/// `stop` or until `max_bytes` are written (then it holds the connection,
/// still not reading: the run stays bounded in traffic, and in the memory of
/// a server that buffers every answer); opens another when the server closes
/// it. The writes block once the server stops reading (its answers fill both
/// socket buffers): `requests` counts what the server took in.
pub fn pipeline(addr: SocketAddr, request: &[u8], max_bytes: u64, stop: &Stop) -> AttackReport {
    let started = Instant::now();
    let mut report = AttackReport::default();
    let batch = request.repeat((64 * 1024 / request.len()).max(1));
    let mut conn: Option<(TcpStream, usize)> = None;
    while !stop.is_set() {
        if report.bytes_sent >= max_bytes {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let (stream, offset) = match conn.as_mut() {
            Some(open) => open,
            None => match connect_with_timeouts(addr) {
                Ok(stream) => {
                    report.connects += 1;
                    conn.insert((stream, 0))
                }
                Err(_) => {
                    report.connect_errors += 1;
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        match stream.write(&batch[*offset..]) {
            Ok(0) => {}
            Ok(n) => {
                report.bytes_sent += n as u64;
                *offset = (*offset + n) % batch.len();
            }
            Err(e) if is_timeout(&e) => {}
            Err(_) => {
                report.closed_by_server += 1;
                conn = None;
            }
        }
    }
    report.requests = report.bytes_sent / request.len() as u64;
    report.held = usize::from(conn.is_some());
    report.seconds = started.elapsed().as_secs_f64();
    report
}

/// One connection sending `request` (a maximal head), reading each answer
/// before the next, until `stop`; opens another when the server closes it.
/// `responses` counts the answers with status `expect`.
pub fn header_flood(addr: SocketAddr, request: &[u8], expect: u16, stop: &Stop) -> AttackReport {
    let started = Instant::now();
    let mut report = AttackReport::default();
    let mut conn: Option<TcpStream> = None;
    let mut buf = Vec::new();
    while !stop.is_set() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let stream = match conn.as_mut() {
            Some(stream) => stream,
            None => match http::connect(addr, deadline) {
                Ok(stream) => {
                    report.connects += 1;
                    buf.clear();
                    conn.insert(stream)
                }
                Err(_) => {
                    report.connect_errors += 1;
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        let answered = http::send(stream, request, deadline)
            .and_then(|()| http::read_response(stream, &mut buf, false, deadline));
        report.requests += 1;
        match answered {
            Ok(answer) => {
                report.bytes_sent += request.len() as u64;
                report.bytes_read += answer.body_len as u64;
                if answer.status == expect {
                    report.responses += 1;
                }
            }
            Err(_) => {
                report.closed_by_server += 1;
                conn = None;
            }
        }
    }
    report.held = usize::from(conn.is_some());
    report.seconds = started.elapsed().as_secs_f64();
    report
}

/// A request head just under keel's (and hyper's) default limits: a target of
/// `target_len` bytes (`path?q=aaaa...`), then `fields` header fields in all
/// (`Host` among them), padded so that the whole head is `head_len` bytes.
///
/// # Panics
///
/// When the sizes do not fit together (a target longer than the head).
pub fn maximal_head(path: &str, target_len: usize, fields: usize, head_len: usize) -> Vec<u8> {
    let pad = target_len.saturating_sub(path.len() + 3);
    let target = format!("{path}?q={}", "a".repeat(pad));
    let mut head = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    let filler = fields.saturating_sub(1);
    // Each field is "X-Fill-NNN: " + value + CRLF; the last CRLF ends the head.
    let room = head_len
        .checked_sub(head.len() + 2)
        .expect("the head has room after its target");
    for i in 0..filler {
        let name = format!("X-Fill-{i:03}: ");
        let share = room / filler - name.len() - 2;
        // The first field takes what the division leaves over.
        let extra = if i == 0 { room % filler } else { 0 };
        head.push_str(&name);
        head.push_str(&"v".repeat(share + extra));
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

fn connect_with_timeouts(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    // The write timeout lets the loop see `stop` while the server does not read.
    stream.set_write_timeout(Some(Duration::from_millis(100)))?;
    Ok(stream)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maximal_head_has_the_sizes_asked() {
        let head = maximal_head("/plaintext", 8000, 99, 16000);
        assert_eq!(head.len(), 16000);
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut headers);
        assert_eq!(req.parse(&head).unwrap(), httparse::Status::Complete(16000));
        assert_eq!(req.path.unwrap().len(), 8000);
        assert!(req.path.unwrap().starts_with("/plaintext?q=a"));
        assert_eq!(req.headers.len(), 99);
    }
}
