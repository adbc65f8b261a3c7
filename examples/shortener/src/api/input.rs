//! What the API reads from a request: JSON bodies, their fields, and
//! query parameters, each checked against the documented rules on the
//! worker before anything reaches the store.

use super::{ApiError, MAX_LIMIT, MAX_PASSWORD_LEN};
use crate::app::State;
use crate::model::{self, NewLink, UnixTime};
use crate::{password, validate};
use keel::{Request, StatusCode};
use serde::{Deserialize, Deserializer};

const DEFAULT_LIMIT: usize = 20;

/// The body of `POST /api/links` and of each bulk item.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    pub url: String,
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub max_clicks: Option<i64>,
    #[serde(default)]
    pub password: Option<String>,
}

/// The body of `PATCH /api/links/:slug`: an absent field stays, `null`
/// clears the fields that can be cleared and is refused for `url` and
/// `disabled`, which cannot.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PatchBody {
    #[serde(default, deserialize_with = "not_null")]
    pub(super) url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub(super) expires_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "not_null")]
    pub(super) disabled: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub(super) max_clicks: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub(super) password: Option<Option<String>>,
}

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A field that may be left out (`None`) but not given as `null`: the
/// error names the type expected.
fn not_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BulkBody {
    pub(super) links: Vec<serde_json::Value>,
}

/// Checks the body is JSON of a bounded size.
pub(super) fn json_body<'a, T: Deserialize<'a>>(
    req: &Request<'a>,
    max: usize,
) -> Result<T, ApiError> {
    if req.body().len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is over {max} bytes"),
        ));
    }
    let is_json = req.header_str("content-type").is_some_and(|ct| {
        let media = ct.split(';').next().unwrap_or("").trim();
        media.eq_ignore_ascii_case("application/json")
    });
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as 'Content-Type: application/json'",
        ));
    }
    // serde reads a struct from an array too (fields by position): only
    // the documented object is accepted.
    if req.body().trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the body must be a JSON object",
        ));
    }
    req.json()
        .map_err(|e| ApiError::bad_request("invalid_json", format!("invalid request body: {e}")))
}

/// Validates a create request; the password comes back in clear, hashed
/// later on the blocking pool.
pub fn validate_create(
    state: &State,
    body: CreateBody,
    now: UnixTime,
) -> Result<(NewLink, Option<String>), ApiError> {
    let url = validate::url(&body.url, &state.own_address).map_err(|e| invalid_url(&e))?;
    if let Some(slug) = &body.slug {
        validate::slug(slug).map_err(|e| invalid_slug(&e))?;
    }
    let expires_at = body
        .expires_at
        .as_deref()
        .map(|t| expiry(t, now))
        .transpose()?;
    let max_clicks = body.max_clicks.map(max_clicks).transpose()?;
    if let Some(password) = &body.password {
        check_password(password)?;
    }
    let new = NewLink {
        url,
        slug: body.slug,
        expires_at,
        max_clicks,
        ..NewLink::default()
    };
    Ok((new, body.password))
}

pub(super) fn invalid_url(e: &validate::Invalid) -> ApiError {
    ApiError::bad_request("invalid_url", e.to_string())
}

fn invalid_slug(e: &validate::Invalid) -> ApiError {
    let code = if *e == validate::Invalid::Reserved {
        "reserved_slug"
    } else {
        "invalid_slug"
    };
    ApiError::bad_request(code, e.to_string())
}

/// The last second RFC 3339 can write in UTC, `9999-12-31T23:59:59Z`: a
/// later expiry (`9999-12-31T23:59:59-01:00`) parses but could never be
/// shown.
const MAX_EXPIRY: UnixTime = 253_402_300_799;

pub(super) fn expiry(text: &str, now: UnixTime) -> Result<UnixTime, ApiError> {
    match model::parse_time(text) {
        Some(at) if at > now && at <= MAX_EXPIRY => Ok(at),
        Some(at) if at > now => Err(ApiError::bad_request(
            "invalid_expiry",
            "expires_at must be before 10000-01-01T00:00:00Z",
        )),
        Some(_) => Err(ApiError::bad_request(
            "invalid_expiry",
            "expires_at must be in the future",
        )),
        None => Err(ApiError::bad_request(
            "invalid_expiry",
            "expires_at must be an RFC 3339 time such as 2030-01-01T00:00:00Z",
        )),
    }
}

pub(super) fn max_clicks(n: i64) -> Result<u64, ApiError> {
    u64::try_from(n)
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| ApiError::bad_request("invalid_max_clicks", "max_clicks must be 1 or more"))
}

