//! The parser is strict by default; each lenient choice is opt-in here.

/// Which strict parsing rules to relax, each `false` (strict) by default.
///
/// The strict rules close the gaps a front end (proxy, load balancer, CDN)
/// and keel could read differently, the root of request smuggling. Relax one
/// only when a client you must serve needs it and nothing in front of keel
/// reads the bytes another way. The full table of rules, with the RFC
/// sections, is in the guide (`docs/guide.md`, "Strict parsing").
///
/// ```
/// let config = keel::Config {
///     lenient: keel::Leniency {
///         target_bytes: true,
///         ..keel::Leniency::default()
///     },
///     ..keel::Config::default()
/// };
/// assert!(!config.lenient.bare_lf);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Leniency {
    /// Accept a bare LF (`\n` without `\r`) as the end of the request line,
    /// of a header field line or of the head, and as an empty line before
    /// the request line (RFC 9112 §2.2 allows a recipient to). Strict: `400`
    /// and a close. Chunked framing refuses a bare LF whatever this says.
    pub bare_lf: bool,
    /// Accept an empty `Host` value (RFC 9112 §3.2 lets a client send one
    /// only for a target URI without an authority, which no `http` URI is).
    /// Strict: `400` and a close.
    pub empty_host: bool,
    /// Accept, in the request target, the bytes RFC 3986 does not allow
    /// there but httparse passes: raw non-ASCII (UTF-8 only: httparse
    /// refuses other bytes), `\`, `"`, `<`, `>`, `^`,
    /// `` ` ``, `{`, `|`, `}`, `[`/`]` outside an IP literal, and a `%` not
    /// followed by two hex digits. Where a link or the address bar holds
    /// them unencoded, Chromium sends `[` and `]` raw in a path and `|`, `^`,
    /// `` ` ``, `{`, `}`, `[`, `]` and `\` raw in a query (it encodes
    /// non-ASCII, `"`, `<` and `>`), and curl sends a query as it is given,
    /// raw non-ASCII included: set this if your URLs carry such bytes
    /// unencoded. Strict: `400` and a close. A `#` (fragment) is refused
    /// whatever this says.
    pub target_bytes: bool,
}
