//! Tests of the PostgreSQL store, against the server named by the
//! `SHORTENER_TEST_PG` environment variable (`scripts/pg.sh start DIR PORT`
//! prints one). Each test works in a schema of its own, dropped at its end,
//! so they run in parallel on one database. Without the variable they say
//! they were skipped and pass.

use super::links::url_lock_key;
use super::schema::MIGRATIONS;
use super::*;
use crate::store::conformance::{all_conformance_tests, custom, plain, Harness};
use crate::store::conformance::{assert_flood_folded, flood_referrers_sql};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use postgres::{Client, NoTls};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Barrier;
use std::time::Instant;

const ENV: &str = "SHORTENER_TEST_PG";

/// A schema of its own in the test database, dropped with this.
struct TestDb {
    base: String,
    schema: String,
}

fn test_db() -> Option<TestDb> {
    let Ok(base) = std::env::var(ENV) else {
        eprintln!("skipped: {ENV} is not set (scripts/pg.sh start /tmp/pgtest 55432 prints a URL)");
        return None;
    };
    let schema = format!("t_{}", crate::slug::generate().to_ascii_lowercase());
    let mut admin = Client::connect(&base, NoTls).expect("cannot connect to SHORTENER_TEST_PG");
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .unwrap();
    Some(TestDb { base, schema })
}

impl TestDb {
    /// The database URL with this schema first on the search path and the
    /// schema as `application_name`, so a test can find its own backends.
    fn url(&self) -> String {
        with_schema(&self.base, &self.schema)
    }

    fn open(&self) -> PostgresStore {
        self.open_with(&PgOptions::default())
    }

    fn open_with(&self, options: &PgOptions) -> PostgresStore {
        PostgresStore::open(&self.url(), options).unwrap()
    }

    /// A connection of the test's own, outside any store, in the schema.
    fn client(&self) -> Client {
        Client::connect(&self.url(), NoTls).unwrap()
    }

    /// Backends of this test whose `application_name` is `name`.
    fn backends(&self, name: &str) -> i64 {
        let mut admin = Client::connect(&self.base, NoTls).unwrap();
        admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&name],
            )
            .unwrap()
            .get(0)
    }

    /// Ends the backends of this test whose `application_name` is `name`;
    /// how many.
    fn kill(&self, name: &str) -> i64 {
        let mut admin = Client::connect(&self.base, NoTls).unwrap();
        admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = $1",
                &[&name],
            )
            .unwrap()
            .get(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = Client::connect(&self.base, NoTls) {
            let _ = admin.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema));
        }
    }
}

fn with_schema(base: &str, schema: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-csearch_path%3D{schema}&application_name={schema}")
}

/// A store on a fresh schema, for the conformance tests.
struct PgHarness {
    store: PostgresStore,
    db: TestDb,
}

impl Harness for PgHarness {
    fn store(&self) -> &dyn Store {
        &self.store
    }

    fn rows_in(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {table}");
        self.db.client().query_one(&sql, &[]).unwrap().get(0)
    }
}

fn harness() -> Option<PgHarness> {
    let db = test_db()?;
    Some(PgHarness {
        store: db.open(),
        db,
    })
}

all_conformance_tests!(harness);

/// Feeds `store`'s change feed into a channel.
fn subscribe(store: &PostgresStore) -> Receiver<Change> {
    let (tx, rx) = crossbeam_channel::unbounded();
    store.subscribe(Box::new(move |change| {
        let _ = tx.send(change);
    }));
    rx
}

/// Waits up to `within` for `want`, skipping other changes (other tests
/// share the channel); panics when it does not come.
fn expect_change(rx: &Receiver<Change>, want: &Change, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        match rx.recv_deadline(deadline) {
            Ok(change) if change == *want => return,
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => panic!("no {want:?} within {within:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the feed ended"),
        }
    }
}

#[test]
fn url_lock_keys_are_fnv1a_and_stable() {
    // Every instance must compute the same key for a URL.
    assert_eq!(url_lock_key(""), 0x811c_9dc5_u32 as i32);
    assert_eq!(url_lock_key("a"), 0xe40c_292c_u32 as i32);
    assert_eq!(url_lock_key("foobar"), 0xbf9c_f968_u32 as i32);
}

