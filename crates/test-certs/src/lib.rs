//! Test certificates made at run time, never committed: a certificate
//! authority and two server certificates it signed, as PEM text and as
//! files in a directory.
//!
//! - [`SERVER_NAMES`]: the main server certificate's names, `localhost`
//!   and the IP address `127.0.0.1` (an IP subject alternative name, so
//!   clients that connect by address verify it too);
//! - [`OTHER_NAME`]: a second certificate for another name, for tests that
//!   pick a certificate by SNI;
//! - the CA's certificate, the trust anchor clients load: `curl --cacert`,
//!   `openssl s_client -CAfile`, Python's `ssl.create_default_context(cafile=..)`,
//!   a rustls `RootCertStore`.
//!
//! Every key is ECDSA P-256 with SHA-256 (rcgen's default, the common
//! choice of a modern server), made fresh on each call: no private key
//! lives in the repository. Generating the set costs a few milliseconds.
//!
//! Used by keel's TLS benches (`benches/load/tls.sh` runs the `test-certs`
//! binary) and meant for keel's TLS tests (a dev-dependency), so that both
//! make their certificates one way. It is a workspace crate of its own,
//! not a module of the benches, because keel cannot depend on the benches
//! package.
//!
//! # Examples
//!
//! ```
//! let certs = test_certs::CertDir::generate()?;
//! assert!(certs.files.server_key.exists());
//! assert!(certs.pki.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
//! # Ok::<(), test_certs::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The names of the main server certificate (subject alternative names).
pub const SERVER_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// The name of the second server certificate, for SNI tests. Under
/// `localhost`, so that it resolves to the loopback where a client needs
/// that (`curl --resolve` is still the surer way).
pub const OTHER_NAME: &str = "other.localhost";

/// Why the certificates could not be made.
#[derive(Debug)]
pub enum Error {
    /// rcgen refused a parameter or could not sign.
    Generate(rcgen::Error),
    /// A PEM file, or the temporary directory, could not be written.
    Write(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Generate(e) => write!(f, "cannot make the test certificates: {e}"),
            Error::Write(e) => write!(f, "cannot write the test certificates: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Generate(e) => Some(e),
            Error::Write(e) => Some(e),
        }
    }
}

impl From<rcgen::Error> for Error {
    fn from(e: rcgen::Error) -> Error {
        Error::Generate(e)
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Write(e)
    }
}

/// A server certificate and its private key, in PEM.
#[derive(Clone, Debug)]
pub struct ServerPem {
    /// The certificate (the leaf alone: clients hold the CA).
    pub cert: String,
    /// The PKCS#8 private key.
    pub key: String,
}

/// The CA and the two server certificates it signed, in PEM.
#[derive(Clone, Debug)]
pub struct Pki {
    /// The CA's self-signed certificate: what clients trust.
    pub ca_pem: String,
    /// The certificate for [`SERVER_NAMES`].
    pub server: ServerPem,
    /// The certificate for [`OTHER_NAME`].
    pub other: ServerPem,
}

/// Where [`Pki::write_to`] put each file.
#[derive(Clone, Debug)]
pub struct Files {
    /// `ca.pem`: the CA's certificate.
    pub ca: PathBuf,
    /// `server.pem`: the certificate for [`SERVER_NAMES`].
    pub server_cert: PathBuf,
    /// `server.key`: its private key.
    pub server_key: PathBuf,
    /// `other.pem`: the certificate for [`OTHER_NAME`].
    pub other_cert: PathBuf,
    /// `other.key`: its private key.
    pub other_key: PathBuf,
}

impl Pki {
    /// Makes a fresh CA and two server certificates signed by it.
    ///
    /// # Errors
    ///
    /// [`Error::Generate`] when rcgen cannot make a key or sign (it does
    /// not happen with these fixed parameters, short of a broken RNG).
    pub fn generate() -> Result<Pki, Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "keel test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_pem = ca_params.self_signed(&ca_key)?.pem();
        let issuer = Issuer::new(ca_params, ca_key);
        Ok(Pki {
            ca_pem,
            server: server_pem(&SERVER_NAMES, &issuer)?,
            other: server_pem(&[OTHER_NAME], &issuer)?,
        })
    }

    /// Writes the five PEM files into `dir` (which must exist), replacing
    /// files of the same names.
    ///
    /// # Errors
    ///
    /// [`Error::Write`] when a file cannot be written.
    pub fn write_to(&self, dir: &Path) -> Result<Files, Error> {
        let files = Files {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            other_cert: dir.join("other.pem"),
            other_key: dir.join("other.key"),
        };
        fs::write(&files.ca, &self.ca_pem)?;
        fs::write(&files.server_cert, &self.server.cert)?;
        fs::write(&files.server_key, &self.server.key)?;
        fs::write(&files.other_cert, &self.other.cert)?;
        fs::write(&files.other_key, &self.other.key)?;
        Ok(files)
    }
}

/// A leaf certificate for `names`, for servers only, signed by `issuer`.
fn server_pem(names: &[&str], issuer: &Issuer<'_, KeyPair>) -> Result<ServerPem, Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(
        names
            .iter()
            .map(|&name| name.to_owned())
            .collect::<Vec<_>>(),
    )?;
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    Ok(ServerPem {
        cert: params.signed_by(&key, issuer)?.pem(),
        key: key.serialize_pem(),
    })
}

/// A fresh [`Pki`] written into a temporary directory that is removed on drop.
#[derive(Debug)]
pub struct CertDir {
    /// The PEM text.
    pub pki: Pki,
    /// The files in [`CertDir::path`].
    pub files: Files,
    dir: tempfile::TempDir,
}

impl CertDir {
    /// Makes the certificates and writes them into a new temporary directory
    /// (readable by its owner alone, as `tempfile` makes it).
    ///
    /// # Errors
    ///
    /// As [`Pki::generate`] and [`Pki::write_to`].
    pub fn generate() -> Result<CertDir, Error> {
        let pki = Pki::generate()?;
        let dir = tempfile::Builder::new().prefix("keel-certs-").tempdir()?;
        let files = pki.write_to(dir.path())?;
        Ok(CertDir { pki, files, dir })
    }

    /// The directory holding the files.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}
