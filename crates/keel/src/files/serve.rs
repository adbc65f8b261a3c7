//! [`ServeDir`] and [`ServeFile`]: handlers that answer `GET` and `HEAD`
//! with files, conditional requests, ranges and precompressed variants.

use super::answer::{answer, Body, Representation};
use super::path::open_path;
use super::{
    negotiate_encoding, open_under, ContentType, Encoding, Opened, PathOptions, RelativePath, Root,
    Validators, Variants,
};
use crate::{field, Handler, Request, Response, StatusCode};
use std::fs::{File, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Serves the files under a directory: mount it on a route whose last
/// parameter is a wildcard, `/static/*path` (the tail names the file; a
/// handler used without a router takes the whole request path).
///
/// - `GET` and `HEAD` only (else `405` with `Allow: GET, HEAD`).
/// - No path leaves the root: `..` (also `%2e%2e`), an encoded `/` or
///   `\`, NUL and control characters, absolute and drive paths, and
///   dot-files (`.git`, `.env`) are `404` ([`PathOptions`] lifts the last
///   two rules); the kernel refuses symbolic links that lead out
///   (`openat2` with `RESOLVE_BENEATH`) unless
///   [`follow_symlinks_out`](ServeDir::follow_symlinks_out).
/// - A directory serves its `index.html` ([`index_file`](ServeDir::index_file)),
///   after a `301` that adds the `/` its relative links need; without an
///   index file, a directory is `404`. Only regular files are served
///   (never a FIFO, socket or device).
/// - Each answer carries a strong `ETag` (inode, modification time, size),
///   `Last-Modified`, `Accept-Ranges: bytes`, the type from the extension
///   and the [`cache_control`](ServeDir::cache_control) set; conditional
///   requests and ranges as [`answer`](super::answer) says.
/// - With [`precompressed_br`](ServeDir::precompressed_br) or
///   [`precompressed_gzip`](ServeDir::precompressed_gzip), `app.js.br` or
///   `app.js.gz` beside `app.js` is sent to a client whose
///   `Accept-Encoding` prefers it (q-values honoured), with
///   `Content-Encoding`; every answer then says `Vary: Accept-Encoding`.
///
/// A file's body goes from the page cache to the socket with `sendfile`
/// ([`Response::file`]). Opening and `fstat` run on the worker: quick for
/// a tree in the page cache. Per request, the decoded path is allocated
/// (one or two small allocations); nothing else is.
///
/// ```no_run
/// use keel::files::ServeDir;
/// use keel::{Router, Server};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let assets = ServeDir::new("public")?
///     .cache_control("public, max-age=3600")
///     .precompressed_gzip();
/// let routes = Router::new().get("/static/*path", assets).build()?;
/// Server::bind("127.0.0.1:8080").serve(routes)?.join();
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct ServeDir {
    root: Root,
    options: PathOptions,
    index: Option<Box<str>>,
    cache_control: Option<Box<str>>,
    variants: Variants,
    param: Box<str>,
}

impl ServeDir {
    /// Serves the directory at `root` (resolved and opened now).
    ///
    /// # Errors
    ///
    /// `root` does not exist or is not a directory.
    pub fn new(root: impl AsRef<Path>) -> io::Result<ServeDir> {
        Ok(ServeDir {
            root: Root::new(root)?,
            options: PathOptions::default(),
            index: Some("index.html".into()),
            cache_control: None,
            variants: Variants::default(),
            param: "path".into(),
        })
    }

    /// The file a directory serves (`index.html` by default); `None`: a
    /// directory is `404`.
    #[must_use]
    pub fn index_file(mut self, name: Option<&str>) -> ServeDir {
        self.index = name.map(Into::into);
        self
    }

    /// The `Cache-Control` of every answer (none by default).
    ///
    /// # Panics
    ///
    /// When `value` could not be a header value (a control character).
    #[must_use]
    pub fn cache_control(mut self, value: &str) -> ServeDir {
        self.cache_control = Some(header_value(value));
        self
    }

    /// Sends `NAME.br` beside `NAME` to clients that prefer Brotli.
    #[must_use]
    pub fn precompressed_br(mut self) -> ServeDir {
        self.variants.brotli = true;
        self
    }

    /// Sends `NAME.gz` beside `NAME` to clients that prefer gzip.
    #[must_use]
    pub fn precompressed_gzip(mut self) -> ServeDir {
        self.variants.gzip = true;
        self
    }

    /// Serves dot-files (`.well-known/...`), refused by default: `.git`
    /// or `.env` left in a web root is a classic leak.
    #[must_use]
    pub fn allow_dot_files(mut self, allow: bool) -> ServeDir {
        self.options.allow_dot_files = allow;
        self
    }

    /// Follows symbolic links that lead out of the root (refused by
    /// default).
    #[must_use]
    pub fn follow_symlinks_out(mut self, follow: bool) -> ServeDir {
        self.options.follow_symlinks_out = follow;
        self
    }

    /// The directory served, resolved and open: to ask about a file under
    /// it with [`open_under`] as this handler would.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// The route parameter holding the file's path (`path` by default, as
    /// in `/static/*path`).
    #[must_use]
    pub fn param(mut self, name: &str) -> ServeDir {
        self.param = name.into();
        self
    }

    /// Opens what `rel` names: a file, or a directory's index file; else
    /// answers (`301` to add a directory's slash, or the error's status).
    fn open(&self, req: &Request<'_>, res: &mut Response<'_>, rel: RelativePath) -> Option<Found> {
        let (rel, opened) = match open_under(&self.root, &rel, &self.options) {
            Ok(Opened::Directory) => {
                if self.index.is_some() && !rel.is_root() && !rel.had_trailing_slash() {
                    add_slash(req, res);
                    return None;
                }
                let index = self.index.as_deref();
                let Some(rel) = index.and_then(|name| rel.join(name, &self.options).ok()) else {
                    refuse(res, StatusCode::NOT_FOUND);
                    return None;
                };
                let opened = open_under(&self.root, &rel, &self.options);
                (rel, opened)
            }
            opened => (rel, opened),
        };
        match opened {
            Ok(Opened::File { file, metadata }) => Some(Found {
                rel,
                file,
                metadata,
            }),
            // An index that is a directory itself.
            Ok(Opened::Directory) => {
                refuse(res, StatusCode::NOT_FOUND);
                None
            }
            Err(error) => {
                refuse(res, error.status());
                None
            }
        }
    }

    /// The best precompressed variant of `found` the client takes and that
    /// exists, else `found` itself.
    fn variant(&self, req: &Request<'_>, found: Found) -> (Found, Encoding) {
        let open = |coding: Encoding| match found
            .rel
            .with_suffix(coding.file_suffix())
            .map(|rel| open_under(&self.root, &rel, &self.options))
        {
            Some(Ok(Opened::File { file, metadata })) => Some((file, metadata)),
            _ => None,
        };
        match best_variant(req, self.variants, open) {
            Some(((file, metadata), coding)) => {
                let variant = Found {
                    rel: found.rel,
                    file,
                    metadata,
                };
                (variant, coding)
            }
            None => (found, Encoding::Identity),
        }
    }
}

impl Handler for ServeDir {
    fn handle(&self, req: &Request<'_>, res: &mut Response<'_>) {
        if !allowed(req, res) {
            return;
        }
        let tail = req
            .param(&self.param)
            .unwrap_or_else(|| req.path().trim_start_matches('/'));
        let rel = match RelativePath::parse(tail, &self.options) {
            Ok(rel) => rel,
            Err(error) => return refuse(res, error.status()),
        };
        let Some(found) = self.open(req, res, rel) else {
            return;
        };
        let content_type = ContentType::from_path(found.rel.as_path());
        let (found, encoding) = self.variant(req, found);
        let settings = Settings {
            content_type: content_type.as_str(),
            varies: self.variants != Variants::default(),
            cache_control: self.cache_control.as_deref(),
        };
        send(req, res, found.file, &found.metadata, encoding, &settings);
    }
}

/// Serves one file, whatever the request path: `/favicon.ico`, a download.
/// Everything [`ServeDir`] does for a file holds (validators, conditional
/// requests, ranges, precompressed variants); the file is opened anew for
/// each request, so a replaced file is served at once.
///
/// ```no_run
/// use keel::files::ServeFile;
/// use keel::Router;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let routes = Router::new()
///     .get("/favicon.ico", ServeFile::new("public/favicon.ico"))
///     .build()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct ServeFile {
    path: PathBuf,
    content_type: ContentType,
    cache_control: Option<Box<str>>,
    variants: Variants,
    /// `path` with each variant's suffix (built once).
    br: PathBuf,
    gz: PathBuf,
}

