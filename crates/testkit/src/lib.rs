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

/// A clock the tests move by hand, so that expiry, maturing points and holds timing out are driven by it,
/// never by sleeping. Starts at [`test_now`].
#[derive(Clone)]
pub struct TestClock(std::sync::Arc<std::sync::atomic::AtomicI64>);

impl Default for TestClock {
    fn default() -> Self {
        TestClock(std::sync::Arc::new(std::sync::atomic::AtomicI64::new(test_now().timestamp_micros())))
    }
}

impl TestClock {
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_micros(self.0.load(std::sync::atomic::Ordering::SeqCst)).expect("a valid time")
    }

    pub fn advance(&self, by: chrono::Duration) {
        self.0.fetch_add(by.num_microseconds().expect("a duration in range"), std::sync::atomic::Ordering::SeqCst);
    }

    pub fn set(&self, at: chrono::DateTime<chrono::Utc>) {
        self.0.store(at.timestamp_micros(), std::sync::atomic::Ordering::SeqCst);
    }

    /// The clock as the server takes it.
    pub fn as_clock(&self) -> regulars_server::Clock {
        let clock = self.clone();
        std::sync::Arc::new(move || clock.now())
    }
}

/// A running server on a free loopback port, over a fresh database, with an owner key.
pub struct TestApp {
    pub db: TestDb,
    /// The server's clock: move it to make time pass.
    pub clock: TestClock,
    pub base: String,
    pub owner_key: String,
    pub client: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// The fixed time the test server believes it is.
pub fn test_now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-06-01T10:00:00Z").expect("valid time").with_timezone(&chrono::Utc)
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_on(TestDb::sqlite().await).await
    }

    pub async fn spawn_postgres() -> TestApp {
        TestApp::spawn_on(TestDb::postgres().await).await
    }

    pub async fn spawn_on(db: TestDb) -> TestApp {
        let owner =
            db.store.create_api_key("test owner", regulars_core::Role::Owner, test_now()).await.expect("owner key");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("local address"));
        let clock = TestClock::default();
        let state = regulars_server::AppState::new(db.store.clone(), clock.as_clock());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            regulars_server::serve(listener, state, async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        TestApp {
            db,
            clock,
            base,
            owner_key: owner.secret,
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// A new key with `role`.
    pub async fn key(&self, role: regulars_core::Role) -> String {
        self.db.store.create_api_key(&format!("test {role}"), role, test_now()).await.expect("create key").secret
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request as the owner and returns status and JSON body.
    pub async fn call(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
        self.call_as(&self.owner_key, method, path, body, None).await
    }

    /// Sends a request with `key` and an optional idempotency key; returns status and JSON body.
    pub async fn call_as(
        &self,
        key: &str,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        idempotency_key: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let (status, text) = self.raw(key, method, path, body.map(|b| b.to_string()), idempotency_key).await;
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        (status, json)
    }

    /// Sends a raw body; returns status and the body text, exactly.
    pub async fn raw(
        &self,
        key: &str,
        method: &str,
        path: &str,
        body: Option<String>,
        idempotency_key: Option<&str>,
    ) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, self.url(path)).bearer_auth(key);
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        let response = req.send().await.expect("send request");
        let status = response.status().as_u16();
        (status, response.text().await.expect("read body"))
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        self.db.store.close().await;
    }
}

/// Expands each named `async fn name(db: &TestDb)` of the calling module into two tests, `sqlite::name`
/// and `postgres::name`, each on a fresh database of its backend.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let db = $crate::TestDb::sqlite().await;
                super::$name(&db).await;
                db.store.close().await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let db = $crate::TestDb::postgres().await;
                super::$name(&db).await;
                db.store.close().await;
            })*
        }
    };
}

/// Expands each named `async fn name(app: &TestApp)` of the calling module into two tests, `sqlite::name`
/// and `postgres::name`, each against a fresh server on its backend.
#[macro_export]
macro_rules! on_both_servers {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let app = $crate::TestApp::spawn().await;
                super::$name(&app).await;
                app.stop().await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let app = $crate::TestApp::spawn_postgres().await;
                super::$name(&app).await;
                app.stop().await;
            })*
        }
    };
}

/// Awaits concurrent store writes and sorts their results: what succeeded, and how many were refused with a
/// refusal `expected` accepts. Anything else (another refusal, an error, a panic) fails the test.
pub async fn tally<T>(
    tasks: Vec<tokio::task::JoinHandle<Result<T, regulars_store::StoreError>>>,
    expected: impl Fn(&regulars_core::loyalty::Refusal) -> bool,
) -> (Vec<T>, usize) {
    let (mut done, mut refused) = (Vec::new(), 0);
    for task in tasks {
        match task.await.expect("the write's task panicked") {
            Ok(value) => done.push(value),
            Err(regulars_store::StoreError::Refused(r)) if expected(&r) => refused += 1,
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    (done, refused)
}
