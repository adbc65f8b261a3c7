//! Summing drained clicks into per-link counts, and the caps that keep one
//! link's referrer hosts bounded in a batch and in the store.
//!
//! Every step is a hash map or a linear selection: a flush costs O(1) per
//! drained count, whatever number of distinct hosts a spammer sends.

use super::host::{Host, OTHER_HOST};
use super::{AgentFamily, Click};
use crate::model::{Day, LinkClicks};
use foldhash::fast::RandomState;
use std::collections::HashMap;

/// Referrer rows, `(other)` included, one link gets in one flushed batch:
/// the hosts with the most clicks keep their name, the rest are summed
/// into [`OTHER_HOST`]. Bounds what a flush writes for a link under
/// `Referer` spam.
pub const REFERRERS_PER_INTERVAL: usize = 50;

/// Referrer rows, `(other)` included, one link keeps in the store: once it
/// has this many, clicks from hosts it has no row for are added to its
/// [`OTHER_HOST`] row. Keeps a link's `/stats` and its rows small whatever
/// hosts are sent to it over time.
pub const REFERRER_ROWS_PER_LINK: usize = 200;

/// Counts of one link while a batch is summed.
#[derive(Default)]
struct LinkSums {
    total: u64,
    days: HashMap<Day, u64, RandomState>,
    referrers: HashMap<Host, u64, RandomState>,
    agents: HashMap<AgentFamily, u64, RandomState>,
}

/// What [`aggregate`] folded into [`OTHER_HOST`], for `/metrics`.
pub struct Aggregated {
    pub links: Vec<LinkClicks>,
    /// Clicks whose referrer host was past [`REFERRERS_PER_INTERVAL`].
    pub folded: u64,
}

/// Sums drained per-click counts into per-link counts. Automated visits
/// (see [`AgentFamily::is_automated`]) are counted under their family
/// only: not in the total, the days or the referrers.
pub fn aggregate(drained: impl IntoIterator<Item = (Click, u64)>) -> Aggregated {
    let mut links: HashMap<i64, LinkSums, RandomState> = HashMap::default();
    for (click, count) in drained {
        let link = links.entry(click.link_id).or_default();
        *link.agents.entry(click.agent).or_insert(0) += count;
        if click.agent.is_automated() {
            continue;
        }
        link.total += count;
        *link.days.entry(click.day).or_insert(0) += count;
        *link.referrers.entry(click.referrer).or_insert(0) += count;
    }
    let mut folded = 0;
    let links = links
        .into_iter()
        .map(|(link_id, sums)| {
            let mut days: Vec<_> = sums.days.into_iter().collect();
            days.sort_unstable();
            let referrers = sums
                .referrers
                .into_iter()
                .map(|(host, n)| (host.as_str().to_owned(), n))
                .collect();
            let (referrers, link_folded) = cap_referrers(referrers, REFERRERS_PER_INTERVAL);
            folded += link_folded;
            LinkClicks {
                link_id,
                total: sums.total,
                days,
                referrers,
                agents: sums
                    .agents
                    .into_iter()
                    .map(|(agent, n)| (agent.name().to_owned(), n))
                    .collect(),
            }
        })
        .collect();
    Aggregated { links, folded }
}

/// Keeps at most `rows` referrer rows, `(other)` included: past it, the
/// hosts with the most clicks (ties by name) keep theirs and the others are
/// summed into [`OTHER_HOST`]. Returns the rows and the clicks folded.
/// Linear in the hosts (a selection, not a sort of them all).
fn cap_referrers(mut referrers: Vec<(String, u64)>, rows: usize) -> (Vec<(String, u64)>, u64) {
    if referrers.len() <= rows {
        return (referrers, 0);
    }
    let mut other = take_other(&mut referrers);
    let keep = rows.saturating_sub(1);
    let by_clicks =
        |a: &(String, u64), b: &(String, u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0));
    if keep < referrers.len() {
        referrers.select_nth_unstable_by(keep, by_clicks);
    }
    let folded: u64 = referrers
        .drain(keep.min(referrers.len())..)
        .map(|(_, n)| n)
        .sum();
    other += folded;
    referrers.push((OTHER_HOST.to_owned(), other));
    (referrers, folded)
}

/// Removes the [`OTHER_HOST`] row, returning its count (0 without one).
fn take_other(referrers: &mut Vec<(String, u64)>) -> u64 {
    match referrers.iter().position(|(host, _)| host == OTHER_HOST) {
        Some(at) => referrers.swap_remove(at).1,
        None => 0,
    }
}

