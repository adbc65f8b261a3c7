//! `keel_files` and `hyper_files` (the two sides of `load/files.sh`) as
//! processes over loopback: both answer a file's exact bytes (a small one
//! read into keel's output buffer, a large one sent with `sendfile`), the
//! same headers, one range, a HEAD without a body, and neither lets a path
//! climb out of its root to a file next to it.

mod util;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use util::Spawned;

/// A directory with `root/` (what is served) and `secret.txt` beside it,
/// removed on drop.
struct Tree {
    dir: PathBuf,
}

impl Tree {
    fn new(name: &str) -> Tree {
        let dir = std::env::temp_dir().join(format!("keel-files-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("root/sub")).expect("makes the tree");
        fs::write(dir.join("secret.txt"), "outside the root").expect("writes");
        fs::write(dir.join("root/small.bin"), pattern(4096)).expect("writes");
        // Larger than any output buffer: keel sends it with sendfile.
        fs::write(dir.join("root/sub/large.bin"), pattern(3_000_017)).expect("writes");
        fs::write(dir.join("root/page.html"), "<p>hi</p>").expect("writes");
        Tree { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Bytes that differ from one offset to the next, so a shifted or repeated
/// piece shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A server binary on a free port, killed on drop.
struct Server {
    spawned: Spawned,
}

impl Server {
    fn start(binary: &str, root: &Path) -> Server {
        let mut command = Command::new(binary);
        command.arg("--root").arg(root);
        Server {
            spawned: Spawned::start(command, "http"),
        }
    }

    /// One request on a fresh connection (`Connection: close`): the status,
    /// the head's lines and the body.
    fn get(&self, method: &str, target: &str, headers: &str) -> (u16, String, Vec<u8>) {
        let mut stream = TcpStream::connect(self.spawned.addr).expect("connects");
        write!(
            stream,
            "{method} {target} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
        )
        .expect("sends");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).expect("an answer");
        let end = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("a head in {:?}", String::from_utf8_lossy(&answer)));
        let head = String::from_utf8(answer[..end].to_vec()).expect("a text head");
        let status = head[9..12].parse().expect("a status code");
        (
            status,
            head.to_ascii_lowercase(),
            answer[end + 4..].to_vec(),
        )
    }
}

fn both(name: &str, check: impl Fn(&Server, &Tree)) {
    for (side, binary) in [
        ("keel", env!("CARGO_BIN_EXE_keel_files")),
        ("hyper", env!("CARGO_BIN_EXE_hyper_files")),
    ] {
        let tree = Tree::new(&format!("{name}-{side}"));
        let server = Server::start(binary, &tree.root());
        check(&server, &tree);
    }
}

#[test]
fn both_answer_the_files_bytes_and_headers() {
    both("bytes", |server, tree| {
        for (path, file) in [
            ("/small.bin", "small.bin"),
            ("/sub/large.bin", "sub/large.bin"),
        ] {
            let want = fs::read(tree.root().join(file)).expect("reads");
            let (status, head, body) = server.get("GET", path, "");
            assert_eq!(status, 200, "{path}: {head}");
            assert!(body == want, "{path}: {} bytes, wrong ones", body.len());
            for line in [
                format!("content-length: {}", want.len()),
                "content-type: application/octet-stream".to_owned(),
                "accept-ranges: bytes".to_owned(),
                "last-modified: ".to_owned(),
            ] {
                assert!(
                    head.contains(&format!("\r\n{line}")),
                    "{path}: {line} in {head}"
                );
            }
        }
        let (status, head, body) = server.get("GET", "/page.html", "");
        assert_eq!((status, body.as_slice()), (200, &b"<p>hi</p>"[..]));
        assert!(head.contains("\r\ncontent-type: text/html"), "{head}");
        // Percent-encoded names are decoded.
        let (status, _, body) = server.get("GET", "/sub/%6carge.bin", "");
        assert_eq!((status, body.len()), (200, 3_000_017));
    });
}

#[test]
fn both_answer_a_range_and_a_head() {
    both("range", |server, _| {
        let want = pattern(3_000_017);
        let (status, head, body) =
            server.get("GET", "/sub/large.bin", "Range: bytes=1000000-1999999\r\n");
        assert_eq!(status, 206, "{head}");
        assert!(
            head.contains("\r\ncontent-range: bytes 1000000-1999999/3000017"),
            "{head}"
        );
        assert!(body == want[1_000_000..2_000_000], "the range's bytes");
        // Several disjoint ranges: the whole file from keel, 416 from
        // tower-http (RFC 9110 lets a server ignore Range; neither sends
        // multipart/byteranges).
        let (status, head, body) = server.get("GET", "/small.bin", "Range: bytes=0-1,5-6\r\n");
        assert!(
            status == 416 || (status == 200 && body.len() == 4096),
            "several ranges: {head}"
        );
        let (status, head, body) = server.get("HEAD", "/sub/large.bin", "");
        assert_eq!((status, body.len()), (200, 0), "{head}");
        assert!(head.contains("\r\ncontent-length: 3000017"), "{head}");
    });
}

/// The attack: every way up out of the root to `secret.txt` beside it.
#[test]
fn neither_serves_a_file_outside_the_root() {
    both("traversal", |server, tree| {
        assert!(tree.dir.join("root/../secret.txt").exists());
        for target in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/%2E%2E%2Fsecret.txt",
            "/sub/../../secret.txt",
            "/sub/%2e%2e/%2e%2e/secret.txt",
            "/..%2fsecret.txt",
            "/%00/../secret.txt",
        ] {
            let (status, _, body) = server.get("GET", target, "");
            // Refused as a malformed target or as no such file.
            assert!(matches!(status, 400 | 404), "{target}: {status}");
            assert!(!body.windows(7).any(|w| w == b"outside"), "{target} leaked");
        }
        let (status, _, _) = server.get("GET", "/nothing.bin", "");
        assert_eq!(status, 404);
    });
}
