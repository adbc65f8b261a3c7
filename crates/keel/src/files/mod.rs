//! Serving files: the rules of RFC 9110 a file server follows, as pure
//! functions over request fields and file metadata.
//!
//! - [`Validators`]: a file's `ETag` and `Last-Modified`;
//! - [`check_preconditions`], [`if_range_holds`]: conditional requests (§13);
//! - [`select_range`], [`ContentRange`]: range requests (§14);
//! - [`negotiate_encoding`], [`is_compressible`]: precompressed variants and
//!   compression (§12.5.3);
//! - [`RelativePath`], [`open_under`]: a request path mapped safely to a
//!   file under a root;
//! - [`ContentType`]: the media type of a file from its extension.

mod conditional;
mod content_type;
mod encoding;
mod fields;
mod fixed;
mod path;
mod range;
mod validators;
#[cfg(test)]
mod wire;

pub use conditional::{check_preconditions, if_range_holds, Precondition};
pub use content_type::ContentType;
pub use encoding::{is_compressible, negotiate_encoding, Encoding, Variants};
pub use path::{open_under, OpenError, Opened, PathError, PathOptions, RelativePath, Root};
pub use range::{parse_range, select_range, ByteRange, ContentRange, RangeDecision, MAX_RANGES};
pub use validators::Validators;