#[test]
fn an_unreachable_server_is_unavailable_and_a_bad_url_failed() {
    // Needs no server: nothing listens on port 1.
    let options = PgOptions {
        connect_timeout: Duration::from_millis(500),
        ..PgOptions::default()
    };
    let started = Instant::now();
    assert!(matches!(
        PostgresStore::open("postgres://shortener@127.0.0.1:1/shortener", &options),
        Err(StoreError::Unavailable(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(
        PostgresStore::open("postgres://a@b:notaport/c", &options),
        Err(StoreError::Failed(_))
    ));
    assert!(matches!(
        crate::store::open("postgresql://shortener@127.0.0.1:1/shortener"),
        Err(StoreError::Unavailable(_))
    ));
}

#[test]
fn migrations_run_once_under_the_advisory_lock_from_four_threads() {
    let Some(db) = test_db() else { return };
    let url = db.url();
    let start = Barrier::new(4);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (url, start) = (&url, &start);
            s.spawn(move || {
                start.wait();
                let store = PostgresStore::open(url, &PgOptions::default()).unwrap();
                store
                    .create(&custom("https://a.example/", &format!("mig{t}")))
                    .unwrap();
            });
        }
    });
    let versions: Vec<i64> = db
        .client()
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let expected: Vec<i64> = (1..=MIGRATIONS.len() as i64).collect();
    assert_eq!(versions, expected);
    assert_eq!(db.open().list(10, None).unwrap().links.len(), 4);
}

#[test]
fn data_survives_a_reopen_and_a_newer_schema_is_refused() {
    let Some(db) = test_db() else { return };
    let first = db
        .open()
        .create(&custom("https://a.example/", "keep"))
        .unwrap();
    let store = db.open();
    assert_eq!(store.get("keep").unwrap(), Some(first.link.clone()));
    // Ids keep counting after a reopen, and after the newest is deleted.
    store.delete("keep").unwrap();
    assert!(store.create(&plain("https://b.example/")).unwrap().link.id > first.link.id);
    drop(store);
    db.client()
        .execute("INSERT INTO schema_migrations (version) VALUES (99)", &[])
        .unwrap();
    assert!(matches!(
        PostgresStore::open(&db.url(), &PgOptions::default()),
        Err(StoreError::Failed(m)) if m.contains("newer")
    ));
}

#[test]
fn the_plain_lookup_uses_the_partial_index() {
    let Some(db) = test_db() else { return };
    drop(db.open());
    let sql = select_links!(
        "WHERE url = $1 AND NOT custom_slug AND expires_at IS NULL ",
        "AND max_clicks IS NULL AND password_hash IS NULL AND NOT disabled ",
        "ORDER BY id DESC LIMIT 1"
    )
    .replace("$1", "'x'");
    let mut client = db.client();
    client.batch_execute("SET enable_seqscan = off").unwrap();
    let plan: Vec<String> = client
        .query(&format!("EXPLAIN {sql}"), &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(
        plan.iter().any(|step| step.contains("links_plain_url")),
        "{plan:?}"
    );
}

#[test]
fn create_many_writes_nothing_when_the_call_fails() {
    let Some(db) = test_db() else { return };
    let store = db.open();
    db.client()
        .batch_execute(
            "CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.url = 'https://fail.example/' THEN RAISE EXCEPTION 'boom'; END IF; \
             RETURN NEW; END $$; \
             CREATE TRIGGER fail BEFORE INSERT ON links FOR EACH ROW EXECUTE FUNCTION fail();",
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
}

#[test]
fn changes_through_another_instance_arrive_within_a_second() {
    let Some(db) = test_db() else { return };
    let (listener, writer) = (db.open(), db.open());
    let rx = subscribe(&listener);
    let slug = format!("fed{}", crate::slug::generate());
    let second = Duration::from_secs(1);
    writer.create(&custom("https://a.example/", &slug)).unwrap();
    expect_change(&rx, &Change::Link(slug.clone()), second);
    let patch = LinkPatch {
        disabled: Some(true),
        ..LinkPatch::default()
    };
    writer.update(&slug, &patch).unwrap();
    expect_change(&rx, &Change::Link(slug.clone()), second);
    writer.delete(&slug).unwrap();
    expect_change(&rx, &Change::Link(slug.clone()), second);
    let bulk = [
        plain("https://bulk.example/"),
        custom("https://b.example/", "bulk1"),
    ];
    let created = writer.create_many(&bulk).unwrap();
    let generated = created[0].as_ref().unwrap().link.slug.clone();
    expect_change(&rx, &Change::Link(generated), second);
    expect_change(&rx, &Change::Link(String::from("bulk1")), second);
}

#[test]
fn the_feed_reports_lost_and_connected_when_its_backend_is_killed() {
    let Some(db) = test_db() else { return };
    let store = db.open();
    let rx = subscribe(&store);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(1)),
        Ok(Change::Connected)
    );
    let feed = format!("{}/changes", db.schema);
    assert_eq!(db.kill(&feed), 1);
    expect_change(&rx, &Change::Lost, Duration::from_secs(2));
    expect_change(&rx, &Change::Connected, Duration::from_secs(5));
    assert_eq!(db.backends(&feed), 1);
    store
        .create(&custom("https://a.example/", "after"))
        .unwrap();
    expect_change(
        &rx,
        &Change::Link(String::from("after")),
        Duration::from_secs(1),
    );
    // Lost and Connected came once each.
    assert!(rx
        .try_iter()
        .all(|c| !matches!(c, Change::Lost | Change::Connected)));
}

