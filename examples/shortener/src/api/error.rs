//! The API's errors: a status, a stable machine code and a message for
//! people, written as `{"error":{"code":"...","message":"..."}}`.

use crate::store::StoreError;
use keel::{field, Response, StatusCode};
use serde::Serialize;
use std::borrow::Cow;
use std::time::Duration;

/// Sets `Retry-After` to `wait`, in whole seconds rounded up and at least
/// one: what a client told to wait less than a second must still wait.
pub fn retry_after(res: &mut Response<'_>, wait: Duration) {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    // A number is always a valid header value.
    let _ = res.header_fmt("Retry-After", format_args!("{}", secs.max(1)));
}

/// An API error: its status, a stable machine code and a message for
/// people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: Cow<'static, str>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
pub(super) struct ErrorDetail<'a> {
    pub(super) code: &'a str,
    pub(super) message: &'a str,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such link")
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid 'Authorization: Bearer <key>' header is required",
        )
    }

    /// `503 busy`: a cap on concurrent work is reached; retry shortly.
    pub fn busy(message: &'static str) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message)
    }

    pub fn forbidden(message: &'static str) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// Writes the error as the whole response.
    pub fn write(&self, res: &mut Response<'_>) {
        res.status(self.status)
            .field(field!("Cache-Control", "no-store"))
            .field(field!("X-Content-Type-Options", "nosniff"));
        if self.status == StatusCode::UNAUTHORIZED {
            res.field(field!("WWW-Authenticate", "Bearer"));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            res.field(field!("Retry-After", "1"));
        }
        res.json(&self.body());
    }

    fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
            },
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::SlugTaken => ApiError::new(
                StatusCode::CONFLICT,
                "slug_taken",
                "this slug is already taken",
            ),
            StoreError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the store is unavailable, retry shortly",
            ),
            StoreError::Failed(detail) => {
                eprintln!("shortener: store failed: {detail}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}
