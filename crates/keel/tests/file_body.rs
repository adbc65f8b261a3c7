//! `Response::file` over real sockets: a file's bytes arrive whole, in
//! order with pipelined answers, from any offset; `HEAD` sends the head
//! only; a file cut short while it is sent closes the connection; a client
//! that leaves mid-file frees the file; a long download leaves the worker
//! free for others.

mod util;

use keel::{Request, Response, StatusCode};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use util::{parse_all, read_responses, read_to_close, TestServer};

/// A file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    /// `len` bytes of a pattern that shows any shift or skipped piece.
    fn new(len: usize) -> TempFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "keel-file-body-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, pattern(len)).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect()
}

/// Serves the file at the path in the request's `X-File` header; a
/// `X-Range: first-end` header sends that part of it.
fn serve(req: &Request<'_>, res: &mut Response<'_>) {
    if req.path() == "/plaintext" {
        return res.body(b"Hello, World!");
    }
    let path = req.header_str("x-file").unwrap_or_default();
    let Ok(file) = std::fs::File::open(path) else {
        return res.status(StatusCode::NOT_FOUND).body(b"");
    };
    let len = file.metadata().unwrap().len();
    let range = match req.header_str("x-range").and_then(|r| r.split_once('-')) {
        Some((first, end)) => first.parse().unwrap()..end.parse().unwrap(),
        None => 0..len,
    };
    res.header("Content-Type", "application/octet-stream");
    if res.file(file, range).is_err() {
        res.status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(b"read failed");
    }
}

fn get(file: &Path, extra: &str) -> Vec<u8> {
    format!(
        "GET /f HTTP/1.1\r\nHost: t\r\nX-File: {}\r\n{extra}\r\n",
        file.display()
    )
    .into_bytes()
}

#[test]
fn files_large_and_small_arrive_whole_in_order_with_pipelined_answers() {
    let server = TestServer::start(serve);
    let large = TempFile::new(5 * 1024 * 1024 + 17); // more than a turn's share
    let small = TempFile::new(4096);
    let mut batch = get(&small.0, "");
    batch.extend(get(&large.0, ""));
    batch.extend(util::get("/plaintext"));
    batch.extend(get(&large.0, "X-Range: 1000-300001\r\n"));
    batch.extend(get(&small.0, "X-Range: 5-6\r\n"));
    let mut stream = server.connect();
    stream.write_all(&batch).unwrap();
    let answers = read_responses(&mut stream, 5);
    let whole = pattern(5 * 1024 * 1024 + 17);
    assert_eq!(answers[0].body, pattern(4096));
    assert_eq!(answers[1].header("content-length"), Some("5242897"));
    assert!(answers[1].body == whole, "the large file differs");
    assert_eq!(answers[2].body, b"Hello, World!");
    assert!(answers[3].body == whole[1000..300_001], "the range differs");
    assert_eq!(answers[4].body, pattern(4096)[5..6]);
    assert!(answers.iter().all(|a| a.status == 200));
}

#[test]
fn head_sends_the_length_and_no_body_and_the_connection_goes_on() {
    let server = TestServer::start(serve);
    let large = TempFile::new(1024 * 1024);
    let small = TempFile::new(100);
    let mut stream = server.connect();
    for file in [&large, &small] {
        let head = format!(
            "HEAD /f HTTP/1.1\r\nHost: t\r\nX-File: {}\r\n\r\n",
            file.0.display()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&util::get("/plaintext")).unwrap();
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        while !bytes.ends_with(b"Hello, World!") {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "closed");
            bytes.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8(bytes).unwrap();
        let len = std::fs::metadata(&file.0).unwrap().len();
        assert!(
            text.contains(&format!("Content-Length: {len}\r\n")),
            "{text}"
        );
        // Two heads, and nothing after them but the second answer's body.
        assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{text}");
        let heads_end = text.rfind("\r\n\r\n").unwrap() + 4;
        assert_eq!(&text[heads_end..], "Hello, World!");
        assert_eq!(text.matches("\r\n\r\n").count(), 2, "{text}");
    }
}

/// Asks for `file` and reads its first 64 KiB (head included), so that
/// the server has sent part of it and waits for the reader.
fn halfway(server: &TestServer, file: &TempFile) -> (std::net::TcpStream, Vec<u8>) {
    let mut stream = server.connect();
    stream.write_all(&get(&file.0, "")).unwrap();
    let mut first = vec![0u8; 64 * 1024];
    stream.read_exact(&mut first).unwrap();
    (stream, first)
}

