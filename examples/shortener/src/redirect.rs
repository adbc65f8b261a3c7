//! The redirect path, `GET /:slug`: the one request that must be fast.
//!
//! A cache hit is answered on the worker: one shard read lock, one hash
//! lookup, the response head written into the output buffer and the click
//! counted in this thread's map, all without allocating. A miss goes to the
//! store on the blocking pool and fills the cache; an entry past its time to
//! live is answered from while one visit reads it again there.

use crate::api::{retry_after, wants_json, ApiError};
use crate::app::{on_state, State};
use crate::cache::{CachedLink, Lookup};
use crate::clicks::Click;
use crate::model::{self, Link, UnixTime};
use crate::password::{self, LinkGuesses, Verdict};
use crate::store::StoreError;
use crate::telemetry::StoreOp;
use crate::{validate, web};
use keel::middleware::{HandlerExt, RateLimit};
use keel::{field, Request, Response, Router, StatusCode};
use std::sync::Arc;

/// Adds `GET`/`HEAD /:slug` and the password form's `POST /:slug`, whose
/// guesses go through `guesses` (per client) and a per-link limit of
/// [`AppConfig::link_guesses`](crate::app::AppConfig::link_guesses).
pub fn routes(router: Router, state: &Arc<State>, guesses: &Arc<RateLimit>) -> Router {
    let per_link = Arc::new(LinkGuesses::new(state.config.link_guesses));
    let unlock = move |state: &Arc<State>, req: &Request<'_>, res: &mut Response<'_>| {
        unlock(state, &per_link, req, res);
    };
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
    // HEAD is how link previews look: it is answered but not counted,
    // except on a link with a click budget, where a `Location` is worth a
    // click (else HEAD would read a one-time link's target for free).
    if spends_click(link, visit) && !link.take_click() {
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
        res.field(field!("Cache-Control", "no-store"));
    }
    if res.redirect(status, &link.url).is_err() {
        // Stored URLs are validated; one that is not a valid header value
        // is corrupt.
        res.status(StatusCode::INTERNAL_SERVER_ERROR).body(b"");
        return;
    }
    if spends_click(link, visit) {
        state.clicks.record(Click {
            link_id: link.id,
            ..visit.click
        });
    }
}

/// Whether answering `visit` with the target counts as a click.
fn spends_click(link: &CachedLink, visit: Visit) -> bool {
    !visit.is_head || link.max_clicks.is_some()
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
            .field(field!("Retry-After", "1"))
            .field(field!("Content-Type", "text/plain; charset=utf-8"))
            .body(error.message.as_bytes());
    }
}

