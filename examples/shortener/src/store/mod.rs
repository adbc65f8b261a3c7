//! Where links live: the [`Store`] trait and its implementations.
//!
//! Every method blocks (disk or network I/O) and is called from keel's
//! blocking pool, never from a worker thread. Each method is one
//! transaction: it happens entirely or not at all.

#[cfg(test)]
mod conformance;
mod postgres;
mod sqlite;

pub use postgres::{PgOptions, PostgresStore};
pub use sqlite::SqliteStore;

use crate::model::{Created, LinkClicks, LinkPatch, LinkStats, NewLink, Page};
use crate::model::{Link, UnixTime};
use std::sync::Arc;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No link has this slug.
    #[error("no such link")]
    NotFound,
    /// The custom slug asked for belongs to another link.
    #[error("slug already taken")]
    SlugTaken,
    /// The store cannot be reached or did not answer in time: worth a retry
    /// (`503` with `Retry-After`).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug, corruption, a full disk (`500`).
    #[error("store failed: {0}")]
    Failed(String),
}

/// A change reported by [`Store::subscribe`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The link with this slug was created, changed or deleted.
    Link(String),
    /// Changes may have been missed (the feed's connection dropped): drop
    /// every cached link.
    Lost,
    /// The feed is connected: when it starts, and again after
    /// [`Change::Lost`].
    Connected,
}

/// The most links one [`Store::create_many`] call takes.
pub const MAX_BATCH: usize = 1000;

/// Durable storage of links and their click counts.
///
/// Implementations: [`SqliteStore`] (embedded, the default) and
/// [`PostgresStore`] (several instances sharing one database).
pub trait Store: Send + Sync + 'static {
    /// Creates a link. A [plain](NewLink::is_plain) request returns the
    /// newest existing plain link with the same URL (`existed: true`)
    /// instead of writing a new one. A generated slug is retried on
    /// collision; a custom slug that is taken is [`StoreError::SlugTaken`].
    fn create(&self, new: &NewLink) -> Result<Created, StoreError>;

    /// Creates up to [`MAX_BATCH`] links in one transaction, with the same
    /// rules as [`create`](Store::create) for each. Per-item failures
    /// ([`StoreError::SlugTaken`]) are per-item results and do not roll the
    /// others back; only an error of the whole call (`Err`) writes nothing.
    fn create_many(&self, new: &[NewLink]) -> Result<Vec<Result<Created, StoreError>>, StoreError>;

    /// The link with this slug, if any (expired and disabled ones too).
    fn get(&self, slug: &str) -> Result<Option<Link>, StoreError>;

    /// Applies `patch` and returns the link as it now is.
    fn update(&self, slug: &str, patch: &LinkPatch) -> Result<Link, StoreError>;

    /// Deletes the link and its stats; [`StoreError::NotFound`] when absent.
    fn delete(&self, slug: &str) -> Result<(), StoreError>;

    /// Up to `limit` links, newest first, older than the link with id
    /// `before` when given (keyset pagination on the id).
    fn list(&self, limit: usize, before: Option<i64>) -> Result<Page, StoreError>;

    /// Click stats of a link; `None` when there is no such link.
    fn stats(&self, slug: &str) -> Result<Option<LinkStats>, StoreError>;

    /// Adds a batch of click counts in one transaction. Counts for links
    /// deleted meanwhile are dropped. `batch_id` is unique per batch (an
    /// instance id and a sequence number): a batch whose id was already
    /// recorded is skipped, so retrying one whose first attempt committed
    /// but was not acknowledged counts nothing twice.
    fn record_clicks(&self, batch_id: &str, batch: &[LinkClicks]) -> Result<(), StoreError>;

    /// Starts telling `on_change` about links changed by *other* instances
    /// sharing this store (its own changes may be reported too), so their
    /// caches stay coherent. The default does nothing: a store only one
    /// instance uses has no one else to hear from.
    fn subscribe(&self, on_change: Box<dyn Fn(Change) + Send + Sync>) {
        let _ = on_change;
    }

    /// Every link, oldest first, for export: calls `each` per link and stops
    /// at its first error.
    fn for_each(
        &self,
        each: &mut dyn FnMut(&Link) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Checks that the store answers (`/health`).
    fn ping(&self) -> Result<(), StoreError>;
}

/// A shared store, as the app holds it.
pub type SharedStore = Arc<dyn Store>;

/// Opens the store named by `spec` with the default [`PgOptions`]; see
/// [`open_with`].
///
/// # Errors
///
/// When the spec names an unknown kind or the store cannot be opened.
pub fn open(spec: &str) -> Result<SharedStore, StoreError> {
    open_with(spec, &PgOptions::default())
}

