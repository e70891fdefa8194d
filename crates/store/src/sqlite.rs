//! The SQLite backend: one writer task with group commit, and a pool of readers.
//!
//! Every write is a job sent to the writer. The writer takes the first waiting job, opens
//! `BEGIN IMMEDIATE`, runs it inside a savepoint, then takes every other job already waiting (up to
//! `MAX_BATCH`) and runs each in its own savepoint, and commits once. A job that fails is rolled back
//! to its savepoint without touching the others. Results are handed back only after the commit, so a
//! write is acknowledged only once it is durable (`synchronous=FULL`).

use std::str::FromStr;
use std::time::Duration;

use futures_util::future::BoxFuture;
use prometheus_client::metrics::histogram::Histogram;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::{Result, StoreError};

const MAX_BATCH: usize = 512;
const READERS: u32 = 4;

type Deliver = Box<dyn FnOnce(Result<()>) + Send>;

/// A queued write, type-erased: runs on the writer's connection and returns how to deliver its result.
type Job = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, (bool, Deliver)> + Send>;

pub(crate) struct SqliteStore {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer_done: Mutex<Option<tokio::task::JoinHandle<()>>>,
    readers: SqlitePool,
    options: SqliteConnectOptions,
}

impl SqliteStore {
    pub(crate) async fn open(path: &str, batch_sizes: Histogram) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Savepoint journals stay in memory; a larger page cache keeps index updates of big files cheap.
            .pragma("temp_store", "memory");
        let writer = options.clone().pragma("cache_size", "-65536").connect().await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .min_connections(1)
            .connect_with(options.clone().read_only(true))
            .await?;
        let (tx, rx) = mpsc::channel::<Job>(4 * MAX_BATCH);
        let handle = tokio::spawn(run_writer(writer, rx, batch_sizes));
        Ok(SqliteStore { jobs: Mutex::new(Some(tx)), writer_done: Mutex::new(Some(handle)), readers, options })
    }

    /// A separate connection for migrations, which run before any other write.
    pub(crate) async fn writer_for_migrations(&self) -> Result<SqliteConnection> {
        Ok(self.options.clone().connect().await?)
    }

    pub(crate) async fn reader(&self) -> Result<PoolConnection<Sqlite>> {
        Ok(self.readers.acquire().await?)
    }

    /// Queues `op` for the writer and waits until it has committed (or failed).
    pub(crate) async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let (done_tx, done_rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = op(conn).await;
                let ok = result.is_ok();
                let deliver: Deliver = Box::new(move |commit| {
                    let _ = done_tx.send(commit.and(result));
                });
                (ok, deliver)
            })
        });
        let sender = self.jobs.lock().await.clone().ok_or(StoreError::Closed)?;
        sender.send(job).await.map_err(|_| StoreError::Closed)?;
        done_rx.await.map_err(|_| StoreError::Closed)?
    }

    pub(crate) async fn close(&self) {
        self.jobs.lock().await.take();
        if let Some(handle) = self.writer_done.lock().await.take() {
            let _ = handle.await;
        }
        self.readers.close().await;
    }
}

async fn run_writer(mut conn: SqliteConnection, mut jobs: mpsc::Receiver<Job>, batch_sizes: Histogram) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut deliveries: Vec<Deliver> = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let outcome = run_batch(&mut conn, &mut batch, &mut deliveries).await;
        batch_sizes.observe(deliveries.len() as f64);
        for deliver in deliveries.drain(..) {
            deliver(match &outcome {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Database(sqlx::Error::Protocol(format!("commit failed: {e}")))),
            });
        }
    }
    let _ = sqlx::Connection::close(conn).await;
}

async fn run_batch(
    conn: &mut SqliteConnection,
    batch: &mut Vec<Job>,
    deliveries: &mut Vec<Deliver>,
) -> Result<(), sqlx::Error> {
    let outcome = async {
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        let mut open = false;
        for job in batch.drain(..) {
            // One round trip per job: the release of the previous savepoint and the next one together.
            sqlx::query(if open { "RELEASE job; SAVEPOINT job" } else { "SAVEPOINT job" }).execute(&mut *conn).await?;
            open = true;
            let (ok, deliver) = job(conn).await;
            deliveries.push(deliver);
            if !ok {
                sqlx::query("ROLLBACK TO job").execute(&mut *conn).await?;
            }
        }
        if open {
            sqlx::query("RELEASE job").execute(&mut *conn).await?;
        }
        sqlx::query("COMMIT").execute(&mut *conn).await?;
        Ok(())
    }
    .await;
    if outcome.is_err() {
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        // Jobs that did not run are dropped: their callers learn the store failed.
        batch.clear();
    }
    outcome
}
