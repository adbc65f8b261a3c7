//! Referrer hosts, kept inline so that counting a click allocates nothing.

/// Longest referrer host kept; longer ones count as [`LONG_HOST`].
pub const MAX_HOST_LEN: usize = 62;

/// Referrer host that stands for every host past a cap (see
/// [`super::REFERRERS_PER_INTERVAL`] and [`super::REFERRER_ROWS_PER_LINK`])
/// and for a `Referer` that is not a plain host name.
pub const OTHER_HOST: &str = "(other)";
/// Referrer host recorded for hosts over [`MAX_HOST_LEN`] bytes.
pub const LONG_HOST: &str = "(long)";

/// A referrer host, inline so that counting a click allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Host {
    len: u8,
    bytes: [u8; MAX_HOST_LEN],
}

impl Host {
    /// The lowercase host of a `Referer` value; empty for none or one
    /// without a host, [`LONG_HOST`] past [`MAX_HOST_LEN`].
    pub fn of_referer(referer: Option<&str>) -> Host {
        let Some(referer) = referer else {
            return Host::NONE;
        };
        let rest = match referer.split_once("://") {
            Some((_, rest)) => rest,
            None => return Host::NONE,
        };
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = match host_port.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host_port.split(':').next().unwrap_or(""),
        };
        if host.len() > MAX_HOST_LEN {
            return Host::from_str(LONG_HOST);
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':'))
        {
            return Host::other();
        }
        let mut out = Host::NONE;
        out.len = host.len() as u8;
        for (dst, src) in out.bytes.iter_mut().zip(host.bytes()) {
            *dst = src.to_ascii_lowercase();
        }
        out
    }

    /// No referrer.
    pub const NONE: Host = Host {
        len: 0,
        bytes: [0; MAX_HOST_LEN],
    };

    /// [`OTHER_HOST`].
    pub fn other() -> Host {
        Host::from_str(OTHER_HOST)
    }

    fn from_str(host: &str) -> Host {
        let mut out = Host::NONE;
        out.len = host.len() as u8;
        out.bytes[..host.len()].copy_from_slice(host.as_bytes());
        out
    }

    /// Whether this is one of an unbounded set of names (a real host), as
    /// opposed to none, [`OTHER_HOST`] or [`LONG_HOST`]: only those are capped.
    pub fn is_named(&self) -> bool {
        !matches!(self.as_str(), "" | OTHER_HOST | LONG_HOST)
    }

    /// The host text.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referrer_hosts_are_lowercased_and_bounded() {
        let host = |r: Option<&str>| Host::of_referer(r).as_str().to_owned();
        assert_eq!(
            host(Some("https://News.Example.com:443/a?b")),
            "news.example.com"
        );
        assert_eq!(host(Some("http://user@h.example/")), "h.example");
        assert_eq!(host(Some("http://[::1]:8080/")), "::1");
        assert_eq!(host(Some("android-app://com.slack/")), "com.slack");
        assert_eq!(host(Some("not a url")), "");
        assert_eq!(host(None), "");
        let long = format!("https://{}.com/", "a".repeat(80));
        assert_eq!(host(Some(&long)), LONG_HOST);
        assert_eq!(host(Some("https://bad host/")), OTHER_HOST);
        assert!(Host::of_referer(Some("https://a.example/")).is_named());
        assert!(!Host::of_referer(Some(&long)).is_named());
        assert!(!Host::other().is_named());
        assert!(!Host::NONE.is_named());
    }
}
