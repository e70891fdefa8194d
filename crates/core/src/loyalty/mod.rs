//! The loyalty engine's rules: a double-entry points ledger, earning rules, tiers, punch cards, rewards,
//! coupons and promotions. Pure: no I/O, no clock. A store loads a customer's [`WalletState`], calls these
//! functions with a request and `now`, and appends the rows they return in one transaction.
//!
//! | module | what it decides |
//! |---|---|
//! | [`points`] | `Points` (whole points, `i64`) and `Multiplier` (hundredths, never a float) |
//! | [`wallet`] | accounts, postings and their reasons, lots, holds, the wallet state and how an outcome applies |
//! | [`ledger`] | earn, redeem, hold / capture / void, expiry and maturing ([`settle`]), refund clawback, adjust; idempotency |
//! | [`verify`] | every ledger invariant, checked from the postings |
//! | [`statement`] | postings in plain words |
//! | [`program`] | the program file (TOML) and its validation |
//! | [`earning`] | what an order or event earns, with the explanation (the dry run) |
//! | [`tiers`] | tier evaluation: upgrade, qualification period, grace, one-step downgrade |
//! | [`expiry`] | expiry policies and "points expiring in N days" |
//! | [`punch`] | punch cards: stamps, completed cards, stamps removed by refunds |
//! | [`rewards`] | the rewards catalogue and its checks |
//! | [`coupons`] | coupon codes from random bytes, coupon checks, held redemptions |
//! | [`promotions`] | promotions and the pricing function with stacking rules |
//! | [`refusal`] | refusals with stable codes |
//! | [`backtest`] | recorded orders and refunds replayed through a program, in memory |

pub mod backtest;
pub mod coupons;
pub mod earning;
pub mod expiry;
pub mod ledger;
pub mod points;
pub mod program;
pub mod promotions;
pub mod punch;
pub mod refusal;
pub mod rewards;
pub mod statement;
pub mod tiers;
pub mod verify;
pub mod wallet;

pub use ledger::{Clawback, Command, Earn, EarnPart, Request, Shortfall, execute, settle, spending_order};
pub use points::{Multiplier, Points};
pub use program::Program;
pub use refusal::Refusal;
pub use statement::{StatementLine, statement};
pub use verify::{Finding, verify};
pub use wallet::{
    Account, Balances, Draw, EarnReason, EarnRule, Hold, HoldId, HoldResolution, HoldState, HoldStatus, Lot, LotId,
    LotSource, LotState, OrderPoints, OrderRef, Outcome, Posting, Reason, Receipt, RecordedRequest, Release, RequestId,
    TierBoost, WalletState,
};
