//! One SQL surface over the two databases the store runs on: SQLite (a file, the embedded
//! default) and PostgreSQL (a server that workers on several machines share).
//!
//! Store code writes each statement once, with `?1`-style placeholders, and reads rows through
//! [`Row`]; [`Conn`] runs it on either database (PostgreSQL sees `$1`). Only what genuinely
//! differs — schema DDL, pragmas, how a write transaction serialises — is written per backend.
//!
//! PostgreSQL goes through the `postgres` crate: the synchronous client over `tokio-postgres`.
//! The store is built on threads (one group-commit writer, a few blocking readers) and SQLite's
//! API is synchronous, so the same call shape serves both; sqlx would add an async query layer
//! and macros this code does not use (and a longer build), and async tokio-postgres would make the
//! whole store boundary async for one backend. It added 35 entries to Cargo.lock: the protocol
//! crates, stringprep and md-5, and second versions of the digest/HMAC/SHA-2 crates (the driver is
//! on digest 0.11, the card tokenizer on 0.10) — small, on top of the tokio tree already here.

use anyhow::Context;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where the results live: a SQLite file or a PostgreSQL URL. Parsed from `--db` / `AEGIS_DB`:
/// `postgres://…` or `postgresql://…` is a server, anything else a file path.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    /// The SQLite file, if this is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::Sqlite(p) => Some(p),
            Self::Postgres(_) => None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// False for a SQLite file that is not there yet (a server is assumed to exist: connecting
    /// tells).
    pub fn exists(&self) -> bool {
        self.file().is_none_or(Path::exists)
    }

    /// The location as given, password included: for a child process's `--db`, never for a log.
    pub fn as_arg(&self) -> std::ffi::OsString {
        match self {
            Self::Sqlite(p) => p.clone().into_os_string(),
            Self::Postgres(url) => url.into(),
        }
    }
}

impl std::str::FromStr for Location {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            s.parse::<postgres::Config>().map_err(|e| format!("not a valid PostgreSQL URL: {e}"))?;
            Ok(Self::Postgres(s.to_owned()))
        } else if s.trim().is_empty() {
            Err("give a SQLite file path or a postgres:// URL".into())
        } else {
            Ok(Self::Sqlite(PathBuf::from(s)))
        }
    }
}

impl From<&Path> for Location {
    fn from(p: &Path) -> Self {
        Self::Sqlite(p.to_path_buf())
    }
}

impl From<&PathBuf> for Location {
    fn from(p: &PathBuf) -> Self {
        Self::Sqlite(p.clone())
    }
}

impl From<&Location> for Location {
    fn from(l: &Location) -> Self {
        l.clone()
    }
}

impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Self {
        Self::Sqlite(p)
    }
}

/// Shown in messages and logs: a URL's password is replaced by `***`.
impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(p) => write!(f, "{}", p.display()),
            Self::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((auth, host)) = rest.split_once('@') else { return url.to_owned() };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// A statement parameter, bound the same way on both databases.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<u32> for Value<'_> {
    fn from(v: u32) -> Self {
        Self::Int(v.into())
    }
}
impl From<usize> for Value<'_> {
    fn from(v: usize) -> Self {
        Self::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<f64> for Value<'_> {
    fn from(v: f64) -> Self {
        Self::Real(v)
    }
}
impl From<f32> for Value<'_> {
    fn from(v: f32) -> Self {
        Self::Real(v.into())
    }
}
impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Self::Text(v)
    }
}
impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(v: &'a [u8]) -> Self {
        Self::Blob(v)
    }
}
impl<'a> From<&'a String> for Value<'a> {
    fn from(v: &'a String) -> Self {
        Self::Text(v)
    }
}
impl<'a, T: Into<Value<'a>>> From<Option<T>> for Value<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// `args![a, b, c]`: statement parameters of mixed types.
macro_rules! args {
    ($($v:expr),* $(,)?) => { &[$($crate::store::sql::Value::from($v)),*][..] };
}
pub(crate) use args;

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput::Borrowed, ValueRef};
        Ok(Borrowed(match *self {
            Self::Null => ValueRef::Null,
            Self::Int(v) => ValueRef::Integer(v),
            Self::Real(v) => ValueRef::Real(v),
            Self::Text(v) => ValueRef::Text(v.as_bytes()),
            Self::Blob(v) => ValueRef::Blob(v),
        }))
    }
}

