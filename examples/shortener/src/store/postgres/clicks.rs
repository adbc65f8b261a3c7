//! Recording click batches: summed per row, links locked in id order,
//! one statement per table, each link's referrer rows capped.

use super::{column, to_sql_count, Db};
use crate::clicks::{fit_stored_referrers, OTHER_HOST};
use crate::model::LinkClicks;
use crate::store::StoreError;
use postgres::GenericClient;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Seconds a recorded click batch id is remembered: far longer than any
/// retry of it.
const BATCH_ID_RETENTION: i64 = 86_400;

/// Adds arrays of counts to a stats table, `count + excluded.count`
/// saturating at `i64::MAX` (PostgreSQL would fail the statement on
/// overflow). The rows' keys must be distinct.
macro_rules! upsert_counts {
    ($table:literal, $key:literal, $key_type:literal) => {
        concat!(
            "INSERT INTO ",
            $table,
            " AS t (link_id, ",
            $key,
            ", count) SELECT * FROM unnest($1::bigint[], $2::",
            $key_type,
            "[], $3::bigint[]) ON CONFLICT (link_id, ",
            $key,
            ") DO UPDATE SET count = CASE ",
            "WHEN t.count > 9223372036854775807 - excluded.count THEN 9223372036854775807 ",
            "ELSE t.count + excluded.count END"
        )
    };
}

/// One click batch summed per link and per stats row, keys sorted: the
/// order rows are locked in, and an upsert may name each key only once.
#[derive(Default)]
pub(super) struct Sums {
    totals: BTreeMap<i64, u64>,
    days: BTreeMap<(i64, i32), u64>,
    referrers: BTreeMap<(i64, String), u64>,
    agents: BTreeMap<(i64, String), u64>,
}

impl Sums {
    pub(super) fn of(batch: &[LinkClicks]) -> Sums {
        fn add<K: Ord>(map: &mut BTreeMap<K, u64>, key: K, n: u64) {
            if n > 0 {
                let sum = map.entry(key).or_insert(0);
                *sum = sum.saturating_add(n);
            }
        }
        let mut sums = Sums::default();
        for clicks in batch {
            let id = clicks.link_id;
            let total = sums.totals.entry(id).or_insert(0);
            *total = total.saturating_add(clicks.total);
            for (day, n) in &clicks.days {
                add(&mut sums.days, (id, *day), *n);
            }
            for (host, n) in &clicks.referrers {
                add(&mut sums.referrers, (id, host.clone()), *n);
            }
            for (family, n) in &clicks.agents {
                add(&mut sums.agents, (id, family.clone()), *n);
            }
        }
        sums
    }

    /// Forgets the links not in `live` (deleted since the clicks were
    /// counted).
    fn retain(&mut self, live: &[i64]) {
        let live = |id: &i64| live.binary_search(id).is_ok();
        self.totals.retain(|id, _| live(id));
        self.days.retain(|(id, _), _| live(id));
        self.referrers.retain(|(id, _), _| live(id));
        self.agents.retain(|(id, _), _| live(id));
    }

    /// Fits each link's referrers into its stored rows (see
    /// [`fit_stored_referrers`]): two reads for the whole batch, made with
    /// the links locked, so that two flushes cannot both take a link's
    /// last free row.
    fn fit_referrers<C: GenericClient>(&mut self, db: &mut Db<'_, C>) -> Result<(), StoreError> {
        if self.referrers.is_empty() {
            return Ok(());
        }
        let (ids, hosts, _) = columns(&self.referrers);
        let mut named_rows = HashMap::new();
        for row in db.query(
            "SELECT link_id, count(*) FROM link_referrers \
             WHERE link_id = ANY($1) AND host <> $2 GROUP BY link_id",
            &[&ids, &OTHER_HOST],
        )? {
            let rows = usize::try_from(column::<i64>(&row, 1)?).unwrap_or(0);
            named_rows.insert(column::<i64>(&row, 0)?, rows);
        }
        let mut stored = HashSet::new();
        for row in db.query(
            "SELECT r.link_id, r.host FROM link_referrers AS r \
             JOIN unnest($1::bigint[], $2::text[]) AS b (link_id, host) \
             ON r.link_id = b.link_id AND r.host = b.host",
            &[&ids, &hosts],
        )? {
            stored.insert((column::<i64>(&row, 0)?, column::<String>(&row, 1)?));
        }
        let mut fitted = BTreeMap::new();
        let mut rows = std::mem::take(&mut self.referrers).into_iter().peekable();
        while let Some(((id, host), n)) = rows.next() {
            let mut link = vec![(host, n)];
            while let Some(((_, host), n)) = rows.next_if(|((next, _), _)| *next == id) {
                link.push((host, n));
            }
            let named = named_rows.get(&id).copied().unwrap_or(0);
            let has_row = |host: &str| Ok::<_, StoreError>(stored.contains(&(id, host.to_owned())));
            for (host, n) in fit_stored_referrers(&link, named, has_row)? {
                fitted.insert((id, host), n);
            }
        }
        self.referrers = fitted;
        Ok(())
    }
}

