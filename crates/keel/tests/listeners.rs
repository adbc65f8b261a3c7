//! Listeners other than keel's own TCP ones, over real sockets: a Unix
//! socket keel binds (requests, pipelining, curl, the socket file's rules,
//! peer credentials, an upgrade, a file sent with sendfile), and sockets the
//! caller opened (TCP and Unix together).

use keel::testing::{parse_responses, TestResponse};
use keel::{Request, Response, Server, ServerHandle, Upgraded};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

/// - `/who`: `PEER_ADDR pid uid gid` (`- - -` without credentials)
/// - `/file?PATH`: the file at PATH, whole, sent with sendfile
/// - `/echo`: switches to `echo` and echoes what comes
/// - otherwise: the path
fn app(req: &Request<'_>, res: &mut Response<'_>) {
    match req.path() {
        "/who" => {
            let who = match req.peer_credentials() {
                Some(c) => format!("{} {} {} {}", req.peer_addr(), c.pid, c.uid, c.gid),
                None => format!("{} - - -", req.peer_addr()),
            };
            res.body(who.as_bytes());
        }
        "/file" => {
            let file = std::fs::File::open(req.query().unwrap_or_default()).unwrap();
            let len = file.metadata().unwrap().len();
            res.file(file, 0..len).unwrap();
        }
        "/echo" => res.upgrade("echo", echo).unwrap(),
        path => res.body(path.as_bytes()),
    }
}

/// Echoes until the client closes, and first says who it is connected to.
fn echo(mut stream: Upgraded) {
    std::thread::spawn(move || {
        let uid = stream.peer_credentials().map(|c| c.uid);
        let _ = writeln!(stream, "uid {uid:?}");
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stream.read(&mut buf) {
            if stream.write_all(&buf[..n]).is_err() {
                return;
            }
        }
    });
}

/// A fresh directory for socket files, removed when dropped.
fn socket_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("keel-listeners")
        .tempdir()
        .unwrap()
}

fn serve_unix(path: &Path, workers: usize) -> ServerHandle {
    Server::bind_unix(path).workers(workers).serve(app).unwrap()
}

fn stop(server: &ServerHandle) {
    server.shutdown(Duration::ZERO);
    server.join();
}

fn connect(path: &Path) -> UnixStream {
    let stream = UnixStream::connect(path).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
}

fn read_to_close(stream: &mut impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    stream.read_to_end(&mut out).unwrap();
    out
}

/// One request with `Connection: close` on a new Unix connection.
fn get_unix(path: &Path, target: &str) -> TestResponse {
    let mut stream = connect(path);
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut replies = parse_responses(&read_to_close(&mut stream)).unwrap();
    assert_eq!(replies.len(), 1);
    replies.remove(0)
}

/// This process's uid and gid, as the kernel gives a file it creates.
fn own_ids(dir: &Path) -> (u32, u32) {
    let probe = dir.join("ids");
    std::fs::write(&probe, b"").unwrap();
    let meta = std::fs::metadata(&probe).unwrap();
    (meta.uid(), meta.gid())
}

#[test]
fn a_unix_socket_answers_pipelined_requests_in_order_with_the_peers_credentials() {
    let dir = socket_dir();
    let path = dir.path().join("app.sock");
    let server = serve_unix(&path, 2);
    let mut stream = connect(&path);
    stream
        .write_all(
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /who HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let replies = parse_responses(&read_to_close(&mut stream)).unwrap();
    let bodies: Vec<String> = replies.iter().map(TestResponse::text).collect();
    let (uid, gid) = own_ids(dir.path());
    let who = format!("0.0.0.0:0 {} {uid} {gid}", std::process::id());
    assert_eq!(bodies, ["/a", who.as_str(), "/c"]);
    assert_eq!(server.local_addr().port(), 0, "no TCP address");
    assert_eq!(
        server.listen_addrs()[0].to_string(),
        format!("unix:{}", path.display())
    );
    assert_eq!(server.stats().requests, 3);
    stop(&server);
}

#[test]
fn curl_reaches_the_unix_socket() {
    let dir = socket_dir();
    let path = dir.path().join("curl.sock");
    let server = serve_unix(&path, 1);
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "5", "--unix-socket"])
        .arg(&path)
        .arg("http://localhost/from-curl")
        .output()
        .expect("curl is installed (.ci/run installs it)");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"/from-curl");
    stop(&server);
}

