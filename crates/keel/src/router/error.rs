//! What [`Router::build`](crate::Router::build) refuses, one variant per failure.

use super::MAX_PARAMS;
use std::fmt;

/// A route table that cannot be built. [`Router::build`](crate::Router::build)
/// checks every route before any request is served and returns the first
/// problem it finds, in registration order; a request never meets a conflict.
///
/// Patterns in these errors are as the router saw them: a route added through
/// [`Router::nest`](crate::Router::nest) carries its prefix.
///
/// ```
/// use keel::{Request, Response, RouteError, Router};
///
/// fn h(_: &Request<'_>, _: &mut Response<'_>) {}
/// let err = Router::new().get("/u/:id", h).delete("/u/:name", h).build().unwrap_err();
/// assert_eq!(
///     err,
///     RouteError::ParamNameConflict {
///         pattern: "/u/:name".into(),
///         name: "name".into(),
///         existing: "id".into(),
///     }
/// );
/// assert_eq!(err.to_string(), r#"route /u/:name: parameter "name" where another route has "id""#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// The pattern does not start with `/` (`links/:slug`), or a nest prefix
    /// is neither empty nor starts with `/`.
    MissingLeadingSlash {
        /// The pattern or prefix.
        pattern: String,
    },
    /// A `:` or `*` segment without a name (`/links/:`, `/static/*`).
    EmptyParamName {
        /// The pattern.
        pattern: String,
    },
    /// A catch-all segment that is not the last one (`/static/*path/edit`).
    CatchAllNotLast {
        /// The pattern.
        pattern: String,
    },
    /// The same name twice in one pattern (`/:id/x/:id`): `param` could not
    /// tell them apart.
    DuplicateParamName {
        /// The pattern.
        pattern: String,
        /// The repeated name.
        name: String,
    },
    /// More than [`MAX_PARAMS`] parameters (catch-all included) in one pattern.
    TooManyParams {
        /// The pattern.
        pattern: String,
        /// How many it has.
        count: usize,
    },
    /// Two routes name the parameter (or catch-all) at the same position
    /// differently (`/u/:id` and `/u/:name`): which name would a request get?
    ParamNameConflict {
        /// The pattern added later.
        pattern: String,
        /// Its name at that position.
        name: String,
        /// The name an earlier route gave that position.
        existing: String,
    },
    /// The same method and pattern twice (patterns compared segment by
    /// segment: `/u/:id` is `/u/:id` whatever else is registered).
    DuplicateRoute {
        /// The method.
        method: String,
        /// The pattern.
        pattern: String,
    },
    /// A method that is not an HTTP token (empty, or holding a space,
    /// a separator or a control byte).
    InvalidMethod {
        /// The method as given.
        method: String,
        /// The pattern it was given for.
        pattern: String,
    },
    /// [`Router::route`](crate::Router::route) with an empty list of methods.
    NoMethod {
        /// The pattern.
        pattern: String,
    },
    /// A nest prefix that ends with `/` (`/api/`): the sub-router's patterns
    /// begin with `/` already. Use `""` to merge at the root.
    PrefixEndsWithSlash {
        /// The prefix.
        prefix: String,
    },
    /// A nested router with a [`fallback`](crate::Router::fallback) of its
    /// own: only the outermost router answers unmatched paths.
    NestedFallback {
        /// The prefix it was nested under.
        prefix: String,
    },
    /// [`Router::body_limit`](crate::Router::body_limit) before any route
    /// was added: there is no route for it to apply to.
    BodyLimitWithoutRoute,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::MissingLeadingSlash { pattern } => {
                write!(f, "route {pattern:?}: must start with '/'")
            }
            RouteError::EmptyParamName { pattern } => {
                write!(f, "route {pattern}: a ':' or '*' segment without a name")
            }
            RouteError::CatchAllNotLast { pattern } => {
                write!(
                    f,
                    "route {pattern}: a catch-all '*' must be the last segment"
                )
            }
            RouteError::DuplicateParamName { pattern, name } => {
                write!(f, "route {pattern}: parameter {name:?} appears twice")
            }
            RouteError::TooManyParams { pattern, count } => write!(
                f,
                "route {pattern}: {count} parameters, at most {MAX_PARAMS} allowed"
            ),
            RouteError::ParamNameConflict {
                pattern,
                name,
                existing,
            } => write!(
                f,
                "route {pattern}: parameter {name:?} where another route has {existing:?}"
            ),
            RouteError::DuplicateRoute { method, pattern } => {
                write!(f, "route {method} {pattern}: registered twice")
            }
            RouteError::InvalidMethod { method, pattern } => {
                write!(f, "route {pattern}: method {method:?} is not an HTTP token")
            }
            RouteError::NoMethod { pattern } => write!(f, "route {pattern}: no method given"),
            RouteError::PrefixEndsWithSlash { prefix } => {
                write!(f, "nest prefix {prefix:?}: must not end with '/'")
            }
            RouteError::NestedFallback { prefix } => write!(
                f,
                "router nested under {prefix:?} has a fallback: only the outermost router's is used"
            ),
            RouteError::BodyLimitWithoutRoute => {
                f.write_str("body_limit given before any route was added")
            }
        }
    }
}

impl std::error::Error for RouteError {}
