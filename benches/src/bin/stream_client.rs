//! The load client of `load/streams.sh`: drives the streaming contract of
//! `keel_benches::streams` with std threads and blocking sockets, doing less
//! work than the server (large writes and reads, no copies of the body).
//!
//! - `upload --bytes N [--chunked]`: one `POST /upload` of `N` bytes of the
//!   pattern, generated on the fly, never stored; checks the answered
//!   SHA-256 (computed before the clock starts).
//! - `download --bytes N`: one `GET /download?bytes=N`, counted.
//! - `sse --clients C --seconds S [--pause-ms P]`: `C` connections to
//!   `GET /events`, one thread each; after all are in and a second of
//!   warm-up, counts the events they receive for `S` seconds, and checks that
//!   each client saw consecutive event numbers. A client that has read all
//!   there was sleeps `P` ms (default 50) so that events gather in its
//!   socket: a thousand threads on one core woken once per event would make
//!   the client, not the server, the limit.
//!
//! Prints a line for people and one `RESULT mode=... key=value...` line for
//! the script. Exits 1 on any failed check or connection.
#![forbid(unsafe_code)]

use keel_benches::streams::{
    self, read_body, read_head, BodyDecoder, EventCounter, Framing, ReadBuf, PATTERN_PERIOD,
};
use sha2::{Digest, Sha256};
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: stream_client MODE [--addr HOST:PORT] [options]
  upload   --bytes N [--chunked] [--discard]
                                  POST /upload of N bytes (Content-Length, or chunked);
                                  --discard: to /discard, counted rather than hashed
  download --bytes N [--piece P]   GET /download?bytes=N[&piece=P]: the body asked for in
                                  pieces of P bytes (servers that can, keel's)
  sse      --clients C --seconds S [--pause-ms P]
           C clients of GET /events for S seconds; a client that has read
           all there was waits P ms (default 50) before reading again
  --addr   the server (default 127.0.0.1:8083)
  N takes a K, M or G suffix (powers of 1024)";

/// Bytes per upload write: a whole number of pattern periods near 256 KiB,
/// so that the same block sent again continues the pattern.
const UPLOAD_BLOCK: usize = PATTERN_PERIOD * 1024;

/// Read buffer of an upload or download connection.
const READ_BUFFER: usize = 256 * 1024;

/// Read buffer of one SSE client (there are many).
const SSE_READ_BUFFER: usize = 16 * 1024;

/// How long an SSE client that has read all there was waits, by default,
/// before it reads again (`--pause-ms`).
const SSE_PAUSE_MS: u64 = 50;

/// How often an idle SSE client looks at the clock.
const SSE_TICK: Duration = Duration::from_millis(100);

/// Between the last client's connection and the start of the count.
const SSE_WARM_UP: Duration = Duration::from_secs(1);

/// How long the clients may take to connect and get their response heads.
const SSE_CONNECT_DEADLINE: Duration = Duration::from_secs(30);

enum Mode {
    Upload {
        bytes: u64,
        chunked: bool,
        /// To `POST /discard` (counted, not hashed), checking the count.
        discard: bool,
    },
    Download {
        bytes: u64,
        /// Asks for pieces of this many bytes (`&piece=N`), if given.
        piece: Option<u64>,
    },
    Sse {
        clients: usize,
        seconds: u64,
        pause: Duration,
    },
}

fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, scale) = match text.as_bytes().last() {
        Some(b'K' | b'k') => (&text[..text.len() - 1], 1 << 10),
        Some(b'M' | b'm') => (&text[..text.len() - 1], 1 << 20),
        Some(b'G' | b'g') => (&text[..text.len() - 1], 1 << 30),
        _ => (text, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or(format!("not a size: {text:?}"))
}

/// `Err("")` asks for the usage text.
fn parse_args() -> Result<(Mode, SocketAddr), String> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let (mut addr, mut bytes, mut chunked) = ("127.0.0.1:8083".to_owned(), None, false);
    let (mut clients, mut seconds, mut pause_ms) = (None, None, SSE_PAUSE_MS);
    let mut discard = false;
    let mut piece = None;
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "--addr" => addr = value("--addr")?,
            "--bytes" => bytes = Some(parse_size(&value("--bytes")?)?),
            "--chunked" => chunked = true,
            "--discard" => discard = true,
            "--piece" => piece = Some(parse_size(&value("--piece")?)?),
            "--clients" => clients = Some(parse_size(&value("--clients")?)?),
            "--seconds" => seconds = Some(parse_size(&value("--seconds")?)?),
            "--pause-ms" => pause_ms = parse_size(&value("--pause-ms")?)?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let mode = match mode.as_str() {
        "upload" => Mode::Upload {
            bytes: bytes.ok_or("upload needs --bytes")?,
            chunked,
            discard,
        },
        "download" => Mode::Download {
            bytes: bytes.ok_or("download needs --bytes")?,
            piece,
        },
        "sse" => Mode::Sse {
            clients: match clients.map(usize::try_from) {
                Some(Ok(n)) if n > 0 => n,
                _ => return Err("sse needs --clients, at least 1".to_owned()),
            },
            seconds: match seconds {
                Some(n) if n > 0 => n,
                _ => return Err("sse needs --seconds, at least 1".to_owned()),
            },
            pause: Duration::from_millis(pause_ms),
        },
        "-h" | "--help" => return Err(String::new()),
        other => return Err(format!("unknown mode {other:?}")),
    };
    let addr = addr
        .parse()
        .map_err(|_| format!("--addr: not HOST:PORT: {addr:?}"))?;
    Ok((mode, addr))
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn megabytes_per_second(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

/// Sends `bytes` of the pattern as the body of `POST /upload`.
fn send_upload(
    stream: &mut TcpStream,
    addr: SocketAddr,
    bytes: u64,
    chunked: bool,
    path: &str,
) -> io::Result<()> {
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {bytes}")
    };
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\n{framing}\r\n\r\n"
    )?;
    let block = streams::pattern(UPLOAD_BLOCK);
    // A whole block as one chunk, framing included, built once.
    let chunk = if chunked {
        let mut chunk = format!("{UPLOAD_BLOCK:x}\r\n").into_bytes();
        chunk.extend_from_slice(&block);
        chunk.extend_from_slice(b"\r\n");
        chunk
    } else {
        block.clone()
    };
    let mut left = bytes;
    while left >= UPLOAD_BLOCK as u64 {
        stream.write_all(&chunk)?;
        left -= UPLOAD_BLOCK as u64;
    }
    // What is left is shorter than a block, so it fits in usize.
    let tail = &block[..left as usize];
    if chunked {
        if !tail.is_empty() {
            write!(stream, "{:x}\r\n", tail.len())?;
            stream.write_all(tail)?;
            stream.write_all(b"\r\n")?;
        }
        stream.write_all(b"0\r\n\r\n")?;
    } else {
        stream.write_all(tail)?;
    }
    Ok(())
}

