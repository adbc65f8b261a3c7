//! Conformance tests of clicks: recorded batches, the stats they add up
//! to, retried and racing batches, and the cap on referrer rows.

use super::{clicks, custom, RowsIn};
use crate::clicks::{OTHER_HOST, REFERRER_ROWS_PER_LINK};
use crate::model::{LinkClicks, LinkStats, TOP_N};
use crate::store::Store;

pub(crate) fn stats_add_up_sorted_and_capped(store: &dyn Store, _: RowsIn<'_>) {
    let id = store
        .create(&custom("https://a.example/", "st"))
        .unwrap()
        .link
        .id;
    assert_eq!(store.stats("st").unwrap(), Some(LinkStats::default()));
    let mut batch = vec![
        clicks(id, 20_001, "b.example", "Firefox", 2),
        clicks(id, 20_000, "a.example", "Chrome", 2),
    ];
    batch.extend((0..12).map(|i| clicks(id, 20_001, &format!("r{i:02}.example"), "Chrome", 1)));
    store.record_clicks("b1", &batch).unwrap();
    store
        .record_clicks(
            "b2",
            &[
                clicks(id, 20_000, "", "Safari", 3),
                clicks(9_999, 1, "x", "y", 5),
            ],
        )
        .unwrap();

    let stats = store.stats("st").unwrap().unwrap();
    assert_eq!(stats.total, 2 + 2 + 12 + 3);
    assert_eq!(store.get("st").unwrap().unwrap().clicks, 19);
    let days: Vec<_> = stats
        .days
        .iter()
        .map(|d| (d.day.as_str(), d.clicks))
        .collect();
    assert_eq!(days, [("2024-10-04", 5), ("2024-10-05", 14)]);
    let names: Vec<_> = stats
        .referrers
        .iter()
        .map(|r| (r.name.as_str(), r.clicks))
        .collect();
    assert_eq!(names.len(), TOP_N);
    assert_eq!(
        &names[..4],
        [
            ("", 3),
            ("a.example", 2),
            ("b.example", 2),
            ("r00.example", 1)
        ]
    );
    let agents: Vec<_> = stats
        .agents
        .iter()
        .map(|a| (a.name.as_str(), a.clicks))
        .collect();
    assert_eq!(agents, [("Chrome", 14), ("Safari", 3), ("Firefox", 2)]);
    assert_eq!(store.stats("nope").unwrap(), None);
}

pub(crate) fn counts_saturate_instead_of_overflowing(store: &dyn Store, _: RowsIn<'_>) {
    let id = store
        .create(&custom("https://a.example/", "big"))
        .unwrap()
        .link
        .id;
    store
        .record_clicks("b3", &[clicks(id, 1, "r", "a", u64::MAX)])
        .unwrap();
    store
        .record_clicks("b4", &[clicks(id, 1, "r", "a", 7)])
        .unwrap();
    let stats = store.stats("big").unwrap().unwrap();
    assert_eq!(stats.total, i64::MAX as u64);
    assert_eq!(stats.days[0].clicks, i64::MAX as u64);
    assert_eq!(stats.referrers[0].clicks, i64::MAX as u64);
}

pub(crate) fn a_retried_click_batch_counts_once(store: &dyn Store, _: RowsIn<'_>) {
    let id = store
        .create(&custom("https://a.example/", "once"))
        .unwrap()
        .link
        .id;
    let batch = [clicks(id, 20_000, "r.example", "Chrome", 4)];
    store.record_clicks("inst-1", &batch).unwrap();
    // The same batch again, as after a lost acknowledgement: skipped.
    store.record_clicks("inst-1", &batch).unwrap();
    store.record_clicks("inst-2", &batch).unwrap();
    let stats = store.stats("once").unwrap().unwrap();
    assert_eq!(stats.total, 8);
    assert_eq!(stats.days[0].clicks, 8);
    assert_eq!(stats.referrers[0].clicks, 8);
}