impl postgres::types::ToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::Type;
        match *self {
            Self::Null => Ok(postgres::types::IsNull::Yes),
            // The schema's integers are BIGINT; a parameter PostgreSQL typed narrower still binds.
            Self::Int(v) if *ty == Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
            Self::Int(v) if *ty == Type::FLOAT8 => (v as f64).to_sql(ty, out),
            Self::Int(v) => v.to_sql(ty, out),
            Self::Real(v) if *ty == Type::FLOAT4 => (v as f32).to_sql(ty, out),
            Self::Real(v) => v.to_sql(ty, out),
            Self::Text(v) => v.to_sql(ty, out),
            Self::Blob(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// One result row, read by column position on either database. Integers are 64-bit, reals
/// double precision, text UTF-8; a NULL read by a non-`opt` getter is an error naming the column.
pub(crate) trait Row {
    fn int(&self, i: usize) -> anyhow::Result<i64>;
    fn opt_int(&self, i: usize) -> anyhow::Result<Option<i64>>;
    fn real(&self, i: usize) -> anyhow::Result<f64>;
    fn opt_real(&self, i: usize) -> anyhow::Result<Option<f64>>;
    fn text(&self, i: usize) -> anyhow::Result<&str>;
    fn opt_text(&self, i: usize) -> anyhow::Result<Option<&str>>;
    fn blob(&self, i: usize) -> anyhow::Result<&[u8]>;

    fn string(&self, i: usize) -> anyhow::Result<String> {
        self.text(i).map(str::to_owned)
    }
    fn opt_string(&self, i: usize) -> anyhow::Result<Option<String>> {
        Ok(self.opt_text(i)?.map(str::to_owned))
    }
    /// A score stored from an `f32` (exact: f32 → f64 → f32 round-trips).
    fn real32(&self, i: usize) -> anyhow::Result<f32> {
        Ok(self.real(i)? as f32)
    }
    fn opt_real32(&self, i: usize) -> anyhow::Result<Option<f32>> {
        Ok(self.opt_real(i)?.map(|v| v as f32))
    }
    fn int32(&self, i: usize) -> anyhow::Result<u32> {
        let v = self.int(i)?;
        u32::try_from(v).with_context(|| format!("column {i}: {v} is out of range"))
    }
}

impl Row for rusqlite::Row<'_> {
    fn int(&self, i: usize) -> anyhow::Result<i64> {
        Ok(self.get(i)?)
    }
    fn opt_int(&self, i: usize) -> anyhow::Result<Option<i64>> {
        Ok(self.get(i)?)
    }
    fn real(&self, i: usize) -> anyhow::Result<f64> {
        Ok(self.get(i)?)
    }
    fn opt_real(&self, i: usize) -> anyhow::Result<Option<f64>> {
        Ok(self.get(i)?)
    }
    fn text(&self, i: usize) -> anyhow::Result<&str> {
        Ok(self.get_ref(i)?.as_str()?)
    }
    fn opt_text(&self, i: usize) -> anyhow::Result<Option<&str>> {
        Ok(self.get_ref(i)?.as_str_or_null()?)
    }
    fn blob(&self, i: usize) -> anyhow::Result<&[u8]> {
        Ok(self.get_ref(i)?.as_blob()?)
    }
}

impl Row for postgres::Row {
    fn int(&self, i: usize) -> anyhow::Result<i64> {
        Ok(self.try_get(i)?)
    }
    fn opt_int(&self, i: usize) -> anyhow::Result<Option<i64>> {
        Ok(self.try_get(i)?)
    }
    fn real(&self, i: usize) -> anyhow::Result<f64> {
        Ok(self.try_get(i)?)
    }
    fn opt_real(&self, i: usize) -> anyhow::Result<Option<f64>> {
        Ok(self.try_get(i)?)
    }
    fn text(&self, i: usize) -> anyhow::Result<&str> {
        Ok(self.try_get(i)?)
    }
    fn opt_text(&self, i: usize) -> anyhow::Result<Option<&str>> {
        Ok(self.try_get(i)?)
    }
    fn blob(&self, i: usize) -> anyhow::Result<&[u8]> {
        Ok(self.try_get(i)?)
    }
}

/// Which database a connection talks to, for the few statements written per backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// A connection to either database.
pub(crate) enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(Box<Pg>),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sqlite(_) => "Conn::Sqlite",
            Self::Postgres(_) => "Conn::Postgres",
        })
    }
}

/// A PostgreSQL client with its prepared statements, keyed by the SQL as written.
pub(crate) struct Pg {
    url: String,
    client: Client,
    statements: HashMap<String, postgres::Statement>,
}