fn upload(addr: SocketAddr, bytes: u64, chunked: bool, discard: bool) -> Result<(), String> {
    // The expected answer (the digest, or the length), before the clock starts.
    let expected = if discard {
        bytes.to_string()
    } else {
        let block = streams::pattern(UPLOAD_BLOCK);
        let mut hasher = Sha256::new();
        let mut left = bytes;
        while left > 0 {
            let len = usize::try_from(left).map_or(UPLOAD_BLOCK, |left| left.min(UPLOAD_BLOCK));
            hasher.update(&block[..len]);
            left -= len as u64;
        }
        streams::hex(&hasher.finalize())
    };
    let path = if discard { "/discard" } else { "/upload" };

    let started = Instant::now();
    let mut stream = connect(addr).map_err(|e| format!("connect: {e}"))?;
    send_upload(&mut stream, addr, bytes, chunked, path).map_err(|e| format!("sending: {e}"))?;
    let mut buf = ReadBuf::new(READ_BUFFER);
    let head = read_head(&mut stream, &mut buf).map_err(|e| format!("response: {e}"))?;
    let mut answer = Vec::new();
    let mut decoder = BodyDecoder::new(head.framing);
    read_body(&mut stream, &mut buf, &mut decoder, |data| {
        answer.extend_from_slice(data);
    })
    .map_err(|e| format!("response body: {e}"))?;
    let elapsed = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    if head.status != 200 || answer.trim() != expected {
        return Err(format!(
            "upload: status {}, {} {:?}, expected {expected}",
            head.status,
            if discard { "length" } else { "digest" },
            answer.trim()
        ));
    }
    let rate = megabytes_per_second(bytes, elapsed);
    let framing = if chunked { "chunked" } else { "length" };
    println!(
        "upload: {bytes} bytes ({framing}) to {path} in {:.3} s: {rate:.1} MB/s, answer checked",
        elapsed.as_secs_f64()
    );
    println!(
        "RESULT mode=upload framing={framing} bytes={bytes} seconds={:.6} mb_per_s={rate:.2}",
        elapsed.as_secs_f64()
    );
    Ok(())
}

