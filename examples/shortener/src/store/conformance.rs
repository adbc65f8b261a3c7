//! What every [`Store`] must do, as tests each implementation runs on a
//! fresh, empty store of its own (see `sqlite/tests.rs` and
//! `postgres/tests.rs`, which also hold the tests of what only one of them
//! has: files, pools, the change feed).
//!
//! Each function is one test; [`all_conformance_tests!`] turns them into
//! `#[test]`s given a function making a [`Harness`] per test.

use super::{Store, StoreError, MAX_BATCH};
use crate::clicks::{OTHER_HOST, REFERRER_ROWS_PER_LINK};
use crate::model::{Created, LinkClicks, LinkPatch, LinkStats, NewLink, Page, TOP_N};
use std::collections::HashSet;

/// A fresh, empty store for one test, and what a test needs to look past
/// the trait.
pub(crate) trait Harness {
    fn store(&self) -> &dyn Store;
    /// Rows in one of the store's tables.
    fn rows_in(&self, table: &str) -> i64;
}

/// Declares one `#[test]` per conformance function, each on the harness
/// `$make()` returns; `None` skips the test (the store is not available
/// here, and `$make` said so).
macro_rules! all_conformance_tests {
    ($make:path) => {
        $crate::store::conformance::all_conformance_tests!(
            $make;
            plain_creates_return_the_newest_live_plain_link,
            custom_slugs_are_unique_against_custom_and_generated_ones,
            create_keeps_every_field_and_a_given_creation_time,
            create_many_reports_per_item_and_dedups_within_the_batch,
            create_many_refuses_too_many_and_takes_none,
            update_applies_the_patch_and_clears_with_some_none,
            stats_add_up_sorted_and_capped,
            counts_saturate_instead_of_overflowing,
            delete_removes_the_link_and_its_stats_and_ids_are_not_reused,
            list_pages_newest_first_without_gaps_or_duplicates,
            for_each_streams_oldest_first_and_stops_at_the_first_error,
            concurrent_creates_get_distinct_ids_and_slugs,
            concurrent_plain_creates_of_one_url_share_one_link,
            a_retried_click_batch_counts_once,
            a_click_batch_names_links_in_any_order,
            referrer_rows_per_link_are_capped,
        );
    };
    ($make:path; $($name:ident),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                use $crate::store::conformance::Harness as _;
                let Some(harness) = $make() else { return };
                $crate::store::conformance::$name(harness.store(), &|table| {
                    harness.rows_in(table)
                });
            }
        )+
    };
}
pub(crate) use all_conformance_tests;

/// Counts the rows of a table of the store under test.
pub(crate) type RowsIn<'a> = &'a dyn Fn(&str) -> i64;

pub(crate) fn plain(url: &str) -> NewLink {
    NewLink {
        url: url.into(),
        ..NewLink::default()
    }
}

pub(crate) fn custom(url: &str, slug: &str) -> NewLink {
    NewLink {
        url: url.into(),
        slug: Some(slug.into()),
        ..NewLink::default()
    }
}

pub(crate) fn clicks(link_id: i64, day: i32, referrer: &str, agent: &str, n: u64) -> LinkClicks {
    LinkClicks {
        link_id,
        total: n,
        days: vec![(day, n)],
        referrers: vec![(referrer.into(), n)],
        agents: vec![(agent.into(), n)],
    }
}

pub(crate) fn plain_creates_return_the_newest_live_plain_link(store: &dyn Store, _: RowsIn<'_>) {
    let first = store.create(&plain("https://a.example/")).unwrap();
    assert!(!first.existed);
    assert_eq!(first.link.slug.len(), crate::slug::GENERATED_LEN);
    let again = store.create(&plain("https://a.example/")).unwrap();
    assert_eq!((again.existed, again.link.id), (true, first.link.id));

    // Links with options are neither returned nor de-duplicated.
    let timed = NewLink {
        expires_at: Some(i64::MAX),
        ..plain("https://b.example/")
    };
    let timed = store.create(&timed).unwrap();
    assert!(!timed.existed);
    assert!(!store.create(&plain("https://b.example/")).unwrap().existed);
    assert!(
        !store
            .create(&custom("https://a.example/", "mine"))
            .unwrap()
            .existed
    );
    assert_eq!(
        store.create(&plain("https://a.example/")).unwrap().link.id,
        first.link.id
    );

    // A disabled plain link is not handed out again.
    store
        .update(
            &first.link.slug,
            &LinkPatch {
                disabled: Some(true),
                ..LinkPatch::default()
            },
        )
        .unwrap();
    let fresh = store.create(&plain("https://a.example/")).unwrap();
    assert!(!fresh.existed);
    assert_ne!(fresh.link.id, first.link.id);
}

