//! The backtest: recorded orders and refunds replayed through a program, in memory, with the same pure
//! rules the ledger uses (`earning`, `execute`, `settle`, `tiers::evaluate`). Nothing is written.
//!
//! The replay, per customer and in time order:
//! - an **order** settles the wallet at the order's time, earns what the program says (with the tier the
//!   customer holds then and their purchase count, counting purchases before the replay's start), and
//!   then evaluates the tier;
//! - a **refund** settles and takes back the points of what was returned (`Clawback`, the program's
//!   shortfall rule), and lowers the spend measure;
//! - **time**: a customer holding a tier is evaluated once a day between their events and up to the end,
//!   as the server's periodic job would, so downgrades after the grace period happen; at the end every
//!   wallet is settled (lots mature and expire).
//!
//! Customers spend nothing in the replay (there is no record of what they would have redeemed under
//! another program), so `liability` is every point issued less what was taken back and what expired.
//! Referral bonuses are not replayed (referrals are not part of the order history).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use crate::ids::{CustomerId, OrderId, RefundId};
use crate::order::{Order, Sku};

use super::earning::{CustomerContext, earn_for_order};
use super::ledger::{Clawback, Command, Request, execute, settle};
use super::program::Program;
use super::tiers::{Measure, TierStatus, evaluate};
use super::wallet::{Account, OrderRef, Outcome, RequestId, WalletState};

/// A refund as the replay needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRefund {
    pub id: RefundId,
    pub order: OrderId,
    pub at: DateTime<Utc>,
    pub amount_minor: i64,
}

/// The recorded history to replay.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Orders placed in the replayed period (their `refunded_minor` is ignored: refunds are replayed).
    pub orders: Vec<Order>,
    /// Refunds of those orders, made in the replayed period.
    pub refunds: Vec<HistoryRefund>,
    /// Purchases each customer made before the period (for welcome and Nth-purchase bonuses).
    pub orders_before: BTreeMap<CustomerId, u32>,
    /// Product categories by SKU (for category multipliers).
    pub categories: BTreeMap<Sku, String>,
}

/// What a program would have done with the history.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Figures {
    /// Points earned on orders (purchase points and bonuses).
    pub points_issued: i64,
    /// Points refunds took back (including what became debt or was written off).
    pub points_clawed_back: i64,
    pub points_expired: i64,
    /// Points outstanding at the end (available and pending), after expiry.
    pub liability: i64,
    /// Customers with at least one replayed order.
    pub customers: u64,
    /// Customers per tier at the end (customers without a tier are not counted).
    pub tiers: BTreeMap<String, u64>,
    /// Each customer's tier at the end.
    pub final_tiers: BTreeMap<CustomerId, Option<String>>,
}

/// Two programs over the same history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub current: Figures,
    pub proposed: Figures,
    /// Customers who would end in another tier under the proposed program than under the current one.
    pub different_tier: u64,
}

pub fn compare(current: &Program, proposed: &Program, history: &History, end: DateTime<Utc>) -> Comparison {
    let current = replay(current, history, end);
    let proposed = replay(proposed, history, end);
    let different_tier = proposed.final_tiers.iter().filter(|(c, t)| current.final_tiers.get(*c) != Some(*t)).count();
    Comparison { current, proposed, different_tier: different_tier as u64 }
}

/// A customer's replayed state.
#[derive(Default)]
struct Customer {
    wallet: WalletState,
    status: TierStatus,
    orders: u32,
    /// (time, points earned (negative: taken back), spend in minor units (negative: refunded)).
    measures: Vec<(DateTime<Utc>, i64, i64)>,
    evaluated_at: Option<DateTime<Utc>>,
}

impl Customer {
    fn measure(&self, program: &Program, now: DateTime<Utc>) -> i64 {
        let Some(tiers) = &program.tiers else { return 0 };
        let start = tiers.window_start(now);
        self.measures
            .iter()
            .filter(|(at, _, _)| *at > start && *at <= now)
            .map(|(_, points, spend)| match tiers.measure {
                Measure::PointsEarned => *points,
                Measure::Spend => *spend,
            })
            .sum()
    }

