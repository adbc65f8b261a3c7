-- Migration 1: links and their click stats.

-- AUTOINCREMENT: ids are never reused, even after the newest link is
-- deleted, because click batches name links by id.
CREATE TABLE links (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    slug          TEXT    NOT NULL UNIQUE,
    url           TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    disabled      INTEGER NOT NULL DEFAULT 0,
    max_clicks    INTEGER,
    clicks        INTEGER NOT NULL DEFAULT 0,
    password_hash TEXT,
    -- 1 when the slug was asked for (or imported) rather than generated.
    custom_slug   INTEGER NOT NULL DEFAULT 0
);

-- The newest plain link to a URL, for de-duplicating plain creates. The
-- predicate must match the one in the lookup query word for word so that
-- SQLite uses this partial index.
CREATE INDEX links_plain_url ON links (url, id)
    WHERE custom_slug = 0 AND expires_at IS NULL AND max_clicks IS NULL
      AND password_hash IS NULL;

CREATE TABLE link_days (
    link_id INTEGER NOT NULL REFERENCES links (id) ON DELETE CASCADE,
    day     INTEGER NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (link_id, day)
) WITHOUT ROWID;

CREATE TABLE link_referrers (
    link_id INTEGER NOT NULL REFERENCES links (id) ON DELETE CASCADE,
    host    TEXT    NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (link_id, host)
) WITHOUT ROWID;

CREATE TABLE link_agents (
    link_id INTEGER NOT NULL REFERENCES links (id) ON DELETE CASCADE,
    family  TEXT    NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (link_id, family)
) WITHOUT ROWID;
