//! systemd socket activation for real: `systemd-socket-activate` opens the
//! sockets and starts this test binary again (an ignored test, the child)
//! with `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` set; the child
//! serves on what it inherited and the parent talks to it over both.
//! The variables' parsing, malformed values included, is unit-tested in
//! `server/systemd/tests.rs`.

use keel::testing::parse_responses;
use keel::{ActivationError, Listener, Request, Response, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which child to be (the child tests do nothing without it).
const ROLE: &str = "KEEL_SD_CHILD";

/// Starts `child` (an ignored test of this binary) under
/// `systemd-socket-activate` listening on `listen`.
fn activate(child: &str, listen: &[String], names: &str) -> Child {
    let mut command = Command::new("systemd-socket-activate");
    for address in listen {
        command.arg("--listen").arg(address);
    }
    command
        .arg(format!("--fdname={names}"))
        .arg(format!("--setenv={ROLE}={child}"))
        .arg(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", child, "--test-threads=1"])
        .stdout(Stdio::null())
        .spawn()
        .expect("systemd-socket-activate is installed (package systemd; .ci/run installs it)")
}

/// Waits for the socket file `systemd-socket-activate` binds.
fn wait_for(path: &Path) {
    let started = Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no socket at {path:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn get(stream: &mut (impl Read + Write), target: &str) -> String {
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    parse_responses(&reply).unwrap()[0].text()
}

fn unix(path: &Path) -> UnixStream {
    let stream = UnixStream::connect(path).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// Waits for the child to exit, and says whether it succeeded.
fn exited_well(mut child: Child) -> bool {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A free loopback port (free a moment ago).
fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

#[test]
fn sockets_systemd_passes_are_served_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.sock");
    let port = free_port();
    let listen = [path.display().to_string(), format!("127.0.0.1:{port}")];
    let child = activate("named_sockets_child", &listen, "web:api");
    wait_for(&path);
    // The first connection starts the child.
    let who = get(&mut unix(&path), "/who");
    assert_eq!(
        who,
        "web=unix api=tcp; variables removed; taken once; peer 0.0.0.0:0"
    );
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let over_tcp = get(&mut tcp, "/who");
    let peer = tcp.local_addr().unwrap();
    assert!(over_tcp.ends_with(&format!("peer {peer}")), "{over_tcp}");
    assert_eq!(get(&mut unix(&path), "/quit"), "bye");
    assert!(exited_well(child), "the child failed (its output is above)");
}

#[test]
#[ignore = "the child of sockets_systemd_passes_are_served_by_name"]
fn named_sockets_child() {
    if std::env::var_os(ROLE).is_none() {
        return;
    }
    let inherited = keel::systemd_listeners().expect("sockets from systemd-socket-activate");
    let cleared = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]
        .iter()
        .all(|v| std::env::var_os(v).is_none());
    let once = keel::systemd_listeners().unwrap_err() == ActivationError::NotActivated;
    let mut names = Vec::new();
    for socket in &inherited {
        let kind = match socket.listener {
            Listener::Tcp(_) => "tcp",
            Listener::Unix(_) => "unix",
        };
        names.push(format!("{}={kind}", socket.name.as_deref().unwrap_or("?")));
    }
    let summary = format!(
        "{}; {}; {}",
        names.join(" "),
        if cleared {
            "variables removed"
        } else {
            "variables LEFT"
        },
        if once { "taken once" } else { "taken TWICE" },
    );
    serve_until_quit(
        Server::from_listeners(inherited.into_iter().map(|s| s.listener)),
        summary,
    );
}

#[test]
fn from_systemd_serves_one_socket_with_several_workers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.sock");
    let child = activate("from_systemd_child", &[path.display().to_string()], "one");
    wait_for(&path);
    for _ in 0..20 {
        assert_eq!(
            get(&mut unix(&path), "/who"),
            "from_systemd; peer 0.0.0.0:0"
        );
    }
    assert_eq!(get(&mut unix(&path), "/quit"), "bye");
    assert!(exited_well(child), "the child failed (its output is above)");
}

#[test]
#[ignore = "the child of from_systemd_serves_one_socket_with_several_workers"]
fn from_systemd_child() {
    if std::env::var_os(ROLE).is_none() {
        return;
    }
    let server = Server::from_systemd().expect("a socket from systemd-socket-activate");
    serve_until_quit(server, "from_systemd".to_owned());
}

/// Serves `/who` (`summary` and the peer) until `/quit`, with 3 workers.
fn serve_until_quit(server: Server, summary: String) {
    let (quit, quitting) = crossbeam_like_channel();
    let handler = move |req: &Request<'_>, res: &mut Response<'_>| {
        if req.path() == "/quit" {
            let _ = quit.lock().unwrap().send(());
            return res.body(b"bye");
        }
        res.body(format!("{summary}; peer {}", req.peer_addr()).as_bytes());
    };
    let server = server.workers(3).serve(handler).unwrap();
    quitting
        .recv_timeout(Duration::from_secs(20))
        .expect("asked to quit");
    server.shutdown(Duration::from_secs(1));
    server.join();
}

/// A sender the `Sync` handler can share.
fn crossbeam_like_channel() -> (
    std::sync::Mutex<std::sync::mpsc::Sender<()>>,
    std::sync::mpsc::Receiver<()>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    (std::sync::Mutex::new(tx), rx)
}