    fn evaluate(&mut self, program: &Program, now: DateTime<Utc>) {
        if let Some(tiers) = &program.tiers {
            let measure = self.measure(program, now);
            self.status = evaluate(tiers, &self.status, measure, now).status;
            self.evaluated_at = Some(now);
        }
    }

    /// Daily evaluations from the last one up to (not including) `until`, while the customer holds a tier.
    fn tick_until(&mut self, program: &Program, until: DateTime<Utc>) {
        let Some(mut at) = self.evaluated_at else { return };
        loop {
            at += Duration::days(1);
            if at >= until || self.status.tier.is_none() {
                return;
            }
            self.evaluate(program, at);
        }
    }
}

fn expired(outcome: &Outcome) -> i64 {
    outcome.postings.iter().filter(|p| p.credit == Account::Expired).map(|p| p.points.get()).sum()
}

/// Replays `history` through `program` up to `end`.
pub fn replay(program: &Program, history: &History, end: DateTime<Utc>) -> Figures {
    enum Event<'a> {
        Order(&'a Order),
        Refund(&'a HistoryRefund),
    }
    let orders: BTreeMap<OrderId, &Order> = history.orders.iter().map(|o| (o.id, o)).collect();
    let mut events: Vec<(DateTime<Utc>, u8, i64, Event<'_>)> =
        history.orders.iter().map(|o| (o.placed_at, 0, o.id.key(), Event::Order(o))).collect();
    events.extend(history.refunds.iter().map(|r| (r.at, 1, r.id.key(), Event::Refund(r))));
    events.sort_by_key(|(at, kind, key, _)| (*at, *kind, *key));

    let mut figures = Figures::default();
    let mut customers: BTreeMap<CustomerId, Customer> = BTreeMap::new();
    let mut refunded: BTreeMap<OrderId, i64> = BTreeMap::new();
    for (at, _, _, event) in events {
        if at > end {
            break;
        }
        let order = match event {
            Event::Order(o) => o,
            Event::Refund(r) => match orders.get(&r.order) {
                Some(o) => *o,
                None => continue,
            },
        };
        let customer = customers.entry(order.customer_id).or_insert_with(|| Customer {
            orders: history.orders_before.get(&order.customer_id).copied().unwrap_or(0),
            ..Customer::default()
        });
        customer.tick_until(program, at);
        let settled = settle(&customer.wallet, at);
        figures.points_expired += expired(&settled);
        customer.wallet.apply(&settled);
        let reference = OrderRef::new(order.id, order.external_id.as_ref());
        match event {
            Event::Order(order) => {
                let context = CustomerContext {
                    customer: order.customer_id,
                    tier: customer.status.tier.as_deref(),
                    orders_before: customer.orders,
                    referred_by: None,
                };
                let earning = earn_for_order(program, order, &history.categories, context);
                customer.orders += 1;
                let mut earned = 0;
                if earning.total.is_positive() {
                    let request = Request {
                        id: RequestId::for_order(order.id),
                        command: earning.command(program, &reference, at),
                    };
                    if let Ok(outcome) = execute(&customer.wallet, &request, at) {
                        earned = outcome.receipt.points.get();
                        customer.wallet.apply(&outcome);
                    }
                }
                figures.points_issued += earned;
                let spend = if order.currency == program.currency { order.total_minor } else { 0 };
                customer.measures.push((at, earned, spend));
            }
            Event::Refund(refund) => {
                let total = refunded.entry(order.id).or_default();
                *total += refund.amount_minor;
                let spend = if order.currency == program.currency { -refund.amount_minor } else { 0 };
                let mut taken = 0;
                if customer.wallet.orders.get(&order.id).is_some_and(|p| p.earned.is_positive()) {
                    let command = Command::Clawback(Clawback {
                        order: reference,
                        refund: refund.id,
                        order_net_minor: order.total_minor,
                        refunded_total_minor: *total,
                        shortfall: program.shortfall,
                    });
                    let request = Request { id: RequestId::for_refund(refund.id), command };
                    if let Ok(outcome) = execute(&customer.wallet, &request, at) {
                        taken = outcome.receipt.points.get();
                        customer.wallet.apply(&outcome);
                    }
                }
                figures.points_clawed_back += taken;
                customer.measures.push((at, -taken, spend));
            }
        }
        customer.evaluate(program, at);
    }
    for (id, customer) in &mut customers {
        customer.tick_until(program, end);
        customer.evaluate(program, end);
        let settled = settle(&customer.wallet, end);
        figures.points_expired += expired(&settled);
        customer.wallet.apply(&settled);
        let b = customer.wallet.balances;
        figures.liability += (b.available + b.pending + b.held).get();
        if let Some(tier) = &customer.status.tier {
            *figures.tiers.entry(tier.clone()).or_default() += 1;
        }
        figures.final_tiers.insert(*id, customer.status.tier.clone());
    }
    figures.customers = customers.len() as u64;
    figures
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::money::Currency;
    use crate::order::{OrderLine, Quantity};

    fn program(points_per_unit: u32) -> Program {
        Program::from_toml(&format!(
            "name = \"p\"\ncurrency = \"EUR\"\nexpiry = {{ after_days = 100 }}\n[earning]\npoints_per_unit = {points_per_unit}\n\
             [tiers]\nmeasure = \"points_earned\"\nwindow_days = 30\ngrace_days = 10\n\
             levels = [{{ name = \"Silver\", threshold = 50 }}, {{ name = \"Gold\", threshold = 150 }}]\n"
        ))
        .unwrap()
    }

    fn day(d: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap() + Duration::days(d)
    }

    fn order(id: i64, customer: i64, d: i64, euros: i64) -> Order {
        let line = OrderLine::new(Sku::parse("s", "A").unwrap(), None, Quantity::new("q", 1).unwrap(), euros * 100, 0)
            .unwrap();
        Order {
            id: OrderId::from_key(id),
            external_id: None,
            customer_id: CustomerId::from_key(customer),
            placed_at: day(d),
            currency: Currency::parse("c", "EUR").unwrap(),
            total_minor: euros * 100,
            lines: vec![line],
            refunded_minor: 0,
        }
    }

    #[test]
    fn a_program_that_doubles_the_rate_issues_double_and_tiers_differ() {
        let history = History {
            orders: vec![order(1, 1, 0, 40), order(2, 1, 5, 40), order(3, 2, 10, 100)],
            refunds: vec![HistoryRefund {
                id: RefundId::from_key(1),
                order: OrderId::from_key(3),
                at: day(12),
                amount_minor: 5000,
            }],
            ..History::default()
        };
        let c = compare(&program(1), &program(2), &history, day(20));
        assert_eq!((c.current.points_issued, c.proposed.points_issued), (180, 360));
        assert_eq!((c.current.points_clawed_back, c.proposed.points_clawed_back), (50, 100));
        assert_eq!((c.current.liability, c.proposed.liability), (130, 260));
        // Current: customer 1 has 80 (Silver), customer 2 has 50 left (Silver). Proposed: 160 (Gold), and
        // 100 left after Gold (200) was reached: still Gold, 8 days into a 10-day grace period.
        assert_eq!(c.current.tiers, BTreeMap::from([("Silver".to_owned(), 2)]));
        assert_eq!(c.proposed.tiers, BTreeMap::from([("Gold".to_owned(), 2)]));
        assert_eq!(c.different_tier, 2);
        let at_day_23 = replay(&program(2), &history, day(23));
        assert_eq!(at_day_23.final_tiers[&CustomerId::from_key(2)].as_deref(), Some("Silver"), "one step down");
        // Long after: points expired (after 100 days) and tiers dropped one step per grace period.
        let later = replay(&program(2), &history, day(200));
        assert_eq!((later.points_expired, later.liability), (260, 0));
        assert!(later.tiers.is_empty(), "{later:?}");
    }
}
