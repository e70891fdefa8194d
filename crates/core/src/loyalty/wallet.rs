//! A customer's wallet as the ledger sees it: accounts, postings, lots, holds, and the state built from them.
//!
//! **Double entry.** Every movement of points is one [`Posting`] that debits one [`Account`] and credits another
//! with the same positive number of points. An account's balance is what was credited to it less what was
//! debited from it, so the balances of all accounts always sum to zero: points never appear or vanish. The
//! program's accounts (issuance, redemptions, expiry, adjustments, write-offs) run negative or positive as the
//! mirror image of the customer's.
//!
//! **Lots and holds are derived.** A [`Lot`] and a [`Hold`] are written once, when created, and never changed;
//! how many points a lot still has and whether a hold is still open follow from the postings that name them
//! (and, for a hold, from its one [`HoldResolution`]). [`WalletState`] is that derivation, kept in memory.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::ids::{CustomerId, OrderId, RefundId};
use crate::money::{Currency, Money};
use crate::text::{FieldError, bounded_text};

use super::points::{Multiplier, Points};

/// A lot, numbered within its wallet from 1 in the order lots were created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LotId(pub u32);

/// A hold, numbered within its wallet from 1 in the order holds were placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HoldId(pub u32);

impl fmt::Display for LotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lot {}", self.0)
    }
}

impl fmt::Display for HoldId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hold {}", self.0)
    }
}

/// The idempotency key of a ledger request: an API `Idempotency-Key`, or a key derived from what caused the
/// request (`order:ord_7`), so that the same cause is applied once however often it is retried.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(String);

impl RequestId {
    pub const MAX_CHARS: usize = 255;

    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        bounded_text(field, raw, Self::MAX_CHARS).map(RequestId)
    }

    /// The points an order earns: applied once per order.
    pub fn for_order(order: OrderId) -> Self {
        RequestId(format!("order:{order}"))
    }

    /// The clawback of one refund.
    pub fn for_refund(refund: RefundId) -> Self {
        RequestId(format!("refund:{refund}"))
    }

    /// The sign-up bonus: once per customer.
    pub fn for_sign_up() -> Self {
        RequestId("sign_up".to_owned())
    }

    /// The birthday bonus: once per year of the customer's local calendar.
    pub fn for_birthday(year: i32) -> Self {
        RequestId(format!("birthday:{year}"))
    }

    /// The referrer's bonus for one friend: once per friend.
    pub fn for_referral(friend: CustomerId) -> Self {
        RequestId(format!("referral:{friend}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The accounts of the ledger. The first four belong to the customer's wallet; the rest to the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    /// Points the customer may spend.
    Available,
    /// Points earned but locked until `available_from` (e.g. the end of the return window).
    Pending,
    /// Points reserved by open holds during a checkout.
    Held,
    /// Points owed by the customer after a refund took back points already spent; its balance is zero or
    /// negative, and later points repay it first.
    Debt,
    /// Where earned and awarded points come from.
    Issuance,
    /// Where spent points go.
    Redemptions,
    /// Where expired points go.
    Expired,
    /// Both sides of manual adjustments by the owner.
    Adjustments,
    /// Points taken back by a refund that the customer had already spent and that the program forgave.
    WrittenOff,
}

impl Account {
    pub const ALL: [Account; 9] = [
        Account::Available,
        Account::Pending,
        Account::Held,
        Account::Debt,
        Account::Issuance,
        Account::Redemptions,
        Account::Expired,
        Account::Adjustments,
        Account::WrittenOff,
    ];

    /// The stable name a store keeps.
    pub fn as_str(self) -> &'static str {
        match self {
            Account::Available => "available",
            Account::Pending => "pending",
            Account::Held => "held",
            Account::Debt => "debt",
            Account::Issuance => "issuance",
            Account::Redemptions => "redemptions",
            Account::Expired => "expired",
            Account::Adjustments => "adjustments",
            Account::WrittenOff => "written_off",
        }
    }

    /// Whether the account belongs to the customer's wallet.
    pub fn in_wallet(self) -> bool {
        matches!(self, Account::Available | Account::Pending | Account::Held | Account::Debt)
    }

    /// Whether the account holds points of lots (a posting touching it names the lot).
    pub fn holds_lots(self) -> bool {
        matches!(self, Account::Available | Account::Pending)
    }
}

impl FromStr for Account {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Account::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| format!("unknown account {s:?}"))
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An order as a statement names it: our id and the number the customer knows (its external id, if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRef {
    pub id: OrderId,
    pub number: String,
}

impl OrderRef {
    pub fn new(id: OrderId, external_id: Option<&crate::text::ExternalId>) -> Self {
        OrderRef { id, number: external_id.map_or_else(|| id.to_string(), |e| e.as_str().to_owned()) }
    }
}

/// A tier's multiplier as it applied to an earning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierBoost {
    pub tier: String,
    pub multiplier: Multiplier,
}

/// The earning rule that awarded points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EarnRule {
    /// Points per currency unit of the order's net amount, with product and tier multipliers.
    Purchase {
        points_per_unit: u32,
        currency: Currency,
        tier: Option<TierBoost>,
        multiplied_lines: u32,
    },
    WelcomeBonus,
    NthPurchase {
        n: u32,
    },
    BigSpender {
        above: Money,
    },
    SignUp,
    Birthday {
        year: i32,
    },
    /// The referrer's bonus when a friend they referred made a first purchase.
    Referrer {
        friend: CustomerId,
    },
    /// The friend's bonus on their first purchase.
    ReferredFriend {
        referrer: CustomerId,
    },
    /// A custom event posted by the integration (`review`, `newsletter`).
    Event {
        name: String,
    },
}

