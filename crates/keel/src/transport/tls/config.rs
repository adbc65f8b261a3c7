//! What a TLS listener presents: certificates (one by default, more chosen
//! by the name the client asks for), rustls's safe defaults, ALPN
//! `http/1.1`, session resumption, and a reload that new handshakes see
//! while established connections keep what they agreed.

use parking_lot::RwLock;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, ResolvesServerCertUsingSni};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The ALPN protocol a keel TLS listener agrees: HTTP/1.1 alone. A client
/// that offers ALPN without it is refused (`no_application_protocol`, as
/// RFC 7301 §3.2 asks); one that offers no ALPN is served.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Why certificates or a TLS configuration could not be made.
#[derive(Debug)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing of the kind needed.
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The private key does not fit the certificate, or rustls refused it.
    Key(rustls::Error),
    /// The certificate is not valid for the name it was added for.
    Name {
        /// The server name.
        name: String,
        /// What rustls found.
        reason: rustls::Error,
    },
    /// A [`Certificates`] with none in it.
    NoCertificate,
    /// rustls refused the configuration (the provider's protocol versions).
    Config(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Pem { path, reason } => write!(f, "{}: {reason}", path.display()),
            TlsError::Key(e) => write!(f, "private key: {e}"),
            TlsError::Name { name, reason } => write!(f, "certificate for {name:?}: {reason}"),
            TlsError::NoCertificate => f.write_str("no certificate given"),
            TlsError::Config(e) => write!(f, "TLS configuration: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// The crypto provider every keel TLS configuration names: aws-lc-rs,
/// rustls's default (built here with the C compiler alone: `aws-lc-sys`
/// ships its bindings), named explicitly so that a second provider
/// compiled in by another crate cannot make the choice ambiguous.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The certificates a TLS listener presents: a default one, and others
/// chosen by the name the client asks for (SNI). A client that names
/// none, or a name no certificate was added for, gets the default; with
/// no default, such a handshake fails (`unrecognized_name`).
///
/// Loading allocates; nothing here runs per connection.
///
/// ```
/// use keel::tls::{Certificates, TlsConfig};
///
/// let pki = test_certs::Pki::generate()?;
/// let (main, other) = (&pki.server, &pki.other);
/// let certificates = Certificates::from_pem(main.cert.as_bytes(), main.key.as_bytes())?
///     .with_sni_pem("other.localhost", other.cert.as_bytes(), other.key.as_bytes())?;
/// assert_eq!(certificates.names(), 1);
/// let tls = TlsConfig::new(certificates)?;
/// // A name the certificate does not cover is refused at load.
/// let wrong = Certificates::new().with_sni_pem("example.com", other.cert.as_bytes(), other.key.as_bytes());
/// assert!(wrong.is_err());
/// # let _ = tls;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Certificates {
    default: Option<Arc<CertifiedKey>>,
    by_name: ResolvesServerCertUsingSni,
    names: usize,
}

impl Default for Certificates {
    fn default() -> Self {
        Certificates::new()
    }
}

impl Certificates {
    /// No certificate yet.
    pub fn new() -> Certificates {
        Certificates {
            default: None,
            by_name: ResolvesServerCertUsingSni::new(),
            names: 0,
        }
    }

    /// The default certificate from PEM files: `cert` holds the chain,
    /// leaf first; `key` its private key (PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    ///
    /// [`TlsError::Pem`] when a file cannot be read or holds no
    /// certificate or key; [`TlsError::Key`] when the key does not fit.
    pub fn from_pem_files(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Certificates, TlsError> {
        let mut certificates = Certificates::new();
        certificates.default = Some(Arc::new(load(cert.as_ref(), key.as_ref())?));
        Ok(certificates)
    }

    /// The default certificate from PEM text, as [`from_pem_files`](Certificates::from_pem_files).
    ///
    /// # Errors
    ///
    /// As [`from_pem_files`](Certificates::from_pem_files).
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<Certificates, TlsError> {
        let mut certificates = Certificates::new();
        certificates.default = Some(Arc::new(parse(cert, key, None)?));
        Ok(certificates)
    }

    /// Adds the certificate from PEM files for clients that ask for `name`
    /// (a DNS name; matched without regard to case).
    ///
    /// # Errors
    ///
    /// As [`from_pem_files`](Certificates::from_pem_files), and
    /// [`TlsError::Name`] when the certificate is not valid for `name`
    /// (a misconfiguration found at load rather than by clients).
    pub fn with_sni_pem_files(
        self,
        name: &str,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Certificates, TlsError> {
        let key = load(cert.as_ref(), key.as_ref())?;
        self.with_name(name, key)
    }

    /// Adds a certificate from PEM text for `name`, as
    /// [`with_sni_pem_files`](Certificates::with_sni_pem_files).
    ///
    /// # Errors
    ///
    /// As [`with_sni_pem_files`](Certificates::with_sni_pem_files).
    pub fn with_sni_pem(
        self,
        name: &str,
        cert: &[u8],
        key: &[u8],
    ) -> Result<Certificates, TlsError> {
        let key = parse(cert, key, None)?;
        self.with_name(name, key)
    }

    /// How many names have a certificate of their own.
    pub fn names(&self) -> usize {
        self.names
    }

    fn with_name(mut self, name: &str, key: CertifiedKey) -> Result<Certificates, TlsError> {
        self.by_name
            .add(name, key)
            .map_err(|reason| TlsError::Name {
                name: name.to_owned(),
                reason,
            })?;
        self.names += 1;
        Ok(self)
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let named = match hello.server_name() {
            Some(_) => self.by_name.resolve(hello),
            None => None,
        };
        named.or_else(|| self.default.clone())
    }
}

/// Reads a chain and its key from PEM files.
fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    };
    let (cert_pem, key_pem) = (read(cert)?, read(key)?);
    parse(&cert_pem, &key_pem, Some((cert, key)))
}

/// Parses a chain and its key from PEM text (`paths` name them in errors).
fn parse(cert: &[u8], key: &[u8], paths: Option<(&Path, &Path)>) -> Result<CertifiedKey, TlsError> {
    let (cert_path, key_path) = paths.unwrap_or((Path::new("certificate"), Path::new("key")));
    let pem_error = |path: &Path, reason: String| TlsError::Pem {
        path: path.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(cert_path, e.to_string()))?;
    if chain.is_empty() {
        return Err(pem_error(cert_path, "no CERTIFICATE in it".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| pem_error(key_path, e.to_string()))?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(TlsError::Key)
}

/// A TLS configuration for [`Server::tls`](crate::Server::tls): rustls's
/// safe defaults (TLS 1.3 and 1.2, AEAD suites with forward secrecy,
/// X25519MLKEM768 first where the client offers it), ALPN `http/1.1`,
/// session resumption through rustls's bounded 256-entry session cache
/// (TLS 1.2 session IDs, and the two TLS 1.3 tickets sent after each
/// handshake name its entries).
///
/// A clone is a handle to the same configuration:
/// [`reload`](TlsConfig::reload) (on `SIGHUP`, say) makes every later
/// handshake use the new certificates, while connections already
/// established keep what they agreed.
#[derive(Clone)]
pub struct TlsConfig {
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// A configuration presenting `certificates`.
    ///
    /// # Errors
    ///
    /// [`TlsError::NoCertificate`] when `certificates` holds none.
    pub fn new(certificates: Certificates) -> Result<TlsConfig, TlsError> {
        let config = server_config(certificates)?;
        Ok(TlsConfig {
            current: Arc::new(RwLock::new(config)),
        })
    }

    /// A configuration made with rustls directly (client certificates, a
    /// ticketer, other versions): used as it is, except that an empty ALPN
    /// list becomes `http/1.1`.
    pub fn from_rustls(config: ServerConfig) -> TlsConfig {
        TlsConfig {
            current: Arc::new(RwLock::new(with_alpn(config))),
        }
    }

    /// Presents `certificates` to every handshake from now on; connections
    /// already established keep theirs. On error the configuration in use
    /// stays.
    ///
    /// # Errors
    ///
    /// As [`new`](TlsConfig::new).
    pub fn reload(&self, certificates: Certificates) -> Result<(), TlsError> {
        let config = server_config(certificates)?;
        *self.current.write() = config;
        Ok(())
    }

    /// Uses `config` for every handshake from now on, as
    /// [`from_rustls`](TlsConfig::from_rustls) takes it.
    pub fn reload_rustls(&self, config: ServerConfig) {
        *self.current.write() = with_alpn(config);
    }

    /// The configuration a new connection's handshake uses.
    pub(crate) fn current(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current.read())
    }
}

fn server_config(certificates: Certificates) -> Result<Arc<ServerConfig>, TlsError> {
    if certificates.default.is_none() && certificates.names == 0 {
        return Err(TlsError::NoCertificate);
    }
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(certificates));
    Ok(with_alpn(config))
}

fn with_alpn(mut config: ServerConfig) -> Arc<ServerConfig> {
    if config.alpn_protocols.is_empty() {
        config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    }
    Arc::new(config)
}
