//! The shortener on a Unix socket (`--unix`, as behind nginx on the same
//! machine) and started by systemd with its socket, against the real
//! binary: the API and redirects answer there; `X-Forwarded-For` from a
//! Unix peer names the client only with `--trusted-proxy unix`; keyless
//! mode's "this machine only" does not take a Unix peer (a proxy's
//! remote clients) for this machine; malformed activation variables stop
//! the start with the reason.

mod util;

use serde_json::json;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use util::{assert_error, command, form_encode, Options, Response, Shortener};

const PASSWORD: &str = "correct horse battery";

#[test]
fn the_api_and_redirects_answer_on_the_unix_socket() {
    let mut server = Options::new().admin_key().unix().start();
    let path = server.unix_path().unwrap().to_owned();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "this user only by default");
    // Through the helpers (over the socket): create, then read back.
    server.create_slug("unixy", "https://example.com/over-unix");
    assert_eq!(server.link("unixy")["url"], "https://example.com/over-unix");
    // curl, as an operator checks it.
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "-o", "/dev/null"])
        .args(["-w", "%{http_code} %{redirect_url}", "--unix-socket"])
        .arg(&path)
        .arg("http://localhost/unixy")
        .output()
        .expect("curl is installed");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "302 https://example.com/over-unix"
    );
    // Nothing listens on TCP.
    assert!(std::net::TcpStream::connect(server.addr()).is_err());
    let (status, _) = server.terminate();
    assert!(status.success());
    assert!(!path.exists(), "the socket file is removed at shutdown");
}

/// A wrong password guess for `slug` over the Unix socket, from a proxy
/// that says the client is `client`.
fn guess_from(server: &Shortener, slug: &str, password: &str, client: &str) -> u16 {
    let body = format!("password={}", form_encode(password));
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("X-Forwarded-For", client),
    ];
    let res: Response = server.request("POST", &format!("/{slug}"), &headers, body.as_bytes());
    res.status
}

fn protected(options: Options) -> Shortener {
    let server = options
        .admin_key()
        .unix()
        .arg("--guesses-per-minute", "3")
        .start();
    server.create(json!({"url": "https://example.com/p", "slug": "guarded", "password": PASSWORD}));
    server
}

#[test]
fn forwarded_for_from_a_unix_peer_counts_only_when_unix_is_trusted() {
    // Not trusted: every peer on the socket is one client, whatever it
    // writes. An attacker rotating X-Forwarded-For gains no guesses.
    let untrusted = protected(Options::new());
    for n in 0..5 {
        let status = guess_from(&untrusted, "guarded", "wrong", &format!("203.0.113.{n}"));
        assert_eq!(status, if n < 3 { 401 } else { 429 }, "guess {n}");
    }
    // Trusting 0.0.0.0/0 trusts IP peers, not the Unix socket.
    let all_ips = protected(Options::new().arg("--trusted-proxy", "0.0.0.0/0"));
    for n in 0..5 {
        let status = guess_from(&all_ips, "guarded", "wrong", &format!("203.0.113.{n}"));
        assert_eq!(status, if n < 3 { 401 } else { 429 }, "guess {n}");
    }
    // `--trusted-proxy unix` (nginx on the socket): each real client has its
    // own bucket, so one cannot lock out the others.
    let trusted = protected(Options::new().arg("--trusted-proxy", "unix"));
    for n in 0..3 {
        assert_eq!(
            guess_from(&trusted, "guarded", "wrong", "203.0.113.1"),
            401,
            "{n}"
        );
    }
    assert_eq!(guess_from(&trusted, "guarded", "wrong", "203.0.113.1"), 429);
    assert_eq!(guess_from(&trusted, "guarded", "wrong", "203.0.113.2"), 401);
    assert_eq!(
        guess_from(&trusted, "guarded", PASSWORD, "203.0.113.2"),
        303
    );
}

#[test]
fn keyless_mode_does_not_take_a_unix_peer_for_this_machine() {
    // Behind nginx on a Unix socket, every remote client arrives as the
    // socket's peer: taking it for a local client would make them admins.
    let server = Options::new().unix().start();
    // `Host: 127.0.0.1`, a loopback name: only the peer decides here.
    let res = server.get("/api/links");
    let message = assert_error(&res, 403, "forbidden");
    assert!(message.contains("this machine only"), "{message}");
}

/// Connects to the socket a launcher binds, once it listens: the file
/// appears at `bind`, and a connection before `listen` is refused (seen
/// under a loaded machine).
fn connect_when_listening(path: &Path) -> UnixStream {
    let started = Instant::now();
    loop {
        match UnixStream::connect(path) {
            Ok(stream) => return stream,
            Err(e) => assert!(
                started.elapsed() < Duration::from_secs(10),
                "{path:?} does not listen: {e}"
            ),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn systemd_socket_activation_starts_the_shortener_on_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("activated.sock");
    let launcher = command().get_program().to_owned();
    let mut child = Command::new("systemd-socket-activate")
        .arg("--listen")
        .arg(&path)
        .arg(launcher)
        .arg("--data")
        .arg(dir.path())
        .args(["--workers", "2", "--blocking-threads", "2"])
        // Ignored: the inherited socket wins.
        .args(["--addr", "127.0.0.1:1"])
        .env_remove("SHORTENER_API_KEYS")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("systemd-socket-activate is installed (package systemd)");
    // The first connection starts it.
    let mut stream = connect_when_listening(&path);
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    // It says where it listens once its workers run (they may answer
    // first): read that line off a thread, then stop it.
    let pipe = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(pipe), &mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(10));
    child.kill().unwrap();
    child.wait().unwrap();
    let line = line.expect("a listening line");
    let expected = format!(
        "shortener: listening on unix:{} with 2 workers",
        path.display()
    );
    assert!(line.starts_with(&expected), "{line}");
}

#[test]
fn malformed_activation_variables_stop_the_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            vec![("LISTEN_PID", "1"), ("LISTEN_FDS", "1")],
            "LISTEN_PID=1 is another process",
        ),
        (
            vec![("LISTEN_PID", "abc"), ("LISTEN_FDS", "1")],
            "LISTEN_PID=\"abc\" is malformed",
        ),
        (vec![("LISTEN_FDS", "2")], "LISTEN_PID is not set"),
    ];
    for (variables, reason) in cases {
        let out = command()
            .arg("--data")
            .arg(dir.path())
            .args(["--addr", "127.0.0.1:0"])
            .envs(variables.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{variables:?} started");
        assert!(
            stderr.contains(&format!("shortener: socket activation: {reason}")),
            "{variables:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "never listened: {variables:?}");
    }
}