fn download(addr: SocketAddr, bytes: u64, piece: Option<u64>) -> Result<(), String> {
    let started = Instant::now();
    let mut stream = connect(addr).map_err(|e| format!("connect: {e}"))?;
    write!(
        stream,
        "GET /download?bytes={bytes}{} HTTP/1.1\r\nHost: {addr}\r\n\r\n",
        piece.map(|n| format!("&piece={n}")).unwrap_or_default()
    )
    .map_err(|e| format!("sending: {e}"))?;
    let mut buf = ReadBuf::new(READ_BUFFER);
    let head = read_head(&mut stream, &mut buf).map_err(|e| format!("response: {e}"))?;
    if head.status != 200 {
        return Err(format!("download: status {}", head.status));
    }
    let framing = match head.framing {
        Framing::Length(_) => "length",
        Framing::Chunked => "chunked",
    };
    let mut received = 0u64;
    let mut decoder = BodyDecoder::new(head.framing);
    read_body(&mut stream, &mut buf, &mut decoder, |data| {
        received += data.len() as u64;
    })
    .map_err(|e| format!("download body after {received} bytes: {e}"))?;
    let elapsed = started.elapsed();
    if received != bytes {
        return Err(format!("download: {received} bytes, asked for {bytes}"));
    }
    let rate = megabytes_per_second(bytes, elapsed);
    println!(
        "download: {bytes} bytes ({framing}) in {:.3} s: {rate:.1} MB/s",
        elapsed.as_secs_f64()
    );
    println!(
        "RESULT mode=download framing={framing} bytes={bytes} seconds={:.6} mb_per_s={rate:.2}",
        elapsed.as_secs_f64()
    );
    Ok(())
}

/// What one SSE client saw.
struct SseCount {
    /// Events received in the counted window.
    events: u64,
    /// Whether the event numbers it received were consecutive.
    consecutive: bool,
}

/// One SSE client: connects, reads its head (then counts in `settled`), and
/// reads until the window set by the main thread has passed.
fn sse_client(
    addr: SocketAddr,
    settled: &AtomicUsize,
    window: &OnceLock<(Instant, Instant)>,
    pause: Duration,
) -> Result<SseCount, String> {
    let setup = || -> Result<(TcpStream, ReadBuf, BodyDecoder), String> {
        let mut stream = connect(addr).map_err(|e| format!("connect: {e}"))?;
        stream
            .set_read_timeout(Some(SSE_CONNECT_DEADLINE))
            .map_err(|e| e.to_string())?;
        write!(stream, "GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n")
            .map_err(|e| format!("sending: {e}"))?;
        let mut buf = ReadBuf::new(SSE_READ_BUFFER);
        let head = read_head(&mut stream, &mut buf).map_err(|e| format!("response: {e}"))?;
        if head.status != 200 {
            return Err(format!("events: status {}", head.status));
        }
        stream
            .set_read_timeout(Some(SSE_TICK))
            .map_err(|e| e.to_string())?;
        Ok((stream, buf, BodyDecoder::new(head.framing)))
    };
    let result = setup();
    settled.fetch_add(1, Ordering::Release);
    let (mut stream, mut buf, mut decoder) = result?;

    let mut counter = EventCounter::default();
    // The last event before the window, once it has started.
    let mut before_window: Option<Option<u64>> = None;
    loop {
        let used = decoder
            .decode(buf.data(), |data| counter.feed(data))
            .map_err(|e| e.to_string())?;
        buf.consume(used);
        if decoder.is_done() {
            return Err("the server ended the event stream".to_owned());
        }
        counter.settle();
        match buf.fill(&mut stream) {
            Ok(0) => return Err("the server closed the event stream".to_owned()),
            // Caught up: let events gather in the socket rather than wake
            // this thread for each one (all the clients share one core).
            Ok(n) if n < SSE_READ_BUFFER / 2 => thread::sleep(pause),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(format!("reading events: {e}")),
        }
        // A read that returns after a bound counts on the far side of it.
        if let Some(&(start, end)) = window.get() {
            let now = Instant::now();
            if now >= start && before_window.is_none() {
                before_window = Some(counter.last_event());
            }
            if now >= end {
                break;
            }
        }
    }
    let events = match (before_window.flatten(), counter.last_event()) {
        (Some(before), Some(last)) => last.saturating_sub(before),
        // No event before the window: all it saw came in it.
        (None, Some(last)) => counter
            .first_event()
            .map_or(0, |first| (last + 1).saturating_sub(first)),
        _ => 0,
    };
    let consecutive = counter.consecutive();
    Ok(SseCount {
        events,
        consecutive,
    })
}

