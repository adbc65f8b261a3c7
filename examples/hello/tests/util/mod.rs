//! Shared helpers for the tests that drive the real `hello` binary over real
//! sockets: spawn it on a free port, learn its address from its first line of
//! stdout, and make sure it never outlives the test.
#![allow(dead_code)] // each test file uses its own part of this module

pub mod curl;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long the binary may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `hello` process, killed (and reaped) on drop.
pub struct Hello {
    child: Child,
    addr: SocketAddr,
    /// Kept open so that a later `println!` in the server cannot hit a closed pipe.
    _stdout: Option<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<thread::JoinHandle<()>>,
}

impl Hello {
    /// Starts `hello --addr 127.0.0.1:0 --workers N`.
    pub fn start(workers: usize) -> Hello {
        Hello::spawn(Command::new(env!("CARGO_BIN_EXE_hello")), workers)
    }

    /// Starts `hello` through `command` (the binary itself, or a wrapper that
    /// ends up exec-ing it), adding `--addr 127.0.0.1:0 --workers N`, and waits
    /// for the line that says where it listens.
    pub fn spawn(mut command: Command, workers: usize) -> Hello {
        command
            .args(["--addr", "127.0.0.1:0", "--workers", &workers.to_string()])
            .env_remove("KEEL_ADDR")
            .env_remove("KEEL_WORKERS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {command:?}: {e}"));

        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&stderr);
        let stderr_reader = thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });

        // Read the first line on a thread, so that a binary that never prints
        // fails the test instead of hanging it.
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let read = reader.read_line(&mut line);
            let _ = tx.send((read, line, reader));
        });
        let mut hello = Hello {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            _stdout: None,
            stderr,
            stderr_reader: Some(stderr_reader),
        };
        let (read, line, reader) = match rx.recv_timeout(START_TIMEOUT) {
            Ok(got) => got,
            Err(_) => panic!(
                "hello printed no address within {START_TIMEOUT:?}; stderr:\n{}",
                hello.stderr()
            ),
        };
        hello._stdout = Some(reader);
        if !matches!(read, Ok(1..)) {
            let status = hello.wait_timeout(Duration::from_secs(2));
            panic!(
                "hello exited before listening ({status:?}, read {read:?}); stderr:\n{}",
                hello.stderr()
            );
        }
        hello.addr = parse_listening_line(&line);
        hello
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the server.
    ///
    /// # Panics
    ///
    /// When the server has already exited (and been reaped).
    pub fn signal(&mut self, signal: libc::c_int) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("cannot signal hello: it already exited ({status})");
        }
        let pid = libc::pid_t::try_from(self.pid()).expect("pid fits pid_t");
        // SAFETY: kill(2) takes plain integers and touches no memory of ours;
        // `pid` is our own child and `try_wait` just found it not
        // reaped, so the id cannot have been reused by another process.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(
            rc,
            0,
            "kill({pid}, {signal}): {}",
            io::Error::last_os_error()
        );
    }

    /// Waits up to `timeout` for the server to exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    // The stderr pipe is closed now: let its reader finish.
                    if let Some(reader) = self.stderr_reader.take() {
                        let _ = reader.join();
                    }
                    return Some(status);
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                Ok(None) => return None,
                Err(e) => panic!("waiting for hello: {e}"),
            }
        }
    }

    /// The server's resident set size in bytes (`VmRSS` in `/proc/PID/status`).
    pub fn rss_bytes(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS:") * 1024
    }

    /// How many file descriptors the server has open.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("read /proc/PID/fd")
            .count()
    }
}

impl Drop for Hello {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The address in `hello: listening on http://ADDR with N workers`.
pub fn parse_listening_line(line: &str) -> SocketAddr {
    let addr = line
        .trim_end()
        .strip_prefix("hello: listening on http://")
        .and_then(|rest| rest.split_once(" with "))
        .filter(|(_, workers)| workers.ends_with(" workers"))
        .map(|(addr, _)| addr);
    match addr.map(str::parse::<SocketAddr>) {
        Some(Ok(addr)) if addr.port() != 0 => addr,
        _ => panic!("unexpected first line from hello: {line:?}"),
    }
}

/// A field of `/proc/PID/status` given in kB, e.g. `VmRSS:`.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// A response read off a raw socket, parsed by keel's own test parser.
pub use keel::testing::TestResponse as RawResponse;

/// Reads one response (framed by `Content-Length` or chunked) from `stream`.
/// `buf` is scratch space, reused between calls; there is nothing after the
/// response without pipelining.
pub fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<RawResponse> {
    buf.clear();
    let mut chunk = [0u8; 1024];
    loop {
        match keel::testing::parse_response(buf, false, false) {
            Ok((response, _)) => return Ok(response),
            Err(keel::testing::ResponseParseError::Invalid(why)) => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, why))
            }
            Err(keel::testing::ResponseParseError::Incomplete) => {}
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "connection closed after {} bytes of a response: {:?}",
                    buf.len(),
                    String::from_utf8_lossy(buf)
                ),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Sends `GET path` on `stream` and reads the answer.
pub fn get(stream: &mut TcpStream, path: &str, buf: &mut Vec<u8>) -> io::Result<RawResponse> {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")?;
    read_response(stream, buf)
}

/// `len` bytes of every value in a pseudo-random order (xorshift64), the
/// same for the same `len`: a body in which a lost, repeated or misplaced
/// byte shows.
pub fn pseudo_random_bytes(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ len as u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}
