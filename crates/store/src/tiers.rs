//! Tiers, "points expiring" reminders, earning events (sign-up, birthday, referral, custom events) and the
//! backtest's reading of the history: the SQL, compiled for both backends inside `ops::sqlite::tiers` and
//! `ops::postgres::tiers` (`define_tier_ops!`), beside the ledger's.
//!
//! A tier evaluation runs in the transaction of what caused it (an order earning, an event, the periodic
//! job) with the wallet row locked first (`ledger::lock_wallet`): it sums the customer's measure over the
//! program's window from the stored postings (points earned less points taken back) or orders (net spend),
//! calls `loyalty::tiers::evaluate`, caches the new status on the wallet row and appends the change, if
//! any, to `loyalty_tier_changes`.

use chrono::{DateTime, NaiveDate, Utc};
use regulars_core::CustomerId;

/// A recorded change of tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierChangeRecord {
    pub from: Option<String>,
    pub to: Option<String>,
    /// `qualified` or `downgraded`.
    pub reason: String,
    /// The measure at the change (points, or minor units of spend) and the threshold it was compared with.
    pub measure: i64,
    pub threshold: i64,
    /// For a downgrade: since when the measure had been below the threshold.
    pub below_since: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

/// Where a customer stands in the tier ladder, and how they got there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierView {
    pub customer: CustomerId,
    pub tier: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub kept_until: Option<DateTime<Utc>>,
    pub below_since: Option<DateTime<Utc>>,
    /// Every change, oldest first.
    pub history: Vec<TierChangeRecord>,
}

/// An event for engagement to act on (`points_expiring`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoyaltyEvent {
    pub id: i64,
    pub kind: String,
    pub customer: CustomerId,
    pub points: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// What one run of the periodic loyalty job did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoyaltyTick {
    pub wallets_settled: u64,
    pub postings: u64,
    pub tiers_evaluated: u64,
    pub tier_changes: u64,
    pub reminders: u64,
    pub birthdays: u64,
}

/// A customer whose birthday may be today somewhere.
#[derive(Debug, Clone)]
pub(crate) struct BirthdayCandidate {
    pub customer: CustomerId,
    pub birthday: NaiveDate,
    pub time_zone: Option<String>,
}

