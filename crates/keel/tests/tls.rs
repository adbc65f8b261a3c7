//! TLS in the worker loop, over real sockets with real clients: rustls,
//! curl, `openssl s_client` and Python's `ssl`; certificates by SNI, a
//! reload while a connection stays on the old one, and the attacks on a
//! TLS port (a stalled handshake, garbage, plaintext, a handshake flood).

mod util;

use keel::{Config, Request, Response};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use util::tls::{client_config, connect, TlsServer};
use util::{read_responses, read_to_close};

/// Answers what the handshake agreed: `name version suite resumed`; `/file`
/// sends the file named by the `x-file` header, `/big` 4 MiB.
fn tls_app(req: &Request<'_>, res: &mut Response<'_>) {
    match req.path() {
        "/file" => {
            let path = std::str::from_utf8(req.header("x-file").unwrap()).unwrap();
            let file = std::fs::File::open(path).unwrap();
            let len = file.metadata().unwrap().len();
            let range = req.header("x-range").map_or(0..len, |r| {
                let r = std::str::from_utf8(r).unwrap();
                let (a, b) = r.split_once('-').unwrap();
                a.parse().unwrap()..b.parse().unwrap()
            });
            res.file(file, range).unwrap();
        }
        "/echo" => res
            .upgrade("echo", |mut stream: keel::Upgraded| {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n @ 1..) = stream.read(&mut buf) {
                        if stream.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            })
            .unwrap(),
        "/big" => {
            res.body(&vec![b'x'; 4 << 20]);
        }
        _ => {
            let tls = req.tls().expect("a TLS connection");
            let text = format!(
                "{} {:?} {} {}",
                tls.server_name().unwrap_or("-"),
                tls.version(),
                tls.cipher_suite(),
                tls.resumed()
            );
            res.body(text.as_bytes());
        }
    }
}

