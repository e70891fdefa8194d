//! The loyalty ledger in the database: how the rules of `regulars_core::loyalty` are stored.
//!
//! A write loads the customer's [`WalletState`] inside its transaction (on SQLite the writer thread runs one
//! job at a time; on PostgreSQL the wallet row is locked first by an upsert), settles what time did, runs
//! `execute`, and appends the outcome: postings, lots, holds, draws, resolutions and the request record are
//! inserted and never changed; the wallet's balances, what is left of each lot, the open holds and the
//! per-order figures are cached beside them, moved by deltas under `CHECK` constraints, so the database
//! itself refuses an overdraft. `verify` compares the caches with the postings.
//!
//! Only what a request needs is loaded: lots with points left (or drawn by an open hold), open holds, the
//! hold a capture or void names, the order a clawback names, and the recorded request with the incoming id.
//! An earning on a wallet without debt needs only what time has made due, so earning on a wallet with
//! thousands of lots stays cheap.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use regulars_core::loyalty::{
    Account, Balances, EarnReason, EarnRule, HoldId, LotId, LotSource, Multiplier, OrderRef, Posting, Program, Reason,
    Receipt, Release, TierBoost, WalletState,
};
use regulars_core::{Currency, CustomerId, LoyaltyHoldId, Money, OrderId, RefundId};
use serde_json::{Value, json};

use crate::Result;
use crate::ops::corrupt;

/// What a ledger request did, as the store returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerReceipt {
    pub receipt: Receipt,
    /// The request id was seen before: nothing changed and `receipt` is the first answer.
    pub replayed: bool,
    /// The wallet's balances after the request.
    pub balances: Balances,
    /// The public id of the hold the request placed, captured or voided.
    pub hold: Option<LoyaltyHoldId>,
}

/// A wallet as the API shows it: settled at the time asked, without writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletView {
    pub customer: CustomerId,
    pub balances: Balances,
    pub tier: Option<String>,
    /// Lots with points left, in the order they would be spent (pending ones last).
    pub lots: Vec<regulars_core::loyalty::LotState>,
}

/// A wallet's whole stored history: every lot and hold with the cached figures, and every posting.
#[derive(Debug, Clone)]
pub struct WalletHistory {
    pub state: WalletState,
    pub postings: Vec<Posting>,
}

/// A stored version of the program definition.
#[derive(Debug, Clone)]
pub struct ProgramVersion {
    pub version: i64,
    /// The TOML text as it was given.
    pub definition: String,
    pub defined_at: DateTime<Utc>,
    pub program: Arc<Program>,
}

/// The latest program read, so that recording an order does not parse the TOML again.
#[derive(Default)]
pub(crate) struct ProgramCache(Mutex<Option<(i64, Arc<Program>)>>);

impl ProgramCache {
    pub(crate) fn get(&self) -> Option<(i64, Arc<Program>)> {
        self.0.lock().expect("program cache").clone()
    }

    pub(crate) fn put(&self, version: i64, program: Arc<Program>) {
        *self.0.lock().expect("program cache") = Some((version, program));
    }
}

/// What a coupon gives (the pricing of an order is `loyalty::promotions`; the store keeps the offer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CouponOffer {
    AmountOff(Money),
    PercentOff(u32),
}

/// A batch of coupons to create: `count` codes with the same offer and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponBatchDraft {
    pub name: String,
    pub offer: CouponOffer,
    pub count: u32,
    /// Uses of each code in all (`Some(1)`: single-use codes).
    pub max_uses: Option<u32>,
    pub max_uses_per_customer: Option<u32>,
    /// Valid from `valid_from` (inclusive) until `valid_until` (exclusive).
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
}

/// A created batch and its codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponBatch {
    pub id: i64,
    pub name: String,
    pub codes: Vec<regulars_core::loyalty::coupons::CouponCode>,
}

/// A coupon as it stands: its offer, limits, and how often it was used (by the customer asked about).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponState {
    pub code: regulars_core::loyalty::coupons::CouponCode,
    pub batch_id: i64,
    pub name: String,
    pub offer: CouponOffer,
    pub max_uses: Option<u32>,
    pub uses: u32,
    pub max_uses_per_customer: Option<u32>,
    pub customer_uses: u32,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    /// What the code gives in words when it is an item (a reward or a full punch card), and the SKU
    /// made free, if any (then `offer` is 100% off one unit of it).
    pub gift: Option<(String, Option<String>)>,
}

impl CouponState {
    /// Why a redemption at `now` would be refused, in the order `loyalty::coupons` checks; `None` when it
    /// would be accepted. Advice only: the redeeming statements decide.
    pub fn refusal(&self, now: DateTime<Utc>) -> Option<regulars_core::loyalty::Refusal> {
        use regulars_core::loyalty::Refusal;
        if self.valid_from.is_some_and(|from| now < from) {
            return Some(Refusal::CouponNotYetValid);
        }
        if self.valid_until.is_some_and(|until| now >= until) {
            return Some(Refusal::CouponExpired);
        }
        if self.max_uses.is_some_and(|max| self.uses >= max) {
            return Some(Refusal::CouponExhausted);
        }
        if self.max_uses_per_customer.is_some_and(|max| self.customer_uses >= max) {
            return Some(Refusal::CouponLimitPerCustomer);
        }
        None
    }
}

/// An accepted coupon redemption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponRedeemed {
    pub redemption_id: i64,
    pub coupon: CouponState,
}

/// What a request needs loaded.
#[derive(Debug, Clone, Default)]
pub(crate) struct Load {
    /// Every lot and hold ever created (verify, statement).
    pub everything: bool,
    /// Only lots and holds that time has made due at `now` (an earning on a wallet without debt).
    pub due_only: bool,
    pub hold: Option<HoldId>,
    pub order: Option<OrderId>,
    pub request: Option<regulars_core::loyalty::RequestId>,
}

/// When time next acts on a lot: it matures or expires. `None`: never.
pub(crate) fn lot_due_at(lot: &regulars_core::loyalty::LotState) -> Option<i64> {
    let expires = lot.lot.expires_at.map(crate::ops::micros);
    if lot.matured {
        expires
    } else {
        let from = crate::ops::micros(lot.lot.available_from);
        Some(expires.map_or(from, |e| e.min(from)))
    }
}

pub(crate) fn source_columns(source: &LotSource) -> (&'static str, Option<i64>, Option<String>) {
    match source {
        LotSource::Order(o) => ("order", Some(o.id.key()), Some(o.number.clone())),
        LotSource::Award => ("award", None, None),
        LotSource::Adjustment => ("adjustment", None, None),
    }
}

pub(crate) fn source_from_columns(kind: &str, order: Option<i64>, number: Option<String>) -> Result<LotSource> {
    Ok(match (kind, order) {
        ("order", Some(id)) => {
            LotSource::Order(OrderRef { id: OrderId::from_key(id), number: number.unwrap_or_default() })
        }
        ("award", _) => LotSource::Award,
        ("adjustment", _) => LotSource::Adjustment,
        _ => return Err(corrupt(format!("lot source {kind:?}"))),
    })
}

pub(crate) fn account(name: &str) -> Result<Account> {
    name.parse().map_err(|e: String| corrupt(e))
}

// ----- reasons: a kind column and a small JSON document of details -----

fn order_json(o: &OrderRef) -> Value {
    json!({ "id": o.id.key(), "number": o.number })
}

fn int(v: &Value, key: &str) -> Result<i64> {
    v.get(key).and_then(Value::as_i64).ok_or_else(|| corrupt(format!("posting detail lacks {key}: {v}")))
}

fn text(v: &Value, key: &str) -> Result<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| corrupt(format!("posting detail lacks {key}: {v}")))
}

