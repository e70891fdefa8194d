//! The ledger against a deliberately simple model: random sequences of earn, redeem, hold, capture, void,
//! clock advances, refund clawbacks, adjustments and replays. After every step the ledger (settled lazily, as
//! a store would) and the model (ticking eagerly through every instant) agree, and `verify` is clean.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use regulars_core::loyalty::{
    Account, Clawback, Command, Earn, EarnPart, EarnReason, EarnRule, HoldId, HoldStatus, LotId, LotSource, OrderRef,
    Outcome, Points, Posting, Receipt, Refusal, Request, RequestId, Shortfall, WalletState, execute, settle, verify,
};
use regulars_core::{OrderId, RefundId};

/// Every order is worth this much, so a refund's share is easy to reason about.
const ORDER_NET_MINOR: i64 = 10_000;

#[derive(Debug, Clone)]
enum Op {
    Advance { hours: i64, settle_now: bool },
    Earn { points: i64, order: Option<i64>, lock_hours: i64, expiry_hours: Option<i64> },
    Redeem { points: i64 },
    Hold { points: i64, ttl_hours: i64 },
    Capture { pick: u32, points: Option<i64> },
    Void { pick: u32 },
    Clawback { order: i64, refunded_minor: i64, write_off: bool },
    Adjust { points: i64 },
    Replay { pick: usize, change: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0i64..=72, any::<bool>()).prop_map(|(hours, settle_now)| Op::Advance { hours, settle_now }),
        4 => (0i64..=200, prop::option::of(1i64..=4), prop_oneof![Just(0i64), 1i64..=48], prop::option::of(1i64..=300))
            .prop_map(|(points, order, lock_hours, expiry_hours)| Op::Earn { points, order, lock_hours, expiry_hours }),
        2 => (1i64..=150).prop_map(|points| Op::Redeem { points }),
        2 => (1i64..=150, 1i64..=48).prop_map(|(points, ttl_hours)| Op::Hold { points, ttl_hours }),
        2 => (any::<u32>(), prop::option::of(1i64..=150)).prop_map(|(pick, points)| Op::Capture { pick, points }),
        1 => any::<u32>().prop_map(|pick| Op::Void { pick }),
        2 => (1i64..=4, 0i64..=6_000, any::<bool>())
            .prop_map(|(order, refunded_minor, write_off)| Op::Clawback { order, refunded_minor, write_off }),
        1 => (-100i64..=100).prop_map(|points| Op::Adjust { points }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(pick, change)| Op::Replay { pick, change }),
    ]
}

fn at(hours: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap() + Duration::hours(hours)
}

fn order_ref(n: i64) -> OrderRef {
    OrderRef { id: OrderId::from_key(n), number: format!("{}", 1040 + n) }
}

// ---------------------------------------------------------------------------------------------------------
// The model: lots as plain numbers, a clock that visits every instant where something is due.

#[derive(Debug, Clone)]
struct MLot {
    left: i64,
    matured: bool,
    available_from: i64,
    expires: Option<i64>,
    order: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum MStatus {
    Open,
    Captured,
    Voided,
    Expired,
}

#[derive(Debug, Clone)]
struct MHold {
    points: i64,
    draws: Vec<(usize, i64)>,
    expires: i64,
    status: MStatus,
}

#[derive(Debug, Default)]
struct Model {
    now: i64,
    lots: Vec<MLot>,
    holds: Vec<MHold>,
    owed: i64,
    expired: i64,
    redeemed: i64,
    written_off: i64,
    /// order -> (earned, clawed back, refunded value so far)
    orders: BTreeMap<i64, (i64, i64, i64)>,
    /// order -> points its earning request carried
    order_requests: BTreeMap<i64, i64>,
}

impl Model {
    fn available(&self) -> i64 {
        self.lots.iter().filter(|l| l.matured).map(|l| l.left).sum()
    }

    fn pending(&self) -> i64 {
        self.lots.iter().filter(|l| !l.matured).map(|l| l.left).sum()
    }