/// A new password: at least [`password::MIN_PASSWORD_LEN`] characters (a
/// short one falls to guessing from many addresses), at most
/// [`MAX_PASSWORD_LEN`] bytes.
pub(super) fn check_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < password::MIN_PASSWORD_LEN || password.len() > MAX_PASSWORD_LEN {
        return Err(ApiError::bad_request(
            "invalid_password",
            "password must be at least 8 characters and at most 1024 bytes",
        ));
    }
    Ok(())
}

/// Longest cursor accepted: ids below 10^18 always fit an `i64`.
const MAX_CURSOR_DIGITS: usize = 18;

/// A positive decimal number as this API writes it: ASCII digits, no sign,
/// no leading zero, at most `max_digits` of them.
fn decimal(text: &str, max_digits: usize) -> Option<u64> {
    let digits_only = text.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || text.starts_with('0') || !(1..=max_digits).contains(&text.len()) {
        return None;
    }
    text.parse().ok()
}

/// `limit` of the list: absent is the default; else 1 to [`MAX_LIMIT`].
pub(super) fn limit_param(text: Option<&str>) -> Result<usize, ApiError> {
    match text {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => decimal(text, 3)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::bad_request("invalid_limit", "limit must be 1 to 100")),
    }
}

/// `cursor` of the list: absent or empty is the first page; else a
/// `next_cursor` value.
pub(super) fn cursor_param(text: Option<&str>) -> Result<Option<i64>, ApiError> {
    match text {
        None | Some("") => Ok(None),
        Some(text) => decimal(text, MAX_CURSOR_DIGITS)
            .and_then(|id| i64::try_from(id).ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_cursor",
                    "cursor must be a next_cursor value from a previous page",
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_refuses_null_for_fields_that_cannot_be_cleared() {
        for body in [r#"{"url":null}"#, r#"{"disabled":null}"#] {
            assert!(serde_json::from_str::<PatchBody>(body).is_err(), "{body}");
        }
        let body: PatchBody = serde_json::from_str(
            r#"{"url":"https://a.example/","disabled":true,"expires_at":null,"max_clicks":null,"password":null}"#,
        )
        .unwrap();
        assert_eq!(body.url.as_deref(), Some("https://a.example/"));
        assert_eq!(body.disabled, Some(true));
        assert_eq!(body.expires_at, Some(None));
        assert_eq!(body.max_clicks, Some(None));
        assert_eq!(body.password, Some(None));
        let empty: PatchBody = serde_json::from_str("{}").unwrap();
        assert!(empty.url.is_none() && empty.disabled.is_none() && empty.expires_at.is_none());
    }

    #[test]
    fn expiry_must_be_future_and_writable() {
        let now = 1_795_600_800; // 2026-11-25T10:00:00Z
        assert_eq!(expiry("2030-01-01T00:00:00Z", now), Ok(1_893_456_000));
        assert_eq!(expiry("9999-12-31T23:59:59Z", now), Ok(MAX_EXPIRY));
        assert_eq!(model::format_time(MAX_EXPIRY), "9999-12-31T23:59:59Z");
        for late in ["9999-12-31T23:59:59-00:01", "9999-12-31T20:00:00-23:59"] {
            let error = expiry(late, now).unwrap_err();
            assert_eq!(error.code, "invalid_expiry", "{late}");
        }
        assert_eq!(
            expiry("2026-11-25T10:00:00Z", now).unwrap_err().code,
            "invalid_expiry"
        );
        assert_eq!(expiry("tomorrow", now).unwrap_err().code, "invalid_expiry");
    }

    #[test]
    fn limit_is_1_to_100_in_plain_digits() {
        assert_eq!(limit_param(None), Ok(DEFAULT_LIMIT));
        assert_eq!(limit_param(Some("1")), Ok(1));
        assert_eq!(limit_param(Some("100")), Ok(100));
        for bad in [
            "",
            "0",
            "101",
            "007",
            "+5",
            "-1",
            "1.0",
            " 5",
            "5 ",
            "99999999999999999999",
        ] {
            assert_eq!(
                limit_param(Some(bad)).unwrap_err().code,
                "invalid_limit",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn cursor_is_a_next_cursor_or_empty() {
        assert_eq!(cursor_param(None), Ok(None));
        assert_eq!(cursor_param(Some("")), Ok(None));
        assert_eq!(cursor_param(Some("42")), Ok(Some(42)));
        assert_eq!(
            cursor_param(Some("999999999999999999")),
            Ok(Some(999_999_999_999_999_999))
        );
        for bad in ["0", "01", "+4", "-4", "abc", "4x", "1000000000000000000"] {
            assert_eq!(
                cursor_param(Some(bad)).unwrap_err().code,
                "invalid_cursor",
                "{bad:?}"
            );
        }
    }
}
