//! The file layer's allocation budget: after warm-up, answering `GET`s
//! with `Response::file` (a small file read into the output buffer, a
//! large one queued for `sendfile`, pipelined or one at a time) performs no
//! heap allocation in any thread. Opening the file by a short path does not
//! allocate either (the standard library builds the C string on the stack).

use keel::{Request, Response, StatusCode};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

#[global_allocator]
static GLOBAL: keel::testing::CountingAllocator = keel::testing::CountingAllocator;

const SMALL: usize = 4096;
const LARGE: usize = 1024 * 1024;

static DIR: OnceLock<PathBuf> = OnceLock::new();

fn serve(req: &Request<'_>, res: &mut Response<'_>) {
    // Built once, before the counting starts: the path of each file.
    static PATHS: OnceLock<[PathBuf; 2]> = OnceLock::new();
    let paths = PATHS.get_or_init(|| {
        let dir = DIR.get().unwrap();
        [dir.join("small"), dir.join("large")]
    });
    let path = if req.path() == "/small" {
        &paths[0]
    } else {
        &paths[1]
    };
    let Ok(file) = std::fs::File::open(path) else {
        return res.status(StatusCode::NOT_FOUND).body(b"");
    };
    let len = file.metadata().map_or(0, |m| m.len());
    res.header("Content-Type", "application/octet-stream");
    if res.file(file, 0..len).is_err() {
        res.status(StatusCode::INTERNAL_SERVER_ERROR).body(b"");
    }
}

fn round_trip(stream: &mut TcpStream, batch: &[u8], expected: usize, buf: &mut [u8]) {
    stream.write_all(batch).unwrap();
    stream.read_exact(&mut buf[..expected]).unwrap();
    assert!(buf.starts_with(b"HTTP/1.1 200 OK\r\n"));
}

/// The length of one answer to `request`: head (fixed width) plus `body`.
fn answer_len(stream: &mut TcpStream, request: &[u8], body: usize, buf: &mut [u8]) -> usize {
    stream.write_all(request).unwrap();
    let mut len = 0;
    loop {
        len += stream.read(&mut buf[len..]).unwrap();
        if let Some(end) = buf[..len].windows(4).position(|w| w == b"\r\n\r\n") {
            let whole = end + 4 + body;
            stream.read_exact(&mut buf[len..whole]).unwrap();
            return whole;
        }
    }
}

#[test]
fn serving_files_allocates_nothing_after_warm_up() {
    let dir = std::env::temp_dir().join(format!("keel-file-alloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("small"), vec![b's'; SMALL]).unwrap();
    std::fs::write(dir.join("large"), vec![b'l'; LARGE]).unwrap();
    DIR.set(dir.clone()).unwrap();

    let server = keel::Server::bind("127.0.0.1:0")
        .workers(1)
        .serve(serve)
        .unwrap();
    let mut stream = TcpStream::connect(server.local_addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; 8 * LARGE];
    let small = b"GET /small HTTP/1.1\r\nHost: t\r\n\r\n".to_vec();
    let large = b"GET /large HTTP/1.1\r\nHost: t\r\n\r\n".to_vec();
    let small_len = answer_len(&mut stream, &small, SMALL, &mut buf);
    let large_len = answer_len(&mut stream, &large, LARGE, &mut buf);
    let pipelined_small = small.repeat(16);
    let pipelined_mixed = [&small[..], &large, &small, &large].concat();
    let mut run = |stream: &mut TcpStream| {
        for _ in 0..50 {
            round_trip(stream, &small, small_len, &mut buf);
            round_trip(stream, &large, large_len, &mut buf);
            round_trip(stream, &pipelined_small, 16 * small_len, &mut buf);
            round_trip(
                stream,
                &pipelined_mixed,
                2 * small_len + 2 * large_len,
                &mut buf,
            );
        }
    };
    // The first run warms up pools, slab, the output's list of pieces.
    let spent = keel::testing::allocations_after_warm_up(|| run(&mut stream));
    assert_eq!(server.stats().requests, 2 + 2 * 50 * 22);
    assert_eq!(spent, 0, "allocations while serving {} files", 50 * 22);
    server.shutdown(Duration::ZERO);
    server.join();
    std::fs::remove_dir_all(dir).unwrap();
}
