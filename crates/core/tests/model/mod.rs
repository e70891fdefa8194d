//! The simple model of a wallet that the ledger is checked against, and the random operations that drive
//! both. Shared by the ledger's own property test (`ledger_model.rs`) and the store's
//! (`crates/store/tests/ledger_model.rs`), which includes this file by path.

#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use regulars_core::OrderId;
use regulars_core::loyalty::{
    Account, Command, Earn, EarnPart, EarnReason, EarnRule, HoldId, HoldStatus, LotId, LotSource, OrderRef, Points,
    Posting, Receipt, Refusal, WalletState, settle, verify,
};

/// Every order is worth this much, so a refund's share is easy to reason about.
pub const ORDER_NET_MINOR: i64 = 10_000;

#[derive(Debug, Clone)]
pub enum Op {
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

pub fn op() -> impl Strategy<Value = Op> {
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

pub fn at(hours: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap() + Duration::hours(hours)
}

pub fn order_ref(n: i64) -> OrderRef {
    OrderRef { id: OrderId::from_key(n), number: format!("{}", 1040 + n) }
}

// ---------------------------------------------------------------------------------------------------------
// The model: lots as plain numbers, a clock that visits every instant where something is due.

#[derive(Debug, Clone)]
pub struct MLot {
    pub left: i64,
    pub matured: bool,
    pub available_from: i64,
    pub expires: Option<i64>,
    pub order: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MStatus {
    Open,
    Captured,
    Voided,
    Expired,
}

#[derive(Debug, Clone)]
pub struct MHold {
    pub points: i64,
    pub draws: Vec<(usize, i64)>,
    pub expires: i64,
    pub status: MStatus,
}

#[derive(Debug, Default)]
pub struct Model {
    pub now: i64,
    pub lots: Vec<MLot>,
    pub holds: Vec<MHold>,
    pub owed: i64,
    pub expired: i64,
    pub redeemed: i64,
    pub written_off: i64,
    /// order -> (earned, clawed back, refunded value so far)
    pub orders: BTreeMap<i64, (i64, i64, i64)>,
    /// order -> points its earning request carried
    pub order_requests: BTreeMap<i64, i64>,
}

impl Model {
    pub fn available(&self) -> i64 {
        self.lots.iter().filter(|l| l.matured).map(|l| l.left).sum()
    }

    pub fn pending(&self) -> i64 {
        self.lots.iter().filter(|l| !l.matured).map(|l| l.left).sum()
    }

    pub fn held(&self) -> i64 {
        self.holds.iter().filter(|h| h.status == MStatus::Open).map(|h| h.points).sum()
    }

    pub fn expired_at(&self, lot: usize, t: i64) -> bool {
        self.lots[lot].expires.is_some_and(|e| e <= t)
    }

    /// Available lots, soonest expiry first, never-expiring last, oldest first among equals.
    pub fn spending_order(&self) -> Vec<usize> {
        let mut ids: Vec<usize> =
            (0..self.lots.len()).filter(|&i| self.lots[i].matured && self.lots[i].left > 0).collect();
        ids.sort_by_key(|&i| (self.lots[i].expires.unwrap_or(i64::MAX), i));
        ids
    }

    pub fn take(&mut self, mut points: i64) -> Vec<(usize, i64)> {
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

    pub fn repay(&mut self) {
        let r = self.owed.min(self.available());
        self.take(r);
        self.owed -= r;
    }

    pub fn give_back(&mut self, draws: &[(usize, i64)], mut captured: i64, t: i64) {
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

    pub fn advance_to(&mut self, t: i64) {
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

    pub fn tick(&mut self, t: i64) {
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

    pub fn check_points(&self, points: i64) -> Result<(), Refusal> {
        if points > self.available() {
            return Err(Refusal::InsufficientPoints {
                available: Points::new(self.available()),
                requested: Points::new(points),
            });
        }
        Ok(())
    }

    pub fn earn(
        &mut self,
        points: i64,
        order: Option<i64>,
        lock: i64,
        expiry: Option<i64>,
    ) -> Result<Receipt, Refusal> {
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

    pub fn redeem(&mut self, points: i64) -> Result<Receipt, Refusal> {
        self.check_points(points)?;
        self.take(points);
        self.redeemed += points;
        Ok(Receipt { points: Points::new(points), ..Receipt::default() })
    }

    pub fn hold(&mut self, points: i64, ttl: i64) -> Result<Receipt, Refusal> {
        self.check_points(points)?;
        let draws = self.take(points);
        self.holds.push(MHold { points, draws, expires: self.now + ttl, status: MStatus::Open });
        Ok(Receipt { points: Points::new(points), hold: Some(HoldId(self.holds.len() as u32)), ..Receipt::default() })
    }

    pub fn open_hold(&self, id: u32) -> Result<usize, Refusal> {
        let i = (id as usize).checked_sub(1).filter(|&i| i < self.holds.len()).ok_or(Refusal::HoldNotFound)?;
        match self.holds[i].status {
            MStatus::Open => Ok(i),
            MStatus::Expired => Err(Refusal::HoldExpired),
            MStatus::Captured | MStatus::Voided => Err(Refusal::HoldAlreadyResolved),
        }
    }

    pub fn capture(&mut self, id: u32, points: Option<i64>) -> Result<Receipt, Refusal> {
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

    pub fn void(&mut self, id: u32) -> Result<Receipt, Refusal> {
        let i = self.open_hold(id)?;
        let draws = self.holds[i].draws.clone();
        self.give_back(&draws, 0, self.now);
        self.holds[i].status = MStatus::Voided;
        self.repay();
        Ok(Receipt { points: Points::new(self.holds[i].points), hold: Some(HoldId(id)), ..Receipt::default() })
    }

    pub fn clawback(&mut self, order: i64, refunded_total: i64, write_off: bool) -> Result<Receipt, Refusal> {
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

    pub fn adjust(&mut self, points: i64) -> Result<Receipt, Refusal> {
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

pub fn earn_command(points: i64, order: Option<i64>, now: DateTime<Utc>, lock: i64, expiry: Option<i64>) -> Command {
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
pub fn changed(command: &Command) -> Option<Command> {
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

/// A ledger as written (its state and postings), settled at `now` without writing, against the model:
/// `verify` is clean before and after settling, and balances, lots, holds, accounts and per-order figures
/// agree.
pub fn check_against(written: &WalletState, written_postings: &[Posting], model: &Model, now: DateTime<Utc>) {
    assert_eq!(verify(written, written_postings), vec![], "verify of the ledger as written");
    // What the wallet is at `now`, settled but not written: the ledger may be lazy, the figures may not.
    let settled = settle(written, now);
    let mut state = written.clone();
    state.apply(&settled);
    let mut postings = written_postings.to_vec();
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
