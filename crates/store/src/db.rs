//! The small API every operation in `ops.rs` is written against, on both backends.
//!
//! A [`Query`] is SQL text with `$n` parameters and its arguments; a connection ([`Db`]) executes it
//! and returns [`Row`]s read by column name. SQLite runs on rusqlite: a statement executes on the
//! calling thread (the writer thread, or a reader borrowed from the pool), so a batch of queued writes
//! costs no thread hand-off per statement, and its futures are ready on their first poll
//! ([`run_ready`]). PostgreSQL runs on sqlx.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;

use sqlx::postgres::PgRow;
use sqlx::{Column as _, PgConnection, Row as _, TypeInfo as _};

use crate::{Result, StoreError};

/// One argument of a query. Nulls keep their type, which PostgreSQL needs to plan the statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
}

pub(crate) trait IntoArg {
    fn into_arg(self) -> Arg;
}

macro_rules! into_arg {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {
        $(impl IntoArg for $t {
            fn into_arg(self) -> Arg {
                let $v = self;
                $e
            }
        })*
    };
}

into_arg! {
    i64 => |v| Arg::Int(Some(v)),
    Option<i64> => |v| Arg::Int(v),
    f64 => |v| Arg::Real(Some(v)),
    Option<f64> => |v| Arg::Real(v),
    String => |v| Arg::Text(Some(v)),
    Option<String> => |v| Arg::Text(v),
    &str => |v| Arg::Text(Some(v.to_owned())),
    Option<&str> => |v| Arg::Text(v.map(str::to_owned)),
    &String => |v| Arg::Text(Some(v.clone())),
}

/// SQL text with `$1`, `$2`, ... parameters, and the arguments bound to them.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    sql: Cow<'static, str>,
    args: Vec<Arg>,
}

impl Query {
    pub(crate) fn new(sql: impl Into<Cow<'static, str>>) -> Query {
        Query { sql: sql.into(), args: Vec::new() }
    }

    /// Binds the next `$n` parameter written in the text.
    pub(crate) fn bind(mut self, value: impl IntoArg) -> Query {
        self.args.push(value.into_arg());
        self
    }

    /// Appends SQL text.
    pub(crate) fn push(&mut self, sql: &str) -> &mut Query {
        self.sql.to_mut().push_str(sql);
        self
    }

    /// Appends a new `$n` parameter and binds `value` to it.
    pub(crate) fn push_bind(&mut self, value: impl IntoArg) -> &mut Query {
        self.args.push(value.into_arg());
        let sql = self.sql.to_mut();
        sql.push('$');
        sql.push_str(itoa::Buffer::new().format(self.args.len()));
        self
    }

    /// Appends `VALUES (..), (..)`: one tuple per row, its values bound by `bind_row` in column order.
    pub(crate) fn push_values<T>(
        &mut self,
        rows: impl IntoIterator<Item = T>,
        mut bind_row: impl FnMut(&mut Tuple<'_>, T),
    ) -> &mut Query {
        self.push(" VALUES ");
        for (i, row) in rows.into_iter().enumerate() {
            self.push(if i == 0 { "(" } else { ", (" });
            bind_row(&mut Tuple { query: self, empty: true }, row);
            self.push(")");
        }
        self
    }

    /// Appends `(v1, v2, ...)`, a parenthesised list of bound values (for `IN`).
    pub(crate) fn push_list<T: IntoArg>(&mut self, values: impl IntoIterator<Item = T>) -> &mut Query {
        self.push("(");
        let mut tuple = Tuple { query: self, empty: true };
        for v in values {
            tuple.bind(v);
        }
        self.push(")")
    }

    pub(crate) fn sql(&self) -> &str {
        &self.sql
    }
}

/// The values of one row of `Query::push_values`, separated by commas.
pub(crate) struct Tuple<'q> {
    query: &'q mut Query,
    empty: bool,
}

