use super::*;
use std::collections::HashSet;
use std::sync::Arc;

fn temp_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/nested/shortener.db");
    let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
    (dir, store)
}

fn plain(url: &str) -> NewLink {
    NewLink {
        url: url.into(),
        ..NewLink::default()
    }
}

fn custom(url: &str, slug: &str) -> NewLink {
    NewLink {
        url: url.into(),
        slug: Some(slug.into()),
        ..NewLink::default()
    }
}

/// Rows in a stats table, read through the writer connection.
fn rows_in(store: &SqliteStore, table: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM {table}");
    store
        .writer
        .lock()
        .query_row(&sql, [], |row| row.get(0))
        .unwrap()
}

#[test]
fn open_creates_the_directory_and_sets_wal_and_pragmas() {
    let (dir, store) = temp_store();
    assert!(dir.path().join("data/nested/shortener.db").exists());
    let conn = store.writer.lock();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let sync: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    let fk: i64 = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!((mode.as_str(), sync, fk), ("wal", 1, 1));
    assert_eq!(version, MIGRATIONS.len() as i64);
    drop(conn);
    store.ping().unwrap();
}

#[test]
fn open_refuses_memory_and_a_newer_schema() {
    assert!(matches!(
        SqliteStore::open(":memory:"),
        Err(StoreError::Failed(_))
    ));
    assert!(matches!(SqliteStore::open(""), Err(StoreError::Failed(_))));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let path = path.to_str().unwrap();
    drop(SqliteStore::open(path).unwrap());
    Connection::open(path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    assert!(matches!(SqliteStore::open(path), Err(StoreError::Failed(m)) if m.contains("newer")));
}

#[test]
fn data_survives_a_restart_and_migrations_are_not_reapplied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let path = path.to_str().unwrap();
    let first = SqliteStore::open(path)
        .unwrap()
        .create(&custom("https://a.example/", "keep"))
        .unwrap();
    let store = SqliteStore::open(path).unwrap();
    assert_eq!(store.get("keep").unwrap(), Some(first.link.clone()));
    let version: i64 = store
        .writer
        .lock()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, MIGRATIONS.len() as i64);
    // Ids keep counting after the restart.
    assert!(store.create(&plain("https://b.example/")).unwrap().link.id > first.link.id);
}

#[test]
fn plain_creates_return_the_newest_live_plain_link() {
    let (_dir, store) = temp_store();
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

#[test]
fn the_plain_lookup_uses_the_partial_index() {
    let (_dir, store) = temp_store();
    let conn = store.writer.lock();
    let sql = select_links!(
        "WHERE url = ?1 AND custom_slug = 0 AND expires_at IS NULL ",
        "AND max_clicks IS NULL AND password_hash IS NULL AND disabled = 0 ",
        "ORDER BY id DESC LIMIT 1"
    );
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let plan: Vec<String> = stmt
        .query_map(["x"], |r| r.get(3))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        plan.iter().any(|step| step.contains("links_plain_url")),
        "{plan:?}"
    );
}

