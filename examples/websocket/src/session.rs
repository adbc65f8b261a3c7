//! One WebSocket on its own thread: tungstenite over keel's upgraded
//! connection, the echo loop, and how a session ends.

use crate::Limits;
use keel::Upgraded;
use std::io::{self, Read};
use std::time::{Duration, Instant};
use tungstenite::error::Error;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

/// How long a write to a client that does not read may block.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing socket is read (and dropped) so the client reads our
/// close frame rather than a reset; and at most how much.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 16 << 20;

/// A server-side WebSocket over `stream`, its reads bounded by `read_timeout`.
pub(crate) fn open(
    stream: Upgraded,
    limits: Limits,
    read_timeout: Duration,
) -> io::Result<WebSocket<Upgraded>> {
    stream.get_ref().set_read_timeout(Some(read_timeout))?;
    stream.get_ref().set_write_timeout(Some(WRITE_TIMEOUT))?;
    let config = WebSocketConfig::default()
        // One read buffer per socket: keep it small, there may be many.
        .read_buffer_size(16 * 1024)
        .max_message_size(Some(limits.max_message))
        .max_frame_size(Some(limits.max_message));
    Ok(WebSocket::from_raw_socket(
        stream,
        Role::Server,
        Some(config),
    ))
}

/// `/echo`: sends each data message back until the client closes.
pub(crate) fn echo(stream: Upgraded, limits: Limits) {
    let Ok(mut ws) = open(stream, limits, limits.idle) else {
        return;
    };
    loop {
        match ws.read() {
            Ok(message @ (Message::Text(_) | Message::Binary(_))) => {
                if ws.send(message).is_err() {
                    return;
                }
            }
            // Pings are answered and closes acknowledged by tungstenite.
            Ok(_) => {}
            Err(error) => return end(ws, &error),
        }
    }
}

/// Whether `error` is only a read timeout: nothing arrived in time.
pub(crate) fn timed_out(error: &Error) -> bool {
    matches!(error, Error::Io(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
}

/// Ends a session that stopped on `error`: a clean close is done; an idle,
/// oversized or malformed client is told why with a close frame first.
pub(crate) fn end(ws: WebSocket<Upgraded>, error: &Error) {
    let (code, reason) = match error {
        Error::ConnectionClosed | Error::AlreadyClosed => return,
        _ if timed_out(error) => (CloseCode::Away, "idle"),
        Error::Capacity(_) => (CloseCode::Size, "message too big"),
        Error::Utf8(_) => (CloseCode::Invalid, "text is not UTF-8"),
        Error::Protocol(_) => (CloseCode::Protocol, "protocol error"),
        _ => return, // the socket failed: nothing can be said on it
    };
    close(ws, code, reason);
}

/// Sends a close frame with `code`, then reads and drops what the client
/// still sends (a bounded while) so it reads the frame, not a reset.
pub(crate) fn close(mut ws: WebSocket<Upgraded>, code: CloseCode, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if ws.close(Some(frame)).is_err() {
        return;
    }
    let mut stream = ws.into_inner();
    let _ = stream.get_ref().shutdown(std::net::Shutdown::Write);
    let _ = stream.get_ref().set_read_timeout(Some(LINGER));
    let started = Instant::now();
    let mut scratch = [0u8; 16 * 1024];
    let mut drained = 0;
    while started.elapsed() < LINGER && drained < LINGER_BYTES {
        match stream.read(&mut scratch) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}