fn server() -> TlsServer {
    TlsServer::start(tls_app, Config::default())
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

#[test]
fn a_rustls_client_is_answered_with_what_the_handshake_agreed() {
    let server = server();
    let mut client = server.connect("localhost");
    assert_eq!(client.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    // Keep-alive, then two pipelined in one write.
    client.write_all(GET).unwrap();
    let first = read_responses(&mut client, 1);
    client.write_all(&[GET, GET].concat()).unwrap();
    let more = read_responses(&mut client, 2);
    for resp in first.iter().chain(&more) {
        assert_eq!(resp.status, 200);
        let body = String::from_utf8_lossy(&resp.body).into_owned();
        assert!(body.starts_with("localhost Tls13 TLS13_"), "{body}");
        assert!(body.ends_with(" false"), "a full handshake: {body}");
    }
    let stats = server.handle.stats();
    assert_eq!(stats.tls_handshakes, 1);
    assert_eq!(stats.tls_handshake_failures, 0);
}

#[test]
fn sni_picks_the_certificate_for_the_name_and_the_default_otherwise() {
    let server = server();
    // The client verifies the certificate against the name it asked for:
    // each handshake succeeding is the check.
    let mut other = server.connect(test_certs::OTHER_NAME);
    other.write_all(GET).unwrap();
    let body = read_responses(&mut other, 1).remove(0).body;
    assert!(body.starts_with(b"other.localhost Tls13"));
    // By address, no SNI is sent: the default certificate covers 127.0.0.1.
    let mut by_ip = server.connect("127.0.0.1");
    by_ip.write_all(GET).unwrap();
    let body = read_responses(&mut by_ip, 1).remove(0).body;
    assert!(
        body.starts_with(b"- Tls13"),
        "{}",
        String::from_utf8_lossy(&body)
    );
}

#[test]
fn a_client_that_offers_only_h2_is_refused() {
    let server = server();
    let config = client_config(&server.certs.pki.ca_pem, &[b"h2"]);
    let refused = connect(server.addr(), "localhost", config);
    let error = refused.expect_err("no protocol in common").to_string();
    assert!(error.contains("NoApplicationProtocol"), "{error}");
    wait_for(|| server.handle.stats().tls_handshake_failures == 1);
}

#[test]
fn curl_verifies_and_is_answered() {
    let server = server();
    let url = format!("https://localhost:{}/", server.addr().port());
    let out = Command::new("curl")
        .args(["-sS", "--http1.1", "--cacert"])
        .arg(&server.certs.files.ca)
        .args(["-w", "\n%{http_version} %{ssl_verify_result}", &url, &url])
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    // Two requests on one connection (curl reuses it), both verified.
    assert_eq!(text.matches("localhost Tls13").count(), 2, "{text}");
    assert_eq!(text.matches("1.1 0").count(), 2, "{text}");
    assert_eq!(server.handle.stats().tls_handshakes, 1, "one connection");
}

/// `openssl s_client` with `args`, sending `input`; its whole output.
fn s_client(server: &TlsServer, args: &[&str], input: &[u8]) -> String {
    let mut child = Command::new("openssl")
        // -ign_eof: read on to the server's close after stdin ends.
        .args(["s_client", "-ign_eof", "-connect"])
        .arg(server.addr().to_string())
        .arg("-CAfile")
        .arg(&server.certs.files.ca)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn openssl_s_client_sees_alpn_sni_and_resumes_its_session() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let session = dir.path().join("session.pem");
    let session = session.to_str().unwrap();
    let request = b"GET / HTTP/1.1\r\nHost: other.localhost\r\nConnection: close\r\n\r\n";
    let sni = ["-servername", "other.localhost", "-alpn", "http/1.1"];
    let first = s_client(
        &server,
        &[&sni[..], &["-sess_out", session]].concat(),
        request,
    );
    assert!(first.contains("ALPN protocol: http/1.1"), "{first}");
    assert!(first.contains("Verify return code: 0 (ok)"), "{first}");
    assert!(
        first.contains("CN = other.localhost") || first.contains("CN=other.localhost"),
        "{first}"
    );
    assert!(first.contains("other.localhost Tls13"), "{first}");
    assert!(first.contains("New, TLSv1.3"), "{first}");
    let again = s_client(
        &server,
        &[&sni[..], &["-sess_in", session]].concat(),
        request,
    );
    assert!(again.contains("Reused, TLSv1.3"), "{again}");
    assert!(
        again.contains(" true"),
        "the handler sees the resumption: {again}"
    );
    // TLS 1.2 also works, and so does a name with no certificate of its
    // own: it gets the default (which does not cover it: verify error).
    let old = s_client(&server, &["-tls1_2", "-servername", "localhost"], request);
    assert!(
        old.contains("localhost Tls12 TLS_ECDHE_ECDSA_WITH_"),
        "{old}"
    );
    let unknown = s_client(&server, &["-servername", "unknown.example"], request);
    assert!(
        unknown.contains("CN = localhost") || unknown.contains("CN=localhost"),
        "{unknown}"
    );
}

#[test]
fn python_ssl_is_answered() {
    let server = server();
    let script = r#"
import socket, ssl, sys
context = ssl.create_default_context(cafile=sys.argv[1])
context.set_alpn_protocols(["http/1.1"])
with socket.create_connection(("127.0.0.1", int(sys.argv[2]))) as raw:
    with context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = tls.recv(4096)
            if not chunk:
                break
            data += chunk
        print(tls.selected_alpn_protocol(), tls.version())
        print(data.decode())
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&server.certs.files.ca)
        .arg(server.addr().port().to_string())
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("http/1.1 TLSv1.3"), "{text}");
    assert!(text.contains("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("localhost Tls13"), "{text}");
}

#[test]
fn a_reload_serves_new_certificates_while_an_open_connection_keeps_its_own() {
    let server = server();
    let mut kept = server.connect("localhost");
    kept.write_all(GET).unwrap();
    assert_eq!(read_responses(&mut kept, 1)[0].status, 200);
    // A new PKI: the old CA does not vouch for its certificates.
    let new = test_certs::Pki::generate().unwrap();
    server.tls.reload(util::tls::certificates(&new)).unwrap();
    let old_roots = server.client_config();
    let refused = connect(server.addr(), "localhost", old_roots);
    let error = refused.expect_err("the old CA refuses the new certificate");
    assert!(
        error.to_string().contains("invalid peer certificate"),
        "{error}"
    );
    let new_roots = client_config(&new.ca_pem, &[b"http/1.1"]);
    let mut fresh = connect(server.addr(), "localhost", new_roots).expect("the new CA");
    fresh.write_all(GET).unwrap();
    assert_eq!(read_responses(&mut fresh, 1)[0].status, 200);
    // The connection made before the reload goes on, on its own session.
    kept.write_all(GET).unwrap();
    assert_eq!(read_responses(&mut kept, 1)[0].status, 200);
}

fn short_handshakes() -> Config {
    Config {
        tls_handshake_timeout: Duration::from_millis(300),
        max_tls_handshakes_per_worker: 4,
        ..Config::default()
    }
}

/// The start of a TLS record that announces a 512-byte handshake message
/// and never sends it.
const STALLED_HELLO: &[u8] = &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01];

fn wait_for(done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(5), "timed out");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_stalled_handshake_is_closed_at_its_deadline_and_counted() {
    let server = TlsServer::start(tls_app, short_handshakes());
    let mut stalled = server.raw();
    stalled.write_all(STALLED_HELLO).unwrap();
    let started = Instant::now();
    let rest = read_to_close(&mut stalled);
    let waited = started.elapsed();
    assert!(rest.is_empty(), "{rest:?}");
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    wait_for(|| server.handle.stats().tls_handshake_failures == 1);
    assert_eq!(server.handle.stats().timeouts, 1);
}

#[test]
fn garbage_instead_of_a_client_hello_is_closed_and_counted() {
    let server = server();
    // Bytes that are no TLS record; a handshake record whose message
    // claims 2.4 MB (past rustls's 64 KiB cap on a handshake message);
    // a record of an unknown content type.
    let mut huge = vec![0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x25, 0x4a, 0x6f];
    huge.resize(5 + 0x40, 0x5a);
    let cases: [Vec<u8>; 3] = [
        (0..64u8).map(|i| i.wrapping_mul(37)).collect(),
        huge,
        vec![0x19, 0x03, 0x03, 0x00, 0x02, 0x01, 0x00],
    ];
    for (i, bytes) in cases.iter().enumerate() {
        let mut garbage = server.raw();
        garbage.write_all(bytes).unwrap();
        // Closed at once (read_to_close fails after 5 s), with at most
        // rustls's alert (a record of type 21) before the close.
        let answer = read_to_close(&mut garbage);
        assert!(
            matches!(answer.first(), None | Some(0x15)),
            "{i}: {answer:?}"
        );
        wait_for(|| server.handle.stats().tls_handshake_failures == i as u64 + 1);
    }
    assert_eq!(server.handle.stats().tls_handshakes, 0);
}

#[test]
fn a_plaintext_request_on_the_tls_port_gets_a_clear_400() {
    let server = server();
    let mut plain = server.raw();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let answer = String::from_utf8(read_to_close(&mut plain)).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(answer.contains("Connection: close\r\n"), "{answer}");
    assert!(
        answer.ends_with("use an https:// URL instead.\n"),
        "{answer}"
    );
    wait_for(|| server.handle.stats().tls_handshake_failures == 1);
}

#[test]
fn a_plaintext_request_after_a_silent_connect_gets_the_400_too() {
    // Accepted at once (no TCP_DEFER_ACCEPT, as from a Unix or an
    // inherited socket): the check waits for the first bytes.
    let listen = keel::Server::bind("127.0.0.1:0").defer_accept(None);
    let server = TlsServer::start_on(listen, tls_app, Config::default());
    let mut plain = server.raw();
    std::thread::sleep(Duration::from_millis(100));
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let answer = String::from_utf8(read_to_close(&mut plain)).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
}

#[test]
fn stalled_handshakes_at_the_cap_make_room_for_a_real_client() {
    let server = TlsServer::start(tls_app, short_handshakes());
    // Four times the cap of handshakes that never finish.
    let stalled: Vec<TcpStream> = (0..16)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr()).unwrap();
            s.write_all(STALLED_HELLO).unwrap();
            s
        })
        .collect();
    wait_for(|| server.handle.stats().tls_handshake_failures >= 12);
    let mut client = server.connect("localhost");
    client.write_all(GET).unwrap();
    assert_eq!(read_responses(&mut client, 1)[0].status, 200);
    let stats = server.handle.stats();
    assert!(stats.evictions >= 12, "{stats:?}");
    drop(stalled);
}

