//! The `Store` methods of rewards, punch cards, coupon holds, promotions and sales (`rewards.rs` holds
//! their SQL, expanded for both backends as `ops::{sqlite,postgres}::rewards`).

use chrono::{DateTime, Utc};
use rand::RngCore;
use regulars_core::loyalty::RequestId;
use regulars_core::loyalty::coupons::CouponCode;
use regulars_core::loyalty::rewards::Reward;
use regulars_core::{Currency, CustomerId};

use crate::rewards::{
    CouponHold, PunchCardView, RewardDelivery, RewardRedeemed, Sale, SaleGrant, StoredPromotion, StoredReward,
};
use crate::{Backend, Idempotency, Result, Store};

/// A new unguessable single-use code: 80 random bits, like a coupon batch's.
pub(crate) fn new_code() -> Result<CouponCode> {
    let mut random = [0u8; 10];
    rand::rngs::OsRng.fill_bytes(&mut random);
    Ok(CouponCode::generate(&random)?)
}

impl Store {
    /// Adds a reward to the catalogue; its key is unique (`already_exists` on `key`).
    pub async fn create_reward(
        &self,
        reward: Reward,
        currency: Option<Currency>,
        now: DateTime<Utc>,
        idem: Option<Idempotency<StoredReward>>,
    ) -> Result<StoredReward> {
        write!(self, c => async move {
            with_idempotency!(c, idem, ops::rewards::create_reward(c, &reward, currency, now).await)
        })
    }

    pub async fn rewards(&self) -> Result<Vec<StoredReward>> {
        read!(self, c => ops::rewards::rewards(c))
    }

    pub async fn reward(&self, id: i64) -> Result<Option<StoredReward>> {
        read!(self, c => ops::rewards::reward(c, id))
    }

    /// Redeems a reward for a customer in one transaction (stock, the customer's limit, the points, the
    /// code): `StoreError::Refused` with `reward_out_of_stock`, `reward_limit_per_customer`,
    /// `insufficient_points` or `reward_not_active`, and then nothing is written.
    pub async fn redeem_reward(
        &self,
        id: i64,
        customer: CustomerId,
        request: RequestId,
        delivery: RewardDelivery,
        now: DateTime<Utc>,
        idem: Option<Idempotency<RewardRedeemed>>,
    ) -> Result<RewardRedeemed> {
        let code = match delivery {
            RewardDelivery::Code => Some(new_code()?),
            RewardDelivery::Offer => None,
        };
        write!(self, c => async move {
            with_idempotency!(c, idem, ops::rewards::redeem_reward(c, id, customer, request, code.as_ref(), now).await)
        })
    }

    /// A customer's punch cards at `now`; `None` when there is no such customer.
    pub async fn punch_cards(&self, customer: CustomerId, now: DateTime<Utc>) -> Result<Option<Vec<PunchCardView>>> {
        read!(self, c => ops::rewards::punch_cards(c, customer, now))
    }

    /// Holds a coupon for a checkout until `expires_at`; the hold counts against the coupon's limits
    /// until it is confirmed, released or expired.
    pub async fn hold_coupon(
        &self,
        code: CouponCode,
        customer: CustomerId,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
        idem: Option<Idempotency<CouponHold>>,
    ) -> Result<CouponHold> {
        write!(self, c => async move {
            with_idempotency!(c, idem, ops::rewards::hold_coupon(c, &code, customer, expires_at, now).await)
        })
    }

    /// A coupon and the refusal a checkout of `customer` would meet with it at `now`, where live holds of
    /// other customers count as uses (the customer's own hold is what their checkout is using). Advice,
    /// like `coupon`: the holding and redeeming statements decide.
    pub async fn coupon_for_checkout(
        &self,
        code: &CouponCode,
        customer: Option<CustomerId>,
        now: DateTime<Utc>,
    ) -> Result<Option<(crate::CouponState, Option<regulars_core::loyalty::Refusal>)>> {
        let Some(coupon) = self.coupon(code, customer).await? else { return Ok(None) };
        let held = read!(self, c => ops::rewards::others_live_holds(c, code, customer, now))?;
        let probe = crate::CouponState { uses: coupon.uses + held, ..coupon.clone() };
        Ok(Some((coupon, probe.refusal(now))))
    }

    pub async fn coupon_hold(&self, id: i64, now: DateTime<Utc>) -> Result<Option<CouponHold>> {
        read!(self, c => ops::rewards::coupon_hold(c, id, now))
    }

    /// Confirms a hold (it becomes a redemption) or releases it: `coupon_hold_expired` after its time,
    /// `coupon_hold_already_resolved` the second time.
    pub async fn resolve_coupon_hold(
        &self,
        id: i64,
        confirm: bool,
        now: DateTime<Utc>,
        idem: Option<Idempotency<CouponHold>>,
    ) -> Result<CouponHold> {
        write!(self, c => async move {
            with_idempotency!(c, idem, ops::rewards::resolve_coupon_hold(c, id, confirm, now).await)
        })
    }

    pub async fn create_promotion(
        &self,
        promotion: StoredPromotion,
        now: DateTime<Utc>,
        idem: Option<Idempotency<StoredPromotion>>,
    ) -> Result<StoredPromotion> {
        write!(self, c => async move {
            with_idempotency!(c, idem, ops::rewards::create_promotion(c, &promotion, now).await)
        })
    }

    pub async fn promotions(&self) -> Result<Vec<StoredPromotion>> {
        read!(self, c => ops::rewards::promotions(c))
    }

    /// A customer's tier: `None` when there is no such customer.
    pub async fn customer_tier(&self, customer: CustomerId) -> Result<Option<Option<String>>> {
        read!(self, c => ops::rewards::customer_tier(c, customer))
    }

    pub async fn create_sale(&self, sale: Sale, now: DateTime<Utc>, idem: Option<Idempotency<Sale>>) -> Result<Sale> {
        write!(self, c => async move { with_idempotency!(c, idem, ops::rewards::create_sale(c, &sale, now).await) })
    }

    pub async fn sale(&self, id: i64) -> Result<Option<Sale>> {
        read!(self, c => ops::rewards::sale(c, id))
    }

    /// Records an early-access grant of `sale` to a customer still in one of its tiers, or in one of its
    /// segments in the latest analytics snapshot (`sale_not_for_tier` otherwise).
    pub async fn grant_sale_access(
        &self,
        sale: Sale,
        customer: CustomerId,
        now: DateTime<Utc>,
        idem: Option<Idempotency<SaleGrant>>,
    ) -> Result<SaleGrant> {
        write!(self, c => async move {
            with_idempotency!(c, idem, ops::rewards::grant_sale_access(c, &sale, customer, now).await)
        })
    }

    /// The server secret called `name` (hex), generated (256 random bits) and stored on first use.
    pub async fn ensure_secret(&self, name: &str, now: DateTime<Utc>) -> Result<String> {
        if let Some(found) = self.secret(name).await? {
            return Ok(found);
        }
        let mut random = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut random);
        let fresh: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let name = name.to_owned();
        write!(self, c => async move { ops::rewards::ensure_secret(c, &name, &fresh, now).await })
    }

    /// The server secret called `name`, if it was generated.
    pub async fn secret(&self, name: &str) -> Result<Option<String>> {
        read!(self, c => ops::rewards::secret(c, name))
    }
}
