//! The store's ledger against the simple model of `crates/core/tests/model`: random sequences of earn,
//! redeem, hold, capture, void, clock advances (with and without a settlement written), refund clawbacks,
//! adjustments and replays, each run through `Store::ledger_execute` in its own transaction. After every step
//! the wallet as stored (settled at the model's time without writing) agrees with the model, and `verify`
//! is clean. Each case is a fresh customer on one database per backend.
//!
//! The pure ledger's own test runs 2,000 cases; here every step is a committed write (`synchronous=FULL`
//! on SQLite), so each backend runs `REGULARS_LEDGER_CASES` cases (default 200) to keep the suite fast.

#[path = "../../core/tests/model/mod.rs"]
mod model;

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, Utc};
use model::*;
use proptest::test_runner::{Config, TestRunner};
use regulars_core::loyalty::{Clawback, Command, HoldId, Points, Receipt, Refusal, Request, RequestId, Shortfall};
use regulars_core::{CustomerDraft, CustomerId, ExternalId, OrderId, RefundId};
use regulars_store::{Store, StoreError};
use regulars_testkit::TestDb;

static CUSTOMERS: AtomicU64 = AtomicU64::new(0);

struct Driver<'a> {
    store: &'a Store,
    customer: CustomerId,
    accepted: Vec<(RequestId, Command, Receipt)>,
    next_id: u64,
    next_refund: i64,
}

/// What the store answered: a receipt and whether it was a replay, or a refusal.
type Answer = Result<(Receipt, bool), Refusal>;

impl Driver<'_> {
    async fn run(&mut self, id: RequestId, command: Command, now: DateTime<Utc>) -> Answer {
        let request = Request { id: id.clone(), command: command.clone() };
        match self.store.ledger_execute(self.customer, request, now, None).await {
            Ok(done) => {
                if !done.replayed {
                    self.accepted.push((id, command, done.receipt));
                }
                Ok((done.receipt, done.replayed))
            }
            Err(StoreError::Refused(refusal)) => Err(refusal),
            Err(e) => panic!("store error: {e}"),
        }
    }

    fn fresh_id(&mut self) -> RequestId {
        self.next_id += 1;
        RequestId::parse("id", &format!("req-{}", self.next_id)).unwrap()
    }

    async fn check(&self, model: &Model, now: DateTime<Utc>) {
        let history = self.store.wallet_history(self.customer).await.unwrap().unwrap();
        check_against(&history.state, &history.postings, model, now);
        // What the API shows agrees too.
        let view = self.store.wallet(self.customer, now).await.unwrap().unwrap();
        assert_eq!(
            (view.balances.available.get(), view.balances.pending.get(), view.balances.held.get()),
            (model.available(), model.pending(), model.held())
        );
    }
}