pub(crate) fn custom_slugs_are_unique_against_custom_and_generated_ones(
    store: &dyn Store,
    _: RowsIn<'_>,
) {
    store
        .create(&custom("https://a.example/", "taken"))
        .unwrap();
    assert!(matches!(
        store.create(&custom("https://b.example/", "taken")),
        Err(StoreError::SlugTaken)
    ));
    let generated = store
        .create(&plain("https://c.example/"))
        .unwrap()
        .link
        .slug;
    assert!(matches!(
        store.create(&custom("https://d.example/", &generated)),
        Err(StoreError::SlugTaken)
    ));
    assert_eq!(
        store.get("taken").unwrap().unwrap().url,
        "https://a.example/"
    );
}

pub(crate) fn create_keeps_every_field_and_a_given_creation_time(store: &dyn Store, _: RowsIn<'_>) {
    let new = NewLink {
        url: "https://a.example/x".into(),
        slug: Some("full".into()),
        expires_at: Some(2_000_000_000),
        max_clicks: Some(u64::MAX),
        password_hash: Some("$argon2id$v=19$...".into()),
        created_at: Some(1_000),
        disabled: true,
        clicks: 42,
    };
    let created = store.create(&new).unwrap().link;
    assert_eq!(created.created_at, 1_000);
    assert!(created.disabled);
    assert_eq!(created.clicks, 42);
    assert_eq!(created.max_clicks, Some(i64::MAX as u64));
    assert_eq!(store.get("full").unwrap(), Some(created));
    assert_eq!(store.get("nope").unwrap(), None);
}

pub(crate) fn create_many_reports_per_item_and_dedups_within_the_batch(
    store: &dyn Store,
    _: RowsIn<'_>,
) {
    store
        .create(&custom("https://old.example/", "old"))
        .unwrap();
    let batch = [
        custom("https://a.example/", "one"),
        custom("https://b.example/", "old"),
        custom("https://c.example/", "one"),
        plain("https://p.example/"),
        plain("https://p.example/"),
    ];
    let results = store.create_many(&batch).unwrap();
    assert_eq!(results.len(), 5);
    assert!(matches!(&results[0], Ok(c) if !c.existed && c.link.slug == "one"));
    assert!(matches!(results[1], Err(StoreError::SlugTaken)));
    assert!(matches!(results[2], Err(StoreError::SlugTaken)));
    let (Ok(p1), Ok(p2)) = (&results[3], &results[4]) else {
        panic!("{results:?}")
    };
    assert_eq!(
        (p1.existed, p2.existed, p1.link.id),
        (false, true, p2.link.id)
    );
    assert_eq!(store.get("one").unwrap().unwrap().url, "https://a.example/");
    assert_eq!(store.list(100, None).unwrap().links.len(), 3);
}

pub(crate) fn create_many_refuses_too_many_and_takes_none(store: &dyn Store, _: RowsIn<'_>) {
    let too_many = vec![plain("https://a.example/"); MAX_BATCH + 1];
    assert!(matches!(
        store.create_many(&too_many),
        Err(StoreError::Failed(_))
    ));
    assert!(store.list(10, None).unwrap().links.is_empty());
    assert!(store.create_many(&[]).unwrap().is_empty());
    let most = vec![plain("https://a.example/"); MAX_BATCH];
    let results = store.create_many(&most).unwrap();
    assert_eq!(results.len(), MAX_BATCH);
    assert_eq!(
        results
            .iter()
            .filter(|r| matches!(r, Ok(c) if !c.existed))
            .count(),
        1
    );
}

pub(crate) fn update_applies_the_patch_and_clears_with_some_none(store: &dyn Store, _: RowsIn<'_>) {
    let new = NewLink {
        expires_at: Some(5),
        max_clicks: Some(3),
        ..custom("https://a.example/", "upd")
    };
    store.create(&new).unwrap();
    let patch = LinkPatch {
        url: Some("https://b.example/".into()),
        disabled: Some(true),
        password_hash: Some(Some("hash".into())),
        ..LinkPatch::default()
    };
    let link = store.update("upd", &patch).unwrap();
    assert_eq!(
        (link.url.as_str(), link.disabled, link.expires_at),
        ("https://b.example/", true, Some(5))
    );
    assert_eq!(link.password_hash.as_deref(), Some("hash"));
    let clear = LinkPatch {
        expires_at: Some(None),
        max_clicks: Some(None),
        password_hash: Some(None),
        ..LinkPatch::default()
    };
    let link = store.update("upd", &clear).unwrap();
    assert_eq!(
        (link.expires_at, link.max_clicks, link.password_hash.clone()),
        (None, None, None)
    );
    assert_eq!(store.get("upd").unwrap(), Some(link));
    assert!(matches!(
        store.update("nope", &clear),
        Err(StoreError::NotFound)
    ));
}

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

