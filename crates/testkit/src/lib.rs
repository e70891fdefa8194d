//! What the tests share: a fresh database on either backend.
//!
//! PostgreSQL tests need `REGULARS_TEST_POSTGRES_URL` (an administrator URL; `scripts/test` starts a
//! throwaway cluster and sets it). Without it they fail with a message saying so; they never skip.

use rand::Rng;
use regulars_store::Store;
use sqlx::Connection;

/// A fresh, empty, migrated database that lives as long as this value.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A new SQLite file in a temporary directory.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("regulars.db").display());
        let store = Store::open(&url).await.expect("open SQLite store");
        TestDb { store, url, _dir: Some(dir) }
    }

    /// A new database on the test PostgreSQL cluster.
    pub async fn postgres() -> TestDb {
        let url = postgres_database().await;
        let store = Store::open(&url).await.expect("open PostgreSQL store");
        TestDb { store, url, _dir: None }
    }
}

/// Creates an empty database on the test cluster and returns its URL.
pub async fn postgres_database() -> String {
    let admin = std::env::var("REGULARS_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "REGULARS_TEST_POSTGRES_URL is not set: run the tests with scripts/test, which starts a throwaway \
             PostgreSQL cluster, or point it at a server where this user may CREATE DATABASE"
        )
    });
    let name = format!("regulars_test_{:016x}", rand::thread_rng().r#gen::<u64>());
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect to the test PostgreSQL cluster");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
    conn.close().await.ok();
    let (base, _) = admin.rsplit_once('/').expect("the URL names a database");
    format!("{base}/{name}")
}