impl Tuple<'_> {
    pub(crate) fn bind(&mut self, value: impl IntoArg) -> &mut Self {
        if !std::mem::take(&mut self.empty) {
            self.query.push(", ");
        }
        self.query.push_bind(value);
        self
    }
}

/// A value read from a row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "an integer",
            Value::Real(_) => "a real number",
            Value::Text(_) => "text",
        }
    }
}

/// A type a column can be read as.
pub(crate) trait FromValue: Sized {
    const EXPECTED: &'static str;
    fn from_value(value: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    const EXPECTED: &'static str = "an integer";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }
}

impl FromValue for f64 {
    const EXPECTED: &'static str = "a number";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Real(v) => Some(*v),
            // A REAL column may hand back a whole number as an integer.
            Value::Int(v) => Some(*v as f64),
            _ => None,
        }
    }
}

impl FromValue for String {
    const EXPECTED: &'static str = "text";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Text(v) => Some(v.clone()),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One row of a result, its columns named.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    /// The value of the column named `column`.
    pub(crate) fn get<T: FromValue>(&self, column: &str) -> Result<T> {
        let index = self
            .columns
            .iter()
            .position(|c| c == column)
            .ok_or_else(|| StoreError::Corrupt(format!("the result has no column {column:?}")))?;
        self.at(index)
    }

    /// The value of the column at `index` (from 0).
    pub(crate) fn at<T: FromValue>(&self, index: usize) -> Result<T> {
        let value = self.values.get(index).unwrap_or(&Value::Null);
        T::from_value(value).ok_or_else(|| {
            let name = self.columns.get(index).map_or("?", String::as_str);
            StoreError::Corrupt(format!("column {name}: expected {}, found {}", T::EXPECTED, value.kind()))
        })
    }
}

/// A connection the operations run on.
pub(crate) trait Db: Send {
    /// Starts a read-only transaction that sees one snapshot, for reads of several statements that must
    /// agree (a wallet row and its lots and postings) while writes go on.
    const BEGIN_SNAPSHOT: &'static str;

    /// What a `SELECT` of one row ends with to lock that row until the transaction ends: nothing on
    /// SQLite, where the one writer runs one transaction at a time.
    const LOCK_ROW: &'static str;

    /// Runs a statement that returns no rows; returns how many rows it changed.
    fn execute(&mut self, query: Query) -> impl Future<Output = Result<u64>> + Send;

    fn fetch_all(&mut self, query: Query) -> impl Future<Output = Result<Vec<Row>>> + Send;

    fn fetch_optional(&mut self, query: Query) -> impl Future<Output = Result<Option<Row>>> + Send;

    /// Runs a script of several statements separated by semicolons, without arguments.
    fn execute_script(&mut self, sql: &str) -> impl Future<Output = Result<()>> + Send;

    fn fetch_one(&mut self, query: Query) -> impl Future<Output = Result<Row>> + Send {
        async move {
            self.fetch_optional(query).await?.ok_or_else(|| StoreError::Corrupt("a statement returned no row".into()))
        }
    }

    /// The first column of the first row, if there is a row.
    fn fetch_scalar<T: FromValue + Send>(&mut self, query: Query) -> impl Future<Output = Result<Option<T>>> + Send {
        async move { self.fetch_optional(query).await?.map(|r| r.at(0)).transpose() }
    }

    /// The first column of every row.
    fn fetch_scalars<T: FromValue + Send>(&mut self, query: Query) -> impl Future<Output = Result<Vec<T>>> + Send {
        async move { self.fetch_all(query).await?.iter().map(|r| r.at(0)).collect() }
    }
}

/// Drives a future that never waits, as every operation on a [`SqliteConn`] is, to its end.
pub(crate) fn run_ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => unreachable!("an operation on a SQLite connection waited"),
    }
}

// ----- SQLite -----

