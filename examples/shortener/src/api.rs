//! The JSON API under `/api`: parse and validate on the worker, then do
//! the store call on keel's blocking pool through a deferred response.
//!
//! Every error is `{"error":{"code":"...","message":"..."}}`.

use crate::app::{on_state, State};
use crate::auth::ApiAuth;
use crate::keys::Scope;
use crate::model::{self, Created, Link, LinkPatch, NewLink, UnixTime};
use crate::store::{StoreError, MAX_BATCH};
use crate::telemetry::StoreOp;
use crate::{password, qr, validate};
use keel::middleware::{AtHead, BodyLimit, HandlerExt, RateLimit};
use keel::{Request, Response, Router, StatusCode};
use serde::{Deserialize, Deserializer, Serialize};
use std::borrow::Cow;
use std::sync::Arc;

/// Largest body of a single-link request.
pub const MAX_LINK_BODY: usize = 16 << 10;
/// Largest body of a bulk request: 1,000 links of up to 2 KiB URLs.
pub const MAX_BULK_BODY: usize = 4 << 20;
/// Largest page of the list.
pub const MAX_LIMIT: usize = 100;
const DEFAULT_LIMIT: usize = 20;
/// Longest password accepted (Argon2 takes any length; this bounds the work).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// The body of a `413` for a declared body over its route's limit.
pub const PAYLOAD_TOO_LARGE_BODY: &[u8] =
    br#"{"error":{"code":"payload_too_large","message":"the request body is over this route's limit"}}"#;

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
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
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

    pub fn forbidden(message: &'static str) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// Writes the error as the whole response.
    pub fn write(&self, res: &mut Response<'_>) {
        res.status(self.status)
            .header("Cache-Control", "no-store")
            .header("X-Content-Type-Options", "nosniff");
        if self.status == StatusCode::UNAUTHORIZED {
            res.header("WWW-Authenticate", "Bearer");
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            res.header("Retry-After", "1");
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

/// A link as the API shows it.
#[derive(Serialize)]
pub struct LinkView<'a> {
    pub slug: &'a str,
    pub short_url: String,
    pub url: &'a str,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub disabled: bool,
    pub max_clicks: Option<u64>,
    pub clicks: u64,
    pub protected: bool,
}

impl<'a> LinkView<'a> {
    pub fn new(state: &State, link: &'a Link) -> LinkView<'a> {
        LinkView {
            slug: &link.slug,
            short_url: state.short_url(&link.slug),
            url: &link.url,
            created_at: model::format_time(link.created_at),
            expires_at: link.expires_at.map(model::format_time),
            disabled: link.disabled,
            max_clicks: link.max_clicks,
            clicks: link.clicks,
            protected: link.password_hash.is_some(),
        }
    }
}

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
struct PatchBody {
    #[serde(default, deserialize_with = "not_null")]
    url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    expires_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "not_null")]
    disabled: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    max_clicks: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    password: Option<Option<String>>,
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
struct BulkBody {
    links: Vec<serde_json::Value>,
}

/// Adds the API's routes, each behind `auth` with the scope it needs:
/// reads `read`, creates and changes `write`, deletes and stats `admin`.
/// Every change then goes through the `writes` rate limit, after auth: a
/// client without a key cannot spend a real client's budget.
pub fn routes(
    router: Router,
    state: &Arc<State>,
    auth: &Arc<ApiAuth>,
    writes: &Arc<RateLimit>,
) -> Router {
    // Every check runs from the head (`AtHead`), before one body byte is
    // read: the key and its scope, then the write rate limit, then the
    // route's body limit (in place of the server's `max_body`, which is
    // `MAX_LINK_BODY`), so only a client with a key may send a bulk-sized
    // body.
    let read = |f: fn(&Arc<State>, &Request<'_>, &mut Response<'_>)| {
        on_state(state, f).with(AtHead(auth.require(Scope::Read)))
    };
    let change =
        |scope: Scope, f: fn(&Arc<State>, &Request<'_>, &mut Response<'_>), max_body: usize| {
            on_state(state, f)
                .with(BodyLimit::new(max_body).refusal("application/json", PAYLOAD_TOO_LARGE_BODY))
                .with(AtHead(auth.require(scope).limited(writes)))
        };
    router
        .post("/api/links", change(Scope::Write, create, MAX_LINK_BODY))
        .post("/api/links/bulk", change(Scope::Write, bulk, MAX_BULK_BODY))
        .get("/api/links", read(list))
        .get("/api/links/:slug", read(get))
        .patch(
            "/api/links/:slug",
            change(Scope::Write, update, MAX_LINK_BODY),
        )
        .delete(
            "/api/links/:slug",
            change(Scope::Admin, delete, MAX_LINK_BODY),
        )
        .get(
            "/api/links/:slug/stats",
            on_state(state, stats).with(AtHead(auth.require(Scope::Admin))),
        )
        .get("/api/links/:slug/qr.svg", read(qr_code))
}

/// Whether the client asked for JSON (`Accept: application/json`).
pub fn wants_json(req: &Request<'_>) -> bool {
    req.header("accept")
        .is_some_and(|accept| validate::contains_ignore_ascii_case(accept, b"application/json"))
}

/// Checks the body is JSON of a bounded size.
fn json_body<'a, T: Deserialize<'a>>(req: &Request<'a>, max: usize) -> Result<T, ApiError> {
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

fn invalid_url(e: &validate::Invalid) -> ApiError {
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

fn expiry(text: &str, now: UnixTime) -> Result<UnixTime, ApiError> {
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

fn max_clicks(n: i64) -> Result<u64, ApiError> {
    u64::try_from(n)
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| ApiError::bad_request("invalid_max_clicks", "max_clicks must be 1 or more"))
}

/// A new password: at least [`password::MIN_PASSWORD_LEN`] characters (a
/// short one falls to guessing from many addresses), at most
/// [`MAX_PASSWORD_LEN`] bytes.
fn check_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < password::MIN_PASSWORD_LEN || password.len() > MAX_PASSWORD_LEN {
        return Err(ApiError::bad_request(
            "invalid_password",
            "password must be at least 8 characters and at most 1024 bytes",
        ));
    }
    Ok(())
}

/// Writes `link` with `status`.
fn send_link(state: &State, res: &mut Response<'_>, status: StatusCode, link: &Link) {
    res.status(status);
    json_headers(res);
    if status == StatusCode::CREATED {
        let _ = res.header_fmt("Location", format_args!("/api/links/{}", link.slug));
    }
    res.json(&LinkView::new(state, link));
}

/// The headers of every JSON answer: never cached (each depends on the
/// key and changes with the link), never sniffed as another type.
fn json_headers(res: &mut Response<'_>) {
    res.header("Cache-Control", "no-store")
        .header("X-Content-Type-Options", "nosniff");
}

/// The slug path parameter, or the `404` it deserves: a slug no link can
/// have never reaches the store.
fn slug_param<'a>(req: &Request<'a>) -> Result<&'a str, ApiError> {
    req.param("slug")
        .filter(|s| validate::SLUG_LEN.contains(&s.len()) && s.bytes().all(validate::is_slug_byte))
        .ok_or_else(ApiError::not_found)
}

/// Runs `work` on the blocking pool; its `Err` becomes the JSON error.
fn offload(
    res: &mut Response<'_>,
    work: impl FnOnce(&mut Response<'_>) -> Result<(), ApiError> + Send + 'static,
) {
    res.offload(move |res| {
        if let Err(error) = work(res) {
            error.write(res);
        }
    });
}

/// The handlers on one link: the slug checked on the worker, then `work`
/// on the blocking pool with it; its `Err` becomes the JSON error.
fn on_slug(
    state: &Arc<State>,
    req: &Request<'_>,
    res: &mut Response<'_>,
    work: impl FnOnce(&State, &str, &mut Response<'_>) -> Result<(), ApiError> + Send + 'static,
) {
    let slug = match slug_param(req) {
        Ok(slug) => slug.to_owned(),
        Err(error) => return error.write(res),
    };
    let state = Arc::clone(state);
    offload(res, move |res| work(&state, &slug, res));
}

fn create(state: &Arc<State>, req: &Request<'_>, res: &mut Response<'_>) {
    let prepared = json_body::<CreateBody>(req, MAX_LINK_BODY)
        .and_then(|body| validate_create(state, body, model::now()));
    let (mut new, password) = match prepared {
        Ok(p) => p,
        Err(error) => return error.write(res),
    };
    let state = Arc::clone(state);
    offload(res, move |res| {
        if let Some(password) = password {
            new.password_hash = Some(password::hash(&password)?);
        }
        let Created { link, existed } = state.store_call(StoreOp::Create, |s| s.create(&new))?;
        state.cache.invalidate(&link.slug);
        let status = if existed {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        send_link(&state, res, status, &link);
        Ok(())
    });
}

/// One bulk item's result.
#[derive(Serialize)]
struct BulkResult<'a> {
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<LinkView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDetail<'a>>,
}

fn bulk(state: &Arc<State>, req: &Request<'_>, res: &mut Response<'_>) {
    let body = match json_body::<BulkBody>(req, MAX_BULK_BODY) {
        Ok(body) => body,
        Err(error) => return error.write(res),
    };
    if body.links.len() > MAX_BATCH {
        return ApiError::bad_request(
            "too_many_links",
            format!("at most {MAX_BATCH} links per bulk request"),
        )
        .write(res);
    }
    let now = model::now();
    // Each item is validated on its own: a bad one fails alone.
    let items: Vec<Result<NewLink, ApiError>> = body
        .links
        .into_iter()
        .map(|value| {
            if !value.is_object() {
                return Err(ApiError::bad_request("invalid_json", "each link must be a JSON object"));
            }
            let body: CreateBody = serde_json::from_value(value)
                .map_err(|e| ApiError::bad_request("invalid_json", format!("invalid link: {e}")))?;
            if body.password.is_some() {
                return Err(ApiError::bad_request(
                    "invalid_password",
                    "passwords are not accepted in bulk: hashing a thousand would take seconds; set them with PATCH",
                ));
            }
            validate_create(state, body, now).map(|(new, _)| new)
        })
        .collect();
    let state = Arc::clone(state);
    offload(res, move |res| {
        let valid: Vec<NewLink> = items
            .iter()
            .filter_map(|i| i.as_ref().ok().cloned())
            .collect();
        let mut created = state
            .store_call(StoreOp::CreateMany, |s| s.create_many(&valid))?
            .into_iter();
        let outcomes: Vec<Result<Created, ApiError>> = items
            .into_iter()
            .map(|item| {
                item.and_then(|_| {
                    created
                        .next()
                        .unwrap_or(Err(StoreError::Failed(
                            "store returned too few results".into(),
                        )))
                        .map_err(ApiError::from)
                })
            })
            .collect();
        let results: Vec<BulkResult<'_>> = outcomes
            .iter()
            .map(|outcome| match outcome {
                Ok(Created { link, existed }) => {
                    state.cache.invalidate(&link.slug);
                    BulkResult {
                        status: if *existed { 200 } else { 201 },
                        link: Some(LinkView::new(&state, link)),
                        error: None,
                    }
                }
                Err(error) => BulkResult {
                    status: error.status.as_u16(),
                    link: None,
                    error: Some(ErrorDetail {
                        code: error.code,
                        message: &error.message,
                    }),
                },
            })
            .collect();
        json_headers(res);
        res.json(&serde_json::json!({ "results": results }));
        Ok(())
    });
}

#[derive(Serialize)]
struct PageView<'a> {
    links: Vec<LinkView<'a>>,
    next_cursor: Option<String>,
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
fn limit_param(text: Option<&str>) -> Result<usize, ApiError> {
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
fn cursor_param(text: Option<&str>) -> Result<Option<i64>, ApiError> {
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

fn list(state: &Arc<State>, req: &Request<'_>, res: &mut Response<'_>) {
    let limit = limit_param(req.query_param("limit").as_deref());
    let cursor = cursor_param(req.query_param("cursor").as_deref());
    let (limit, cursor) = match (limit, cursor) {
        (Ok(l), Ok(c)) => (l, c),
        (Err(e), _) | (_, Err(e)) => return e.write(res),
    };
    let state = Arc::clone(state);
    offload(res, move |res| {
        let page = state.store_call(StoreOp::List, |s| s.list(limit, cursor))?;
        json_headers(res);
        res.json(&PageView {
            links: page
                .links
                .iter()
                .map(|l| LinkView::new(&state, l))
                .collect(),
            next_cursor: page.next.map(|id| id.to_string()),
        });
        Ok(())
    });
}

fn get(state: &Arc<State>, req: &Request<'_>, res: &mut Response<'_>) {
    on_slug(state, req, res, |state, slug, res| {
        let link = state
            .store_call(StoreOp::Get, |s| s.get(slug))?
            .ok_or_else(ApiError::not_found)?;
        send_link(state, res, StatusCode::OK, &link);
        Ok(())
    });
}

fn update(state: &Arc<State>, req: &Request<'_>, res: &mut Response<'_>) {
    let slug = match slug_param(req) {
        Ok(slug) => slug.to_owned(),
        Err(error) => return error.write(res),
    };
    let prepared = json_body::<PatchBody>(req, MAX_LINK_BODY).and_then(|body| {
        let now = model::now();
        let patch = LinkPatch {
            url: body
                .url
                .map(|u| validate::url(&u, &state.own_address).map_err(|e| invalid_url(&e)))
                .transpose()?,
            expires_at: body
                .expires_at
                .map(|e| e.map(|t| expiry(&t, now)).transpose())
                .transpose()?,
            disabled: body.disabled,
            max_clicks: body
                .max_clicks
                .map(|m| m.map(max_clicks).transpose())
                .transpose()?,
            password_hash: None,
        };
        if let Some(Some(password)) = &body.password {
            check_password(password)?;
        }
        Ok((patch, body.password))
    });
    let (mut patch, password) = match prepared {
        Ok(p) => p,
        Err(error) => return error.write(res),
    };
    let state = Arc::clone(state);
    offload(res, move |res| {
        patch.password_hash = match password {
            None => None,
            Some(None) => Some(None),
            Some(Some(clear)) => Some(Some(password::hash(&clear)?)),
        };
        let result = state.store_call(StoreOp::Update, |s| s.update(&slug, &patch));
        // Invalidate even on failure: a partial failure must not leave a
        // stale entry behind, and a spare reload costs little.
        state.cache.invalidate(&slug);
        send_link(&state, res, StatusCode::OK, &result?);
        Ok(())
    });
}

fn delete(state: &Arc<State>, req: &Request<'_>, res: &mut Response<'_>) {
    on_slug(state, req, res, |state, slug, res| {
        let result = state.store_call(StoreOp::Delete, |s| s.delete(slug));
        state.cache.invalidate(slug);
        result?;
        res.status(StatusCode::NO_CONTENT).body(b"");
        Ok(())
    });
}

fn stats(state: &Arc<State>, req: &Request<'_>, res: &mut Response<'_>) {
    on_slug(state, req, res, |state, slug, res| {
        let mut stats = state
            .store_call(StoreOp::Stats, |s| s.stats(slug))?
            .ok_or_else(ApiError::not_found)?;
        for referrer in &mut stats.referrers {
            if referrer.name.is_empty() {
                referrer.name = String::from("(direct)");
            }
        }
        json_headers(res);
        res.json(&serde_json::json!({
            "slug": slug,
            "total": stats.total,
            "days": stats.days,
            "referrers": stats.referrers,
            "agents": stats.agents,
        }));
        Ok(())
    });
}

fn qr_code(state: &Arc<State>, req: &Request<'_>, res: &mut Response<'_>) {
    on_slug(state, req, res, |state, slug, res| {
        let link = state
            .store_call(StoreOp::Get, |s| s.get(slug))?
            .ok_or_else(ApiError::not_found)?;
        let svg = qr::svg(&state.short_url(&link.slug))
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?;
        // `private`: it was asked for with a key, so shared caches keep out.
        res.header("Content-Type", "image/svg+xml")
            .header("X-Content-Type-Options", "nosniff")
            .header("Cache-Control", "private, max-age=3600")
            .body(svg.as_bytes());
        Ok(())
    });
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
