//! Which store the suite runs on (see the parent module's "Which store"):
//! the embedded SQLite file of a data directory, or with
//! `SHORTENER_TEST_PG` a PostgreSQL schema of its own standing for it.

use std::io;
use std::path::Path;
use std::sync::OnceLock;

/// The environment variable naming the PostgreSQL server to test on.
pub const PG_ENV: &str = "SHORTENER_TEST_PG";

/// The file in a data directory that names its PostgreSQL schema.
const SCHEMA_FILE: &str = "test-pg-schema";

/// The store the suite runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

/// The PostgreSQL URL of `SHORTENER_TEST_PG`, when the suite runs there.
pub fn pg_base() -> Option<&'static str> {
    static BASE: OnceLock<Option<String>> = OnceLock::new();
    BASE.get_or_init(|| {
        let url = std::env::var(PG_ENV).ok().filter(|u| !u.is_empty())?;
        assert!(
            url.starts_with("postgres://") || url.starts_with("postgresql://"),
            "{PG_ENV} must be a postgres:// URL, not {url:?}"
        );
        Some(url)
    })
    .as_deref()
}

/// Which store the servers of this run use.
pub fn store_kind() -> StoreKind {
    match pg_base() {
        Some(_) => StoreKind::Postgres,
        None => StoreKind::Sqlite,
    }
}

/// Whether this run is on PostgreSQL.
pub fn on_postgres() -> bool {
    store_kind() == StoreKind::Postgres
}

/// On PostgreSQL, prints why the calling test does not apply there and
/// returns `true` (the test returns early and passes).
pub fn skip_on_postgres(why: &str) -> bool {
    let skip = on_postgres();
    if skip {
        eprintln!("skipped on PostgreSQL: {why}");
    }
    skip
}

/// Without PostgreSQL, prints why the calling test needs it and returns
/// `true` (the test returns early and passes).
pub fn skip_unless_postgres(why: &str) -> bool {
    let skip = !on_postgres();
    if skip {
        eprintln!(
            "skipped: {why}; set {PG_ENV} to a postgres:// URL \
             (examples/shortener/tests/pg-suite.sh does)"
        );
    }
    skip
}

/// A connection to `SHORTENER_TEST_PG` itself, outside any schema.
///
/// # Panics
///
/// Without the variable, or when the server cannot be reached.
pub fn pg_admin() -> postgres::Client {
    let base = pg_base().expect("SHORTENER_TEST_PG is not set");
    postgres::Client::connect(base, postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to {PG_ENV}={base}: {e}"))
}

/// `base` with `schema` first on the search path and `name` as the
/// `application_name` (the change feed's connection is `NAME/changes`).
fn schema_url(base: &str, schema: &str, name: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-csearch_path%3D{schema}&application_name={name}")
}

/// A fresh schema in the test database, dropped with this value.
pub struct PgSchema {
    name: String,
}

impl PgSchema {
    /// Creates a schema with a new random name.
    ///
    /// # Panics
    ///
    /// Without `SHORTENER_TEST_PG`, or when the schema cannot be made.
    pub fn create() -> PgSchema {
        PgSchema {
            name: create_schema(),
        }
    }

    /// The schema's name (also the default `application_name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store URL of this schema.
    pub fn url(&self) -> String {
        schema_url(pg_base().unwrap(), &self.name, &self.name)
    }

    /// The store URL of this schema with `application_name` set to
    /// `SCHEMA_SUFFIX`, to tell the backends of several instances apart.
    pub fn url_as(&self, suffix: &str) -> String {
        let name = format!("{}_{suffix}", self.name);
        schema_url(pg_base().unwrap(), &self.name, &name)
    }

    /// A connection in the schema, outside any server.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url(), postgres::NoTls).expect("connect to the schema")
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        drop_schema(&self.name);
    }
}

/// Creates a schema with a new random name; returns the name.
fn create_schema() -> String {
    let name = format!("t_{}", shortener::slug::generate().to_ascii_lowercase());
    pg_admin()
        .batch_execute(&format!("CREATE SCHEMA {name}"))
        .unwrap_or_else(|e| panic!("CREATE SCHEMA {name}: {e}"));
    name
}

/// Drops `schema` and everything in it; a failure is only reported (the
/// cluster is a throwaway one).
fn drop_schema(schema: &str) {
    // Never panics: it runs in `Drop`, maybe while a test unwinds.
    let Some(base) = pg_base() else { return };
    let dropped = postgres::Client::connect(base, postgres::NoTls).and_then(|mut admin| {
        admin.batch_execute(&format!(
            "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {schema} CASCADE"
        ))
    });
    if let Err(e) = dropped {
        eprintln!("cannot drop schema {schema}: {e}");
    }
}

/// The `--store` of data directory `data`: its own SQLite file, or on
/// PostgreSQL the URL of the schema standing for it (created and named in
/// the directory on first use).
pub fn store_spec(data: &Path) -> String {
    let Some(base) = pg_base() else {
        return format!("sqlite:{}", data.join("shortener.db").display());
    };
    let file = data.join(SCHEMA_FILE);
    let schema = match std::fs::read_to_string(&file) {
        Ok(name) => name,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Owned by the directory from now on: see `forget_store`.
            let schema = create_schema();
            std::fs::create_dir_all(data).expect("create the data directory");
            std::fs::write(&file, &schema).expect("write the schema's name");
            schema
        }
        Err(e) => panic!("{}: {e}", file.display()),
    };
    schema_url(base, &schema, &schema)
}

/// Drops what [`store_spec`] made for `data` outside of it (the schema).
pub(super) fn forget_store(data: &Path) {
    if pg_base().is_some() {
        if let Ok(schema) = std::fs::read_to_string(data.join(SCHEMA_FILE)) {
            drop_schema(&schema);
        }
    }
}