#[test]
fn a_stale_socket_file_is_replaced_and_the_new_one_removed_at_the_end() {
    let dir = socket_dir();
    let path = dir.path().join("stale.sock");
    // A server that died without cleaning up: its file stays, nobody answers.
    drop(UnixListener::bind(&path).unwrap());
    assert!(UnixStream::connect(&path).is_err());
    let server = serve_unix(&path, 1);
    assert_eq!(get_unix(&path, "/after-stale").text(), "/after-stale");
    stop(&server);
    assert!(!path.exists(), "the server removed its socket file");
}

#[test]
fn a_live_server_at_the_path_is_refused_and_keeps_its_socket() {
    let dir = socket_dir();
    let path = dir.path().join("live.sock");
    let live = UnixListener::bind(&path).unwrap();
    let error = Server::bind_unix(&path).serve(app).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AddrInUse, "{error}");
    // The live server still has its socket: a client reaches it.
    let _client = UnixStream::connect(&path).unwrap();
    let (_accepted, _) = live.accept().unwrap();
}

#[test]
fn a_regular_file_at_the_path_is_refused_and_left_alone() {
    let dir = socket_dir();
    let path = dir.path().join("precious.db");
    std::fs::write(&path, b"data someone needs").unwrap();
    let error = Server::bind_unix(&path).serve(app).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AlreadyExists, "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), b"data someone needs");
    // A link to a socket is no socket either: never followed, never removed.
    let target = dir.path().join("target.sock");
    drop(UnixListener::bind(&target).unwrap());
    let link = dir.path().join("link.sock");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let error = Server::bind_unix(&link).serve(app).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AlreadyExists, "{error}");
    assert!(target.exists() && link.symlink_metadata().is_ok());
}

#[test]
fn the_socket_mode_is_applied() {
    let dir = socket_dir();
    let mode_of = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let default = dir.path().join("default.sock");
    let server = serve_unix(&default, 1);
    assert_eq!(mode_of(&default), 0o600, "this user only, by default");
    stop(&server);
    let group = dir.path().join("group.sock");
    let server = Server::bind_unix(&group)
        .unix_mode(0o660)
        .workers(1)
        .serve(app)
        .unwrap();
    assert_eq!(mode_of(&group), 0o660);
    assert_eq!(get_unix(&group, "/ok").text(), "/ok");
    stop(&server);
}

#[test]
fn a_server_that_stops_leaves_the_socket_of_the_one_that_replaced_it() {
    let dir = socket_dir();
    let path = dir.path().join("shared.sock");
    let old = serve_unix(&path, 1);
    // A new server takes the path over (the old file moved away first).
    std::fs::rename(&path, dir.path().join("old.sock")).unwrap();
    let new = serve_unix(&path, 1);
    stop(&old);
    assert!(
        path.exists(),
        "the old server did not remove the new one's socket"
    );
    assert_eq!(get_unix(&path, "/new").text(), "/new");
    stop(&new);
    assert!(!path.exists());
}

#[test]
fn an_upgrade_works_over_a_unix_socket() {
    let dir = socket_dir();
    let path = dir.path().join("upgrade.sock");
    let server = serve_unix(&path, 1);
    let mut stream = connect(&path);
    stream
        .write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .unwrap();
    let mut seen = Vec::new();
    let (uid, _) = own_ids(dir.path());
    let greeting = format!("uid Some({uid})\n");
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).ends_with(&greeting) {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(seen.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    stream.write_all(b"ping over unix").unwrap();
    let mut echoed = [0u8; 14];
    stream.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"ping over unix");
    assert_eq!(server.stats().upgrades, 1);
    stop(&server);
}

#[test]
fn a_file_goes_out_whole_over_a_unix_socket() {
    let dir = socket_dir();
    let path = dir.path().join("file.sock");
    // Past one turn's share (2 MiB), so sendfile runs over several turns.
    let content: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let file = dir.path().join("big.bin");
    std::fs::write(&file, &content).unwrap();
    let server = serve_unix(&path, 1);
    let reply = get_unix(&path, &format!("/file?{}", file.display()));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), content.len());
    assert!(reply.body == content, "the bytes differ");
    stop(&server);
}

