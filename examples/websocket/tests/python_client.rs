//! The example server binary against a real WebSocket client (Python's
//! `websockets`, through tests/client.py), and its handshake refusals and
//! socket cap over raw TCP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The largest message the server takes in these tests (1 MiB: the client
/// sends exactly that much, and one byte more to be refused).
const MAX_MESSAGE: &str = "1048576";

/// The example server on a free loopback port; killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_websocket"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the websocket binary");
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Server { child, addr }
    }

    /// Sends an opening handshake to `path` with `extra` header lines;
    /// returns the connection and the response head.
    fn handshake(&self, path: &str, extra: &str) -> (TcpStream, String) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n{extra}\r\n"
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(stream.read(&mut byte).unwrap(), 1, "closed in the head");
            head.push(byte[0]);
        }
        (stream, String::from_utf8(head).unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const VALID: &str = "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/// The Python with `websockets` installed: the venv that
/// tests/setup-python.sh makes (made now if missing). `None` only when
/// there is no python3 at all.
fn python() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let venv_python = target.join("websocket-venv/bin/python");
    if venv_python.exists() {
        return Some(venv_python);
    }
    if Command::new("python3").arg("--version").output().is_err() {
        return None;
    }
    let setup = root.join("examples/websocket/tests/setup-python.sh");
    let status = Command::new("bash").arg(setup).status().unwrap();
    assert!(status.success(), "tests/setup-python.sh failed");
    Some(venv_python)
}

#[test]
fn a_python_websockets_client_echoes_chats_and_closes() {
    let Some(python) = python() else {
        println!("SKIPPED: python3 is not installed; tests/client.py needs it");
        return;
    };
    let server = Server::start(&["--idle", "2", "--max-message", MAX_MESSAGE]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/client.py");
    let output = Command::new(python)
        .arg(script)
        .arg(format!("ws://{}", server.addr))
        .args(["2", MAX_MESSAGE])
        .output()
        .expect("run tests/client.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "client.py failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("4 passed, 0 failed"), "{stdout}");
}

#[test]
fn handshakes_that_are_not_websocket_13_are_refused_over_http() {
    let server = Server::start(&[]);
    let (_, head) = server.handshake("/echo", VALID);
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    // RFC 6455 §1.3's sample key and its answer.
    assert!(
        head.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nUpgrade: websocket\r\n"), "{head}");

    let (_, head) = server.handshake("/echo", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n");
    assert!(head.starts_with("HTTP/1.1 426 "), "no version: {head}");
    assert!(head.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{head}");
    let (_, head) = server.handshake(
        "/echo",
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 400 "), "bad key: {head}");
    let (_, head) = server.handshake("/chat", "Sec-WebSocket-Version: 13\r\n");
    assert!(head.starts_with("HTTP/1.1 400 "), "no key: {head}");
    let (_, head) = server.handshake("/nowhere", VALID);
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");

    // Asking for another protocol, or not asking at all: 426, and the
    // connection stays HTTP.
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request =
        format!("GET /echo HTTP/1.1\r\nHost: t\r\n{VALID}\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&reply).contains("/chat (a chat room)") {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&reply));
        reply.extend_from_slice(&chunk[..n]);
    }
    let reply = String::from_utf8(reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 426 "), "{reply}");
    assert!(reply.contains("HTTP/1.1 200 OK\r\n"), "{reply}");
}

#[test]
fn sockets_past_the_cap_are_refused_before_the_upgrade() {
    let server = Server::start(&["--max-sockets", "2"]);
    let (first, head) = server.handshake("/echo", VALID);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let (_second, head) = server.handshake("/chat", VALID);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let (_, head) = server.handshake("/echo", VALID);
    assert!(head.starts_with("HTTP/1.1 503 "), "a third socket: {head}");
    assert!(head.contains("\r\nRetry-After: 5\r\n"), "{head}");
    // Once one leaves, its place is free again.
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, head) = server.handshake("/echo", VALID);
        if head.starts_with("HTTP/1.1 101 ") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the place never came back: {head}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