/// `POST /:slug`: the password form of a protected link.
///
/// A guess passes three gates before Argon2 runs: the per-client limit
/// (keel's `RateLimit`, around this handler), room in the password
/// [lane](password::lane) (else `503` at once), and the link's own guess
/// limit (else `429`). A fresh cache entry is checked on the worker and the
/// guess handed to the lane with a deferred response; a miss (or an entry
/// past its time to live, whose password may have changed) is read from the
/// store on the blocking pool first, and that thread waits for the verdict:
/// a lane holds at most `2 x --password-threads` guesses, so at most that
/// many pool threads wait, for one or two Argon2 runs each.
fn unlock(
    state: &Arc<State>,
    per_link: &Arc<LinkGuesses>,
    req: &Request<'_>,
    res: &mut Response<'_>,
) {
    let slug = req.param("slug").unwrap_or("");
    let visit = Visit::of(req);
    if !plausible(slug) {
        return not_found(res, visit.wants_json);
    }
    let cached = state.cache.with(slug, |lookup| match lookup {
        Lookup::Hit(link) => Some(Gate::of(link, visit)),
        Lookup::Missing => Some(Gate::Missing),
        Lookup::Stale { .. } | Lookup::Unknown => None,
    });
    let mut attempt = Attempt {
        state: Arc::clone(state),
        per_link: Arc::clone(per_link),
        slug: slug.to_owned(),
        guess: req
            .form_param("password")
            .map(|p| p.into_owned())
            .unwrap_or_default(),
        visit,
    };
    let Some(gate) = cached else {
        return res.offload(move |res| {
            let link = match load(&attempt.state, &attempt.slug) {
                Ok(Some(link)) => CachedLink::from_link(&link),
                Ok(None) => return not_found(res, visit.wants_json),
                Err(error) => return unavailable(res, visit.wants_json, error.into()),
            };
            match Gate::of(&link, visit) {
                Gate::Protected(hash) => {
                    if let Err(refusal) = attempt.admit() {
                        return attempt.refuse(refusal, res);
                    }
                    let guess = std::mem::take(&mut attempt.guess);
                    let verdict = password::lane().verify_wait(guess, hash.clone());
                    attempt.finish(verdict, &hash, Some(&link), res);
                }
                gate => attempt.pass_unprotected(gate, Some(&link), res),
            }
        });
    };
    match gate {
        Gate::Protected(hash) => {
            if let Err(refusal) = attempt.admit() {
                return attempt.refuse(refusal, res);
            }
            let guess = std::mem::take(&mut attempt.guess);
            let responder = res.defer();
            password::lane().verify(guess, hash.clone(), move |verdict| {
                if verdict != Verdict::Match || attempt.cached_with(&hash) {
                    responder.respond(|res| attempt.finish(verdict, &hash, None, res));
                    return;
                }
                // The entry left the cache while the password was checked
                // (evicted, or the change feed's notice of this very
                // link): read the link again, on the blocking pool, not
                // on the lane, and open it if its password is the same.
                let reread = keel::blocking::global().spawn_answer(responder, move |responder| {
                    let loaded = load(&attempt.state, &attempt.slug)
                        .ok()
                        .flatten()
                        .map(|link| CachedLink::from_link(&link));
                    responder.respond(|res| attempt.finish(verdict, &hash, loaded.as_ref(), res));
                });
                if let Err((_, responder)) = reread {
                    responder.respond(|res| unavailable(res, false, busy()));
                }
            });
        }
        gate => attempt.pass_unprotected(gate, None, res),
    }
}

/// What a link's state says about a form post, decided from one look at it.
enum Gate {
    Missing,
    Gone,
    /// A budgeted link posted to by a robot (preview, crawler).
    Limited,
    /// Not (or no longer) protected: followed whatever the form says.
    Open,
    /// Protected by this PHC hash.
    Protected(Box<str>),
}

impl Gate {
    fn of(link: &CachedLink, visit: Visit) -> Gate {
        if link.is_gone(visit.now) || link.is_spent() {
            return Gate::Gone;
        }
        // As for a visit (see `automated_visit`): a robot's click would not
        // count, so a budgeted target is never shown to one, password or not.
        if visit.click.agent.is_automated() && link.max_clicks.is_some() {
            return Gate::Limited;
        }
        match &link.password_hash {
            Some(hash) => Gate::Protected(hash.clone()),
            None => Gate::Open,
        }
    }
}

/// Why a guess was not checked.
enum Refusal {
    /// Empty or too long: wrong without computing anything.
    Wrong,
    /// The lane is full.
    Busy,
    /// The link takes no guess for this long.
    Backoff(std::time::Duration),
}

/// One form post on its way through the gates.
struct Attempt {
    state: Arc<State>,
    per_link: Arc<LinkGuesses>,
    slug: String,
    guess: String,
    visit: Visit,
}

impl Attempt {
    /// The cheap gates, in order of cost; counts the guess against the
    /// link when it passes.
    fn admit(&self) -> Result<(), Refusal> {
        if self.guess.is_empty() || self.guess.len() > crate::api::MAX_PASSWORD_LEN {
            return Err(Refusal::Wrong);
        }
        if password::lane().is_full() {
            return Err(Refusal::Busy);
        }
        self.per_link
            .charge(&self.slug, std::time::Instant::now())
            .map_err(Refusal::Backoff)
    }