impl ServeFile {
    /// Serves the file at `path`, typed by its extension.
    pub fn new(path: impl Into<PathBuf>) -> ServeFile {
        let path = path.into();
        let with = |suffix: &str| {
            let mut name = path.clone().into_os_string();
            name.push(suffix);
            PathBuf::from(name)
        };
        ServeFile {
            content_type: ContentType::from_path(&path),
            br: with(Encoding::Brotli.file_suffix()),
            gz: with(Encoding::Gzip.file_suffix()),
            path,
            cache_control: None,
            variants: Variants::default(),
        }
    }

    /// The `Cache-Control` of every answer (none by default).
    ///
    /// # Panics
    ///
    /// When `value` could not be a header value (a control character).
    #[must_use]
    pub fn cache_control(mut self, value: &str) -> ServeFile {
        self.cache_control = Some(header_value(value));
        self
    }

    /// Sends `PATH.br` to clients that prefer Brotli, when it exists.
    #[must_use]
    pub fn precompressed_br(mut self) -> ServeFile {
        self.variants.brotli = true;
        self
    }

    /// Sends `PATH.gz` to clients that prefer gzip, when it exists.
    #[must_use]
    pub fn precompressed_gzip(mut self) -> ServeFile {
        self.variants.gzip = true;
        self
    }
}