/// One link's referrer counts as a store may add them without passing
/// [`REFERRER_ROWS_PER_LINK`]: a host the link has a row for (`has_row`)
/// keeps its name; a new one gets a row while the link's named rows
/// (`named_rows`, those other than `(other)`) leave one for `(other)`,
/// hosts with the most clicks first; the rest are counted as
/// [`OTHER_HOST`]. Call it inside the transaction that adds the counts,
/// with the link locked, so that two flushes cannot both take the last row.
///
/// # Errors
///
/// `has_row`'s error.
pub fn fit_stored_referrers<E>(
    referrers: &[(String, u64)],
    mut named_rows: usize,
    mut has_row: impl FnMut(&str) -> Result<bool, E>,
) -> Result<Vec<(String, u64)>, E> {
    let mut fitted: Vec<(String, u64)> = referrers.to_vec();
    let mut other = take_other(&mut fitted);
    fitted.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut kept = Vec::with_capacity(fitted.len() + 1);
    for (host, n) in fitted {
        if has_row(&host)? {
            kept.push((host, n));
        } else if named_rows + 1 < REFERRER_ROWS_PER_LINK {
            named_rows += 1;
            kept.push((host, n));
        } else {
            other += n;
        }
    }
    if other > 0 {
        kept.push((OTHER_HOST.to_owned(), other));
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const AT: i64 = 1_795_600_800;

    fn click(link_id: i64, referer: &str, agent: &str) -> Click {
        Click::new(link_id, AT, Some(referer), Some(agent))
    }

    fn named(referrers: &[(String, u64)], host: &str) -> Option<u64> {
        referrers.iter().find(|(h, _)| h == host).map(|(_, n)| *n)
    }

    #[test]
    fn a_batch_sums_per_link_and_keeps_bots_apart() {
        let drained = [
            (click(1, "https://a.example/", "curl/8"), 2),
            (click(1, "https://b.example/", "curl/8"), 1),
            (click(1, "https://a.example/", "Firefox/120"), 3),
            (click(1, "https://chat.example/", "Slackbot 1.0"), 4),
            (click(1, "", "Googlebot/2.1"), 5),
            (click(2, "https://a.example/", "curl/8"), 7),
        ];
        let mut links = aggregate(drained).links;
        links.sort_by_key(|l| l.link_id);
        let one = &links[0];
        assert_eq!(one.total, 6, "bots are not in the total");
        assert_eq!(one.days, [(20_782, 6)]);
        assert_eq!(named(&one.referrers, "a.example"), Some(5));
        assert_eq!(named(&one.referrers, "chat.example"), None);
        assert_eq!(named(&one.agents, "preview"), Some(4));
        assert_eq!(named(&one.agents, "bot"), Some(5));
        assert_eq!(named(&one.agents, "curl"), Some(3));
        assert_eq!(links[1].total, 7);
    }

    #[test]
    fn a_batch_keeps_the_top_hosts_and_folds_the_rest() {
        // 100k distinct hosts on one link, plus two that matter.
        let mut drained: Vec<(Click, u64)> = (0..100_000)
            .map(|i| {
                (
                    click(1, &format!("https://s{i}.spam.example/"), "curl/8"),
                    1,
                )
            })
            .collect();
        drained.push((click(1, "https://news.example/", "curl/8"), 500));
        drained.push((click(1, "https://blog.example/", "curl/8"), 300));
        let started = Instant::now();
        let batch = aggregate(drained);
        // Linear, not quadratic: the quadratic sum took seconds on this.
        assert!(started.elapsed().as_secs() < 2, "{:?}", started.elapsed());
        let link = &batch.links[0];
        assert_eq!(link.total, 100_800);
        assert_eq!(link.referrers.len(), REFERRERS_PER_INTERVAL);
        assert_eq!(named(&link.referrers, "news.example"), Some(500));
        assert_eq!(named(&link.referrers, "blog.example"), Some(300));
        let kept_spam = REFERRERS_PER_INTERVAL as u64 - 3;
        assert_eq!(
            named(&link.referrers, OTHER_HOST),
            Some(100_000 - kept_spam)
        );
        assert_eq!(batch.folded, 100_000 - kept_spam);
        assert_eq!(link.referrers.iter().map(|(_, n)| n).sum::<u64>(), 100_800);
    }

    #[test]
    fn few_hosts_are_kept_as_they_are() {
        let rows = vec![("a".to_owned(), 1), (OTHER_HOST.to_owned(), 2)];
        assert_eq!(cap_referrers(rows.clone(), 2), (rows, 0));
        let (capped, folded) = cap_referrers(
            vec![("a".into(), 1), ("b".into(), 3), (OTHER_HOST.into(), 2)],
            2,
        );
        assert_eq!(capped, [("b".to_owned(), 3), (OTHER_HOST.to_owned(), 3)]);
        assert_eq!(folded, 1);
    }

    #[test]
    fn stored_rows_stop_at_the_cap_and_known_hosts_keep_theirs() {
        let batch = vec![
            ("known.example".to_owned(), 1),
            ("big.example".to_owned(), 9),
            ("small.example".to_owned(), 2),
            (OTHER_HOST.to_owned(), 4),
        ];
        let known = |host: &str| Ok::<_, ()>(host == "known.example");
        // Room for every new host.
        let fitted = fit_stored_referrers(&batch, 0, known).unwrap();
        assert_eq!(named(&fitted, "big.example"), Some(9));
        assert_eq!(named(&fitted, "small.example"), Some(2));
        assert_eq!(named(&fitted, OTHER_HOST), Some(4));
        // Room for one: the bigger new host takes it.
        let fitted = fit_stored_referrers(&batch, REFERRER_ROWS_PER_LINK - 2, known).unwrap();
        assert_eq!(named(&fitted, "big.example"), Some(9));
        assert_eq!(named(&fitted, "small.example"), None);
        assert_eq!(named(&fitted, "known.example"), Some(1));
        assert_eq!(named(&fitted, OTHER_HOST), Some(6));
        // Full: only known hosts keep their name.
        let fitted = fit_stored_referrers(&batch, REFERRER_ROWS_PER_LINK - 1, known).unwrap();
        assert_eq!(
            fitted,
            [("known.example".to_owned(), 1), (OTHER_HOST.to_owned(), 15)]
        );
        assert_eq!(
            fit_stored_referrers(&batch, 0, |_| Err("down")),
            Err("down")
        );
    }
}
