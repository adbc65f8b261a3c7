//! TLS: what a handler learns about a TLS connection ([`TlsInfo`], from
//! [`Request::tls`](crate::Request::tls)), and, with the `tls` feature,
//! the configuration a server's listeners speak TLS with
//! (`Server::tls`, with the feature).
//!
//! The handshake and the record layer run in the worker's event loop
//! (rustls, sans-IO): ciphertext read from the socket is decrypted into the
//! connection's pooled read buffer, and the HTTP parser reads it in place
//! as it reads a plain connection. See the guide's "TLS" section.

#[cfg(feature = "tls")]
pub use crate::transport::tls::config::{Certificates, TlsConfig, TlsError, ALPN_HTTP1};
#[cfg(feature = "tls")]
pub use crate::transport::tls::stream::TlsSocket;

/// The TLS protocol version a connection agreed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsVersion {
    /// TLS 1.2 (RFC 5246).
    Tls12,
    /// TLS 1.3 (RFC 8446).
    Tls13,
}

/// What a TLS connection's handshake agreed, as a handler sees it through
/// [`Request::tls`](crate::Request::tls). Made once per connection, when
/// its handshake finishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    pub(crate) server_name: Option<Box<str>>,
    pub(crate) version: TlsVersion,
    pub(crate) cipher_suite: &'static str,
    pub(crate) resumed: bool,
}

impl TlsInfo {
    /// The name the client asked for (SNI), lower-cased; `None` when it
    /// named none (a client connecting by IP address sends none).
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The protocol version agreed.
    pub fn version(&self) -> TlsVersion {
        self.version
    }

    /// The cipher suite agreed, by its IANA name
    /// (`"TLS13_AES_128_GCM_SHA256"`).
    pub fn cipher_suite(&self) -> &'static str {
        self.cipher_suite
    }

    /// Whether the handshake resumed an earlier session (a ticket, or a
    /// TLS 1.2 session ID) rather than running a full key exchange.
    pub fn resumed(&self) -> bool {
        self.resumed
    }
}
