//! Rewards, punch cards, held coupon redemptions, promotions and VIP sales in the database (issue 4).
//!
//! - A **reward** redemption runs in one transaction: the reward's `issued` count moves only while below its
//!   stock, the customer's count only while below their limit, the ledger spends the points (refusing an
//!   overdraft), and a single-use coupon code is issued; any refusal rolls all of it back.
//! - **Punch cards** are defined in the program (`[[punch_cards]]`, named by `name`). Recording a new order
//!   stamps them in the order's transaction (so once per order); a full card issues a single-use code; a
//!   refund removes the live stamps of what it returned. Stamps, how each ended and completed cards are
//!   appended only.
//! - A **coupon hold** counts against the coupon's limits while it is neither resolved nor expired: the hold
//!   is inserted by a statement that counts redemptions plus live holds, after the coupon row is locked.
//! - **Promotions** and **sales** are stored definitions; pricing is `loyalty::promotions`, in the server.

use chrono::{DateTime, Utc};
use regulars_core::loyalty::Points;
use regulars_core::loyalty::coupons::CouponCode;
use regulars_core::loyalty::promotions::Promotion;
use regulars_core::loyalty::rewards::Reward;
use regulars_core::{Currency, CustomerId};

/// A reward of the catalogue, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReward {
    pub id: i64,
    pub reward: Reward,
    /// The currency of an amount off.
    pub currency: Option<Currency>,
    /// How many were issued (never more than the stock).
    pub issued: u32,
    pub created_at: DateTime<Utc>,
}

/// How a redeemed reward reaches the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewardDelivery {
    /// A single-use coupon code the till redeems later.
    Code,
    /// Nothing to keep: the till applies the offer to the order at the counter now.
    Offer,
}

/// A redeemed reward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardRedeemed {
    pub redemption_id: i64,
    pub reward: StoredReward,
    pub customer: CustomerId,
    pub points: Points,
    pub available_after: Points,
    pub customer_uses: u32,
    pub code: Option<CouponCode>,
}

/// One punch card of a customer, as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PunchCardView {
    pub card: String,
    pub stamps_needed: u32,
    pub live_stamps: u32,
    pub completed: u32,
    pub reward: String,
    /// The codes issued for completed cards, first first.
    pub codes: Vec<CouponCode>,
}

/// A coupon held by a checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponHold {
    pub id: i64,
    pub code: CouponCode,
    pub customer: CustomerId,
    pub placed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// `open`, `confirmed`, `released` or `expired`.
    pub status: &'static str,
    /// The redemption a confirmed hold became.
    pub redemption_id: Option<i64>,
}

/// A promotion as stored: the pricing rule, and who may have it when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPromotion {
    pub id: i64,
    pub promotion: Promotion,
    pub currency: Currency,
    /// Only customers in one of these tiers (everyone when empty).
    pub tiers: Vec<String>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
}

impl StoredPromotion {
    /// Whether the promotion applies at `now` to a customer of `tier`.
    pub fn applies(&self, tier: Option<&str>, now: DateTime<Utc>) -> bool {
        self.valid_from.is_none_or(|from| now >= from)
            && self.valid_until.is_none_or(|until| now < until)
            && (self.tiers.is_empty() || tier.is_some_and(|t| self.tiers.iter().any(|x| x == t)))
    }
}

/// A sale with early access for some tiers and RFM segments (at least one of either).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sale {
    pub id: i64,
    pub name: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub early_access_from: DateTime<Utc>,
    /// The tiers with early access.
    pub tiers: Vec<String>,
    /// The RFM segments (as in the latest analytics snapshot) with early access.
    pub segments: Vec<String>,
}

/// An early-access grant: who qualified, with the tier and the segment (latest snapshot) they had then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleGrant {
    pub id: i64,
    pub tier: Option<String>,
    pub segment: Option<String>,
}

pub(crate) fn tiers_json(tiers: &[String]) -> String {
    serde_json::to_string(tiers).expect("strings serialise")
}

pub(crate) fn tiers_from(raw: &str) -> crate::Result<Vec<String>> {
    serde_json::from_str(raw).map_err(|e| crate::ops::corrupt(format!("tiers {raw:?}: {e}")))
}

