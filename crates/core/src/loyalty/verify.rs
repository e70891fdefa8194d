//! `verify`: every invariant of a wallet's ledger, checked from its full history of postings.
//!
//! The store's cached figures (balances, what is left of each lot and hold, per-order totals) are compared
//! with the same figures recomputed from the postings, and the postings themselves are checked: each moves a
//! positive number of points between two different accounts, names its lot or hold where it must, and the
//! balances of all accounts sum to zero. No balance of the wallet may be negative.

use std::collections::BTreeMap;
use std::fmt;

use crate::ids::OrderId;

use super::points::Points;
use super::wallet::{Account, EarnReason, HoldId, HoldStatus, LotId, Posting, Reason, WalletState};

/// Something `verify` found wrong. `index` is the position of a posting in the history given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    PostingNotPositive { index: usize, points: Points },
    PostingToSameAccount { index: usize, account: Account },
    PostingWithoutLot { index: usize },
    PostingWithoutHold { index: usize },
    UnknownLot { index: usize, lot: LotId },
    UnknownHold { index: usize, hold: HoldId },
    BooksDoNotBalance { total: Points },
    BalanceMismatch { account: Account, recorded: Points, from_postings: Points },
    NegativeBalance { account: Account, balance: Points },
    LotMismatch { lot: LotId, recorded: Points, from_postings: Points },
    LotOutOfRange { lot: LotId, remaining: Points, points: Points },
    LotInTwoAccounts { lot: LotId },
    LotsDoNotAddUp { account: Account, lots: Points, balance: Points },
    HoldMismatch { hold: HoldId, recorded: Points, from_postings: Points },
    OpenHoldIncomplete { hold: HoldId, held: Points, points: Points },
    ResolvedHoldStillHolds { hold: HoldId, held: Points },
    HoldsDoNotAddUp { holds: Points, balance: Points },
    OrderMismatch { order: OrderId },
    ClawedBackMoreThanEarned { order: OrderId, earned: Points, clawed_back: Points },
    DebtNotRepaid { owed: Points, available: Points },
}