/// The SQL of tiers, reminders, earning events and the backtest's reading, for one backend.
macro_rules! define_tier_ops {
    ($Conn:ty) => {
        use std::collections::BTreeMap;

        use chrono::{DateTime, Utc};
        use regulars_core::loyalty::earning::earn_command;
        use regulars_core::loyalty::tiers::{Measure, TierReason, TierStatus};
        use regulars_core::loyalty::{
            self, EarnPart, EarnReason, EarnRule, LotSource, Program, Reason, Refusal, Request, RequestId,
        };
        use regulars_core::CustomerId;

        use super::ledger::{current_program, execute, lock_wallet};
        use crate::db::{Db, Query, Row};
        use crate::ledger::{LedgerReceipt, ProgramCache};
        use crate::ops::{from_micros, micros};
        use crate::tiers::*;
        use crate::{Result, StoreError};

        fn opt_time(r: &Row, column: &str) -> Result<Option<DateTime<Utc>>> {
            r.get::<Option<i64>>(column)?.map(from_micros).transpose()
        }

        /// The customer's measure over the window ending at `now`.
        async fn measure(c: &mut $Conn, program: &Program, customer: CustomerId, now: DateTime<Utc>) -> Result<i64> {
            let Some(tiers) = &program.tiers else { return Ok(0) };
            let start = micros(tiers.window_start(now));
            let value: Option<i64> = match tiers.measure {
                Measure::PointsEarned => {
                    c.fetch_scalar(
                        Query::new(
                            "SELECT CAST(COALESCE(SUM(CASE WHEN reason = 'earned' THEN points ELSE -points END), 0) \
                             AS BIGINT) FROM loyalty_postings WHERE customer_id = $1 AND at > $2 AND at <= $3 \
                             AND reason IN ('earned', 'clawed_back', 'debt_recorded', 'written_off')",
                        )
                        .bind(customer.key())
                        .bind(start)
                        .bind(micros(now)),
                    )
                    .await?
                }
                Measure::Spend => {
                    c.fetch_scalar(
                        Query::new(
                            "SELECT CAST(COALESCE(SUM(total_minor - refunded_minor), 0) AS BIGINT) FROM orders \
                             WHERE customer_id = $1 AND currency = $2 AND placed_at > $3 AND placed_at <= $4",
                        )
                        .bind(customer.key())
                        .bind(program.currency.code())
                        .bind(start)
                        .bind(micros(now)),
                    )
                    .await?
                }
            };
            Ok(value.unwrap_or(0))
        }

        /// The tier status cached on the wallet row; `None` without a wallet.
        async fn status(c: &mut $Conn, customer: CustomerId) -> Result<Option<TierStatus>> {
            let row = c
                .fetch_optional(
                    Query::new(
                        "SELECT tier, tier_since, tier_kept_until, tier_below_since FROM loyalty_wallets \
                         WHERE customer_id = $1",
                    )
                    .bind(customer.key()),
                )
                .await?;
            row.map(|r| {
                Ok(TierStatus {
                    tier: r.get("tier")?,
                    since: opt_time(&r, "tier_since")?,
                    kept_until: opt_time(&r, "tier_kept_until")?,
                    below_since: opt_time(&r, "tier_below_since")?,
                })
            })
            .transpose()
        }

        /// Whether an evaluation at `now` would change what is stored (a read: the job writes only then).
        pub(crate) async fn would_change(
            c: &mut $Conn,
            program: &Program,
            customer: CustomerId,
            now: DateTime<Utc>,
        ) -> Result<bool> {
            let Some(tiers) = &program.tiers else { return Ok(false) };
            let status = status(c, customer).await?.unwrap_or_default();
            let measure = measure(c, program, customer, now).await?;
            Ok(loyalty::tiers::evaluate(tiers, &status, measure, now).status != status)
        }

        /// Evaluates a customer's tier at `now` under `program`, in the caller's transaction; returns
        /// whether the tier changed. Locks (and creates) the wallet row first.
        pub(crate) async fn evaluate_with(
            c: &mut $Conn,
            program: &Program,
            customer: CustomerId,
            now: DateTime<Utc>,
        ) -> Result<bool> {
            let Some(tiers) = &program.tiers else { return Ok(false) };
            if lock_wallet(c, customer).await?.is_none() {
                return Err(StoreError::not_found("customer_id", format!("customer {customer}")));
            }
            let status = status(c, customer).await?.unwrap_or_default();
            let measure = measure(c, program, customer, now).await?;
            let evaluation = loyalty::tiers::evaluate(tiers, &status, measure, now);
            if evaluation.status != status {
                let s = &evaluation.status;
                c.execute(
                    Query::new(
                        "UPDATE loyalty_wallets SET tier = $1, tier_since = $2, tier_kept_until = $3, \
                         tier_below_since = $4 WHERE customer_id = $5",
                    )
                    .bind(s.tier.clone())
                    .bind(s.since.map(micros))
                    .bind(s.kept_until.map(micros))
                    .bind(s.below_since.map(micros))
                    .bind(customer.key()),
                )
                .await?;
            }
            let Some(change) = evaluation.change else { return Ok(false) };
            let (reason, measure, threshold, below_since) = match change.reason {
                TierReason::Qualified { measure, threshold } => ("qualified", measure, threshold, None),
                TierReason::Downgraded { measure, threshold, below_since } => {
                    ("downgraded", measure, threshold, Some(micros(below_since)))
                }
            };
            c.execute(
                Query::new(
                    "INSERT INTO loyalty_tier_changes (customer_id, from_tier, to_tier, reason, measure, threshold, \
                     below_since, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(customer.key())
                .bind(change.from)
                .bind(change.to)
                .bind(reason)
                .bind(measure)
                .bind(threshold)
                .bind(below_since)
                .bind(micros(change.at)),
            )
            .await?;
            Ok(true)
        }

        /// Evaluates a customer's tier under the current program (the periodic job's step).
        pub(crate) async fn evaluate(
            c: &mut $Conn,
            cache: &ProgramCache,
            customer: CustomerId,
            now: DateTime<Utc>,
        ) -> Result<bool> {
            match current_program(c, cache).await? {
                Some(program) => evaluate_with(c, &program, customer, now).await,
                None => Ok(false),
            }
        }

        /// Customers holding a tier (whom time may move down), in id order after `after`.
        pub(crate) async fn tiered(c: &mut $Conn, after: i64, limit: u32) -> Result<Vec<CustomerId>> {
            let keys: Vec<i64> = c
                .fetch_scalars(
                    Query::new(
                        "SELECT customer_id FROM loyalty_wallets WHERE tier IS NOT NULL AND customer_id > $1 \
                         ORDER BY customer_id LIMIT $2",
                    )
                    .bind(after)
                    .bind(i64::from(limit)),
                )
                .await?;
            Ok(keys.into_iter().map(CustomerId::from_key).collect())
        }

        /// A customer's tier and its history; `None` when there is no such customer.
        pub(crate) async fn tier_view(c: &mut $Conn, customer: CustomerId) -> Result<Option<TierView>> {
            let row = c
                .fetch_optional(
                    Query::new(
                        "SELECT c.id, w.tier, w.tier_since, w.tier_kept_until, w.tier_below_since FROM customers c \
                         LEFT JOIN loyalty_wallets w ON w.customer_id = c.id WHERE c.id = $1",
                    )
                    .bind(customer.key()),
                )
                .await?;
            let Some(r) = row else { return Ok(None) };
            let rows = c
                .fetch_all(
                    Query::new(
                        "SELECT from_tier, to_tier, reason, measure, threshold, below_since, at \
                         FROM loyalty_tier_changes WHERE customer_id = $1 ORDER BY id",
                    )
                    .bind(customer.key()),
                )
                .await?;
            let history = rows
                .iter()
                .map(|h| {
                    Ok(TierChangeRecord {
                        from: h.get("from_tier")?,
                        to: h.get("to_tier")?,
                        reason: h.get("reason")?,
                        measure: h.get("measure")?,
                        threshold: h.get("threshold")?,
                        below_since: opt_time(h, "below_since")?,
                        at: from_micros(h.get("at")?)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Some(TierView {
                customer,
                tier: r.get("tier")?,
                since: opt_time(&r, "tier_since")?,
                kept_until: opt_time(&r, "tier_kept_until")?,
                below_since: opt_time(&r, "tier_below_since")?,
                history,
            }))
        }

        // ----- "points expiring" reminders -----

        /// Records a `points_expiring` event for every lot with points left that expires within a reminder
        /// window of the current program, once per (lot, window): the unique key drops repeats.
        pub(crate) async fn record_reminders(c: &mut $Conn, cache: &ProgramCache, now: DateTime<Utc>) -> Result<u64> {
            let Some(program) = current_program(c, cache).await? else { return Ok(0) };
            let mut recorded = 0;
            for (after, until, days) in loyalty::expiry::reminder_windows(&program.expiry_reminder_days) {
                recorded += c
                    .execute(
                        Query::new(
                            "INSERT INTO loyalty_events (kind, customer_id, dedup_key, points, expires_at, created_at) \
                             SELECT 'points_expiring', b.customer_id, 'lot:' || CAST(b.lot_no AS TEXT) || $1, \
                             b.remaining, l.expires_at, $2 FROM loyalty_lot_balances b \
                             JOIN loyalty_lots l ON l.customer_id = b.customer_id AND l.lot_no = b.lot_no \
                             JOIN customers k ON k.id = b.customer_id \
                             WHERE b.remaining > 0 AND l.expires_at > $3 AND l.expires_at <= $4 \
                             AND k.erased_at IS NULL \
                             ON CONFLICT (kind, customer_id, dedup_key) DO NOTHING",
                        )
                        .bind(format!(":{days}d"))
                        .bind(micros(now))
                        .bind(micros(now + after))
                        .bind(micros(now + until)),
                    )
                    .await?;
            }
            Ok(recorded)
        }

        /// Events of `kind` (all kinds when `None`) after the id `after`, oldest first.
        pub(crate) async fn events(
            c: &mut $Conn,
            kind: Option<&str>,
            after: i64,
            limit: u32,
        ) -> Result<Vec<LoyaltyEvent>> {
            let mut q = Query::new(
                "SELECT id, kind, customer_id, points, expires_at, created_at FROM loyalty_events WHERE id > ",
            );
            q.push_bind(after);
            if let Some(kind) = kind {
                q.push(" AND kind = ").push_bind(kind.to_owned());
            }
            q.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
            let rows = c.fetch_all(q).await?;
            rows.iter()
                .map(|r| {
                    Ok(LoyaltyEvent {
                        id: r.get("id")?,
                        kind: r.get("kind")?,
                        customer: CustomerId::from_key(r.get("customer_id")?),
                        points: r.get("points")?,
                        expires_at: opt_time(r, "expires_at")?,
                        created_at: from_micros(r.get("created_at")?)?,
                    })
                })
                .collect()
        }

        // ----- earning events -----

        /// Runs an award (points available at once, not tied to an order) on a customer's wallet, then
        /// evaluates their tier. `None` when the program gives nothing for it.
        async fn award(
            c: &mut $Conn,
            program: &Program,
            customer: CustomerId,
            id: RequestId,
            part: EarnPart,
            now: DateTime<Utc>,
        ) -> Result<std::result::Result<LedgerReceipt, Refusal>> {
            let command = earn_command(program, vec![part], LotSource::Award, false, now);
            let done = execute(c, customer, &Request { id, command }, now).await?;
            if matches!(&done, Ok(r) if !r.replayed) {
                evaluate_with(c, program, customer, now).await?;
            }
            Ok(done)
        }

        /// The sign-up bonus of a customer created through the API, in the creating transaction, once
        /// (`RequestId::for_sign_up`).
        pub(crate) async fn sign_up(
            c: &mut $Conn,
            cache: &ProgramCache,
            customer: CustomerId,
            now: DateTime<Utc>,
        ) -> Result<()> {
            let Some(program) = current_program(c, cache).await? else { return Ok(()) };
            let Some(part) = loyalty::earning::sign_up(&program) else { return Ok(()) };
            award(c, &program, customer, RequestId::for_sign_up(), part, now).await?.map_err(StoreError::Refused)?;
            Ok(())
        }

        /// Records who referred a new customer; refuses a referrer that does not exist.
        pub(crate) async fn record_referral(
            c: &mut $Conn,
            friend: CustomerId,
            referrer: CustomerId,
            now: DateTime<Utc>,
        ) -> Result<()> {
            let exists: Option<i64> =
                c.fetch_scalar(Query::new("SELECT id FROM customers WHERE id = $1").bind(referrer.key())).await?;
            if exists.is_none() || friend == referrer {
                let message = format!("customer {referrer} does not exist");
                return Err(regulars_core::FieldError::new("referred_by", message).into());
            }
            c.execute(
                Query::new("INSERT INTO loyalty_referrals (friend_id, referrer_id, recorded_at) VALUES ($1, $2, $3)")
                    .bind(friend.key())
                    .bind(referrer.key())
                    .bind(micros(now)),
            )
            .await?;
            Ok(())
        }

        /// Who referred a customer, if anyone.
        pub(crate) async fn referrer_of(c: &mut $Conn, friend: CustomerId) -> Result<Option<CustomerId>> {
            let key: Option<i64> = c
                .fetch_scalar(
                    Query::new("SELECT referrer_id FROM loyalty_referrals WHERE friend_id = $1").bind(friend.key()),
                )
                .await?;
            Ok(key.map(CustomerId::from_key))
        }

        /// The points of a custom event posted by the integration. The limit per customer counts the
        /// event's earlier earnings, read with the wallet locked; a replay of a recorded request is left to
        /// the ledger, which returns its first receipt.
        pub(crate) async fn earn_event(
            c: &mut $Conn,
            cache: &ProgramCache,
            customer: CustomerId,
            name: &str,
            id: RequestId,
            now: DateTime<Utc>,
        ) -> Result<std::result::Result<LedgerReceipt, Refusal>> {
            let Some(program) = current_program(c, cache).await? else { return Ok(Err(Refusal::UnknownEvent)) };
            if lock_wallet(c, customer).await?.is_none() {
                return Err(StoreError::not_found("customer_id", format!("customer {customer}")));
            }
            let seen: Option<i64> = c
                .fetch_scalar(
                    Query::new("SELECT 1 FROM loyalty_requests WHERE customer_id = $1 AND request_id = $2")
                        .bind(customer.key())
                        .bind(id.as_str()),
                )
                .await?;
            let detail = crate::ledger::reason_detail(&Reason::Earned(EarnReason {
                rule: EarnRule::Event { name: name.trim().to_owned() },
                order: None,
            }));
            let times: i64 = if seen.is_some() {
                0
            } else {
                c.fetch_scalar(
                    Query::new(
                        "SELECT COUNT(*) FROM loyalty_postings WHERE customer_id = $1 AND reason = 'earned' \
                         AND detail = $2",
                    )
                    .bind(customer.key())
                    .bind(detail),
                )
                .await?
                .unwrap_or(0)
            };
            let part = match loyalty::earning::event(&program, name, times as u32) {
                Ok(part) => part,
                Err(refusal) => return Ok(Err(refusal)),
            };
            award(c, &program, customer, id, part, now).await
        }

        /// Customers not erased whose birthday (month and day) is one of `month_days` (`MM-DD`).
        pub(crate) async fn birthday_candidates(
            c: &mut $Conn,
            month_days: &[String],
        ) -> Result<Vec<BirthdayCandidate>> {
            let mut q = Query::new(
                "SELECT id, birthday, time_zone FROM customers WHERE birthday IS NOT NULL AND erased_at IS NULL \
                 AND SUBSTR(birthday, 6) IN ",
            );
            q.push_list(month_days.iter().cloned());
            q.push(" ORDER BY id");
            let rows = c.fetch_all(q).await?;
            rows.iter()
                .map(|r| {
                    Ok(BirthdayCandidate {
                        customer: CustomerId::from_key(r.get("id")?),
                        birthday: crate::ops::parse_date(&r.get::<String>("birthday")?)?,
                        time_zone: r.get("time_zone")?,
                    })
                })
                .collect()
        }

        /// The birthday bonus, if `now` is the customer's birthday in their time zone (the program's when
        /// they have none); once a year (`RequestId::for_birthday`, per wallet). Returns whether points
        /// were granted now.
        pub(crate) async fn birthday(
            c: &mut $Conn,
            cache: &ProgramCache,
            candidate: &BirthdayCandidate,
            now: DateTime<Utc>,
        ) -> Result<bool> {
            let Some(program) = current_program(c, cache).await? else { return Ok(false) };
            let zone = candidate.time_zone.as_deref().and_then(|z| z.parse().ok()).unwrap_or(program.time_zone);
            let today = loyalty::earning::local_date(now, zone);
            let Some(part) = loyalty::earning::birthday(&program, candidate.birthday, today) else {
                return Ok(false);
            };
            let EarnRule::Birthday { year } = part.reason.rule else { return Ok(false) };
            let done = award(c, &program, candidate.customer, RequestId::for_birthday(year), part, now).await?;
            Ok(matches!(done, Ok(r) if !r.replayed))
        }

        // ----- the backtest's reading -----

        /// Orders placed from `since` (with lines), refunds made from `since`, purchases before `since`
        /// by customer, and product categories.
        pub(crate) async fn history(c: &mut $Conn, since: DateTime<Utc>) -> Result<loyalty::backtest::History> {
            let rows = c
                .fetch_all(
                    Query::new(
                        "SELECT id, external_id, customer_id, placed_at, currency, total_minor FROM orders \
                         WHERE placed_at >= $1 ORDER BY id",
                    )
                    .bind(micros(since)),
                )
                .await?;
            let mut orders = BTreeMap::new();
            for r in &rows {
                let id: i64 = r.get("id")?;
                let order = regulars_core::Order {
                    id: regulars_core::OrderId::from_key(id),
                    external_id: r
                        .get::<Option<String>>("external_id")?
                        .map(|v| crate::ops::stored(regulars_core::ExternalId::parse("external_id", &v)))
                        .transpose()?,
                    customer_id: CustomerId::from_key(r.get("customer_id")?),
                    placed_at: from_micros(r.get("placed_at")?)?,
                    currency: crate::ops::currency_from_column(&r.get::<String>("currency")?)?,
                    lines: Vec::new(),
                    total_minor: r.get("total_minor")?,
                    refunded_minor: 0,
                };
                orders.insert(id, order);
            }
            let lines = c
                .fetch_all(
                    Query::new(
                        "SELECT l.order_id, l.sku, l.name, l.quantity, l.unit_price_minor, l.discount_minor \
                         FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE o.placed_at >= $1 \
                         ORDER BY l.order_id, l.line_no",
                    )
                    .bind(micros(since)),
                )
                .await?;
            for r in &lines {
                let line = crate::ops::line_from_columns(
                    r.get("sku")?,
                    r.get("name")?,
                    r.get("quantity")?,
                    r.get("unit_price_minor")?,
                    r.get("discount_minor")?,
                )?;
                if let Some(o) = orders.get_mut(&r.get::<i64>("order_id")?) {
                    o.lines.push(line);
                }
            }
            let refunds = c
                .fetch_all(
                    Query::new(
                        "SELECT id, order_id, refunded_at, amount_minor FROM refunds WHERE refunded_at >= $1 ORDER BY id",
                    )
                    .bind(micros(since)),
                )
                .await?
                .iter()
                .map(|r| {
                    Ok(loyalty::backtest::HistoryRefund {
                        id: regulars_core::RefundId::from_key(r.get("id")?),
                        order: regulars_core::OrderId::from_key(r.get("order_id")?),
                        at: from_micros(r.get("refunded_at")?)?,
                        amount_minor: r.get("amount_minor")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let mut orders_before = BTreeMap::new();
            for r in c
                .fetch_all(
                    Query::new("SELECT customer_id, COUNT(*) AS n FROM orders WHERE placed_at < $1 GROUP BY customer_id")
                        .bind(micros(since)),
                )
                .await?
            {
                orders_before.insert(CustomerId::from_key(r.get("customer_id")?), r.get::<i64>("n")? as u32);
            }
            let mut categories = BTreeMap::new();
            for r in c.fetch_all(Query::new("SELECT sku, category FROM products WHERE category IS NOT NULL")).await? {
                let sku = crate::ops::stored(regulars_core::Sku::parse("sku", &r.get::<String>("sku")?))?;
                categories.insert(sku, r.get("category")?);
            }
            Ok(loyalty::backtest::History {
                orders: orders.into_values().collect(),
                refunds,
                orders_before,
                categories,
            })
        }

        /// Points ever issued (earned) and redeemed (spent, captured) in the stored ledger.
        pub(crate) async fn issued_and_redeemed(c: &mut $Conn) -> Result<(i64, i64)> {
            let r = c
                .fetch_one(Query::new(
                    "SELECT CAST(COALESCE(SUM(CASE WHEN reason = 'earned' THEN points ELSE 0 END), 0) AS BIGINT) \
                     AS issued, CAST(COALESCE(SUM(CASE WHEN credit = 'redemptions' THEN points ELSE 0 END), 0) \
                     AS BIGINT) AS redeemed FROM loyalty_postings",
                ))
                .await?;
            Ok((r.get("issued")?, r.get("redeemed")?))
        }
    };
}
