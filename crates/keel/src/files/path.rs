//! A request path mapped to a file under a root directory, so that no
//! request can name a file outside it: the percent-decoded path is checked
//! segment by segment, and the kernel keeps the open beneath the root.

use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::request::percent_decode;
use crate::server::sys;
use crate::status::StatusCode;

/// What [`RelativePath::parse`] and [`open_under`] allow beyond the safe
/// default (both off).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathOptions {
    /// Serve files and directories whose name starts with `.` (`.well-known`,
    /// but also `.git`, `.env`). Off: such a path is [`PathError::DotFile`].
    pub allow_dot_files: bool,
    /// Follow symbolic links whose target is outside the root. Off: such a
    /// file is [`OpenError::OutsideRoot`]; links inside the root always work.
    pub follow_symlinks_out: bool,
}

/// Why a request path names no file under the root. Every variant is
/// answered `404 Not Found` ([`PathError::status`]): a path that cannot name
/// a servable file names none, and a scanner learns nothing about which
/// rule it hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// A `..` segment, in any spelling (`..`, `%2e%2e`, `.%2E`).
    ParentSegment,
    /// An encoded slash (`%2f`): a segment would contain a separator.
    EncodedSlash,
    /// A backslash, raw or `%5c`: a separator on Windows.
    Backslash,
    /// A NUL or another control character (below `0x20`, or `0x7f`).
    ControlCharacter,
    /// An absolute path (the tail starts with `/`) or a drive letter (`C:`).
    Absolute,
    /// A segment starting with `.` while [`PathOptions::allow_dot_files`] is off.
    DotFile,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

impl PathError {
    /// The status to answer with: always `404 Not Found`.
    pub fn status(self) -> StatusCode {
        StatusCode::NOT_FOUND
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::ParentSegment => "the path has a `..` segment",
            PathError::EncodedSlash => "the path has an encoded slash",
            PathError::Backslash => "the path has a backslash",
            PathError::ControlCharacter => "the path has a control character",
            PathError::Absolute => "the path is absolute",
            PathError::DotFile => "the path names a dot-file",
            PathError::NotUtf8 => "the decoded path is not UTF-8",
        })
    }
}

impl std::error::Error for PathError {}

/// A percent-decoded path relative to a root, that names nothing outside
/// it: segments without `.`, `..`, empty ones, separators or control
/// characters, joined with `/`. Empty for the root itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelativePath {
    decoded: String,
    trailing_slash: bool,
}

impl RelativePath {
    /// Checks and decodes `tail`, the rest of a request path as the router
    /// captured it (`req.param("path")` for `/static/*path`: raw, still
    /// percent-encoded). Empty segments and `.` collapse (`a//./b` is
    /// `a/b`); everything [`PathError`] lists is refused. Decoding happens
    /// once: `%252e%252e` is the name `%2e%2e`, not `..`.
    ///
    /// Allocates the decoded path.
    ///
    /// # Errors
    /// A [`PathError`] for the first rule the path breaks.
    ///
    /// ```
    /// use keel::files::{PathError, PathOptions, RelativePath};
    ///
    /// let safe = PathOptions::default();
    /// let path = RelativePath::parse("css//site%20v2.css", &safe).unwrap();
    /// assert_eq!(path.as_str(), "css/site v2.css");
    /// assert_eq!(RelativePath::parse("a/%2e%2e/%2e%2e/etc/passwd", &safe), Err(PathError::ParentSegment));
    /// assert_eq!(RelativePath::parse(".git/config", &safe), Err(PathError::DotFile));
    /// ```
    pub fn parse(tail: &str, options: &PathOptions) -> Result<Self, PathError> {
        // Before decoding, while an encoded separator can still be told from
        // a real one.
        if contains_escape(tail, b'/') {
            return Err(PathError::EncodedSlash);
        }
        if contains_escape(tail, b'\\') {
            return Err(PathError::Backslash);
        }
        let decoded = percent_decode(tail, false).ok_or(PathError::NotUtf8)?;
        if decoded.starts_with('/') {
            return Err(PathError::Absolute);
        }
        let mut path = Self {
            decoded: String::with_capacity(decoded.len()),
            trailing_slash: decoded.ends_with('/'),
        };
        for (index, segment) in decoded.split('/').enumerate() {
            if index == 0 && is_drive_letter(segment) {
                return Err(PathError::Absolute);
            }
            if segment.is_empty() || segment == "." {
                continue;
            }
            path.push(segment, options)?;
        }
        Ok(path)
    }

    /// This path with one more segment, `name` as it is (not decoded):
    /// `index.html` under a directory. Checked like a segment of
    /// [`RelativePath::parse`].
    ///
    /// # Errors
    /// A [`PathError`] when `name` is empty, `.`, `..`, holds a `/` or
    /// breaks another rule.
    pub fn join(&self, name: &str, options: &PathOptions) -> Result<Self, PathError> {
        if name.contains('/') {
            return Err(PathError::EncodedSlash);
        }
        if name.is_empty() || name == "." {
            return Err(PathError::ParentSegment);
        }
        let mut joined = self.clone();
        joined.trailing_slash = false;
        joined.push(name, options)?;
        Ok(joined)
    }

