//! API keys: their scopes, the key file and `SHORTENER_API_KEYS` formats,
//! how they are held (SHA-256 digests) and matched (in constant time), and
//! how a new one is made.
//!
//! A key file holds one key a line, its scope first: `admin <key>`,
//! `write <key>` or `read <key>`; blank lines and lines starting with `#`
//! are skipped. A line holding a key alone (the format before scopes) is a
//! `write` key. `SHORTENER_API_KEYS` holds comma-separated `scope:key`
//! items, a bare `key` again meaning `write`.

use base64::Engine;
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Write;
use std::path::Path;
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// Shortest key accepted: 22 base64url characters carry 132 bits, and a
/// key must carry at least 128 to be out of reach of guessing.
pub const MIN_KEY_LEN: usize = 22;

/// Random bytes in a key made by [`generate`]: 256 bits.
const GENERATED_BYTES: usize = 32;

/// What a key (or, in keyless mode, a loopback client) may do. Each scope
/// holds the ones before it: `admin` may do what `write` may, which may
/// do what `read` may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Scope {
    /// List links, read one (its target included) and its QR code.
    Read = 1,
    /// Create and change links.
    Write = 2,
    /// Delete links, read their stats (visitors' referrers and agents),
    /// `/metrics` and the details of `/health`.
    Admin = 3,
}

impl Scope {
    /// The scope named `name` (`read`, `write` or `admin`, any case).
    pub fn parse(name: &str) -> Option<Scope> {
        [Scope::Read, Scope::Write, Scope::Admin]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }

    /// Its name in key files and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    fn from_u8(n: u8) -> Option<Scope> {
        match n {
            1 => Some(Scope::Read),
            2 => Some(Scope::Write),
            3 => Some(Scope::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why keys could not be loaded. Messages name the entry, never the key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("{origin}, entry {entry}: unknown scope {scope:?} (read, write or admin)")]
    UnknownScope {
        origin: String,
        entry: usize,
        scope: String,
    },
    #[error("{origin}, entry {entry}: expected `SCOPE KEY`, found more")]
    Malformed { origin: String, entry: usize },
    #[error(
        "{origin}, entry {entry}: the key is {len} characters, keys need at least \
         {MIN_KEY_LEN} (128 bits of randomness): make one with `shortener keys new --scope SCOPE`"
    )]
    TooShort {
        origin: String,
        entry: usize,
        len: usize,
    },
    #[error("{origin}, entry {entry}: a key is printable ASCII without spaces")]
    BadCharacter { origin: String, entry: usize },
    #[error("{origin}, entry {entry}: this key is listed before")]
    Duplicate { origin: String, entry: usize },
    #[error(
        "{origin} holds no key (only blank lines or comments): refusing to start without keys; \
         add one with `shortener keys new --scope admin`, or remove the setting to run keyless \
         (loopback clients only)"
    )]
    Empty { origin: String },
}

/// The configured keys, each held as the SHA-256 digest of the key and its
/// scope. Empty: keyless mode.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<([u8; 32], Scope)>,
    /// Keys given without a scope (read as `write`).
    unscoped: usize,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The digests are not secret, but a log has no use for them.
        f.debug_struct("KeySet")
            .field("keys", &self.keys.len())
            .field("unscoped", &self.unscoped)
            .finish()
    }
}

/// An entry's scope name, if it has one, and its key.
type Entry<'a> = (Option<&'a str>, &'a str);

/// A key file line: `[SCOPE] KEY`; `None` when it has more words.
fn split_line(line: &str) -> Option<Entry<'_>> {
    let mut words = line.split_ascii_whitespace();
    let first = words.next().unwrap_or("");
    match (words.next(), words.next()) {
        (None, _) => Some((None, first)),
        (Some(key), None) => Some((Some(first), key)),
        (Some(_), Some(_)) => None,
    }
}