    fn held(&self) -> i64 {
        self.holds.iter().filter(|h| h.status == MStatus::Open).map(|h| h.points).sum()
    }

    fn expired_at(&self, lot: usize, t: i64) -> bool {
        self.lots[lot].expires.is_some_and(|e| e <= t)
    }

    /// Available lots, soonest expiry first, never-expiring last, oldest first among equals.
    fn spending_order(&self) -> Vec<usize> {
        let mut ids: Vec<usize> =
            (0..self.lots.len()).filter(|&i| self.lots[i].matured && self.lots[i].left > 0).collect();
        ids.sort_by_key(|&i| (self.lots[i].expires.unwrap_or(i64::MAX), i));
        ids
    }

    fn take(&mut self, mut points: i64) -> Vec<(usize, i64)> {
        let mut draws = Vec::new();
        for i in self.spending_order() {
            let t = points.min(self.lots[i].left);
            if t == 0 {
                break;
            }
            self.lots[i].left -= t;
            points -= t;
            draws.push((i, t));
        }
        assert_eq!(points, 0);
        draws
    }

    fn repay(&mut self) {
        let r = self.owed.min(self.available());
        self.take(r);
        self.owed -= r;
    }

    fn give_back(&mut self, draws: &[(usize, i64)], mut captured: i64, t: i64) {
        for &(lot, points) in draws {
            let c = captured.min(points);
            captured -= c;
            self.redeemed += c;
            if self.expired_at(lot, t) {
                self.expired += points - c;
            } else {
                self.lots[lot].left += points - c;
            }
        }
    }

    fn advance_to(&mut self, t: i64) {
        let mut instants: Vec<i64> = Vec::new();
        for h in self.holds.iter().filter(|h| h.status == MStatus::Open) {
            instants.push(h.expires);
        }
        for l in &self.lots {
            instants.push(l.available_from);
            instants.extend(l.expires);
        }
        instants.retain(|&i| i > self.now && i <= t);
        instants.sort();
        instants.dedup();
        for i in instants {
            self.tick(i);
        }
        self.now = t;
    }

    fn tick(&mut self, t: i64) {
        for h in 0..self.holds.len() {
            if self.holds[h].status == MStatus::Open && self.holds[h].expires <= t {
                let draws = self.holds[h].draws.clone();
                self.give_back(&draws, 0, t);
                self.holds[h].status = MStatus::Expired;
            }
        }
        for l in &mut self.lots {
            if !l.matured && l.available_from <= t {
                l.matured = true;
            }
        }
        for l in &mut self.lots {
            if l.expires.is_some_and(|e| e <= t) {
                self.expired += l.left;
                l.left = 0;
            }
        }
        self.repay();
    }

    fn check_points(&self, points: i64) -> Result<(), Refusal> {
        if points > self.available() {
            return Err(Refusal::InsufficientPoints {
                available: Points::new(self.available()),
                requested: Points::new(points),
            });
        }
        Ok(())
    }

    fn earn(&mut self, points: i64, order: Option<i64>, lock: i64, expiry: Option<i64>) -> Result<Receipt, Refusal> {
        if let Some(o) = order {
            self.order_requests.insert(o, points);
            self.orders.entry(o).or_default().0 += points;
        }
        if points == 0 {
            return Ok(Receipt::default());
        }
        self.lots.push(MLot {
            left: points,
            matured: lock == 0,
            available_from: self.now + lock,
            expires: expiry.map(|e| self.now + e),
            order,
        });
        self.repay();
        Ok(Receipt { points: Points::new(points), lot: Some(LotId(self.lots.len() as u32)), ..Receipt::default() })
    }

    fn redeem(&mut self, points: i64) -> Result<Receipt, Refusal> {
        self.check_points(points)?;
        self.take(points);
        self.redeemed += points;
        Ok(Receipt { points: Points::new(points), ..Receipt::default() })
    }

