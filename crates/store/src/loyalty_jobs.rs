//! The `Store` methods of tiers, reminders, earning events, the periodic loyalty job and the backtest's
//! reading (the SQL is in `tiers.rs`).

use chrono::{DateTime, Duration, Utc};
use regulars_core::loyalty::RequestId;
use regulars_core::loyalty::backtest::History;
use regulars_core::{Customer, CustomerDraft, CustomerId};

use crate::tiers::{LoyaltyEvent, LoyaltyTick, TierView};
use crate::{Backend, Idempotency, LedgerReceipt, Result, Store, StoreError};

impl Store {
    /// Creates a customer through the API: with who referred them (recorded once, for the referral bonus
    /// on their first purchase) and the program's sign-up bonus, in the same transaction.
    pub async fn enrol_customer(
        &self,
        draft: CustomerDraft,
        referred_by: Option<CustomerId>,
        now: DateTime<Utc>,
        idem: Option<Idempotency<Customer>>,
    ) -> Result<Customer> {
        let programs = self.programs.clone();
        write!(self, c => async move {
            with_idempotency!(c, idem, async {
                let customer = ops::insert_customer(c, &draft, now).await?;
                if let Some(referrer) = referred_by {
                    ops::tiers::record_referral(c, customer.id, referrer, now).await?;
                }
                ops::tiers::sign_up(c, &programs, customer.id, now).await?;
                Ok::<_, StoreError>(customer)
            }
            .await)
        })
    }

    /// Earns the points of a custom event (`[[earning.events]]` of the program) for a customer, once per
    /// request id, within the event's limit per customer. `StoreError::Refused` with `unknown_event` or
    /// `event_limit_reached` writes nothing.
    pub async fn earn_event(
        &self,
        customer: CustomerId,
        event: String,
        request: RequestId,
        now: DateTime<Utc>,
        idem: Option<Idempotency<LedgerReceipt>>,
    ) -> Result<LedgerReceipt> {
        let programs = self.programs.clone();
        let result = write!(self, c => async move {
            with_idempotency_unless_refused!(c, idem, ops::tiers::earn_event(c, &programs, customer, &event, request, now).await)
        })?;
        result.map_err(StoreError::Refused)
    }

    /// Who referred a customer, if anyone.
    pub async fn referrer_of(&self, customer: CustomerId) -> Result<Option<CustomerId>> {
        read!(self, c => ops::tiers::referrer_of(c, customer))
    }

    /// A customer's tier, its clocks and every change; `None` when there is no such customer.
    pub async fn tier(&self, customer: CustomerId) -> Result<Option<TierView>> {
        read!(self, c => ops::tiers::tier_view(c, customer))
    }

    /// Evaluates one customer's tier at `now` under the current program; returns whether it changed.
    pub async fn evaluate_tier(&self, customer: CustomerId, now: DateTime<Utc>) -> Result<bool> {
        let programs = self.programs.clone();
        write!(self, c => async move { ops::tiers::evaluate(c, &programs, customer, now).await })
    }

    /// Events for engagement (`points_expiring`), oldest first, after the event id `after`.
    pub async fn loyalty_events(&self, kind: Option<String>, after: i64, limit: u32) -> Result<Vec<LoyaltyEvent>> {
        read!(self, c => ops::tiers::events(c, kind.as_deref(), after, limit))
    }

    /// Records the "points expiring" reminders due at `now` (once per lot and window).
    pub async fn record_expiry_reminders(&self, now: DateTime<Utc>) -> Result<u64> {
        let programs = self.programs.clone();
        write!(self, c => async move { ops::tiers::record_reminders(c, &programs, now).await })
    }

    /// Grants the birthday bonuses due at `now`: customers whose birthday it is in their own time zone
    /// (the program's when they have none), once a year. Returns how many were granted.
    pub async fn grant_birthdays(&self, now: DateTime<Utc>) -> Result<u64> {
        // Somewhere on Earth it is the UTC date of yesterday, today or tomorrow; 29 February birthdays are
        // celebrated on 28 February in other years.
        let mut month_days: Vec<String> =
            [-1, 0, 1].iter().map(|d| (now + Duration::days(*d)).format("%m-%d").to_string()).collect();
        if month_days.iter().any(|d| d == "02-28") {
            month_days.push("02-29".to_owned());
        }
        let candidates = read!(self, c => ops::tiers::birthday_candidates(c, &month_days))?;
        let mut granted = 0;
        for candidate in candidates {
            let programs = self.programs.clone();
            let done = write!(self, c => async move { ops::tiers::birthday(c, &programs, &candidate, now).await })?;
            granted += u64::from(done);
        }
        Ok(granted)
    }

    /// The periodic loyalty job: writes what time did to due wallets (`settle_due`) and records "points
    /// expiring" reminders; with `hourly` (the server passes it once an hour) also evaluates the tier of
    /// every customer holding one (grace periods starting and ending, downgrades) and grants the birthday
    /// bonuses due. A tier is evaluated by a read first; only a customer whose status would change is
    /// written, in a transaction of its own that evaluates again with the wallet locked.
    pub async fn loyalty_tick(&self, now: DateTime<Utc>, hourly: bool) -> Result<LoyaltyTick> {
        let (wallets_settled, postings) = self.settle_due(now, 500).await?;
        let mut tick = LoyaltyTick { wallets_settled, postings, ..LoyaltyTick::default() };
        tick.reminders = self.record_expiry_reminders(now).await?;
        if !hourly {
            return Ok(tick);
        }
        let program = self.program().await?.map(|p| p.program).filter(|p| p.tiers.is_some());
        let mut after = program.as_ref().map(|_| 0);
        while let (Some(from), Some(program)) = (after, &program) {
            let page = read!(self, c => ops::tiers::tiered(c, from, 500))?;
            after = page.last().map(|c| c.key());
            for customer in page {
                tick.tiers_evaluated += 1;
                if read!(self, c => ops::tiers::would_change(c, program, customer, now))? {
                    tick.tier_changes += u64::from(self.evaluate_tier(customer, now).await?);
                }
            }
        }
        tick.birthdays = self.grant_birthdays(now).await?;
        Ok(tick)
    }

    /// What the backtest replays: orders and refunds from `since`, purchases before it, categories.
    pub async fn loyalty_history(&self, since: DateTime<Utc>) -> Result<History> {
        read!(self, c => ops::tiers::history(c, since))
    }

    /// Points ever issued and redeemed in the stored ledger (the backtest's redemption ratio).
    pub async fn points_issued_and_redeemed(&self) -> Result<(i64, i64)> {
        read!(self, c => ops::tiers::issued_and_redeemed(c))
    }
}