/// How long a new connection may take (the server may be starting, or unreachable).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Conn {
    /// Connects to the PostgreSQL server at `url` (TLS is not built in: use a local socket, a
    /// private network or a TLS-terminating proxy).
    pub(crate) fn postgres(url: &str) -> anyhow::Result<Self> {
        let client = Client(Some(outside_async(|| pg_connect(url))?));
        Ok(Self::Postgres(Box::new(Pg { url: url.to_owned(), client, statements: HashMap::new() })))
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs one statement; returns the rows it changed.
    pub(crate) fn execute(&mut self, sql: &str, args: &[Value<'_>]) -> anyhow::Result<u64> {
        match self {
            Self::Sqlite(c) => {
                Ok(c.prepare_cached(sql)?.execute(rusqlite::params_from_iter(args)).context_sql(sql)? as u64)
            }
            Self::Postgres(pg) => {
                let stmt = pg.statement(sql)?;
                outside_async(|| pg.client.execute(&stmt, &pg_args(args))).context_sql(sql)
            }
        }
    }

    /// Calls `f` with each row of the query, in order, without collecting them first.
    pub(crate) fn for_each(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
        mut f: impl FnMut(&dyn Row) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql).context_sql(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
                while let Some(r) = rows.next()? {
                    f(r)?;
                }
                Ok(())
            }
            Self::Postgres(pg) => {
                let stmt = pg.statement(sql)?;
                outside_async(|| {
                    use postgres::fallible_iterator::FallibleIterator;
                    let mut rows = pg.client.query_raw(&stmt, pg_args(args).iter().copied()).context_sql(sql)?;
                    while let Some(r) = rows.next()? {
                        f(&r)?;
                    }
                    Ok(())
                })
            }
        }
    }

    /// Every row of the query, each turned into a `T` by `f`.
    pub(crate) fn query<T>(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
        mut f: impl FnMut(&dyn Row) -> anyhow::Result<T>,
    ) -> anyhow::Result<Vec<T>> {
        let mut out = Vec::new();
        self.for_each(sql, args, |r| {
            out.push(f(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row of the query, if any.
    pub(crate) fn query_opt<T>(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
        f: impl FnOnce(&dyn Row) -> anyhow::Result<T>,
    ) -> anyhow::Result<Option<T>> {
        let mut f = Some(f);
        let mut out = None;
        self.for_each(sql, args, |r| {
            if let Some(f) = f.take() {
                out = Some(f(r)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row of a query that always returns one (an aggregate, say).
    pub(crate) fn query_one<T>(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
        f: impl FnOnce(&dyn Row) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.query_opt(sql, args, f)?.with_context(|| format!("no row from: {sql}"))
    }

    /// Runs statements without parameters (schema changes).
    pub(crate) fn batch(&mut self, sql: &str) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(c) => c.execute_batch(sql).context_sql(sql),
            Self::Postgres(pg) => {
                pg.reopen_if_closed()?;
                outside_async(|| pg.client.batch_execute(sql)).context_sql(sql)
            }
        }
    }

    /// Runs a statement written for PostgreSQL alone, with its own typed parameters (arrays,
    /// say); `None` on SQLite.
    pub(crate) fn postgres_query(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> anyhow::Result<Option<Vec<postgres::Row>>> {
        self.postgres_rows(sql, params, true)
    }

    /// [`Conn::postgres_query`] planned for these parameters every time (an unnamed statement):
    /// for a look-up whose best plan depends on how large the table has grown. A statement
    /// prepared once keeps the plan made when it was first run, and a seq scan chosen while
    /// `results` was nearly empty made each 512-id look-up take up to a second at 100,000 rows
    /// (`aegis consume` stalled to 512 results a second until autovacuum's ANALYZE replanned).
    pub(crate) fn postgres_query_unprepared(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> anyhow::Result<Option<Vec<postgres::Row>>> {
        self.postgres_rows(sql, params, false)
    }

    fn postgres_rows(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
        prepared: bool,
    ) -> anyhow::Result<Option<Vec<postgres::Row>>> {
        let Self::Postgres(pg) = self else { return Ok(None) };
        let rows = if prepared {
            let stmt = pg.statement(sql)?;
            outside_async(|| pg.client.query(&stmt, params))
        } else {
            pg.reopen_if_closed()?;
            let translated = dollar_placeholders(sql);
            outside_async(|| pg.client.query(translated.as_str(), params))
        };
        rows.context_sql(sql).map(Some)
    }

    /// Runs `f` in a write transaction: committed if `f` succeeds, rolled back otherwise.
    /// Writers are serialised as on SQLite (`BEGIN IMMEDIATE` takes the database's write lock):
    /// on PostgreSQL, `lock` names a transaction-scoped advisory lock taken first, so writers
    /// of the same kind (label writers: the verdict log must grow in commit order) run one at a
    /// time, while result batches (`lock` = `None`) run side by side.
    pub(crate) fn transaction<T>(
        &mut self,
        lock: Option<i64>,
        f: impl FnOnce(&mut Self) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        match self.backend() {
            Backend::Sqlite => self.batch("BEGIN IMMEDIATE")?,
            Backend::Postgres => {
                self.batch("BEGIN")?;
                if let Some(key) = lock {
                    if let Err(e) = self.execute("SELECT pg_advisory_xact_lock(?1)", args![key]) {
                        let _ = self.batch("ROLLBACK");
                        return Err(e);
                    }
                }
            }
        }
        match f(self) {
            Ok(v) => {
                if let Err(e) = self.batch("COMMIT") {
                    let _ = self.batch("ROLLBACK");
                    return Err(e);
                }
                Ok(v)
            }
            Err(e) => {
                // A failed rollback (the connection is gone) leaves nothing to undo.
                let _ = self.batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

fn pg_connect(url: &str) -> anyhow::Result<postgres::Client> {
    let mut config: postgres::Config = url.parse().context("not a valid PostgreSQL URL")?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.application_name("aegis");
    config.connect(postgres::NoTls).with_context(|| format!("cannot connect to PostgreSQL at {}", redact(url)))
}

/// The `postgres` client, closed (and dropped) outside async code: closing drives the
/// connection's own runtime, like every other call.
struct Client(Option<postgres::Client>);

impl std::ops::Deref for Client {
    type Target = postgres::Client;
    fn deref(&self) -> &postgres::Client {
        self.0.as_ref().expect("a client is only taken when dropped")
    }
}

impl std::ops::DerefMut for Client {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        self.0.as_mut().expect("a client is only taken when dropped")
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            outside_async(move || drop(client));
        }
    }
}

impl Pg {
    /// The prepared statement for `sql` (prepared once per connection). A connection the
    /// server closed (a restart, say) is opened again here, so the next statement after an
    /// outage works; the one that met the outage failed and its caller decides what to retry.
    fn statement(&mut self, sql: &str) -> anyhow::Result<postgres::Statement> {
        self.reopen_if_closed()?;
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let translated = dollar_placeholders(sql);
        let stmt = outside_async(|| self.client.prepare(&translated)).context_sql(sql)?;
        self.statements.insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }
}

impl Pg {
    fn reopen_if_closed(&mut self) -> anyhow::Result<()> {
        if self.client.is_closed() {
            self.client = Client(Some(outside_async(|| pg_connect(&self.url))?));
            self.statements.clear();
        }
        Ok(())
    }
}

fn pg_args<'a>(args: &'a [Value<'a>]) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn postgres::types::ToSql + Sync)).collect()
}

/// `?1` → `$1`: the store writes SQLite's numbered placeholders; PostgreSQL wants dollars.
/// (No statement here has a `?` inside a string literal.)
fn dollar_placeholders(sql: &str) -> String {
    sql.replace('?', "$")
}

/// Runs blocking client code from anywhere: the `postgres` client drives its connection on a
/// runtime of its own, which may not be entered from a thread already running async tasks, so on
/// a multi-threaded runtime's worker the call is made through `block_in_place` (callers that
/// already moved to a blocking thread pay nothing).
pub(crate) fn outside_async<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Adds the failing statement to an error.
trait ContextSql<T> {
    fn context_sql(self, sql: &str) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> ContextSql<T> for Result<T, E> {
    fn context_sql(self, sql: &str) -> anyhow::Result<T> {
        self.map_err(|e| {
            let first = sql.split_whitespace().take(8).collect::<Vec<_>>().join(" ");
            e.into().context(format!("in `{first} …`"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_hide_passwords() {
        assert_eq!("results.db".parse::<Location>(), Ok(Location::Sqlite("results.db".into())));
        let pg: Location = "postgres://aegis:s3cret@db.internal:5432/aegis".parse().unwrap();
        assert!(pg.is_postgres());
        assert_eq!(pg.to_string(), "postgres://aegis:***@db.internal:5432/aegis");
        assert!(!format!("{pg:?}").contains("s3cret"));
        assert!("postgresql://localhost/x".parse::<Location>().unwrap().is_postgres());
        assert!("postgres://host:notaport/x".parse::<Location>().is_err());
        assert!("".parse::<Location>().is_err());
    }

    #[test]
    fn placeholders_become_dollars() {
        assert_eq!(dollar_placeholders("a = ?1 AND b > ?12"), "a = $1 AND b > $12");
    }
}