/// Opens the store named by `spec`: `sqlite:PATH` (or a bare path) for the
/// embedded store, which creates the file and its directory when missing;
/// a `postgres://` or `postgresql://` URL for [`PostgresStore`], with the
/// pool and timeouts of `pg`. Either applies pending migrations.
///
/// # Errors
///
/// When the spec names an unknown kind or the store cannot be opened.
pub fn open_with(spec: &str, pg: &PgOptions) -> Result<SharedStore, StoreError> {
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresStore::open(spec, pg)?));
    }
    let path = spec.strip_prefix("sqlite:").unwrap_or(spec);
    Ok(Arc::new(SqliteStore::open(path)?))
}

/// Generated slugs tried before a create fails (a collision is rare: see
/// [`crate::slug::GENERATED_LEN`]).
pub(crate) const SLUG_ATTEMPTS: usize = 8;

/// The two statements a store runs for [`create_in`], inside its write
/// transaction.
pub(crate) trait CreateSteps {
    /// The newest plain, enabled link to `url`, if any.
    fn plain_link(&mut self, url: &str) -> Result<Option<Link>, StoreError>;
    /// Inserts `new` as `slug`, created `at`; `None` when the slug is taken.
    fn insert(
        &mut self,
        new: &NewLink,
        slug: &str,
        at: UnixTime,
    ) -> Result<Option<Link>, StoreError>;
}

/// The rules of [`Store::create`], the same for every store: a plain
/// request returns an existing plain link to the URL; a custom slug that is
/// taken is [`StoreError::SlugTaken`]; a generated one is drawn again.
pub(crate) fn create_in(
    steps: &mut impl CreateSteps,
    new: &NewLink,
) -> Result<Created, StoreError> {
    if new.is_plain() {
        if let Some(link) = steps.plain_link(&new.url)? {
            return Ok(Created {
                link,
                existed: true,
            });
        }
    }
    let at = created_at(new);
    if let Some(slug) = &new.slug {
        let link = steps.insert(new, slug, at)?.ok_or(StoreError::SlugTaken)?;
        return Ok(Created {
            link,
            existed: false,
        });
    }
    for _ in 0..SLUG_ATTEMPTS {
        if let Some(link) = steps.insert(new, &crate::slug::generate(), at)? {
            return Ok(Created {
                link,
                existed: false,
            });
        }
    }
    Err(StoreError::Failed(format!(
        "no free slug after {SLUG_ATTEMPTS} attempts"
    )))
}

/// A count as both stores keep it: a signed 64-bit integer, so counts past
/// `i64::MAX` saturate.
pub(crate) fn to_sql_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored count back; a negative one (never written) reads as 0.
pub(crate) fn from_sql_count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The link `new` became once a store inserted it as `id` under `slug` at
/// `at`, as the store now holds it (counts saturated as they are stored).
pub(crate) fn inserted_link(new: &NewLink, id: i64, slug: &str, at: UnixTime) -> Link {
    Link {
        id,
        slug: slug.to_owned(),
        url: new.url.clone(),
        created_at: at,
        expires_at: new.expires_at,
        disabled: new.disabled,
        max_clicks: new.max_clicks.map(|n| from_sql_count(to_sql_count(n))),
        clicks: from_sql_count(to_sql_count(new.clicks)),
        password_hash: new.password_hash.clone(),
    }
}

/// `patch` applied to `link` as [`Store::update`] stores it.
pub(crate) fn apply(patch: &LinkPatch, link: &mut Link) {
    if let Some(url) = &patch.url {
        link.url.clone_from(url);
    }
    if let Some(expires_at) = patch.expires_at {
        link.expires_at = expires_at;
    }
    if let Some(disabled) = patch.disabled {
        link.disabled = disabled;
    }
    if let Some(max_clicks) = patch.max_clicks {
        link.max_clicks = max_clicks.map(|n| from_sql_count(to_sql_count(n)));
    }
    if let Some(hash) = &patch.password_hash {
        link.password_hash.clone_from(hash);
    }
}

/// The current time, for stores stamping `created_at`.
fn created_at(new: &NewLink) -> UnixTime {
    new.created_at.unwrap_or_else(crate::model::now)
}

/// `spec` fit to print: a password in a `postgres://user:password@host`
/// URL is replaced by `***`.
pub fn redacted(spec: &str) -> String {
    let Some((scheme, rest)) = spec.split_once("://") else {
        return spec.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, _)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            let host_on = &rest[userinfo.len()..];
            format!("{scheme}://{user}:***{host_on}")
        }
        _ => spec.to_owned(),
    }
}

#[cfg(test)]
mod redaction_tests {
    #[test]
    fn passwords_are_not_printed() {
        let r = super::redacted;
        assert_eq!(
            r("postgres://u:s3cret@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(r("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(r("sqlite:data/shortener.db"), "sqlite:data/shortener.db");
        assert_eq!(r("postgres://u:p@ss@db/x"), "postgres://u:***@db/x");
    }
}