    fn refuse(&self, refusal: Refusal, res: &mut Response<'_>) {
        let json = self.visit.wants_json;
        match refusal {
            Refusal::Wrong => wrong_password(res, &self.slug),
            Refusal::Busy => unavailable(res, json, busy()),
            Refusal::Backoff(wait) => {
                retry_after(res, wait);
                let message =
                    "too many wrong passwords for this link; try again after the Retry-After delay";
                if json {
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
                        .write(res);
                } else {
                    web::password_page(
                        res,
                        StatusCode::TOO_MANY_REQUESTS,
                        &self.slug,
                        Some("Too many wrong passwords for this link; try again later."),
                    );
                }
            }
        }
    }

    /// Answers a post to a link that is missing, gone or open.
    fn pass_unprotected(&self, gate: Gate, loaded: Option<&CachedLink>, res: &mut Response<'_>) {
        match gate {
            Gate::Missing => not_found(res, self.visit.wants_json),
            Gate::Gone => gone(res, self.visit.wants_json),
            Gate::Limited => web::limited_link_page(res),
            Gate::Open => self.open(None, loaded, res),
            // Not for this function; failing closed.
            Gate::Protected(_) => wrong_password(res, &self.slug),
        }
    }

    /// Answers a checked guess at the link protected by `hash`.
    fn finish(
        &self,
        verdict: Verdict,
        hash: &str,
        loaded: Option<&CachedLink>,
        res: &mut Response<'_>,
    ) {
        match verdict {
            Verdict::Wrong => wrong_password(res, &self.slug),
            Verdict::Busy => {
                self.per_link.refund(&self.slug);
                self.refuse(Refusal::Busy, res);
            }
            Verdict::Match => {
                self.per_link.refund(&self.slug);
                self.open(Some(hash), loaded, res);
            }
        }
    }

    /// Follows the link whose password is `hash` (`None`: open), through
    /// its cache entry when there is one, since its click budget lives
    /// there; else as `loaded`. When the link changed meanwhile (its
    /// password is not the one checked), `503`: the visitor tries again.
    /// Whether the cache still holds the link with this password hash.
    fn cached_with(&self, hash: &str) -> bool {
        self.state.cache.peek(&self.slug, |lookup| match lookup {
            Lookup::Hit(link) | Lookup::Stale { link, .. } => {
                link.password_hash.as_deref() == Some(hash)
            }
            _ => false,
        })
    }

    fn open(&self, hash: Option<&str>, loaded: Option<&CachedLink>, res: &mut Response<'_>) {
        let state = &self.state;
        let follow = |link: &CachedLink, res: &mut Response<'_>| {
            if link.is_gone(self.visit.now) || !link.take_click() {
                return gone(res, self.visit.wants_json);
            }
            // 303: the browser follows with a GET, never re-posting the
            // form (and the password in it) to the target, as 307 or 308
            // would.
            redirect(state, link, self.visit, res, StatusCode::SEE_OTHER);
        };
        let answered = state.cache.peek(&self.slug, |lookup| match lookup {
            Lookup::Hit(link) | Lookup::Stale { link, .. }
                if link.password_hash.as_deref() == hash =>
            {
                follow(link, res);
                true
            }
            _ => false,
        });
        if answered {
            return;
        }
        match loaded {
            Some(link) if link.password_hash.as_deref() == hash => follow(link, res),
            _ => unavailable(
                res,
                self.visit.wants_json,
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "changed",
                    "the link changed while its password was checked, try again",
                ),
            ),
        }
    }
}

fn wrong_password(res: &mut Response<'_>, slug: &str) {
    web::password_page(res, StatusCode::UNAUTHORIZED, slug, Some("Wrong password."));
}

fn busy() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "too many passwords are being checked, try again shortly",
    )
}