fn sse(addr: SocketAddr, clients: usize, seconds: u64, pause: Duration) -> Result<(), String> {
    let settled = Arc::new(AtomicUsize::new(0));
    let window = Arc::new(OnceLock::new());
    let mut threads = Vec::with_capacity(clients);
    for i in 0..clients {
        let (settled, shared_window) = (Arc::clone(&settled), Arc::clone(&window));
        let spawned = thread::Builder::new()
            .name(format!("sse-{i}"))
            .stack_size(256 * 1024)
            .spawn(move || sse_client(addr, &settled, &shared_window, pause));
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                // Let the ones started stop at once.
                let _ = window.set((Instant::now(), Instant::now()));
                return Err(format!("thread {i}: {e}"));
            }
        }
    }
    let deadline = Instant::now() + SSE_CONNECT_DEADLINE;
    while settled.load(Ordering::Acquire) < clients && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(SSE_WARM_UP);
    let start = Instant::now();
    let _ = window.set((start, start + Duration::from_secs(seconds)));
    let (mut total, mut least, mut most, mut failures, mut gaps) = (0u64, u64::MAX, 0u64, 0, 0);
    let mut first_error = None;
    for handle in threads {
        match handle.join() {
            Ok(Ok(count)) => {
                total += count.events;
                least = least.min(count.events);
                most = most.max(count.events);
                gaps += usize::from(!count.consecutive);
            }
            Ok(Err(e)) => {
                failures += 1;
                first_error.get_or_insert(e);
            }
            Err(_) => {
                failures += 1;
                first_error.get_or_insert("a client thread panicked".to_owned());
            }
        }
    }
    if let Some(e) = first_error {
        return Err(format!(
            "sse: {failures} of {clients} clients failed, first: {e}"
        ));
    }
    if gaps > 0 {
        return Err(format!(
            "sse: {gaps} of {clients} clients missed or repeated events"
        ));
    }
    let rate = total as f64 / seconds as f64;
    println!(
        "sse: {clients} clients, {seconds} s: {total} events, {rate:.0} events/s \
         (per client {least} to {most}), all consecutive"
    );
    println!(
        "RESULT mode=sse clients={clients} seconds={seconds} events={total} events_per_s={rate:.0} \
         least={least} most={most}"
    );
    Ok(())
}

fn main() -> ExitCode {
    let (mode, addr) = match parse_args() {
        Ok(parsed) => parsed,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("stream_client: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match mode {
        Mode::Upload {
            bytes,
            chunked,
            discard,
        } => upload(addr, bytes, chunked, discard),
        Mode::Download { bytes, piece } => download(addr, bytes, piece),
        Mode::Sse {
            clients,
            seconds,
            pause,
        } => sse(addr, clients, seconds, pause),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stream_client: {e}");
            ExitCode::FAILURE
        }
    }
}
