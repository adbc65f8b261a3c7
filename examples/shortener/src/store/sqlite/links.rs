//! Link rows: read back as [`Link`]s, and the statements a create runs
//! (the newest live plain link of a URL, a link inserted unless its slug is
//! taken).

use super::errors::db_err;
use crate::model::{Link, NewLink, UnixTime};
use crate::store::{from_sql_count, inserted_link, to_sql_count, CreateSteps, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Row};

pub(super) fn link_from_row(row: &Row<'_>) -> rusqlite::Result<Link> {
    Ok(Link {
        id: row.get(0)?,
        slug: row.get(1)?,
        url: row.get(2)?,
        created_at: row.get(3)?,
        expires_at: row.get(4)?,
        disabled: row.get(5)?,
        max_clicks: row.get::<_, Option<i64>>(6)?.map(from_sql_count),
        clicks: from_sql_count(row.get(7)?),
        password_hash: row.get(8)?,
    })
}

pub(super) fn link_by_slug(conn: &Connection, slug: &str) -> Result<Option<Link>, StoreError> {
    let mut stmt = conn
        .prepare_cached(select_links!("WHERE slug = ?1"))
        .map_err(db_err)?;
    stmt.query_row([slug], link_from_row)
        .optional()
        .map_err(db_err)
}

/// The newest plain link to `url` that still redirects. Plain links have no
/// expiry or click budget, so only the disabled flag can make one dead; a
/// disabled one is not handed out again, the caller gets a fresh link.
fn plain_link(conn: &Connection, url: &str) -> Result<Option<Link>, StoreError> {
    // The predicate repeats the partial index's so SQLite can use it.
    let mut stmt = conn
        .prepare_cached(select_links!(
            "WHERE url = ?1 AND custom_slug = 0 AND expires_at IS NULL ",
            "AND max_clicks IS NULL AND password_hash IS NULL AND disabled = 0 ",
            "ORDER BY id DESC LIMIT 1"
        ))
        .map_err(db_err)?;
    stmt.query_row([url], link_from_row)
        .optional()
        .map_err(db_err)
}

/// Inserts `new` under `slug`; `None` when the slug is taken.
fn insert(
    conn: &Connection,
    new: &NewLink,
    slug: &str,
    at: UnixTime,
) -> Result<Option<Link>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO links (slug, url, created_at, expires_at, max_clicks, password_hash, \
             custom_slug, disabled, clicks) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (slug) DO NOTHING",
        )
        .map_err(db_err)?;
    let max_clicks = new.max_clicks.map(to_sql_count);
    let custom = new.slug.is_some();
    let inserted = stmt
        .execute(params![
            slug,
            new.url,
            at,
            new.expires_at,
            max_clicks,
            new.password_hash,
            custom,
            new.disabled,
            to_sql_count(new.clicks)
        ])
        .map_err(db_err)?;
    if inserted == 0 {
        return Ok(None);
    }
    Ok(Some(inserted_link(new, conn.last_insert_rowid(), slug, at)))
}

/// [`create_in`]'s statements on a connection inside a write transaction.
///
/// [`create_in`]: crate::store::create_in
pub(super) struct Steps<'a>(pub(super) &'a Connection);

impl CreateSteps for Steps<'_> {
    fn plain_link(&mut self, url: &str) -> Result<Option<Link>, StoreError> {
        plain_link(self.0, url)
    }

    fn insert(
        &mut self,
        new: &NewLink,
        slug: &str,
        at: UnixTime,
    ) -> Result<Option<Link>, StoreError> {
        insert(self.0, new, slug, at)
    }
}