impl EarnRule {
    /// A stable name for a store column.
    pub fn kind(&self) -> &'static str {
        match self {
            EarnRule::Purchase { .. } => "purchase",
            EarnRule::WelcomeBonus => "welcome_bonus",
            EarnRule::NthPurchase { .. } => "nth_purchase",
            EarnRule::BigSpender { .. } => "big_spender",
            EarnRule::SignUp => "sign_up",
            EarnRule::Birthday { .. } => "birthday",
            EarnRule::Referrer { .. } => "referrer",
            EarnRule::ReferredFriend { .. } => "referred_friend",
            EarnRule::Event { .. } => "event",
        }
    }
}

/// Why points were earned: the rule, and the order when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarnReason {
    pub rule: EarnRule,
    pub order: Option<OrderRef>,
}

/// Why a hold released its points back to the wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    Voided,
    Expired,
    /// The part of a hold a capture did not take.
    NotCaptured,
}

/// Why a posting was made, with what a statement line needs to say it in plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Earned(EarnReason),
    /// A pending lot's lock period ended.
    Matured,
    Redeemed {
        note: Option<String>,
    },
    HoldPlaced,
    HoldCaptured,
    HoldReleased(Release),
    Expired,
    /// A refund took back points earned on what was returned.
    ClawedBack {
        order: OrderRef,
        refund: RefundId,
    },
    /// The part of a clawback the wallet could not cover, recorded as owed.
    DebtRecorded {
        order: OrderRef,
        refund: RefundId,
    },
    /// The part of a clawback the wallet could not cover, forgiven.
    WrittenOff {
        order: OrderRef,
        refund: RefundId,
    },
    /// Points that became available went to repay a debt.
    DebtRepaid,
    Adjusted {
        note: String,
    },
}

impl Reason {
    /// A stable name for a store column.
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::Earned(_) => "earned",
            Reason::Matured => "matured",
            Reason::Redeemed { .. } => "redeemed",
            Reason::HoldPlaced => "hold_placed",
            Reason::HoldCaptured => "hold_captured",
            Reason::HoldReleased(_) => "hold_released",
            Reason::Expired => "expired",
            Reason::ClawedBack { .. } => "clawed_back",
            Reason::DebtRecorded { .. } => "debt_recorded",
            Reason::WrittenOff { .. } => "written_off",
            Reason::DebtRepaid => "debt_repaid",
            Reason::Adjusted { .. } => "adjusted",
        }
    }
}

