//! The PostgreSQL backend: a connection pool; every write is its own transaction.

use std::time::Duration;

use futures_util::future::BoxFuture;
use prometheus_client::metrics::histogram::Histogram;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

use crate::Result;

pub(crate) struct PgStore {
    pub(crate) pool: PgPool,
    batch_sizes: Histogram,
}

impl PgStore {
    pub(crate) async fn open(url: &str, batch_sizes: Histogram) -> Result<Self> {
        let pool =
            PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(10)).connect(url).await?;
        Ok(PgStore { pool, batch_sizes })
    }

    pub(crate) async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let value = op(&mut tx).await?;
        tx.commit().await?;
        self.batch_sizes.observe(1.0);
        Ok(value)
    }
}
