//! The store: everything Regulars keeps, behind one interface with two backends.
//!
//! - **SQLite** (the embedded default, on rusqlite): one file in WAL mode with `synchronous=FULL`. All
//!   writes go through one writer thread that runs queued writes back to back inside one transaction and commits
//!   them together (group commit: many requests, one fsync). Reads use a small pool of connections.
//! - **PostgreSQL** (on sqlx): every write is its own transaction on a pooled connection.
//!
//! The SQL of each operation is written once (`ops.rs`) against one small connection API (`db.rs`)
//! and compiled for both backends, so they cannot drift; the conformance suite (`tests/conformance.rs`) runs the same tests against both.
//! Only this crate knows SQL. A write is acknowledged only after its transaction has committed.

mod db;
mod keys;
#[macro_use]
mod ledger;
#[macro_use]
mod rewards;
mod migrate;
#[macro_use]
mod tiers;
mod ops;
mod postgres;
mod sqlite;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use prometheus_client::metrics::histogram::Histogram;
use regulars_core::loyalty::{Finding, HoldId, Request, StatementLine};
use regulars_core::{
    Customer, CustomerDraft, CustomerId, CustomerPatch, Email, ExternalId, FieldError, ImportedOrder, LoyaltyHoldId,
    Order, OrderDraft, OrderId, Phone, Product, ProductDraft, ProductId, Refund, RefundDraft, Role,
};

pub use keys::{ApiKey, NewApiKey, hash_secret};
pub use ledger::{
    CouponBatch, CouponBatchDraft, CouponOffer, CouponRedeemed, CouponState, LedgerReceipt, ProgramVersion,
    WalletHistory, WalletView,
};
pub use rewards::{
    CouponHold, PunchCardView, RewardDelivery, RewardRedeemed, Sale, SaleGrant, StoredPromotion, StoredReward,
};
pub use tiers::{LoyaltyEvent, LoyaltyTick, TierChangeRecord, TierView};

/// Why a store operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Something the operation refers to does not exist; `field` names the input that pointed at it.
    #[error("{field}: {what} does not exist")]
    NotFound { field: String, what: String },
    /// The input is well-formed but does not fit what is stored (e.g. refunding more than is left).
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// A unique value is already taken by another record.
    #[error("{field}: {value:?} is already used by {existing}")]
    AlreadyExists { field: String, value: String, existing: String },
    /// The loyalty rules refused the request; nothing was written.
    #[error("{0}")]
    Refused(regulars_core::loyalty::Refusal),
    /// Another request finished with the same idempotency key while this one ran.
    #[error("the idempotency key was used concurrently")]
    IdempotencyRace,
    /// The URL names no backend this program knows.
    #[error("unsupported database URL {0:?}: expected sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("migration {version} failed: {reason}")]
    Migration { version: u32, reason: String },
    #[error("the database is newer than this program (schema version {found}, this program knows {known})")]
    SchemaTooNew { found: i64, known: u32 },
    /// The writer stopped (the server is shutting down or the database failed).
    #[error("the store is shutting down")]
    Closed,
    /// A stored value or a result does not have the shape this program wrote.
    #[error("the database holds something unexpected: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl StoreError {
    /// The database cannot be reached right now (as opposed to a request it refused).
    pub fn is_unavailable(&self) -> bool {
        use rusqlite::ErrorCode::{CannotOpen, DatabaseBusy, DatabaseLocked, DiskFull, SystemIoFailure};
        match self {
            StoreError::Closed
            | StoreError::Database(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)) => true,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                matches!(e.code, CannotOpen | DatabaseBusy | DatabaseLocked | DiskFull | SystemIoFailure)
            }
            _ => false,
        }
    }

    pub(crate) fn not_found(field: &str, what: impl Into<String>) -> Self {
        StoreError::NotFound { field: field.to_owned(), what: what.into() }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A response stored under an idempotency key, returned unchanged on replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub request_hash: String,
    pub status: u16,
    pub body: String,
}

