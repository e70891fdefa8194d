//! The SQLite backend: one writer thread with group commit, and a pool of readers.
//!
//! Every write is a job sent to the writer thread, which owns the one writing connection. The
//! writer takes the first waiting job, opens `BEGIN IMMEDIATE`, runs it inside a savepoint, then takes
//! every other job already waiting (up to `MAX_BATCH`) and runs each in its own savepoint, and commits
//! once. A job that fails (or panics) is rolled back to its savepoint without touching the others; a
//! job alone in its batch runs without a savepoint, and its failure rolls back the transaction.
//! Results are handed back only after the commit, so a write is acknowledged only once it is durable
//! (`synchronous=FULL`). Statements run on the writer thread itself: a job costs one hand-off to the
//! thread and one back, however many statements it runs.
//!
//! A second thread copies committed pages from the WAL into the database file (a passive checkpoint)
//! after commits, so the writer never stalls for it.
//!
//! Reads borrow one of a few read-only connections and run on the calling task; a SQLite read of
//! one request's data takes microseconds, less than handing it to another thread would.

use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::BoxFuture;
use prometheus_client::metrics::histogram::Histogram;
use rusqlite::OpenFlags;
use tokio::sync::{Semaphore, SemaphorePermit, mpsc, oneshot};

use crate::db::{SqliteConn, run_ready};
use crate::{Result, StoreError};

const MAX_BATCH: usize = 512;
const READERS: usize = 4;
/// The least time between two background checkpoints. Short, so that each checkpoint's sync of the
/// database file is small: a long one held the disk while the writer's WAL syncs waited (ARCHITECTURE.md).
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(10);

type Deliver = Box<dyn FnOnce(Result<()>) + Send>;

/// A queued write, type-erased: runs on the writer's connection and returns whether it succeeded
/// and how to deliver its result once the batch has committed (or failed).
type Run = Box<dyn FnOnce(&mut SqliteConn) -> (bool, Deliver) + Send>;

/// A queued job and how the writer runs it.
struct Job {
    run: Run,
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A write; waiting synced writes share one transaction, a deferred one commits alone.
    Write(Durability),
    /// Work outside any transaction: a checkpoint.
    Maintenance,
}

/// How a write's commit reaches the disk before the write is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Synced before it is acknowledged (`synchronous=FULL`): every write of the API.
    Synced,
    /// Committed without waiting for the disk (`synchronous=NORMAL`): bulk work that its caller
    /// acknowledges only after a later [`SqliteStore::sync`], such as the batches of an import. Such a
    /// job commits alone, never in one transaction with synced writes; the next synced commit syncs
    /// the whole WAL, so it also makes every deferred commit before it durable.
    Deferred,
}

pub(crate) struct SqliteStore {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer_done: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Readers,
    path: String,
}

fn open(path: &str, flags: OpenFlags) -> Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;")?;
    // The query planner stability guarantee: a cached statement keeps its plan whatever values are bound.
    // Without it SQLite prepares some statements again on every run (joins whose constants it propagates
    // from bound parameters), which cost the writer thread a parse per statement.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(conn)
}

fn open_writer(path: &str) -> Result<rusqlite::Connection> {
    let conn = open(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)?;
    // WAL with a full sync at every commit: an acknowledged write survives a power cut. Savepoint
    // journals stay in memory; a larger page cache keeps index updates of big files cheap.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // Checkpoints run on a thread of their own (`run_checkpointer`); the writer checkpoints itself only
    // if the WAL grows past 40,000 pages (160 MB) all the same.
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA cache_size = -262144; PRAGMA wal_autocheckpoint = 40000;")?;
    Ok(conn)
}

/// Copies committed pages from the WAL into the database file (a passive checkpoint) after the writer
/// has committed, at most once per [`CHECKPOINT_PAUSE`], on a connection of its own. A passive
/// checkpoint waits for no one: the writer keeps committing meanwhile, where a checkpoint on the writer
/// thread stalled every write behind it for tens of milliseconds. A checkpoint that copies only part of
/// the WAL is simply continued at the next nudge.
fn run_checkpointer(conn: rusqlite::Connection, nudges: std::sync::mpsc::Receiver<()>) {
    while nudges.recv().is_ok() {
        // Best effort: what this checkpoint does not copy, the next one (or the writer's own) does.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        std::thread::sleep(CHECKPOINT_PAUSE);
    }
}

