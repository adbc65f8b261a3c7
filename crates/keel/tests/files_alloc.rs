//! The files rules cost a small-file GET no allocation: after warm-up,
//! answering plain, conditional (304), range (206, 416) and negotiated GETs
//! with `Validators`, `check_preconditions`, `negotiate_encoding`,
//! `select_range`, `ContentRange` and `ContentType` allocates nothing.

use keel::files::{
    check_preconditions, negotiate_encoding, select_range, ContentRange, ContentType, Encoding,
    Precondition, RangeDecision, Validators, Variants,
};
use keel::{Request, Response, StatusCode};
use std::fs::Metadata;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, SystemTime};

#[global_allocator]
static GLOBAL: keel::testing::CountingAllocator = keel::testing::CountingAllocator;

const FILE: &[u8] = b"body { color: #333; }\n";

/// A file server's answer for one small file, as `ServeFile` builds it.
fn serve(metadata: &Metadata, req: &Request<'_>, res: &mut Response<'_>) {
    let validators = Validators::from_metadata(metadata, SystemTime::now());
    let content_type = ContentType::from_path(Path::new("site.css"));
    let coding = negotiate_encoding(req, Variants::default()).unwrap_or(Encoding::Identity);
    res.header("ETag", validators.etag())
        .header(
            "Last-Modified",
            validators.last_modified().unwrap_or_default(),
        )
        .header("Vary", "Accept-Encoding")
        .header("X-Coding", coding.file_suffix());
    match check_preconditions(req, &validators) {
        Precondition::Proceed => {}
        Precondition::NotModified => return res.status(StatusCode::NOT_MODIFIED).body(b""),
        Precondition::PreconditionFailed => {
            return res.status(StatusCode::PRECONDITION_FAILED).body(b"")
        }
    }
    res.header("Content-Type", content_type);
    let len = FILE.len() as u64;
    match select_range(req, &validators, len) {
        RangeDecision::Full => res.body(FILE),
        RangeDecision::Partial(range) => res
            .status(StatusCode::PARTIAL_CONTENT)
            .header("Content-Range", ContentRange::partial(range, len))
            .body(&FILE[range.first() as usize..=range.last() as usize]),
        RangeDecision::Unsatisfiable => res
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header("Content-Range", ContentRange::unsatisfied(len))
            .body(b""),
    }
}

/// Sends `request` and reads one response, which has no body or ends with
/// `body_end`; returns it as text (the warm-up allocates freely).
fn exchange(stream: &mut TcpStream, request: &str, body_end: &str) -> String {
    stream.write_all(request.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(head_end) = text.find("\r\n\r\n") {
            if text[head_end + 4..].ends_with(body_end) {
                return text.into_owned();
            }
        }
    }
}

#[test]
fn file_rules_allocate_nothing_after_warm_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.css");
    std::fs::write(&path, FILE).unwrap();
    let metadata = std::fs::metadata(&path).unwrap();
    let etag = Validators::from_metadata(&metadata, SystemTime::now())
        .etag()
        .to_owned();
    let server = keel::Server::bind("127.0.0.1:0")
        .workers(1)
        .serve(move |req: &Request<'_>, res: &mut Response<'_>| serve(&metadata, req, res))
        .unwrap();
    let mut stream = TcpStream::connect(server.local_addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.set_nodelay(true).unwrap();

    let head = "GET /site.css HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip, br;q=0.5\r\n";
    let requests = [
        (format!("{head}\r\n"), "200 OK", "#333; }\n"),
        (
            format!("{head}If-None-Match: W/\"x\", {etag}\r\n\r\n"),
            "304 Not Modified",
            "",
        ),
        (
            format!("{head}If-Match: \"x\"\r\n\r\n"),
            "412 Precondition Failed",
            "",
        ),
        (
            format!("{head}Range: bytes=0-3, 4-5\r\nIf-Range: {etag}\r\n\r\n"),
            "206 Partial",
            "body {",
        ),
        (
            format!("{head}Range: bytes=-2\r\n\r\n"),
            "206 Partial",
            "}\n",
        ),
        (format!("{head}Range: bytes=99-\r\n\r\n"), "416 Range", ""),
    ];
    // Warm-up, checking each answer once; then the byte counts to expect.
    let mut lens = Vec::new();
    for (request, status, body_end) in &requests {
        let answer = exchange(&mut stream, request, body_end);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{request:?} -> {answer}"
        );
        lens.push(answer.len());
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut run = |stream: &mut TcpStream| {
        for _ in 0..100 {
            for ((request, ..), &len) in requests.iter().zip(&lens) {
                stream.write_all(request.as_bytes()).unwrap();
                stream.read_exact(&mut buf[..len]).unwrap();
            }
        }
    };
    let spent = keel::testing::allocations_after_warm_up(|| run(&mut stream));
    assert_eq!(
        spent,
        0,
        "allocations while answering {} file requests",
        100 * requests.len()
    );
    server.shutdown(Duration::ZERO);
    server.join();
}
