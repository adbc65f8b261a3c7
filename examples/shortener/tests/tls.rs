//! HTTPS on the real binary (`--tls-cert`, `--tls-key`, `--tls-sni`,
//! `--hsts-max-age`, `SIGHUP`), with real clients: curl `--cacert`,
//! `openssl s_client`, and a rustls client for a connection held across a
//! certificate reload. Certificates are made per test by `test_certs`.

mod util;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::Value;
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_certs::{CertDir, OTHER_NAME};
use util::{command, data_dir, poll, read_response, Options, Shortener};

/// The TLS flags for `certs`: the main certificate by default, the other
/// for its name.
fn tls_options(certs: &CertDir) -> Options {
    let f = &certs.files;
    let sni = format!(
        "{OTHER_NAME}={},{}",
        f.other_cert.display(),
        f.other_key.display()
    );
    Options::new()
        .arg("--tls-cert", path(&f.server_cert))
        .arg("--tls-key", path(&f.server_key))
        .arg("--tls-sni", &sni)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// `curl -sS --cacert CA ARGS` (10 s at most).
fn curl(ca: &Path, args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert", path(ca)])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("curl runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Waits up to 5 s for the server's stderr to contain `wanted`.
/// Waits until stderr holds a whole line containing `wanted`: the process
/// writes a formatted line in pieces, and the test must not read half of it.
fn wait_stderr(server: &Shortener, wanted: &str) -> String {
    poll(Duration::from_secs(5), || {
        let err = server.stderr();
        let at = err.find(wanted)?;
        err[at..].contains('\n').then_some(err)
    })
    .unwrap_or_else(|| panic!("no {wanted:?} on stderr: {}", server.stderr()))
}

fn sighup(server: &Shortener) {
    let status = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -HUP: {status}");
}

#[test]
fn curl_shortens_a_link_over_https_and_its_short_url_redirects() {
    let certs = CertDir::generate().unwrap();
    let server = tls_options(&certs).admin_key().start();
    let base = format!("https://{}", server.addr());
    let auth = format!("Authorization: Bearer {}", server.key().unwrap());
    let created = curl(
        &certs.files.ca,
        &[
            "-H",
            &auth,
            "-H",
            "Content-Type: application/json",
            "--data",
            r#"{"url":"https://example.com/over-tls"}"#,
            "-w",
            "\n%{http_code}",
            &format!("{base}/api/links"),
        ],
    );
    let out = text(&created.stdout);
    let (body, code) = out.rsplit_once('\n').unwrap();
    assert_eq!(code, "201", "{out} {}", text(&created.stderr));
    let link: Value = serde_json::from_str(body).unwrap();
    // Without --base-url, short links are https:// once TLS is on.
    let short = link["short_url"].as_str().unwrap();
    assert!(short.starts_with(&format!("{base}/")), "{short}");

    let followed = curl(
        &certs.files.ca,
        &[
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url} %{ssl_verify_result}",
            short,
        ],
    );
    let out = text(&followed.stdout);
    assert!(
        out.ends_with("302 https://example.com/over-tls 0"),
        "{out} {}",
        text(&followed.stderr)
    );
    assert!(
        !out.to_ascii_lowercase()
            .contains("strict-transport-security"),
        "HSTS only when asked: {out}"
    );
    // Plain HTTP to the same port: keel's 400, in the clear, then closed.
    let plain = server.get(&format!("/{}", link["slug"].as_str().unwrap()));
    assert_eq!(plain.status, 400, "{}", plain.text());
    assert!(plain.text().contains("https://"), "{}", plain.text());
}

#[test]
fn sni_picks_the_certificate_for_the_name_asked() {
    let certs = CertDir::generate().unwrap();
    let server = tls_options(&certs).start();
    let port = server.addr().port();
    let get = |name: &str| {
        let resolve = format!("{name}:{port}:127.0.0.1");
        curl(
            &certs.files.ca,
            &[
                "--resolve",
                &resolve,
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("https://{name}:{port}/health"),
            ],
        )
    };
    // curl checks the certificate against the name: other.localhost is
    // only in the --tls-sni certificate.
    let other = get(OTHER_NAME);
    assert_eq!(text(&other.stdout), "200", "{}", text(&other.stderr));
    let main = get("localhost");
    assert_eq!(text(&main.stdout), "200", "{}", text(&main.stderr));
    // A name with no certificate of its own gets the default one, which
    // is not valid for it: the client refuses (curl's 60).
    let unknown = get("third.localhost");
    assert_eq!(unknown.status.code(), Some(60), "{}", text(&unknown.stderr));

    // openssl s_client shows the subject each name gets.
    let subject = |name: &str| {
        let out = Command::new("openssl")
            .args(["s_client", "-connect", &server.addr().to_string()])
            .args(["-servername", name, "-CAfile", path(&certs.files.ca)])
            .stdin(Stdio::null())
            .output()
            .expect("openssl runs");
        let out = text(&out.stdout);
        out.lines()
            .find(|l| l.starts_with("subject="))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no subject: {out}"))
    };
    assert!(subject(OTHER_NAME).ends_with(OTHER_NAME));
    assert!(subject("localhost").ends_with("CN = localhost"));
}

/// A rustls client (aws-lc-rs) trusting `ca_pem`, offering `http/1.1`.
fn client_config(ca_pem: &str) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

type TlsClient = StreamOwned<ClientConnection, TcpStream>;

/// A finished handshake with `server` as `localhost`, trusting `ca_pem`.
fn connect(server: &Shortener, ca_pem: &str) -> Result<TlsClient, std::io::Error> {
    let name = ServerName::try_from("localhost").unwrap();
    let session = ClientConnection::new(client_config(ca_pem), name).unwrap();
    let mut stream = StreamOwned::new(session, server.connect());
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// A keep-alive `GET /health` on `stream`: its status.
fn health(stream: &mut TlsClient) -> u16 {
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    read_response(stream, false).status
}

#[test]
fn sighup_reloads_the_certificates_and_open_connections_keep_theirs() {
    let old = CertDir::generate().unwrap();
    let server = tls_options(&old).start();
    let mut kept = connect(&server, &old.pki.ca_pem).expect("a handshake on the old certificate");
    assert_eq!(health(&mut kept), 200);

    // A renewal: new files where the old ones were (another CA, so that
    // which certificate a handshake got is beyond doubt).
    let new = test_certs::Pki::generate().unwrap();
    new.write_to(old.path()).unwrap();
    sighup(&server);
    wait_stderr(&server, "SIGHUP: TLS certificates reloaded");
    let err = connect(&server, &old.pki.ca_pem).err();
    assert!(
        err.is_some(),
        "a new handshake still got the old certificate"
    );
    let mut fresh = connect(&server, &new.ca_pem).expect("a handshake on the new certificate");
    assert_eq!(health(&mut fresh), 200);
    // The connection opened before the reload goes on, on its own keys.
    assert_eq!(health(&mut kept), 200);
    assert_eq!(health(&mut kept), 200);

    // A broken renewal (a truncated file) changes nothing: the log names
    // the file, and handshakes still get the certificate in use.
    std::fs::write(
        &old.files.server_cert,
        "-----BEGIN CERTIFICATE-----\nAAAA\n",
    )
    .unwrap();
    sighup(&server);
    let log = wait_stderr(
        &server,
        "reload failed, the previous certificates stay in use",
    );
    assert!(log.contains(path(&old.files.server_cert)), "{log}");
    let mut after = connect(&server, &new.ca_pem).expect("still the new certificate");
    assert_eq!(health(&mut after), 200);
    assert_eq!(health(&mut kept), 200);
}

#[test]
fn sighup_without_tls_is_logged_and_the_server_keeps_serving() {
    let server = Shortener::start();
    sighup(&server);
    wait_stderr(&server, "SIGHUP: no TLS certificates to reload");
    assert_eq!(server.get("/health").status, 200);
}

#[test]
fn hsts_is_sent_over_tls_when_asked() {
    let certs = CertDir::generate().unwrap();
    let server = tls_options(&certs).arg("--hsts-max-age", "300").start();
    let head = curl(
        &certs.files.ca,
        &["-I", &format!("https://{}/", server.addr())],
    );
    let out = text(&head.stdout).to_ascii_lowercase();
    assert!(
        out.contains("strict-transport-security: max-age=300\r\n"),
        "{out} {}",
        text(&head.stderr)
    );
}

#[test]
fn tls_works_on_the_unix_socket_too() {
    let certs = CertDir::generate().unwrap();
    let server = tls_options(&certs).unix().start();
    let socket = server.unix_path().unwrap();
    let res = curl(
        &certs.files.ca,
        &[
            "--unix-socket",
            path(socket),
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "https://localhost/health",
        ],
    );
    assert_eq!(text(&res.stdout), "200", "{}", text(&res.stderr));
    // Plaintext on it is the same 400 as on TCP.
    assert_eq!(server.get("/health").status, 400);
}

/// Runs `shortener ARGS` that must fail before it listens: its stderr.
fn refused(args: &[&str]) -> String {
    let data = data_dir();
    let mut child = command()
        .args(["--data", &data.arg(), "--addr", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn shortener");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("shortener {args:?} started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    assert!(!status.success(), "{args:?} exited with success");
    text(&out.stderr)
}

#[test]
fn bad_tls_flags_are_refused_at_start_with_the_reason() {
    let certs = CertDir::generate().unwrap();
    let f = &certs.files;
    let (cert, key) = (path(&f.server_cert), path(&f.server_key));
    let err = refused(&["--tls-cert", cert]);
    assert!(err.contains("--tls-key"), "{err}");
    let err = refused(&["--tls-key", key]);
    assert!(err.contains("--tls-cert"), "{err}");
    let err = refused(&["--hsts-max-age", "300"]);
    assert!(err.contains("--tls-cert"), "{err}");

    let missing = certs.path().join("missing.pem");
    let err = refused(&["--tls-cert", path(&missing), "--tls-key", key]);
    assert!(err.contains(path(&missing)), "{err}");
    // A key that is not the certificate's: both files named.
    let err = refused(&["--tls-cert", cert, "--tls-key", path(&f.other_key)]);
    assert!(
        err.contains(cert) && err.contains(path(&f.other_key)),
        "{err}"
    );
    // A file of the wrong kind (the key given as the certificate).
    let err = refused(&["--tls-cert", key, "--tls-key", key]);
    assert!(err.contains(key), "{err}");

    let wrong_name = format!(
        "wrong.localhost={},{}",
        path(&f.other_cert),
        path(&f.other_key)
    );
    let err = refused(&[
        "--tls-cert",
        cert,
        "--tls-key",
        key,
        "--tls-sni",
        &wrong_name,
    ]);
    assert!(err.contains("wrong.localhost"), "{err}");
    let err = refused(&[
        "--tls-cert",
        cert,
        "--tls-key",
        key,
        "--tls-sni",
        "other.localhost",
    ]);
    assert!(err.contains("NAME=CERT,KEY"), "{err}");
}
