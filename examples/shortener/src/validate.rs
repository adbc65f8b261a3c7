//! Input rules for what the API stores: URLs and slugs.
//!
//! A stored URL ends up in a `Location` header, so it must never carry a
//! byte that could end or split that header.

use std::fmt::Write;

mod own_address;
pub use own_address::{CanonicalHost, OwnAddress};

/// The longest URL accepted, in bytes after normalization.
pub const MAX_URL_LEN: usize = 2048;

/// Slug lengths accepted for custom slugs.
pub const SLUG_LEN: std::ops::RangeInclusive<usize> = 3..=64;

/// Slugs that name the app's own paths or may one day.
pub const RESERVED_SLUGS: &[&str] = &[
    "admin", "api", "app", "assets", "bulk", "docs", "favicon", "health", "links", "login",
    "logout", "metrics", "new", "robots", "static", "stats",
];

/// Why a URL or slug was refused; the message is shown to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("url must start with http:// or https://")]
    Scheme,
    #[error("url must name a host")]
    Host,
    #[error("url host is longer than {MAX_HOST_LEN} bytes")]
    HostTooLong,
    #[error("url must not contain user credentials")]
    Credentials,
    #[error("url must not contain spaces or control characters")]
    Characters,
    #[error("url is longer than {MAX_URL_LEN} bytes")]
    UrlTooLong,
    #[error("url points at this shortener")]
    SelfLink,
    #[error("slug must be 3 to 64 characters of A-Z, a-z, 0-9, '_' or '-'")]
    Slug,
    #[error("slug is reserved")]
    Reserved,
}

/// Checks `url` and returns it normalized: the scheme and host lowercased,
/// non-ASCII bytes of the path, query and fragment percent-encoded. The
/// host is kept as written (`0x7f.1` stays `0x7f.1`): the stored text is
/// what the `Location` header says. A URL reaching `own` (the shortener
/// itself, in any spelling a browser reads the same way) is refused.
///
/// # Errors
///
/// The first rule broken, as [`Invalid`].
pub fn url(url: &str, own: &OwnAddress) -> Result<String, Invalid> {
    if url.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(Invalid::Characters);
    }
    let (scheme, rest) = url.split_once("://").ok_or(Invalid::Scheme)?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(Invalid::Scheme);
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if authority.contains('@') {
        return Err(Invalid::Credentials);
    }
    let host = host_of(authority)?;
    let port = authority[host.len()..]
        .strip_prefix(':')
        .and_then(|p| p.parse().ok());
    let default_port = if scheme == "https" { 443 } else { 80 };
    // The WHATWG parse, as a browser following the redirect does it: a
    // host it cannot parse (`999.1.1.1`, bad punycode) no client reaches.
    let parsed = url::Host::parse(host).map_err(|_| Invalid::Host)?;
    if own.is(&CanonicalHost::of(&parsed), port.unwrap_or(default_port)) {
        return Err(Invalid::SelfLink);
    }
    let authority = authority.to_ascii_lowercase();
    let mut normalized = String::with_capacity(url.len());
    normalized.push_str(&scheme);
    normalized.push_str("://");
    normalized.push_str(&authority);
    if tail.is_empty() {
        normalized.push('/');
    }
    for c in tail.chars() {
        if c.is_ascii() {
            normalized.push(c);
        } else {
            let mut utf8 = [0; 4];
            for b in c.encode_utf8(&mut utf8).bytes() {
                let _ = write!(normalized, "%{b:02X}");
            }
        }
    }
    if normalized.len() > MAX_URL_LEN {
        return Err(Invalid::UrlTooLong);
    }
    Ok(normalized)
}

/// The longest DNS name (RFC 1035 §2.3.4: 255 octets on the wire, 253
/// characters written out).
const MAX_HOST_LEN: usize = 253;

/// The host of an authority (`host`, `host:port`, `[v6]:port`), checked
/// for the characters a DNS name or IP literal may have.
fn host_of(authority: &str) -> Result<&str, Invalid> {
    let host = if let Some(v6) = authority.strip_prefix('[') {
        let (inside, after) = v6.split_once(']').ok_or(Invalid::Host)?;
        inside
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| Invalid::Host)?;
        port_ok(after).ok_or(Invalid::Host)?;
        return Ok(&authority[..inside.len() + 2]);
    } else {
        let host_end = authority.find(':').unwrap_or(authority.len());
        port_ok(&authority[host_end..]).ok_or(Invalid::Host)?;
        &authority[..host_end]
    };
    let ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !host.starts_with(['.', '-']);
    if !ok {
        return Err(Invalid::Host);
    }
    if host.len() > MAX_HOST_LEN {
        return Err(Invalid::HostTooLong);
    }
    Ok(host)
}

/// `""` or `:port`, a port being 0 to 65535 in plain digits (0 is no
/// use as a destination, but RFC 3986 allows it and it harms no one).
fn port_ok(after_host: &str) -> Option<()> {
    if after_host.is_empty() {
        return Some(());
    }
    let digits = after_host.strip_prefix(':')?;
    let plain = (1..=5).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    (plain && digits.parse::<u16>().is_ok()).then_some(())
}