#[test]
fn the_feed_stops_with_its_store() {
    let Some(db) = test_db() else { return };
    let store = db.open();
    let _rx = subscribe(&store);
    let feed = format!("{}/changes", db.schema);
    assert_eq!(db.backends(&feed), 1);
    drop(store);
    let deadline = Instant::now() + Duration::from_secs(3);
    while db.backends(&feed) > 0 {
        assert!(Instant::now() < deadline, "the feed outlived its store");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_feed_notices_a_server_that_stops_answering() {
    let Some(db) = test_db() else { return };
    let config: Config = db.base.parse().unwrap();
    let (Some(postgres::config::Host::Tcp(host)), Some(port)) =
        (config.get_hosts().first(), config.get_ports().first())
    else {
        eprintln!("skipped: {ENV} is not a TCP address");
        return;
    };
    let proxy = Proxy::start(&format!("{host}:{port}"));
    let url = db.url().replacen(&format!("{host}:{port}"), &proxy.addr, 1);
    let store = PostgresStore::open(&url, &PgOptions::default()).unwrap();
    let rx = subscribe(&store);
    proxy.freeze(true);
    let frozen = Instant::now();
    expect_change(&rx, &Change::Lost, Duration::from_secs(6));
    let noticed = frozen.elapsed();
    eprintln!("the feed noticed the silent server after {noticed:?}");
    assert!(noticed >= Duration::from_millis(500), "{noticed:?}");
    proxy.freeze(false);
    expect_change(&rx, &Change::Connected, Duration::from_secs(10));
}

#[test]
fn a_statement_timeout_is_unavailable() {
    let Some(db) = test_db() else { return };
    let options = PgOptions {
        statement_timeout: Duration::from_millis(200),
        ..PgOptions::default()
    };
    let store = db.open_with(&options);
    let started = Instant::now();
    let slept = store.read(|db| db.execute("SELECT pg_sleep(5)", &[]));
    assert!(
        matches!(&slept, Err(StoreError::Unavailable(m)) if m.contains("57014")),
        "{slept:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    // The connection is still good and goes on serving.
    store.ping().unwrap();
    assert_eq!(store.pool.open_count(), 1);
}

#[test]
fn a_busy_pool_answers_unavailable_within_the_checkout_timeout() {
    let Some(db) = test_db() else { return };
    let options = PgOptions {
        max_open: 1,
        checkout_timeout: Duration::from_millis(300),
        ..PgOptions::default()
    };
    let store = db.open_with(&options);
    let held = store.pool.get().unwrap();
    let started = Instant::now();
    assert!(matches!(store.get("x"), Err(StoreError::Unavailable(_))));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(1500),
        "{waited:?}"
    );
    // A caller waiting gets the connection as soon as it is returned.
    std::thread::scope(|s| {
        let waiter = s.spawn(|| store.get("x"));
        std::thread::sleep(Duration::from_millis(100));
        drop(held);
        assert_eq!(waiter.join().unwrap().unwrap(), None);
    });
    assert_eq!(store.pool.open_count(), 1);
}

#[test]
fn the_pool_replaces_connections_the_server_closed() {
    let Some(db) = test_db() else { return };
    let store = db.open();
    store
        .create(&custom("https://a.example/", "alive"))
        .unwrap();
    assert_eq!(db.kill(&db.schema), 1);
    std::thread::sleep(pool::CHECK_IDLE_AFTER + Duration::from_millis(100));
    // The dead idle connection is noticed at checkout, not handed out.
    assert!(store.get("alive").unwrap().is_some());
    assert_eq!(store.pool.open_count(), 1);
}

#[test]
fn idle_connections_beyond_max_idle_are_closed() {
    let Some(db) = test_db() else { return };
    let options = PgOptions {
        max_open: 6,
        max_idle: 2,
        ..PgOptions::default()
    };
    let store = db.open_with(&options);
    let leases: Vec<_> = (0..6).map(|_| store.pool.get().unwrap()).collect();
    assert!(store.pool.get().is_err() || options.max_open > 6);
    assert_eq!(db.backends(&db.schema), 6);
    drop(leases);
    assert_eq!(store.pool.open_count(), 2);
    let deadline = Instant::now() + Duration::from_secs(3);
    while db.backends(&db.schema) > 2 {
        assert!(Instant::now() < deadline, "closed connections linger");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn idle_connections_past_their_idle_timeout_or_lifetime_are_replaced() {
    let Some(db) = test_db() else { return };
    let options = PgOptions {
        idle_timeout: Duration::from_millis(200),
        ..PgOptions::default()
    };
    let store = db.open_with(&options);
    let pid = |store: &PostgresStore| -> i32 {
        let row = store.read(|db| db.query_opt("SELECT pg_backend_pid()", &[]));
        row.unwrap().unwrap().get(0)
    };
    let first = pid(&store);
    assert_eq!(pid(&store), first, "a warm connection is reused");
    std::thread::sleep(Duration::from_millis(300));
    assert_ne!(pid(&store), first, "an idle one past its timeout is not");
    let options = PgOptions {
        max_lifetime: Duration::from_millis(200),
        ..PgOptions::default()
    };
    let store = db.open_with(&options);
    let first = pid(&store);
    std::thread::sleep(Duration::from_millis(300));
    assert_ne!(pid(&store), first, "nor one past its lifetime");
}

/// A TCP proxy to the test server that can stop forwarding while keeping
/// every connection open: a server that no longer answers, as far as its
/// clients' TCP can tell (the proxy's kernel still acknowledges).
struct Proxy {
    addr: String,
    frozen: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap().to_string(),
            frozen: Arc::new(AtomicBool::new(false)),
            done: Arc::new(AtomicBool::new(false)),
        };
        let (frozen, done, upstream) = (
            Arc::clone(&proxy.frozen),
            Arc::clone(&proxy.done),
            upstream.to_owned(),
        );
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let (frozen, done) = (Arc::clone(&frozen), Arc::clone(&done));
                    std::thread::spawn(move || pump(from, to, &frozen, &done));
                }
            }
        });
        proxy
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.store(frozen, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

/// Copies `from` to `to`, holding the bytes while frozen, until either end
/// closes or the proxy is done.
fn pump(mut from: TcpStream, mut to: TcpStream, frozen: &AtomicBool, done: &AtomicBool) {
    from.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    from.set_nonblocking(false).unwrap();
    let mut buf = [0u8; 16 * 1024];
    while !done.load(Ordering::Relaxed) {
        if frozen.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}

#[test]
fn the_referrer_cap_migration_folds_the_rows_past_the_cap() {
    let Some(db) = test_db() else { return };
    let id = db
        .open()
        .create(&custom("https://a.example/", "flooded"))
        .unwrap()
        .link
        .id;
    // The schema as the spam and the version before the cap left it.
    let mut client = db.client();
    client.batch_execute(&flood_referrers_sql(id)).unwrap();
    client
        .execute("DELETE FROM schema_migrations WHERE version > 2", &[])
        .unwrap();
    let store = db.open();
    let rows_in = |table: &str| -> i64 {
        let sql = format!("SELECT count(*) FROM {table}");
        db.client().query_one(&sql, &[]).unwrap().get(0)
    };
    assert_flood_folded(&store, &rows_in, "flooded");
}
