//! The redirect path, `GET /:slug`: the one request that must be fast.
//!
//! A cache hit is answered on the worker: one shard read lock, one hash
//! lookup, the response head written into the output buffer and the click
//! counted in this thread's map, all without allocating. A miss goes to the
//! store on the blocking pool and fills the cache; an entry past its time to
//! live is answered from while one visit reads it again there.

use crate::api::{wants_json, ApiError};
use crate::app::{on_state, State};
use crate::cache::{CachedLink, Lookup};
use crate::clicks::Click;
use crate::model::{self, Link, UnixTime};
use crate::store::StoreError;
use crate::telemetry::StoreOp;
use crate::{password, validate, web};
use keel::middleware::{HandlerExt, RateLimit};
use keel::{Request, Response, Router, StatusCode};
use std::sync::Arc;

/// Adds `GET`/`HEAD /:slug` and the password form's `POST /:slug`, whose
/// guesses go through `guesses`.
pub fn routes(router: Router, state: &Arc<State>, guesses: &Arc<RateLimit>) -> Router {
    router
        .get("/:slug", on_state(state, follow))
        .post("/:slug", on_state(state, unlock).with(Arc::clone(guesses)))
}

/// What the answer depends on besides the link: taken from the request on
/// the worker, so a miss can carry it to the blocking pool.
#[derive(Clone, Copy)]
struct Visit {
    now: UnixTime,
    is_head: bool,
    wants_json: bool,
    /// The click to count, its link id filled in once known.
    click: Click,
}

impl Visit {
    fn of(req: &Request<'_>) -> Visit {
        let now = model::now();
        Visit {
            now,
            is_head: req.method() == "HEAD",
            wants_json: wants_json(req),
            click: Click::new(
                0,
                now,
                req.header_str("referer"),
                req.header_str("user-agent"),
            ),
        }
    }
}

/// Whether `slug` could name a link at all: anything else is a `404`
/// without a cache or store lookup.
fn plausible(slug: &str) -> bool {
    validate::SLUG_LEN.contains(&slug.len()) && slug.bytes().all(validate::is_slug_byte)
}

fn follow(state: &Arc<State>, req: &Request<'_>, res: &mut Response<'_>) {
    let slug = req.param("slug").unwrap_or("");
    let visit = Visit::of(req);
    if !plausible(slug) {
        return not_found(res, visit.wants_json);
    }
    let cached = state.cache.with(slug, |lookup| match lookup {
        Lookup::Hit(link) => {
            answer(state, slug, link, visit, res);
            Cached::Answered
        }
        Lookup::Stale { link, refresh } => {
            answer(state, slug, link, visit, res);
            if refresh {
                Cached::AnsweredStale
            } else {
                Cached::Answered
            }
        }
        Lookup::Missing => {
            not_found(res, visit.wants_json);
            Cached::Answered
        }
        Lookup::Unknown => Cached::No,
    });
    match cached {
        Cached::Answered => return,
        Cached::AnsweredStale => return refresh_in_background(state, slug),
        Cached::No => {}
    }
    let slug = slug.to_owned();
    let state = Arc::clone(state);
    res.offload(move |res| match load(&state, &slug) {
        Ok(Some(link)) => answer_loaded(&state, &slug, &link, visit, res),
        Ok(None) => not_found(res, visit.wants_json),
        Err(error @ StoreError::Unavailable(_)) => {
            let served = state.cache.stale(&slug, |cached| match cached {
                Some(link) => {
                    answer(&state, &slug, link, visit, res);
                    true
                }
                None => false,
            });
            if !served {
                unavailable(res, visit.wants_json, error.into());
            }
        }
        Err(error) => unavailable(res, visit.wants_json, error.into()),
    });
}

/// What the cache could do for a visit.
enum Cached {
    Answered,
    /// Answered from an entry past its time to live, which this visit is
    /// to have read again.
    AnsweredStale,
    No,
}

/// Reads a [stale](Lookup::Stale) entry again on the blocking pool, after
/// its visit was answered from it. When the pool is full the entry stays
/// due, and a later visit tries again.
fn refresh_in_background(state: &Arc<State>, slug: &str) {
    let job = {
        let state = Arc::clone(state);
        let slug = slug.to_owned();
        move || {
            // A failure was counted by `store_call`; the entry is served on.
            let _ = load(&state, &slug);
            state.cache.refresh_done(&slug);
        }
    };
    if keel::blocking::global().spawn(job).is_err() {
        state.cache.refresh_done(slug);
    }
}

/// Reads `slug` from the store and caches what it says. A link with a
/// click budget is read again with the clicks that read may have missed
/// added to its count: the budget is enforced against every click
/// taken, not only those the store has seen.
fn load(state: &State, slug: &str) -> Result<Option<Link>, StoreError> {
    // Taken before the read: an update meanwhile keeps the read out.
    let generation = state.cache.generation(slug);
    let read = || state.store_call(StoreOp::Get, |s| s.get(slug));
    let mut link = read()?;
    if link.as_ref().is_some_and(|l| l.max_clicks.is_some()) {
        link = state.clicks.with_unflushed(|unflushed| {
            let mut link = read()?;
            if let Some(link) = &mut link {
                link.clicks = link.clicks.saturating_add(unflushed.of(link.id));
            }
            Ok::<_, StoreError>(link)
        })?;
    }
    state.cache.insert(slug, link.as_ref(), generation);
    Ok(link)
}

