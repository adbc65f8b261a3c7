//! The trailer fields that end a chunked request body (RFC 9112 §7.1.2).

/// The trailer section of a streamed request body, borrowed from the
/// connection's buffer: field lines already checked by the chunked decoder
/// (token names, no control characters, no obs-fold).
///
/// ```
/// use keel::body::Trailers;
/// let none = Trailers::default();
/// assert!(none.is_empty() && none.get("digest").is_none());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Trailers<'a> {
    /// `name: value\r\n` lines, the empty last line left out.
    section: &'a [u8],
}

impl<'a> Trailers<'a> {
    pub(crate) fn new(section: &'a [u8]) -> Self {
        Trailers { section }
    }

    /// Whether the body ended without trailer fields.
    pub fn is_empty(&self) -> bool {
        self.section.is_empty()
    }

    /// The value of the first field called `name` (compared without regard
    /// to ASCII case), its surrounding whitespace trimmed.
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// Every field, in order, as (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> {
        self.section.split(|&b| b == b'\n').filter_map(|line| {
            let line = line.strip_suffix(b"\r")?;
            let colon = line.iter().position(|&b| b == b':')?;
            // The decoder checked the name is a token: ASCII.
            let name = std::str::from_utf8(&line[..colon]).ok()?;
            Some((name, line[colon + 1..].trim_ascii()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_fields_by_name_in_any_case() {
        let trailers = Trailers::new(b"Digest: sha-256=abc\r\nX-Count:  7 \r\n");
        assert_eq!(trailers.get("digest"), Some(&b"sha-256=abc"[..]));
        assert_eq!(trailers.get("x-count"), Some(&b"7"[..]));
        assert_eq!(trailers.get("missing"), None);
        let names: Vec<&str> = trailers.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Digest", "X-Count"]);
    }
}
