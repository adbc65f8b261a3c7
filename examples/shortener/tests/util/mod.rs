//! Shared helpers for the tests that drive the real `shortener` binary over
//! real sockets: start it on a port of its own with a data directory of its
//! own, talk to it with raw HTTP/1.1 requests (parsed by keel's own test
//! parser), stop it gently or not, and never let it outlive the test.
//!
//! # Which store
//!
//! This module alone picks the store the binary runs on. By default it is
//! the embedded SQLite store in the data directory (no `--store` flag).
//! When `SHORTENER_TEST_PG` holds a `postgres://` URL (`scripts/pg.sh
//! start DIR PORT` prints one; `tests/pg-suite.sh` does it all), every
//! server and every CLI run gets `--store` with that URL on a schema of its
//! own instead: one schema per data directory, created on first use and
//! named in a file inside the directory, so a restart on the same
//! directory (persistence tests, `kill -9`) finds the same data, and
//! dropped with the directory ([`DataDir`], or the temporary directory a
//! [`Shortener`] made for itself).
#![allow(dead_code)] // each test file uses its own part of this module

pub mod attack;
mod client;
mod port;
mod store;
mod wire;

pub use store::*;
pub use wire::*;

use port::PortReservation;

use std::io::{self, BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub use keel::testing::TestResponse as Response;

/// How long the binary may take to say it listens.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one request may take, connect to last byte.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopping server may take to exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_shortener")
}

/// A temporary data directory, and on PostgreSQL the schema standing for
/// it, both removed on drop. Pass [`DataDir::path`] to [`Options::data`]
/// or [`cli`] to restart on the same data.
pub struct DataDir {
    dir: TempDir,
}

/// A fresh [`DataDir`].
pub fn data_dir() -> DataDir {
    DataDir {
        dir: tempfile::tempdir().expect("a temporary directory"),
    }
}

impl DataDir {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The directory as a command-line argument.
    pub fn arg(&self) -> String {
        self.path().to_str().expect("a UTF-8 path").to_owned()
    }

    /// Its `--store` (see [`store_spec`]).
    pub fn store_spec(&self) -> String {
        store_spec(self.path())
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        forget_store(self.path());
    }
}

/// A `shortener` command with no `SHORTENER_*` variable inherited from the
/// environment (they would change its flags), on no particular store: for
/// runs that stop before opening one. See [`cli`] for the others.
pub fn command() -> Command {
    let mut command = Command::new(binary());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SHORTENER_") {
            command.env_remove(name);
        }
    }
    command.stdin(Stdio::null());
    command
}

/// `shortener ARGS` (import, export) on the store of the data directory
/// given as `--data DIR` among `ARGS`: on PostgreSQL with `--store` first.
pub fn cli(args: &[&str]) -> Command {
    let mut command = command();
    if on_postgres() {
        let data = args
            .iter()
            .position(|a| *a == "--data")
            .and_then(|i| args.get(i + 1))
            .unwrap_or_else(|| panic!("no --data DIR in {args:?}"));
        command.args(["--store", &store_spec(Path::new(data))]);
    }
    command.args(args);
    command
}

