//! Files from a root directory on keel with [`keel::files::ServeDir`]: the
//! keel side of `load/files.sh`, against tower-http's `ServeDir` on hyper
//! ([`crate::hyper_files`]).
//!
//! Both do the same work for a file: decode and check the path, open,
//! `fstat`, `Content-Type` from the extension (both use `mime_guess`'s
//! table), `Last-Modified`, `Accept-Ranges: bytes`, conditional requests
//! and one `Range`. keel also sends a strong `ETag` (tower-http sends
//! none) and opens beneath the root with `openat2(RESOLVE_BENEATH)`.
//! Where they differ by design: several disjoint ranges get the whole file
//! from keel (`200`) and `416` from tower-http.

use keel::files::ServeDir;
use keel::{Router, Routes};
use std::path::Path;

/// The routes: `GET` (and `HEAD`) `/*path` served from `root`.
///
/// # Panics
///
/// When `root` is not a directory.
pub fn routes(root: &Path) -> Routes {
    let dir = ServeDir::new(root).expect("the root is a directory");
    Router::new()
        .get("/*path", dir)
        .build()
        .expect("the routes are valid")
}
