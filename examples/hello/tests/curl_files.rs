//! `hello --static DIR` against real clients: `curl` with `--range`,
//! `--compressed`, `-z` and `-I`, traversal attempts sent as-is, and a
//! 1 GiB download by `curl` and by `wget`, compared by SHA-256.
//!
//! These tests need `curl` and `wget` on the `PATH` and fail (they do not
//! skip) without them; `.ci/run` installs both.

mod util;

use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};
use util::curl::{
    assert_server_headers, curl, curl_bodiless_then_plaintext, curl_one, curl_within, parse_head,
    CurlResponse,
};
use util::Hello;

/// A scratch directory for one test, removed on drop (also when the test
/// fails): `public/` is what `hello --static` serves, and what lies beside
/// it is what no request may reach.
struct Site {
    dir: PathBuf,
}

impl Site {
    fn new(name: &str) -> Site {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("hello-files-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("public")).expect("create the served directory");
        Site { dir }
    }

    fn public(&self) -> PathBuf {
        self.dir.join("public")
    }

    /// Writes `bytes` to `rel` under the scratch directory.
    fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.join(rel);
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// `hello --static DIR/public` with one worker.
    fn start(&self) -> Hello {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hello"));
        command.arg("--static").arg(self.public());
        Hello::spawn(command, 1)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `curl ARGS` with the head written first to stdout (`-D -`): the head,
/// and the body as curl hands it on (decoded, with `--compressed`).
fn curl_head_and_output(args: &[&str]) -> (CurlResponse, Vec<u8>) {
    let output = curl(&[&["-D", "-"], args].concat());
    let (response, body) = parse_head(&output.stdout);
    (response, body.to_vec())
}

#[test]
fn a_range_is_206_with_exactly_its_bytes() {
    let site = Site::new("range");
    let bytes = util::pseudo_random_bytes(300_000);
    site.write("public/data.bin", &bytes);
    let hello = site.start();
    let url = hello.url("/static/data.bin");

    let response = curl_one(&["--range", "100-199", &url]);
    assert_eq!(response.status_line, "HTTP/1.1 206 Partial Content");
    assert_eq!(response.header("Content-Range"), "bytes 100-199/300000");
    assert_eq!(response.header("Content-Length"), "100");
    assert_eq!(response.header("Content-Type"), "application/octet-stream");
    assert_eq!(response.header("Accept-Ranges"), "bytes");
    assert_server_headers(&response);
    assert!(response.body == bytes[100..200], "not bytes 100 to 199");

    // An open range too large for the output buffer: sent from the file
    // at an odd offset.
    let response = curl_one(&["--range", "65537-", &url]);
    assert_eq!(response.status(), 206);
    assert_eq!(
        response.header("Content-Range"),
        "bytes 65537-299999/300000"
    );
    assert!(
        response.body == bytes[65537..],
        "not bytes 65537 to the end"
    );

    // The last 500 bytes.
    let response = curl_one(&["--range", "-500", &url]);
    assert_eq!(
        response.header("Content-Range"),
        "bytes 299500-299999/300000"
    );
    assert!(response.body == bytes[299_500..], "not the last 500 bytes");

    // Past the end: 416, with the length a client may retry within.
    let response = curl_one(&["--range", "300000-", &url]);
    assert_eq!(response.status_line, "HTTP/1.1 416 Range Not Satisfiable");
    assert_eq!(response.header("Content-Range"), "bytes */300000");
}

#[test]
fn compressed_download_is_the_gz_beside_the_file_decoded_by_curl() {
    let site = Site::new("compressed");
    let original: Vec<u8> = (0..2_000)
        .flat_map(|i| format!("export const line{i} = \"{}\";\n", i * 7).into_bytes())
        .collect();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&original).unwrap();
    let gz = encoder.finish().unwrap();
    assert!(gz.len() < original.len() / 4, "the text compresses");
    site.write("public/app.js", &original);
    site.write("public/app.js.gz", &gz);
    let hello = site.start();
    let url = hello.url("/static/app.js");

    // curl asks for gzip (and br, zstd, deflate), gets the .gz (there is
    // no .br) and decodes it.
    let (response, decoded) = curl_head_and_output(&["--compressed", &url]);
    assert_eq!(response.status_line, "HTTP/1.1 200 OK");
    assert_eq!(response.header("Content-Encoding"), "gzip");
    assert_eq!(response.header("Vary"), "Accept-Encoding");
    assert_eq!(response.header("Content-Length"), gz.len().to_string());
    // The type of the original, not of a .gz file.
    assert!(
        response
            .header("Content-Type")
            .starts_with("text/javascript"),
        "{response:?}"
    );
    assert!(decoded == original, "curl's decoded body is not app.js");

    // On the wire it is the .gz file, byte for byte.
    let raw = curl_one(&["-H", "Accept-Encoding: gzip", &url]);
    assert_eq!(raw.header("Content-Encoding"), "gzip");
    assert!(raw.body == gz, "the gzip answer is not app.js.gz");

    // A client that takes no gzip (q=0, or none asked) gets the original,
    // still told that the answer varies.
    for accept in ["Accept-Encoding: gzip;q=0, br;q=0", "Accept-Encoding:"] {
        let plain = curl_one(&["-H", accept, &url]);
        assert!(!plain.has_header("Content-Encoding"), "{accept}: {plain:?}");
        assert_eq!(plain.header("Vary"), "Accept-Encoding");
        assert!(plain.body == original, "{accept}: not app.js");
    }
}

#[test]
fn conditional_gets_are_304_without_a_body() {
    let site = Site::new("conditional");
    let path = site.write("public/page.html", b"<!doctype html><p>cached</p>\n");
    // A known modification time, so that the dates below are before, at
    // and after it: 2020-01-01T00:00:00Z.
    let modified = SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_836_800);
    File::options()
        .write(true)
        .open(&path)
        .and_then(|file| file.set_modified(modified))
        .expect("set the modification time");
    let hello = site.start();
    let url = hello.url("/static/page.html");
    let plaintext = hello.url("/plaintext");

    let first = curl_one(&[&url]);
    assert_eq!(first.status(), 200);
    assert_eq!(
        first.header("Last-Modified"),
        "Wed, 01 Jan 2020 00:00:00 GMT"
    );
    let etag = first.header("ETag").to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "a strong ETag: {etag}"
    );