macro_rules! define_rewards_ops {
    ($Conn:ty) => {
        use std::collections::BTreeMap;

        use chrono::{DateTime, Utc};
        use regulars_core::loyalty::coupons::CouponCode;
        use regulars_core::loyalty::promotions::{Promotion, PromotionKind, Stacking};
        use regulars_core::loyalty::punch::{CardState, Matches, PunchCard, Stamp, StampState};
        use regulars_core::loyalty::rewards::{Reward, RewardKind};
        use regulars_core::loyalty::{Command, Points, Refusal, Request, RequestId};
        use regulars_core::{CustomerId, Order, OrderId, RefundLine, Sku};

        use crate::db::{Db, Query, Row};
        use crate::ops::{corrupt, from_micros, micros, stored};
        use crate::rewards::*;
        use crate::{Result, StoreError};

        fn refused<T>(r: Refusal) -> Result<T> {
            Err(StoreError::Refused(r))
        }

        fn time(raw: Option<i64>) -> Result<Option<DateTime<Utc>>> {
            raw.map(from_micros).transpose()
        }

        async fn customer_exists(c: &mut $Conn, customer: CustomerId) -> Result<()> {
            let found: Option<i64> =
                c.fetch_scalar(Query::new("SELECT id FROM customers WHERE id = $1").bind(customer.key())).await?;
            match found {
                Some(_) => Ok(()),
                None => Err(StoreError::not_found("customer_id", format!("customer {customer}"))),
            }
        }

        /// Issues one single-use code in a batch of its own: `(kind, value, currency)` is the offer, `gift`
        /// what it gives in words when it is an item.
        async fn issue_code(
            c: &mut $Conn,
            name: &str,
            offer: (&str, i64, Option<String>),
            gift: Option<(&str, Option<&str>)>,
            code: &CouponCode,
            now: DateTime<Utc>,
        ) -> Result<()> {
            let batch: i64 = c
                .fetch_one(
                    Query::new(
                        "INSERT INTO loyalty_coupon_batches (name, kind, value, currency, max_uses, \
                         max_uses_per_customer, valid_from, valid_until, created_at, gift, gift_sku) \
                         VALUES ($1, $2, $3, $4, 1, NULL, NULL, NULL, $5, $6, $7) RETURNING id",
                    )
                    .bind(name)
                    .bind(offer.0)
                    .bind(offer.1)
                    .bind(offer.2)
                    .bind(micros(now))
                    .bind(gift.map(|g| g.0))
                    .bind(gift.and_then(|g| g.1)),
                )
                .await?
                .at(0)?;
            c.execute(
                Query::new("INSERT INTO loyalty_coupons (code, batch_id, max_uses) VALUES ($1, $2, 1)")
                    .bind(code.as_str())
                    .bind(batch),
            )
            .await?;
            Ok(())
        }

        // ----- rewards -----

        const REWARD_COLUMNS: &str = "id, key, name, kind, sku, value, currency, cost, stock, issued, \
             per_customer_limit, valid_from, valid_until, created_at";

        fn reward_from_row(r: &Row) -> Result<StoredReward> {
            let value: i64 = r.get("value")?;
            let currency = r
                .get::<Option<String>>("currency")?
                .map(|c| crate::ops::currency_from_column(&c))
                .transpose()?;
            let kind = match r.get::<String>("kind")?.as_str() {
                "free_item" => RewardKind::FreeItem {
                    sku: stored(Sku::parse("sku", &r.get::<Option<String>>("sku")?.unwrap_or_default()))?,
                },
                "amount_off" => RewardKind::AmountOff { minor: value },
                "percent_off" => RewardKind::PercentOff { percent: value as u32 },
                other => return Err(corrupt(format!("reward kind {other:?}"))),
            };
            Ok(StoredReward {
                id: r.get("id")?,
                reward: Reward {
                    key: r.get("key")?,
                    name: r.get("name")?,
                    kind,
                    cost: Points::new(r.get("cost")?),
                    stock: r.get::<Option<i64>>("stock")?.map(|s| s as u32),
                    per_customer_limit: r.get::<Option<i64>>("per_customer_limit")?.map(|s| s as u32),
                    valid_from: time(r.get("valid_from")?)?,
                    valid_until: time(r.get("valid_until")?)?,
                },
                currency,
                issued: r.get::<i64>("issued")? as u32,
                created_at: from_micros(r.get("created_at")?)?,
            })
        }

        /// The offer of a reward as a coupon batch stores it, and the gift in words for a free item.
        fn reward_offer(s: &StoredReward) -> ((&'static str, i64, Option<String>), Option<(&str, Option<&str>)>) {
            match &s.reward.kind {
                RewardKind::FreeItem { sku } => {
                    (("percent_off", 100, None), Some((s.reward.name.as_str(), Some(sku.as_str()))))
                }
                RewardKind::AmountOff { minor } => {
                    (("amount_off", *minor, s.currency.map(|c| c.code().to_owned())), None)
                }
                RewardKind::PercentOff { percent } => (("percent_off", i64::from(*percent), None), None),
            }
        }

        pub(crate) async fn create_reward(
            c: &mut $Conn,
            reward: &Reward,
            currency: Option<regulars_core::Currency>,
            now: DateTime<Utc>,
        ) -> Result<StoredReward> {
            let (kind, sku, value) = match &reward.kind {
                RewardKind::FreeItem { sku } => ("free_item", Some(sku.as_str().to_owned()), 1),
                RewardKind::AmountOff { minor } => ("amount_off", None, *minor),
                RewardKind::PercentOff { percent } => ("percent_off", None, i64::from(*percent)),
            };
            let row = c
                .fetch_optional(
                    Query::new(format!(
                        "INSERT INTO loyalty_rewards (key, name, kind, sku, value, currency, cost, stock, \
                         per_customer_limit, valid_from, valid_until, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                         ON CONFLICT (key) DO NOTHING RETURNING {REWARD_COLUMNS}"
                    ))
                    .bind(reward.key.as_str())
                    .bind(reward.name.as_str())
                    .bind(kind)
                    .bind(sku)
                    .bind(value)
                    .bind(currency.filter(|_| kind == "amount_off").map(|c| c.code().to_owned()))
                    .bind(reward.cost.get())
                    .bind(reward.stock.map(i64::from))
                    .bind(reward.per_customer_limit.map(i64::from))
                    .bind(reward.valid_from.map(micros))
                    .bind(reward.valid_until.map(micros))
                    .bind(micros(now)),
                )
                .await?;
            match row {
                Some(r) => reward_from_row(&r),
                None => Err(StoreError::AlreadyExists {
                    field: "key".into(),
                    value: reward.key.clone(),
                    existing: "another reward".into(),
                }),
            }
        }

        pub(crate) async fn rewards(c: &mut $Conn) -> Result<Vec<StoredReward>> {
            let rows = c.fetch_all(Query::new(format!("SELECT {REWARD_COLUMNS} FROM loyalty_rewards ORDER BY id"))).await?;
            rows.iter().map(reward_from_row).collect()
        }

        pub(crate) async fn reward(c: &mut $Conn, id: i64) -> Result<Option<StoredReward>> {
            let row = c
                .fetch_optional(Query::new(format!("SELECT {REWARD_COLUMNS} FROM loyalty_rewards WHERE id = $1")).bind(id))
                .await?;
            row.as_ref().map(reward_from_row).transpose()
        }

        /// Redeems a reward for a customer: takes one of the stock, counts the customer's use, spends the
        /// points through the ledger and issues a code (`code` given) or nothing (offer applied at the
        /// counter). Every limit is enforced by the writing statement; a refusal rolls everything back.
        pub(crate) async fn redeem_reward(
            c: &mut $Conn,
            id: i64,
            customer: CustomerId,
            request: RequestId,
            code: Option<&CouponCode>,
            now: DateTime<Utc>,
        ) -> Result<RewardRedeemed> {
            let Some(before) = reward(c, id).await? else {
                return Err(StoreError::not_found("id", format!("reward {id}")));
            };
            let r = &before.reward;
            if r.valid_from.is_some_and(|from| now < from) || r.valid_until.is_some_and(|until| now >= until) {
                return refused(Refusal::RewardNotActive);
            }
            customer_exists(c, customer).await?;
            let issued: Option<i64> = c
                .fetch_scalar(
                    Query::new(
                        "UPDATE loyalty_rewards SET issued = issued + 1 \
                         WHERE id = $1 AND (stock IS NULL OR issued < stock) RETURNING issued",
                    )
                    .bind(id),
                )
                .await?;
            let Some(issued) = issued else { return refused(Refusal::RewardOutOfStock) };
            let limit = r.per_customer_limit.map_or(i64::MAX, i64::from);
            let customer_uses: Option<i64> = c
                .fetch_scalar(
                    Query::new(
                        "INSERT INTO loyalty_reward_customer_uses (reward_id, customer_id, uses) VALUES ($1, $2, 1) \
                         ON CONFLICT (reward_id, customer_id) DO UPDATE \
                         SET uses = loyalty_reward_customer_uses.uses + 1 \
                         WHERE loyalty_reward_customer_uses.uses < $3 RETURNING uses",
                    )
                    .bind(id)
                    .bind(customer.key())
                    .bind(limit),
                )
                .await?;
            let Some(customer_uses) = customer_uses.filter(|&u| u <= limit) else {
                return refused(Refusal::RewardLimitPerCustomer);
            };
            let spend = Request { id: request, command: Command::Redeem { points: r.cost, note: Some(format!("reward: {}", r.name)) } };
            let receipt = match super::ledger::execute(c, customer, &spend, now).await? {
                Ok(receipt) => receipt,
                Err(refusal) => return refused(refusal),
            };
            if receipt.replayed {
                return refused(Refusal::AmountMismatch);
            }
            if let Some(code) = code {
                let (offer, gift) = reward_offer(&before);
                issue_code(c, &format!("reward: {}", r.name), offer, gift, code, now).await?;
            }
            let redemption_id: i64 = c
                .fetch_one(
                    Query::new(
                        "INSERT INTO loyalty_reward_redemptions (reward_id, customer_id, points, code, redeemed_at) \
                         VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    )
                    .bind(id)
                    .bind(customer.key())
                    .bind(r.cost.get())
                    .bind(code.map(|k| k.as_str().to_owned()))
                    .bind(micros(now)),
                )
                .await?
                .at(0)?;
            let points = r.cost;
            Ok(RewardRedeemed {
                redemption_id,
                reward: StoredReward { issued: issued as u32, ..before },
                customer,
                points,
                available_after: receipt.balances.available,
                customer_uses: customer_uses as u32,
                code: code.cloned(),
            })
        }

        // ----- punch cards -----

        /// A customer's stamps on one card and the cards completed.
        async fn card_state(c: &mut $Conn, customer: CustomerId, card: &str) -> Result<CardState> {
            let rows = c
                .fetch_all(
                    Query::new(
                        "SELECT s.stamp_no, s.order_id, s.stamped_at, s.expires_at, \
                         CASE WHEN e.stamp_no IS NULL THEN 0 ELSE 1 END AS ended, e.card_no \
                         FROM loyalty_punch_stamps s LEFT JOIN loyalty_punch_stamp_ends e \
                         ON e.customer_id = s.customer_id AND e.card = s.card AND e.stamp_no = s.stamp_no \
                         WHERE s.customer_id = $1 AND s.card = $2 ORDER BY s.stamp_no",
                    )
                    .bind(customer.key())
                    .bind(card),
                )
                .await?;
            let mut stamps = Vec::with_capacity(rows.len());
            for (i, r) in rows.iter().enumerate() {
                let id = r.get::<i64>("stamp_no")? as u32;
                if id as usize != i + 1 {
                    return Err(corrupt(format!("stamp {id} of card {card:?} is out of sequence")));
                }
                let state = match (r.get::<i64>("ended")?, r.get::<Option<i64>>("card_no")?) {
                    (0, _) => StampState::Live,
                    (_, Some(n)) => StampState::Used { card: n as u32 },
                    (_, None) => StampState::Removed,
                };
                stamps.push(Stamp {
                    id,
                    order: OrderId::from_key(r.get("order_id")?),
                    stamped_at: from_micros(r.get("stamped_at")?)?,
                    expires_at: time(r.get("expires_at")?)?,
                    state,
                });
            }
            let completed: Option<i64> = c
                .fetch_one(
                    Query::new("SELECT MAX(card_no) FROM loyalty_punch_cards WHERE customer_id = $1 AND card = $2")
                        .bind(customer.key())
                        .bind(card),
                )
                .await?
                .at(0)?;
            Ok(CardState { stamps, completed: completed.unwrap_or(0) as u32 })
        }

        /// Locks the customer's wallet row for the rest of the transaction (creating it if needed), as every
        /// ledger request does: on PostgreSQL two orders or refunds of one customer then stamp in turn, each
        /// reading the stamps the other committed; SQLite's one writer does this anyway.
        async fn lock_cards(c: &mut $Conn, customer: CustomerId) -> Result<()> {
            c.execute(
                Query::new(
                    "INSERT INTO loyalty_wallets (customer_id) VALUES ($1) \
                     ON CONFLICT (customer_id) DO UPDATE SET postings = loyalty_wallets.postings",
                )
                .bind(customer.key()),
            )
            .await?;
            Ok(())
        }

        /// The categories of the SKUs of `lines` when a card counts a category.
        async fn card_categories(
            c: &mut $Conn,
            cards: &[PunchCard],
            skus: &[&Sku],
        ) -> Result<BTreeMap<Sku, String>> {
            let mut categories = BTreeMap::new();
            if skus.is_empty() || !cards.iter().any(|k| matches!(k.matches, Matches::Category(_))) {
                return Ok(categories);
            }
            let mut q = Query::new("SELECT sku, category FROM products WHERE category IS NOT NULL AND sku IN ");
            q.push_list(skus.iter().map(|s| s.as_str().to_owned()));
            for r in c.fetch_all(q).await? {
                categories.insert(stored(Sku::parse("sku", &r.get::<String>("sku")?))?, r.get("category")?);
            }
            Ok(categories)
        }

        /// Stamps the program's punch cards for a newly recorded order, in its transaction, and issues a
        /// single-use code for every card it completes. Returns the codes issued.
        pub(crate) async fn punch_for_order(
            c: &mut $Conn,
            program: &regulars_core::loyalty::Program,
            order: &Order,
            now: DateTime<Utc>,
        ) -> Result<Vec<CouponCode>> {
            if program.punch_cards.is_empty() {
                return Ok(Vec::new());
            }
            let skus: Vec<&Sku> = order.lines.iter().map(|l| &l.sku).collect();
            let categories = card_categories(c, &program.punch_cards, &skus).await?;
            if program.punch_cards.iter().all(|card| card.stamps_for_lines(&order.lines, &categories) == 0) {
                return Ok(Vec::new());
            }
            lock_cards(c, order.customer_id).await?;
            let mut codes = Vec::new();
            for card in &program.punch_cards {
                let count = card.stamps_for_lines(&order.lines, &categories);
                if count == 0 {
                    continue;
                }
                let state = card_state(c, order.customer_id, &card.name).await?;
                let outcome = state.punch(card, order.id, count, now);
                let mut q = Query::new(
                    "INSERT INTO loyalty_punch_stamps (customer_id, card, stamp_no, order_id, stamped_at, expires_at) ",
                );
                q.push_values(&outcome.new_stamps, |b, s| {
                    b.bind(order.customer_id.key())
                        .bind(card.name.as_str())
                        .bind(i64::from(s.id))
                        .bind(order.id.key())
                        .bind(micros(s.stamped_at))
                        .bind(s.expires_at.map(micros));
                });
                c.execute(q).await?;
                for done in &outcome.completed {
                    let mut q = Query::new(
                        "INSERT INTO loyalty_punch_stamp_ends (customer_id, card, stamp_no, card_no, ended_at) ",
                    );
                    q.push_values(&done.stamps, |b, id| {
                        b.bind(order.customer_id.key())
                            .bind(card.name.as_str())
                            .bind(i64::from(*id))
                            .bind(i64::from(done.number))
                            .bind(micros(now));
                    });
                    c.execute(q).await?;
                    let code = crate::rewards_store::new_code()?;
                    let gift = Some((card.reward.as_str(), card.reward_sku.as_ref().map(Sku::as_str)));
                    issue_code(c, &format!("punch card: {}", card.name), ("percent_off", 100, None), gift, &code, now)
                        .await?;
                    c.execute(
                        Query::new(
                            "INSERT INTO loyalty_punch_cards (customer_id, card, card_no, order_id, code, completed_at) \
                             VALUES ($1, $2, $3, $4, $5, $6)",
                        )
                        .bind(order.customer_id.key())
                        .bind(card.name.as_str())
                        .bind(i64::from(done.number))
                        .bind(order.id.key())
                        .bind(code.as_str())
                        .bind(micros(now)),
                    )
                    .await?;
                    codes.push(code);
                }
            }
            Ok(codes)
        }

        /// Removes the live stamps a new refund returns, in its transaction. `refunded_before` is per line.
        pub(crate) async fn unstamp_for_refund(
            c: &mut $Conn,
            program: &regulars_core::loyalty::Program,
            order: &Order,
            refunded_before: &[u32],
            refund: &[RefundLine],
            now: DateTime<Utc>,
        ) -> Result<u32> {
            if program.punch_cards.is_empty() {
                return Ok(0);
            }
            let skus: Vec<&Sku> = order.lines.iter().map(|l| &l.sku).collect();
            let categories = card_categories(c, &program.punch_cards, &skus).await?;
            lock_cards(c, order.customer_id).await?;
            let mut removed_total = 0;
            for card in &program.punch_cards {
                let count = card.stamps_for_refund(&order.lines, refunded_before, refund, &categories);
                if count == 0 {
                    continue;
                }
                let state = card_state(c, order.customer_id, &card.name).await?;
                let (removed, _used) = state.unstamp(order.id, count);
                if removed.is_empty() {
                    continue;
                }
                let mut q = Query::new(
                    "INSERT INTO loyalty_punch_stamp_ends (customer_id, card, stamp_no, card_no, ended_at) ",
                );
                q.push_values(&removed, |b, id| {
                    b.bind(order.customer_id.key())
                        .bind(card.name.as_str())
                        .bind(i64::from(*id))
                        .bind(None::<i64>)
                        .bind(micros(now));
                });
                c.execute(q).await?;
                removed_total += removed.len() as u32;
            }
            Ok(removed_total)
        }

        /// A customer's punch cards of the current program at `now`; `None` when there is no such customer.
        pub(crate) async fn punch_cards(
            c: &mut $Conn,
            customer: CustomerId,
            now: DateTime<Utc>,
        ) -> Result<Option<Vec<PunchCardView>>> {
            if customer_exists(c, customer).await.is_err() {
                return Ok(None);
            }
            let Some(program) = super::ledger::program(c).await? else { return Ok(Some(Vec::new())) };
            let mut out = Vec::new();
            for card in &program.program.punch_cards {
                let state = card_state(c, customer, &card.name).await?;
                let codes: Vec<String> = c
                    .fetch_scalars(
                        Query::new(
                            "SELECT code FROM loyalty_punch_cards WHERE customer_id = $1 AND card = $2 ORDER BY card_no",
                        )
                        .bind(customer.key())
                        .bind(card.name.as_str()),
                    )
                    .await?;
                out.push(PunchCardView {
                    card: card.name.clone(),
                    stamps_needed: card.stamps,
                    live_stamps: state.live(now) as u32,
                    completed: state.completed,
                    reward: card.reward.clone(),
                    codes: codes.iter().map(|k| stored(CouponCode::parse("code", k))).collect::<Result<_>>()?,
                });
            }
            Ok(Some(out))
        }

        // ----- coupon holds -----

        /// Live holds of a code (neither resolved nor expired at `$2`), as SQL; `$1` is the code.
        const LIVE_HOLDS: &str = "SELECT COUNT(*) FROM loyalty_coupon_holds h WHERE h.code = $1 AND h.expires_at > $2 \
             AND NOT EXISTS (SELECT 1 FROM loyalty_coupon_hold_resolutions r WHERE r.hold_id = h.id)";

        /// Locks a coupon's row for the rest of the transaction (PostgreSQL; SQLite has one writer), so the
        /// statements after it count the holds and uses committed before.
        async fn lock_coupon(c: &mut $Conn, code: &CouponCode) -> Result<bool> {
            let found: Option<String> = c
                .fetch_scalar(Query::new("UPDATE loyalty_coupons SET uses = uses WHERE code = $1 RETURNING code").bind(code.as_str()))
                .await?;
            Ok(found.is_some())
        }

        /// Holds a coupon for a customer's checkout until `expires_at`. The hold is inserted only while the
        /// coupon's uses plus its live holds stay below its limit, and the customer's likewise.
        pub(crate) async fn hold_coupon(
            c: &mut $Conn,
            code: &CouponCode,
            customer: CustomerId,
            expires_at: DateTime<Utc>,
            now: DateTime<Utc>,
        ) -> Result<CouponHold> {
            let Some(coupon) = super::ledger::coupon(c, code, None).await? else {
                return refused(Refusal::CouponNotFound);
            };
            if coupon.valid_from.is_some_and(|from| now < from) {
                return refused(Refusal::CouponNotYetValid);
            }
            if coupon.valid_until.is_some_and(|until| now >= until) {
                return refused(Refusal::CouponExpired);
            }
            customer_exists(c, customer).await?;
            lock_coupon(c, code).await?;
            let customer_limit = coupon.max_uses_per_customer.map_or(i64::MAX, i64::from);
            let id: Option<i64> = c
                .fetch_scalar(
                    Query::new(format!(
                        "INSERT INTO loyalty_coupon_holds (code, customer_id, placed_at, expires_at) \
                         SELECT $1, $3, $4, $5 FROM loyalty_coupons k WHERE k.code = $1 \
                         AND (k.max_uses IS NULL OR k.uses + ({LIVE_HOLDS}) < k.max_uses) \
                         AND COALESCE((SELECT u.uses FROM loyalty_coupon_customer_uses u \
                                       WHERE u.code = $1 AND u.customer_id = $3), 0) \
                             + ({LIVE_HOLDS} AND h.customer_id = $3) < $6 \
                         RETURNING id"
                    ))
                    .bind(code.as_str())
                    .bind(micros(now))
                    .bind(customer.key())
                    .bind(micros(now))
                    .bind(micros(expires_at))
                    .bind(customer_limit),
                )
                .await?;
            let Some(id) = id else {
                // Which limit it met, for the answer (the insert above decided).
                let live: i64 = c.fetch_one(Query::new(LIVE_HOLDS).bind(code.as_str()).bind(micros(now))).await?.at(0)?;
                let exhausted = coupon.max_uses.is_some_and(|m| i64::from(coupon.uses) + live >= i64::from(m));
                return refused(if exhausted { Refusal::CouponExhausted } else { Refusal::CouponLimitPerCustomer });
            };
            Ok(CouponHold {
                id,
                code: code.clone(),
                customer,
                placed_at: now,
                expires_at,
                status: "open",
                redemption_id: None,
            })
        }

        /// Live holds of a code at `now` by customers other than `customer` (all of them without one).
        pub(crate) async fn others_live_holds(
            c: &mut $Conn,
            code: &CouponCode,
            customer: Option<CustomerId>,
            now: DateTime<Utc>,
        ) -> Result<u32> {
            let n: i64 = c
                .fetch_one(
                    Query::new(format!("{LIVE_HOLDS} AND h.customer_id <> $3"))
                        .bind(code.as_str())
                        .bind(micros(now))
                        .bind(customer.map_or(0, CustomerId::key)),
                )
                .await?
                .at(0)?;
            Ok(n as u32)
        }

        pub(crate) async fn coupon_hold(c: &mut $Conn, id: i64, now: DateTime<Utc>) -> Result<Option<CouponHold>> {
            let row = c
                .fetch_optional(
                    Query::new(
                        "SELECT h.code, h.customer_id, h.placed_at, h.expires_at, r.kind, r.redemption_id \
                         FROM loyalty_coupon_holds h LEFT JOIN loyalty_coupon_hold_resolutions r ON r.hold_id = h.id \
                         WHERE h.id = $1",
                    )
                    .bind(id),
                )
                .await?;
            let Some(r) = row else { return Ok(None) };
            let expires_at = from_micros(r.get("expires_at")?)?;
            let status = match r.get::<Option<String>>("kind")?.as_deref() {
                Some("confirmed") => "confirmed",
                Some("released") => "released",
                Some(other) => return Err(corrupt(format!("hold resolution {other:?}"))),
                None if expires_at <= now => "expired",
                None => "open",
            };
            Ok(Some(CouponHold {
                id,
                code: stored(CouponCode::parse("code", &r.get::<String>("code")?))?,
                customer: CustomerId::from_key(r.get("customer_id")?),
                placed_at: from_micros(r.get("placed_at")?)?,
                expires_at,
                status,
                redemption_id: r.get("redemption_id")?,
            }))
        }

        /// Confirms (`confirm`) or releases an open hold. A hold resolves once (its resolution row's key);
        /// a confirmed hold becomes a redemption counted in the coupon's uses.
        pub(crate) async fn resolve_coupon_hold(
            c: &mut $Conn,
            id: i64,
            confirm: bool,
            now: DateTime<Utc>,
        ) -> Result<CouponHold> {
            let Some(hold) = coupon_hold(c, id, now).await? else {
                return Err(StoreError::not_found("id", format!("coupon hold {id}")));
            };
            lock_coupon(c, &hold.code).await?;
            match hold.status {
                "confirmed" | "released" => return refused(Refusal::CouponHoldAlreadyResolved),
                "expired" => return refused(Refusal::CouponHoldExpired),
                _ => {}
            }
            let mut redemption_id = None;
            if confirm {
                c.execute(Query::new("UPDATE loyalty_coupons SET uses = uses + 1 WHERE code = $1").bind(hold.code.as_str()))
                    .await?;
                c.execute(
                    Query::new(
                        "INSERT INTO loyalty_coupon_customer_uses (code, customer_id, uses) VALUES ($1, $2, 1) \
                         ON CONFLICT (code, customer_id) DO UPDATE SET uses = loyalty_coupon_customer_uses.uses + 1",
                    )
                    .bind(hold.code.as_str())
                    .bind(hold.customer.key()),
                )
                .await?;
                redemption_id = Some(
                    c.fetch_one(
                        Query::new(
                            "INSERT INTO loyalty_coupon_redemptions (code, customer_id, redeemed_at) \
                             VALUES ($1, $2, $3) RETURNING id",
                        )
                        .bind(hold.code.as_str())
                        .bind(hold.customer.key())
                        .bind(micros(now)),
                    )
                    .await?
                    .at::<i64>(0)?,
                );
            }
            let kind = if confirm { "confirmed" } else { "released" };
            let resolved: Option<i64> = c
                .fetch_scalar(
                    Query::new(
                        "INSERT INTO loyalty_coupon_hold_resolutions (hold_id, kind, redemption_id, resolved_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (hold_id) DO NOTHING RETURNING hold_id",
                    )
                    .bind(id)
                    .bind(kind)
                    .bind(redemption_id)
                    .bind(micros(now)),
                )
                .await?;
            if resolved.is_none() {
                return refused(Refusal::CouponHoldAlreadyResolved);
            }
            Ok(CouponHold { status: kind, redemption_id, ..hold })
        }

        // ----- promotions -----

        const PROMOTION_COLUMNS: &str = "id, name, kind, value, buy, get, sku, category, stacking, minimum_minor, \
             currency, tiers, valid_from, valid_until";

        fn promotion_from_row(r: &Row) -> Result<StoredPromotion> {
            let value: i64 = r.get("value")?;
            let kind = match r.get::<String>("kind")?.as_str() {
                "amount_off" => PromotionKind::AmountOff { minor: value },
                "percent_off" => PromotionKind::PercentOff { percent: value as u32 },
                "buy_x_get_y" => PromotionKind::BuyXGetY {
                    buy: r.get::<Option<i64>>("buy")?.unwrap_or(1) as u32,
                    get: r.get::<Option<i64>>("get")?.unwrap_or(1) as u32,
                    percent_off: value as u32,
                },
                other => return Err(corrupt(format!("promotion kind {other:?}"))),
            };
            let target = match (r.get::<Option<String>>("sku")?, r.get::<Option<String>>("category")?) {
                (Some(sku), _) => Some(Matches::Sku(stored(Sku::parse("sku", &sku))?)),
                (None, Some(category)) => Some(Matches::Category(category)),
                (None, None) => None,
            };
            let stacking = match r.get::<String>("stacking")?.as_str() {
                "exclusive" => Stacking::Exclusive,
                _ => Stacking::Combinable,
            };
            Ok(StoredPromotion {
                id: r.get("id")?,
                promotion: Promotion {
                    name: r.get("name")?,
                    kind,
                    target,
                    stacking,
                    minimum_minor: r.get("minimum_minor")?,
                },
                currency: crate::ops::currency_from_column(&r.get::<String>("currency")?)?,
                tiers: tiers_from(&r.get::<String>("tiers")?)?,
                valid_from: time(r.get("valid_from")?)?,
                valid_until: time(r.get("valid_until")?)?,
            })
        }

        pub(crate) async fn create_promotion(
            c: &mut $Conn,
            p: &StoredPromotion,
            now: DateTime<Utc>,
        ) -> Result<StoredPromotion> {
            let (kind, value, buy, get) = match p.promotion.kind {
                PromotionKind::AmountOff { minor } => ("amount_off", minor, None, None),
                PromotionKind::PercentOff { percent } => ("percent_off", i64::from(percent), None, None),
                PromotionKind::BuyXGetY { buy, get, percent_off } => {
                    ("buy_x_get_y", i64::from(percent_off), Some(i64::from(buy)), Some(i64::from(get)))
                }
                PromotionKind::FreeUnits { .. } => {
                    return Err(regulars_core::FieldError::new("kind", "free units are rewards, not promotions").into());
                }
            };
            let (sku, category) = match &p.promotion.target {
                Some(Matches::Sku(s)) => (Some(s.as_str().to_owned()), None),
                Some(Matches::Category(k)) => (None, Some(k.clone())),
                None => (None, None),
            };
            let stacking = match p.promotion.stacking {
                Stacking::Exclusive => "exclusive",
                Stacking::Combinable => "combinable",
            };
            let row = c
                .fetch_one(
                    Query::new(format!(
                        "INSERT INTO loyalty_promotions (name, kind, value, buy, get, sku, category, stacking, \
                         minimum_minor, currency, tiers, valid_from, valid_until, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING {PROMOTION_COLUMNS}"
                    ))
                    .bind(p.promotion.name.as_str())
                    .bind(kind)
                    .bind(value)
                    .bind(buy)
                    .bind(get)
                    .bind(sku)
                    .bind(category)
                    .bind(stacking)
                    .bind(p.promotion.minimum_minor)
                    .bind(p.currency.code())
                    .bind(tiers_json(&p.tiers))
                    .bind(p.valid_from.map(micros))
                    .bind(p.valid_until.map(micros))
                    .bind(micros(now)),
                )
                .await?;
            promotion_from_row(&row)
        }

        pub(crate) async fn promotions(c: &mut $Conn) -> Result<Vec<StoredPromotion>> {
            let rows =
                c.fetch_all(Query::new(format!("SELECT {PROMOTION_COLUMNS} FROM loyalty_promotions ORDER BY id"))).await?;
            rows.iter().map(promotion_from_row).collect()
        }

        /// A customer's tier: `None` when there is no such customer, `Some(None)` without a tier.
        pub(crate) async fn customer_tier(c: &mut $Conn, customer: CustomerId) -> Result<Option<Option<String>>> {
            let row = c
                .fetch_optional(
                    Query::new(
                        "SELECT w.tier FROM customers k LEFT JOIN loyalty_wallets w ON w.customer_id = k.id \
                         WHERE k.id = $1",
                    )
                    .bind(customer.key()),
                )
                .await?;
            row.map(|r| r.get::<Option<String>>("tier")).transpose()
        }

        // ----- sales and secrets -----

        const SALE_COLUMNS: &str = "id, name, starts_at, ends_at, early_access_from, tiers, segments";

        fn sale_from_row(r: &Row) -> Result<Sale> {
            Ok(Sale {
                id: r.get("id")?,
                name: r.get("name")?,
                starts_at: from_micros(r.get("starts_at")?)?,
                ends_at: from_micros(r.get("ends_at")?)?,
                early_access_from: from_micros(r.get("early_access_from")?)?,
                tiers: tiers_from(&r.get::<String>("tiers")?)?,
                segments: tiers_from(&r.get::<String>("segments")?)?,
            })
        }

        pub(crate) async fn create_sale(c: &mut $Conn, s: &Sale, now: DateTime<Utc>) -> Result<Sale> {
            let row = c
                .fetch_one(
                    Query::new(format!(
                        "INSERT INTO loyalty_sales (name, starts_at, ends_at, early_access_from, tiers, segments, \
                         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {SALE_COLUMNS}"
                    ))
                    .bind(s.name.as_str())
                    .bind(micros(s.starts_at))
                    .bind(micros(s.ends_at))
                    .bind(micros(s.early_access_from))
                    .bind(tiers_json(&s.tiers))
                    .bind(tiers_json(&s.segments))
                    .bind(micros(now)),
                )
                .await?;
            sale_from_row(&row)
        }

        pub(crate) async fn sale(c: &mut $Conn, id: i64) -> Result<Option<Sale>> {
            let row =
                c.fetch_optional(Query::new(format!("SELECT {SALE_COLUMNS} FROM loyalty_sales WHERE id = $1")).bind(id)).await?;
            row.as_ref().map(sale_from_row).transpose()
        }

        /// Appends `column IN ($n, ...)` for `values`, or a false condition when there are none.
        fn push_in(q: &mut Query, column: &str, values: &[String]) {
            if values.is_empty() {
                q.push("1 = 0");
                return;
            }
            q.push(column).push(" IN (");
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                q.push_bind(v.as_str());
            }
            q.push(")");
        }

        /// Records that a customer was given an early-access token to `sale`. The row is written only while
        /// the customer qualifies, checked by the writing statement: their wallet's tier is one of the sale's
        /// tiers, or their segment in the latest analytics snapshot is one of its segments
        /// (`sale_not_for_tier` otherwise).
        pub(crate) async fn grant_sale_access(
            c: &mut $Conn,
            sale: &Sale,
            customer: CustomerId,
            now: DateTime<Utc>,
        ) -> Result<SaleGrant> {
            let mut q = Query::new(
                "INSERT INTO loyalty_sale_access_grants (sale_id, customer_id, tier, segment, issued_at) \
                 SELECT $1, k.id, w.tier, f.segment, $3 FROM customers k \
                 LEFT JOIN loyalty_wallets w ON w.customer_id = k.id \
                 LEFT JOIN customer_figures f ON f.customer_id = k.id \
                     AND f.snapshot_id = (SELECT MAX(id) FROM analytics_snapshots) \
                 WHERE k.id = $2 AND (",
            )
            .bind(sale.id)
            .bind(customer.key())
            .bind(micros(now));
            push_in(&mut q, "w.tier", &sale.tiers);
            q.push(" OR ");
            push_in(&mut q, "f.segment", &sale.segments);
            q.push(") RETURNING id, tier, segment");
            let Some(row) = c.fetch_optional(q).await? else { return refused(Refusal::SaleNotForTier) };
            Ok(SaleGrant { id: row.get("id")?, tier: row.get("tier")?, segment: row.get("segment")? })
        }

        /// The secret called `name`, made from `fresh` if there was none (the first writer wins).
        pub(crate) async fn ensure_secret(c: &mut $Conn, name: &str, fresh: &str, now: DateTime<Utc>) -> Result<String> {
            c.execute(
                Query::new(
                    "INSERT INTO server_secrets (name, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(fresh)
                .bind(micros(now)),
            )
            .await?;
            secret(c, name).await?.ok_or_else(|| corrupt(format!("secret {name:?} missing after insert")))
        }

        pub(crate) async fn secret(c: &mut $Conn, name: &str) -> Result<Option<String>> {
            c.fetch_scalar(Query::new("SELECT secret FROM server_secrets WHERE name = $1").bind(name)).await
        }
    };
}
