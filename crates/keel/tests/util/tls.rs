//! TLS test helpers: a keel server speaking TLS with the test PKI's
//! certificates, and a rustls client that trusts the test CA.

use keel::tls::{Certificates, TlsConfig};
use keel::{Config, Handler, Server, ServerHandle};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// A TLS client stream to the test server.
pub type TlsClient = StreamOwned<ClientConnection, TcpStream>;

/// A keel server on 127.0.0.1 speaking TLS, with the files of its PKI.
pub struct TlsServer {
    pub handle: ServerHandle,
    pub tls: TlsConfig,
    pub certs: test_certs::CertDir,
}

impl TlsServer {
    /// Serves `handler` over TLS: the main certificate by default, the
    /// other one for `other.localhost`.
    pub fn start(handler: impl Handler, config: Config) -> TlsServer {
        TlsServer::start_on(Server::bind("127.0.0.1:0"), handler, config)
    }

    /// [`start`](TlsServer::start) on `listen` (a Unix socket, a listener
    /// without deferred accepts...).
    pub fn start_on(listen: Server, handler: impl Handler, config: Config) -> TlsServer {
        let certs = test_certs::CertDir::generate().expect("test certificates");
        let tls = TlsConfig::new(certificates(&certs.pki)).expect("TLS config");
        let handle = listen
            .tls(&tls)
            .workers(1)
            .config(config)
            .serve(handler)
            .expect("serve");
        TlsServer { handle, tls, certs }
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// A plain TCP connection to the TLS port (no handshake), reads
    /// timing out after 5 s.
    pub fn raw(&self) -> TcpStream {
        let socket = TcpStream::connect(self.addr()).expect("connect");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        socket
    }

    /// A client config trusting this server's CA, offering `http/1.1`.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        client_config(&self.certs.pki.ca_pem, &[b"http/1.1"])
    }

    /// A completed TLS connection asking for `name`.
    pub fn connect(&self, name: &str) -> TlsClient {
        connect(self.addr(), name, self.client_config()).expect("TLS connection")
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.handle.shutdown(Duration::ZERO);
        self.handle.join();
    }
}

/// The PKI's main certificate as the default, the other for its name.
pub fn certificates(pki: &test_certs::Pki) -> Certificates {
    Certificates::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes())
        .and_then(|c| {
            c.with_sni_pem(
                test_certs::OTHER_NAME,
                pki.other.cert.as_bytes(),
                pki.other.key.as_bytes(),
            )
        })
        .expect("certificates")
}

/// A rustls client config (aws-lc-rs) trusting `ca_pem`, offering `alpn`.
pub fn client_config(ca_pem: &str, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Connects and completes the handshake (an error if it fails).
pub fn connect(
    addr: SocketAddr,
    name: &str,
    config: Arc<ClientConfig>,
) -> Result<TlsClient, std::io::Error> {
    let name = ServerName::try_from(name.to_owned()).expect("server name");
    let session = ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let socket = TcpStream::connect(addr)?;
    socket.set_read_timeout(Some(Duration::from_secs(5)))?;
    socket.set_nodelay(true)?;
    let mut stream = StreamOwned::new(session, socket);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}