fn sha(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

#[test]
fn file_bodies_are_read_and_encrypted_whole_and_by_range() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.bin");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let mut client = server.connect("localhost");
    let path = path.to_str().unwrap();
    let whole = format!("GET /file HTTP/1.1\r\nHost: x\r\nx-file: {path}\r\n\r\n");
    let part =
        format!("GET /file HTTP/1.1\r\nHost: x\r\nx-file: {path}\r\nx-range: 1000-2500000\r\n\r\n");
    client.write_all(whole.as_bytes()).unwrap();
    client.write_all(part.as_bytes()).unwrap();
    let answers = read_responses(&mut client, 2);
    assert_eq!(sha(&answers[0].body), sha(&data));
    assert_eq!(sha(&answers[1].body), sha(&data[1000..2_500_000]));
}

#[test]
fn a_reader_that_waits_gets_a_large_answer_whole() {
    let server = server();
    let mut client = server.connect("localhost");
    client
        .write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // The socket fills and ciphertext waits in the server's session.
    std::thread::sleep(Duration::from_millis(300));
    let mut answers = read_responses(&mut client, 2);
    assert_eq!(answers[0].body.len(), 4 << 20);
    assert!(answers[0].body.iter().all(|&b| b == b'x'));
    assert!(answers.remove(1).body.starts_with(b"localhost Tls13"));
}

