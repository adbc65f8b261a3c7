//! The `hello` contract over TLS on hyper 1.x and tokio-rustls: the
//! baseline of `load/tls.sh`, set up as tokio-rustls's own server example
//! does, with the same rustls version and crypto provider (aws-lc-rs) that
//! keel's TLS uses.
//!
//! - Certificate chain and key from PEM files (rustls-pki-types's PEM
//!   reader), one certificate for every name (no SNI choice).
//! - rustls's safe defaults: TLS 1.3 and 1.2, its cipher suites and key
//!   exchange groups (X25519MLKEM768 first where the client offers it,
//!   then X25519, P-256, P-384).
//! - ALPN `http/1.1` (a client that offers ALPN without it is refused with
//!   `no_application_protocol`; one that offers none is served).
//! - Session resumption as rustls configures it by default: a 256-entry
//!   in-memory session cache (`ServerSessionMemoryCache`), TLS 1.2
//!   resuming by session ID and TLS 1.3 by the 2 tickets sent after each
//!   handshake, which are keys into that cache (stateful, each used once);
//!   no stateless ticketer. `--resumption tickets` adds rustls's stateless
//!   ticketer (aws-lc-rs, keys rotated every 6 hours): the tickets then
//!   carry the session and the cache only serves TLS 1.2 session IDs.
//! - Each accepted connection: `TCP_NODELAY`, the TLS handshake on its own
//!   task, then [`hyper_app::serve_connection`] over the TLS stream. No
//!   handshake deadline (hyper's baseline runs no timer): a stalled
//!   handshake holds its task until the peer goes away.

use crate::hyper_app;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ServerConfig;
use std::path::Path;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// The ALPN protocol offered: HTTP/1.1 alone (keel speaks nothing else).
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// How TLS sessions are resumed (`--resumption`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resumption {
    /// rustls's default: the 256-entry session cache, TLS 1.3 tickets that name its entries.
    Cache,
    /// rustls's stateless ticketer on top of the cache: self-contained TLS 1.3 tickets.
    Tickets,
}

impl Resumption {
    /// `cache` or `tickets`.
    ///
    /// # Errors
    ///
    /// Any other word, as a message for the command line.
    pub fn parse(word: &str) -> Result<Resumption, String> {
        match word {
            "cache" => Ok(Resumption::Cache),
            "tickets" => Ok(Resumption::Tickets),
            other => Err(format!("--resumption: cache or tickets, not {other:?}")),
        }
    }
}

/// The server's rustls configuration: the chain in `cert` (PEM, leaf
/// first), the private key in `key` (PEM: PKCS#8, PKCS#1 or SEC1), the
/// aws-lc-rs provider, safe defaults, ALPN `http/1.1`, and `resumption`.
///
/// # Errors
///
/// A message naming the file when it cannot be read, holds no certificate
/// or key, or the key does not fit the certificate.
pub fn server_config(
    cert: &Path,
    key: &Path,
    resumption: Resumption,
) -> Result<Arc<ServerConfig>, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no CERTIFICATE in it", cert.display()));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("rustls: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| format!("{} with {}: {e}", cert.display(), key.display()))?;
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    if resumption == Resumption::Tickets {
        config.ticketer =
            rustls::crypto::aws_lc_rs::Ticketer::new().map_err(|e| format!("rustls: {e}"))?;
    }
    Ok(Arc::new(config))
}

/// Serves [`hyper_app::hello`] over TLS on every connection `listener` accepts.
pub async fn accept_loop(listener: TcpListener, config: Arc<ServerConfig>) {
    let acceptor = TlsAcceptor::from(config);
    hyper_app::accept_each(listener, move |stream: TcpStream| {
        let acceptor = acceptor.clone();
        async move {
            // A failed handshake (a plaintext request, garbage, a peer that
            // leaves) ends the connection: rustls has queued its alert and
            // tokio-rustls sent it.
            if let Ok(tls) = acceptor.accept(stream).await {
                hyper_app::serve_connection(tls).await;
            }
        }
    })
    .await;
}
