//! Input rules for what the API stores: URLs and slugs.
//!
//! A stored URL ends up in a `Location` header, so it must never carry a
//! byte that could end or split that header.

use std::fmt::Write;

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
/// non-ASCII bytes of the path, query and fragment percent-encoded.
/// `own_host` (`host` or `host:port` of the shortener's base URL) is
/// refused as a target.
///
/// # Errors
///
/// The first rule broken, as [`Invalid`].
pub fn url(url: &str, own_host: &str) -> Result<String, Invalid> {
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
    let host = host_of(authority).ok_or(Invalid::Host)?;
    let port = authority[host.len()..]
        .strip_prefix(':')
        .and_then(|p| p.parse().ok());
    let default_port = if scheme == "https" { 443 } else { 80 };
    if points_at_own_host(host, port.unwrap_or(default_port), own_host) {
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

/// The host of an authority (`host`, `host:port`, `[v6]:port`), checked
/// for the characters a DNS name or IP literal may have.
fn host_of(authority: &str) -> Option<&str> {
    let host = if let Some(v6) = authority.strip_prefix('[') {
        let (inside, after) = v6.split_once(']')?;
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        port_ok(after)?;
        return Some(&authority[..inside.len() + 2]);
    } else {
        let host_end = authority.find(':').unwrap_or(authority.len());
        port_ok(&authority[host_end..])?;
        &authority[..host_end]
    };
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !host.starts_with(['.', '-']);
    ok.then_some(host)
}

/// Whether `host:port` is the shortener itself at `own_host` (`host` or
/// `host:port`): the same name, ignoring case and a trailing dot, or any
/// two loopback names (`localhost`, `127.0.0.1`, `[::1]`); and the same
/// port when `own_host` names one. A link there would redirect to itself.
fn points_at_own_host(host: &str, port: u16, own_host: &str) -> bool {
    let (own_name, own_port) = match own_host.rsplit_once(':') {
        Some((name, p)) if !name.is_empty() && !p.contains(']') => (name, p.parse::<u16>().ok()),
        _ => (own_host, None),
    };
    if own_port.is_some_and(|own| own != port) {
        return false;
    }
    let canonical = |name: &str| name.trim_end_matches('.').to_ascii_lowercase();
    let (host, own) = (canonical(host), canonical(own_name));
    host == own || (is_loopback_name(&host) && is_loopback_name(&own))
}

/// `localhost`, a name under it, `127.x.y.z`, `[::1]` or `0.0.0.0`.
fn is_loopback_name(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || name == "[::1]"
        || name == "0.0.0.0"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
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

    const OWN: &str = "sho.rt";

    #[test]
    fn accepts_and_normalizes_web_urls() {
        assert_eq!(
            url("https://Example.COM", OWN).unwrap(),
            "https://example.com/"
        );
        assert_eq!(
            url("HTTP://example.com:8080/a?b=c#d", OWN).unwrap(),
            "http://example.com:8080/a?b=c#d"
        );
        assert_eq!(
            url("https://example.com/ü", OWN).unwrap(),
            "https://example.com/%C3%BC"
        );
        assert_eq!(url("http://[::1]:80/x", OWN).unwrap(), "http://[::1]:80/x");
        assert_eq!(
            url("https://a.b/Path?Q", OWN).unwrap(),
            "https://a.b/Path?Q"
        );
    }

    #[test]
    fn refuses_what_could_split_a_header_or_mislead() {
        assert_eq!(
            url("https://example.com/\r\nSet-Cookie: a=b", OWN),
            Err(Invalid::Characters)
        );
        assert_eq!(
            url("https://example.com/a b", OWN),
            Err(Invalid::Characters)
        );
        assert_eq!(
            url("https://example.com/\u{7f}", OWN),
            Err(Invalid::Characters)
        );
        assert_eq!(url("javascript:alert(1)", OWN), Err(Invalid::Scheme));
        assert_eq!(url("ftp://example.com/", OWN), Err(Invalid::Scheme));
        assert_eq!(url("https://", OWN), Err(Invalid::Host));
        assert_eq!(url("https:///path", OWN), Err(Invalid::Host));
        assert_eq!(url("https://exa_mple.com/", OWN), Err(Invalid::Host));
        for bad_port in ["65536", "+80", ""] {
            let text = format!("https://example.com:{bad_port}/");
            assert_eq!(url(&text, OWN), Err(Invalid::Host), "{text}");
        }
        for bad_v6 in ["[0]", "[::1:]", "[]", "[fe80::1%eth0]"] {
            let text = format!("http://{bad_v6}/");
            assert_eq!(url(&text, OWN), Err(Invalid::Host), "{text}");
        }
        assert_eq!(
            url("https://example.com:99999999/", OWN),
            Err(Invalid::Host)
        );
        assert_eq!(
            url("https://google.com@evil.example/", OWN),
            Err(Invalid::Credentials)
        );
        assert_eq!(url("https://SHO.RT/abc", OWN), Err(Invalid::SelfLink));
        assert_eq!(url("https://sho.rt./abc", OWN), Err(Invalid::SelfLink));
        assert_eq!(
            url("http://127.0.0.1.:8080/x", "127.0.0.1:8080"),
            Err(Invalid::SelfLink)
        );
        assert_eq!(
            url("http://localhost:8080/x", "127.0.0.1:8080"),
            Err(Invalid::SelfLink)
        );
        assert_eq!(
            url("http://[::1]:8080/x", "127.0.0.1:8080"),
            Err(Invalid::SelfLink)
        );
        assert_eq!(
            url("http://127.0.0.2:8080/x", "localhost:8080"),
            Err(Invalid::SelfLink)
        );
        assert_eq!(
            url("http://127.0.0.1/x", "127.0.0.1:80"),
            Err(Invalid::SelfLink)
        );
        // Another port on the same machine is another service.
        assert!(url("http://127.0.0.1:9090/x", "127.0.0.1:8080").is_ok());
        assert!(url("http://localhost/x", "127.0.0.1:8080").is_ok());
        assert_eq!(
            url("https://sho.rt:443/abc", "sho.rt:443"),
            Err(Invalid::SelfLink)
        );
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(url(&long, OWN), Err(Invalid::UrlTooLong));
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
