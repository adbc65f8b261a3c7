//! The generated certificates verify as a TLS client would check them
//! (rustls's WebPKI verifier, aws-lc-rs): each server certificate for its
//! own names only, and only against the CA of the same set.

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::RootCertStore;
use std::sync::Arc;
use test_certs::{CertDir, Pki, OTHER_NAME, SERVER_NAMES};

fn verifier(ca_pem: &str) -> Arc<WebPkiServerVerifier> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("a CA certificate"))
        .expect("a usable trust anchor");
    WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
    )
    .build()
    .expect("a verifier")
}

fn verifies(verifier: &WebPkiServerVerifier, cert_pem: &str, name: &str) -> bool {
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("a certificate");
    let name = ServerName::try_from(name.to_owned()).expect("a server name");
    verifier
        .verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
        .is_ok()
}

#[test]
fn each_certificate_verifies_for_its_own_names_only() {
    let pki = Pki::generate().expect("certificates");
    let verifier = verifier(&pki.ca_pem);
    for name in SERVER_NAMES {
        assert!(verifies(&verifier, &pki.server.cert, name), "{name}");
        assert!(!verifies(&verifier, &pki.other.cert, name), "{name}");
    }
    assert!(verifies(&verifier, &pki.other.cert, OTHER_NAME));
    assert!(!verifies(&verifier, &pki.server.cert, OTHER_NAME));
    assert!(!verifies(&verifier, &pki.server.cert, "127.0.0.2"));
}

#[test]
fn another_sets_ca_does_not_vouch_for_these_certificates() {
    let ours = Pki::generate().expect("certificates");
    let theirs = Pki::generate().expect("certificates");
    assert!(!verifies(
        &verifier(&theirs.ca_pem),
        &ours.server.cert,
        "localhost"
    ));
}

#[test]
fn the_files_hold_the_pem_and_go_away_with_the_dir() {
    let certs = CertDir::generate().expect("certificates");
    let read = |path: &std::path::Path| std::fs::read_to_string(path).expect("a written file");
    assert_eq!(read(&certs.files.ca), certs.pki.ca_pem);
    assert_eq!(read(&certs.files.server_cert), certs.pki.server.cert);
    assert_eq!(read(&certs.files.server_key), certs.pki.server.key);
    assert_eq!(read(&certs.files.other_cert), certs.pki.other.cert);
    assert_eq!(read(&certs.files.other_key), certs.pki.other.key);
    assert!(certs
        .pki
        .server
        .key
        .starts_with("-----BEGIN PRIVATE KEY-----"));
    let dir = certs.path().to_owned();
    drop(certs);
    assert!(!dir.exists());
}