/// Takes one result row; returns whether to go on.
type OnRow<'a> = &'a mut dyn FnMut(&rusqlite::Row<'_>) -> Result<bool>;

/// A SQLite connection. Statements are prepared once and cached.
pub(crate) struct SqliteConn {
    conn: rusqlite::Connection,
}

impl SqliteConn {
    pub(crate) fn new(conn: rusqlite::Connection) -> SqliteConn {
        conn.set_prepared_statement_cache_capacity(256);
        SqliteConn { conn }
    }

    /// Runs `sql` (a fixed statement without arguments) synchronously.
    pub(crate) fn run(&mut self, sql: &str) -> Result<()> {
        self.conn.prepare_cached(sql)?.raw_execute()?;
        Ok(())
    }

    /// Copies the WAL into the database file, syncing both (`PRAGMA wal_checkpoint(FULL)`), so that
    /// every commit so far is on disk whatever `synchronous` was when it committed.
    /// A checkpoint running on another connection (the background one) makes this one wait for it, for up
    /// to ten seconds.
    pub(crate) fn checkpoint(&mut self) -> Result<()> {
        let mut attempts = 0;
        loop {
            let (busy, wal_frames, copied): (i64, i64, i64) =
                self.conn.query_row("PRAGMA wal_checkpoint(FULL)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            if busy == 0 && copied >= wal_frames {
                return Ok(());
            }
            attempts += 1;
            if attempts == 200 {
                return Err(StoreError::Corrupt(format!(
                    "the checkpoint copied {copied} of {wal_frames} WAL frames: another connection held them"
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Runs `query`, handing each result row to `row` (if given, until it returns false); returns
    /// the rows changed.
    fn run_query(&mut self, query: &Query, row: Option<OnRow<'_>>) -> Result<u64> {
        let mut statement = self.conn.prepare_cached(&numbered_parameters(query.sql()))?;
        if statement.parameter_count() != query.args.len() {
            return Err(StoreError::Corrupt(format!(
                "{:?} takes {} parameters, {} given",
                query.sql(),
                statement.parameter_count(),
                query.args.len()
            )));
        }
        for (i, arg) in query.args.iter().enumerate() {
            match arg {
                Arg::Int(v) => statement.raw_bind_parameter(i + 1, v)?,
                Arg::Real(v) => statement.raw_bind_parameter(i + 1, v)?,
                Arg::Text(v) => statement.raw_bind_parameter(i + 1, v)?,
            }
        }
        let Some(row) = row else { return Ok(statement.raw_execute()? as u64) };
        let mut rows = statement.raw_query();
        while let Some(r) = rows.next()? {
            if !row(r)? {
                break;
            }
        }
        drop(rows);
        Ok(self.conn.changes())
    }

    fn rows(&mut self, query: &Query, limit: usize) -> Result<Vec<Row>> {
        let mut out = Vec::new();
        let mut columns: Option<Arc<[String]>> = None;
        let mut collect = |row: &rusqlite::Row<'_>| -> Result<bool> {
            let statement = row.as_ref();
            let columns = columns.get_or_insert_with(|| statement.column_names().map(str::to_owned).collect());
            let mut values = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                values.push(match row.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => Value::Null,
                    rusqlite::types::ValueRef::Integer(v) => Value::Int(v),
                    rusqlite::types::ValueRef::Real(v) => Value::Real(v),
                    rusqlite::types::ValueRef::Text(v) => Value::Text(
                        std::str::from_utf8(v)
                            .map_err(|e| StoreError::Corrupt(format!("column {}: {e}", columns[i])))?
                            .to_owned(),
                    ),
                    rusqlite::types::ValueRef::Blob(_) => {
                        return Err(StoreError::Corrupt(format!("column {}: unexpected blob", columns[i])));
                    }
                });
            }
            out.push(Row { columns: columns.clone(), values });
            Ok(out.len() < limit)
        };
        self.run_query(query, Some(&mut collect))?;
        Ok(out)
    }
}

/// The SQL with `$n` written as `?n`. To SQLite `$n` is a named parameter, and names are looked up by
/// a linear scan, so a statement of thousands of them (a multi-row insert) would prepare and bind in
/// quadratic time; `?n` is the parameter numbered n, found at once. String literals are left alone.
fn numbered_parameters(sql: &str) -> String {
    // Byte by byte between the interesting bytes: a multi-row insert is tens of kilobytes of SQL.
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut in_literal = false;
    let mut copied = 0;
    for at in memchr::memchr2_iter(b'$', b'\'', bytes) {
        if bytes[at] == b'\'' {
            in_literal = !in_literal;
        } else if !in_literal && bytes.get(at + 1).is_some_and(u8::is_ascii_digit) {
            out.push_str(&sql[copied..at]);
            out.push('?');
            copied = at + 1;
        }
    }
    out.push_str(&sql[copied..]);
    out
}

impl Db for SqliteConn {
    // A deferred transaction in WAL mode reads one snapshot from its first statement on.
    const BEGIN_SNAPSHOT: &'static str = "BEGIN";
    const LOCK_ROW: &'static str = "";

    fn execute(&mut self, query: Query) -> impl Future<Output = Result<u64>> + Send {
        let result = self.run_query(&query, None);
        async move { result }
    }

    fn fetch_all(&mut self, query: Query) -> impl Future<Output = Result<Vec<Row>>> + Send {
        let result = self.rows(&query, usize::MAX);
        async move { result }
    }

    fn fetch_optional(&mut self, query: Query) -> impl Future<Output = Result<Option<Row>>> + Send {
        let result = self.rows(&query, 1).map(|rows| rows.into_iter().next());
        async move { result }
    }

    fn execute_script(&mut self, sql: &str) -> impl Future<Output = Result<()>> + Send {
        let result = self.conn.execute_batch(sql).map_err(StoreError::from);
        async move { result }
    }
}

// ----- PostgreSQL -----

fn pg_query(query: &Query) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let mut q = sqlx::query(query.sql());
    for arg in &query.args {
        q = match arg {
            Arg::Int(v) => q.bind(*v),
            Arg::Real(v) => q.bind(*v),
            Arg::Text(v) => q.bind(v.as_deref()),
        };
    }
    q
}

fn pg_rows(rows: Vec<PgRow>) -> Result<Vec<Row>> {
    let Some(first) = rows.first() else { return Ok(Vec::new()) };
    let columns: Arc<[String]> = first.columns().iter().map(|c| c.name().to_owned()).collect();
    rows.iter()
        .map(|r| {
            let values = r
                .columns()
                .iter()
                .enumerate()
                .map(|(i, c)| pg_value(r, i, c.type_info().name()))
                .collect::<Result<Vec<_>>>()?;
            Ok(Row { columns: columns.clone(), values })
        })
        .collect()
}

fn pg_value(row: &PgRow, i: usize, type_name: &str) -> Result<Value> {
    let value = match type_name {
        "INT8" => row.try_get::<Option<i64>, _>(i)?.map(Value::Int),
        "INT4" => row.try_get::<Option<i32>, _>(i)?.map(|v| Value::Int(v.into())),
        "INT2" => row.try_get::<Option<i16>, _>(i)?.map(|v| Value::Int(v.into())),
        "BOOL" => row.try_get::<Option<bool>, _>(i)?.map(|v| Value::Int(v.into())),
        "FLOAT8" => row.try_get::<Option<f64>, _>(i)?.map(Value::Real),
        "FLOAT4" => row.try_get::<Option<f32>, _>(i)?.map(|v| Value::Real(v.into())),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => row.try_get::<Option<String>, _>(i)?.map(Value::Text),
        other => return Err(StoreError::Corrupt(format!("column {i}: unexpected type {other}"))),
    };
    Ok(value.unwrap_or(Value::Null))
}

impl Db for PgConnection {
    const BEGIN_SNAPSHOT: &'static str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
    const LOCK_ROW: &'static str = " FOR UPDATE";

    async fn execute(&mut self, query: Query) -> Result<u64> {
        Ok(pg_query(&query).execute(&mut *self).await?.rows_affected())
    }

    async fn fetch_all(&mut self, query: Query) -> Result<Vec<Row>> {
        pg_rows(pg_query(&query).fetch_all(&mut *self).await?)
    }

    async fn fetch_optional(&mut self, query: Query) -> Result<Option<Row>> {
        let row = pg_query(&query).fetch_optional(&mut *self).await?;
        Ok(pg_rows(row.into_iter().collect())?.pop())
    }

    async fn execute_script(&mut self, sql: &str) -> Result<()> {
        // A bare string runs as a simple query, which may hold several statements.
        sqlx::Executor::execute(&mut *self, sql).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_lists_number_their_parameters_in_order() {
        let mut q = Query::new("INSERT INTO t (a, b)");
        q.push_values([(1i64, "x"), (2, "y")], |t, (a, b)| {
            t.bind(a).bind(b);
        });
        q.push(" WHERE a IN ").push_list([7i64, 8]);
        assert_eq!(q.sql(), "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) WHERE a IN ($5, $6)");
        assert_eq!(q.args.len(), 6);
        assert_eq!(q.args[3], Arg::Text(Some("y".into())));
    }

    #[test]
    fn sqlite_runs_values_lists_with_returning_and_conflicts() {
        let mut c = SqliteConn::new(rusqlite::Connection::open_in_memory().unwrap());
        c.run("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT UNIQUE, n INTEGER)").unwrap();
        let insert = |rows: &[(&str, i64)]| {
            let mut q = Query::new("INSERT INTO t (k, n)");
            q.push_values(rows.iter(), |t, (k, n)| {
                t.bind(*k).bind(*n);
            });
            q.push(" ON CONFLICT (k) DO NOTHING RETURNING id, k");
            q
        };
        let rows = run_ready(c.fetch_all(insert(&[("a", 1), ("b", 2), ("c", 3)]))).unwrap();
        let keys: Vec<String> = rows.iter().map(|r| r.get("k").unwrap()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        // Conflicting rows return nothing and change nothing; the others go in.
        let rows = run_ready(c.fetch_all(insert(&[("b", 9), ("d", 4), ("a", 9)]))).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<String>("k").unwrap(), "d");
        let mut q = Query::new("INSERT INTO t (k, n)");
        q.push_values([("e", 5i64), ("f", 6)], |t, (k, n)| {
            t.bind(k).bind(n);
        });
        assert_eq!(run_ready(c.execute(q)).unwrap(), 2);
        // Arguments before the list keep their place.
        let mut q = Query::new("SELECT n FROM t WHERE n > $1 AND k IN ").bind(2i64);
        q.push_list(["a", "c", "d", "f"]);
        let found: Vec<i64> = run_ready(c.fetch_scalars(q)).unwrap();
        assert_eq!(found, [3, 4, 6]);
    }

    #[test]
    fn dollar_parameters_become_numbered_ones_outside_literals() {
        assert_eq!(numbered_parameters("SELECT $1, '$2', $10 || 'it''s $3'"), "SELECT ?1, '$2', ?10 || 'it''s $3'");
    }

    #[test]
    fn sqlite_binds_parameters_by_number_wherever_they_appear() {
        let mut c = SqliteConn::new(rusqlite::Connection::open_in_memory().unwrap());
        let row =
            run_ready(c.fetch_one(Query::new("SELECT $2 AS b, $1 AS a, $2 || 'z' AS c").bind(1i64).bind("y"))).unwrap();
        assert_eq!(row.get::<i64>("a").unwrap(), 1);
        assert_eq!(row.get::<String>("b").unwrap(), "y");
        assert_eq!(row.get::<String>("c").unwrap(), "yz");
        assert!(row.get::<i64>("b").unwrap_err().to_string().contains("expected an integer, found text"));
        assert!(row.get::<i64>("d").is_err());
    }
}