#[test]
fn from_listeners_serves_a_tcp_and_a_unix_socket_together() {
    let dir = socket_dir();
    let path = dir.path().join("given.sock");
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_addr = tcp.local_addr().unwrap();
    let unix = UnixListener::bind(&path).unwrap();
    let server = Server::from_listeners([keel::Listener::from(tcp), unix.into()])
        .workers(2)
        .serve(app)
        .unwrap();
    assert_eq!(server.local_addr(), tcp_addr);
    let shown: Vec<String> = server
        .listen_addrs()
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(
        shown,
        [tcp_addr.to_string(), format!("unix:{}", path.display())]
    );
    // Over TCP: the peer's address, no credentials.
    let mut stream = TcpStream::connect(tcp_addr).unwrap();
    stream
        .write_all(b"GET /who HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let reply = parse_responses(&read_to_close(&mut stream)).unwrap();
    let local = stream.local_addr().unwrap();
    assert_eq!(reply[0].text(), format!("{local} - - -"));
    // Over the Unix socket: credentials.
    let who = get_unix(&path, "/who").text();
    assert!(who.starts_with("0.0.0.0:0 "), "{who}");
    assert_ne!(who, "0.0.0.0:0 - - -");
    stop(&server);
    assert!(
        path.exists(),
        "a given socket's file is its opener's to remove"
    );
}

#[test]
fn from_listeners_with_no_listener_is_an_error() {
    let none: [std::net::TcpListener; 0] = [];
    let error = Server::from_listeners(none).serve(app).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
}

/// Clients at once, and connections each opens one after the other.
const CLIENTS: usize = 8;
const CONNECTIONS_EACH: usize = 1250;
const WORKERS: usize = 4;

/// Which worker answered each of 10,000 connections (`Connection: close`,
/// from 8 client threads) to one shared socket: counts per worker.
fn spread(connect: impl Fn() -> Box<dyn ReadWrite> + Sync) -> Vec<usize> {
    let counts = std::sync::Mutex::new(vec![0usize; WORKERS]);
    std::thread::scope(|scope| {
        for _ in 0..CLIENTS {
            scope.spawn(|| {
                let mut mine = vec![0usize; WORKERS];
                for _ in 0..CONNECTIONS_EACH {
                    let mut stream = connect();
                    stream
                        .write_all(b"GET /worker HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .unwrap();
                    let reply = parse_responses(&read_to_close(&mut stream)).unwrap();
                    let index: usize = reply[0].text().parse().unwrap();
                    mine[index] += 1;
                }
                let mut counts = counts.lock().unwrap();
                for (total, n) in counts.iter_mut().zip(mine) {
                    *total += n;
                }
            });
        }
    });
    counts.into_inner().unwrap()
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Answers the index of the worker thread that serves the request.
fn which_worker(_: &Request<'_>, res: &mut Response<'_>) {
    let name = std::thread::current().name().unwrap_or_default().to_owned();
    res.body(name.trim_start_matches("keel-worker-").as_bytes());
}

#[test]
fn connections_to_one_shared_socket_spread_over_the_workers() {
    let dir = socket_dir();
    let path = dir.path().join("spread.sock");
    let unix = Server::bind_unix(&path)
        .backlog(1024)
        .workers(WORKERS)
        .serve(which_worker)
        .unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_addr = tcp.local_addr().unwrap();
    let inherited = Server::from_listeners([tcp])
        .workers(WORKERS)
        .serve(which_worker)
        .unwrap();
    let over_unix = spread(|| Box::new(connect(&path)));
    let over_tcp = spread(|| Box::new(TcpStream::connect(tcp_addr).unwrap()));
    println!("10,000 connections over {WORKERS} workers sharing one socket:");
    println!("  Unix socket:         {over_unix:?}");
    println!("  one inherited TCP:   {over_tcp:?}");
    for counts in [&over_unix, &over_tcp] {
        assert_eq!(counts.iter().sum::<usize>(), CLIENTS * CONNECTIONS_EACH);
        // Every worker takes a share: none is left out of a shared queue.
        assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
    }
    stop(&unix);
    stop(&inherited);
}