impl SqliteStore {
    pub(crate) async fn open(path: &str, batch_sizes: Histogram) -> Result<Self> {
        let writer = SqliteConn::new(open_writer(path)?);
        let checkpoints = open(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        checkpoints.execute_batch("PRAGMA synchronous = FULL;")?;
        let (nudge, nudges) = std::sync::mpsc::sync_channel::<()>(1);
        let checkpointer = std::thread::Builder::new()
            .name("regulars-sqlite-checkpoints".into())
            .spawn(move || run_checkpointer(checkpoints, nudges))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the SQLite checkpoint thread: {e}")))?;
        let (tx, rx) = mpsc::channel::<Job>(4 * MAX_BATCH);
        let handle = std::thread::Builder::new()
            .name("regulars-sqlite-writer".into())
            .spawn(move || {
                run_writer(writer, rx, batch_sizes, &nudge);
                drop(nudge);
                let _ = checkpointer.join();
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the SQLite writer thread: {e}")))?;
        Ok(SqliteStore {
            jobs: Mutex::new(Some(tx)),
            writer_done: Mutex::new(Some(handle)),
            readers: Readers { idle: Mutex::new(Vec::new()), permits: Semaphore::new(READERS), path: path.to_owned() },
            path: path.to_owned(),
        })
    }

    /// A separate connection for migrations, which run before any other write.
    pub(crate) fn writer_for_migrations(&self) -> Result<SqliteConn> {
        Ok(SqliteConn::new(open_writer(&self.path)?))
    }

    pub(crate) async fn reader(&self) -> Result<Reader<'_>> {
        self.readers.acquire().await
    }

    /// Queues `op` for the writer and waits until it has committed (or failed).
    pub(crate) async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConn) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        self.write_with(Durability::Synced, op).await
    }

    /// Queues `op` for the writer with the given durability and waits until it has committed.
    pub(crate) async fn write_with<T, F>(&self, durability: Durability, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConn) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let (done_tx, done_rx) = oneshot::channel::<Result<T>>();
        let run: Run = Box::new(move |conn| {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| run_ready(op(conn))))
                .unwrap_or_else(|_| Err(StoreError::Corrupt("the write panicked and was rolled back".into())));
            let ok = result.is_ok();
            let deliver: Deliver = Box::new(move |commit| {
                let _ = done_tx.send(commit.and(result));
            });
            (ok, deliver)
        });
        let job = Job { run, kind: Kind::Write(durability) };
        let sender = self.jobs.lock().expect("jobs lock").clone().ok_or(StoreError::Closed)?;
        sender.send(job).await.map_err(|_| StoreError::Closed)?;
        done_rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Waits until everything committed so far, deferred commits included, is on disk: the WAL is synced
    /// and copied into the database file (a checkpoint), then the database file is synced.
    pub(crate) async fn sync(&self) -> Result<()> {
        let (done_tx, done_rx) = oneshot::channel::<Result<()>>();
        let run: Run = Box::new(move |conn| {
            let result = conn.checkpoint();
            (true, Box::new(move |_| drop(done_tx.send(result))))
        });
        let sender = self.jobs.lock().expect("jobs lock").clone().ok_or(StoreError::Closed)?;
        sender.send(Job { run, kind: Kind::Maintenance }).await.map_err(|_| StoreError::Closed)?;
        done_rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Stops taking writes, waits for the queued ones to commit, and closes the connections.
    pub(crate) async fn close(&self) {
        self.jobs.lock().expect("jobs lock").take();
        let handle = self.writer_done.lock().expect("writer lock").take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        self.readers.permits.close();
        self.readers.idle.lock().expect("readers lock").clear();
    }
}

