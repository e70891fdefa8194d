//! Migrations embedded in the binary, one list per backend, applied in order at start and by
//! `regulars migrate`. Each runs in its own transaction together with its row in `schema_migrations`.

use crate::Result;
use crate::StoreError;
use crate::db::{Db, Query};

pub(crate) const SQLITE: &[(u32, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_analytics.sql")),
    (3, include_str!("../migrations/sqlite/0003_loyalty.sql")),
    (4, include_str!("../migrations/sqlite/0004_tiers.sql")),
    (5, include_str!("../migrations/sqlite/0005_rewards.sql")),
    (6, include_str!("../migrations/sqlite/0006_earning_locality.sql")),
];
pub(crate) const POSTGRES: &[(u32, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (2, include_str!("../migrations/postgres/0002_analytics.sql")),
    (3, include_str!("../migrations/postgres/0003_loyalty.sql")),
    (4, include_str!("../migrations/postgres/0004_tiers.sql")),
    (5, include_str!("../migrations/postgres/0005_rewards.sql")),
    (6, include_str!("../migrations/postgres/0006_earning_locality.sql")),
];

const CREATE_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";

/// SQLite takes the write lock at once, so two processes cannot both apply a migration.
pub(crate) const SQLITE_BEGIN: &str = "BEGIN IMMEDIATE";
/// The advisory lock serialises concurrent starts of several servers on one PostgreSQL database.
pub(crate) const POSTGRES_BEGIN: &str = "BEGIN; SELECT pg_advisory_xact_lock(7261)";

/// Applies the migrations of `list` the database lacks; returns the versions applied.
pub(crate) async fn apply<C: Db>(conn: &mut C, list: &[(u32, &str)], begin: &str) -> Result<Vec<u32>> {
    conn.execute(Query::new(CREATE_TABLE)).await?;
    let mut applied = Vec::new();
    for &(version, sql) in list {
        conn.execute_script(begin).await?;
        match apply_one(conn, version, sql).await {
            Ok(true) => {
                conn.execute(Query::new("COMMIT")).await?;
                applied.push(version);
            }
            Ok(false) => {
                conn.execute(Query::new("ROLLBACK")).await?;
            }
            Err(e) => {
                let _ = conn.execute(Query::new("ROLLBACK")).await;
                return Err(e);
            }
        }
    }
    let newest: Option<i64> = conn.fetch_one(Query::new("SELECT MAX(version) FROM schema_migrations")).await?.at(0)?;
    let known = list.last().map_or(0, |&(v, _)| v);
    match newest {
        Some(found) if found > i64::from(known) => Err(StoreError::SchemaTooNew { found, known }),
        _ => Ok(applied),
    }
}

/// Applies one migration inside the open transaction, unless it was applied before.
async fn apply_one<C: Db>(conn: &mut C, version: u32, sql: &str) -> Result<bool> {
    let done: Option<i64> = conn
        .fetch_scalar(Query::new("SELECT version FROM schema_migrations WHERE version = $1").bind(i64::from(version)))
        .await?;
    if done.is_some() {
        return Ok(false);
    }
    conn.execute_script(sql).await.map_err(|e| StoreError::Migration { version, reason: e.to_string() })?;
    conn.execute(
        Query::new("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(i64::from(version))
            .bind(chrono::Utc::now().timestamp_micros()),
    )
    .await?;
    Ok(true)
}
