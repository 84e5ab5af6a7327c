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
mod server;

use std::path::Path;
use std::process::{Command, Output};

/// Results stored in the database at `db` (0 before it exists), read without taking a lock:
/// the one way tests count rows.
pub fn stored_rows(db: &Path) -> u64 {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    rusqlite::Connection::open_with_flags(db, flags)
        .and_then(|c| c.query_row("SELECT COUNT(*) FROM results", [], |r| r.get::<_, i64>(0)))
        .map_or(0, |n| n.unsigned_abs())
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
