//! `--assets DIR`: a directory of files served under `/static/` with
//! keel's [`ServeDir`], for people who restyle the pages (their `app.css`
//! and `app.js` replace the embedded ones, [`crate::web`]) or ship
//! downloads of any size (sent with `sendfile`).
//!
//! What an attacker who can only send requests gets: nothing outside DIR
//! (`..` in any spelling, dot-files such as `.env` or `.git`, symbolic
//! links that lead out: all `404`, [`ServeDir`]'s defaults), and no type
//! sniffing (`X-Content-Type-Options: nosniff` on every answer). A file in
//! DIR that a browser would open as a document able to run script (HTML,
//! SVG, XML) is served from the app's own origin, where a script in it could
//! call the API with the visitor's credentials: those answers carry
//! `Content-Security-Policy: sandbox`, which makes the browser treat the
//! document as coming from a unique, opaque origin with scripts off.

use keel::files::{open_under, ContentType, Opened, PathOptions, RelativePath, ServeDir};
use keel::{field, Handler, Request, Response};
use std::io;
use std::path::Path;

/// The policy of a document served from DIR: scripts, forms, plug-ins and
/// same-origin access all off.
pub const SANDBOX_CSP: &str = "sandbox";

/// The files of `--assets DIR`.
#[derive(Debug)]
pub struct AssetDir {
    files: ServeDir,
}

impl AssetDir {
    /// Serves the directory at `dir`: `Cache-Control: no-cache` (browsers
    /// revalidate by `ETag`), `NAME.br` and `NAME.gz` beside `NAME` sent to
    /// clients that take them, no index page (a directory is `404`).
    ///
    /// # Errors
    ///
    /// `dir` does not exist or is not a directory.
    pub fn open(dir: &Path) -> io::Result<AssetDir> {
        let files = ServeDir::new(dir)?
            .cache_control("no-cache")
            .precompressed_br()
            .precompressed_gzip()
            .index_file(None);
        Ok(AssetDir { files })
    }

    /// Whether DIR holds a regular file named `name` (a plain name, as the
    /// pages ask for it: `app.css`).
    pub fn has_file(&self, name: &str) -> bool {
        let options = PathOptions::default();
        RelativePath::parse(name, &options).is_ok_and(|rel| {
            matches!(
                open_under(self.files.root(), &rel, &options),
                Ok(Opened::File { .. })
            )
        })
    }

    /// Answers `GET`/`HEAD /static/*path` from DIR (see the module's
    /// rules). Allocates the checked path.
    pub fn serve(&self, req: &Request<'_>, res: &mut Response<'_>) {
        res.field(field!("X-Content-Type-Options", "nosniff"));
        if req.param("path").is_some_and(renders_as_document) {
            res.header("Content-Security-Policy", SANDBOX_CSP);
        }
        self.files.handle(req, res);
    }
}

/// Whether the file a request tail names would be opened by a browser as a
/// document that can run script: HTML, XHTML, SVG or any XML. Decided on
/// the decoded path with the type [`ServeDir`] sends
/// ([`ContentType::from_path`]), so `evil%2Esvg` or `EVIL.SVG` is caught
/// like `evil.svg`. A tail that names no file gets `404` from
/// [`ServeDir`] anyway.
fn renders_as_document(tail: &str) -> bool {
    let Ok(rel) = RelativePath::parse(tail, &PathOptions::default()) else {
        return false;
    };
    let content_type = ContentType::from_path(rel.as_path());
    let media_type = content_type.as_str().split(';').next().unwrap_or("").trim();
    let is = |name: &str| media_type.eq_ignore_ascii_case(name);
    let suffix = media_type
        .len()
        .checked_sub(4)
        .and_then(|at| media_type.get(at..));
    is("text/html")
        || is("application/xhtml+xml")
        || is("text/xml")
        || is("application/xml")
        || suffix.is_some_and(|s| s.eq_ignore_ascii_case("+xml"))
}

#[cfg(test)]
mod tests {
    use super::renders_as_document;

    #[test]
    fn documents_are_html_svg_and_xml_in_any_spelling() {
        for tail in [
            "page.html",
            "page.htm",
            "PAGE.HTML",
            "x/logo.svg",
            "logo%2esvg",
            "logo.SVG",
            "page.xhtml",
            "feed.xml",
            "feed.rss",
        ] {
            assert!(renders_as_document(tail), "{tail}");
        }
        for tail in [
            "app.css",
            "app.js",
            "logo.png",
            "big.bin",
            "notes.txt",
            "noext",
            "../x.svg",
        ] {
            assert!(!renders_as_document(tail), "{tail}");
        }
    }
}