    // If-Modified-Since at the modification time (curl -z DATE): 304, and
    // no body on the wire.
    let not_modified =
        curl_bodiless_then_plaintext(&["-z", "Wed, 01 Jan 2020 00:00:00 GMT", &url], &plaintext);
    assert_eq!(not_modified.status_line, "HTTP/1.1 304 Not Modified");
    assert_eq!(not_modified.header("ETag"), etag);
    assert!(!not_modified.has_header("Content-Type"), "{not_modified:?}");

    // The same with the ETag.
    let not_modified =
        curl_bodiless_then_plaintext(&["-H", &format!("If-None-Match: {etag}"), &url], &plaintext);
    assert_eq!(not_modified.status_line, "HTTP/1.1 304 Not Modified");

    // A second earlier: modified since, so the whole page.
    let modified = curl_one(&["-z", "Tue, 31 Dec 2019 23:59:59 GMT", &url]);
    assert_eq!(modified.status(), 200);
    assert_eq!(modified.body, b"<!doctype html><p>cached</p>\n");

    // Another ETag: 200, and it outranks a matching date (RFC 9110 13.2.2).
    // The date goes as a plain header: with -z, curl itself would drop a
    // 200's body whose Last-Modified is not after the date.
    let other = curl_one(&[
        "-H",
        "If-None-Match: \"not-this-one\"",
        "-H",
        "If-Modified-Since: Wed, 01 Jan 2020 00:00:00 GMT",
        &url,
    ]);
    assert_eq!(other.status(), 200);
    assert_eq!(other.body, b"<!doctype html><p>cached</p>\n");