impl Handler for ServeFile {
    fn handle(&self, req: &Request<'_>, res: &mut Response<'_>) {
        if !allowed(req, res) {
            return;
        }
        let variant = |coding: Encoding| match coding {
            Encoding::Brotli => open_regular(&self.br),
            Encoding::Gzip => open_regular(&self.gz),
            Encoding::Identity => None,
        };
        let ((file, metadata), encoding) = match best_variant(req, self.variants, variant) {
            Some(found) => found,
            None => match open_regular(&self.path) {
                Some(file) => (file, Encoding::Identity),
                None => return refuse(res, StatusCode::NOT_FOUND),
            },
        };
        let settings = Settings {
            content_type: self.content_type.as_str(),
            varies: self.variants != Variants::default(),
            cache_control: self.cache_control.as_deref(),
        };
        send(req, res, file, &metadata, encoding, &settings);
    }
}

/// A file found for a request: its path under the root, open.
struct Found {
    rel: RelativePath,
    file: File,
    metadata: Metadata,
}

/// What a handler sends with every file.
struct Settings<'a> {
    content_type: &'a str,
    varies: bool,
    cache_control: Option<&'a str>,
}

fn send(
    req: &Request<'_>,
    res: &mut Response<'_>,
    file: File,
    metadata: &Metadata,
    encoding: Encoding,
    settings: &Settings<'_>,
) {
    let validators = Validators::from_metadata(metadata, SystemTime::now());
    let representation = Representation {
        len: metadata.len(),
        validators: &validators,
        content_type: settings.content_type,
        encoding,
        varies_by_encoding: settings.varies,
        cache_control: settings.cache_control,
    };
    answer(req, res, &representation, Body::File(file));
}

/// The coded variant `req`'s `Accept-Encoding` prefers among those in
/// `offer` that `open` finds (a coding it does not find is taken out of
/// the offer and the client asked again); `None` when identity is the
/// best left.
fn best_variant<T>(
    req: &Request<'_>,
    mut offer: Variants,
    mut open: impl FnMut(Encoding) -> Option<T>,
) -> Option<(T, Encoding)> {
    loop {
        let choice = negotiate_encoding(req, offer).unwrap_or(Encoding::Identity);
        match choice {
            Encoding::Identity => return None,
            Encoding::Brotli => offer.brotli = false,
            Encoding::Gzip => offer.gzip = false,
        }
        if let Some(found) = open(choice) {
            return Some((found, choice));
        }
    }
}

/// Opens `path` if it is a regular file (non-blocking, as [`open_under`]
/// opens: a FIFO must not wait for a writer).
fn open_regular(path: &Path) -> Option<(File, Metadata)> {
    let file = open_path(path).ok()?;
    let metadata = file.metadata().ok()?;
    metadata.is_file().then_some((file, metadata))
}

/// `value` as a `Cache-Control` value: printable ASCII and tabs.
///
/// # Panics
///
/// When `value` holds another byte (a control character could split the
/// answer's head).
fn header_value(value: &str) -> Box<str> {
    assert!(
        value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b)),
        "Cache-Control value {value:?}"
    );
    value.into()
}

/// Whether the method is one a file answers; else answers `405`.
fn allowed(req: &Request<'_>, res: &mut Response<'_>) -> bool {
    if matches!(req.method(), "GET" | "HEAD") {
        return true;
    }
    res.field(field!("Allow", "GET, HEAD"));
    refuse(res, StatusCode::METHOD_NOT_ALLOWED);
    false
}

/// A short plain-text error answer.
fn refuse(res: &mut Response<'_>, status: StatusCode) {
    res.status(status)
        .field(field!("Content-Type", "text/plain; charset=utf-8"))
        .body(status.reason().as_bytes());
}

/// `301` to the request's path with a `/` added (its query kept): a
/// directory's index page resolves its relative links against it. Leading
/// slashes collapse to one: `//host/dir` must not become a redirect to
/// another host.
fn add_slash(req: &Request<'_>, res: &mut Response<'_>) {
    let path = req.path().trim_start_matches('/');
    let location = match req.query() {
        Some(query) => res.header_fmt("Location", format_args!("/{path}/?{query}")),
        None => res.header_fmt("Location", format_args!("/{path}/")),
    };
    match location {
        Ok(_) => res.status(StatusCode::MOVED_PERMANENTLY).body(b""),
        Err(_) => refuse(res, StatusCode::NOT_FOUND),
    }
}
