//! Serving files: [`ServeDir`] and [`ServeFile`] answer `GET` and `HEAD`
//! with files, conditional requests, ranges and precompressed variants
//! (the guide's section "Serving files" says what each request gets).
//! Under them, a slice of an open file goes out with `sendfile(2)` from
//! the page cache ([`Response::file`](crate::Response::file)), read in off
//! the event loop when it is not cached; [`answer`] sends one
//! representation, from a file or from memory; and the rules of RFC 9110 a
//! file server follows are pure functions over request fields and file
//! metadata:
//!
//! - [`Validators`]: a file's `ETag` and `Last-Modified`;
//! - [`check_preconditions`], [`if_range_holds`]: conditional requests (§13);
//! - [`select_range`], [`ContentRange`]: range requests (§14);
//! - [`negotiate_encoding`], [`is_compressible`]: precompressed variants and
//!   compression (§12.5.3);
//! - [`RelativePath`], [`open_under`]: a request path mapped safely to a
//!   file under a root;
//! - [`ContentType`]: the media type of a file from its extension.
//!
//! The rules touch no socket. Apart from mapping a path (which allocates
//! the decoded path), nothing allocates: the header values live in
//! fixed-size buffers.
//!
//! [`ServeDir`] applies them in this order:
//!
//! 1. [`RelativePath::parse`] the routed tail, then [`open_under`] the root
//!    (a [`PathError`] or [`OpenError`] says which status to answer);
//! 2. [`negotiate_encoding`] among the precompressed variants that exist
//!    ([`RelativePath::with_suffix`]), and open the chosen one: the
//!    validators, ranges and length below are the variant's;
//! 3. [`Validators::from_metadata`], then [`check_preconditions`]: `304` or
//!    `412` stop here;
//! 4. [`select_range`] (which evaluates `If-Range`): `206` with a
//!    [`ContentRange`], `416`, or the whole file;
//! 5. `ETag`, `Last-Modified`, `Accept-Ranges: bytes`, `Vary:
//!    Accept-Encoding`, a [`ContentType`] of the original path and the
//!    `Content-Encoding` of the variant on the answer.

mod answer;
mod conditional;
mod content_type;
mod encoding;
mod fields;
mod fixed;
mod path;
mod range;
pub(crate) mod readahead;
mod serve;
pub(crate) mod slice;
mod validators;
#[cfg(test)]
mod wire;

pub use answer::{answer, Body, Representation};
pub use conditional::{check_preconditions, if_range_holds, Precondition};
pub use content_type::ContentType;
pub use encoding::{is_compressible, negotiate_encoding, Encoding, Variants};
pub use path::{open_under, OpenError, Opened, PathError, PathOptions, RelativePath, Root};
pub use range::{parse_range, select_range, ByteRange, ContentRange, RangeDecision, MAX_RANGES};
pub use serve::{ServeDir, ServeFile};
pub use validators::Validators;