/// Checks a custom slug.
///
/// # Errors
///
/// [`Invalid::Slug`] for the wrong length or characters,
/// [`Invalid::Reserved`] for one of [`RESERVED_SLUGS`].
pub fn slug(slug: &str) -> Result<(), Invalid> {
    if !SLUG_LEN.contains(&slug.len()) || !slug.bytes().all(is_slug_byte) {
        return Err(Invalid::Slug);
    }
    if is_reserved(slug) {
        return Err(Invalid::Reserved);
    }
    Ok(())
}

/// Whether `haystack` contains `needle`, ASCII case ignored; allocates
/// nothing (it runs on the redirect path).
pub fn contains_ignore_ascii_case(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Whether `slug` is one of [`RESERVED_SLUGS`], in any case.
pub fn is_reserved(slug: &str) -> bool {
    RESERVED_SLUGS.iter().any(|r| r.eq_ignore_ascii_case(slug))
}

/// A byte a slug may contain.
pub fn is_slug_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shortener at `base_url`, its listen address unknown.
    fn own(base_url: &str) -> OwnAddress {
        OwnAddress::new(base_url, None)
    }

    fn sho() -> OwnAddress {
        own("https://sho.rt")
    }

    #[test]
    fn accepts_and_normalizes_web_urls() {
        assert_eq!(
            url("https://Example.COM", &sho()).unwrap(),
            "https://example.com/"
        );
        assert_eq!(
            url("HTTP://example.com:8080/a?b=c#d", &sho()).unwrap(),
            "http://example.com:8080/a?b=c#d"
        );
        assert_eq!(
            url("https://example.com/ü", &sho()).unwrap(),
            "https://example.com/%C3%BC"
        );
        assert_eq!(
            url("http://[::1]:80/x", &sho()).unwrap(),
            "http://[::1]:80/x"
        );
        assert_eq!(
            url("https://a.b/Path?Q", &sho()).unwrap(),
            "https://a.b/Path?Q"
        );
    }

    #[test]
    fn refuses_what_could_split_a_header_or_mislead() {
        assert_eq!(
            url("https://example.com/\r\nSet-Cookie: a=b", &sho()),
            Err(Invalid::Characters)
        );
        assert_eq!(
            url("https://example.com/a b", &sho()),
            Err(Invalid::Characters)
        );
        assert_eq!(
            url("https://example.com/\u{7f}", &sho()),
            Err(Invalid::Characters)
        );
        assert_eq!(url("javascript:alert(1)", &sho()), Err(Invalid::Scheme));
        assert_eq!(url("ftp://example.com/", &sho()), Err(Invalid::Scheme));
        assert_eq!(url("https://", &sho()), Err(Invalid::Host));
        assert_eq!(url("https:///path", &sho()), Err(Invalid::Host));
        assert_eq!(url("https://exa_mple.com/", &sho()), Err(Invalid::Host));
        let longest = format!("{}.com", "a".repeat(MAX_HOST_LEN - 4));
        assert!(url(&format!("https://{longest}/"), &sho()).is_ok());
        assert_eq!(
            url(&format!("https://a{longest}/"), &sho()),
            Err(Invalid::HostTooLong)
        );
        for bad_port in ["65536", "+80", ""] {
            let text = format!("https://example.com:{bad_port}/");
            assert_eq!(url(&text, &sho()), Err(Invalid::Host), "{text}");
        }
        for bad_v6 in ["[0]", "[::1:]", "[]", "[fe80::1%eth0]"] {
            let text = format!("http://{bad_v6}/");
            assert_eq!(url(&text, &sho()), Err(Invalid::Host), "{text}");
        }
        assert_eq!(
            url("https://example.com:99999999/", &sho()),
            Err(Invalid::Host)
        );
        assert_eq!(
            url("https://google.com@evil.example/", &sho()),
            Err(Invalid::Credentials)
        );
        assert_eq!(url("https://SHO.RT/abc", &sho()), Err(Invalid::SelfLink));
        assert_eq!(url("https://sho.rt./abc", &sho()), Err(Invalid::SelfLink));
        assert_eq!(
            url("http://127.0.0.1.:8080/x", &own("http://127.0.0.1:8080")),
            Err(Invalid::SelfLink)
        );
        assert_eq!(
            url("http://localhost:8080/x", &own("http://127.0.0.1:8080")),
            Err(Invalid::SelfLink)
        );
        assert_eq!(
            url("http://[::1]:8080/x", &own("http://127.0.0.1:8080")),
            Err(Invalid::SelfLink)
        );
        assert_eq!(
            url("http://127.0.0.2:8080/x", &own("http://localhost:8080")),
            Err(Invalid::SelfLink)
        );
        assert_eq!(
            url("http://127.0.0.1/x", &own("http://127.0.0.1:80")),
            Err(Invalid::SelfLink)
        );
        // Another port on the same machine is another service.
        assert!(url("http://127.0.0.1:9090/x", &own("http://127.0.0.1:8080")).is_ok());
        assert!(url("http://localhost/x", &own("http://127.0.0.1:8080")).is_ok());
        assert_eq!(
            url("https://sho.rt:443/abc", &own("https://sho.rt:443")),
            Err(Invalid::SelfLink)
        );
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(url(&long, &sho()), Err(Invalid::UrlTooLong));
    }

    #[test]
    fn every_spelling_of_the_own_address_is_refused() {
        let base = own("http://127.0.0.1:8080");
        let listening = |addr: &str| OwnAddress::new("https://sho.rt", Some(addr.parse().unwrap()));
        let cases: &[(&str, &OwnAddress)] = &[
            // Loopback written the ways a browser reads as 127.0.0.1.
            ("http://127.1:8080/x", &base),
            ("http://2130706433:8080/x", &base),
            ("http://0x7f.0.0.1:8080/x", &base),
            ("http://0X7F.1:8080/x", &base),
            ("http://0177.0.0.1:8080/x", &base),
            ("http://127.0.0.1.:8080/x", &base),
            ("http://127.000.000.001:8080/x", &base),
            ("http://[::ffff:127.0.0.1]:8080/x", &base),
            ("http://[::FFFF:7f00:1]:8080/x", &base),
            ("http://[0:0:0:0:0:0:0:1]:8080/x", &base),
            ("http://[::1]:8080/x", &base),
            ("http://0:8080/x", &base),
            ("http://0.0.0.0:8080/x", &base),
            ("http://[::]:8080/x", &base),
            ("http://LOCALHOST.:8080/x", &base),
            ("http://app.localhost:8080/x", &base),
            ("http://127.0.0.1:08080/x", &base),
            // A public base URL: its name in any case, with a trailing
            // dot, on either default port.
            ("https://SHO.RT./x", &sho()),
            ("http://sho.rt/x", &sho()),
            ("https://sho.rt:443/x", &sho()),
            // The listen address counts besides the base URL.
            ("http://127.1:8080/x", &listening("127.0.0.1:8080")),
            ("http://0:8080/x", &listening("0.0.0.0:8080")),
            ("http://[::1]:8080/x", &listening("[::]:8080")),
            ("http://3232235777:8080/x", &listening("192.168.1.1:8080")),
            (
                "http://[::ffff:c0a8:101]:8080/x",
                &listening("192.168.1.1:8080"),
            ),
        ];
        for (link, own) in cases {
            assert_eq!(url(link, own), Err(Invalid::SelfLink), "{link} vs {own:?}");
        }
    }

    #[test]
    fn other_hosts_and_ports_stay_allowed_as_written() {
        let base = own("http://127.0.0.1:8080");
        for (link, own) in [
            ("http://127.1:9090/x", &base),
            ("http://2130706433/x", &base),
            ("http://[::ffff:127.0.0.1]:9090/x", &base),
            ("https://sho.rt:8443/x", &sho()),
            ("https://sub.sho.rt/x", &sho()),
            ("http://192.168.1.2:8080/x", &base),
        ] {
            // Stored as written, only the scheme and host lowercased.
            assert_eq!(url(link, own), Ok(link.to_string()), "{link}");
        }
        let public = OwnAddress::new("https://sho.rt", Some("192.168.1.1:8080".parse().unwrap()));
        assert!(url("http://127.0.0.1:8080/x", &public).is_ok());
        // Listening on port 0 (the kernel picks one): port 0 is no port a
        // link could reach, so it does not make every `:0` link the
        // shortener (schemathesis sent `HttpS://0000:000?000`).
        let any_port = OwnAddress::new("http://127.0.0.1:0", Some("127.0.0.1:0".parse().unwrap()));
        for link in [
            "https://0000:000?000",
            "http://127.0.0.1:0/x",
            "http://0.0.0.0:0/",
        ] {
            assert!(url(link, &any_port).is_ok(), "{link}");
        }
    }

    #[test]
    fn hosts_no_browser_can_reach_are_refused() {
        for host in [
            "999.1.1.1",
            "1.2.3.4.5",
            "foo.0x7f",
            "xn--a.example",
            "0x100000000",
        ] {
            let link = format!("http://{host}/x");
            assert_eq!(url(&link, &sho()), Err(Invalid::Host), "{link}");
        }
    }

    #[test]
    fn slugs_follow_the_pattern_and_avoid_reserved_words() {
        assert_eq!(slug("abc"), Ok(()));
        assert_eq!(slug("my-Link_2"), Ok(()));
        assert_eq!(slug(&"a".repeat(64)), Ok(()));
        assert_eq!(slug("ab"), Err(Invalid::Slug));
        assert_eq!(slug(&"a".repeat(65)), Err(Invalid::Slug));
        assert_eq!(slug("a/b"), Err(Invalid::Slug));
        assert_eq!(slug("a.bc"), Err(Invalid::Slug));
        assert_eq!(slug("API"), Err(Invalid::Reserved));
        assert_eq!(slug("metrics"), Err(Invalid::Reserved));
    }
}