fn order_from(v: &Value) -> Result<OrderRef> {
    let o = v.get("order").ok_or_else(|| corrupt(format!("posting detail lacks order: {v}")))?;
    Ok(OrderRef { id: OrderId::from_key(int(o, "id")?), number: text(o, "number")? })
}

fn currency(v: &Value) -> Result<Currency> {
    crate::ops::currency_from_column(&text(v, "currency")?)
}

fn rule_json(rule: &EarnRule) -> Value {
    let mut v = match rule {
        EarnRule::Purchase { points_per_unit, currency, tier, multiplied_lines } => json!({
            "points_per_unit": points_per_unit,
            "currency": currency.code(),
            "multiplied_lines": multiplied_lines,
            "tier": tier.as_ref().map(|t| json!({ "name": t.tier, "hundredths": t.multiplier.hundredths() })),
        }),
        EarnRule::WelcomeBonus | EarnRule::SignUp => json!({}),
        EarnRule::NthPurchase { n } => json!({ "n": n }),
        EarnRule::BigSpender { above } => json!({ "above_minor": above.minor, "currency": above.currency.code() }),
        EarnRule::Birthday { year } => json!({ "year": year }),
        EarnRule::Referrer { friend } => json!({ "friend": friend.key() }),
        EarnRule::ReferredFriend { referrer } => json!({ "referrer": referrer.key() }),
        EarnRule::Event { name } => json!({ "name": name }),
    };
    v["rule"] = rule.kind().into();
    v
}

fn rule_from(v: &Value) -> Result<EarnRule> {
    Ok(match text(v, "rule")?.as_str() {
        "purchase" => EarnRule::Purchase {
            points_per_unit: int(v, "points_per_unit")? as u32,
            currency: currency(v)?,
            tier: match v.get("tier") {
                Some(t) if !t.is_null() => Some(TierBoost {
                    tier: text(t, "name")?,
                    multiplier: Multiplier::from_hundredths("multiplier", int(t, "hundredths")?)
                        .map_err(|e| corrupt(e.to_string()))?,
                }),
                _ => None,
            },
            multiplied_lines: int(v, "multiplied_lines")? as u32,
        },
        "welcome_bonus" => EarnRule::WelcomeBonus,
        "sign_up" => EarnRule::SignUp,
        "nth_purchase" => EarnRule::NthPurchase { n: int(v, "n")? as u32 },
        "big_spender" => EarnRule::BigSpender { above: Money::new(int(v, "above_minor")?, currency(v)?) },
        "birthday" => EarnRule::Birthday { year: int(v, "year")? as i32 },
        "referrer" => EarnRule::Referrer { friend: CustomerId::from_key(int(v, "friend")?) },
        "referred_friend" => EarnRule::ReferredFriend { referrer: CustomerId::from_key(int(v, "referrer")?) },
        "event" => EarnRule::Event { name: text(v, "name")? },
        other => return Err(corrupt(format!("earning rule {other:?}"))),
    })
}

/// The details of a reason, as stored beside its kind; `None` for reasons that have none.
pub(crate) fn reason_detail(reason: &Reason) -> Option<String> {
    let v = match reason {
        Reason::Earned(e) => {
            let mut v = rule_json(&e.rule);
            if let Some(o) = &e.order {
                v["order"] = order_json(o);
            }
            v
        }
        Reason::Redeemed { note: Some(note) } => json!({ "note": note }),
        Reason::HoldReleased(release) => json!({ "release": match release {
            Release::Voided => "voided",
            Release::Expired => "expired",
            Release::NotCaptured => "not_captured",
        } }),
        Reason::ClawedBack { order, refund }
        | Reason::DebtRecorded { order, refund }
        | Reason::WrittenOff { order, refund } => json!({ "order": order_json(order), "refund": refund.key() }),
        Reason::Adjusted { note } => json!({ "note": note }),
        Reason::Redeemed { note: None }
        | Reason::Matured
        | Reason::HoldPlaced
        | Reason::HoldCaptured
        | Reason::Expired
        | Reason::DebtRepaid => return None,
    };
    Some(v.to_string())
}

pub(crate) fn reason_from(kind: &str, detail: Option<&str>) -> Result<Reason> {
    let v: Value = match detail {
        Some(d) => serde_json::from_str(d).map_err(|e| corrupt(format!("posting detail {d:?}: {e}")))?,
        None => Value::Null,
    };
    let refund =
        |v: &Value| -> Result<(OrderRef, RefundId)> { Ok((order_from(v)?, RefundId::from_key(int(v, "refund")?))) };
    Ok(match kind {
        "earned" => Reason::Earned(EarnReason {
            rule: rule_from(&v)?,
            order: if v.get("order").is_some() { Some(order_from(&v)?) } else { None },
        }),
        "matured" => Reason::Matured,
        "redeemed" => Reason::Redeemed { note: v.get("note").and_then(Value::as_str).map(str::to_owned) },
        "hold_placed" => Reason::HoldPlaced,
        "hold_captured" => Reason::HoldCaptured,
        "hold_released" => Reason::HoldReleased(match text(&v, "release")?.as_str() {
            "voided" => Release::Voided,
            "expired" => Release::Expired,
            "not_captured" => Release::NotCaptured,
            other => return Err(corrupt(format!("hold release {other:?}"))),
        }),
        "expired" => Reason::Expired,
        "clawed_back" => {
            let (order, refund) = refund(&v)?;
            Reason::ClawedBack { order, refund }
        }
        "debt_recorded" => {
            let (order, refund) = refund(&v)?;
            Reason::DebtRecorded { order, refund }
        }
        "written_off" => {
            let (order, refund) = refund(&v)?;
            Reason::WrittenOff { order, refund }
        }
        "debt_repaid" => Reason::DebtRepaid,
        "adjusted" => Reason::Adjusted { note: text(&v, "note")? },
        other => return Err(corrupt(format!("posting reason {other:?}"))),
    })
}

/// The lot and hold numbers of a posting as stored.
pub(crate) fn lot_no(lot: Option<LotId>) -> Option<i64> {
    lot.map(|l| i64::from(l.0))
}

pub(crate) fn hold_no(hold: Option<HoldId>) -> Option<i64> {
    hold.map(|h| i64::from(h.0))
}