    /// The path of a precompressed variant: `suffix` (`.br`, `.gz`, from
    /// [`Encoding::file_suffix`](super::Encoding::file_suffix)) appended to
    /// the last segment. `None` for the root, which has no last segment.
    pub fn with_suffix(&self, suffix: &str) -> Option<Self> {
        if self.decoded.is_empty() {
            return None;
        }
        let mut variant = self.clone();
        variant.decoded.push_str(suffix);
        Some(variant)
    }

    fn push(&mut self, segment: &str, options: &PathOptions) -> Result<(), PathError> {
        if segment == ".." {
            return Err(PathError::ParentSegment);
        }
        if segment.contains('\\') {
            return Err(PathError::Backslash);
        }
        if segment.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(PathError::ControlCharacter);
        }
        if segment.starts_with('.') && !options.allow_dot_files {
            return Err(PathError::DotFile);
        }
        if !self.decoded.is_empty() {
            self.decoded.push('/');
        }
        self.decoded.push_str(segment);
        Ok(())
    }

    /// The decoded path, `/`-separated, without a leading or trailing `/`.
    pub fn as_str(&self) -> &str {
        &self.decoded
    }

    /// The decoded path as a relative [`Path`].
    pub fn as_path(&self) -> &Path {
        Path::new(&self.decoded)
    }

    /// Whether this is the root itself (an empty tail).
    pub fn is_root(&self) -> bool {
        self.decoded.is_empty()
    }

    /// Whether the request path ended with `/`: a directory asked for as a
    /// directory. A server usually redirects `dir` to `dir/` before serving
    /// its `index.html`, so that the page's relative links resolve.
    pub fn had_trailing_slash(&self) -> bool {
        self.trailing_slash
    }
}

/// Whether `text` holds `%XX` escaping `byte` (either case of hex).
fn contains_escape(text: &str, byte: u8) -> bool {
    let hex = |b: u8| (b as char).to_digit(16);
    text.as_bytes().windows(3).any(|window| match window {
        [b'%', hi, lo] => {
            matches!((hex(*hi), hex(*lo)), (Some(hi), Some(lo)) if hi * 16 + lo == u32::from(byte))
        }
        _ => false,
    })
}

/// `C:` or `c:anything`: a Windows drive, absolute there.
fn is_drive_letter(segment: &str) -> bool {
    matches!(segment.as_bytes(), [letter, b':', ..] if letter.is_ascii_alphabetic())
}

/// A directory files are served from, resolved once (symbolic links and
/// all) so that every file opened under it can be checked against it.
#[derive(Clone, Debug)]
pub struct Root {
    canonical: PathBuf,
    /// The directory itself, open: files are opened beneath it.
    dir: Arc<File>,
}

impl Root {
    /// The root at `path`.
    ///
    /// # Errors
    /// The error of resolving `path`, or `InvalidInput` when it is not a
    /// directory.
    pub fn new(path: impl AsRef<Path>) -> io::Result<Self> {
        let canonical = std::fs::canonicalize(path)?;
        if !canonical.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", canonical.display()),
            ));
        }
        let dir = Arc::new(File::open(&canonical)?);
        Ok(Self { canonical, dir })
    }

    /// The resolved path of the root.
    pub fn path(&self) -> &Path {
        &self.canonical
    }
}

/// What [`open_under`] found.
#[derive(Debug)]
pub enum Opened {
    /// A regular file, open for reading, with its `fstat` metadata.
    File {
        /// The open file.
        file: File,
        /// Its metadata (size, times, inode) for [`Validators`](super::Validators).
        metadata: Metadata,
    },
    /// A directory: serve its `index.html` ([`RelativePath::join`]), a
    /// listing, or `404`; the caller decides.
    Directory,
}

/// Why [`open_under`] opened nothing.
#[derive(Debug)]
pub enum OpenError {
    /// No such file, a file where a directory was expected (`a.txt/x`), a
    /// loop of symbolic links, or a name too long.
    NotFound,
    /// The file opened is outside the root: a symbolic link leads out and
    /// [`PathOptions::follow_symlinks_out`] is off.
    OutsideRoot,
    /// Neither a regular file nor a directory: a FIFO, socket or device.
    NotAFile,
    /// Any other failure: permissions, too many open files...
    Io(io::Error),
}

