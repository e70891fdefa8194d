//! The ledger against a deliberately simple model: random sequences of earn, redeem, hold, capture, void,
//! clock advances, refund clawbacks, adjustments and replays. After every step the ledger (settled lazily, as
//! a store would) and the model (ticking eagerly through every instant) agree, and `verify` is clean.

mod model;

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use regulars_core::loyalty::{
    Clawback, Command, HoldId, Outcome, Points, Posting, Receipt, Refusal, Request, RequestId, Shortfall, WalletState,
    execute, settle,
};
use regulars_core::{OrderId, RefundId};

#[derive(Default)]
struct Ledger {
    state: WalletState,
    postings: Vec<Posting>,
    accepted: Vec<(RequestId, Command, Receipt)>,
    next_id: u64,
    next_refund: i64,
}

impl Ledger {
    fn run(&mut self, id: RequestId, command: Command, now: DateTime<Utc>) -> Result<Outcome, Refusal> {
        let before = self.state.clone();
        let result = execute(&self.state, &Request { id: id.clone(), command: command.clone() }, now);
        match &result {
            Ok(outcome) => {
                self.state.apply(outcome);
                self.postings.extend(outcome.postings.iter().cloned());
                if !outcome.replayed {
                    self.accepted.push((id, command, outcome.receipt));
                }
            }
            Err(_) => assert_eq!(self.state, before, "a refusal changes nothing"),
        }
        result
    }

    fn fresh_id(&mut self) -> RequestId {
        self.next_id += 1;
        RequestId::parse("id", &format!("req-{}", self.next_id)).unwrap()
    }
}

use model::*;

fn check(ledger: &Ledger, model: &Model, now: DateTime<Utc>) {
    check_against(&ledger.state, &ledger.postings, model, now);
}

fn step(ledger: &mut Ledger, model: &mut Model, op: &Op) {
    let now = at(model.now);
    let (expected, actual): (Result<Receipt, Refusal>, Result<Outcome, Refusal>) = match *op {
        Op::Advance { hours, settle_now } => {
            model.advance_to(model.now + hours);
            if settle_now {
                let outcome = settle(&ledger.state, at(model.now));
                ledger.state.apply(&outcome);
                ledger.postings.extend(outcome.postings);
            }
            check(ledger, model, at(model.now));
            return;
        }
        Op::Earn { points, order, lock_hours, expiry_hours } => {
            let command = earn_command(points, order, now, lock_hours, expiry_hours);
            let id = match order {
                Some(o) => RequestId::for_order(OrderId::from_key(o)),
                None => ledger.fresh_id(),
            };
            let expected = match order.and_then(|o| model.order_requests.get(&o).copied()) {
                Some(first) if first == points => {
                    let outcome = ledger.run(id, command, now).expect("a replay of an order is accepted");
                    assert!(outcome.replayed && outcome.postings.is_empty());
                    check(ledger, model, now);
                    return;
                }
                Some(_) => Err(Refusal::AmountMismatch),
                None => model.earn(points, order, lock_hours, expiry_hours),
            };
            (expected, ledger.run(id, command, now))
        }
        Op::Redeem { points } => {
            let id = ledger.fresh_id();
            (model.redeem(points), ledger.run(id, Command::Redeem { points: Points::new(points), note: None }, now))
        }
        Op::Hold { points, ttl_hours } => {
            let id = ledger.fresh_id();
            let command =
                Command::PlaceHold { points: Points::new(points), expires_at: now + Duration::hours(ttl_hours) };
            (model.hold(points, ttl_hours), ledger.run(id, command, now))
        }
        Op::Capture { pick, points } => {
            let hold = pick % (model.holds.len() as u32 + 2);
            let id = ledger.fresh_id();
            let command = Command::Capture { hold: HoldId(hold), points: points.map(Points::new) };
            (model.capture(hold, points), ledger.run(id, command, now))
        }
        Op::Void { pick } => {
            let hold = pick % (model.holds.len() as u32 + 2);
            let id = ledger.fresh_id();
            (model.void(hold), ledger.run(id, Command::Void { hold: HoldId(hold) }, now))
        }
        Op::Clawback { order, refunded_minor, write_off } => {
            let before = model.orders.get(&order).map_or(0, |o| o.2);
            let total = (before + refunded_minor).min(ORDER_NET_MINOR);
            ledger.next_refund += 1;
            let refund = RefundId::from_key(ledger.next_refund);
            let command = Command::Clawback(Clawback {
                order: order_ref(order),
                refund,
                order_net_minor: ORDER_NET_MINOR,
                refunded_total_minor: total,
                shortfall: if write_off { Shortfall::WriteOff } else { Shortfall::Debt },
            });
            (model.clawback(order, total, write_off), ledger.run(RequestId::for_refund(refund), command, now))
        }
        Op::Adjust { points } => {
            let id = ledger.fresh_id();
            let command = Command::Adjust { points: Points::new(points), note: "correction".into(), expires_at: None };
            (model.adjust(points), ledger.run(id, command, now))
        }
        Op::Replay { pick, change } => {
            if ledger.accepted.is_empty() {
                return;
            }
            let (id, command, receipt) = ledger.accepted[pick % ledger.accepted.len()].clone();
            let command = match change.then(|| changed(&command)).flatten() {
                Some(other) => {
                    assert_eq!(ledger.run(id, other, now).unwrap_err(), Refusal::AmountMismatch);
                    check(ledger, model, now);
                    return;
                }
                None => command,
            };
            let outcome = ledger.run(id, command, now).expect("a replay is accepted");
            assert!(outcome.replayed && outcome.postings.is_empty() && outcome.new_lots.is_empty());
            assert_eq!(outcome.receipt, receipt);
            check(ledger, model, now);
            return;
        }
    };
    match (expected, actual) {
        (Ok(receipt), Ok(outcome)) => {
            assert!(!outcome.replayed);
            assert_eq!(outcome.receipt, receipt, "{op:?}");
        }
        (Err(expected), Err(actual)) => assert_eq!(actual, expected, "{op:?}"),
        (expected, actual) => panic!("{op:?}: model {expected:?}, ledger {actual:?}"),
    }
    check(ledger, model, now);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn ledger_agrees_with_a_simple_model(ops in prop::collection::vec(op(), 1..60)) {
        let mut ledger = Ledger::default();
        let mut model = Model::default();
        for op in &ops {
            step(&mut ledger, &mut model, op);
        }
    }
}