/// The SQL of the ledger, compiled for both backends inside `ops::sqlite` and `ops::postgres`.
macro_rules! define_ledger_ops {
    ($Conn:ty) => {
        use std::collections::{BTreeMap, BTreeSet};
        use std::sync::Arc;

        use chrono::{DateTime, Utc};
        use regulars_core::loyalty::{
            self, Balances, Command, Hold, HoldId, HoldState, HoldStatus, Lot, LotId, LotState,
            OrderPoints, OrderRef, Outcome, Points, Posting, Program, Receipt, RecordedRequest, Refusal, Request,
            RequestId, WalletState,
        };
        use regulars_core::{CustomerId, LoyaltyHoldId, Order, OrderId, RefundId};

        use crate::db::{Db, Query, Row};
        use crate::ledger::*;
        use crate::ops::{ROWS_PER_INSERT, corrupt, from_micros, micros};
        use crate::{Result, StoreError};

        /// The cached row of a wallet.
        #[derive(Debug, Clone, Default)]
        pub(crate) struct WalletRow {
            pub balances: Balances,
            pub lots_created: u32,
            pub holds_created: u32,
            pub postings: i64,
            pub tier: Option<String>,
        }

        const WALLET_COLUMNS: &str = "available, pending, held, debt, lots_created, holds_created, postings, tier";

        fn wallet_row(r: &Row) -> Result<WalletRow> {
            Ok(WalletRow {
                balances: Balances {
                    available: Points::new(r.get("available")?),
                    pending: Points::new(r.get("pending")?),
                    held: Points::new(r.get("held")?),
                    debt: Points::new(r.get("debt")?),
                },
                lots_created: r.get::<i64>("lots_created")? as u32,
                holds_created: r.get::<i64>("holds_created")? as u32,
                postings: r.get("postings")?,
                tier: r.get("tier")?,
            })
        }

        /// Creates the wallet if needed and locks its row for this transaction (PostgreSQL; on SQLite the
        /// writer runs one job at a time). `None` when the customer does not exist.
        pub(crate) async fn lock_wallet(c: &mut $Conn, customer: CustomerId) -> Result<Option<WalletRow>> {
            // An existing wallet is read (and locked) without writing it: on SQLite an upsert that changes
            // nothing still rewrites the row and copies its page into the savepoint journal.
            let existing = c
                .fetch_optional(
                    Query::new(format!(
                        "SELECT {WALLET_COLUMNS} FROM loyalty_wallets WHERE customer_id = $1{}",
                        <$Conn as Db>::LOCK_ROW
                    ))
                    .bind(customer.key()),
                )
                .await?;
            if let Some(row) = existing {
                return wallet_row(&row).map(Some);
            }
            let row = c
                .fetch_optional(
                    Query::new(format!(
                        "INSERT INTO loyalty_wallets (customer_id) SELECT id FROM customers WHERE id = $1 \
                         ON CONFLICT (customer_id) DO UPDATE SET postings = loyalty_wallets.postings \
                         RETURNING {WALLET_COLUMNS}"
                    ))
                    .bind(customer.key()),
                )
                .await?;
            row.as_ref().map(wallet_row).transpose()
        }

        /// The wallet row of an existing customer (an empty one if the customer never had points);
        /// `None` when there is no such customer.
        async fn read_wallet(c: &mut $Conn, customer: CustomerId) -> Result<Option<WalletRow>> {
            let row = c
                .fetch_optional(
                    Query::new(
                        "SELECT c.id, w.available, w.pending, w.held, w.debt, w.lots_created, w.holds_created, \
                         w.postings, w.tier FROM customers c LEFT JOIN loyalty_wallets w ON w.customer_id = c.id \
                         WHERE c.id = $1",
                    )
                    .bind(customer.key()),
                )
                .await?;
            match row {
                None => Ok(None),
                Some(r) if r.get::<Option<i64>>("available")?.is_none() => Ok(Some(WalletRow::default())),
                Some(r) => wallet_row(&r).map(Some),
            }
        }

        const LOT_COLUMNS: &str = "l.lot_no, l.points, l.earned_at, l.available_from, l.expires_at, l.source, \
             l.order_id, l.order_number, b.remaining, b.matured";

        fn lot_from_row(r: &Row) -> Result<LotState> {
            let id = LotId(r.get::<i64>("lot_no")? as u32);
            Ok(LotState {
                lot: Lot {
                    id,
                    points: Points::new(r.get("points")?),
                    earned_at: from_micros(r.get("earned_at")?)?,
                    available_from: from_micros(r.get("available_from")?)?,
                    expires_at: r.get::<Option<i64>>("expires_at")?.map(from_micros).transpose()?,
                    source: source_from_columns(
                        &r.get::<String>("source")?,
                        r.get("order_id")?,
                        r.get("order_number")?,
                    )?,
                },
                remaining: Points::new(r.get("remaining")?),
                matured: r.get::<i64>("matured")? != 0,
            })
        }

        /// Loads what `load` asks for into a state built on the wallet row.
        async fn load_state(
            c: &mut $Conn,
            customer: CustomerId,
            row: &WalletRow,
            now: DateTime<Utc>,
            load: &Load,
        ) -> Result<WalletState> {
            let key = customer.key();
            let mut state = WalletState {
                balances: row.balances,
                lots_created: row.lots_created,
                holds_created: row.holds_created,
                ..WalletState::default()
            };
            // A wallet that never moved a point has no lots or holds, but may have recorded requests.
            if row.postings == 0 && row.lots_created == 0 && row.holds_created == 0 {
                load_request(c, customer, &mut state, load).await?;
                return Ok(state);
            }
            let from = "FROM loyalty_lot_balances b JOIN loyalty_lots l ON l.customer_id = b.customer_id \
                        AND l.lot_no = b.lot_no WHERE b.customer_id = $1";
            // A wallet that never had a lot (or a hold) has none to read.
            let lots = if row.lots_created == 0 {
                Vec::new()
            } else if load.everything {
                c.fetch_all(Query::new(format!("SELECT {LOT_COLUMNS} {from} ORDER BY b.lot_no")).bind(key)).await?
            } else if load.due_only {
                c.fetch_all(
                    Query::new(format!("SELECT {LOT_COLUMNS} {from} AND b.remaining > 0 AND b.due_at <= $2"))
                        .bind(key)
                        .bind(micros(now)),
                )
                .await?
            } else {
                c.fetch_all(Query::new(format!("SELECT {LOT_COLUMNS} {from} AND b.remaining > 0")).bind(key)).await?
            };
            for r in &lots {
                let lot = lot_from_row(r)?;
                state.lots.insert(lot.lot.id, lot);
            }

            // Holds: open ones (or only those due), the one the request names, or all.
            let hold_columns = "SELECT h.hold_no, h.points, h.placed_at, h.expires_at, r.status, r.captured, \
                 r.resolved_at, o.hold_no AS open_hold FROM loyalty_holds h \
                 LEFT JOIN loyalty_hold_resolutions r ON r.customer_id = h.customer_id AND r.hold_no = h.hold_no \
                 LEFT JOIN loyalty_open_holds o ON o.customer_id = h.customer_id AND o.hold_no = h.hold_no \
                 WHERE h.customer_id = $1";
            let named = load.hold.map_or(0, |h| i64::from(h.0));
            let holds = if row.holds_created == 0 {
                Vec::new()
            } else if load.everything {
                c.fetch_all(Query::new(format!("{hold_columns} ORDER BY h.hold_no")).bind(key)).await?
            } else if load.due_only {
                c.fetch_all(
                    Query::new(format!(
                        "{hold_columns} AND (h.hold_no = $2 OR h.hold_no IN (SELECT hold_no FROM loyalty_open_holds \
                         WHERE customer_id = $1 AND expires_at <= $3))"
                    ))
                    .bind(key)
                    .bind(named)
                    .bind(micros(now)),
                )
                .await?
            } else {
                c.fetch_all(
                    Query::new(format!(
                        "{hold_columns} AND (h.hold_no = $2 OR h.hold_no IN (SELECT hold_no FROM loyalty_open_holds \
                         WHERE customer_id = $1))"
                    ))
                    .bind(key)
                    .bind(named),
                )
                .await?
            };
            let mut hold_nos = Vec::new();
            for r in &holds {
                let id = HoldId(r.get::<i64>("hold_no")? as u32);
                let points = Points::new(r.get("points")?);
                let status = match r.get::<Option<String>>("status")?.as_deref() {
                    None => HoldStatus::Open,
                    Some("captured") => HoldStatus::Captured { points: Points::new(r.get("captured")?) },
                    Some("voided") => HoldStatus::Voided,
                    Some("expired") => HoldStatus::Expired,
                    Some(other) => return Err(corrupt(format!("hold status {other:?}"))),
                };
                let open = r.get::<Option<i64>>("open_hold")?.is_some();
                hold_nos.push(i64::from(id.0));
                state.holds.insert(
                    id,
                    HoldState {
                        hold: Hold {
                            id,
                            points,
                            placed_at: from_micros(r.get("placed_at")?)?,
                            expires_at: from_micros(r.get("expires_at")?)?,
                            draws: Vec::new(),
                        },
                        remaining: if open { points } else { Points::ZERO },
                        status,
                    },
                );
            }
            if !hold_nos.is_empty() {
                for chunk in hold_nos.chunks(ROWS_PER_INSERT) {
                    let mut q = Query::new(
                        "SELECT hold_no, lot_no, points FROM loyalty_hold_draws WHERE customer_id = $1 AND hold_no IN ",
                    )
                    .bind(key);
                    q.push_list(chunk.iter().copied());
                    q.push(" ORDER BY hold_no, draw_no");
                    for r in c.fetch_all(q).await? {
                        let hold = HoldId(r.get::<i64>("hold_no")? as u32);
                        let draw = loyalty::Draw {
                            lot: LotId(r.get::<i64>("lot_no")? as u32),
                            points: Points::new(r.get("points")?),
                        };
                        if let Some(h) = state.holds.get_mut(&hold) {
                            h.hold.draws.push(draw);
                        }
                    }
                }
                // Lots drawn by a loaded hold that is still open, if they were not loaded above.
                let missing: BTreeSet<i64> = state
                    .holds
                    .values()
                    .filter(|h| h.status == HoldStatus::Open)
                    .flat_map(|h| h.hold.draws.iter().map(|d| d.lot))
                    .filter(|l| !state.lots.contains_key(l))
                    .map(|l| i64::from(l.0))
                    .collect();
                if !missing.is_empty() {
                    let mut q = Query::new(format!("SELECT {LOT_COLUMNS} {from} AND b.lot_no IN ")).bind(key);
                    q.push_list(missing.into_iter());
                    for r in c.fetch_all(q).await? {
                        let lot = lot_from_row(&r)?;
                        state.lots.insert(lot.lot.id, lot);
                    }
                }
            }

            let orders = if load.everything {
                c.fetch_all(
                    Query::new("SELECT order_id, earned, clawed_back FROM loyalty_order_points WHERE customer_id = $1")
                        .bind(key),
                )
                .await?
            } else if let Some(order) = load.order {
                c.fetch_all(
                    Query::new(
                        "SELECT order_id, earned, clawed_back FROM loyalty_order_points \
                         WHERE customer_id = $1 AND order_id = $2",
                    )
                    .bind(key)
                    .bind(order.key()),
                )
                .await?
            } else {
                Vec::new()
            };
            for r in orders {
                state.orders.insert(
                    OrderId::from_key(r.get("order_id")?),
                    OrderPoints { earned: Points::new(r.get("earned")?), clawed_back: Points::new(r.get("clawed_back")?) },
                );
            }

            load_request(c, customer, &mut state, load).await?;
            Ok(state)
        }

        /// The recorded request with the incoming id, if any.
        async fn load_request(c: &mut $Conn, customer: CustomerId, state: &mut WalletState, load: &Load) -> Result<()> {
            let key = customer.key();
            if let Some(id) = &load.request {
                let row = c
                    .fetch_optional(
                        Query::new(
                            "SELECT fingerprint, points, lot_no, hold_no, shortfall FROM loyalty_requests \
                             WHERE customer_id = $1 AND request_id = $2",
                        )
                        .bind(key)
                        .bind(id.as_str()),
                    )
                    .await?;
                if let Some(r) = row {
                    let receipt = Receipt {
                        points: Points::new(r.get("points")?),
                        lot: r.get::<Option<i64>>("lot_no")?.map(|l| LotId(l as u32)),
                        hold: r.get::<Option<i64>>("hold_no")?.map(|h| HoldId(h as u32)),
                        shortfall: Points::new(r.get("shortfall")?),
                    };
                    state.requests.insert(
                        id.clone(),
                        RecordedRequest { id: id.clone(), fingerprint: r.get("fingerprint")?, receipt },
                    );
                }
            }
            Ok(())
        }

        /// Appends the rows of `outcomes` (already applied to `after`) and moves the cached figures.
        async fn write_outcomes(
            c: &mut $Conn,
            customer: CustomerId,
            before: &WalletRow,
            outcomes: &[&Outcome],
            after: &WalletState,
            now: DateTime<Utc>,
        ) -> Result<()> {
            let key = customer.key();
            let postings: Vec<&Posting> = outcomes.iter().flat_map(|o| o.postings.iter()).collect();
            if postings.is_empty() && outcomes.iter().all(|o| o.recorded.is_none() && o.resolutions.is_empty()) {
                return Ok(());
            }
            // New lots, with what is left of them after these postings.
            let new_lots: Vec<&Lot> = outcomes.iter().flat_map(|o| o.new_lots.iter()).collect();
            let new_lot_ids: BTreeSet<LotId> = new_lots.iter().map(|l| l.id).collect();
            for chunk in new_lots.chunks(ROWS_PER_INSERT / 10) {
                let mut q = Query::new(
                    "INSERT INTO loyalty_lots (customer_id, lot_no, points, earned_at, available_from, expires_at, \
                     source, order_id, order_number)",
                );
                q.push_values(chunk, |t, l| {
                    let (source, order, number) = source_columns(&l.source);
                    t.bind(key)
                        .bind(i64::from(l.id.0))
                        .bind(l.points.get())
                        .bind(micros(l.earned_at))
                        .bind(micros(l.available_from))
                        .bind(l.expires_at.map(micros))
                        .bind(source)
                        .bind(order)
                        .bind(number);
                });
                c.execute(q).await?;
                let mut q = Query::new(
                    "INSERT INTO loyalty_lot_balances (customer_id, lot_no, points, remaining, matured, due_at)",
                );
                let mut bad = None;
                q.push_values(chunk, |t, l| {
                    let state = after.lots.get(&l.id);
                    if state.is_none() {
                        bad = Some(l.id);
                    }
                    let (remaining, matured, due) = state.map_or((0, 0, None), |s| {
                        (s.remaining.get(), i64::from(s.matured), lot_due_at(s))
                    });
                    t.bind(key).bind(i64::from(l.id.0)).bind(l.points.get()).bind(remaining).bind(matured).bind(due);
                });
                if let Some(id) = bad {
                    return Err(corrupt(format!("{id} of customer {customer} is missing after its outcome")));
                }
                c.execute(q).await?;
            }
            // Existing lots: what the postings moved, with the database checking the range.
            let mut lot_moves: BTreeMap<LotId, i64> = BTreeMap::new();
            for p in &postings {
                if let Some(lot) = p.lot.filter(|l| !new_lot_ids.contains(l)) {
                    let mut delta = 0;
                    if p.credit.holds_lots() {
                        delta += p.points.get();
                    }
                    if p.debit.holds_lots() {
                        delta -= p.points.get();
                    }
                    if delta != 0 || p.credit == loyalty::Account::Available {
                        *lot_moves.entry(lot).or_default() += delta;
                    }
                }
            }
            for (lot, delta) in lot_moves {
                let state = after
                    .lots
                    .get(&lot)
                    .ok_or_else(|| corrupt(format!("{lot} of customer {customer} was moved but not loaded")))?;
                let changed = c
                    .execute(
                        Query::new(
                            "UPDATE loyalty_lot_balances SET remaining = remaining + $1, matured = $2, due_at = $3 \
                             WHERE customer_id = $4 AND lot_no = $5",
                        )
                        .bind(delta)
                        .bind(i64::from(state.matured))
                        .bind(lot_due_at(state))
                        .bind(key)
                        .bind(i64::from(lot.0)),
                    )
                    .await?;
                if changed != 1 {
                    return Err(corrupt(format!("{lot} of customer {customer} has no balance row")));
                }
            }
            // New holds, their draws, and the open-hold cache.
            for hold in outcomes.iter().flat_map(|o| o.new_holds.iter()) {
                c.execute(
                    Query::new(
                        "INSERT INTO loyalty_holds (customer_id, hold_no, points, placed_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(key)
                    .bind(i64::from(hold.id.0))
                    .bind(hold.points.get())
                    .bind(micros(hold.placed_at))
                    .bind(micros(hold.expires_at)),
                )
                .await?;
                if !hold.draws.is_empty() {
                    let mut q =
                        Query::new("INSERT INTO loyalty_hold_draws (customer_id, hold_no, draw_no, lot_no, points)");
                    q.push_values(hold.draws.iter().enumerate(), |t, (i, d)| {
                        t.bind(key).bind(i64::from(hold.id.0)).bind(i as i64).bind(i64::from(d.lot.0)).bind(d.points.get());
                    });
                    c.execute(q).await?;
                }
                c.execute(
                    Query::new("INSERT INTO loyalty_open_holds (customer_id, hold_no, expires_at) VALUES ($1, $2, $3)")
                        .bind(key)
                        .bind(i64::from(hold.id.0))
                        .bind(micros(hold.expires_at)),
                )
                .await?;
            }
            // Postings, numbered on from the wallet's last.
            let mut seq = before.postings;
            for chunk in postings.chunks(ROWS_PER_INSERT / 10) {
                let mut q = Query::new(
                    "INSERT INTO loyalty_postings (customer_id, seq, debit, credit, points, lot_no, hold_no, reason, \
                     detail, at, request_id)",
                );
                q.push_values(chunk, |t, p| {
                    seq += 1;
                    t.bind(key)
                        .bind(seq)
                        .bind(p.debit.as_str())
                        .bind(p.credit.as_str())
                        .bind(p.points.get())
                        .bind(lot_no(p.lot))
                        .bind(hold_no(p.hold))
                        .bind(p.reason.kind())
                        .bind(reason_detail(&p.reason))
                        .bind(micros(p.at))
                        .bind(p.request.as_ref().map(|r| r.as_str().to_owned()));
                });
                c.execute(q).await?;
            }
            // Resolutions: the primary key lets a hold resolve once.
            for r in outcomes.iter().flat_map(|o| o.resolutions.iter()) {
                let (status, captured) = match r.status {
                    HoldStatus::Captured { points } => ("captured", points.get()),
                    HoldStatus::Voided => ("voided", 0),
                    HoldStatus::Expired => ("expired", 0),
                    HoldStatus::Open => return Err(corrupt("a resolution that leaves the hold open")),
                };
                c.execute(
                    Query::new(
                        "INSERT INTO loyalty_hold_resolutions (customer_id, hold_no, status, captured, resolved_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(key)
                    .bind(i64::from(r.hold.0))
                    .bind(status)
                    .bind(captured)
                    .bind(micros(r.at)),
                )
                .await?;
                c.execute(
                    Query::new("DELETE FROM loyalty_open_holds WHERE customer_id = $1 AND hold_no = $2")
                        .bind(key)
                        .bind(i64::from(r.hold.0)),
                )
                .await?;
            }
            for recorded in outcomes.iter().filter_map(|o| o.recorded.as_ref()) {
                c.execute(
                    Query::new(
                        "INSERT INTO loyalty_requests (customer_id, request_id, fingerprint, points, lot_no, hold_no, \
                         shortfall, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(key)
                    .bind(recorded.id.as_str())
                    .bind(recorded.fingerprint.as_str())
                    .bind(recorded.receipt.points.get())
                    .bind(lot_no(recorded.receipt.lot))
                    .bind(hold_no(recorded.receipt.hold))
                    .bind(recorded.receipt.shortfall.get())
                    .bind(micros(now)),
                )
                .await?;
            }
            // Per-order figures.
            let mut orders: BTreeMap<OrderId, (i64, i64)> = BTreeMap::new();
            for p in &postings {
                match &p.reason {
                    loyalty::Reason::Earned(loyalty::EarnReason { order: Some(order), .. }) => {
                        orders.entry(order.id).or_default().0 += p.points.get();
                    }
                    loyalty::Reason::ClawedBack { order, .. }
                    | loyalty::Reason::DebtRecorded { order, .. }
                    | loyalty::Reason::WrittenOff { order, .. } => {
                        orders.entry(order.id).or_default().1 += p.points.get();
                    }
                    _ => {}
                }
            }
            // Clawbacks of orders that earned before: an update, whose CHECK keeps them within what was
            // earned (an insert's values are checked before its conflict is).
            let (earning, clawing): (Vec<_>, Vec<_>) = orders.into_iter().partition(|(_, (earned, _))| *earned > 0);
            for (order, (_, clawed)) in clawing {
                let changed = c
                    .execute(
                        Query::new(
                            "UPDATE loyalty_order_points SET clawed_back = clawed_back + $1 \
                             WHERE customer_id = $2 AND order_id = $3",
                        )
                        .bind(clawed)
                        .bind(key)
                        .bind(order.key()),
                    )
                    .await?;
                if changed != 1 {
                    return Err(corrupt(format!("{order} of customer {customer} took back points it never earned")));
                }
            }
            if !earning.is_empty() {
                let mut q = Query::new("INSERT INTO loyalty_order_points (customer_id, order_id, earned, clawed_back)");
                q.push_values(earning.iter(), |t, (order, (earned, clawed))| {
                    t.bind(key).bind(order.key()).bind(*earned).bind(*clawed);
                });
                q.push(
                    " ON CONFLICT (customer_id, order_id) DO UPDATE SET \
                     earned = loyalty_order_points.earned + excluded.earned, \
                     clawed_back = loyalty_order_points.clawed_back + excluded.clawed_back",
                );
                c.execute(q).await?;
            }
            // The wallet row: balances moved by deltas, under its CHECK constraints.
            let mut delta = Balances::default();
            for p in &postings {
                for (account, sign) in [(p.credit, 1), (p.debit, -1)] {
                    let points = Points::new(sign * p.points.get());
                    match account {
                        loyalty::Account::Available => delta.available += points,
                        loyalty::Account::Pending => delta.pending += points,
                        loyalty::Account::Held => delta.held += points,
                        loyalty::Account::Debt => delta.debt += points,
                        _ => {}
                    }
                }
            }
            let changed = c
                .execute(
                    Query::new(
                        "UPDATE loyalty_wallets SET available = available + $1, pending = pending + $2, \
                         held = held + $3, debt = debt + $4, lots_created = $5, holds_created = $6, postings = $7 \
                         WHERE customer_id = $8 AND postings = $9",
                    )
                    .bind(delta.available.get())
                    .bind(delta.pending.get())
                    .bind(delta.held.get())
                    .bind(delta.debt.get())
                    .bind(i64::from(after.lots_created))
                    .bind(i64::from(after.holds_created))
                    .bind(seq)
                    .bind(key)
                    .bind(before.postings),
                )
                .await?;
            if changed != 1 {
                return Err(corrupt(format!("the wallet of customer {customer} changed during a write")));
            }
            Ok(())
        }

        async fn public_hold_id(c: &mut $Conn, customer: CustomerId, hold: HoldId) -> Result<LoyaltyHoldId> {
            let id: Option<i64> = c
                .fetch_scalar(
                    Query::new("SELECT id FROM loyalty_holds WHERE customer_id = $1 AND hold_no = $2")
                        .bind(customer.key())
                        .bind(i64::from(hold.0)),
                )
                .await?;
            id.map(LoyaltyHoldId::from_key).ok_or_else(|| corrupt(format!("{hold} of customer {customer} is missing")))
        }

        /// Runs one ledger request on a customer's wallet: settles what time did, executes the request,
        /// appends the rows. A refusal still keeps the settlement, and writes nothing else.
        pub(crate) async fn execute(
            c: &mut $Conn,
            customer: CustomerId,
            request: &Request,
            now: DateTime<Utc>,
        ) -> Result<std::result::Result<LedgerReceipt, Refusal>> {
            let Some(row) = lock_wallet(c, customer).await? else {
                return Err(StoreError::not_found("customer_id", format!("customer {customer}")));
            };
            let mut load = Load { request: Some(request.id.clone()), ..Load::default() };
            match &request.command {
                Command::Earn(_) if row.balances.debt == Points::ZERO => load.due_only = true,
                Command::Capture { hold, .. } | Command::Void { hold } => load.hold = Some(*hold),
                Command::Clawback(c) => load.order = Some(c.order.id),
                _ => {}
            }
            let mut state = load_state(c, customer, &row, now, &load).await?;
            let settled = loyalty::settle(&state, now);
            state.apply(&settled);
            let result = loyalty::execute(&state, request, now);
            let outcome = match &result {
                Ok(o) if !o.replayed => Some(o),
                _ => None,
            };
            if let Some(o) = outcome {
                state.apply(o);
            }
            let outcomes: Vec<&Outcome> = [Some(&settled), outcome].into_iter().flatten().collect();
            write_outcomes(c, customer, &row, &outcomes, &state, now).await?;
            match result {
                Err(refusal) => Ok(Err(refusal)),
                Ok(o) => {
                    let hold = match o.receipt.hold {
                        Some(h) => Some(public_hold_id(c, customer, h).await?),
                        None => None,
                    };
                    Ok(Ok(LedgerReceipt { receipt: o.receipt, replayed: o.replayed, balances: state.balances, hold }))
                }
            }
        }

        /// Settles a wallet at `now` and writes what time did (the expiry job's step).
        pub(crate) async fn settle(c: &mut $Conn, customer: CustomerId, now: DateTime<Utc>) -> Result<usize> {
            let Some(row) = lock_wallet(c, customer).await? else { return Ok(0) };
            let mut state = load_state(c, customer, &row, now, &Load::default()).await?;
            let settled = loyalty::settle(&state, now);
            state.apply(&settled);
            write_outcomes(c, customer, &row, &[&settled], &state, now).await?;
            Ok(settled.postings.len())
        }

        /// Wallets where time has something to do at `now`: a lot to mature or expire, a hold to release.
        pub(crate) async fn due_wallets(c: &mut $Conn, now: DateTime<Utc>, limit: u32) -> Result<Vec<CustomerId>> {
            let keys: Vec<i64> = c
                .fetch_scalars(
                    Query::new(
                        "SELECT customer_id FROM loyalty_lot_balances WHERE remaining > 0 AND due_at <= $1 \
                         UNION SELECT customer_id FROM loyalty_open_holds WHERE expires_at <= $1 \
                         ORDER BY customer_id LIMIT $2",
                    )
                    .bind(micros(now))
                    .bind(i64::from(limit)),
                )
                .await?;
            Ok(keys.into_iter().map(CustomerId::from_key).collect())
        }

        /// Runs the reads of `$body` in one snapshot, so that a wallet row, its lots and its postings agree
        /// while writes go on.
        macro_rules! in_snapshot {
            ($c:ident, $body:expr) => {{
                $c.execute_script(<$Conn as Db>::BEGIN_SNAPSHOT).await?;
                let result = $body.await;
                let end = $c.execute_script(if result.is_ok() { "COMMIT" } else { "ROLLBACK" }).await;
                let value = result?;
                end?;
                Ok(value)
            }};
        }

        /// The wallet settled at `now`, without writing.
        pub(crate) async fn wallet(c: &mut $Conn, customer: CustomerId, now: DateTime<Utc>) -> Result<Option<WalletView>> {
            in_snapshot!(c, wallet_view(c, customer, now))
        }

        async fn wallet_view(c: &mut $Conn, customer: CustomerId, now: DateTime<Utc>) -> Result<Option<WalletView>> {
            let Some(row) = read_wallet(c, customer).await? else { return Ok(None) };
            let mut state = load_state(c, customer, &row, now, &Load::default()).await?;
            let settled = loyalty::settle(&state, now);
            state.apply(&settled);
            let order = loyalty::spending_order(&state);
            let mut lots: Vec<LotState> = order.iter().map(|id| state.lots[id].clone()).collect();
            let mut pending: Vec<LotState> =
                state.lots.values().filter(|l| !l.matured && l.remaining.is_positive()).cloned().collect();
            pending.sort_by_key(|l| (l.lot.available_from, l.lot.id));
            lots.extend(pending);
            Ok(Some(WalletView { customer, balances: state.balances, tier: row.tier, lots }))
        }

        /// Every lot, hold and posting of a wallet, from one snapshot; `None` when there is no such customer.
        pub(crate) async fn history(c: &mut $Conn, customer: CustomerId) -> Result<Option<WalletHistory>> {
            in_snapshot!(c, history_rows(c, customer))
        }

        async fn history_rows(c: &mut $Conn, customer: CustomerId) -> Result<Option<WalletHistory>> {
            let Some(row) = read_wallet(c, customer).await? else { return Ok(None) };
            let load = Load { everything: true, ..Load::default() };
            let state = load_state(c, customer, &row, Utc::now(), &load).await?;
            let rows = c
                .fetch_all(
                    Query::new(
                        "SELECT debit, credit, points, lot_no, hold_no, reason, detail, at, request_id \
                         FROM loyalty_postings WHERE customer_id = $1 ORDER BY seq",
                    )
                    .bind(customer.key()),
                )
                .await?;
            let mut postings = Vec::with_capacity(rows.len());
            for r in rows {
                postings.push(Posting {
                    debit: account(&r.get::<String>("debit")?)?,
                    credit: account(&r.get::<String>("credit")?)?,
                    points: Points::new(r.get("points")?),
                    lot: r.get::<Option<i64>>("lot_no")?.map(|l| LotId(l as u32)),
                    hold: r.get::<Option<i64>>("hold_no")?.map(|h| HoldId(h as u32)),
                    reason: reason_from(&r.get::<String>("reason")?, r.get::<Option<String>>("detail")?.as_deref())?,
                    at: from_micros(r.get("at")?)?,
                    request: r
                        .get::<Option<String>>("request_id")?
                        .map(|id| RequestId::parse("request_id", &id).map_err(|e| corrupt(e.to_string())))
                        .transpose()?,
                });
            }
            Ok(Some(WalletHistory { state, postings }))
        }

        /// The customers with a wallet, in id order, after `after`.
        pub(crate) async fn wallets(c: &mut $Conn, after: i64, limit: u32) -> Result<Vec<CustomerId>> {
            let keys: Vec<i64> = c
                .fetch_scalars(
                    Query::new("SELECT customer_id FROM loyalty_wallets WHERE customer_id > $1 ORDER BY customer_id LIMIT $2")
                        .bind(after)
                        .bind(i64::from(limit)),
                )
                .await?;
            Ok(keys.into_iter().map(CustomerId::from_key).collect())
        }

        /// Which wallet a hold belongs to.
        pub(crate) async fn hold_owner(c: &mut $Conn, hold: LoyaltyHoldId) -> Result<Option<(CustomerId, HoldId)>> {
            let row = c
                .fetch_optional(Query::new("SELECT customer_id, hold_no FROM loyalty_holds WHERE id = $1").bind(hold.key()))
                .await?;
            row.map(|r| Ok((CustomerId::from_key(r.at(0)?), HoldId(r.at::<i64>(1)? as u32)))).transpose()
        }

        // ----- the program -----

        pub(crate) async fn set_program(
            c: &mut $Conn,
            definition: &str,
            program: Arc<Program>,
            now: DateTime<Utc>,
        ) -> Result<ProgramVersion> {
            let version: i64 = c
                .fetch_one(Query::new("SELECT COALESCE(MAX(version), 0) + 1 FROM loyalty_programs"))
                .await?
                .at(0)?;
            c.execute(
                Query::new("INSERT INTO loyalty_programs (version, definition, defined_at) VALUES ($1, $2, $3)")
                    .bind(version)
                    .bind(definition)
                    .bind(micros(now)),
            )
            .await?;
            Ok(ProgramVersion { version, definition: definition.to_owned(), defined_at: now, program })
        }

        pub(crate) async fn program(c: &mut $Conn) -> Result<Option<ProgramVersion>> {
            let row = c
                .fetch_optional(Query::new(
                    "SELECT version, definition, defined_at FROM loyalty_programs ORDER BY version DESC LIMIT 1",
                ))
                .await?;
            let Some(r) = row else { return Ok(None) };
            let definition: String = r.get("definition")?;
            let program = Program::from_toml(&definition).map_err(|e| corrupt(format!("stored program: {e}")))?;
            Ok(Some(ProgramVersion {
                version: r.get("version")?,
                definition,
                defined_at: from_micros(r.get("defined_at")?)?,
                program: Arc::new(program),
            }))
        }

        /// The current program, parsed once per version.
        pub(crate) async fn current_program(c: &mut $Conn, cache: &ProgramCache) -> Result<Option<Arc<Program>>> {
            let cached = cache.get();
            let row = c
                .fetch_optional(
                    Query::new(
                        "SELECT version, CASE WHEN version = $1 THEN NULL ELSE definition END AS definition \
                         FROM loyalty_programs ORDER BY version DESC LIMIT 1",
                    )
                    .bind(cached.as_ref().map_or(0, |(v, _)| *v)),
                )
                .await?;
            let Some(r) = row else { return Ok(None) };
            match (r.get::<Option<String>>("definition")?, cached) {
                (None, Some((_, program))) => Ok(Some(program)),
                (Some(definition), _) => {
                    let program = Arc::new(
                        Program::from_toml(&definition).map_err(|e| corrupt(format!("stored program: {e}")))?,
                    );
                    cache.put(r.get("version")?, program.clone());
                    Ok(Some(program))
                }
                (None, None) => Err(corrupt("the program has no definition")),
            }
        }

        /// What the rules need to know about a customer for an order: tier, purchases before it, and the
        /// categories of its SKUs.
        pub(crate) async fn order_context(
            c: &mut $Conn,
            program: &Program,
            customer: Option<CustomerId>,
            before_order: Option<OrderId>,
            skus: &[&regulars_core::Sku],
        ) -> Result<(Option<String>, u32, BTreeMap<regulars_core::Sku, String>)> {
            let tier: Option<String> = if let (Some(customer), Some(_)) = (customer, &program.tiers) {
                c.fetch_scalar::<Option<String>>(
                    Query::new("SELECT tier FROM loyalty_wallets WHERE customer_id = $1").bind(customer.key()),
                )
                .await?
                .flatten()
            } else {
                None
            };
            let rules = &program.earning;
            // The welcome bonus only asks whether there was an order before; Nth-purchase bonuses need the
            // count. (A literal LIMIT: a bound one makes SQLite prepare the statement again on every run.)
            let counts = rules.welcome_bonus.is_positive() || !rules.nth_purchase.is_empty() || rules.referral.is_some();
            let sql = if rules.nth_purchase.is_empty() {
                "SELECT COUNT(*) FROM (SELECT 1 FROM orders WHERE customer_id = $1 AND id < $2 LIMIT 1) AS o"
            } else {
                "SELECT COUNT(*) FROM orders WHERE customer_id = $1 AND id < $2"
            };
            let orders_before: i64 = if let (Some(customer), true) = (customer, counts) {
                c.fetch_one(
                    Query::new(sql).bind(customer.key()).bind(before_order.map_or(i64::MAX, OrderId::key)),
                )
                .await?
                .at(0)?
            } else {
                0
            };
            let mut categories = BTreeMap::new();
            if !rules.categories.is_empty() && !skus.is_empty() {
                let mut q = Query::new("SELECT sku, category FROM products WHERE category IS NOT NULL AND sku IN ");
                q.push_list(skus.iter().map(|s| s.as_str().to_owned()));
                for r in c.fetch_all(q).await? {
                    let sku = crate::ops::stored(regulars_core::Sku::parse("sku", &r.get::<String>("sku")?))?;
                    categories.insert(sku, r.get("category")?);
                }
            }
            Ok((tier, orders_before as u32, categories))
        }

        /// Applies the program to a newly recorded order, in its transaction: its points, once
        /// (`RequestId::for_order`). Returns what it earned.
        pub(crate) async fn earn_for_order(
            c: &mut $Conn,
            program: &Program,
            order: &Order,
            now: DateTime<Utc>,
        ) -> Result<Option<LedgerReceipt>> {
            if program.tiers.is_some() {
                // Lock the wallet before reading its tier (PostgreSQL): a concurrent order's upgrade is then
                // committed and seen, so this order earns at the tier its predecessor left.
                lock_wallet(c, order.customer_id).await?;
            }
            let skus: Vec<&regulars_core::Sku> = order.lines.iter().map(|l| &l.sku).collect();
            let (tier, orders_before, categories) =
                order_context(c, &program, Some(order.customer_id), Some(order.id), &skus).await?;
            // A referral pays on the friend's first purchase only.
            let referred_by = if orders_before == 0 && program.earning.referral.is_some() {
                super::tiers::referrer_of(c, order.customer_id).await?
            } else {
                None
            };
            let context = loyalty::earning::CustomerContext {
                customer: order.customer_id,
                tier: tier.as_deref(),
                orders_before,
                referred_by,
            };
            let earning = loyalty::earning::earn_for_order(&program, order, &categories, context);
            let done = if earning.total.is_positive() {
                let reference = OrderRef::new(order.id, order.external_id.as_ref());
                let request =
                    Request { id: RequestId::for_order(order.id), command: earning.command(&program, &reference, now) };
                match execute(c, order.customer_id, &request, now).await? {
                    Ok(done) => Some(done),
                    Err(refusal) => return Err(StoreError::Refused(refusal)),
                }
            } else {
                None
            };
            if let Some((referrer, command)) = earning.referrer_command(&program, now) {
                let request = Request { id: RequestId::for_referral(order.customer_id), command };
                execute(c, referrer, &request, now).await?.map_err(StoreError::Refused)?;
                super::tiers::evaluate_with(c, &program, referrer, now).await?;
            }
            // The tier after this order (its own points were earned at the tier before it).
            super::tiers::evaluate_with(c, &program, order.customer_id, now).await?;
            Ok(done)
        }

        // ----- coupons -----

        pub(crate) async fn create_coupons(
            c: &mut $Conn,
            d: &CouponBatchDraft,
            codes: &[regulars_core::loyalty::coupons::CouponCode],
            now: DateTime<Utc>,
        ) -> Result<CouponBatch> {
            let (kind, value, currency) = match d.offer {
                CouponOffer::AmountOff(m) => ("amount_off", m.minor, Some(m.currency.code().to_owned())),
                CouponOffer::PercentOff(p) => ("percent_off", i64::from(p), None),
            };
            let id: i64 = c
                .fetch_one(
                    Query::new(
                        "INSERT INTO loyalty_coupon_batches (name, kind, value, currency, max_uses, \
                         max_uses_per_customer, valid_from, valid_until, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                    )
                    .bind(d.name.as_str())
                    .bind(kind)
                    .bind(value)
                    .bind(currency)
                    .bind(d.max_uses.map(i64::from))
                    .bind(d.max_uses_per_customer.map(i64::from))
                    .bind(d.valid_from.map(micros))
                    .bind(d.valid_until.map(micros))
                    .bind(micros(now)),
                )
                .await?
                .at(0)?;
            for chunk in codes.chunks(ROWS_PER_INSERT / 4) {
                let mut q = Query::new("INSERT INTO loyalty_coupons (code, batch_id, max_uses)");
                q.push_values(chunk, |t, code| {
                    t.bind(code.as_str()).bind(id).bind(d.max_uses.map(i64::from));
                });
                c.execute(q).await?;
            }
            Ok(CouponBatch { id, name: d.name.clone(), codes: codes.to_vec() })
        }

        const COUPON_COLUMNS: &str = "k.code, k.batch_id, k.max_uses, k.uses, b.name, b.kind, b.value, b.currency, \
             b.max_uses_per_customer, b.valid_from, b.valid_until, b.gift, b.gift_sku";

        fn coupon_from_row(r: &Row, customer_uses: u32) -> Result<CouponState> {
            let value: i64 = r.get("value")?;
            let offer = match r.get::<String>("kind")?.as_str() {
                "amount_off" => CouponOffer::AmountOff(regulars_core::Money::new(
                    value,
                    crate::ops::currency_from_column(&r.get::<String>("currency")?)?,
                )),
                "percent_off" => CouponOffer::PercentOff(value as u32),
                other => return Err(corrupt(format!("coupon kind {other:?}"))),
            };
            Ok(CouponState {
                code: crate::ops::stored(regulars_core::loyalty::coupons::CouponCode::parse(
                    "code",
                    &r.get::<String>("code")?,
                ))?,
                batch_id: r.get("batch_id")?,
                name: r.get("name")?,
                offer,
                max_uses: r.get::<Option<i64>>("max_uses")?.map(|m| m as u32),
                uses: r.get::<i64>("uses")? as u32,
                max_uses_per_customer: r.get::<Option<i64>>("max_uses_per_customer")?.map(|m| m as u32),
                customer_uses,
                valid_from: r.get::<Option<i64>>("valid_from")?.map(from_micros).transpose()?,
                valid_until: r.get::<Option<i64>>("valid_until")?.map(from_micros).transpose()?,
                gift: r.get::<Option<String>>("gift")?.map(|g| r.get::<Option<String>>("gift_sku").map(|s| (g, s))).transpose()?,
            })
        }

        pub(crate) async fn coupon(
            c: &mut $Conn,
            code: &regulars_core::loyalty::coupons::CouponCode,
            customer: Option<CustomerId>,
        ) -> Result<Option<CouponState>> {
            let row = c
                .fetch_optional(
                    Query::new(format!(
                        "SELECT {COUPON_COLUMNS} FROM loyalty_coupons k \
                         JOIN loyalty_coupon_batches b ON b.id = k.batch_id WHERE k.code = $1"
                    ))
                    .bind(code.as_str()),
                )
                .await?;
            let Some(row) = row else { return Ok(None) };
            let customer_uses: i64 = match customer {
                Some(customer) => c
                    .fetch_scalar(
                        Query::new("SELECT uses FROM loyalty_coupon_customer_uses WHERE code = $1 AND customer_id = $2")
                            .bind(code.as_str())
                            .bind(customer.key()),
                    )
                    .await?
                    .unwrap_or(0),
                None => 0,
            };
            coupon_from_row(&row, customer_uses as u32).map(Some)
        }

        /// Redeems a coupon for a customer. The limits are enforced by the writing statements: the global
        /// count moves only while `uses < max_uses`, the customer's only while below their limit; a refusal
        /// rolls the transaction back.
        pub(crate) async fn redeem_coupon(
            c: &mut $Conn,
            code: &regulars_core::loyalty::coupons::CouponCode,
            customer: CustomerId,
            now: DateTime<Utc>,
        ) -> Result<CouponRedeemed> {
            let refused = |r: Refusal| Err(StoreError::Refused(r));
            let Some(before) = coupon(c, code, None).await? else { return refused(Refusal::CouponNotFound) };
            if before.valid_from.is_some_and(|from| now < from) {
                return refused(Refusal::CouponNotYetValid);
            }
            if before.valid_until.is_some_and(|until| now >= until) {
                return refused(Refusal::CouponExpired);
            }
            let exists: Option<i64> =
                c.fetch_scalar(Query::new("SELECT id FROM customers WHERE id = $1").bind(customer.key())).await?;
            if exists.is_none() {
                return Err(StoreError::not_found("customer_id", format!("customer {customer}")));
            }
            // Lock the coupon row first (PostgreSQL), so the count of live checkout holds below sees every
            // hold committed before; a hold counts against the limit until confirmed, released or expired.
            c.execute(Query::new("UPDATE loyalty_coupons SET uses = uses WHERE code = $1").bind(code.as_str())).await?;
            let uses: Option<i64> = c
                .fetch_scalar(
                    Query::new(
                        "UPDATE loyalty_coupons SET uses = uses + 1 \
                         WHERE code = $1 AND (max_uses IS NULL OR uses + (SELECT COUNT(*) FROM loyalty_coupon_holds h \
                         WHERE h.code = $1 AND h.expires_at > $2 AND NOT EXISTS \
                         (SELECT 1 FROM loyalty_coupon_hold_resolutions r WHERE r.hold_id = h.id)) < max_uses) \
                         RETURNING uses",
                    )
                    .bind(code.as_str())
                    .bind(micros(now)),
                )
                .await?;
            let Some(uses) = uses else { return refused(Refusal::CouponExhausted) };
            let limit = before.max_uses_per_customer.map_or(i64::MAX, i64::from);
            let customer_uses: Option<i64> = c
                .fetch_scalar(
                    Query::new(
                        "INSERT INTO loyalty_coupon_customer_uses (code, customer_id, uses) VALUES ($1, $2, 1) \
                         ON CONFLICT (code, customer_id) DO UPDATE SET uses = loyalty_coupon_customer_uses.uses + 1 \
                         WHERE loyalty_coupon_customer_uses.uses < $3 RETURNING uses",
                    )
                    .bind(code.as_str())
                    .bind(customer.key())
                    .bind(limit),
                )
                .await?;
            let Some(customer_uses) = customer_uses.filter(|&u| u <= limit) else {
                return refused(Refusal::CouponLimitPerCustomer);
            };
            let redemption_id: i64 = c
                .fetch_one(
                    Query::new(
                        "INSERT INTO loyalty_coupon_redemptions (code, customer_id, redeemed_at) VALUES ($1, $2, $3) \
                         RETURNING id",
                    )
                    .bind(code.as_str())
                    .bind(customer.key())
                    .bind(micros(now)),
                )
                .await?
                .at(0)?;
            let coupon = CouponState { uses: uses as u32, customer_uses: customer_uses as u32, ..before };
            Ok(CouponRedeemed { redemption_id, coupon })
        }

        /// Takes back the points of a new refund, in its transaction (`RequestId::for_refund`).
        pub(crate) async fn clawback_for_refund(
            c: &mut $Conn,
            program: Option<&Program>,
            order: &Order,
            refund: RefundId,
            refunded_total_minor: i64,
            now: DateTime<Utc>,
        ) -> Result<Option<LedgerReceipt>> {
            let earned: Option<i64> = c
                .fetch_scalar(
                    Query::new("SELECT earned FROM loyalty_order_points WHERE customer_id = $1 AND order_id = $2")
                        .bind(order.customer_id.key())
                        .bind(order.id.key()),
                )
                .await?;
            let done = if earned.unwrap_or(0) > 0 {
                let shortfall = program.map_or_else(Default::default, |p| p.shortfall);
                let command = loyalty::Command::Clawback(loyalty::Clawback {
                    order: OrderRef::new(order.id, order.external_id.as_ref()),
                    refund,
                    order_net_minor: order.total_minor,
                    refunded_total_minor,
                    shortfall,
                });
                let request = Request { id: RequestId::for_refund(refund), command };
                match execute(c, order.customer_id, &request, now).await? {
                    Ok(done) => Some(done),
                    Err(refusal) => return Err(StoreError::Refused(refusal)),
                }
            } else {
                None
            };
            // A refund lowers the measure: a grace period may start now rather than at the job's next run.
            if let Some(program) = program.filter(|p| p.tiers.is_some()) {
                super::tiers::evaluate_with(c, program, order.customer_id, now).await?;
            }
            Ok(done)
        }
    };
}