#[test]
fn a_connection_closed_by_the_server_ends_with_close_notify() {
    let server = server();
    let mut client = server.connect("localhost");
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    // rustls's client reports a close without close_notify as an error
    // (UnexpectedEof): reading to the end cleanly is the check.
    client.read_to_end(&mut all).expect("a clean TLS close");
    assert!(all.starts_with(b"HTTP/1.1 200 OK\r\n"));
}

#[test]
fn an_upgraded_tls_connection_keeps_its_session() {
    let server = server();
    let mut client = server.connect("localhost");
    // The first bytes of the new protocol in the same record as the request.
    client
        .write_all(
            b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nearly ",
        )
        .unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while !got.ends_with(b"early ") {
        let n = client.read(&mut chunk).unwrap();
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(
        text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{text}"
    );
    client.write_all(b"later").unwrap();
    let mut later = [0u8; 5];
    client.read_exact(&mut later).unwrap();
    assert_eq!(&later, b"later");
    assert_eq!(server.handle.stats().upgrades, 1);
}

#[test]
fn tls_over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tls.sock");
    let listen = keel::Server::bind_unix(&path);
    let server = TlsServer::start_on(listen, tls_app, Config::default());
    let config = server.client_config();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let session = rustls::ClientConnection::new(config, name).unwrap();
    let socket = std::os::unix::net::UnixStream::connect(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut client = rustls::StreamOwned::new(session, socket);
    client.write_all(GET).unwrap();
    let answer = read_responses(&mut client, 1).remove(0);
    assert!(answer.body.starts_with(b"localhost Tls13"));
}
