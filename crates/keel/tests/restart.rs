//! Replacing a running server with a new process, for real: this test
//! binary starts itself again (an ignored test, `successor`, chosen by
//! `KEEL_RESTART_ROLE`) with `spawn_successor`, handing over its listening
//! sockets, while clients send keep-alive and `Connection: close` requests
//! throughout; then the old server drains. Not one request may fail or see
//! a reset. The successor's failures (exits at once, never reports) leave
//! the old server serving.

use keel::{spawn_successor, InheritedListener, Request, Response, Server, ServerHandle};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which successor to be (the child test does nothing without it).
const ROLE: &str = "KEEL_RESTART_ROLE";

/// Answers with the pid of the process that answered.
fn serve(server: Server) -> ServerHandle {
    server
        .workers(2)
        .serve(|_req: &Request<'_>, res: &mut Response<'_>| {
            res.body_bytes(std::process::id().to_string().into());
        })
        .expect("the server starts")
}

/// This test binary as the successor `role`, with stdin piped (its end
/// stops it).
fn successor_command(role: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--ignored", "--exact", "successor", "--test-threads=1"])
        .env(ROLE, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    command
}

fn handed(server: &ServerHandle) -> Vec<InheritedListener> {
    let listeners = server.listeners().expect("the server's sockets");
    let named = listeners.into_iter().map(|listener| InheritedListener {
        listener,
        name: Some("http".to_owned()),
    });
    named.collect()
}

/// The successor: serves on what it inherited, says so, and stops when
/// its stdin ends. `fail` exits before serving (a bad flag, a store it
/// cannot open); `hang` serves but never reports.
#[test]
#[ignore = "run by the tests above as the successor process"]
fn successor() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let inherited = keel::systemd_listeners().expect("the sockets and the channel");
    assert!(inherited.iter().all(|l| l.name.as_deref() == Some("http")));
    if role == "fail" {
        std::process::exit(3);
    }
    let server = serve(Server::from_listeners(
        inherited.into_iter().map(|l| l.listener),
    ));
    if role != "hang" {
        assert!(keel::notify_predecessor().unwrap(), "a predecessor waits");
    }
    let _ = io::stdin().read_to_end(&mut Vec::new());
    server.shutdown(Duration::from_secs(5));
    server.join();
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    resets: AtomicU64,
    /// Answers from each process (pid, count).
    by_pid: Mutex<Vec<(u32, u64)>>,
    /// The first few failures, in words.
    reasons: Mutex<Vec<String>>,
    /// The longest request, connect (when it made one) to last byte.
    slowest_us: AtomicU64,
}

impl Tally {
    fn record(&self, outcome: io::Result<u32>, took: Duration) {
        self.slowest_us
            .fetch_max(took.as_micros() as u64, Ordering::Relaxed);
        match outcome {
            Ok(pid) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                let mut by_pid = self.by_pid.lock().unwrap();
                match by_pid.iter_mut().find(|(p, _)| *p == pid) {
                    Some((_, n)) => *n += 1,
                    None => by_pid.push((pid, 1)),
                }
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if e.kind() == io::ErrorKind::ConnectionReset {
                    self.resets.fetch_add(1, Ordering::Relaxed);
                }
                let mut reasons = self.reasons.lock().unwrap();
                if reasons.len() < 10 {
                    reasons.push(e.to_string());
                }
            }
        }
    }

    fn answered_by(&self, pid: u32) -> u64 {
        let by_pid = self.by_pid.lock().unwrap();
        by_pid
            .iter()
            .find(|(p, _)| *p == pid)
            .map_or(0, |(_, n)| *n)
    }
}

/// Reads one `200` response: its head (lower-cased) and body.
fn read_200(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<(String, String)> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut chunk)? {
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed before an answer",
                ))
            }
            n => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200 ") {
        return Err(io::Error::other(format!("not a 200: {head}")));
    }
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no content-length"))?;
    while buf.len() < head_end + length {
        match stream.read(&mut chunk)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
    Ok((head, body))
}

fn says_close(head: &str) -> bool {
    head.contains("\r\nconnection: close\r\n")
}

/// Reads one response: the answering pid, and whether it closes.
fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<(u32, bool)> {
    let (head, body) = read_200(stream, buf)?;
    let pid = body.parse().map_err(|_| io::Error::other("not a pid"))?;
    Ok((pid, says_close(&head)))
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(stream)
}

/// Sends requests until `stop`: on one connection while the server keeps
/// it open (`keep_alive`), or each on a new one with `Connection: close`.
fn client(addr: SocketAddr, keep_alive: bool, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let request: &[u8] = if keep_alive {
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    } else {
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    };
    let mut open: Option<TcpStream> = None;
    let mut buf = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let outcome = (|| {
            let stream = match &mut open {
                Some(stream) => stream,
                None => open.insert(connect(addr)?),
            };
            stream.write_all(request)?;
            read_response(stream, &mut buf)
        })();
        let closes = !keep_alive || !matches!(outcome, Ok((_, false)));
        if closes {
            open = None;
        }
        tally.record(outcome.map(|(pid, _)| pid), started.elapsed());
    }
}

/// Runs `clients` keep-alive and `Connection: close` clients against
/// `addr` until the returned stop is called.
fn load(addr: SocketAddr, tally: &Arc<Tally>) -> impl FnOnce() {
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = [true, true, false, false]
        .into_iter()
        .map(|keep_alive| {
            let (stop, tally) = (Arc::clone(&stop), Arc::clone(tally));
            std::thread::spawn(move || client(addr, keep_alive, stop, tally))
        })
        .collect();
    move || {
        stop.store(true, Ordering::Relaxed);
        threads.into_iter().for_each(|t| t.join().unwrap());
    }
}