#[test]
fn custom_slugs_are_unique_against_custom_and_generated_ones() {
    let (_dir, store) = temp_store();
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

#[test]
fn create_keeps_every_field_and_a_given_creation_time() {
    let (_dir, store) = temp_store();
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

#[test]
fn create_many_reports_per_item_and_dedups_within_the_batch() {
    let (_dir, store) = temp_store();
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

#[test]
fn create_many_writes_nothing_when_the_call_fails() {
    let (_dir, store) = temp_store();
    // A failure on the third item, from inside SQLite.
    store
        .writer
        .lock()
        .execute_batch(
            "CREATE TEMP TRIGGER fail BEFORE INSERT ON links WHEN NEW.url = 'https://fail.example/' \
             BEGIN SELECT RAISE(ABORT, 'boom'); END;",
        )
        .unwrap();
    let batch = [
        custom("https://a.example/", "aaa"),
        plain("https://b.example/"),
        plain("https://fail.example/"),
    ];
    assert!(matches!(store.create_many(&batch), Err(StoreError::Failed(m)) if m.contains("boom")));
    assert_eq!(store.get("aaa").unwrap(), None);
    assert!(store.list(10, None).unwrap().links.is_empty());
    let too_many = vec![plain("https://a.example/"); MAX_BATCH + 1];
    assert!(matches!(
        store.create_many(&too_many),
        Err(StoreError::Failed(_))
    ));
    assert!(store.create_many(&[]).unwrap().is_empty());
}

#[test]
fn update_applies_the_patch_and_clears_with_some_none() {
    let (_dir, store) = temp_store();
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

fn clicks(link_id: i64, day: i32, referrer: &str, agent: &str, n: u64) -> LinkClicks {
    LinkClicks {
        link_id,
        total: n,
        days: vec![(day, n)],
        referrers: vec![(referrer.into(), n)],
        agents: vec![(agent.into(), n)],
    }
}

#[test]
fn stats_add_up_sorted_and_capped() {
    let (_dir, store) = temp_store();
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

#[test]
fn counts_saturate_instead_of_overflowing() {
    let (_dir, store) = temp_store();
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
}

#[test]
fn delete_removes_the_link_and_its_stats_and_ids_are_not_reused() {
    let (_dir, store) = temp_store();
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
        assert_eq!(rows_in(&store, table), 1, "{table}");
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

#[test]
fn list_pages_newest_first_without_gaps_or_duplicates() {
    let (_dir, store) = temp_store();
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

#[test]
fn for_each_streams_oldest_first_and_stops_at_the_first_error() {
    let (_dir, store) = temp_store();
    for n in 0..5 {
        store
            .create(&custom("https://a.example/", &format!("each{n}")))
            .unwrap();
    }
    let mut slugs = Vec::new();
    store
        .for_each(&mut |link| {
            slugs.push(link.slug.clone());
            Ok(())
        })
        .unwrap();
    assert_eq!(slugs, ["each0", "each1", "each2", "each3", "each4"]);
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
}

#[test]
fn concurrent_creates_get_distinct_ids_and_slugs() {
    let (_dir, store) = temp_store();
    let store = Arc::new(store);
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
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
    let all: Vec<(i64, String)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
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
    assert!(store.readers.lock().open <= MAX_READERS);
}

#[test]
fn reads_do_not_wait_for_the_writer() {
    let (_dir, store) = temp_store();
    store.create(&custom("https://a.example/", "read")).unwrap();
    let _writing = store.writer.lock();
    assert!(store.get("read").unwrap().is_some());
    store.ping().unwrap();
}

#[test]
fn a_lock_held_by_another_process_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
    store
        .writer
        .lock()
        .busy_timeout(Duration::from_millis(20))
        .unwrap();
    let other = Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert!(matches!(
        store.create(&plain("https://a.example/")),
        Err(StoreError::Unavailable(_))
    ));
    other.execute_batch("ROLLBACK").unwrap();
    store.create(&plain("https://a.example/")).unwrap();
}

#[test]
fn concurrent_plain_creates_of_one_url_share_one_link() {
    let (_dir, store) = temp_store();
    let store = Arc::new(store);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || store.create(&plain("https://same.example/")).unwrap())
        })
        .collect();
    let created: Vec<Created> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(created.iter().filter(|c| !c.existed).count(), 1);
    assert!(created.iter().all(|c| c.link.id == created[0].link.id));
}

#[test]
fn a_read_waits_for_a_connection_when_all_are_lent() {
    let (_dir, store) = temp_store();
    store.create(&custom("https://a.example/", "wait")).unwrap();
    let lent: Vec<Connection> = (0..MAX_READERS)
        .map(|_| store.checkout().unwrap())
        .collect();
    std::thread::scope(|s| {
        let reader = s.spawn(|| store.get("wait"));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!reader.is_finished());
        for conn in lent {
            drop(Lease {
                store: &store,
                conn: Some(conn),
            });
        }
        assert!(reader.join().unwrap().unwrap().is_some());
    });
    assert_eq!(store.readers.lock().open, MAX_READERS);
}

#[test]
fn a_retried_click_batch_counts_once() {
    let (_dir, store) = temp_store();
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
