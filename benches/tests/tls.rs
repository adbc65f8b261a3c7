//! `hyper_tls` (the baseline of `load/tls.sh`) as a process over loopback,
//! with certificates made for the run (`test-certs`): a rustls client that
//! trusts only the generated CA gets the hello answer with ALPN `http/1.1`,
//! by name and by address, and refuses a certificate for another name; a
//! client that offers only another protocol is refused; and a plaintext
//! HTTP request to the TLS port is closed with no HTTP answer (a TLS alert
//! at most) while the server goes on serving TLS.

mod util;

use keel_benches::tls_client::{self, TlsStream};
use rustls::pki_types::ServerName;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_certs::CertDir;
use util::Spawned;

/// `hyper_tls` serving the generated server certificate on a free port,
/// killed on drop.
struct Server {
    spawned: Spawned,
    certs: CertDir,
}

impl Server {
    fn start() -> Server {
        let certs = CertDir::generate().expect("test certificates");
        let mut command = Command::new(env!("CARGO_BIN_EXE_hyper_tls"));
        command
            .arg("--cert")
            .arg(&certs.files.server_cert)
            .arg("--key")
            .arg(&certs.files.server_key);
        Server {
            spawned: Spawned::start(command, "https"),
            certs,
        }
    }

    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        tls_client::client_config(&self.certs.files.ca).expect("a client config")
    }

    fn connect(&self, name: &str) -> std::io::Result<TlsStream> {
        let name = ServerName::try_from(name.to_owned()).expect("a server name");
        tls_client::connect(self.spawned.addr, &name, &self.client_config())
    }
}

#[test]
fn a_get_over_tls_verifies_against_the_generated_ca_with_alpn_http1() {
    let server = Server::start();
    for name in test_certs::SERVER_NAMES {
        let mut stream = server.connect(name).expect("a verified handshake");
        assert_eq!(
            stream.conn.alpn_protocol(),
            Some(&b"http/1.1"[..]),
            "{name}"
        );
        let mut buf = Vec::new();
        // Twice on one connection: keep-alive over TLS.
        tls_client::get_plaintext(&mut stream, &mut buf).expect("the hello answer");
        tls_client::get_plaintext(&mut stream, &mut buf).expect("a second answer");
    }
}

#[test]
fn a_client_refuses_the_certificate_for_a_name_it_does_not_hold() {
    let server = Server::start();
    let refused = server
        .connect(test_certs::OTHER_NAME)
        .expect_err("the handshake fails");
    assert!(
        refused.to_string().contains("certificate"),
        "a certificate error, got {refused}"
    );
}

#[test]
fn a_client_offering_only_another_protocol_is_refused() {
    let server = Server::start();
    let mut config = (*server.client_config()).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name = ServerName::try_from("localhost").expect("a server name");
    let refused = tls_client::connect(server.spawned.addr, &name, &Arc::new(config))
        .expect_err("the handshake fails");
    assert!(
        refused.to_string().contains("NoApplicationProtocol"),
        "no_application_protocol, got {refused}"
    );
}

#[test]
fn a_plaintext_request_to_the_tls_port_is_closed_without_an_http_answer() {
    let server = Server::start();
    let mut plain = TcpStream::connect(server.spawned.addr).expect("connects");
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a timeout");
    plain
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("sends");
    let started = Instant::now();
    let mut answer = Vec::new();
    // A reset after the alert is a close too; a timeout is not.
    match plain.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server did not close within 5 s: {e}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        !answer.windows(5).any(|w| w == b"HTTP/"),
        "no HTTP answer: {answer:?}"
    );
    // Nothing, or TLS alert records (content type 21) and nothing else.
    let mut rest = &answer[..];
    while !rest.is_empty() {
        assert!(
            rest.len() >= 5 && rest[0] == 21 && rest[1] == 3,
            "a TLS alert record, got {answer:?}"
        );
        let len = 5 + usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        rest = &rest[len.min(rest.len())..];
    }
    let mut stream = server
        .connect("localhost")
        .expect("the server still serves TLS");
    tls_client::get_plaintext(&mut stream, &mut Vec::new()).expect("the hello answer");
}