/// A `SHORTENER_API_KEYS` item: `[scope:]key`. A bare key may hold a
/// colon: only a scope's name before it makes a prefix.
fn split_item(item: &str) -> Option<Entry<'_>> {
    match item.split_once(':') {
        Some((scope, key)) if Scope::parse(scope.trim()).is_some() => {
            Some((Some(scope.trim()), key.trim()))
        }
        _ => Some((None, item)),
    }
}

fn digest(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

impl KeySet {
    /// Adds the keys of a key file's text; `origin` names it in errors.
    ///
    /// # Errors
    ///
    /// A line that is not `[SCOPE] KEY`, a key too short or listed twice,
    /// or a text with no key at all.
    pub fn add_file(&mut self, text: &str, origin: &str) -> Result<(), KeyError> {
        let entries = text.lines().enumerate().filter_map(|(i, line)| {
            let line = line.trim();
            (!line.is_empty() && !line.starts_with('#')).then_some((i + 1, line))
        });
        self.add_entries(entries, split_line, origin)
    }

    /// Adds the keys of `SHORTENER_API_KEYS`: comma-separated `scope:key`
    /// (or bare `key`) items.
    ///
    /// # Errors
    ///
    /// As [`add_file`](KeySet::add_file).
    pub fn add_env(&mut self, text: &str, origin: &str) -> Result<(), KeyError> {
        let entries = text
            .split(',')
            .map(str::trim)
            .enumerate()
            .filter(|(_, item)| !item.is_empty())
            .map(|(i, item)| (i + 1, item));
        self.add_entries(entries, split_item, origin)
    }

    fn add_entries<'a>(
        &mut self,
        entries: impl Iterator<Item = (usize, &'a str)>,
        split: fn(&'a str) -> Option<Entry<'a>>,
        origin: &str,
    ) -> Result<(), KeyError> {
        let origin = || origin.to_owned();
        let before = self.keys.len();
        for (entry, text) in entries {
            let (scope, key) = split(text).ok_or_else(|| KeyError::Malformed {
                origin: origin(),
                entry,
            })?;
            let scope = match scope {
                None => {
                    self.unscoped += 1;
                    Scope::Write
                }
                Some(name) => Scope::parse(name).ok_or_else(|| KeyError::UnknownScope {
                    origin: origin(),
                    entry,
                    scope: name.to_owned(),
                })?,
            };
            if !key.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(KeyError::BadCharacter {
                    origin: origin(),
                    entry,
                });
            }
            if key.len() < MIN_KEY_LEN {
                return Err(KeyError::TooShort {
                    origin: origin(),
                    entry,
                    len: key.len(),
                });
            }
            let hash = digest(key.as_bytes());
            if self.keys.iter().any(|(known, _)| *known == hash) {
                return Err(KeyError::Duplicate {
                    origin: origin(),
                    entry,
                });
            }
            self.keys.push((hash, scope));
        }
        if self.keys.len() == before {
            return Err(KeyError::Empty { origin: origin() });
        }
        Ok(())
    }

    /// No key configured: keyless mode.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many keys there are of `scope`.
    pub fn count(&self, scope: Scope) -> usize {
        self.keys.iter().filter(|(_, s)| *s == scope).count()
    }

    /// How many keys were given without a scope (and read as `write`).
    pub fn unscoped(&self) -> usize {
        self.unscoped
    }

    /// The scope of `key`, if it is one of ours.
    ///
    /// The time taken depends on the number of keys and the length of
    /// `key` only: every digest is compared in full, in constant time, and
    /// the match is selected without a branch, so neither which key
    /// matched nor how much of one did shows. Digests have one length,
    /// so a key's length does not show either.
    pub fn scope_of(&self, key: &str) -> Option<Scope> {
        let given = digest(key.as_bytes());
        let mut found = 0u8;
        for (hash, scope) in &self.keys {
            found.conditional_assign(&(*scope as u8), hash.ct_eq(&given));
        }
        Scope::from_u8(found)
    }
}

/// A fresh key: 256 random bits from the operating system, base64url
/// without padding (43 characters, safe in a header and a file line).
///
/// # Errors
///
/// When the operating system has no random source.
pub fn generate() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; GENERATED_BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Appends `SCOPE KEY` to the key file at `path`, creating it (and its
/// directory) readable by its owner alone when it is new.
///
/// # Errors
///
/// When the file cannot be created or written.
pub fn append(path: &Path, scope: Scope, key: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    // A last line without its newline would swallow ours.
    let len = file.metadata()?.len();
    let needs_newline = len > 0 && {
        let text = std::fs::read(path)?;
        text.last() != Some(&b'\n')
    };
    let line = format!("{}{scope} {key}\n", if needs_newline { "\n" } else { "" });
    file.write_all(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccc";

    #[test]
    fn a_key_file_gives_each_key_its_scope() {
        let mut keys = KeySet::default();
        let text = format!("# team\n\nadmin {A}\n  WRITE\t{B}  \n{C}\n");
        keys.add_file(&text, "f").unwrap();
        assert_eq!(keys.scope_of(A), Some(Scope::Admin));
        assert_eq!(keys.scope_of(B), Some(Scope::Write));
        // A bare key is a write key.
        assert_eq!(keys.scope_of(C), Some(Scope::Write));
        assert_eq!(keys.unscoped(), 1);
        assert_eq!(keys.scope_of(&A[1..]), None);
        assert_eq!(keys.scope_of(&format!("{A}a")), None);
        assert_eq!(keys.scope_of(""), None);
        assert_eq!(keys.count(Scope::Write), 2);
    }

    #[test]
    fn env_items_are_scope_colon_key() {
        let mut keys = KeySet::default();
        keys.add_env(&format!(" read:{A} ,, admin:{B}, x:{C}"), "env")
            .unwrap();
        assert_eq!(keys.scope_of(A), Some(Scope::Read));
        assert_eq!(keys.scope_of(B), Some(Scope::Admin));
        // `x` names no scope: the whole item is a bare key.
        assert_eq!(keys.scope_of(&format!("x:{C}")), Some(Scope::Write));
    }

    #[test]
    fn bad_entries_are_refused_by_entry_number() {
        let err = |text: &str| KeySet::default().add_file(text, "f").unwrap_err();
        assert_eq!(
            err("# only\n\n   \n# comments\n"),
            KeyError::Empty { origin: "f".into() }
        );
        assert!(matches!(
            err("short-key\n"),
            KeyError::TooShort {
                entry: 1,
                len: 9,
                ..
            }
        ));
        assert!(matches!(
            err(&format!("\nowner {A}\n")),
            KeyError::UnknownScope { entry: 2, .. }
        ));
        assert!(matches!(
            err(&format!("read {A} x\n")),
            KeyError::Malformed { .. }
        ));
        assert!(matches!(
            err(&format!("read {A}\nadmin {A}\n")),
            KeyError::Duplicate { entry: 2, .. }
        ));
        assert!(matches!(
            err("read aaaaaaaaaaaaaaaaaaaaaaaaaaaaé\n"),
            KeyError::BadCharacter { .. }
        ));
        let message = err("tiny\n").to_string();
        assert!(
            !message.contains("tiny"),
            "errors never show a key: {message}"
        );
        assert!(matches!(
            KeySet::default().add_env(" , ", "env").unwrap_err(),
            KeyError::Empty { .. }
        ));
    }

    #[test]
    fn generated_keys_are_long_random_and_accepted() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        let mut keys = KeySet::default();
        keys.add_file(&format!("read {a}"), "f").unwrap();
        assert_eq!(keys.scope_of(&a), Some(Scope::Read));
    }

    #[test]
    fn append_creates_an_owner_only_file_and_keeps_lines_apart() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/api-keys");
        append(&path, Scope::Admin, A).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(&path, format!("admin {A}")).unwrap();
        append(&path, Scope::Read, B).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("admin {A}\nread {B}\n")
        );
    }
}
