//! A blocking rustls client (aws-lc-rs, the server's provider) for the TLS
//! benches and tests: connect and finish the handshake, verifying the
//! server against a CA file; send the hello contract's `GET /plaintext` on
//! the connection; for `load/tls.sh` (the `tls_client` binary), time
//! handshakes on several threads ([`handshakes`]: full or resumed, each
//! counted by what rustls says the handshake was) and hold many
//! connections idle ([`hold_idle`]) while the script reads the server's
//! resident memory.
//!
//! Why not `openssl s_time` for the handshake rates: OpenSSL 3.0's client
//! spent about four times the server's CPU per handshake here, so on the
//! other core it, not the server, set the rate. This client does the same
//! work (verifying the chain too) for less.

use crate::wire;
use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, HandshakeKind, RootCertStore, StreamOwned};
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A TLS stream over a blocking socket.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// How long one read or write may wait: a server that stalls fails the
/// client instead of hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A client configuration that trusts the CA certificates in `ca` (PEM)
/// alone, offers ALPN `http/1.1` and uses rustls's safe defaults on
/// aws-lc-rs (X25519MLKEM768 first among the key exchange groups, a
/// 256-entry session cache for resumption).
///
/// # Errors
///
/// A message naming the file when it cannot be read or holds no usable
/// certificate.
pub fn client_config(ca: &Path) -> Result<Arc<ClientConfig>, String> {
    client_config_with(ca, rustls::crypto::aws_lc_rs::default_provider())
}

/// [`client_config`] with `provider` (say, one offering fewer key exchange groups).
///
/// # Errors
///
/// As [`client_config`].
pub fn client_config_with(
    ca: &Path,
    provider: rustls::crypto::CryptoProvider,
) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))? {
        let cert = cert.map_err(|e| format!("{}: {e}", ca.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: no CA certificate in it", ca.display()));
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("rustls: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![crate::hyper_tls::ALPN_HTTP1.to_vec()];
    Ok(Arc::new(config))
}

/// Connects to `addr` and completes the TLS handshake for `name`.
///
/// # Errors
///
/// When the connection fails, or the handshake does (a certificate the CA
/// did not sign or not for `name`, no common protocol, a timeout).
pub fn connect(
    addr: SocketAddr,
    name: &ServerName<'static>,
    config: &Arc<ClientConfig>,
) -> io::Result<TlsStream> {
    let sock = TcpStream::connect(addr)?;
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(IO_TIMEOUT))?;
    sock.set_write_timeout(Some(IO_TIMEOUT))?;
    let conn = ClientConnection::new(Arc::clone(config), name.clone()).map_err(io::Error::other)?;
    let mut stream = StreamOwned::new(conn, sock);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// Sends [`wire::PLAINTEXT`] and reads its response into `buf`.
///
/// # Errors
///
/// When the exchange fails, or the answer is not `200` with `Hello, World!`.
pub fn get_plaintext(stream: &mut TlsStream, buf: &mut Vec<u8>) -> io::Result<()> {
    wire::round_trip(stream, wire::PLAINTEXT, 1, buf)?;
    if buf.starts_with(b"HTTP/1.1 200 ") && buf.ends_with(b"\r\n\r\nHello, World!") {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "not the hello answer: {:?}",
            String::from_utf8_lossy(buf)
        )))
    }
}

/// What [`hold_idle`] does.
#[derive(Clone, Debug)]
pub struct IdleOptions {
    /// The server.
    pub addr: SocketAddr,
    /// The name to verify (and send as SNI where it is a DNS name).
    pub name: ServerName<'static>,
    /// How many connections to open and hold.
    pub connections: usize,
    /// `GET /plaintext` requests on each connection after its handshake.
    pub requests: usize,
    /// How long to hold them once all are open.
    pub hold: Duration,
}

/// Opens `connections` TLS connections one after another, each with a
/// completed handshake and `requests` answered requests, prints `READY
/// connections=N seconds=S` (the time to open them all) on stdout, holds
/// them idle for `hold`, and closes them (each with a `close_notify`).
///
/// # Errors
///
/// The first connection, handshake or request that fails, with its number.
pub fn hold_idle(options: &IdleOptions, config: &Arc<ClientConfig>) -> io::Result<()> {
    let started = Instant::now();
    let mut held = Vec::with_capacity(options.connections);
    let mut buf = Vec::new();
    for i in 0..options.connections {
        let mut stream = connect(options.addr, &options.name, config)
            .map_err(|e| io::Error::new(e.kind(), format!("connection {i}: {e}")))?;
        for _ in 0..options.requests {
            get_plaintext(&mut stream, &mut buf)
                .map_err(|e| io::Error::new(e.kind(), format!("connection {i}: {e}")))?;
        }
        held.push(stream);
    }
    let mut stdout = io::stdout().lock();
    writeln!(
        stdout,
        "READY connections={} seconds={:.3}",
        held.len(),
        started.elapsed().as_secs_f64()
    )?;
    stdout.flush()?;
    std::thread::sleep(options.hold);
    for mut stream in held {
        stream.conn.send_close_notify();
        // The server may have gone first; nothing to report then.
        let _ = stream.conn.complete_io(&mut stream.sock);
    }
    Ok(())
}

/// How [`handshakes`] ran.
#[derive(Clone, Copy, Debug, Default)]
pub struct HandshakeCount {
    /// Connections made, each with its one request answered.
    pub connections: u64,
    /// Of those, the ones rustls reports as resumed.
    pub resumed: u64,
}

/// For `duration`, on each of `threads` threads, connects to `addr` again
/// and again: a TLS handshake for `name`, one `GET /plaintext` answered,
/// and the client closes. With `resume`, each thread keeps its own client
/// session cache (rustls's default, 256 entries), so every connection
/// after its first offers the ticket the previous one got; without it, no
/// session is kept and every handshake is full.
///
/// # Errors
///
/// The first connection, handshake or request that fails.
pub fn handshakes(
    addr: SocketAddr,
    name: &ServerName<'static>,
    config: &ClientConfig,
    resume: bool,
    threads: usize,
    duration: Duration,
) -> io::Result<HandshakeCount> {
    let deadline = Instant::now() + duration;
    let counts = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let mut config = config.clone();
                config.resumption = if resume {
                    Resumption::default()
                } else {
                    Resumption::disabled()
                };
                let config = Arc::new(config);
                scope.spawn(move || -> io::Result<HandshakeCount> {
                    let mut count = HandshakeCount::default();
                    let mut buf = Vec::new();
                    while Instant::now() < deadline {
                        let mut stream = connect(addr, name, &config)?;
                        get_plaintext(&mut stream, &mut buf)?;
                        count.connections += 1;
                        if stream.conn.handshake_kind() == Some(HandshakeKind::Resumed) {
                            count.resumed += 1;
                        }
                    }
                    Ok(count)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("a client thread panicked")))
            })
            .collect::<io::Result<Vec<_>>>()
    })?;
    Ok(counts
        .into_iter()
        .fold(HandshakeCount::default(), |total, count| HandshakeCount {
            connections: total.connections + count.connections,
            resumed: total.resumed + count.resumed,
        }))
}
