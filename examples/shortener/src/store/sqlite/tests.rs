//! Tests of what only the SQLite store has (a file, WAL, a writer and a
//! pool of readers), and the store conformance tests on a fresh file each.

use super::pool::{Lease, MAX_READERS};
use super::schema::MIGRATIONS;
use super::*;
use crate::store::conformance::{self, all_conformance_tests, custom, plain, Harness};
use crate::store::conformance::{assert_flood_folded, flood_referrers_sql};
use std::time::Duration;

fn temp_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/nested/shortener.db");
    let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
    (dir, store)
}

/// A store in a temporary directory, removed with it.
struct TempStore {
    _dir: tempfile::TempDir,
    store: SqliteStore,
}

impl Harness for TempStore {
    fn store(&self) -> &dyn Store {
        &self.store
    }

    fn rows_in(&self, table: &str) -> i64 {
        rows_in(&self.store, table)
    }
}

fn harness() -> Option<TempStore> {
    let (_dir, store) = temp_store();
    Some(TempStore { _dir, store })
}

all_conformance_tests!(harness);

/// Rows in a table, read through the writer connection.
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
fn concurrent_work_opens_at_most_max_readers() {
    let (_dir, store) = temp_store();
    conformance::concurrent_creates_get_distinct_ids_and_slugs(&store, &|t| rows_in(&store, t));
    assert!(store.readers.lock().open <= MAX_READERS);
}

#[test]
fn the_referrer_cap_migration_folds_the_rows_past_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let path = path.to_str().unwrap();
    let id = SqliteStore::open(path)
        .unwrap()
        .create(&custom("https://a.example/", "flooded"))
        .unwrap()
        .link
        .id;
    // The file as the spam and the version before the cap left it.
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(&flood_referrers_sql(id)).unwrap();
    conn.pragma_update(None, "user_version", 2).unwrap();
    drop(conn);
    let store = SqliteStore::open(path).unwrap();
    assert_flood_folded(&store, &|table| rows_in(&store, table), "flooded");
}
