//! HTTPS on the shortener's own listeners (`--tls-cert`, `--tls-key`,
//! `--tls-sni`, `--hsts-max-age`): the certificate files, read at start and
//! again on `SIGHUP`, and the `Strict-Transport-Security` layer. The TLS
//! itself is keel's (`keel::tls`, rustls in the worker loop).

use keel::middleware::{Flow, Middleware};
use keel::tls::{Certificates, TlsConfig};
use keel::{Request, Response};
use std::path::PathBuf;

/// `--tls-sni NAME=CERT,KEY`: a certificate for clients that ask for NAME.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SniCert {
    /// The server name (SNI) it answers.
    pub name: String,
    /// Its chain, PEM, leaf first.
    pub cert: PathBuf,
    /// Its private key, PEM.
    pub key: PathBuf,
}

impl std::str::FromStr for SniCert {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let shape = || {
            format!("{text:?} is not NAME=CERT,KEY (e.g. sho.rt=/etc/sho.rt.pem,/etc/sho.rt.key)")
        };
        let (name, files) = text.split_once('=').ok_or_else(shape)?;
        let (cert, key) = files.split_once(',').ok_or_else(shape)?;
        let name = name.trim();
        if name.is_empty() || cert.is_empty() || key.is_empty() {
            return Err(shape());
        }
        Ok(SniCert {
            name: name.to_owned(),
            cert: PathBuf::from(cert),
            key: PathBuf::from(key),
        })
    }
}

impl std::fmt::Display for SniCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}={},{}",
            self.name,
            self.cert.display(),
            self.key.display()
        )
    }
}

/// The certificate files the flags name: read whole each time, so that a
/// renewal (certbot replacing `fullchain.pem` and `privkey.pem`) is picked
/// up by a reload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertFiles {
    /// `--tls-cert`: the default certificate's chain.
    pub cert: PathBuf,
    /// `--tls-key`: its private key.
    pub key: PathBuf,
    /// `--tls-sni`: certificates chosen by the name the client asks for.
    pub sni: Vec<SniCert>,
}

impl CertFiles {
    /// Reads and checks every file: a key that does not fit its
    /// certificate, or a certificate not valid for its `--tls-sni` name,
    /// is refused here rather than by clients.
    ///
    /// # Errors
    ///
    /// A message naming the files and what is wrong with them.
    pub fn load(&self) -> Result<Certificates, String> {
        let mut certificates = Certificates::from_pem_files(&self.cert, &self.key)
            .map_err(|e| pair_error(&self.cert, &self.key, e))?;
        for sni in &self.sni {
            certificates = certificates
                .with_sni_pem_files(&sni.name, &sni.cert, &sni.key)
                .map_err(|e| pair_error(&sni.cert, &sni.key, e))?;
        }
        Ok(certificates)
    }
}

/// keel's error names the file for a PEM problem but not for a key that
/// does not fit: say both files every time.
fn pair_error(cert: &std::path::Path, key: &std::path::Path, e: keel::tls::TlsError) -> String {
    format!(
        "TLS certificate {} with key {}: {e}",
        cert.display(),
        key.display()
    )
}

/// The server's TLS configuration and the files it was read from.
#[derive(Debug)]
pub struct Tls {
    files: CertFiles,
    config: TlsConfig,
}

impl Tls {
    /// Reads the files and makes the configuration.
    ///
    /// # Errors
    ///
    /// As [`CertFiles::load`].
    pub fn open(files: CertFiles) -> Result<Tls, String> {
        let config = TlsConfig::new(files.load()?).map_err(|e| e.to_string())?;
        Ok(Tls { files, config })
    }

    /// The configuration for [`keel::Server::tls`]; a handle to the one
    /// [`reload`](Tls::reload) changes.
    pub fn config(&self) -> &TlsConfig {
        &self.config
    }

    /// The files, as the flags named them.
    pub fn files(&self) -> &CertFiles {
        &self.files
    }

    /// Reads the files again: new handshakes use what they hold now,
    /// established connections keep what they agreed.
    ///
    /// # Errors
    ///
    /// As [`CertFiles::load`]; the certificates in use then stay.
    pub fn reload(&self) -> Result<(), String> {
        let certificates = self.files.load()?;
        self.config.reload(certificates).map_err(|e| e.to_string())
    }
}

