//! The loyalty engine's rules: a double-entry points ledger, earning rules, tiers, punch cards, rewards,
//! coupons and promotions. Pure: the store loads state, calls these functions with a request and `now`, and
//! appends what they return in one transaction.

pub mod ledger;
pub mod points;
pub mod refusal;
pub mod verify;
pub mod wallet;

pub use ledger::{Clawback, Command, Earn, EarnPart, Request, Shortfall, execute, settle, spending_order};
pub use points::{Multiplier, Points};
pub use refusal::Refusal;
pub use verify::{Finding, verify};
pub use wallet::{
    Account, Balances, Draw, EarnReason, EarnRule, Hold, HoldId, HoldResolution, HoldState, HoldStatus, Lot, LotId,
    LotSource, LotState, OrderPoints, OrderRef, Outcome, Posting, Reason, Receipt, RecordedRequest, Release, RequestId,
    TierBoost, WalletState,
};
