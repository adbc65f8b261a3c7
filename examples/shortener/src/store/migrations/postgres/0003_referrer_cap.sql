-- Caps each link's referrer rows at 200, `(other)` included
-- (REFERRER_ROWS_PER_LINK in src/clicks/aggregate.rs, which flushes keep
-- to from now on): the hosts with the most clicks keep their rows, the
-- rest are added to the link's `(other)` row. A link flooded with
-- `Referer` spam before the cap existed gets small, fast stats again.
WITH ranked AS (
    SELECT link_id, host,
           row_number() OVER (PARTITION BY link_id ORDER BY count DESC, host) AS rank
    FROM link_referrers WHERE host <> '(other)'
), past_cap AS (
    DELETE FROM link_referrers AS r USING ranked AS k
    WHERE k.rank > 199 AND r.link_id = k.link_id AND r.host = k.host
    RETURNING r.link_id, r.count
)
INSERT INTO link_referrers AS t (link_id, host, count)
SELECT link_id, '(other)', LEAST(sum(count), 9223372036854775807)::bigint
FROM past_cap GROUP BY link_id
ON CONFLICT (link_id, host) DO UPDATE SET count = CASE
    WHEN t.count > 9223372036854775807 - excluded.count THEN 9223372036854775807
    ELSE t.count + excluded.count END;
