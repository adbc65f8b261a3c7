//! `stream_client` against `hyper_streams` over loopback, small sizes; and
//! against fake servers that break the contract, to show that each of the
//! client's checks fails when it should.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::thread;
use util::Spawned;

/// A `hyper_streams` process on a free port, killed on drop.
fn start() -> Spawned {
    Spawned::start(Command::new(env!("CARGO_BIN_EXE_hyper_streams")), "http")
}

fn client(addr: SocketAddr, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stream_client"))
        .args(args)
        .args(["--addr", &addr.to_string()])
        .output()
        .expect("stream_client runs")
}

/// The client's `RESULT` line, after checking that it succeeded.
fn result_line(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stream_client failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find(|line| line.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("a RESULT line in {stdout:?}"))
        .to_owned()
}

/// The client failed, saying `why`.
fn assert_fails(output: &Output, why: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "stream_client passed: {stderr}");
    assert!(stderr.contains(why), "{why:?} not in {stderr:?}");
}

#[test]
fn hyper_streams_passes_every_check() {
    let server = start();
    // Not a multiple of the client's block nor of the server's chunk.
    let line = result_line(&client(server.addr, &["upload", "--bytes", "1000003"]));
    assert!(line.contains("framing=length bytes=1000003"), "{line}");
    let upload = ["upload", "--bytes", "700001", "--chunked"];
    let line = result_line(&client(server.addr, &upload));
    assert!(line.contains("framing=chunked bytes=700001"), "{line}");
    let line = result_line(&client(server.addr, &["download", "--bytes", "1M"]));
    assert!(line.contains("bytes=1048576"), "{line}");
    let sse = ["sse", "--clients", "20", "--seconds", "1"];
    let line = result_line(&client(server.addr, &sse));
    assert!(line.contains("clients=20"), "{line}");
    assert!(!line.contains(" events=0 "), "events arrived: {line}");
}

#[test]
fn hyper_streams_refuses_bad_requests() {
    let server = start();
    for (request, status) in [
        ("GET /download?bytes=x HTTP/1.1\r\n", "400"),
        ("GET /download HTTP/1.1\r\n", "400"),
        ("GET /upload HTTP/1.1\r\n", "405"),
        ("POST /events HTTP/1.1\r\n", "405"),
        ("GET /nothing HTTP/1.1\r\n", "404"),
    ] {
        let mut stream = TcpStream::connect(server.addr).expect("connects");
        write!(stream, "{request}Host: x\r\nConnection: close\r\n\r\n").expect("sends");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("an answer");
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{request:?}: {answer:?}"
        );
    }
}

/// A one-connection server that reads the request head (and a
/// `Content-Length` body), writes `answer`, and then closes or, with `hold`,
/// waits for the client to close.
fn fake_server(answer: &'static [u8], hold: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    let addr = listener.local_addr().expect("an address");
    thread::spawn(move || {
        let (stream, _) = listener.accept().expect("a client");
        let mut reader = BufReader::new(stream);
        let mut length = 0u64;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().expect("a length");
            }
        }
        std::io::copy(&mut reader.by_ref().take(length), &mut std::io::sink()).expect("the body");
        let _ = reader.get_mut().write_all(answer);
        if hold {
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        }
    });
    addr
}

#[test]
fn a_wrong_digest_fails_the_upload() {
    let addr = fake_server(
        b"HTTP/1.1 200 OK\r\nContent-Length: 64\r\n\r\n\
        0000000000000000000000000000000000000000000000000000000000000000",
        false,
    );
    assert_fails(&client(addr, &["upload", "--bytes", "1000"]), "digest");
}

#[test]
fn a_short_download_fails() {
    let addr = fake_server(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this",
        false,
    );
    assert_fails(
        &client(addr, &["download", "--bytes", "100"]),
        "closed before",
    );
    let addr = fake_server(
        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nonly this",
        false,
    );
    assert_fails(
        &client(addr, &["download", "--bytes", "100"]),
        "asked for 100",
    );
}

#[test]
fn a_gap_in_the_events_fails_the_sse_count() {
    let addr = fake_server(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n\
        9\r\ndata: 7\n\n\r\n9\r\ndata: 8\n\n\r\n9\r\ndata: 9\n\n\r\n",
        true,
    );
    let line = result_line(&client(addr, &["sse", "--clients", "1", "--seconds", "1"]));
    // Consecutive: it passes; the events came during the warm-up, before
    // the counted window.
    assert!(line.contains(" events=0 "), "{line}");
    let addr = fake_server(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n\
        9\r\ndata: 7\n\n\r\n9\r\ndata: 8\n\n\r\n9\r\ndata: 9\n\n\r\na\r\ndata: 11\n\n\r\n",
        true,
    );
    let output = client(addr, &["sse", "--clients", "1", "--seconds", "1"]);
    assert_fails(&output, "missed or repeated");
}
