//! The ledger rules: pure functions from a wallet, a request and `now` to the postings that carry it out.
//!
//! A store calls them inside one transaction: load the [`WalletState`], call [`execute`] (or [`settle`] from
//! the expiry job), append the [`Outcome`]'s rows, commit. Nothing here reads the clock or writes anything.
//!
//! The documented rules:
//! - **Time first.** Before any request, [`settle`] applies what time did since the wallet was last touched,
//!   in time order (at equal times: holds expire, then lots mature, then lots expire): an open hold whose
//!   `expires_at` has come releases its points; a pending lot whose `available_from` has come becomes
//!   available; a lot whose `expires_at` has come expires what is left of it. Points that a release returns to
//!   a lot already expired expire at once. After everything due at one instant, available points repay any
//!   debt, as they do after every request.
//! - **Spending order.** Redemptions, holds, negative adjustments and debt repayment take points from available
//!   lots soonest-expiring first; among equal expiry, the earliest earned first (then the lowest lot number);
//!   lots that never expire come last ([`spending_order`]).
//! - **Never overdraw.** A request for more points than are available is refused with `insufficient_points`
//!   and writes nothing.
//! - **Holds.** A hold is open while `now < expires_at`. It resolves exactly once: captured (all or part, the
//!   rest released to the lots it came from), voided, or expired.
//! - **Clawback.** A refund takes back `floor(earned × refunded / net)` of what the order earned, less what
//!   earlier refunds of the order took back, where `refunded` is the order's refunded value so far (this
//!   refund included, at most `net`): never more in total than the order earned, and exactly all of it once
//!   the whole order is refunded. An order with no paid value loses all its points on any refund. Points are
//!   taken from the order's own lots first, then from available lots in spending order, then from pending
//!   lots; held points are left alone. What the wallet cannot cover becomes a debt or is written off, as the
//!   program says ([`Shortfall`]).
//! - **Idempotency.** Every request has a [`RequestId`]. A request whose id was accepted before is a replay:
//!   with the same [`Command::fingerprint`] it returns the first receipt and changes nothing; with another it
//!   is refused with `amount_mismatch`. Refused requests are not recorded, so a retry after a refusal is
//!   judged afresh.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::ids::RefundId;

use super::points::Points;
use super::refusal::Refusal;
use super::wallet::{
    Account, Draw, EarnReason, Hold, HoldId, HoldResolution, HoldStatus, Lot, LotId, LotSource, OrderRef, Outcome,
    Reason, Receipt, RecordedRequest, Release, RequestId, WalletState,
};

/// One request to the ledger, with its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: RequestId,
    pub command: Command,
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Points earned by an order or awarded for an event: one new lot.
    Earn(Earn),
    /// Spend available points.
    Redeem { points: Points, note: Option<String> },
    /// Reserve available points until `expires_at`.
    PlaceHold { points: Points, expires_at: DateTime<Utc> },
    /// Spend a hold's points: all of them when `points` is `None`; the rest goes back to the wallet.
    Capture { hold: HoldId, points: Option<Points> },
    /// Release a hold's points back to the wallet.
    Void { hold: HoldId },
    /// Take back points earned by a refunded order.
    Clawback(Clawback),
    /// An owner's correction: positive adds an available lot, negative spends available points.
    Adjust { points: Points, note: String, expires_at: Option<DateTime<Utc>> },
}

/// Points earned together, as the parts that explain them (one posting each, one lot for all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Earn {
    pub parts: Vec<EarnPart>,
    pub source: LotSource,
    /// When the points become spendable; at or before `now`, they are available at once.
    pub available_from: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Points earned under one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarnPart {
    pub reason: EarnReason,
    pub points: Points,
}

/// A refund of an order, in money: the ledger works out the points from what the order earned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clawback {
    pub order: OrderRef,
    pub refund: RefundId,
    /// What the customer paid for the order.
    pub order_net_minor: i64,
    /// What has been refunded of the order so far, this refund included.
    pub refunded_total_minor: i64,
    pub shortfall: Shortfall,
}

/// What becomes of points a refund takes back that the customer already spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shortfall {
    /// Recorded as owed; points the customer gets later repay it first.
    #[default]
    Debt,
    /// Forgiven, and recorded as such.
    WriteOff,
}