/// Adds `Strict-Transport-Security: max-age=N` to every response sent over
/// TLS (`--hsts-max-age N`); never over plaintext, where RFC 6797 §7.2
/// forbids it. No `includeSubDomains`: other hosts under the same domain
/// may not speak HTTPS, and HSTS cannot be taken back before it expires.
/// The value is formatted once: a request copies it, allocating nothing.
#[derive(Clone, Debug, Default)]
pub struct Hsts {
    value: Option<Box<str>>,
}

impl Hsts {
    /// The layer for `--hsts-max-age` (`None`: adds nothing).
    pub fn new(max_age_seconds: Option<u64>) -> Hsts {
        Hsts {
            value: max_age_seconds.map(|s| format!("max-age={s}").into_boxed_str()),
        }
    }
}

impl Middleware for Hsts {
    fn before(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
        if let (Some(value), Some(_)) = (&self.value, req.tls()) {
            res.header("Strict-Transport-Security", &**value);
        }
        Flow::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::{CertFiles, Hsts, SniCert};
    use crate::cli::Cli;
    use clap::Parser;
    use keel::middleware::HandlerExt;
    use keel::testing::MemoryConn;
    use keel::{Request, Response};

    #[test]
    fn sni_pairs_are_name_equals_cert_comma_key() {
        let sni: SniCert = "sho.rt=/etc/a.pem,/etc/a.key".parse().unwrap();
        assert_eq!(sni.name, "sho.rt");
        assert_eq!(sni.cert.to_str(), Some("/etc/a.pem"));
        assert_eq!(sni.key.to_str(), Some("/etc/a.key"));
        assert_eq!(sni.to_string(), "sho.rt=/etc/a.pem,/etc/a.key");
        for bad in [
            "sho.rt",
            "sho.rt=/a.pem",
            "=/a.pem,/a.key",
            "x=,/a.key",
            "x=/a.pem,",
        ] {
            let err = bad.parse::<SniCert>().unwrap_err();
            assert!(err.contains("NAME=CERT,KEY"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_missing_file_is_named_in_the_error() {
        let files = CertFiles {
            cert: "/nonexistent/fullchain.pem".into(),
            key: "/nonexistent/privkey.pem".into(),
            sni: Vec::new(),
        };
        let err = files.load().unwrap_err();
        assert!(err.contains("/nonexistent/fullchain.pem"), "{err}");
    }

    #[test]
    fn hsts_is_never_sent_over_plaintext() {
        let hello = |_: &Request<'_>, res: &mut Response<'_>| {
            res.body(b"hi");
        };
        // MemoryConn is a plaintext connection: no header, even when asked.
        let mut conn = MemoryConn::new(hello.with(Hsts::new(Some(600))));
        conn.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        let answer = String::from_utf8(conn.recv()).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            !answer
                .to_ascii_lowercase()
                .contains("strict-transport-security"),
            "{answer}"
        );
    }

    #[test]
    fn tls_flags_come_as_a_cert_and_key_pair() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["shortener"], args].concat());
        for lone in [
            &["--tls-cert", "c.pem"][..],
            &["--tls-key", "k.pem"],
            &["--tls-sni", "a.example=a.pem,a.key"],
            &["--hsts-max-age", "300"],
        ] {
            assert!(parse(lone).is_err(), "{lone:?} without a cert and key");
        }
        let cli = parse(&[
            "--addr",
            "127.0.0.1:8443",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--tls-sni",
            "a.example=a.pem,a.key",
            "--tls-sni",
            "b.example=b.pem,b.key",
        ])
        .unwrap();
        let files = cli.tls_files().unwrap();
        assert_eq!(files.sni.len(), 2);
        assert_eq!(cli.base_url(), "https://127.0.0.1:8443");
        assert!(parse(&[]).unwrap().tls_files().is_none());
        assert!(parse(&["--tls-sni", "bad", "--tls-cert", "c", "--tls-key", "k"]).is_err());
    }
}
