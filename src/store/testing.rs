//! Test databases on every backend: one test body runs against a fresh SQLite file and a fresh
//! PostgreSQL database (on the server `scripts/test.sh` starts and names in
//! `AEGIS_TEST_POSTGRES`). Without that variable the tests fail rather than skip, so a run that
//! lost its server cannot pass as a run that tested PostgreSQL.

use super::Location;
use std::sync::atomic::{AtomicU32, Ordering};

/// A new empty database; a SQLite one lives as long as this value.
#[derive(Debug)]
pub(crate) struct TestDb {
    pub location: Location,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh SQLite file and a fresh PostgreSQL database, in that order.
pub(crate) fn each_backend() -> [TestDb; 2] {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sqlite = TestDb { location: Location::Sqlite(dir.path().join("results.db")), _dir: Some(dir) };
    [sqlite, TestDb { location: postgres_database(), _dir: None }]
}

/// A new, empty database on the test server.
pub(crate) fn postgres_database() -> Location {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let server = std::env::var("AEGIS_TEST_POSTGRES")
        .expect("AEGIS_TEST_POSTGRES: run the tests with ./scripts/test.sh, which starts a PostgreSQL server");
    let name = format!("aegis_unit_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let mut admin = postgres::Client::connect(&server, postgres::NoTls).expect("the test PostgreSQL server answers");
    admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("a test database");
    let base = server.rsplit_once('/').map_or(server.as_str(), |(base, _)| base);
    Location::Postgres(format!("{base}/{name}"))
}