pub(crate) fn delete_removes_the_link_and_its_stats_and_ids_are_not_reused(
    store: &dyn Store,
    rows_in: RowsIn<'_>,
) {
    let keep = store
        .create(&custom("https://k.example/", "keep"))
        .unwrap()
        .link
        .id;
    let gone = store
        .create(&custom("https://a.example/", "gone"))
        .unwrap()
        .link
        .id;
    store
        .record_clicks(
            "b5",
            &[clicks(gone, 1, "r", "a", 1), clicks(keep, 1, "r", "a", 1)],
        )
        .unwrap();
    store.delete("gone").unwrap();
    assert!(matches!(store.delete("gone"), Err(StoreError::NotFound)));
    assert_eq!(store.get("gone").unwrap(), None);
    assert_eq!(store.stats("gone").unwrap(), None);
    for table in ["link_days", "link_referrers", "link_agents"] {
        assert_eq!(rows_in(table), 1, "{table}");
    }
    // The newest id was deleted; the next link still gets a fresh one, and
    // clicks counted for the old id do not reach it.
    let again = store
        .create(&custom("https://a.example/", "gone"))
        .unwrap()
        .link;
    assert!(again.id > gone);
    store
        .record_clicks("b6", &[clicks(gone, 1, "r", "a", 1)])
        .unwrap();
    assert_eq!(store.stats("gone").unwrap().unwrap().total, 0);
}

pub(crate) fn list_pages_newest_first_without_gaps_or_duplicates(store: &dyn Store, _: RowsIn<'_>) {
    for n in 0..21 {
        store
            .create(&custom("https://a.example/", &format!("link{n:02}")))
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut before = None;
    let mut pages = 0;
    loop {
        let page = store.list(7, before).unwrap();
        pages += 1;
        seen.extend(page.links.iter().map(|l| l.id));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3, "an exact multiple ends without an empty page");
    assert_eq!(seen.len(), 21);
    assert!(seen.windows(2).all(|w| w[0] > w[1]));
    assert_eq!(
        store.list(0, None).unwrap(),
        Page {
            links: Vec::new(),
            next: None
        }
    );
    assert_eq!(store.list(5, Some(i64::MIN)).unwrap().links.len(), 0);
    assert_eq!(store.list(usize::MAX, None).unwrap().links.len(), 21);
}

pub(crate) fn for_each_streams_oldest_first_and_stops_at_the_first_error(
    store: &dyn Store,
    _: RowsIn<'_>,
) {
    // More links than one fetch of a streaming store.
    let batch: Vec<NewLink> = (0..600)
        .map(|n| custom("https://a.example/", &format!("each{n:03}")))
        .collect();
    assert!(store.create_many(&batch).unwrap().iter().all(Result::is_ok));
    let mut slugs = Vec::new();
    store
        .for_each(&mut |link| {
            slugs.push(link.slug.clone());
            Ok(())
        })
        .unwrap();
    let expected: Vec<String> = (0..600).map(|n| format!("each{n:03}")).collect();
    assert_eq!(slugs, expected);
    let mut calls = 0;
    let result = store.for_each(&mut |_| {
        calls += 1;
        if calls == 2 {
            Err(StoreError::Failed("stop".into()))
        } else {
            Ok(())
        }
    });
    assert!(matches!(result, Err(StoreError::Failed(m)) if m == "stop"));
    assert_eq!(calls, 2);
    // The store is still usable after an export stopped halfway.
    store.ping().unwrap();
}

pub(crate) fn concurrent_creates_get_distinct_ids_and_slugs(store: &dyn Store, _: RowsIn<'_>) {
    let all: Vec<(i64, String)> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..16)
            .map(|t| {
                s.spawn(move || {
                    (0..40)
                        .map(|i| {
                            let link = store
                                .create(&plain(&format!("https://t{t}.example/{i}")))
                                .unwrap()
                                .link;
                            // Reads run alongside the writes.
                            assert_eq!(store.get(&link.slug).unwrap().unwrap().id, link.id);
                            (link.id, link.slug)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    });
    assert_eq!(
        all.iter().map(|(id, _)| id).collect::<HashSet<_>>().len(),
        640
    );
    assert_eq!(
        all.iter()
            .map(|(_, slug)| slug)
            .collect::<HashSet<_>>()
            .len(),
        640
    );
}

pub(crate) fn concurrent_plain_creates_of_one_url_share_one_link(store: &dyn Store, _: RowsIn<'_>) {
    let created: Vec<Created> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..8)
            .map(|_| s.spawn(|| store.create(&plain("https://same.example/")).unwrap()))
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(created.iter().filter(|c| !c.existed).count(), 1);
    assert!(created.iter().all(|c| c.link.id == created[0].link.id));
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