impl Finding {
    /// A stable name for reports.
    pub fn code(&self) -> &'static str {
        match self {
            Finding::PostingNotPositive { .. } => "posting_not_positive",
            Finding::PostingToSameAccount { .. } => "posting_to_same_account",
            Finding::PostingWithoutLot { .. } => "posting_without_lot",
            Finding::PostingWithoutHold { .. } => "posting_without_hold",
            Finding::UnknownLot { .. } => "unknown_lot",
            Finding::UnknownHold { .. } => "unknown_hold",
            Finding::BooksDoNotBalance { .. } => "books_do_not_balance",
            Finding::BalanceMismatch { .. } => "balance_mismatch",
            Finding::NegativeBalance { .. } => "negative_balance",
            Finding::LotMismatch { .. } => "lot_mismatch",
            Finding::LotOutOfRange { .. } => "lot_out_of_range",
            Finding::LotInTwoAccounts { .. } => "lot_in_two_accounts",
            Finding::LotsDoNotAddUp { .. } => "lots_do_not_add_up",
            Finding::HoldMismatch { .. } => "hold_mismatch",
            Finding::OpenHoldIncomplete { .. } => "open_hold_incomplete",
            Finding::ResolvedHoldStillHolds { .. } => "resolved_hold_still_holds",
            Finding::HoldsDoNotAddUp { .. } => "holds_do_not_add_up",
            Finding::OrderMismatch { .. } => "order_mismatch",
            Finding::ClawedBackMoreThanEarned { .. } => "clawed_back_more_than_earned",
            Finding::DebtNotRepaid { .. } => "debt_not_repaid",
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::PostingNotPositive { index, points } => write!(f, "posting {index} moves {points} points"),
            Finding::PostingToSameAccount { index, account } => {
                write!(f, "posting {index} debits and credits {account}")
            }
            Finding::PostingWithoutLot { index } => write!(f, "posting {index} moves lot points but names no lot"),
            Finding::PostingWithoutHold { index } => write!(f, "posting {index} moves held points but names no hold"),
            Finding::UnknownLot { index, lot } => write!(f, "posting {index} names {lot}, which does not exist"),
            Finding::UnknownHold { index, hold } => write!(f, "posting {index} names {hold}, which does not exist"),
            Finding::BooksDoNotBalance { total } => write!(f, "the accounts sum to {total}, not 0"),
            Finding::BalanceMismatch { account, recorded, from_postings } => {
                write!(f, "{account} is {recorded}, the postings say {from_postings}")
            }
            Finding::NegativeBalance { account, balance } => write!(f, "{account} is negative: {balance}"),
            Finding::LotMismatch { lot, recorded, from_postings } => {
                write!(f, "{lot} has {recorded} left, the postings say {from_postings}")
            }
            Finding::LotOutOfRange { lot, remaining, points } => {
                write!(f, "{lot} has {remaining} left of {points}")
            }
            Finding::LotInTwoAccounts { lot } => write!(f, "{lot} has points both pending and available"),
            Finding::LotsDoNotAddUp { account, lots, balance } => {
                write!(f, "the lots hold {lots} {account} points, the balance is {balance}")
            }
            Finding::HoldMismatch { hold, recorded, from_postings } => {
                write!(f, "{hold} holds {recorded}, the postings say {from_postings}")
            }
            Finding::OpenHoldIncomplete { hold, held, points } => {
                write!(f, "{hold} is open with {held} of its {points} points")
            }
            Finding::ResolvedHoldStillHolds { hold, held } => write!(f, "{hold} is resolved but holds {held}"),
            Finding::HoldsDoNotAddUp { holds, balance } => {
                write!(f, "open holds hold {holds}, the held balance is {balance}")
            }
            Finding::OrderMismatch { order } => write!(f, "the points of {order} differ from its postings"),
            Finding::ClawedBackMoreThanEarned { order, earned, clawed_back } => {
                write!(f, "{order} earned {earned} and refunds took back {clawed_back}")
            }
            Finding::DebtNotRepaid { owed, available } => {
                write!(f, "{owed} points are owed while {available} are available")
            }
        }
    }
}

#[derive(Default)]
struct LotParts {
    pending: Points,
    available: Points,
}