    fn hold(&mut self, points: i64, ttl: i64) -> Result<Receipt, Refusal> {
        self.check_points(points)?;
        let draws = self.take(points);
        self.holds.push(MHold { points, draws, expires: self.now + ttl, status: MStatus::Open });
        Ok(Receipt { points: Points::new(points), hold: Some(HoldId(self.holds.len() as u32)), ..Receipt::default() })
    }

    fn open_hold(&self, id: u32) -> Result<usize, Refusal> {
        let i = (id as usize).checked_sub(1).filter(|&i| i < self.holds.len()).ok_or(Refusal::HoldNotFound)?;
        match self.holds[i].status {
            MStatus::Open => Ok(i),
            MStatus::Expired => Err(Refusal::HoldExpired),
            MStatus::Captured | MStatus::Voided => Err(Refusal::HoldAlreadyResolved),
        }
    }

    fn capture(&mut self, id: u32, points: Option<i64>) -> Result<Receipt, Refusal> {
        let i = self.open_hold(id)?;
        let held = self.holds[i].points;
        let points = points.unwrap_or(held);
        if points > held {
            return Err(Refusal::CaptureExceedsHold { held: Points::new(held), requested: Points::new(points) });
        }
        let draws = self.holds[i].draws.clone();
        self.give_back(&draws, points, self.now);
        self.holds[i].status = MStatus::Captured;
        self.repay();
        Ok(Receipt { points: Points::new(points), hold: Some(HoldId(id)), ..Receipt::default() })
    }

    fn void(&mut self, id: u32) -> Result<Receipt, Refusal> {
        let i = self.open_hold(id)?;
        let draws = self.holds[i].draws.clone();
        self.give_back(&draws, 0, self.now);
        self.holds[i].status = MStatus::Voided;
        self.repay();
        Ok(Receipt { points: Points::new(self.holds[i].points), hold: Some(HoldId(id)), ..Receipt::default() })
    }

    fn clawback(&mut self, order: i64, refunded_total: i64, write_off: bool) -> Result<Receipt, Refusal> {
        let (earned, clawed, _) = self.orders.get(&order).copied().unwrap_or_default();
        let target = earned * refunded_total / ORDER_NET_MINOR;
        let step = (target - clawed).max(0);
        let mut left = step;
        let own: Vec<usize> = (0..self.lots.len()).filter(|&i| self.lots[i].order == Some(order)).collect();
        let mut pending: Vec<usize> = (0..self.lots.len()).filter(|&i| !self.lots[i].matured).collect();
        pending.sort_by_key(|&i| (self.lots[i].expires.unwrap_or(i64::MAX), i));
        for i in own.into_iter().chain(self.spending_order()).chain(pending) {
            let t = left.min(self.lots[i].left);
            self.lots[i].left -= t;
            left -= t;
        }
        if write_off {
            self.written_off += left;
        } else {
            self.owed += left;
        }
        let entry = self.orders.entry(order).or_default();
        entry.1 += step;
        entry.2 = refunded_total;
        Ok(Receipt { points: Points::new(step), shortfall: Points::new(left), ..Receipt::default() })
    }