async fn step(d: &mut Driver<'_>, model: &mut Model, op: &Op) {
    let now = at(model.now);
    let (expected, actual): (Result<Receipt, Refusal>, Answer) = match *op {
        Op::Advance { hours, settle_now } => {
            model.advance_to(model.now + hours);
            if settle_now {
                d.store.ledger_settle(d.customer, at(model.now)).await.unwrap();
            }
            d.check(model, at(model.now)).await;
            return;
        }
        Op::Earn { points, order, lock_hours, expiry_hours } => {
            let command = earn_command(points, order, now, lock_hours, expiry_hours);
            let id = match order {
                Some(o) => RequestId::for_order(OrderId::from_key(o)),
                None => d.fresh_id(),
            };
            let expected = match order.and_then(|o| model.order_requests.get(&o).copied()) {
                Some(first) if first == points => {
                    let (_, replayed) = d.run(id, command, now).await.expect("a replay of an order is accepted");
                    assert!(replayed);
                    d.check(model, now).await;
                    return;
                }
                Some(_) => Err(Refusal::AmountMismatch),
                None => model.earn(points, order, lock_hours, expiry_hours),
            };
            (expected, d.run(id, command, now).await)
        }
        Op::Redeem { points } => {
            let id = d.fresh_id();
            (model.redeem(points), d.run(id, Command::Redeem { points: Points::new(points), note: None }, now).await)
        }
        Op::Hold { points, ttl_hours } => {
            let id = d.fresh_id();
            let command =
                Command::PlaceHold { points: Points::new(points), expires_at: now + Duration::hours(ttl_hours) };
            (model.hold(points, ttl_hours), d.run(id, command, now).await)
        }
        Op::Capture { pick, points } => {
            let hold = pick % (model.holds.len() as u32 + 2);
            let id = d.fresh_id();
            let command = Command::Capture { hold: HoldId(hold), points: points.map(Points::new) };
            (model.capture(hold, points), d.run(id, command, now).await)
        }
        Op::Void { pick } => {
            let hold = pick % (model.holds.len() as u32 + 2);
            let id = d.fresh_id();
            (model.void(hold), d.run(id, Command::Void { hold: HoldId(hold) }, now).await)
        }
        Op::Clawback { order, refunded_minor, write_off } => {
            let before = model.orders.get(&order).map_or(0, |o| o.2);
            let total = (before + refunded_minor).min(ORDER_NET_MINOR);
            d.next_refund += 1;
            let refund = RefundId::from_key(d.next_refund);
            let command = Command::Clawback(Clawback {
                order: order_ref(order),
                refund,
                order_net_minor: ORDER_NET_MINOR,
                refunded_total_minor: total,
                shortfall: if write_off { Shortfall::WriteOff } else { Shortfall::Debt },
            });
            (model.clawback(order, total, write_off), d.run(RequestId::for_refund(refund), command, now).await)
        }
        Op::Adjust { points } => {
            let id = d.fresh_id();
            let command = Command::Adjust { points: Points::new(points), note: "correction".into(), expires_at: None };
            (model.adjust(points), d.run(id, command, now).await)
        }
        Op::Replay { pick, change } => {
            if d.accepted.is_empty() {
                return;
            }
            let (id, command, receipt) = d.accepted[pick % d.accepted.len()].clone();
            if let Some(other) = change.then(|| changed(&command)).flatten() {
                assert_eq!(d.run(id, other, now).await.unwrap_err(), Refusal::AmountMismatch);
            } else {
                let (again, replayed) = d.run(id, command, now).await.expect("a replay is accepted");
                assert!(replayed);
                assert_eq!(again, receipt);
            }
            d.check(model, now).await;
            return;
        }
    };
    match (expected, actual) {
        (Ok(receipt), Ok((got, replayed))) => {
            assert!(!replayed);
            assert_eq!(got, receipt, "{op:?}");
        }
        (Err(expected), Err(actual)) => assert_eq!(actual, expected, "{op:?}"),
        (expected, actual) => panic!("{op:?}: model {expected:?}, store {actual:?}"),
    }
    d.check(model, now).await;
}

fn run_cases(open: fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = TestDb>>>) {
    let cases = std::env::var("REGULARS_LEDGER_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let db = runtime.block_on(open());
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let strategy = proptest::collection::vec(op(), 1..40);
    runner
        .run(&strategy, |ops| {
            runtime.block_on(async {
                let n = CUSTOMERS.fetch_add(1, Ordering::Relaxed);
                let draft = CustomerDraft {
                    external_id: Some(ExternalId::parse("external_id", &format!("model-{n}")).unwrap()),
                    ..CustomerDraft::default()
                };
                let customer = db.store.create_customer(draft, at(0), None).await.unwrap().id;
                let mut driver =
                    Driver { store: &db.store, customer, accepted: Vec::new(), next_id: 0, next_refund: 0 };
                let mut model = Model::default();
                for op in &ops {
                    step(&mut driver, &mut model, op).await;
                }
            });
            Ok(())
        })
        .unwrap();
    runtime.block_on(async {
        assert_eq!(db.store.verify_loyalty().await.unwrap().findings, vec![]);
        db.store.close().await;
    });
}

#[test]
fn sqlite_store_agrees_with_the_model() {
    run_cases(|| Box::pin(TestDb::sqlite()));
}

#[test]
fn postgres_store_agrees_with_the_model() {
    run_cases(|| Box::pin(TestDb::postgres()));
}