fn run_writer(
    mut conn: SqliteConn,
    mut jobs: mpsc::Receiver<Job>,
    batch_sizes: Histogram,
    checkpoint: &std::sync::mpsc::SyncSender<()>,
) {
    let mut batch: Vec<Run> = Vec::with_capacity(MAX_BATCH);
    let mut deliveries: Vec<Deliver> = Vec::with_capacity(MAX_BATCH);
    // A job taken while gathering a batch that may not join it runs next.
    let mut next: Option<Job> = None;
    while let Some(first) = next.take().or_else(|| jobs.blocking_recv()) {
        let durability = match first.kind {
            Kind::Maintenance => {
                let (_, deliver) = (first.run)(&mut conn);
                deliver(Ok(()));
                continue;
            }
            Kind::Write(durability) => durability,
        };
        batch.push(first.run);
        while durability == Durability::Synced && batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) if job.kind == Kind::Write(Durability::Synced) => batch.push(job.run),
                Ok(job) => {
                    next = Some(job);
                    break;
                }
                Err(_) => break,
            }
        }
        let outcome = match durability {
            Durability::Synced => run_batch(&mut conn, &mut batch, &mut deliveries),
            Durability::Deferred => {
                let outcome = match conn.run("PRAGMA synchronous = NORMAL") {
                    Ok(()) => run_batch(&mut conn, &mut batch, &mut deliveries),
                    Err(e) => {
                        // The job is dropped unrun: its caller learns the store failed.
                        batch.clear();
                        Err(e)
                    }
                };
                // Back to synced commits whatever happened; if that fails, no later write may commit.
                if let Err(e) = conn.run("PRAGMA synchronous = FULL") {
                    panic!("cannot restore synchronous=FULL on the SQLite writer: {e}");
                }
                outcome
            }
        };
        batch_sizes.observe(deliveries.len() as f64);
        // Full means a checkpoint is already asked for.
        let _ = checkpoint.try_send(());
        for deliver in deliveries.drain(..) {
            deliver(match &outcome {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Corrupt(format!("commit failed: {e}"))),
            });
        }
    }
}

fn run_batch(conn: &mut SqliteConn, batch: &mut Vec<Run>, deliveries: &mut Vec<Deliver>) -> Result<()> {
    let outcome = (|| {
        conn.run("BEGIN IMMEDIATE")?;
        if batch.len() == 1 {
            // Alone in its transaction, a job needs no savepoint: if it fails, the transaction goes.
            let (ok, deliver) = (batch.pop().expect("one job"))(conn);
            deliveries.push(deliver);
            return conn.run(if ok { "COMMIT" } else { "ROLLBACK" });
        }
        for job in batch.drain(..) {
            conn.run("SAVEPOINT job")?;
            let (ok, deliver) = job(conn);
            deliveries.push(deliver);
            if !ok {
                conn.run("ROLLBACK TO job")?;
            }
            conn.run("RELEASE job")?;
        }
        conn.run("COMMIT")
    })();
    if outcome.is_err() {
        let _ = conn.run("ROLLBACK");
        // Jobs that did not run are dropped: their callers learn the store failed.
        batch.clear();
    }
    outcome
}

/// A few read-only connections, opened as needed.
struct Readers {
    idle: Mutex<Vec<SqliteConn>>,
    permits: Semaphore,
    path: String,
}

impl Readers {
    async fn acquire(&self) -> Result<Reader<'_>> {
        let permit = self.permits.acquire().await.map_err(|_| StoreError::Closed)?;
        let idle = self.idle.lock().expect("readers lock").pop();
        let conn = match idle {
            Some(conn) => conn,
            None => SqliteConn::new(open(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)?),
        };
        Ok(Reader { conn: Some(conn), readers: self, _permit: permit })
    }
}

/// A read connection borrowed from the pool; it goes back when dropped.
pub(crate) struct Reader<'a> {
    conn: Option<SqliteConn>,
    readers: &'a Readers,
    _permit: SemaphorePermit<'a>,
}

impl std::ops::Deref for Reader<'_> {
    type Target = SqliteConn;
    fn deref(&self) -> &SqliteConn {
        self.conn.as_ref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConn {
        self.conn.as_mut().expect("held until dropped")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.readers.idle.lock().expect("readers lock").push(conn);
        }
    }
}

/// Runs `work`, a long read, telling a multi-threaded runtime to move its other tasks off this thread.
pub(crate) fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(work),
        _ => work(),
    }
}