/// Checks a wallet against its full history of postings; an empty list means all is well.
///
/// `state` must be the whole wallet (every lot and hold ever created), as rebuilt by the store.
pub fn verify(state: &WalletState, postings: &[Posting]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut accounts: BTreeMap<Account, Points> = Account::ALL.iter().map(|&a| (a, Points::ZERO)).collect();
    let mut lots: BTreeMap<LotId, LotParts> = BTreeMap::new();
    let mut holds: BTreeMap<HoldId, Points> = BTreeMap::new();
    let mut orders: BTreeMap<OrderId, (Points, Points)> = BTreeMap::new();

    for (index, p) in postings.iter().enumerate() {
        if !p.points.is_positive() {
            findings.push(Finding::PostingNotPositive { index, points: p.points });
        }
        if p.debit == p.credit {
            findings.push(Finding::PostingToSameAccount { index, account: p.debit });
        }
        *accounts.entry(p.credit).or_default() += p.points;
        *accounts.entry(p.debit).or_default() -= p.points;
        match p.lot {
            None if p.debit.holds_lots() || p.credit.holds_lots() => {
                findings.push(Finding::PostingWithoutLot { index })
            }
            Some(lot) if !state.lots.contains_key(&lot) => findings.push(Finding::UnknownLot { index, lot }),
            Some(lot) => {
                let parts = lots.entry(lot).or_default();
                for (account, points) in [(p.credit, p.points), (p.debit, -p.points)] {
                    match account {
                        Account::Pending => parts.pending += points,
                        Account::Available => parts.available += points,
                        _ => {}
                    }
                }
            }
            None => {}
        }
        let touches_held = p.debit == Account::Held || p.credit == Account::Held;
        match p.hold {
            None if touches_held => findings.push(Finding::PostingWithoutHold { index }),
            Some(hold) if !state.holds.contains_key(&hold) => findings.push(Finding::UnknownHold { index, hold }),
            Some(hold) if touches_held => {
                *holds.entry(hold).or_default() += if p.credit == Account::Held { p.points } else { -p.points };
            }
            _ => {}
        }
        match &p.reason {
            Reason::Earned(EarnReason { order: Some(order), .. }) => orders.entry(order.id).or_default().0 += p.points,
            Reason::ClawedBack { order, .. }
            | Reason::DebtRecorded { order, .. }
            | Reason::WrittenOff { order, .. } => orders.entry(order.id).or_default().1 += p.points,
            _ => {}
        }
    }

    let total: Points = accounts.values().sum();
    if total != Points::ZERO {
        findings.push(Finding::BooksDoNotBalance { total });
    }
    for account in [Account::Available, Account::Pending, Account::Held, Account::Debt] {
        let recorded = state.balances.get(account).expect("a wallet account");
        let from_postings = accounts[&account];
        if recorded != from_postings {
            findings.push(Finding::BalanceMismatch { account, recorded, from_postings });
        }
        let negative = if account == Account::Debt { from_postings.is_positive() } else { from_postings.get() < 0 };
        if negative {
            findings.push(Finding::NegativeBalance { account, balance: from_postings });
        }
    }

    let (mut lots_pending, mut lots_available) = (Points::ZERO, Points::ZERO);
    for (id, lot) in &state.lots {
        let parts = lots.remove(id).unwrap_or_default();
        let from_postings = parts.pending + parts.available;
        lots_pending += parts.pending;
        lots_available += parts.available;
        if lot.remaining != from_postings {
            findings.push(Finding::LotMismatch { lot: *id, recorded: lot.remaining, from_postings });
        }
        if from_postings.get() < 0 || from_postings > lot.lot.points {
            findings.push(Finding::LotOutOfRange { lot: *id, remaining: from_postings, points: lot.lot.points });
        }
        if parts.pending != Points::ZERO && parts.available != Points::ZERO {
            findings.push(Finding::LotInTwoAccounts { lot: *id });
        }
    }
    for (account, lots) in [(Account::Available, lots_available), (Account::Pending, lots_pending)] {
        if lots != accounts[&account] {
            findings.push(Finding::LotsDoNotAddUp { account, lots, balance: accounts[&account] });
        }
    }

    let mut open_total = Points::ZERO;
    for (id, hold) in &state.holds {
        let from_postings = holds.get(id).copied().unwrap_or_default();
        if hold.remaining != from_postings {
            findings.push(Finding::HoldMismatch { hold: *id, recorded: hold.remaining, from_postings });
        }
        if hold.status == HoldStatus::Open {
            open_total += from_postings;
            if from_postings != hold.hold.points {
                findings.push(Finding::OpenHoldIncomplete { hold: *id, held: from_postings, points: hold.hold.points });
            }
        } else if from_postings != Points::ZERO {
            findings.push(Finding::ResolvedHoldStillHolds { hold: *id, held: from_postings });
        }
    }
    if open_total != accounts[&Account::Held] {
        findings.push(Finding::HoldsDoNotAddUp { holds: open_total, balance: accounts[&Account::Held] });
    }

    for (order, (earned, clawed_back)) in &orders {
        let recorded = state.orders.get(order).copied().unwrap_or_default();
        if recorded.earned != *earned || recorded.clawed_back != *clawed_back {
            findings.push(Finding::OrderMismatch { order: *order });
        }
        if clawed_back > earned {
            findings.push(Finding::ClawedBackMoreThanEarned {
                order: *order,
                earned: *earned,
                clawed_back: *clawed_back,
            });
        }
    }
    for order in state.orders.keys().filter(|o| !orders.contains_key(o)) {
        if state.orders[order] != Default::default() {
            findings.push(Finding::OrderMismatch { order: *order });
        }
    }

    let (owed, available) = (-accounts[&Account::Debt], accounts[&Account::Available]);
    if owed.is_positive() && available.is_positive() {
        findings.push(Finding::DebtNotRepaid { owed, available });
    }
    findings
}
