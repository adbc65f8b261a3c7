//! Conformance tests of the links themselves: create (plain and custom
//! slugs, batches), get, update, delete, list, export, and creates racing.

use super::{clicks, custom, plain, RowsIn};
use crate::model::{Created, LinkPatch, NewLink, Page};
use crate::store::{Store, StoreError, MAX_BATCH};
use std::collections::HashSet;

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
