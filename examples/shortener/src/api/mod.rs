//! The JSON API under `/api`: parse and validate on the worker, then do
//! the store call on keel's blocking pool through a deferred response.
//!
//! Every error is `{"error":{"code":"...","message":"..."}}`.

use crate::app::{on_state, State};
use crate::auth::ApiAuth;
use crate::keys::Scope;
use crate::model::{self, Created, Link, LinkPatch, NewLink};
use crate::store::{StoreError, MAX_BATCH};
use crate::telemetry::StoreOp;
use crate::{password, qr, validate};
use keel::middleware::{AtHead, BodyLimit, Compression, HandlerExt, RateLimit};
use keel::{field, Request, Response, Router, StatusCode};
use serde::Serialize;
use std::sync::Arc;

mod error;
mod input;
mod live;
mod transfer;

pub use live::LiveFeed;
pub use transfer::{TransferSlots, MAX_IMPORT_BODY};

use error::ErrorDetail;
pub use error::{retry_after, ApiError};
use input::{
    check_password, cursor_param, expiry, invalid_url, json_body, limit_param, max_clicks,
    BulkBody, PatchBody,
};
pub use input::{validate_create, CreateBody};

/// Largest body of a single-link request.
pub const MAX_LINK_BODY: usize = 16 << 10;
/// Largest body of a bulk request: 1,000 links of up to 2 KiB URLs.
pub const MAX_BULK_BODY: usize = 4 << 20;
/// Largest page of the list.
pub const MAX_LIMIT: usize = 100;
/// Longest password accepted (Argon2 takes any length; this bounds the work).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// The body of a `413` for a declared body over its route's limit.
pub const PAYLOAD_TOO_LARGE_BODY: &[u8] =
    br#"{"error":{"code":"payload_too_large","message":"the request body is over this route's limit"}}"#;

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
        .get(
            "/api/links/:slug/live",
            on_state(state, live::watch).with(AtHead(auth.require(Scope::Admin))),
        )
        .get(
            "/api/export",
            on_state(state, transfer::export).with(AtHead(auth.require(Scope::Admin))),
        )
        // Streamed: the CSV goes to the store as it arrives, up to 1 GiB,
        // once the key and the write limit allowed it (from the head).
        .post(
            "/api/import",
            on_state(state, transfer::import)
                .with(AtHead(auth.require(Scope::Admin).limited(writes))),
        )
        .stream_body()
        .body_limit(MAX_IMPORT_BODY)
}

/// Whether the client asked for JSON (`Accept: application/json`).
pub fn wants_json(req: &Request<'_>) -> bool {
    req.header("accept")
        .is_some_and(|accept| validate::contains_ignore_ascii_case(accept, b"application/json"))
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
    res.field(field!("Cache-Control", "no-store"))
        .field(field!("X-Content-Type-Options", "nosniff"));
}

/// The slug path parameter, or the `404` it deserves: a slug no link can
/// have never reaches the store.
fn slug_param<'a>(req: &Request<'a>) -> Result<&'a str, ApiError> {
    req.param("slug")
        .filter(|s| validate::SLUG_LEN.contains(&s.len()) && s.bytes().all(validate::is_slug_byte))
        .ok_or_else(ApiError::not_found)
}

/// Runs `work` on the blocking pool; its `Err` becomes the JSON error.
///
/// The answer is gzipped by keel's [`Compression`] rule when `req` accepts
/// gzip and the body is worth it (1 KiB or more: a page of the list, a bulk
/// result, a link's stats), with `Vary: Accept-Encoding` on every JSON
/// answer. Whether the client accepts is read here, on the worker: the
/// request is gone once the work runs.
fn offload(
    req: &Request<'_>,
    res: &mut Response<'_>,
    work: impl FnOnce(&mut Response<'_>) -> Result<(), ApiError> + Send + 'static,
) {
    let gzip = Compression::accepts(req);
    res.offload(move |res| {
        res.hold();
        if let Err(error) = work(res) {
            error.write(res);
        }
        Compression::new().finish(res, gzip);
    });
}

/// Runs `job` on the blocking pool with the response's responder, for an
/// answer that streams; a full pool gets the JSON `503 busy` at once.
fn offload_responder(res: &mut Response<'_>, job: impl FnOnce(keel::Responder) + Send + 'static) {
    let responder = res.defer();
    if let Err((_full, responder)) = keel::blocking::global().spawn_answer(responder, job) {
        responder.respond(|res| ApiError::busy("the server is busy, retry shortly").write(res));
    }
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
    offload(req, res, move |res| work(&state, &slug, res));
}

fn create(state: &Arc<State>, req: &Request<'_>, res: &mut Response<'_>) {
    let prepared = json_body::<CreateBody>(req, MAX_LINK_BODY)
        .and_then(|body| validate_create(state, body, model::now()));
    let (mut new, password) = match prepared {
        Ok(p) => p,
        Err(error) => return error.write(res),
    };
    let state = Arc::clone(state);
    offload(req, res, move |res| {
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
    offload(req, res, move |res| {
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

fn list(state: &Arc<State>, req: &Request<'_>, res: &mut Response<'_>) {
    let limit = limit_param(req.query_param("limit").as_deref());
    let cursor = cursor_param(req.query_param("cursor").as_deref());
    let (limit, cursor) = match (limit, cursor) {
        (Ok(l), Ok(c)) => (l, c),
        (Err(e), _) | (_, Err(e)) => return e.write(res),
    };
    let state = Arc::clone(state);
    offload(req, res, move |res| {
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
    offload(req, res, move |res| {
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
        res.field(field!("Content-Type", "image/svg+xml"))
            .field(field!("X-Content-Type-Options", "nosniff"))
            .field(field!("Cache-Control", "private, max-age=3600"))
            .body(svg.as_bytes());
        Ok(())
    });
}
