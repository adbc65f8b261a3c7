//! Route patterns: `/links/:slug`, `/static/*path`, checked and split into
//! segments.

use super::{RouteError, MAX_PARAMS};

/// One `/`-separated piece of a pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Segment<'a> {
    /// Matches exactly this text (possibly empty: `/` is one empty segment).
    Static(&'a str),
    /// `:name`: one non-empty path segment.
    Param(&'a str),
    /// `*name`: the rest of the path, slashes included, possibly empty.
    CatchAll(&'a str),
}

/// Splits `pattern` into segments, checking everything a single pattern can
/// get wrong on its own (conflicts between patterns are the tree's job).
pub(super) fn parse(pattern: &str) -> Result<Vec<Segment<'_>>, RouteError> {
    let owned = || pattern.to_owned();
    let Some(rest) = pattern.strip_prefix('/') else {
        return Err(RouteError::MissingLeadingSlash { pattern: owned() });
    };
    let mut segments = Vec::new();
    for piece in rest.split('/') {
        if matches!(segments.last(), Some(Segment::CatchAll(_))) {
            return Err(RouteError::CatchAllNotLast { pattern: owned() });
        }
        let segment = if let Some(name) = piece.strip_prefix(':') {
            Segment::Param(name)
        } else if let Some(name) = piece.strip_prefix('*') {
            Segment::CatchAll(name)
        } else {
            Segment::Static(piece)
        };
        if let Segment::Param(name) | Segment::CatchAll(name) = segment {
            if name.is_empty() {
                return Err(RouteError::EmptyParamName { pattern: owned() });
            }
            if segments.iter().any(|s| param_name(s) == Some(name)) {
                return Err(RouteError::DuplicateParamName {
                    pattern: owned(),
                    name: name.to_owned(),
                });
            }
        }
        segments.push(segment);
    }
    let count = segments.iter().filter(|s| param_name(s).is_some()).count();
    if count > MAX_PARAMS {
        return Err(RouteError::TooManyParams {
            pattern: owned(),
            count,
        });
    }
    Ok(segments)
}

pub(super) fn param_name<'a>(segment: &Segment<'a>) -> Option<&'a str> {
    match *segment {
        Segment::Param(name) | Segment::CatchAll(name) => Some(name),
        Segment::Static(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::Segment::{CatchAll, Param, Static};
    use super::*;

    #[test]
    fn segments() {
        let cases: &[(&str, &[Segment<'_>])] = &[
            ("/", &[Static("")]),
            ("/a", &[Static("a")]),
            ("/a/", &[Static("a"), Static("")]),
            ("/a//b", &[Static("a"), Static(""), Static("b")]),
            ("/links/:slug", &[Static("links"), Param("slug")]),
            ("/s/*path", &[Static("s"), CatchAll("path")]),
            ("/*all", &[CatchAll("all")]),
            ("/a:b/c*", &[Static("a:b"), Static("c*")]),
        ];
        for (pattern, want) in cases {
            assert_eq!(parse(pattern).as_deref(), Ok(*want), "{pattern}");
        }
    }

    /// Makes the expected error from the pattern.
    type Want = fn(String) -> RouteError;

    #[test]
    fn refusals() {
        let max = "/:a/:b/:c/:d/:e/:f/:g/:h";
        assert!(parse(max).is_ok());
        let cases: &[(&str, Want)] = &[
            ("", |pattern| RouteError::MissingLeadingSlash { pattern }),
            ("a/b", |pattern| RouteError::MissingLeadingSlash { pattern }),
            ("/a/:", |pattern| RouteError::EmptyParamName { pattern }),
            ("/a/*", |pattern| RouteError::EmptyParamName { pattern }),
            ("/*p/", |pattern| RouteError::CatchAllNotLast { pattern }),
            ("/*p/x", |pattern| RouteError::CatchAllNotLast { pattern }),
            ("/:id/*id", |pattern| RouteError::DuplicateParamName {
                pattern,
                name: "id".into(),
            }),
            ("/:a/:b/:c/:d/:e/:f/:g/:h/*i", |pattern| {
                RouteError::TooManyParams { pattern, count: 9 }
            }),
        ];
        for (pattern, want) in cases {
            assert_eq!(parse(pattern), Err(want(pattern.to_string())), "{pattern}");
        }
    }
}