impl Command {
    /// What identifies the content of a request: amounts and targets, never times computed from `now`
    /// (a retried hold computes another `expires_at` and is still the same request).
    pub fn fingerprint(&self) -> String {
        match self {
            Command::Earn(earn) => {
                let parts: Vec<String> =
                    earn.parts.iter().map(|p| format!("{}={}", p.reason.rule.kind(), p.points)).collect();
                let order = earn.parts.iter().find_map(|p| p.reason.order.as_ref()).map(|o| o.id.to_string());
                format!("earn:{}:{}", order.unwrap_or_default(), parts.join(","))
            }
            Command::Redeem { points, .. } => format!("redeem:{points}"),
            Command::PlaceHold { points, .. } => format!("hold:{points}"),
            Command::Capture { hold, points: Some(points) } => format!("capture:{}:{points}", hold.0),
            Command::Capture { hold, points: None } => format!("capture:{}:all", hold.0),
            Command::Void { hold } => format!("void:{}", hold.0),
            Command::Clawback(c) => format!("clawback:{}:{}:{}", c.order.id, c.refund, c.refunded_total_minor),
            Command::Adjust { points, .. } => format!("adjust:{points}"),
        }
    }
}

/// Carries out one request at `now`: the postings and rows to append, or why not.
pub fn execute(state: &WalletState, request: &Request, now: DateTime<Utc>) -> Result<Outcome, Refusal> {
    let fingerprint = request.command.fingerprint();
    if let Some(recorded) = state.requests.get(&request.id) {
        if recorded.fingerprint != fingerprint {
            return Err(Refusal::AmountMismatch);
        }
        return Ok(Outcome {
            receipt: recorded.receipt,
            replayed: true,
            balances: state.balances,
            ..Outcome::default()
        });
    }
    let mut work = Work::new(state, now);
    work.settle_time();
    work.request = Some(request.id.clone());
    let receipt = match &request.command {
        Command::Earn(earn) => work.earn(earn)?,
        Command::Redeem { points, note } => work.redeem(*points, note)?,
        Command::PlaceHold { points, expires_at } => work.place_hold(*points, *expires_at)?,
        Command::Capture { hold, points } => work.capture(*hold, *points)?,
        Command::Void { hold } => work.void(*hold)?,
        Command::Clawback(clawback) => work.clawback(clawback)?,
        Command::Adjust { points, note, expires_at } => work.adjust(*points, note, *expires_at)?,
    };
    work.request = None;
    work.repay_debt();
    work.out.receipt = receipt;
    work.out.recorded = Some(RecordedRequest { id: request.id.clone(), fingerprint, receipt });
    Ok(work.finish())
}

/// Applies what time did up to `now` (holds expiring, lots maturing and expiring, debt repaid): the expiry
/// job's step, and what [`execute`] does first. An empty outcome when nothing was due.
pub fn settle(state: &WalletState, now: DateTime<Utc>) -> Outcome {
    let mut work = Work::new(state, now);
    work.settle_time();
    work.repay_debt();
    work.finish()
}

/// The available lots with points left, in the order they are spent.
pub fn spending_order(state: &WalletState) -> Vec<LotId> {
    let mut lots: Vec<_> = state.lots.values().filter(|l| l.matured && l.remaining.is_positive()).collect();
    lots.sort_by_key(|l| (l.lot.expires_at.is_none(), l.lot.expires_at, l.lot.earned_at, l.lot.id));
    lots.into_iter().map(|l| l.lot.id).collect()
}

/// A copy of the wallet that changes as postings are made, and the outcome collecting them.
struct Work {
    state: WalletState,
    out: Outcome,
    now: DateTime<Utc>,
    request: Option<RequestId>,
}

impl Work {
    fn new(state: &WalletState, now: DateTime<Utc>) -> Self {
        Work { state: state.clone(), out: Outcome::default(), now, request: None }
    }

    fn finish(mut self) -> Outcome {
        self.out.balances = self.state.balances;
        self.out
    }

    #[allow(clippy::too_many_arguments)]
    fn post(
        &mut self,
        debit: Account,
        credit: Account,
        points: Points,
        lot: Option<LotId>,
        hold: Option<HoldId>,
        reason: Reason,
        at: DateTime<Utc>,
    ) {
        debug_assert!(points.is_positive() && debit != credit);
        let posting =
            super::wallet::Posting { debit, credit, points, lot, hold, reason, at, request: self.request.clone() };
        self.state.apply_posting(&posting);
        self.out.postings.push(posting);
    }