/// Turns a write's result into the `(status, body)` to store for replays.
pub type RenderResponse<T> = Box<dyn FnOnce(&T) -> (u16, String) + Send>;

/// Makes a write idempotent: its response is stored in the same transaction as its effect.
pub struct Idempotency<T> {
    /// Who the key belongs to (the API key's id), so two callers cannot collide.
    pub scope: String,
    pub key: String,
    pub request_hash: String,
    /// Renders the response to store from the write's result: `(status, body)`.
    pub render: RenderResponse<T>,
}

/// What `Store::verify_loyalty` found: how many wallets it checked, and every finding by customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoyaltyVerification {
    pub wallets: u64,
    pub findings: Vec<(CustomerId, Finding)>,
}

/// Where a lookup starts from.
#[derive(Debug, Clone)]
pub enum CustomerLookup {
    ExternalId(ExternalId),
    Email(Email),
    Phone(Phone),
}

/// Everything stored about one customer.
#[derive(Debug, Clone)]
pub struct CustomerExport {
    pub customer: Customer,
    pub orders: Vec<Order>,
    pub refunds: Vec<Refund>,
}

/// What recording one batch of imported orders did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub orders_created: u64,
    pub orders_existing: u64,
    pub customers_created: u64,
    pub refunds_created: u64,
    pub lines_created: u64,
}

impl std::ops::AddAssign for ImportSummary {
    fn add_assign(&mut self, o: Self) {
        self.orders_created += o.orders_created;
        self.orders_existing += o.orders_existing;
        self.customers_created += o.customers_created;
        self.refunds_created += o.refunds_created;
        self.lines_created += o.lines_created;
    }
}

/// Counts for the health endpoint and the demo loader.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    pub customers: i64,
    pub orders: i64,
    pub api_keys: i64,
}

/// One customer's figures in an analytics snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerFigures {
    pub customer_id: CustomerId,
    /// Repeat purchases.
    pub frequency: u32,
    pub total_spend_minor: i64,
    pub last_purchase: NaiveDate,
    pub probability_alive: Option<f64>,
    /// Expected purchases over the snapshot's horizon.
    pub expected_purchases: Option<f64>,
    /// Expected average order value (minor units).
    pub expected_value: Option<f64>,
    /// Lifetime value over the snapshot's horizon (minor units).
    pub clv: Option<f64>,
    pub segment: String,
    /// Recency, frequency and monetary scores, e.g. `"543"`.
    pub rfm: String,
    pub median_gap_days: Option<f64>,
    pub overdue: bool,
    /// What the shop stands to lose: (1 - probability alive) x total spend.
    pub value_at_risk: f64,
}

/// A dated analytics snapshot: the whole report as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub id: i64,
    pub computed_at: DateTime<Utc>,
    pub as_of: NaiveDate,
    pub report_json: String,
}

/// One order as the analytics see it: customer key, time, net amount (total less refunds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purchase {
    pub customer_key: i64,
    pub placed_at: DateTime<Utc>,
    pub net_minor: i64,
}

/// The store, on one of its backends.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    commit_batch_sizes: Histogram,
    programs: Arc<ledger::ProgramCache>,
}

#[derive(Clone)]
enum Backend {
    Sqlite(Arc<sqlite::SqliteStore>),
    Postgres(Arc<postgres::PgStore>),
}

/// Runs `$body` with `$c` bound to a writing connection of whichever backend, with `ops` in scope.
macro_rules! write {
    ($self:ident, $c:ident => $body:expr) => {
        match &$self.backend {
            Backend::Sqlite(s) => {
                s.write(move |$c| {
                    Box::pin(async move {
                        #[allow(unused_imports)]
                        use crate::ops::sqlite as ops;
                        $body.await
                    })
                })
                .await
            }
            Backend::Postgres(p) => {
                p.write(move |$c| {
                    Box::pin(async move {
                        #[allow(unused_imports)]
                        use crate::ops::postgres as ops;
                        $body.await
                    })
                })
                .await
            }
        }
    };
}