impl OpenError {
    /// The status to answer with: `404` for a file that is missing, outside
    /// the root or not a file (saying `403` would confirm that it exists),
    /// `403` when permissions refuse it, `500` otherwise.
    pub fn status(&self) -> StatusCode {
        match self {
            OpenError::NotFound | OpenError::OutsideRoot | OpenError::NotAFile => {
                StatusCode::NOT_FOUND
            }
            OpenError::Io(error) if error.kind() == io::ErrorKind::PermissionDenied => {
                StatusCode::FORBIDDEN
            }
            OpenError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::NotFound => f.write_str("no such file"),
            OpenError::OutsideRoot => f.write_str("the file is outside the root"),
            OpenError::NotAFile => f.write_str("not a regular file or directory"),
            OpenError::Io(error) => write!(f, "cannot open the file: {error}"),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Io(error) => Some(error),
            _ => None,
        }
    }
}

impl From<io::Error> for OpenError {
    fn from(error: io::Error) -> Self {
        // A link loop or a name too long names no file either; a socket
        // (and a device without a driver) cannot be opened: ENXIO.
        match (error.kind(), error.raw_os_error()) {
            (io::ErrorKind::NotFound, _) => OpenError::NotFound,
            (_, Some(libc::ENOTDIR | libc::ELOOP | libc::ENAMETOOLONG)) => OpenError::NotFound,
            (_, Some(libc::ENXIO)) => OpenError::NotAFile,
            _ => OpenError::Io(error),
        }
    }
}

/// Opens `rel` under `root` for reading.
///
/// Unless [`PathOptions::follow_symlinks_out`] is set, the kernel itself
/// keeps the open beneath the root (`openat2` with `RESOLVE_BENEATH`, Linux
/// 5.6 and later): `..`, an absolute path or a symbolic link that leads out
/// is refused as the path is resolved, so nothing can be swapped between a
/// check and the open, and nothing is allocated. On an older kernel the
/// path of the file actually opened is read back from `/proc/self/fd` (or
/// resolved where `/proc` is missing) and must be inside the root; that
/// allocates. Links inside the root are followed either way.
///
/// The file is opened non-blocking, so that a FIFO in the tree cannot
/// stall the caller waiting for a writer. Only regular files and
/// directories are returned. The `O_NONBLOCK` flag stays on the descriptor;
/// reads and `sendfile` of a regular file ignore it.
///
/// Blocking file-system calls (`open`, `fstat`): fast for a tree in the
/// page cache; call it from the blocking pool when the tree may be on a
/// slow disk.
///
/// # Errors
/// [`OpenError`], whose [`status`](OpenError::status) is the answer.
///
/// ```
/// use keel::files::{open_under, OpenError, Opened, PathOptions, RelativePath, Root};
///
/// let dir = std::env::temp_dir().join(format!("keel-open-under-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// std::fs::write(dir.join("hello.txt"), "hi")?;
/// let root = Root::new(&dir)?;
/// let options = PathOptions::default();
///
/// let rel = RelativePath::parse("hello.txt", &options).unwrap();
/// assert!(matches!(open_under(&root, &rel, &options), Ok(Opened::File { .. })));
/// let rel = RelativePath::parse("missing.txt", &options).unwrap();
/// assert!(matches!(open_under(&root, &rel, &options), Err(OpenError::NotFound)));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn open_under(
    root: &Root,
    rel: &RelativePath,
    options: &PathOptions,
) -> Result<Opened, OpenError> {
    let file = if options.follow_symlinks_out {
        open_path(&root.canonical.join(rel.as_path()))?
    } else {
        let name = if rel.is_root() { "." } else { rel.as_str() };
        match sys::open_beneath(&*root.dir, name.as_bytes()) {
            Ok(file) => file,
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => return Err(OpenError::OutsideRoot),
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => open_checked(root, rel)?,
            Err(e) => return Err(e.into()),
        }
    };
    let metadata = file.metadata()?;
    if metadata.is_file() {
        Ok(Opened::File { file, metadata })
    } else if metadata.is_dir() {
        Ok(Opened::Directory)
    } else {
        Err(OpenError::NotAFile)
    }
}

/// Opens `path` non-blocking (see [`open_under`]).
pub(super) fn open_path(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

/// Where `openat2` is missing: opens by path, then checks where the file
/// opened really is.
fn open_checked(root: &Root, rel: &RelativePath) -> Result<File, OpenError> {
    let path = root.canonical.join(rel.as_path());
    let file = open_path(&path)?;
    if !opened_path(&file, &path)?.starts_with(&root.canonical) {
        return Err(OpenError::OutsideRoot);
    }
    Ok(file)
}

/// Where `file` really is: the link `/proc/self/fd/N` names the file the
/// descriptor refers to; without `/proc`, `path` resolved.
fn opened_path(file: &File, path: &Path) -> io::Result<PathBuf> {
    let fd_link = format!("/proc/self/fd/{}", file.as_raw_fd());
    std::fs::read_link(fd_link).or_else(|_| std::fs::canonicalize(path))
}

#[cfg(test)]
#[path = "path_tests.rs"]
mod tests;