    // If-Unmodified-Since before the modification (curl -z -DATE): 412.
    let failed = curl_one(&["-z", "-Tue, 31 Dec 2019 23:59:59 GMT", &url]);
    assert_eq!(failed.status_line, "HTTP/1.1 412 Precondition Failed");
    assert!(!failed.body.starts_with(b"<!doctype"), "{failed:?}");
}

#[test]
fn head_on_a_file_has_its_length_and_no_body() {
    let site = Site::new("head");
    site.write("public/data.bin", &util::pseudo_random_bytes(300_000));
    let hello = site.start();
    let head = curl_bodiless_then_plaintext(
        &["-I", &hello.url("/static/data.bin")],
        &hello.url("/plaintext"),
    );
    assert_eq!(head.status_line, "HTTP/1.1 200 OK");
    assert_eq!(head.header("Content-Length"), "300000");
    assert_eq!(head.header("Accept-Ranges"), "bytes");
    assert!(head.has_header("ETag") && head.has_header("Last-Modified"));
}

#[test]
fn traversal_attempts_are_404_and_leak_nothing() {
    let site = Site::new("traversal");
    const SECRET: &str = "SECRET-0f3a9c";
    site.write("public/ok.txt", b"public bytes\n");
    site.write("public/.env", format!("TOKEN={SECRET}\n").as_bytes());
    std::fs::create_dir(site.dir.join("public/sub")).unwrap();
    let secret_file = site.write("secret.txt", format!("{SECRET}\n").as_bytes());
    // Beside the served directory, under the name the brief's attack uses.
    site.write("Cargo.toml", format!("[package] # {SECRET}\n").as_bytes());
    std::os::unix::fs::symlink("../secret.txt", site.dir.join("public/link.txt")).unwrap();
    let hello = site.start();

    // The server serves: the 404s below are refusals, not a dead mount.
    let ok = curl_one(&[&hello.url("/static/ok.txt")]);
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.body, b"public bytes\n");

    let absolute = format!("/static{}", secret_file.display());
    let attacks = [
        "/static/../Cargo.toml",
        "/static/%2e%2e/Cargo.toml",
        "/static/%2E%2E/secret.txt",
        "/static/.%2e/secret.txt",
        "/static/..%2fsecret.txt",
        "/static/%2e%2e%2fsecret.txt",
        "/static/sub/../../secret.txt",
        "/static/sub/%2e%2e/%2e%2e/secret.txt",
        "/static/..%5csecret.txt",
        "/static/%5c..%5csecret.txt",
        "/static/ok.txt%00/../../secret.txt",
        "/static/link.txt",
        "/static/.env",
        "/static/%2eenv",
        &absolute,
    ];
    for attack in attacks {
        let response = curl_one(&["--path-as-is", &hello.url(attack)]);
        let body = String::from_utf8_lossy(&response.body);
        assert!(!body.contains(SECRET), "{attack} leaked the secret: {body}");
        assert_eq!(response.status(), 404, "{attack}: {response:?}");
    }
    // A raw backslash is no valid request target: the parser refuses it.
    let response = curl_one(&["--path-as-is", &hello.url("/static/..\\secret.txt")]);
    assert!(!String::from_utf8_lossy(&response.body).contains(SECRET));
    assert_eq!(response.status(), 400, "{response:?}");
}