    fn add_lot(
        &mut self,
        points: Points,
        source: LotSource,
        available_from: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> LotId {
        let lot = Lot {
            id: LotId(self.state.lots_created + 1),
            points,
            earned_at: self.now,
            available_from,
            expires_at,
            source,
        };
        let id = lot.id;
        self.state.add_lot(lot.clone());
        self.out.new_lots.push(lot);
        id
    }

    fn resolve(&mut self, hold: HoldId, status: HoldStatus, at: DateTime<Utc>) {
        let resolution = HoldResolution { hold, status, at };
        self.state.resolve(resolution);
        self.out.resolutions.push(resolution);
    }

    /// Which lots `points` available points would come from, in spending order.
    fn plan_spend(&self, points: Points) -> Vec<Draw> {
        let mut left = points;
        let mut draws = Vec::new();
        for id in spending_order(&self.state) {
            if !left.is_positive() {
                break;
            }
            let take = left.min(self.state.lots[&id].remaining);
            draws.push(Draw { lot: id, points: take });
            left -= take;
        }
        draws
    }

    fn check_available(&self, points: Points) -> Result<(), Refusal> {
        if !points.is_positive() || points.get() > Points::MAX_REQUEST {
            return Err(Refusal::InvalidPoints);
        }
        let available = self.state.balances.available;
        if available < points {
            return Err(Refusal::InsufficientPoints { available, requested: points });
        }
        Ok(())
    }

    fn spend(&mut self, points: Points, credit: Account, reason: &Reason, hold: Option<HoldId>) {
        for draw in self.plan_spend(points) {
            self.post(Account::Available, credit, draw.points, Some(draw.lot), hold, reason.clone(), self.now);
        }
    }

    fn settle_time(&mut self) {
        #[derive(Clone, Copy)]
        enum Due {
            HoldExpires(HoldId),
            LotMatures(LotId),
            LotExpires(LotId),
        }
        let now = self.now;
        let mut due: Vec<(DateTime<Utc>, u8, u32, Due)> = Vec::new();
        for h in self.state.holds.values() {
            if h.status == HoldStatus::Open && h.hold.expires_at <= now {
                due.push((h.hold.expires_at, 0, h.hold.id.0, Due::HoldExpires(h.hold.id)));
            }
        }
        for l in self.state.lots.values() {
            if !l.matured && l.lot.available_from <= now {
                due.push((l.lot.available_from, 1, l.lot.id.0, Due::LotMatures(l.lot.id)));
            }
            if let Some(expires_at) = l.lot.expires_at.filter(|&e| e <= now) {
                due.push((expires_at, 2, l.lot.id.0, Due::LotExpires(l.lot.id)));
            }
        }
        due.sort_by_key(|&(at, rank, id, _)| (at, rank, id));
        for (i, &(at, _, _, event)) in due.iter().enumerate() {
            match event {
                Due::HoldExpires(id) => {
                    self.release(id, Points::ZERO, Release::Expired, at);
                    self.resolve(id, HoldStatus::Expired, at);
                }
                Due::LotMatures(id) => {
                    let remaining = self.state.lots[&id].remaining;
                    if remaining.is_positive() && !self.state.lots[&id].matured {
                        self.post(Account::Pending, Account::Available, remaining, Some(id), None, Reason::Matured, at);
                    }
                }
                Due::LotExpires(id) => {
                    let lot = &self.state.lots[&id];
                    let (remaining, from) =
                        (lot.remaining, if lot.matured { Account::Available } else { Account::Pending });
                    if remaining.is_positive() {
                        self.post(from, Account::Expired, remaining, Some(id), None, Reason::Expired, at);
                    }
                }
            }
            // Once everything due at an instant is done, what became available repays debt at that instant,
            // so a late settlement ends where a clock ticking through every instant would.
            if due.get(i + 1).is_none_or(|next| next.0 != at) {
                self.repay_debt_at(at);
            }
        }
    }

    /// Available points repay what the customer owes, in spending order.
    fn repay_debt(&mut self) {
        self.repay_debt_at(self.now);
    }

    fn repay_debt_at(&mut self, at: DateTime<Utc>) {
        let repay = self.state.balances.owed().min(self.state.balances.available);
        if repay.is_positive() {
            for draw in self.plan_spend(repay) {
                self.post(Account::Available, Account::Debt, draw.points, Some(draw.lot), None, Reason::DebtRepaid, at);
            }
        }
    }

    /// Ends an open hold's reservation: the first `captured` points (in draw order) are spent, the rest go
    /// back to their lots, or expire if their lot has expired by `at`.
    fn release(&mut self, id: HoldId, captured: Points, cause: Release, at: DateTime<Utc>) {
        let draws = self.state.holds[&id].hold.draws.clone();
        let mut to_capture = captured;
        for draw in draws {
            let take = to_capture.min(draw.points);
            to_capture -= take;
            if take.is_positive() {
                self.post(
                    Account::Held,
                    Account::Redemptions,
                    take,
                    Some(draw.lot),
                    Some(id),
                    Reason::HoldCaptured,
                    at,
                );
            }
            let rest = draw.points - take;
            if rest.is_positive() {
                let expired = self.state.lots.get(&draw.lot).is_some_and(|l| l.lot.expired_at(at));
                let (credit, reason) = if expired {
                    (Account::Expired, Reason::Expired)
                } else {
                    (Account::Available, Reason::HoldReleased(cause))
                };
                self.post(Account::Held, credit, rest, Some(draw.lot), Some(id), reason, at);
            }
        }
    }

    fn earn(&mut self, earn: &Earn) -> Result<Receipt, Refusal> {
        let total = earn
            .parts
            .iter()
            .try_fold(0i64, |sum, p| if p.points.get() < 0 { None } else { sum.checked_add(p.points.get()) })
            .filter(|&t| t <= Points::MAX_REQUEST)
            .map(Points::new)
            .ok_or(Refusal::InvalidPoints)?;
        if !total.is_positive() {
            return Ok(Receipt::default());
        }
        let lot = self.add_lot(total, earn.source.clone(), earn.available_from, earn.expires_at);
        let account = if earn.available_from <= self.now { Account::Available } else { Account::Pending };
        for part in earn.parts.iter().filter(|p| p.points.is_positive()) {
            let reason = Reason::Earned(part.reason.clone());
            self.post(Account::Issuance, account, part.points, Some(lot), None, reason, self.now);
        }
        Ok(Receipt { points: total, lot: Some(lot), ..Receipt::default() })
    }

    fn redeem(&mut self, points: Points, note: &Option<String>) -> Result<Receipt, Refusal> {
        self.check_available(points)?;
        self.spend(points, Account::Redemptions, &Reason::Redeemed { note: note.clone() }, None);
        Ok(Receipt { points, ..Receipt::default() })
    }

    fn place_hold(&mut self, points: Points, expires_at: DateTime<Utc>) -> Result<Receipt, Refusal> {
        self.check_available(points)?;
        let id = HoldId(self.state.holds_created + 1);
        let hold = Hold { id, points, placed_at: self.now, expires_at, draws: self.plan_spend(points) };
        self.state.add_hold(hold.clone());
        self.out.new_holds.push(hold);
        self.spend(points, Account::Held, &Reason::HoldPlaced, Some(id));
        Ok(Receipt { points, hold: Some(id), ..Receipt::default() })
    }

    fn open_hold(&self, id: HoldId) -> Result<Points, Refusal> {
        let hold = self.state.holds.get(&id).ok_or(Refusal::HoldNotFound)?;
        match hold.status {
            HoldStatus::Open => Ok(hold.remaining),
            HoldStatus::Expired => Err(Refusal::HoldExpired),
            HoldStatus::Captured { .. } | HoldStatus::Voided => Err(Refusal::HoldAlreadyResolved),
        }
    }

    fn capture(&mut self, id: HoldId, points: Option<Points>) -> Result<Receipt, Refusal> {
        let held = self.open_hold(id)?;
        let points = points.unwrap_or(held);
        if !points.is_positive() {
            return Err(Refusal::InvalidPoints);
        }
        if points > held {
            return Err(Refusal::CaptureExceedsHold { held, requested: points });
        }
        self.release(id, points, Release::NotCaptured, self.now);
        self.resolve(id, HoldStatus::Captured { points }, self.now);
        Ok(Receipt { points, hold: Some(id), ..Receipt::default() })
    }

    fn void(&mut self, id: HoldId) -> Result<Receipt, Refusal> {
        let held = self.open_hold(id)?;
        self.release(id, Points::ZERO, Release::Voided, self.now);
        self.resolve(id, HoldStatus::Voided, self.now);
        Ok(Receipt { points: held, hold: Some(id), ..Receipt::default() })
    }

    fn clawback(&mut self, c: &Clawback) -> Result<Receipt, Refusal> {
        let figures = self.state.orders.get(&c.order.id).copied().unwrap_or_default();
        let earned = figures.earned.get();
        let target = if c.order_net_minor <= 0 {
            earned
        } else {
            let refunded = c.refunded_total_minor.clamp(0, c.order_net_minor);
            (i128::from(earned) * i128::from(refunded) / i128::from(c.order_net_minor)) as i64
        };
        let take = Points::new((target - figures.clawed_back.get()).max(0));
        let mut left = take;
        // The order's own lots, then available lots in spending order, then other pending lots.
        let own: Vec<LotId> = self
            .state
            .lots
            .values()
            .filter(|l| matches!(&l.lot.source, LotSource::Order(o) if o.id == c.order.id))
            .map(|l| l.lot.id)
            .collect();
        let mut pending: Vec<_> = self.state.lots.values().filter(|l| !l.matured).collect();
        pending.sort_by_key(|l| (l.lot.expires_at.is_none(), l.lot.expires_at, l.lot.earned_at, l.lot.id));
        let pending: Vec<LotId> = pending.into_iter().map(|l| l.lot.id).collect();
        let order: Vec<LotId> = own.into_iter().chain(spending_order(&self.state)).chain(pending).collect();
        let reason = Reason::ClawedBack { order: c.order.clone(), refund: c.refund };
        for id in order {
            if !left.is_positive() {
                break;
            }
            let lot = &self.state.lots[&id];
            let from = if lot.matured { Account::Available } else { Account::Pending };
            let points = left.min(lot.remaining);
            if points.is_positive() {
                self.post(from, Account::Issuance, points, Some(id), None, reason.clone(), self.now);
                left -= points;
            }
        }
        if left.is_positive() {
            let (debit, reason) = match c.shortfall {
                Shortfall::Debt => (Account::Debt, Reason::DebtRecorded { order: c.order.clone(), refund: c.refund }),
                Shortfall::WriteOff => {
                    (Account::WrittenOff, Reason::WrittenOff { order: c.order.clone(), refund: c.refund })
                }
            };
            self.post(debit, Account::Issuance, left, None, None, reason, self.now);
        }
        Ok(Receipt { points: take, shortfall: left, ..Receipt::default() })
    }

    fn adjust(&mut self, points: Points, note: &str, expires_at: Option<DateTime<Utc>>) -> Result<Receipt, Refusal> {
        if points.get().unsigned_abs() > Points::MAX_REQUEST as u64 {
            return Err(Refusal::InvalidPoints);
        }
        let reason = Reason::Adjusted { note: note.to_owned() };
        if points.is_positive() {
            let lot = self.add_lot(points, LotSource::Adjustment, self.now, expires_at);
            self.post(Account::Adjustments, Account::Available, points, Some(lot), None, reason, self.now);
            return Ok(Receipt { points, lot: Some(lot), ..Receipt::default() });
        }
        self.check_available(-points)?;
        self.spend(-points, Account::Adjustments, &reason, None);
        Ok(Receipt { points, ..Receipt::default() })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::ids::OrderId;
    use crate::loyalty::verify::verify;
    use crate::loyalty::wallet::{EarnRule, Posting};

    fn day(d: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(d)
    }

    fn p(n: i64) -> Points {
        Points::new(n)
    }

    fn order(n: i64) -> OrderRef {
        OrderRef { id: OrderId::from_key(n), number: format!("{}", 1000 + n) }
    }

    /// A wallet with its history, checked by `verify` after every step.
    #[derive(Default)]
    struct Book {
        state: WalletState,
        postings: Vec<Posting>,
        next: u32,
    }

    impl Book {
        fn run(&mut self, command: Command, now: DateTime<Utc>) -> Result<Receipt, Refusal> {
            self.next += 1;
            let id = RequestId::parse("id", &format!("r{}", self.next)).unwrap();
            self.run_as(id, command, now)
        }

        fn run_as(&mut self, id: RequestId, command: Command, now: DateTime<Utc>) -> Result<Receipt, Refusal> {
            let before = self.state.clone();
            let outcome = execute(&self.state, &Request { id, command }, now);
            let outcome = match outcome {
                Ok(o) => o,
                Err(refusal) => {
                    assert_eq!(self.state, before);
                    return Err(refusal);
                }
            };
            self.state.apply(&outcome);
            assert_eq!(self.state.balances, outcome.balances);
            self.postings.extend(outcome.postings.iter().cloned());
            assert_eq!(verify(&self.state, &self.postings), vec![]);
            Ok(outcome.receipt)
        }

        fn settle(&mut self, now: DateTime<Utc>) -> Outcome {
            let outcome = settle(&self.state, now);
            self.state.apply(&outcome);
            self.postings.extend(outcome.postings.iter().cloned());
            assert_eq!(verify(&self.state, &self.postings), vec![]);
            outcome
        }

        fn available(&self) -> i64 {
            self.state.balances.available.get()
        }
    }

    fn earn(
        points: i64,
        order_no: Option<i64>,
        now: DateTime<Utc>,
        lock_days: i64,
        expiry_days: Option<i64>,
    ) -> Command {
        let reason = EarnReason { rule: EarnRule::WelcomeBonus, order: order_no.map(order) };
        Command::Earn(Earn {
            parts: vec![EarnPart { reason, points: p(points) }],
            source: order_no.map_or(LotSource::Award, |n| LotSource::Order(order(n))),
            available_from: now + Duration::days(lock_days),
            expires_at: expiry_days.map(|d| now + Duration::days(d)),
        })
    }

    fn redeem(points: i64) -> Command {
        Command::Redeem { points: p(points), note: None }
    }

    fn clawback(order_no: i64, refund: i64, net: i64, refunded_total: i64, shortfall: Shortfall) -> Command {
        Command::Clawback(Clawback {
            order: order(order_no),
            refund: RefundId::from_key(refund),
            order_net_minor: net,
            refunded_total_minor: refunded_total,
            shortfall,
        })
    }

    #[test]
    fn pending_points_become_available_by_themselves() {
        let mut book = Book::default();
        book.run(earn(40, Some(1), day(0), 14, None), day(0)).unwrap();
        assert_eq!(book.state.balances.pending, p(40));
        assert_eq!(
            book.run(redeem(10), day(13)),
            Err(Refusal::InsufficientPoints { available: p(0), requested: p(10) })
        );
        let settled = book.settle(day(15));
        assert_eq!(settled.postings.len(), 1);
        assert_eq!(settled.postings[0].at, day(14), "matured at its time, noticed later");
        assert_eq!(book.available(), 40);
        assert!(book.settle(day(16)).postings.is_empty(), "settling twice changes nothing");
    }

    #[test]
    fn spending_takes_soonest_expiring_first_fifo_and_never_expiring_last() {
        let mut book = Book::default();
        let never = book.run(earn(10, None, day(0), 0, None), day(0)).unwrap().lot.unwrap();
        let late = book.run(earn(10, None, day(0), 0, Some(300)), day(0)).unwrap().lot.unwrap();
        let soon_a = book.run(earn(10, None, day(1), 0, Some(99)), day(1)).unwrap().lot.unwrap();
        let soon_b = book.run(earn(10, None, day(2), 0, Some(98)), day(2)).unwrap().lot.unwrap();
        assert_eq!(spending_order(&book.state), vec![soon_a, soon_b, late, never], "day 100 for both, FIFO");
        book.run(redeem(25), day(3)).unwrap();
        let left = |id: LotId| book.state.lots[&id].remaining.get();
        assert_eq!((left(soon_a), left(soon_b), left(late), left(never)), (0, 0, 5, 10));
    }

    #[test]
    fn refusals_write_nothing() {
        let mut book = Book::default();
        book.run(earn(30, None, day(0), 0, None), day(0)).unwrap();
        assert_eq!(book.run(redeem(31), day(0)).unwrap_err().code(), "insufficient_points");
        assert_eq!(book.run(redeem(0), day(0)).unwrap_err().code(), "invalid_points");
        assert_eq!(book.run(Command::Void { hold: HoldId(9) }, day(0)).unwrap_err().code(), "hold_not_found");
        assert_eq!(book.available(), 30);
    }

    #[test]
    fn a_hold_is_captured_in_part_and_resolves_once() {
        let mut book = Book::default();
        book.run(earn(100, None, day(0), 0, None), day(0)).unwrap();
        let hold = book.run(Command::PlaceHold { points: p(60), expires_at: day(1) }, day(0)).unwrap().hold.unwrap();
        assert_eq!((book.available(), book.state.balances.held.get()), (40, 60));
        assert_eq!(book.run(redeem(41), day(0)).unwrap_err().code(), "insufficient_points");
        let capture = |points| Command::Capture { hold, points: Some(p(points)) };
        assert_eq!(book.run(capture(61), day(0)), Err(Refusal::CaptureExceedsHold { held: p(60), requested: p(61) }));
        assert_eq!(book.run(capture(45), day(0)).unwrap().points, p(45));
        assert_eq!((book.available(), book.state.balances.held.get()), (55, 0));
        assert_eq!(book.run(capture(1), day(0)).unwrap_err().code(), "hold_already_resolved");
        assert_eq!(book.run(Command::Void { hold }, day(0)).unwrap_err().code(), "hold_already_resolved");
        assert_eq!(book.state.holds[&hold].status, HoldStatus::Captured { points: p(45) });
    }

    #[test]
    fn an_expired_hold_releases_itself_and_expired_lots_take_their_points_back() {
        let mut book = Book::default();
        book.run(earn(50, None, day(0), 0, Some(2)), day(0)).unwrap();
        book.run(earn(50, None, day(0), 0, None), day(0)).unwrap();
        let a = book.run(Command::PlaceHold { points: p(70), expires_at: day(3) }, day(0)).unwrap().hold.unwrap();
        let b = book.run(Command::PlaceHold { points: p(10), expires_at: day(1) }, day(0)).unwrap().hold.unwrap();
        book.run(Command::Void { hold: b }, day(0)).unwrap();
        assert_eq!(book.available(), 30);
        // Day 2: the first lot expires (nothing of it is left outside the hold); day 3: the hold expires, its
        // 50 points from that lot expire at once and 20 go back.
        let settled = book.settle(day(4));
        assert_eq!(book.state.holds[&a].status, HoldStatus::Expired);
        assert_eq!(book.available(), 50);
        let expired: i64 =
            settled.postings.iter().filter(|p| p.credit == Account::Expired).map(|p| p.points.get()).sum();
        assert_eq!(expired, 50);
        assert!(settled.postings.iter().all(|p| p.at == day(3)));
        assert_eq!(book.run(Command::Capture { hold: a, points: None }, day(4)).unwrap_err().code(), "hold_expired");
    }

    #[test]
    fn a_hold_is_open_until_its_expiry_instant() {
        let mut book = Book::default();
        book.run(earn(10, None, day(0), 0, None), day(0)).unwrap();
        let hold = book.run(Command::PlaceHold { points: p(10), expires_at: day(1) }, day(0)).unwrap().hold.unwrap();
        let just_before = day(1) - Duration::microseconds(1);
        assert!(book.clone_run(Command::Capture { hold, points: None }, just_before).is_ok());
        assert_eq!(book.run(Command::Capture { hold, points: None }, day(1)).unwrap_err().code(), "hold_expired");
    }

    impl Book {
        fn clone_run(&self, command: Command, now: DateTime<Utc>) -> Result<Outcome, Refusal> {
            execute(&self.state, &Request { id: RequestId::parse("id", "probe").unwrap(), command }, now)
        }
    }

    #[test]
    fn lots_expire_at_their_time() {
        let mut book = Book::default();
        book.run(earn(10, None, day(0), 0, Some(30)), day(0)).unwrap();
        book.run(earn(5, None, day(0), 0, Some(60)), day(0)).unwrap();
        assert_eq!(book.settle(day(30) - Duration::seconds(1)).postings, vec![]);
        let out = book.settle(day(45));
        assert_eq!((out.postings.len(), out.postings[0].at, book.available()), (1, day(30), 5));
    }

    #[test]
    fn refunds_take_back_what_was_earned_on_them_and_no_more() {
        let mut book = Book::default();
        book.run(earn(100, Some(1), day(0), 0, None), day(0)).unwrap();
        // An order of 30.00 refunded in three steps of 10.00: 33 + 33 + 34, exactly 100.
        let mut taken = Vec::new();
        for (step, total) in [(1, 1000), (2, 2000), (3, 3000)] {
            taken.push(book.run(clawback(1, step, 3000, total, Shortfall::Debt), day(1)).unwrap().points.get());
        }
        assert_eq!(taken, vec![33, 33, 34]);
        assert_eq!(book.run(clawback(1, 4, 3000, 3000, Shortfall::Debt), day(1)).unwrap().points, p(0));
        assert_eq!(book.state.orders[&OrderId::from_key(1)].clawed_back, p(100));
        assert_eq!(book.available(), 0);
    }

    #[test]
    fn spent_points_become_a_debt_repaid_by_later_points_or_are_written_off() {
        let mut book = Book::default();
        book.run(earn(100, Some(1), day(0), 0, None), day(0)).unwrap();
        book.run(redeem(80), day(0)).unwrap();
        let receipt = book.run(clawback(1, 1, 1000, 1000, Shortfall::Debt), day(1)).unwrap();
        assert_eq!((receipt.points, receipt.shortfall), (p(100), p(80)));
        assert_eq!(book.state.balances.owed(), p(80));
        book.run(earn(50, Some(2), day(2), 10, None), day(2)).unwrap();
        assert_eq!(book.state.balances.owed(), p(80), "pending points do not repay");
        book.settle(day(12));
        assert_eq!((book.state.balances.owed(), book.available()), (p(30), 0));

        let mut forgiving = Book::default();
        forgiving.run(earn(100, Some(1), day(0), 0, None), day(0)).unwrap();
        forgiving.run(redeem(80), day(0)).unwrap();
        let receipt = forgiving.run(clawback(1, 1, 1000, 500, Shortfall::WriteOff), day(1)).unwrap();
        assert_eq!((receipt.points, receipt.shortfall), (p(50), p(30)));
        assert_eq!((forgiving.available(), forgiving.state.balances.owed()), (0, p(0)));
    }

    #[test]
    fn a_refund_takes_the_orders_own_pending_points_first() {
        let mut book = Book::default();
        book.run(earn(20, None, day(0), 0, None), day(0)).unwrap();
        book.run(earn(40, Some(7), day(0), 14, None), day(0)).unwrap();
        book.run(clawback(7, 1, 4000, 4000, Shortfall::Debt), day(1)).unwrap();
        assert_eq!((book.available(), book.state.balances.pending.get()), (20, 0));
    }

    #[test]
    fn adjustments_add_a_lot_or_spend_without_overdrawing() {
        let mut book = Book::default();
        let adjust = |n| Command::Adjust { points: p(n), note: "goodwill".into(), expires_at: None };
        assert!(book.run(adjust(25), day(0)).unwrap().lot.is_some());
        assert_eq!(book.run(adjust(-26), day(0)).unwrap_err().code(), "insufficient_points");
        assert_eq!(book.run(adjust(-5), day(0)).unwrap().points, p(-5));
        assert_eq!(book.run(adjust(0), day(0)).unwrap_err().code(), "invalid_points");
        assert_eq!(book.run(adjust(i64::MIN), day(0)).unwrap_err().code(), "invalid_points");
        let huge = |n| EarnPart { reason: EarnReason { rule: EarnRule::SignUp, order: None }, points: p(n) };
        let parts = vec![huge(i64::MAX), huge(i64::MAX)];
        let earn = Earn { parts, source: LotSource::Award, available_from: day(0), expires_at: None };
        assert_eq!(book.run(Command::Earn(earn), day(0)).unwrap_err().code(), "invalid_points");
        assert_eq!(book.available(), 20);
    }

    #[test]
    fn a_replay_returns_the_first_receipt_and_another_amount_is_refused() {
        let mut book = Book::default();
        book.run(earn(100, None, day(0), 0, None), day(0)).unwrap();
        let id = RequestId::parse("id", "till-7-0042").unwrap();
        let hold = |n| Command::PlaceHold { points: p(n), expires_at: day(1) };
        let first = book.run_as(id.clone(), hold(30), day(0)).unwrap();
        let postings = book.postings.len();
        let again = execute(&book.state, &Request { id: id.clone(), command: hold(30) }, day(0) + Duration::seconds(5));
        let again = again.unwrap();
        assert!(again.replayed && again.postings.is_empty());
        assert_eq!(again.receipt, first);
        assert_eq!(book.run_as(id.clone(), hold(31), day(0)), Err(Refusal::AmountMismatch));
        assert_eq!(book.postings.len(), postings);
        assert_eq!(book.state.balances.held, p(30));
        let once = RequestId::for_order(OrderId::from_key(3));
        book.run_as(once.clone(), earn(10, Some(3), day(0), 0, None), day(0)).unwrap();
        book.run_as(once, earn(10, Some(3), day(0), 0, None), day(0)).unwrap();
        assert_eq!(book.state.orders[&OrderId::from_key(3)].earned, p(10), "an order earns once");
    }

    #[test]
    fn verify_finds_tampering() {
        let mut book = Book::default();
        book.run(earn(100, Some(1), day(0), 0, None), day(0)).unwrap();
        book.run(Command::PlaceHold { points: p(30), expires_at: day(1) }, day(0)).unwrap();
        let mut state = book.state.clone();
        state.balances.available = p(90);
        let codes: Vec<_> = verify(&state, &book.postings).iter().map(|f| f.code()).collect();
        assert_eq!(codes, vec!["balance_mismatch"]);
        let mut postings = book.postings.clone();
        postings[0].points = p(130);
        postings.pop();
        let codes: Vec<_> = verify(&book.state, &postings).iter().map(|f| f.code()).collect();
        assert!(codes.contains(&"lot_mismatch") && codes.contains(&"hold_mismatch"), "{codes:?}");
        let mut overdrawn = book.postings.clone();
        overdrawn.push(Posting {
            debit: Account::Available,
            credit: Account::Redemptions,
            points: p(500),
            lot: Some(LotId(1)),
            hold: None,
            reason: Reason::Redeemed { note: None },
            at: day(0),
            request: None,
        });
        let codes: Vec<_> = verify(&book.state, &overdrawn).iter().map(|f| f.code()).collect();
        assert!(codes.contains(&"negative_balance") && codes.contains(&"lot_out_of_range"), "{codes:?}");
    }
}
