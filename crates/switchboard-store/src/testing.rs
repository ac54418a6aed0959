//! Throw-away databases for tests, on both backends: a SQLite file of its own in the temporary
//! folder, and a PostgreSQL schema of its own (no `CREATEDB` right needed; the URL sets the
//! connection's `search_path` to it, so the migrations and every query land there).
//!
//! PostgreSQL is found at `SWITCHBOARD_TEST_POSTGRES_URL` (default [`DEFAULT_POSTGRES_URL`]).
//! When it cannot be reached, [`TestDb::postgres`] panics if `CI` is set (a missing service is a
//! failure there, never a skip) and otherwise prints a notice and returns `None`.

use std::{
    path::PathBuf,
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use sqlx::{Connection, PgConnection};

use crate::{Backend, Location};

/// Where tests find PostgreSQL unless `SWITCHBOARD_TEST_POSTGRES_URL` says otherwise.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database that exists for one test; [`TestDb::remove`] deletes it.
#[derive(Debug)]
pub struct TestDb {
    /// Where it is, to give to [`crate::open`] or to the server's `database_url`.
    pub location: Location,
    /// Its backend.
    pub backend: Backend,
    /// The PostgreSQL schema to drop, or the SQLite file to delete.
    made: Made,
}

#[derive(Debug)]
enum Made {
    File(PathBuf),
    Schema { server: String, schema: String },
}

/// A name no other test of any process uses.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{nanos}_{n}", std::process::id())
}

/// The PostgreSQL server tests use.
pub fn postgres_url() -> String {
    std::env::var("SWITCHBOARD_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into())
}

impl TestDb {
    /// A new SQLite file.
    pub fn sqlite() -> TestDb {
        let path = std::env::temp_dir().join(format!("{}.db", unique("switchboard-test")));
        TestDb {
            location: Location::SqliteFile(path.clone()),
            backend: Backend::Sqlite,
            made: Made::File(path),
        }
    }

    /// A new schema on the test PostgreSQL server; see the module documentation for `None`.
    pub async fn postgres() -> Option<TestDb> {
        let server = postgres_url();
        let mut admin = match PgConnection::connect(&server).await {
            Ok(connection) => connection,
            Err(e) if std::env::var_os("CI").is_some() => {
                panic!("CI is set and PostgreSQL at {server} cannot be reached: {e}")
            }
            Err(e) => {
                eprintln!("skipping the PostgreSQL half: {server} cannot be reached: {e}");
                return None;
            }
        };
        let schema = unique("sbt");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await
            .expect("create a test schema");
        let _ = admin.close().await;
        let joiner = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{joiner}options[search_path]={schema}");
        Some(TestDb {
            location: Location::Url(url),
            backend: Backend::Postgres,
            made: Made::Schema { server, schema },
        })
    }

    /// Both kinds: SQLite, and PostgreSQL when reachable (see [`TestDb::postgres`]).
    pub async fn both() -> Vec<TestDb> {
        let mut dbs = vec![TestDb::sqlite()];
        dbs.extend(TestDb::postgres().await);
        dbs
    }

    /// Deletes the database. (A failed test leaves its own behind, to look at.)
    pub async fn remove(self) {
        match self.made {
            Made::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut name = path.clone().into_os_string();
                    name.push(suffix);
                    let _ = std::fs::remove_file(name);
                }
            }
            Made::Schema { server, schema } => {
                if let Ok(mut admin) = PgConnection::connect(&server).await {
                    let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(drop))
                        .execute(&mut admin)
                        .await;
                    let _ = admin.close().await;
                }
            }
        }
    }
}