/// Runs `$body` with `$c` bound to a reading connection of whichever backend.
macro_rules! read {
    ($self:ident, $c:ident => $body:expr) => {
        match &$self.backend {
            Backend::Sqlite(s) => {
                #[allow(unused_imports)]
                use crate::ops::sqlite as ops;
                let mut conn = s.reader().await?;
                let $c: &mut crate::db::SqliteConn = &mut *conn;
                $body.await
            }
            Backend::Postgres(p) => {
                #[allow(unused_imports)]
                use crate::ops::postgres as ops;
                let mut conn = p.pool.acquire().await?;
                let $c = &mut *conn;
                $body.await
            }
        }
    };
}

/// Applies `idem` after a successful write, in the same transaction.
macro_rules! with_idempotency {
    ($c:ident, $idem:ident, $result:expr) => {{
        let value = $result?;
        if let Some(idem) = $idem {
            let (status, body) = (idem.render)(&value);
            ops::store_idempotent_response($c, &idem.scope, &idem.key, &idem.request_hash, status, &body).await?;
        }
        Ok(value)
    }};
}

/// Like `with_idempotency!` for a ledger write that may be refused: `$result` is a
/// `Result<Result<LedgerReceipt, Refusal>>`; the response is stored only for a receipt (a refusal is judged
/// afresh on a retry), and the macro's value is `Result<Result<LedgerReceipt, Refusal>>`.
macro_rules! with_idempotency_unless_refused {
    ($c:ident, $idem:ident, $result:expr) => {{
        match $result? {
            Ok(done) => {
                if let Some(idem) = $idem {
                    let (status, body) = (idem.render)(&done);
                    ops::store_idempotent_response($c, &idem.scope, &idem.key, &idem.request_hash, status, &body)
                        .await?;
                }
                Ok(Ok(done))
            }
            Err(refusal) => Ok(Err(refusal)),
        }
    }};
}