fn wait_for(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(10), "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_successor_takes_over_the_sockets_and_no_request_fails() {
    let old = serve(Server::bind("127.0.0.1:0"));
    let addr = old.local_addr();
    let tally = Arc::new(Tally::default());
    let stop = load(addr, &tally);
    let me = std::process::id();
    wait_for("the old server answers", || tally.answered_by(me) > 100);

    let mut successor = spawn_successor(successor_command("serve"), &handed(&old)).unwrap();
    successor.wait_ready(Duration::from_secs(20)).unwrap();
    let new = successor.id();
    old.retire(Duration::from_secs(5));
    old.join();
    let after_old_stopped = tally.answered_by(new);
    wait_for("the successor answers", || {
        tally.answered_by(new) > after_old_stopped + 200
    });
    stop();

    let mut child = successor.into_child();
    let reasons = tally.reasons.lock().unwrap().clone();
    let (ok, failed) = (
        tally.ok.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    eprintln!(
        "{ok} answers ({} old, {} new), {failed} failed, {} resets, slowest {} us",
        tally.answered_by(me),
        tally.answered_by(new),
        tally.resets.load(Ordering::Relaxed),
        tally.slowest_us.load(Ordering::Relaxed)
    );
    assert_eq!(failed, 0, "failures: {reasons:?}");
    assert_eq!(tally.resets.load(Ordering::Relaxed), 0);
    assert!(tally.answered_by(me) > 0 && tally.answered_by(new) > 0);
    // Both sockets of `bind`'s two workers went over (each has its own
    // queue, which the kernel picks by the connection's hash): with the
    // old process gone, the successor answers every new connection.
    let fresh = Tally::default();
    for _ in 0..50 {
        let mut stream = connect(addr).unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        fresh.record(
            read_response(&mut stream, &mut Vec::new()).map(|(p, _)| p),
            Duration::ZERO,
        );
    }
    assert_eq!(fresh.answered_by(new), 50);
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_successor_that_fails_to_start_leaves_the_old_server_serving() {
    let old = serve(Server::bind("127.0.0.1:0"));
    let addr = old.local_addr();
    let me = std::process::id();
    for (role, timeout, kind) in [
        (
            "fail",
            Duration::from_secs(20),
            io::ErrorKind::UnexpectedEof,
        ),
        ("hang", Duration::from_millis(500), io::ErrorKind::TimedOut),
    ] {
        let mut successor = spawn_successor(successor_command(role), &handed(&old)).unwrap();
        let error = successor.wait_ready(timeout).unwrap_err();
        assert_eq!(error.kind(), kind, "{role}: {error}");
        // Reaped: exited on its own, or killed for not reporting.
        let mut child = successor.into_child();
        assert!(child.try_wait().unwrap().is_some(), "{role}: gone");
        // The old server still has its sockets, and answers on them.
        let tally = Tally::default();
        for _ in 0..20 {
            let mut stream = connect(addr).unwrap();
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            tally.record(
                read_response(&mut stream, &mut Vec::new()).map(|(p, _)| p),
                Duration::ZERO,
            );
        }
        assert_eq!(tally.answered_by(me), 20, "{role}: the old server answers");
        assert_eq!(old.listeners().unwrap().len(), 2, "both workers' sockets");
    }
    old.shutdown(Duration::ZERO);
    old.join();
    assert!(TcpStream::connect(addr).is_err(), "closed at the end");
}

/// The race a drain must not lose: a handler wrote its answer (its head
/// saying keep-alive) and the shutdown began before it returned. The
/// connection must stay open as promised, so that the client's next
/// request, sent at once, is answered (with `Connection: close`) instead
/// of finding the connection closed. (Closing it anyway failed about one
/// wrk request in three restarts of the shortener under load.)
#[test]
fn an_answer_that_promised_keep_alive_keeps_it_when_the_drain_begins_meanwhile() {
    let entered = Arc::new(AtomicBool::new(false));
    let release = Arc::new(AtomicBool::new(false));
    let (entered_in, release_in) = (Arc::clone(&entered), Arc::clone(&release));
    let server = Server::bind("127.0.0.1:0")
        .workers(1)
        .serve(move |req: &Request<'_>, res: &mut Response<'_>| {
            res.body(req.path().as_bytes());
            if req.path() == "/slow" {
                entered_in.store(true, Ordering::SeqCst);
                while !release_in.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })
        .unwrap();
    let mut stream = connect(server.local_addr()).unwrap();
    let mut buf = Vec::new();
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    wait_for("the handler runs", || entered.load(Ordering::SeqCst));
    server.shutdown(Duration::from_secs(5));
    release.store(true, Ordering::SeqCst);
    let (head, body) = read_200(&mut stream, &mut buf).unwrap();
    assert_eq!(body, "/slow");
    assert!(!says_close(&head), "written before the drain: {head}");
    stream
        .write_all(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (head, body) = read_200(&mut stream, &mut buf).expect("the next request is answered");
    assert_eq!(body, "/next");
    assert!(says_close(&head), "answered while draining: {head}");
    assert_eq!(stream.read(&mut [0u8; 16]).unwrap(), 0, "then closed");
    server.join();
}