/// Runs `shortener ARGS` to completion (import, export) with [`cli`],
/// asserting it exits with success.
pub fn run_cli(args: &[&str]) -> Output {
    let output = cli(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run shortener {args:?}: {e}"));
    assert!(
        output.status.success(),
        "shortener {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// How to start a server: extra flags, environment, data directory, the
/// API key the helpers send.
#[derive(Default)]
pub struct Options {
    args: Vec<String>,
    env: Vec<(String, String)>,
    data: Option<PathBuf>,
    key: Option<String>,
    ip: Option<Ipv4Addr>,
    admin_addr: bool,
    unix: bool,
}

impl Options {
    pub fn new() -> Options {
        Options::default()
    }

    /// Adds `flag value`, e.g. `.arg("--flush-ms", "100")`.
    pub fn arg(mut self, flag: &str, value: &str) -> Options {
        self.args.push(flag.to_owned());
        self.args.push(value.to_owned());
        self
    }

    /// Sets an environment variable of the server.
    pub fn env(mut self, name: &str, value: &str) -> Options {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Uses this data directory (kept after the server stops) instead of
    /// a fresh temporary one.
    pub fn data(mut self, dir: &Path) -> Options {
        self.data = Some(dir.to_owned());
        self
    }

    /// The key [`Shortener::api`] (and the helpers built on it) sends as
    /// `Authorization: Bearer KEY`; the server learns it elsewhere (a key
    /// file, `SHORTENER_API_KEYS`).
    pub fn key(mut self, key: &str) -> Options {
        self.key = Some(key.to_owned());
        self
    }

    /// Runs with keys: a fresh `admin` key, in `SHORTENER_API_KEYS`, that
    /// the helpers send.
    pub fn admin_key(self) -> Options {
        let key = format!(
            "admin-{}",
            shortener::keys::generate().expect("a random key")
        );
        self.env("SHORTENER_API_KEYS", &format!("admin:{key}"))
            .key(&key)
    }

    /// Runs on this `--store` instead of the one of the data directory
    /// (several instances on one [`PgSchema`]); the same as
    /// `.arg("--store", spec)`.
    pub fn store(self, spec: &str) -> Options {
        self.arg("--store", spec)
    }

    /// Also serves `/metrics` and `/health` on a loopback port of its own
    /// (`--admin-addr`); see [`Shortener::admin_addr`].
    pub fn admin_addr(mut self) -> Options {
        self.admin_addr = true;
        self
    }

    /// Listens on a Unix socket in its data directory (`--unix`) instead
    /// of TCP: the helpers ([`Shortener::send`] and all built on it) go
    /// over it.
    pub fn unix(mut self) -> Options {
        self.unix = true;
        self
    }

    /// Listens on `ip` (default 127.0.0.1).
    pub fn ip(mut self, ip: Ipv4Addr) -> Options {
        self.ip = Some(ip);
        self
    }

    pub fn start(self) -> Shortener {
        Shortener::spawn(self)
    }
}

/// A running `shortener` process, killed (and reaped) on drop.
pub struct Shortener {
    child: Child,
    addr: SocketAddr,
    data: PathBuf,
    /// The `--store` it runs on.
    store: String,
    key: Option<String>,
    admin: Option<PortReservation>,
    /// Its `--unix` socket ([`Options::unix`]).
    unix: Option<PathBuf>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<thread::JoinHandle<()>>,
    _port: PortReservation,
    _tempdir: Option<TempDir>,
}

/// Copies everything `pipe` gives into `sink` until it closes.
fn drain(mut pipe: impl Read + Send + 'static, sink: Arc<Mutex<String>>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut chunk) {
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    })
}

impl Shortener {
    /// A server with default flags on a fresh data directory.
    pub fn start() -> Shortener {
        Options::new().start()
    }

    fn spawn(options: Options) -> Shortener {
        let tempdir = match options.data {
            Some(_) => None,
            None => Some(tempfile::tempdir().expect("a temporary directory")),
        };
        let data = options
            .data
            .clone()
            .unwrap_or_else(|| tempdir.as_ref().unwrap().path().to_owned());
        let port = PortReservation::new(options.ip.unwrap_or(Ipv4Addr::LOCALHOST));
        let mut command = command();
        command
            .arg("--data")
            .arg(&data)
            .args(["--addr", &port.addr.to_string()]);
        // A `--store` of the test's own ([`Options::store`]) wins.
        let given_store = options
            .args
            .iter()
            .position(|a| a == "--store")
            .and_then(|i| options.args.get(i + 1));
        let store = match given_store {
            Some(spec) => spec.clone(),
            None if on_postgres() => {
                let spec = store_spec(&data);
                command.args(["--store", &spec]);
                spec
            }
            // The default, as before: no flag.
            None => store_spec(&data),
        };
        let given = |flag: &str| options.args.iter().any(|a| a == flag);
        // With --tls-cert it says `https://` (tests/tls.rs).
        let scheme = if given("--tls-cert") { "https" } else { "http" };
        // Small and fixed, whatever the machine: many servers run at once.
        if !given("--workers") {
            command.args(["--workers", "2"]);
        }
        if !given("--blocking-threads") {
            command.args(["--blocking-threads", "4"]);
        }
        let admin = options
            .admin_addr
            .then(|| PortReservation::new(Ipv4Addr::LOCALHOST));
        if let Some(admin) = &admin {
            command.args(["--admin-addr", &admin.addr.to_string()]);
        }
        let unix = options.unix.then(|| data.join("shortener.sock"));
        if let Some(path) = &unix {
            command.arg("--unix").arg(path);
        }
        command
            .args(&options.args)
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {command:?}: {e}"));

        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_reader = drain(child.stderr.take().unwrap(), Arc::clone(&stderr));
        // The first line says where it listens; read it on a thread so that
        // a binary that never prints fails the test instead of hanging it.
        let pipe = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = String::new();
            let read = reader.read_line(&mut line);
            let _ = tx.send((read, line, reader));
        });
        let stdout = Arc::new(Mutex::new(String::new()));
        let mut server = Shortener {
            child,
            addr: port.addr,
            data,
            store,
            key: options.key,
            admin,
            unix,
            stdout: Arc::clone(&stdout),
            stderr,
            readers: vec![stderr_reader],
            _port: port,
            _tempdir: tempdir,
        };
        let (read, line, reader) = match rx.recv_timeout(START_TIMEOUT) {
            Ok(got) => got,
            Err(_) => panic!(
                "shortener did not say it listens within {START_TIMEOUT:?}; stderr:\n{}",
                server.stderr()
            ),
        };
        if !matches!(read, Ok(1..)) {
            let status = server.wait_timeout(Duration::from_secs(2));
            panic!(
                "shortener exited before listening ({status:?}); stderr:\n{}",
                server.stderr()
            );
        }
        let expected = match &server.unix {
            Some(path) => format!("shortener: listening on unix:{} with ", path.display()),
            None => format!("shortener: listening on {scheme}://{} with ", server.addr),
        };
        assert!(
            line.starts_with(&expected),
            "unexpected first line {line:?}, wanted {expected:?}..."
        );
        stdout.lock().unwrap().push_str(&line);
        server.readers.push(drain(reader, stdout));
        server
    }

    /// The process id (for `/proc/PID/status` readings).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its `--admin-addr` ([`Options::admin_addr`]).
    ///
    /// # Panics
    ///
    /// When it was started without one.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .as_ref()
            .expect("started without admin_addr()")
            .addr
    }

    /// `http://ADDR`, the base of its short links.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its data directory.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// The `--store` it runs on (`sqlite:DATA/shortener.db` by default).
    pub fn store_spec(&self) -> &str {
        &self.store
    }

    /// The key the helpers send, if any ([`Options::key`]).
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Everything it wrote to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Waits up to 5 s for stdout to contain `text`; returns all of it.
    pub fn wait_stdout(&self, text: &str) -> String {
        poll(Duration::from_secs(5), || {
            let out = self.stdout();
            out.contains(text).then_some(out)
        })
        .unwrap_or_else(|| panic!("no {text:?} on stdout: {}", self.stdout()))
    }

    /// Everything it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends `SIGTERM` and waits for the exit; returns the status and all
    /// of stderr.
    pub fn terminate(&mut self) -> (ExitStatus, String) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("cannot stop shortener: it already exited ({status})");
        }
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) takes plain integers and touches no memory of
        // ours; `pid` is our own child, which `try_wait` just found not
        // reaped, so the id cannot belong to another process.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill: {}", io::Error::last_os_error());
        let status = self
            .wait_timeout(STOP_TIMEOUT)
            .unwrap_or_else(|| panic!("no exit {STOP_TIMEOUT:?} after SIGTERM"));
        (status, self.stderr())
    }

    /// `kill -9`: no chance to flush or close anything.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.wait_timeout(STOP_TIMEOUT).expect("exit after SIGKILL");
    }

    fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    // The pipes are closed now: let their readers finish.
                    for reader in self.readers.drain(..) {
                        let _ = reader.join();
                    }
                    return Some(status);
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                Ok(None) => return None,
                Err(e) => panic!("waiting for shortener: {e}"),
            }
        }
    }

    /// A new connection to the server.
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect_timeout(&self.addr, IO_TIMEOUT).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
    }

    /// Its `--unix` socket ([`Options::unix`]).
    pub fn unix_path(&self) -> Option<&Path> {
        self.unix.as_deref()
    }
}

impl Drop for Shortener {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        // A data directory of its own: its schema goes with it.
        if self._tempdir.is_some() {
            forget_store(&self.data);
        }
    }
}