/// Two flushers writing the same links in opposite orders at once: both
/// land, nothing is counted twice or lost, and neither deadlocks.
pub(crate) fn a_click_batch_names_links_in_any_order(store: &dyn Store, _: RowsIn<'_>) {
    let ids: Vec<i64> = (0..20)
        .map(|n| {
            store
                .create(&custom("https://a.example/", &format!("order{n:02}")))
                .unwrap()
                .link
                .id
        })
        .collect();
    std::thread::scope(|s| {
        for t in 0..4 {
            let ids = &ids;
            s.spawn(move || {
                for round in 0..10 {
                    let mut batch: Vec<LinkClicks> =
                        ids.iter().map(|id| clicks(*id, 1, "r", "a", 1)).collect();
                    if (t + round) % 2 == 1 {
                        batch.reverse();
                    }
                    // The same link twice in one batch adds up too.
                    batch.push(clicks(ids[0], 1, "r", "a", 1));
                    store
                        .record_clicks(&format!("order-{t}-{round}"), &batch)
                        .unwrap();
                }
            });
        }
    });
    for (n, id) in ids.iter().enumerate() {
        let link = store.get(&format!("order{n:02}")).unwrap().unwrap();
        assert_eq!(link.id, *id);
        let expected = if n == 0 { 80 } else { 40 };
        assert_eq!(link.clicks, expected, "order{n:02}");
        let stats = store.stats(&link.slug).unwrap().unwrap();
        assert_eq!(
            (stats.days[0].clicks, stats.agents[0].clicks),
            (expected, expected)
        );
    }
}

/// `Referer` spam over many batches from two flushers at once: the link
/// keeps at most [`REFERRER_ROWS_PER_LINK`] referrer rows, `(other)`
/// included, which counts the rest; no click is lost, a host it already
/// has keeps counting, and another link is not held to its cap.
pub(crate) fn referrer_rows_per_link_are_capped(store: &dyn Store, rows_in: RowsIn<'_>) {
    let id = store
        .create(&custom("https://a.example/", "cap"))
        .unwrap()
        .link
        .id;
    let fresh = store
        .create(&custom("https://b.example/", "fresh"))
        .unwrap()
        .link
        .id;
    store
        .record_clicks("first", &[clicks(id, 1, "news.example", "a", 1)])
        .unwrap();
    std::thread::scope(|s| {
        for t in 0..2 {
            s.spawn(move || {
                for round in 0..5 {
                    let batch: Vec<LinkClicks> = (0..50)
                        .map(|i| clicks(id, 1, &format!("s{t}-{round}-{i}.example"), "a", 1))
                        .collect();
                    store
                        .record_clicks(&format!("spam-{t}-{round}"), &batch)
                        .unwrap();
                }
            });
        }
    });
    store
        .record_clicks(
            "last",
            &[
                clicks(id, 1, "news.example", "a", 5),
                clicks(fresh, 1, "fresh.example", "a", 1),
            ],
        )
        .unwrap();
    assert_eq!(rows_in("link_referrers"), REFERRER_ROWS_PER_LINK as i64 + 1);
    let stats = store.stats("cap").unwrap().unwrap();
    assert_eq!(stats.total, 506);
    let top: Vec<_> = stats
        .referrers
        .iter()
        .take(2)
        .map(|r| (r.name.as_str(), r.clicks))
        .collect();
    // News and all but one row's worth of spam hosts have rows.
    let folded = 500 - (REFERRER_ROWS_PER_LINK as u64 - 2);
    assert_eq!(top, [(OTHER_HOST, folded), ("news.example", 6)]);
    let fresh = store.stats("fresh").unwrap().unwrap();
    assert_eq!(fresh.referrers[0].name, "fresh.example");
}

/// SQL (for either store) flooding link `id` with referrer rows as spam
/// left them before the cap: 300 hosts of one click, `big.example` with
/// 1000, and `(other)` with 5. See [`assert_flood_folded`].
pub(crate) fn flood_referrers_sql(id: i64) -> String {
    let mut rows: Vec<String> = (0..300).map(|i| format!("({id}, 'h{i:03}', 1)")).collect();
    rows.push(format!("({id}, 'big.example', 1000)"));
    rows.push(format!("({id}, '{OTHER_HOST}', 5)"));
    format!(
        "INSERT INTO link_referrers (link_id, host, count) VALUES {}",
        rows.join(", ")
    )
}

/// After the referrer cap migration ran on the rows of
/// [`flood_referrers_sql`] for `slug`: [`REFERRER_ROWS_PER_LINK`] rows, the
/// biggest host kept, the rest summed into `(other)`, no click lost.
pub(crate) fn assert_flood_folded(store: &dyn Store, rows_in: RowsIn<'_>, slug: &str) {
    let rows = REFERRER_ROWS_PER_LINK as i64;
    assert_eq!(rows_in("link_referrers"), rows);
    let stats = store.stats(slug).unwrap().unwrap();
    let top: Vec<_> = stats
        .referrers
        .iter()
        .take(2)
        .map(|r| (r.name.as_str(), r.clicks))
        .collect();
    // 301 named rows, 199 kept: 102 hosts of one click folded.
    let folded = 300 - (rows as u64 - 2);
    assert_eq!(top, [("big.example", 1000), (OTHER_HOST, 5 + folded)]);
}