/// Splits `(link, key) -> count` rows into the three arrays of
/// [`upsert_counts`].
fn columns<K: Clone>(rows: &BTreeMap<(i64, K), u64>) -> (Vec<i64>, Vec<K>, Vec<i64>) {
    let ids = rows.keys().map(|(id, _)| *id).collect();
    let keys = rows.keys().map(|(_, key)| key.clone()).collect();
    let counts = rows.values().map(|n| to_sql_count(*n)).collect();
    (ids, keys, counts)
}

/// Records one batch inside an open transaction (see
/// [`Store::record_clicks`](crate::store::Store::record_clicks)).
pub(super) fn record_in<C: GenericClient>(
    db: &mut Db<'_, C>,
    batch_id: &str,
    sums: &mut Sums,
) -> Result<(), StoreError> {
    let now = crate::model::now();
    let first_time = db.execute(
        "INSERT INTO click_batches (id, recorded_at) VALUES ($1, $2) \
             ON CONFLICT (id) DO NOTHING",
        &[&batch_id, &now],
    )?;
    if first_time == 0 {
        return Ok(());
    }
    db.execute(
        "DELETE FROM click_batches WHERE recorded_at < $1",
        &[&(now - BATCH_ID_RETENTION)],
    )?;
    if sums.totals.is_empty() {
        return Ok(());
    }
    // Lock the links in id order; the ones deleted since the clicks
    // were counted are not there, and their counts are dropped (the
    // stats rows would break the foreign key anyway).
    let ids: Vec<i64> = sums.totals.keys().copied().collect();
    let live = db
        .query(
            "SELECT id FROM links WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
            &[&ids],
        )?
        .iter()
        .map(|row| column::<i64>(row, 0))
        .collect::<Result<Vec<_>, _>>()?;
    sums.retain(&live);
    if live.is_empty() {
        return Ok(());
    }
    sums.fit_referrers(db)?;
    let totals: Vec<i64> = sums.totals.values().map(|n| to_sql_count(*n)).collect();
    db.execute(
        "UPDATE links AS l SET clicks = CASE \
             WHEN l.clicks > 9223372036854775807 - b.n THEN 9223372036854775807 \
             ELSE l.clicks + b.n END \
             FROM unnest($1::bigint[], $2::bigint[]) AS b (id, n) WHERE l.id = b.id",
        &[&live, &totals],
    )?;
    if !sums.days.is_empty() {
        let (ids, days, counts) = columns(&sums.days);
        db.execute(
            upsert_counts!("link_days", "day", "integer"),
            &[&ids, &days, &counts],
        )?;
    }
    if !sums.referrers.is_empty() {
        let (ids, hosts, counts) = columns(&sums.referrers);
        db.execute(
            upsert_counts!("link_referrers", "host", "text"),
            &[&ids, &hosts, &counts],
        )?;
    }
    if !sums.agents.is_empty() {
        let (ids, families, counts) = columns(&sums.agents);
        db.execute(
            upsert_counts!("link_agents", "family", "text"),
            &[&ids, &families, &counts],
        )?;
    }
    Ok(())
}