impl Store {
    /// Opens (creating if missing) the database at `url` and applies pending migrations.
    pub async fn open(url: &str) -> Result<Store> {
        let commit_batch_sizes = Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]);
        let backend = if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            Backend::Sqlite(Arc::new(sqlite::SqliteStore::open(path, commit_batch_sizes.clone()).await?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres(Arc::new(postgres::PgStore::open(url, commit_batch_sizes.clone()).await?))
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let store = Store { backend, commit_batch_sizes, programs: Arc::default() };
        store.migrate().await?;
        Ok(store)
    }

    /// The backend's name: `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// How many writes each commit carried (always 1 on PostgreSQL).
    pub fn commit_batch_sizes(&self) -> Histogram {
        self.commit_batch_sizes.clone()
    }

    /// Applies the migrations this program has and the database lacks; returns the versions applied.
    pub async fn migrate(&self) -> Result<Vec<u32>> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let mut c = s.writer_for_migrations()?;
                crate::db::run_ready(migrate::apply(&mut c, migrate::SQLITE, migrate::SQLITE_BEGIN))
            }
            Backend::Postgres(p) => {
                let mut c = p.pool.acquire().await?;
                migrate::apply(&mut *c, migrate::POSTGRES, migrate::POSTGRES_BEGIN).await
            }
        }
    }

    /// Waits for queued writes and closes the database cleanly.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(s) => s.close().await,
            Backend::Postgres(p) => p.pool.close().await,
        }
    }

    pub async fn ping(&self) -> Result<()> {
        read!(self, c => ops::ping(c))
    }

    pub async fn counts(&self) -> Result<StoreCounts> {
        read!(self, c => ops::counts(c))
    }

    // ----- customers -----

    pub async fn create_customer(
        &self,
        draft: CustomerDraft,
        now: DateTime<Utc>,
        idem: Option<Idempotency<Customer>>,
    ) -> Result<Customer> {
        write!(self, c => async move { with_idempotency!(c, idem, ops::insert_customer(c, &draft, now).await) })
    }

    pub async fn update_customer(
        &self,
        id: CustomerId,
        patch: CustomerPatch,
        idem: Option<Idempotency<Customer>>,
    ) -> Result<Customer> {
        write!(self, c => async move { with_idempotency!(c, idem, ops::update_customer(c, id, &patch).await) })
    }

    pub async fn customer(&self, id: CustomerId) -> Result<Option<Customer>> {
        read!(self, c => ops::customer(c, id))
    }

    /// Customers in id order, starting after `after`.
    pub async fn customers(&self, after: Option<CustomerId>, limit: u32) -> Result<Vec<Customer>> {
        read!(self, c => ops::customers(c, after, limit))
    }

    pub async fn find_customers(&self, lookup: CustomerLookup, limit: u32) -> Result<Vec<Customer>> {
        read!(self, c => ops::find_customers(c, &lookup, limit))
    }

    /// Everything stored about one customer.
    pub async fn export_customer(&self, id: CustomerId) -> Result<Option<CustomerExport>> {
        read!(self, c => ops::export_customer(c, id))
    }

    /// Removes a customer's personal fields; orders stay, under the customer's id and a pseudonym.
    pub async fn erase_customer(
        &self,
        id: CustomerId,
        now: DateTime<Utc>,
        idem: Option<Idempotency<Customer>>,
    ) -> Result<Customer> {
        write!(self, c => async move { with_idempotency!(c, idem, ops::erase_customer(c, id, now).await) })
    }

    // ----- products -----

    /// Creates a product, or updates the one with the same SKU.
    pub async fn upsert_product(&self, draft: ProductDraft, idem: Option<Idempotency<Product>>) -> Result<Product> {
        write!(self, c => async move { with_idempotency!(c, idem, ops::upsert_product(c, &draft).await) })
    }

    pub async fn product(&self, id: ProductId) -> Result<Option<Product>> {
        read!(self, c => ops::product(c, id))
    }

    pub async fn products(&self, after: Option<ProductId>, limit: u32) -> Result<Vec<Product>> {
        read!(self, c => ops::products(c, after, limit))
    }

    // ----- orders and refunds -----

    /// Records an order; if one with the same external id exists, returns it and `false` instead.
    pub async fn record_order(
        &self,
        draft: OrderDraft,
        now: DateTime<Utc>,
        idem: Option<Idempotency<(Order, bool)>>,
    ) -> Result<(Order, bool)> {
        let programs = self.programs.clone();
        write!(self, c => async move { with_idempotency!(c, idem, ops::record_order(c, &draft, now, &programs).await) })
    }

    pub async fn order(&self, id: OrderId) -> Result<Option<Order>> {
        read!(self, c => ops::order(c, id))
    }

    /// A customer's orders in id order, starting after `after`.
    pub async fn orders_of_customer(
        &self,
        customer: CustomerId,
        after: Option<OrderId>,
        limit: u32,
    ) -> Result<Vec<Order>> {
        read!(self, c => ops::orders_of_customer(c, customer, after, limit))
    }

    /// Records a refund; if one with the same external id exists, returns it and `false` instead.
    /// A refund of an order that earned points takes them back (as much as was returned) in the same
    /// transaction, at `now`.
    pub async fn record_refund(
        &self,
        draft: RefundDraft,
        now: DateTime<Utc>,
        idem: Option<Idempotency<(Refund, bool)>>,
    ) -> Result<(Refund, bool)> {
        let programs = self.programs.clone();
        write!(self, c => async move { with_idempotency!(c, idem, ops::record_refund(c, &draft, now, &programs).await) })
    }

    pub async fn refunds_of_order(&self, order: OrderId) -> Result<Vec<Refund>> {
        read!(self, c => ops::refunds_of_order(c, order))
    }

    /// Records imported orders, creating missing customers and products. Orders whose external id is
    /// already stored are left alone, so importing the same file again changes nothing.
    pub async fn import_orders(&self, batch: Vec<ImportedOrder>, now: DateTime<Utc>) -> Result<ImportSummary> {
        // The batch is freed here, not on the SQLite writer thread, which has better things to do.
        let batch = Arc::new(batch);
        let shared = batch.clone();
        let programs = self.programs.clone();
        match &self.backend {
            // Deferred: an import is acknowledged by `sync` at its end, and importing again resumes it.
            Backend::Sqlite(s) => {
                s.write_with(sqlite::Durability::Deferred, move |c| {
                    Box::pin(async move { ops::sqlite::import_orders(c, &shared, now, &programs).await })
                })
                .await
            }
            Backend::Postgres(_) => {
                write!(self, c => async move { ops::import_orders(c, &shared, now, &programs).await })
            }
        }
    }

    /// Returns once every write committed so far is on disk. Imported batches commit without waiting
    /// for the disk on SQLite; an import calls this before it reports success. Every other write is
    /// synced before it is acknowledged, on both backends.
    pub async fn sync(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(s) => s.sync().await,
            Backend::Postgres(_) => Ok(()),
        }
    }

    // ----- analytics snapshots -----

    /// Every order as a purchase, by customer then time.
    pub async fn purchases(&self) -> Result<Vec<Purchase>> {
        match &self.backend {
            // Millions of rows: let the runtime move its other tasks off this thread meanwhile.
            Backend::Sqlite(s) => {
                let mut conn = s.reader().await?;
                sqlite::blocking(|| db::run_ready(ops::sqlite::purchases(&mut conn)))
            }
            Backend::Postgres(_) => read!(self, c => ops::purchases(c)),
        }
    }

    /// Stores a snapshot and its figures, keeping only this one and the one before.
    pub async fn save_snapshot(
        &self,
        computed_at: DateTime<Utc>,
        as_of: NaiveDate,
        report_json: String,
        figures: Vec<CustomerFigures>,
    ) -> Result<i64> {
        write!(self, c => async move { ops::save_snapshot(c, computed_at, as_of, &report_json, &figures).await })
    }

    pub async fn latest_snapshot(&self) -> Result<Option<Snapshot>> {
        read!(self, c => ops::latest_snapshot(c))
    }

    pub async fn customer_figures(&self, snapshot_id: i64, customer: CustomerId) -> Result<Option<CustomerFigures>> {
        read!(self, c => ops::customer_figures(c, snapshot_id, customer))
    }

    /// The customers with the most value at risk, most first.
    pub async fn at_risk(&self, snapshot_id: i64, limit: u32) -> Result<Vec<CustomerFigures>> {
        read!(self, c => ops::at_risk(c, snapshot_id, limit))
    }

    // ----- loyalty -----

    /// Runs one request on a customer's wallet in one transaction: what time did first, then the request.
    /// A refusal is `StoreError::Refused` and writes nothing but what time did; a request id seen before
    /// returns the first receipt (`replayed`).
    pub async fn ledger_execute(
        &self,
        customer: CustomerId,
        request: Request,
        now: DateTime<Utc>,
        idem: Option<Idempotency<LedgerReceipt>>,
    ) -> Result<LedgerReceipt> {
        let result = write!(self, c => async move {
            with_idempotency_unless_refused!(c, idem, ops::ledger::execute(c, customer, &request, now).await)
        })?;
        result.map_err(StoreError::Refused)
    }

    /// Writes what time did to a wallet up to `now` (lots maturing and expiring, holds timing out);
    /// returns the number of postings made.
    pub async fn ledger_settle(&self, customer: CustomerId, now: DateTime<Utc>) -> Result<usize> {
        write!(self, c => ops::ledger::settle(c, customer, now))
    }

    /// The expiry job's step: writes what time did up to `now` to every wallet where something is due
    /// (lots maturing or expiring, holds timing out), `batch` wallets at a time, each in its own
    /// transaction. Reads and writes settle lazily anyway; this keeps the stored balances current for
    /// reports. Returns the wallets settled and the postings made.
    pub async fn settle_due(&self, now: DateTime<Utc>, batch: u32) -> Result<(u64, u64)> {
        let (mut wallets, mut postings) = (0, 0);
        loop {
            let due = read!(self, c => ops::ledger::due_wallets(c, now, batch))?;
            let last_batch = due.len() < batch as usize;
            for customer in due {
                postings += self.ledger_settle(customer, now).await? as u64;
                wallets += 1;
            }
            if last_batch {
                return Ok((wallets, postings));
            }
        }
    }

    /// A customer's wallet as it stands at `now`; `None` when there is no such customer.
    pub async fn wallet(&self, customer: CustomerId, now: DateTime<Utc>) -> Result<Option<WalletView>> {
        read!(self, c => ops::ledger::wallet(c, customer, now))
    }

    /// Every lot, hold and posting of a customer's wallet, as stored.
    pub async fn wallet_history(&self, customer: CustomerId) -> Result<Option<WalletHistory>> {
        read!(self, c => ops::ledger::history(c, customer))
    }

    /// A customer's statement at `now`: every posting in plain words, with what time did since the last
    /// write; `None` when there is no such customer.
    pub async fn statement(&self, customer: CustomerId, now: DateTime<Utc>) -> Result<Option<Vec<StatementLine>>> {
        let Some(mut history) = self.wallet_history(customer).await? else { return Ok(None) };
        let settled = regulars_core::loyalty::settle(&history.state, now);
        history.postings.extend(settled.postings);
        Ok(Some(regulars_core::loyalty::statement(&history.postings)))
    }

    /// Checks every wallet's ledger (`loyalty::verify`): the stored balances, lot and hold figures and
    /// per-order totals against the postings, and the postings themselves.
    pub async fn verify_loyalty(&self) -> Result<LoyaltyVerification> {
        let mut findings = Vec::new();
        let mut wallets = 0;
        let mut after = 0;
        loop {
            let page = read!(self, c => ops::ledger::wallets(c, after, 500))?;
            let Some(last) = page.last() else { break };
            after = last.key();
            for customer in page {
                wallets += 1;
                if let Some(history) = self.wallet_history(customer).await? {
                    let found = regulars_core::loyalty::verify(&history.state, &history.postings);
                    findings.extend(found.into_iter().map(|f| (customer, f)));
                }
            }
        }
        Ok(LoyaltyVerification { wallets, findings })
    }

    /// Which customer's wallet a hold belongs to, and its number there.
    pub async fn hold_owner(&self, hold: LoyaltyHoldId) -> Result<Option<(CustomerId, HoldId)>> {
        read!(self, c => ops::ledger::hold_owner(c, hold))
    }

    /// Stores a new version of the program definition (TOML) after checking it; errors name the field.
    pub async fn set_program(
        &self,
        definition: String,
        now: DateTime<Utc>,
        idem: Option<Idempotency<ProgramVersion>>,
    ) -> Result<ProgramVersion> {
        let program = Arc::new(regulars_core::loyalty::Program::from_toml(&definition)?);
        write!(self, c => async move {
            with_idempotency!(c, idem, ops::ledger::set_program(c, &definition, program, now).await)
        })
    }

    /// Creates a batch of coupons with unguessable codes (80 random bits each, `loyalty::coupons`).
    pub async fn create_coupons(
        &self,
        draft: CouponBatchDraft,
        now: DateTime<Utc>,
        idem: Option<Idempotency<CouponBatch>>,
    ) -> Result<CouponBatch> {
        use rand::RngCore;
        if !(1..=10_000).contains(&draft.count) {
            return Err(FieldError::new("count", "a batch has 1 to 10,000 codes").into());
        }
        let mut codes = std::collections::BTreeSet::new();
        while codes.len() < draft.count as usize {
            let mut random = [0u8; 10];
            rand::rngs::OsRng.fill_bytes(&mut random);
            codes.insert(regulars_core::loyalty::coupons::CouponCode::generate(&random)?);
        }
        let codes: Vec<_> = codes.into_iter().collect();
        write!(self, c => async move {
            with_idempotency!(c, idem, ops::ledger::create_coupons(c, &draft, &codes, now).await)
        })
    }

    /// A coupon and how often it was used, overall and by `customer`; `None` when there is no such code.
    pub async fn coupon(
        &self,
        code: &regulars_core::loyalty::coupons::CouponCode,
        customer: Option<CustomerId>,
    ) -> Result<Option<CouponState>> {
        read!(self, c => ops::ledger::coupon(c, code, customer))
    }

    /// Redeems a coupon: `StoreError::Refused` with `coupon_exhausted`, `coupon_limit_per_customer`,
    /// `coupon_expired`, ... when it may not be, and then nothing is written.
    pub async fn redeem_coupon(
        &self,
        code: regulars_core::loyalty::coupons::CouponCode,
        customer: CustomerId,
        now: DateTime<Utc>,
        idem: Option<Idempotency<CouponRedeemed>>,
    ) -> Result<CouponRedeemed> {
        write!(self, c => async move {
            with_idempotency!(c, idem, ops::ledger::redeem_coupon(c, &code, customer, now).await)
        })
    }

    /// The current program, if one was defined.
    pub async fn program(&self) -> Result<Option<ProgramVersion>> {
        read!(self, c => ops::ledger::program(c))
    }

    /// What the earning rules need about a customer: their tier, purchases so far, and the categories of
    /// `skus`.
    pub async fn order_context(
        &self,
        program: Arc<regulars_core::loyalty::Program>,
        customer: Option<CustomerId>,
        skus: Vec<regulars_core::Sku>,
    ) -> Result<(Option<String>, u32, std::collections::BTreeMap<regulars_core::Sku, String>)> {
        let skus: Vec<&regulars_core::Sku> = skus.iter().collect();
        read!(self, c => ops::ledger::order_context(c, &program, customer, None, &skus))
    }

    // ----- idempotency -----

    pub async fn idempotent_response(&self, scope: &str, key: &str) -> Result<Option<StoredResponse>> {
        read!(self, c => ops::idempotent_response(c, scope, key))
    }

    // ----- API keys -----

    /// Creates a key; the returned secret is shown once and never stored.
    pub async fn create_api_key(&self, name: &str, role: Role, now: DateTime<Utc>) -> Result<NewApiKey> {
        let name = regulars_core::text::bounded_text("name", name, 100)?;
        let (prefix, secret) = keys::generate();
        let hash = hash_secret(&secret);
        let key = write!(self, c => ops::insert_api_key(c, &prefix, &hash, &name, role, now))?;
        Ok(NewApiKey { key, secret })
    }

    /// The live key matching `secret`, if any.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<ApiKey>> {
        let Some(prefix) = keys::prefix_of(secret) else { return Ok(None) };
        let found = read!(self, c => ops::api_key_by_prefix(c, prefix))?;
        Ok(found
            .filter(|(key, hash)| key.revoked_at.is_none() && keys::hashes_match(hash, &hash_secret(secret)))
            .map(|(k, _)| k))
    }

    pub async fn api_keys(&self) -> Result<Vec<ApiKey>> {
        read!(self, c => ops::api_keys(c))
    }

    /// Revokes the key with this prefix; returns it, or `None` when there is no such key.
    pub async fn revoke_api_key(&self, prefix: &str, now: DateTime<Utc>) -> Result<Option<ApiKey>> {
        let prefix = prefix.to_owned();
        write!(self, c => ops::revoke_api_key(c, &prefix, now))
    }
}

// Rewards, punch cards, coupon holds, promotions and sales: `rewards_store.rs` (after the macros above).
mod rewards_store;
// After the macros above, which its methods use.
mod loyalty_jobs;