/// One movement of points: `points` leave `debit` and arrive in `credit`.
///
/// A posting that touches `Available` or `Pending` names its lot; one that touches `Held` names its hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    pub debit: Account,
    pub credit: Account,
    pub points: Points,
    pub lot: Option<LotId>,
    pub hold: Option<HoldId>,
    pub reason: Reason,
    /// When the movement took effect: a lot expires at its expiry time even when the ledger notices later.
    pub at: DateTime<Utc>,
    /// The request that caused it; `None` for movements caused by time (maturing, expiry, released holds).
    pub request: Option<RequestId>,
}

/// Where a lot's points came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LotSource {
    Order(OrderRef),
    /// A bonus not tied to an order (sign-up, birthday, referral, custom event).
    Award,
    Adjustment,
}

/// Points earned together, spendable from `available_from` until `expires_at` (never, when `None`).
/// Written once; what is left of it follows from its postings ([`LotState`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lot {
    pub id: LotId,
    pub points: Points,
    pub earned_at: DateTime<Utc>,
    pub available_from: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub source: LotSource,
}

impl Lot {
    pub fn expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

/// A lot and what is left of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotState {
    pub lot: Lot,
    /// Points of the lot still in `Available` or `Pending`.
    pub remaining: Points,
    /// Whether the lot's points are in `Available` (true) or still `Pending`.
    pub matured: bool,
}

/// Points a hold took from one lot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Draw {
    pub lot: LotId,
    pub points: Points,
}

/// A reservation of points during a checkout, open while `now < expires_at`. Written once; it resolves
/// exactly once ([`HoldResolution`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub id: HoldId,
    pub points: Points,
    pub placed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The lots the points came from, in spending order; a release returns them there.
    pub draws: Vec<Draw>,
}

/// How a hold ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldStatus {
    Open,
    Captured { points: Points },
    Voided,
    Expired,
}

/// The one record of how a hold ended (a store keeps it unique per hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldResolution {
    pub hold: HoldId,
    pub status: HoldStatus,
    pub at: DateTime<Utc>,
}

/// A hold and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldState {
    pub hold: Hold,
    /// Points still in `Held` for this hold: all of them while open, none once resolved.
    pub remaining: Points,
    pub status: HoldStatus,
}

/// The balances of the wallet's accounts. `debt` is zero or negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balances {
    pub available: Points,
    pub pending: Points,
    pub held: Points,
    pub debt: Points,
}

impl Balances {
    /// The balance of a wallet account; `None` for a program account.
    pub fn get(&self, account: Account) -> Option<Points> {
        match account {
            Account::Available => Some(self.available),
            Account::Pending => Some(self.pending),
            Account::Held => Some(self.held),
            Account::Debt => Some(self.debt),
            _ => None,
        }
    }

    fn get_mut(&mut self, account: Account) -> Option<&mut Points> {
        match account {
            Account::Available => Some(&mut self.available),
            Account::Pending => Some(&mut self.pending),
            Account::Held => Some(&mut self.held),
            Account::Debt => Some(&mut self.debt),
            _ => None,
        }
    }

    /// Points the customer owes.
    pub fn owed(&self) -> Points {
        -self.debt
    }
}

/// What an order earned and what its refunds took back so far (including debt and write-offs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OrderPoints {
    pub earned: Points,
    pub clawed_back: Points,
}

/// What an accepted request did, returned again when the request is replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Receipt {
    /// The points earned, spent, held, captured, released, taken back or adjusted.
    pub points: Points,
    pub lot: Option<LotId>,
    pub hold: Option<HoldId>,
    /// For a clawback: the part the wallet could not cover (recorded as debt or written off).
    pub shortfall: Points,
}

/// An accepted request, kept so that a replay is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub id: RequestId,
    /// [`super::ledger::Command::fingerprint`] of the request: the same id with another fingerprint is refused.
    pub fingerprint: String,
    pub receipt: Receipt,
}

