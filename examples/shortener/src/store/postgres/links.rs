//! Link rows: read back as [`Link`]s, and the statements a create runs
//! (plain URLs locked and looked up, a link inserted unless its slug is taken).

use super::db::{column, Db};
use crate::model::{Link, NewLink, UnixTime};
use crate::store::{from_sql_count, inserted_link, to_sql_count, CreateSteps, StoreError};
use postgres::{GenericClient, Row};

/// First key of the two-key advisory locks on plain URLs ("shUR"); the
/// second is the URL's [hash](url_lock_key).
const PLAIN_URL_LOCK: i32 = 0x7368_5552;

pub(super) fn link_from_row(row: &Row) -> Result<Link, StoreError> {
    Ok(Link {
        id: column(row, 0)?,
        slug: column(row, 1)?,
        url: column(row, 2)?,
        created_at: column(row, 3)?,
        expires_at: column(row, 4)?,
        disabled: column(row, 5)?,
        max_clicks: column::<Option<i64>>(row, 6)?.map(from_sql_count),
        clicks: from_sql_count(column(row, 7)?),
        password_hash: column(row, 8)?,
    })
}

pub(super) fn link_by_slug<C: GenericClient>(
    db: &mut Db<'_, C>,
    slug: &str,
) -> Result<Option<Link>, StoreError> {
    db.query_opt(select_links!("WHERE slug = $1"), &[&slug])?
        .as_ref()
        .map(link_from_row)
        .transpose()
}

/// The advisory lock key of a plain URL: FNV-1a, stable across builds and
/// instances (every instance must compute the same key).
pub(super) fn url_lock_key(url: &str) -> i32 {
    let hash = url.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    hash as i32
}

/// Takes the advisory locks of the plain links among `new`, in key order
/// (so two transactions locking several cannot deadlock), held until the
/// transaction ends: a concurrent plain create of the same URL waits, then
/// finds this one's link.
pub(super) fn lock_plain_urls<C: GenericClient>(
    db: &mut Db<'_, C>,
    new: &[NewLink],
) -> Result<(), StoreError> {
    let mut keys: Vec<i32> = new
        .iter()
        .filter(|one| one.is_plain())
        .map(|one| url_lock_key(&one.url))
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    keys.sort_unstable();
    keys.dedup();
    // unnest reads the array out in order.
    db.execute(
        "SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::integer[]) AS k",
        &[&PLAIN_URL_LOCK, &keys],
    )?;
    Ok(())
}

/// The newest plain link to `url` that still redirects (see the SQLite
/// store's twin); the caller holds the URL's advisory lock.
fn plain_link<C: GenericClient>(db: &mut Db<'_, C>, url: &str) -> Result<Option<Link>, StoreError> {
    // The predicate implies the partial index's, so the planner can use it.
    db.query_opt(
        select_links!(
            "WHERE url = $1 AND NOT custom_slug AND expires_at IS NULL ",
            "AND max_clicks IS NULL AND password_hash IS NULL AND NOT disabled ",
            "ORDER BY id DESC LIMIT 1"
        ),
        &[&url],
    )?
    .as_ref()
    .map(link_from_row)
    .transpose()
}

/// Inserts `new` under `slug`; `None` when the slug is taken.
fn insert<C: GenericClient>(
    db: &mut Db<'_, C>,
    new: &NewLink,
    slug: &str,
    at: UnixTime,
) -> Result<Option<Link>, StoreError> {
    let max_clicks = new.max_clicks.map(to_sql_count);
    let custom = new.slug.is_some();
    let row = db.query_opt(
        "INSERT INTO links (slug, url, created_at, expires_at, max_clicks, password_hash, \
         custom_slug, disabled, clicks) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (slug) DO NOTHING RETURNING id",
        &[
            &slug,
            &new.url,
            &at,
            &new.expires_at,
            &max_clicks,
            &new.password_hash,
            &custom,
            &new.disabled,
            &to_sql_count(new.clicks),
        ],
    )?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(inserted_link(new, column(&row, 0)?, slug, at)))
}

/// [`create_in`]'s statements, inside a transaction that holds the
/// advisory lock of the URL of a plain create.
///
/// [`create_in`]: crate::store::create_in
impl<C: GenericClient> CreateSteps for Db<'_, C> {
    fn plain_link(&mut self, url: &str) -> Result<Option<Link>, StoreError> {
        plain_link(self, url)
    }

    fn insert(
        &mut self,
        new: &NewLink,
        slug: &str,
        at: UnixTime,
    ) -> Result<Option<Link>, StoreError> {
        insert(self, new, slug, at)
    }
}
