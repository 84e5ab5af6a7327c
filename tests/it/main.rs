//! Integration tests: the real `aegis` binary, run as a user would, in temporary directories.

// Test helpers outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod analyst;
mod api;
mod browser;
mod cli_errors;
mod dashboard_api;
#[cfg(feature = "kafka")]
mod kafka;
mod lifecycle;
mod pipeline;
mod postgres;
mod server;

use std::path::Path;
use std::process::{Command, Output};

/// Results stored in the database at `db` — a SQLite file or a `postgres://` URL — (0 before
/// it exists), read without taking a lock: the one way tests count rows.
pub fn stored_rows(db: impl AsRef<std::ffi::OsStr>) -> u64 {
    let db = db.as_ref().to_string_lossy();
    if db.starts_with("postgres://") {
        return ::postgres::Client::connect(&db, ::postgres::NoTls)
            .and_then(|mut c| c.query_one("SELECT COUNT(*) FROM results", &[]).map(|r| r.get::<_, i64>(0)))
            .map_or(0, |n| n.unsigned_abs());
    }
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    rusqlite::Connection::open_with_flags(&*db, flags)
        .and_then(|c| c.query_row("SELECT COUNT(*) FROM results", [], |r| r.get::<_, i64>(0)))
        .map_or(0, |n| n.unsigned_abs())
}

/// A new, empty database on the test PostgreSQL server (`AEGIS_TEST_POSTGRES`, set by
/// `scripts/test.sh`; a test that needs it fails without it): its URL.
pub fn postgres_db() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let server = std::env::var("AEGIS_TEST_POSTGRES")
        .expect("AEGIS_TEST_POSTGRES: run the tests with ./scripts/test.sh, which starts a PostgreSQL server");
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("aegis_it_{}_{n}", std::process::id());
    let mut admin =
        ::postgres::Client::connect(&server, ::postgres::NoTls).expect("the test PostgreSQL server answers");
    admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    format!("{}/{name}", server.rsplit_once('/').unwrap().0)
}

/// Runs `aegis` with `args` in `dir`.
pub fn aegis(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(args)
        .current_dir(dir)
        .env_remove("AEGIS_CARD_KEY")
        .output()
        .expect("the aegis binary runs")
}

/// Runs `aegis` and fails the test, showing its output, unless it succeeds.
pub fn aegis_ok(dir: &Path, args: &[&str]) -> String {
    let out = aegis(dir, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "aegis {args:?} failed:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs `aegis`, expects a failure, and returns stderr after checking it is a clean one-line
/// error: no panic, no backtrace.
pub fn aegis_err(dir: &Path, args: &[&str]) -> String {
    let out = aegis(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "aegis {args:?} should fail");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "aegis {args:?} panicked: {stderr}");
    stderr
}

/// A PostgreSQL cluster of one test's own (`scripts/postgres.sh`), to stop and start at will;
/// stopped on drop.
#[derive(Debug)]
pub struct OwnPostgres {
    data: String,
    pub url: String,
}

impl OwnPostgres {
    pub fn start(dir: &Path) -> Self {
        let out = Self::script(&format!("pg_start {} >&2 && echo \"$PG_DATA $PG_URL\"", dir.display()));
        let (data, url) = out.trim().split_once(' ').unwrap();
        Self { data: data.to_owned(), url: url.to_owned() }
    }

    /// `start` or `stop` (fast: clients are disconnected).
    pub fn ctl(&self, action: &str) {
        Self::script(&format!("pg_at {} {action}", self.data));
    }

    fn script(command: &str) -> String {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/postgres.sh");
        let out = Command::new("bash").arg("-c").arg(format!("set -e; . {script}; {command}")).output().unwrap();
        assert!(out.status.success(), "{command}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/postgres.sh");
        let _ = Command::new("bash").arg("-c").arg(format!(". {script}; pg_at {} stop", self.data)).output();
    }
}