/// One customer's wallet: what the store loads before a request and what the ledger rules read.
///
/// The store needs to load every lot with points remaining or drawn by an open hold, every open hold, the
/// per-order figures of the orders a request names, and the recorded request with the incoming id, if any.
/// Lots with nothing left and resolved holds may be left out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WalletState {
    pub balances: Balances,
    pub lots: BTreeMap<LotId, LotState>,
    pub holds: BTreeMap<HoldId, HoldState>,
    pub orders: BTreeMap<OrderId, OrderPoints>,
    pub requests: BTreeMap<RequestId, RecordedRequest>,
    /// How many lots and holds were ever created: the next ones are numbered after them.
    pub lots_created: u32,
    pub holds_created: u32,
}

/// Everything a request or a settlement changed: rows for a store to append in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    pub postings: Vec<Posting>,
    pub new_lots: Vec<Lot>,
    pub new_holds: Vec<Hold>,
    pub resolutions: Vec<HoldResolution>,
    /// The request to record, `None` for a settlement or a replay.
    pub recorded: Option<RecordedRequest>,
    pub receipt: Receipt,
    /// The request was seen before: nothing changed, and `receipt` is the first answer.
    pub replayed: bool,
    /// The wallet's balances after the outcome, for a store that keeps them in a row.
    pub balances: Balances,
}

impl WalletState {
    /// Applies an outcome of [`super::ledger::execute`] or [`super::ledger::settle`], as a store appending its
    /// rows would.
    pub fn apply(&mut self, outcome: &Outcome) {
        for lot in &outcome.new_lots {
            self.add_lot(lot.clone());
        }
        for hold in &outcome.new_holds {
            self.add_hold(hold.clone());
        }
        for posting in &outcome.postings {
            self.apply_posting(posting);
        }
        for resolution in &outcome.resolutions {
            self.resolve(*resolution);
        }
        if let Some(recorded) = &outcome.recorded {
            self.requests.insert(recorded.id.clone(), recorded.clone());
        }
    }

    pub(crate) fn add_lot(&mut self, lot: Lot) {
        self.lots_created = self.lots_created.max(lot.id.0);
        self.lots.insert(lot.id, LotState { lot, remaining: Points::ZERO, matured: false });
    }

    pub(crate) fn add_hold(&mut self, hold: Hold) {
        self.holds_created = self.holds_created.max(hold.id.0);
        self.holds.insert(hold.id, HoldState { hold, remaining: Points::ZERO, status: HoldStatus::Open });
    }

    pub(crate) fn resolve(&mut self, resolution: HoldResolution) {
        if let Some(hold) = self.holds.get_mut(&resolution.hold) {
            hold.status = resolution.status;
        }
    }

    /// Moves the points of one posting between balances, lots, holds and per-order figures.
    pub(crate) fn apply_posting(&mut self, p: &Posting) {
        if let Some(b) = self.balances.get_mut(p.credit) {
            *b += p.points;
        }
        if let Some(b) = self.balances.get_mut(p.debit) {
            *b -= p.points;
        }
        if let Some(lot) = p.lot.and_then(|id| self.lots.get_mut(&id)) {
            if p.credit.holds_lots() {
                lot.remaining += p.points;
            }
            if p.debit.holds_lots() {
                lot.remaining -= p.points;
            }
            if p.credit == Account::Available {
                lot.matured = true;
            }
        }
        if let Some(hold) = p.hold.and_then(|id| self.holds.get_mut(&id)) {
            if p.credit == Account::Held {
                hold.remaining += p.points;
            }
            if p.debit == Account::Held {
                hold.remaining -= p.points;
            }
        }
        match &p.reason {
            Reason::Earned(EarnReason { order: Some(order), .. }) => {
                self.orders.entry(order.id).or_default().earned += p.points;
            }
            Reason::ClawedBack { order, .. }
            | Reason::DebtRecorded { order, .. }
            | Reason::WrittenOff { order, .. } => {
                self.orders.entry(order.id).or_default().clawed_back += p.points;
            }
            _ => {}
        }
    }
}
