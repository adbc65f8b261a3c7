-- Migration 1: links and their click stats (the PostgreSQL twin of
-- ../0001_init.sql; same tables, columns and indexes).

-- An identity column draws from a sequence, which never hands a value out
-- twice (not even after a rollback): ids are never reused, because click
-- batches name links by id.
CREATE TABLE links (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug          TEXT    NOT NULL UNIQUE,
    url           TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    expires_at    BIGINT,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    max_clicks    BIGINT,
    clicks        BIGINT  NOT NULL DEFAULT 0,
    password_hash TEXT,
    -- TRUE when the slug was asked for (or imported) rather than generated.
    custom_slug   BOOLEAN NOT NULL DEFAULT FALSE
);

-- The newest plain link to a URL, for de-duplicating plain creates. The
-- lookup's predicate implies this one, so the planner can use the index.
CREATE INDEX links_plain_url ON links (url, id)
    WHERE NOT custom_slug AND expires_at IS NULL AND max_clicks IS NULL
      AND password_hash IS NULL;

CREATE TABLE link_days (
    link_id BIGINT  NOT NULL REFERENCES links (id) ON DELETE CASCADE,
    day     INTEGER NOT NULL,
    count   BIGINT  NOT NULL,
    PRIMARY KEY (link_id, day)
);

CREATE TABLE link_referrers (
    link_id BIGINT NOT NULL REFERENCES links (id) ON DELETE CASCADE,
    host    TEXT   NOT NULL,
    count   BIGINT NOT NULL,
    PRIMARY KEY (link_id, host)
);

CREATE TABLE link_agents (
    link_id BIGINT NOT NULL REFERENCES links (id) ON DELETE CASCADE,
    family  TEXT   NOT NULL,
    count   BIGINT NOT NULL,
    PRIMARY KEY (link_id, family)
);