#[test]
fn a_bad_static_dir_is_refused_at_start() {
    let site = Site::new("bad-dir");
    let file = site.write("public/file.txt", b"x");
    for dir in [site.dir.join("missing"), file] {
        let refused = Command::new(env!("CARGO_BIN_EXE_hello"))
            .args(["--addr", "127.0.0.1:0", "--static"])
            .arg(&dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(
            refused.status.code(),
            Some(2),
            "{}: {stderr}",
            dir.display()
        );
        assert!(
            stderr.starts_with(&format!("hello: --static {}: ", dir.display())),
            "{stderr}"
        );
    }
}

/// The 1 GiB file: 16,384 blocks of 64 KiB, each the same pseudo-random
/// bytes but for its first 8, which hold the block's index, so that a lost,
/// repeated or misplaced block shows as a wrong index.
const BLOCK: usize = 64 * 1024;
const BLOCKS: u64 = 16 * 1024;

fn fill_block(block: &mut [u8], base: &[u8], index: u64) {
    block.copy_from_slice(base);
    block[..8].copy_from_slice(&index.to_le_bytes());
}

/// Reads a download to its end and checks it block by block: the SHA-256
/// of all of it, and where it differs from the file, the first block that
/// does (with the index it holds instead).
fn check_download(mut download: impl Read, base: &[u8], expected: &[u8]) -> Result<(), String> {
    let mut hash = Sha256::new();
    let mut got = vec![0u8; BLOCK];
    let mut want = vec![0u8; BLOCK];
    let mut first_bad = None;
    let mut total = 0u64;
    loop {
        let mut filled = 0;
        while filled < BLOCK {
            match download.read(&mut got[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) => return Err(format!("read after {total} bytes: {e}")),
            }
        }
        if filled == 0 {
            break;
        }
        let index = total / BLOCK as u64;
        hash.update(&got[..filled]);
        fill_block(&mut want, base, index);
        if first_bad.is_none() && got[..filled] != want[..filled] {
            let held = u64::from_le_bytes(got[..8].try_into().unwrap());
            first_bad = Some(format!(
                "block {index} differs (it starts with index {held})"
            ));
        }
        total += filled as u64;
    }
    let digest = hash.finalize();
    if total != BLOCKS * BLOCK as u64 || digest[..] != *expected || first_bad.is_some() {
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        return Err(format!(
            "{total} bytes, SHA-256 {hex}; {}",
            first_bad.unwrap_or_else(|| "every block matches as far as it goes".into())
        ));
    }
    Ok(())
}

#[test]
fn a_1_gib_download_is_byte_exact_with_curl_and_wget() {
    let site = Site::new("1gib");
    let base = util::pseudo_random_bytes(BLOCK);
    let started = Instant::now();
    let mut hash = Sha256::new();
    {
        let file = File::create(site.dir.join("public/big.bin")).expect("create big.bin");
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut block = vec![0u8; BLOCK];
        for index in 0..BLOCKS {
            fill_block(&mut block, &base, index);
            hash.update(&block);
            out.write_all(&block).expect("write big.bin");
        }
        out.into_inner().expect("flush big.bin");
    }
    let expected = hash.finalize();
    eprintln!("wrote 1 GiB in {:?}", started.elapsed());
    let hello = site.start();
    let url = hello.url("/static/big.bin");

    let started = Instant::now();
    let saved = site.dir.join("curl.bin");
    let output = curl_within(
        Duration::from_secs(120),
        &[
            "-o",
            saved.to_str().unwrap(),
            "-w",
            "%{http_code} %{size_download}",
            &url,
        ],
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "200 1073741824");
    let file = File::open(&saved).expect("curl's file");
    let checked = check_download(file, &base, &expected);
    let _ = std::fs::remove_file(&saved);
    checked.unwrap_or_else(|why| panic!("curl's download: {why}"));
    eprintln!(
        "curl: downloaded and checked 1 GiB in {:?}",
        started.elapsed()
    );

    // wget, hashed as it streams (no second 1 GiB on disk).
    let started = Instant::now();
    let mut wget = Command::new("wget")
        .args(["-q", "--timeout=30", "--tries=1", "-O-", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run wget ({e}): this test needs it on the PATH \
                 (Debian/Ubuntu: `apt-get install wget`); it does not skip without it"
            )
        });
    let checked = check_download(wget.stdout.take().unwrap(), &base, &expected);
    let status = wget.wait().expect("wait for wget");
    let mut stderr = String::new();
    let _ = wget.stderr.take().unwrap().read_to_string(&mut stderr);
    assert!(status.success(), "wget failed ({status}): {stderr}");
    checked.unwrap_or_else(|why| panic!("wget's download: {why}"));
    eprintln!(
        "wget: streamed and checked 1 GiB in {:?}",
        started.elapsed()
    );

    // The server sent 2 GiB without holding the file in its memory.
    let rss = hello.rss_bytes();
    assert!(rss < 64 << 20, "hello's RSS grew to {rss} bytes");
}