#[test]
fn a_file_cut_short_while_it_is_sent_ends_in_a_close() {
    let server = TestServer::start(serve);
    let file = TempFile::new(16 * 1024 * 1024);
    let (mut stream, mut first) = halfway(&server, &file);
    std::thread::sleep(Duration::from_millis(100));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file.0)
        .unwrap()
        .set_len(1024 * 1024)
        .unwrap();
    let started = Instant::now();
    let mut rest = read_to_close(&mut stream);
    assert!(started.elapsed() < Duration::from_secs(3));
    first.append(&mut rest);
    let head_end = first.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let body = first.len() - head_end;
    assert!(
        body < 16 * 1024 * 1024,
        "the client saw the answer end early: {body} bytes"
    );
    let text = String::from_utf8_lossy(&first[..head_end]);
    assert!(text.contains("Content-Length: 16777216"), "{text}");
}

/// Descriptors of this process open on `path`.
fn open_on(path: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target == path)
        .count()
}

#[test]
fn a_client_that_leaves_mid_file_frees_the_file() {
    let server = TestServer::start(serve);
    let file = TempFile::new(16 * 1024 * 1024);
    let (stream, _) = halfway(&server, &file);
    assert_eq!(open_on(&file.0), 1, "the file is open while it is sent");
    drop(stream);
    let started = Instant::now();
    while open_on(&file.0) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still open after the client left"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.handle().stats().connections_open, 0);
}

#[test]
fn a_missing_small_file_part_is_an_error_the_handler_answers() {
    let server = TestServer::start(serve);
    let file = TempFile::new(1000);
    // 0..2000 of a 1,000-byte file: it ends before the range does.
    let answer = server.exchange(&get(&file.0, "X-Range: 0-2000\r\nConnection: close\r\n"));
    let answers = parse_all(&answer);
    assert_eq!(answers[0].status, 500);
    assert_eq!(answers[0].body, b"read failed");
}

#[test]
fn others_are_answered_while_a_fast_reader_downloads_large_files() {
    let server = TestServer::start(serve);
    let file = TempFile::new(32 * 1024 * 1024);
    let downloading = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let reader = {
        let (mut stream, request) = (server.connect(), get(&file.0, ""));
        let downloading = std::sync::Arc::clone(&downloading);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1024 * 1024];
            let mut bytes = 0u64;
            while downloading.load(Ordering::Relaxed) {
                stream.write_all(&request).unwrap();
                let mut got = 0;
                // Head and body; the head is under 200 bytes.
                while got < 32 * 1024 * 1024 {
                    got += stream.read(&mut buf).unwrap();
                }
                bytes += got as u64;
                // The rest of this answer.
                let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    bytes += n as u64;
                }
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            }
            bytes
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let mut slowest = Duration::ZERO;
    let mut stream = server.connect();
    for _ in 0..50 {
        let started = Instant::now();
        stream.write_all(&util::get("/plaintext")).unwrap();
        assert_eq!(read_responses(&mut stream, 1)[0].body, b"Hello, World!");
        slowest = slowest.max(started.elapsed());
        std::thread::sleep(Duration::from_millis(5));
    }
    downloading.store(false, Ordering::Relaxed);
    let downloaded = reader.join().unwrap();
    assert!(downloaded >= 32 * 1024 * 1024, "{downloaded}");
    assert!(slowest < Duration::from_millis(500), "{slowest:?}");
}

/// Drops `path`'s pages from the page cache (written back first: dirty
/// pages stay); returns whether its first page is gone.
fn evict(path: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).unwrap();
    file.sync_all().unwrap();
    // SAFETY: an open descriptor; advice only.
    unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    let mut byte = [0u8; 1];
    let iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: one live writable byte; the descriptor is open.
    let read = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, 0, libc::RWF_NOWAIT) };
    read < 0
}

#[test]
fn a_cold_file_is_read_in_off_the_event_loop_and_arrives_whole() {
    let server = TestServer::start(serve);
    let file = TempFile::new(8 * 1024 * 1024 + 3);
    assert!(evict(&file.0), "the test could not drop the file's pages");
    let mut stream = server.connect();
    stream.write_all(&get(&file.0, "")).unwrap();
    let answer = read_responses(&mut stream, 1);
    assert!(
        answer[0].body == pattern(8 * 1024 * 1024 + 3),
        "the file differs"
    );
    let readaheads = server.handle().stats().file_readaheads;
    // One per 2 MiB turn at most; at least the first chunk was cold.
    assert!((1..=5).contains(&readaheads), "{readaheads} read-aheads");

    // Warm now: sent without asking a thread.
    stream.write_all(&get(&file.0, "")).unwrap();
    assert_eq!(
        read_responses(&mut stream, 1)[0].body.len(),
        8 * 1024 * 1024 + 3
    );
    assert_eq!(server.handle().stats().file_readaheads, readaheads);
}
