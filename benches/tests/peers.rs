//! The peers of `load/run.sh` (`PEERS`): `actix_hello` and `may_hello` run
//! as the load scripts run them, answering the hello contract with the
//! header fields keel and hyper send, kept alive and pipelined.

mod util;

use keel_benches::wire;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;
use util::Spawned;

const PEERS: [(&str, &str); 2] = [
    ("actix", env!("CARGO_BIN_EXE_actix_hello")),
    ("may", env!("CARGO_BIN_EXE_may_hello")),
];

fn connect(server: &Spawned) -> TcpStream {
    let stream = TcpStream::connect(server.addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    stream
}

/// The head (lower-cased) and body of each of `count` answers to `request`.
fn exchange(stream: &mut TcpStream, request: &[u8], count: usize) -> Vec<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    wire::round_trip(stream, request, count, &mut buf).expect("the answers");
    let mut answers = Vec::new();
    let mut rest = &buf[..];
    while let Some(len) = wire::response_len(rest) {
        let end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a head")
            + 4;
        let head = String::from_utf8(rest[..end].to_vec()).expect("a text head");
        answers.push((head.to_ascii_lowercase(), rest[end..len].to_vec()));
        rest = &rest[len..];
    }
    assert!(rest.is_empty(), "nothing after the answers: {rest:?}");
    answers
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

#[test]
fn each_peer_answers_the_contract_with_the_same_header_fields() {
    for (peer, binary) in PEERS {
        let server = Spawned::start(Command::new(binary), "http");
        let mut stream = connect(&server);
        let answers = exchange(&mut stream, wire::PLAINTEXT, 1);
        let (head, body) = &answers[0];
        assert!(head.starts_with("http/1.1 200 "), "{peer}: {head}");
        assert_eq!(body, b"Hello, World!", "{peer}");
        for field in [
            "server:",
            "date:",
            "content-type: text/plain\r\n",
            "content-length: 13\r\n",
        ] {
            assert!(head.contains(field), "{peer}: {field} in {head}");
        }
        // The same connection, kept alive: JSON, then a path it lacks.
        let answers = exchange(&mut stream, wire::JSON, 1);
        assert_eq!(answers[0].1, br#"{"message":"Hello, World!"}"#, "{peer}");
        assert!(
            answers[0].0.contains("content-type: application/json\r\n"),
            "{peer}"
        );
        let answers = exchange(&mut stream, &get("/nothing-here"), 1);
        assert!(
            answers[0].0.starts_with("http/1.1 404 "),
            "{peer}: {}",
            answers[0].0
        );
        let post = b"POST /plaintext HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n";
        let answers = exchange(&mut stream, post, 1);
        assert!(
            answers[0].0.starts_with("http/1.1 405 "),
            "{peer}: {}",
            answers[0].0
        );
        assert!(
            answers[0].0.contains("allow: get, head\r\n"),
            "{peer}: {}",
            answers[0].0
        );
    }
}

#[test]
fn each_peer_answers_a_pipelined_batch_in_order() {
    for (peer, binary) in PEERS {
        let server = Spawned::start(Command::new(binary), "http");
        let mut stream = connect(&server);
        let mut batch = wire::pipelined(wire::PIPELINE_DEPTH - 1);
        batch.extend_from_slice(wire::JSON);
        let answers = exchange(&mut stream, &batch, wire::PIPELINE_DEPTH);
        assert_eq!(answers.len(), wire::PIPELINE_DEPTH, "{peer}");
        for (_, body) in &answers[..wire::PIPELINE_DEPTH - 1] {
            assert_eq!(body, b"Hello, World!", "{peer}");
        }
        assert_eq!(
            answers[wire::PIPELINE_DEPTH - 1].1,
            br#"{"message":"Hello, World!"}"#,
            "{peer}"
        );
    }
}

#[test]
fn actix_echoes_a_body_with_its_content_type() {
    let server = Spawned::start(Command::new(PEERS[0].1), "http");
    let mut stream = connect(&server);
    let post = b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/x-test\r\nContent-Length: 5\r\n\r\nhello";
    let answers = exchange(&mut stream, post, 1);
    assert!(
        answers[0].0.starts_with("http/1.1 200 "),
        "{}",
        answers[0].0
    );
    assert!(
        answers[0].0.contains("content-type: text/x-test\r\n"),
        "{}",
        answers[0].0
    );
    assert_eq!(answers[0].1, b"hello");
}

#[test]
fn a_wrong_command_line_is_refused_with_the_usage() {
    for (peer, binary) in PEERS {
        let output = Command::new(binary)
            .args(["--workers", "0"])
            .output()
            .expect("runs");
        assert_eq!(output.status.code(), Some(2), "{peer}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("--workers: not a positive number"),
            "{peer}: {stderr}"
        );
        assert!(stderr.contains("usage:"), "{peer}: {stderr}");
        let mut help = Command::new(binary).arg("--help").output().expect("runs");
        assert!(help.status.success(), "{peer}");
        help.stdout.truncate(6);
        assert_eq!(help.stdout, b"usage:", "{peer}");
    }
}