/// Answers a visit to a link just [loaded](load): through its cache entry
/// when there is one, so that its click budget counts this click; else
/// (an update raced the load) from what was read.
fn answer_loaded(state: &State, slug: &str, link: &Link, visit: Visit, res: &mut Response<'_>) {
    let answered = state.cache.peek(slug, |lookup| match lookup {
        Lookup::Hit(cached) => {
            answer(state, slug, cached, visit, res);
            true
        }
        _ => false,
    });
    if !answered {
        answer(state, slug, &CachedLink::from_link(link), visit, res);
    }
}

/// Answers a visit to a known link: the redirect, the password page, or
/// `410`.
fn answer(state: &State, slug: &str, link: &CachedLink, visit: Visit, res: &mut Response<'_>) {
    if link.is_gone(visit.now) || link.is_spent() {
        return gone(res, visit.wants_json);
    }
    if link.password_hash.is_some() {
        return web::password_page(res, StatusCode::OK, slug, None);
    }
    if visit.click.agent.is_automated() {
        return automated_visit(state, link, visit, res);
    }
    // HEAD is how link previews look: it is answered but not counted.
    if !visit.is_head && !link.take_click() {
        return gone(res, visit.wants_json);
    }
    redirect(state, link, visit, res, state.config.redirect_status);
}

/// A link preview's or a crawler's visit: never spends a click (it is
/// counted apart, see [`crate::clicks`]). A preview still gets the redirect,
/// so that a link posted in a chat unfurls; but not of a link with a click
/// budget: unfurling a one-time link would hand its target to the chat
/// service. Anyone can send a robot's `User-Agent`, so that page is all
/// such a link ever shows one.
fn automated_visit(state: &State, link: &CachedLink, visit: Visit, res: &mut Response<'_>) {
    if link.max_clicks.is_some() {
        return web::limited_link_page(res);
    }
    redirect(state, link, visit, res, state.config.redirect_status);
}

/// Writes the redirect to `link` and counts the click.
fn redirect(
    state: &State,
    link: &CachedLink,
    visit: Visit,
    res: &mut Response<'_>,
    status: StatusCode,
) {
    let permanent = matches!(status.as_u16(), 301 | 308);
    if permanent && link.max_clicks.is_none() {
        // Browsers keep permanent redirects: bounded, so that an edit
        // reaches them, and never past the link's expiry.
        let mut max_age = state.config.permanent_max_age.as_secs();
        if let Some(at) = link.expires_at {
            max_age = max_age.min(u64::try_from(at - visit.now).unwrap_or(0));
        }
        let _ = res.header_fmt("Cache-Control", format_args!("public, max-age={max_age}"));
    } else {
        // Every click of a temporary redirect should reach us to be counted.
        res.header("Cache-Control", "no-store");
    }
    if res.redirect(status, &link.url).is_err() {
        // Stored URLs are validated; one that is not a valid header value
        // is corrupt.
        res.status(StatusCode::INTERNAL_SERVER_ERROR).body(b"");
        return;
    }
    if !visit.is_head {
        state.clicks.record(Click {
            link_id: link.id,
            ..visit.click
        });
    }
}

fn not_found(res: &mut Response<'_>, json: bool) {
    if json {
        ApiError::not_found().write(res);
    } else {
        web::not_found_page(res);
    }
}

fn gone(res: &mut Response<'_>, json: bool) {
    if json {
        ApiError::new(
            StatusCode::GONE,
            "gone",
            "this link has expired, was disabled or has no clicks left",
        )
        .write(res);
    } else {
        web::gone_page(res);
    }
}

fn unavailable(res: &mut Response<'_>, json: bool, error: ApiError) {
    if json {
        error.write(res);
    } else {
        res.status(error.status)
            .header("Retry-After", "1")
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(error.message.as_bytes());
    }
}

/// `POST /:slug`: the password form of a protected link.
fn unlock(state: &Arc<State>, req: &Request<'_>, res: &mut Response<'_>) {
    let slug = req.param("slug").unwrap_or("");
    let visit = Visit::of(req);
    if !plausible(slug) {
        return not_found(res, visit.wants_json);
    }
    let guess = req
        .form_param("password")
        .map(|p| p.into_owned())
        .unwrap_or_default();
    let slug = slug.to_owned();
    let state = Arc::clone(state);
    res.offload(move |res| {
        let link = match load(&state, &slug) {
            Ok(Some(link)) => link,
            Ok(None) => return not_found(res, visit.wants_json),
            Err(error) => return unavailable(res, visit.wants_json, error.into()),
        };
        let cached = CachedLink::from_link(&link);
        if cached.is_gone(visit.now) || cached.is_spent() {
            return gone(res, visit.wants_json);
        }
        // As for a visit (see `automated_visit`): its click would not count.
        if visit.click.agent.is_automated() && cached.max_clicks.is_some() {
            return web::limited_link_page(res);
        }
        // A link that is not (or no longer) protected is followed whatever
        // the form says, still with a 303 below.
        let wrong = link.password_hash.as_deref().is_some_and(|hash| {
            guess.is_empty()
                || guess.len() > crate::api::MAX_PASSWORD_LEN
                || !password::verify(&guess, hash)
        });
        if wrong {
            return web::password_page(
                res,
                StatusCode::UNAUTHORIZED,
                &slug,
                Some("Wrong password."),
            );
        }
        // The budget lives in the cache when the link is cached there (it
        // is, unless an update raced the load: then in what was read).
        let allowed = state.cache.peek(&slug, |lookup| match lookup {
            Lookup::Hit(entry) => entry.take_click(),
            _ => cached.take_click(),
        });
        if !allowed {
            return gone(res, visit.wants_json);
        }
        // 303: the browser follows with a GET, never re-posting the form
        // (and the password in it) to the target, as 307 or 308 would.
        redirect(&state, &cached, visit, res, StatusCode::SEE_OTHER);
    });
}
