//! Migrations embedded in the binary, one list per backend, applied in order at start and by
//! `regulars migrate`. Each runs in its own transaction together with its row in `schema_migrations`.

use sqlx::{Connection, PgConnection, SqliteConnection};

use crate::{Result, StoreError};

const SQLITE: &[(u32, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_analytics.sql")),
];
const POSTGRES: &[(u32, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (2, include_str!("../migrations/postgres/0002_analytics.sql")),
];

const CREATE_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";

macro_rules! apply {
    ($name:ident, $Conn:ty, $list:expr, $lock:expr) => {
        pub(crate) async fn $name(conn: &mut $Conn) -> Result<Vec<u32>> {
            sqlx::query(CREATE_TABLE).execute(&mut *conn).await?;
            let mut applied = Vec::new();
            for &(version, sql) in $list {
                let mut tx = conn.begin().await?;
                if let Some(lock) = $lock {
                    sqlx::query(lock).execute(&mut *tx).await?;
                }
                let done: Option<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                    .bind(i64::from(version))
                    .fetch_optional(&mut *tx)
                    .await?;
                if done.is_some() {
                    continue;
                }
                sqlx::raw_sql(sql)
                    .execute(&mut *tx)
                    .await
                    .map_err(|source| StoreError::Migration { version, source })?;
                sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                    .bind(i64::from(version))
                    .bind(chrono::Utc::now().timestamp_micros())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                applied.push(version);
            }
            let newest: Option<i64> =
                sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations").fetch_one(&mut *conn).await?;
            let known = $list.last().map_or(0, |&(v, _)| v);
            match newest {
                Some(found) if found > i64::from(known) => Err(StoreError::SchemaTooNew { found, known }),
                _ => Ok(applied),
            }
        }
    };
}

apply!(apply_sqlite, SqliteConnection, SQLITE, None::<&str>);
// Serialises concurrent starts of several servers on one PostgreSQL database.
apply!(apply_postgres, PgConnection, POSTGRES, Some("SELECT pg_advisory_xact_lock(7261)"));
