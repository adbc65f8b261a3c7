-- Caps each link's referrer rows at 200, `(other)` included
-- (REFERRER_ROWS_PER_LINK in src/clicks/aggregate.rs, which flushes keep
-- to from now on): the hosts with the most clicks keep their rows, the
-- rest are added to the link's `(other)` row. A link flooded with
-- `Referer` spam before the cap existed gets small, fast stats again.
CREATE TEMP TABLE referrers_past_cap AS
SELECT link_id, host, count FROM (
    SELECT link_id, host, count,
           row_number() OVER (PARTITION BY link_id ORDER BY count DESC, host) AS rank
    FROM link_referrers WHERE host <> '(other)'
) WHERE rank > 199;

INSERT INTO link_referrers (link_id, host, count)
SELECT link_id, '(other)', sum(count) FROM referrers_past_cap WHERE true GROUP BY link_id
ON CONFLICT (link_id, host) DO UPDATE SET count = CASE
    WHEN count > 9223372036854775807 - excluded.count THEN 9223372036854775807
    ELSE count + excluded.count END;

DELETE FROM link_referrers
WHERE (link_id, host) IN (SELECT link_id, host FROM referrers_past_cap);

DROP TABLE referrers_past_cap;