    fn adjust(&mut self, points: i64) -> Result<Receipt, Refusal> {
        if points == 0 {
            return Err(Refusal::InvalidPoints);
        }
        if points > 0 {
            self.lots.push(MLot { left: points, matured: true, available_from: self.now, expires: None, order: None });
            self.repay();
            return Ok(Receipt {
                points: Points::new(points),
                lot: Some(LotId(self.lots.len() as u32)),
                ..Receipt::default()
            });
        }
        self.check_points(-points)?;
        self.take(-points);
        Ok(Receipt { points: Points::new(points), ..Receipt::default() })
    }
}

// ---------------------------------------------------------------------------------------------------------
// The ledger as a store would run it, and the comparison.

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

fn earn_command(points: i64, order: Option<i64>, now: DateTime<Utc>, lock: i64, expiry: Option<i64>) -> Command {
    let rule = if order.is_some() {
        EarnRule::Purchase {
            points_per_unit: 1,
            currency: regulars_core::Currency::parse("c", "EUR").unwrap(),
            tier: None,
            multiplied_lines: 0,
        }
    } else {
        EarnRule::Event { name: "review".into() }
    };
    Command::Earn(Earn {
        parts: vec![EarnPart { reason: EarnReason { rule, order: order.map(order_ref) }, points: Points::new(points) }],
        source: order.map_or(LotSource::Award, |o| LotSource::Order(order_ref(o))),
        available_from: now + Duration::hours(lock),
        expires_at: expiry.map(|e| now + Duration::hours(e)),
    })
}

/// The same command with another amount, when it has one.
fn changed(command: &Command) -> Option<Command> {
    let bump = |p: Points| Points::new(p.get() + 1);
    Some(match command.clone() {
        Command::Earn(mut e) => {
            e.parts[0].points = bump(e.parts[0].points);
            Command::Earn(e)
        }
        Command::Redeem { points, note } => Command::Redeem { points: bump(points), note },
        Command::PlaceHold { points, expires_at } => Command::PlaceHold { points: bump(points), expires_at },
        Command::Capture { hold, points: Some(p) } => Command::Capture { hold, points: Some(bump(p)) },
        Command::Adjust { points, note, expires_at } => Command::Adjust { points: bump(points), note, expires_at },
        Command::Clawback(mut c) => {
            c.refunded_total_minor += 1;
            Command::Clawback(c)
        }
        Command::Capture { points: None, .. } | Command::Void { .. } => return None,
    })
}

fn check(ledger: &Ledger, model: &Model, now: DateTime<Utc>) {
    assert_eq!(verify(&ledger.state, &ledger.postings), vec![], "verify of the ledger as written");
    // What the wallet is at `now`, settled but not written: the ledger may be lazy, the figures may not.
    let settled = settle(&ledger.state, now);
    let mut state = ledger.state.clone();
    state.apply(&settled);
    let mut postings = ledger.postings.clone();
    postings.extend(settled.postings);
    assert_eq!(verify(&state, &postings), vec![], "verify after settling");

    let b = state.balances;
    assert_eq!(b.available.get(), model.available(), "available");
    assert_eq!(b.pending.get(), model.pending(), "pending");
    assert_eq!(b.held.get(), model.held(), "held");
    assert_eq!(b.owed().get(), model.owed, "owed");
    for (i, lot) in model.lots.iter().enumerate() {
        assert_eq!(state.lots[&LotId(i as u32 + 1)].remaining.get(), lot.left, "lot {}", i + 1);
    }
    for (i, hold) in model.holds.iter().enumerate() {
        let status = state.holds[&HoldId(i as u32 + 1)].status;
        let same = matches!(
            (status, hold.status),
            (HoldStatus::Open, MStatus::Open)
                | (HoldStatus::Captured { .. }, MStatus::Captured)
                | (HoldStatus::Voided, MStatus::Voided)
                | (HoldStatus::Expired, MStatus::Expired)
        );
        assert!(same, "hold {}: {status:?} vs {:?}", i + 1, hold.status);
    }
    let account = |a: Account| -> i64 {
        postings
            .iter()
            .map(|p| {
                if p.credit == a {
                    p.points.get()
                } else if p.debit == a {
                    -p.points.get()
                } else {
                    0
                }
            })
            .sum()
    };
    assert_eq!(account(Account::Expired), model.expired, "expired");
    assert_eq!(account(Account::Redemptions), model.redeemed, "redeemed");
    assert_eq!(-account(Account::WrittenOff), model.written_off, "written off");
    for (order, (earned, clawed, _)) in &model.orders {
        let figures = state.orders.get(&OrderId::from_key(*order)).copied().unwrap_or_default();
        assert_eq!((figures.earned.get(), figures.clawed_back.get()), (*earned, *clawed), "order {order}");
        assert!(clawed <= earned);
    }
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
