//! Wire shapes of rewards, punch cards, coupon holds, promotions, checkout pricing and sales (a part of
//! `wire`, kept in its own file; `wire` re-exports everything here).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use regulars_analytics::rfm::SEGMENT_NAMES;
use regulars_core::loyalty::Points;
use regulars_core::loyalty::promotions::{Priced, Promotion, PromotionKind, Stacking};
use regulars_core::loyalty::punch::Matches;
use regulars_core::loyalty::rewards::{Reward, RewardKind};
use regulars_core::text::bounded_text;
use regulars_core::{
    CouponHoldId, Currency, CustomerId, FieldError, Money, OrderLine, PromotionId, Quantity, RewardId, SaleId, Sku,
};
use regulars_store::{
    CouponHold, PunchCardView, RewardDelivery, RewardRedeemed, Sale, SaleGrant, StoredPromotion, StoredReward,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{money, opt, page, parse_time, time};

/// A validity window: from (inclusive), until (exclusive); either may be open.
type Window = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

fn window(from: Option<&str>, until: Option<&str>) -> Result<Window, FieldError> {
    let valid_from = opt(from, |v| parse_time("valid_from", v))?;
    let valid_until = opt(until, |v| parse_time("valid_until", v))?;
    if let (Some(from), Some(until)) = (valid_from, valid_until)
        && until <= from
    {
        return Err(FieldError::new("valid_until", "must be after valid_from"));
    }
    Ok((valid_from, valid_until))
}

fn at_least_one(field: &str, v: Option<u32>) -> Result<Option<u32>, FieldError> {
    match v {
        Some(0) => Err(FieldError::new(field, "must be at least 1 (leave it out for no limit)")),
        v => Ok(v),
    }
}

// ----- rewards -----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardIn {
    pub key: String,
    pub name: String,
    /// Exactly one of `free_item` (a SKU), `amount_off_minor` (with `currency`), `percent_off`.
    pub free_item: Option<String>,
    pub amount_off_minor: Option<i64>,
    pub currency: Option<String>,
    pub percent_off: Option<u32>,
    pub cost: i64,
    pub stock: Option<u32>,
    pub per_customer_limit: Option<u32>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
}

impl RewardIn {
    pub fn parse(self) -> Result<(Reward, Option<Currency>), FieldError> {
        let (kind, currency) = match (&self.free_item, self.amount_off_minor, self.percent_off) {
            (Some(sku), None, None) => (RewardKind::FreeItem { sku: Sku::parse("free_item", sku)? }, None),
            (None, Some(minor), None) => {
                if minor <= 0 {
                    return Err(FieldError::new("amount_off_minor", format!("must be more than 0, got {minor}")));
                }
                let code = self
                    .currency
                    .as_deref()
                    .ok_or_else(|| FieldError::new("currency", "is required with amount_off_minor"))?;
                (RewardKind::AmountOff { minor }, Some(Currency::parse("currency", code)?))
            }
            (None, None, Some(percent)) if (1..=100).contains(&percent) => (RewardKind::PercentOff { percent }, None),
            (None, None, Some(p)) => return Err(FieldError::new("percent_off", format!("must be 1 to 100, got {p}"))),
            _ => {
                return Err(FieldError::new(
                    "free_item",
                    "give exactly one of free_item, amount_off_minor (with currency), percent_off",
                ));
            }
        };
        if currency.is_none() && self.currency.is_some() {
            return Err(FieldError::new("currency", "only an amount off has a currency"));
        }
        let (valid_from, valid_until) = window(self.valid_from.as_deref(), self.valid_until.as_deref())?;
        let reward = Reward {
            key: bounded_text("key", &self.key, 64)?,
            name: bounded_text("name", &self.name, 200)?,
            kind,
            cost: Points::parse_positive("cost", self.cost)?,
            stock: self.stock,
            per_customer_limit: at_least_one("per_customer_limit", self.per_customer_limit)?,
            valid_from,
            valid_until,
        };
        Ok((reward, currency))
    }
}

fn reward_offer(r: &StoredReward) -> Value {
    match &r.reward.kind {
        RewardKind::FreeItem { sku } => json!({ "free_item": sku.as_str() }),
        RewardKind::AmountOff { minor } => match r.currency {
            Some(c) => json!({ "amount_off": money(Money::new(*minor, c)) }),
            None => json!({ "amount_off_minor": minor }),
        },
        RewardKind::PercentOff { percent } => json!({ "percent_off": percent }),
    }
}

pub fn reward(r: &StoredReward) -> Value {
    json!({
        "id": RewardId::from_key(r.id).to_string(),
        "key": r.reward.key,
        "name": r.reward.name,
        "offer": reward_offer(r),
        "cost": r.reward.cost.get(),
        "stock": r.reward.stock,
        "issued": r.issued,
        "remaining": r.reward.stock.map(|s| s.saturating_sub(r.issued)),
        "per_customer_limit": r.reward.per_customer_limit,
        "valid_from": r.reward.valid_from.map(time),
        "valid_until": r.reward.valid_until.map(time),
        "created_at": time(r.created_at),
    })
}

pub fn rewards(list: &[StoredReward]) -> Value {
    page(list.iter().map(reward).collect(), None)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardRedeemIn {
    pub customer_id: String,
    /// `code` (the default): a single-use code the till redeems later; `offer`: the offer to apply now.
    pub delivery: Option<String>,
}

impl RewardRedeemIn {
    pub fn parse(&self) -> Result<(CustomerId, RewardDelivery), FieldError> {
        let customer = CustomerId::parse("customer_id", &self.customer_id)?;
        let delivery = match self.delivery.as_deref() {
            None | Some("code") => RewardDelivery::Code,
            Some("offer") => RewardDelivery::Offer,
            Some(other) => return Err(FieldError::new("delivery", format!("{other:?}: expected code or offer"))),
        };
        Ok((customer, delivery))
    }
}

pub fn reward_redeemed(r: &RewardRedeemed) -> Value {
    json!({
        "redemption_id": r.redemption_id,
        "reward_id": RewardId::from_key(r.reward.id).to_string(),
        "customer_id": r.customer.to_string(),
        "points": r.points.get(),
        "available": r.available_after.get(),
        "customer_uses": r.customer_uses,
        "code": r.code.as_ref().map(|c| c.as_str()),
        "offer": reward_offer(&r.reward),
    })
}

// ----- punch cards -----

pub fn punch_cards(cards: &[PunchCardView]) -> Value {
    let items = cards
        .iter()
        .map(|c| {
            json!({
                "card": c.card,
                "stamps_needed": c.stamps_needed,
                "stamps": c.live_stamps,
                "completed": c.completed,
                "reward": c.reward,
                "codes": c.codes.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect();
    page(items, None)
}

// ----- coupon holds -----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CouponHoldIn {
    pub customer_id: String,
    pub ttl_seconds: i64,
}

impl CouponHoldIn {
    pub fn parse(&self, now: DateTime<Utc>) -> Result<(CustomerId, DateTime<Utc>), FieldError> {
        let customer = CustomerId::parse("customer_id", &self.customer_id)?;
        if !(1..=86_400).contains(&self.ttl_seconds) {
            return Err(FieldError::new("ttl_seconds", "between 1 and 86400 (a day)"));
        }
        Ok((customer, now + chrono::Duration::seconds(self.ttl_seconds)))
    }
}

pub fn coupon_hold(h: &CouponHold) -> Value {
    json!({
        "id": CouponHoldId::from_key(h.id).to_string(),
        "code": h.code.as_str(),
        "customer_id": h.customer.to_string(),
        "status": h.status,
        "placed_at": time(h.placed_at),
        "expires_at": time(h.expires_at),
        "redemption_id": h.redemption_id,
    })
}

// ----- promotions and pricing -----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromotionIn {
    pub name: String,
    /// Exactly one of `percent_off`, `amount_off_minor`, or `buy` with `get` (the `get` cheapest of every
    /// `buy + get` are `get_percent_off` off, 100 by default).
    pub percent_off: Option<u32>,
    pub amount_off_minor: Option<i64>,
    pub buy: Option<u32>,
    pub get: Option<u32>,
    pub get_percent_off: Option<u32>,
    /// Only lines of this SKU, or of this category (at most one of the two).
    pub sku: Option<String>,
    pub category: Option<String>,
    /// `combinable` (the default) or `exclusive`.
    pub stacking: Option<String>,
    #[serde(default)]
    pub minimum_minor: i64,
    pub currency: String,
    /// Only customers in one of these tiers (everyone when empty).
    #[serde(default)]
    pub tiers: Vec<String>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
}

impl PromotionIn {
    pub fn parse(self) -> Result<StoredPromotion, FieldError> {
        let kind = match (self.percent_off, self.amount_off_minor, self.buy, self.get) {
            (Some(percent), None, None, None) => PromotionKind::PercentOff { percent },
            (None, Some(minor), None, None) => PromotionKind::AmountOff { minor },
            (None, None, Some(buy), Some(get)) => {
                PromotionKind::BuyXGetY { buy, get, percent_off: self.get_percent_off.unwrap_or(100) }
            }
            (None, None, Some(_), None) => return Err(FieldError::new("get", "is required with buy")),
            (None, None, None, Some(_)) => return Err(FieldError::new("buy", "is required with get")),
            _ => {
                return Err(FieldError::new(
                    "percent_off",
                    "give exactly one of percent_off, amount_off_minor, or buy with get",
                ));
            }
        };
        if self.get_percent_off.is_some() && self.buy.is_none() {
            return Err(FieldError::new("get_percent_off", "only with buy and get"));
        }
        let target = match (&self.sku, &self.category) {
            (Some(sku), None) => Some(Matches::Sku(Sku::parse("sku", sku)?)),
            (None, Some(c)) => Some(Matches::Category(bounded_text("category", c, 200)?)),
            (None, None) => None,
            (Some(_), Some(_)) => return Err(FieldError::new("category", "give sku or category, not both")),
        };
        let stacking = match self.stacking.as_deref() {
            None | Some("combinable") => Stacking::Combinable,
            Some("exclusive") => Stacking::Exclusive,
            Some(other) => {
                return Err(FieldError::new("stacking", format!("{other:?}: expected combinable or exclusive")));
            }
        };
        if self.minimum_minor < 0 {
            return Err(FieldError::new("minimum_minor", "must not be negative"));
        }
        let name = bounded_text("name", &self.name, 200)?;
        let promotion = Promotion::new(&name, kind, target, stacking, self.minimum_minor)?;
        let tiers = self
            .tiers
            .iter()
            .enumerate()
            .map(|(i, t)| bounded_text(&format!("tiers[{i}]"), t, 64))
            .collect::<Result<Vec<_>, _>>()?;
        let (valid_from, valid_until) = window(self.valid_from.as_deref(), self.valid_until.as_deref())?;
        Ok(StoredPromotion {
            id: 0,
            promotion,
            currency: Currency::parse("currency", &self.currency)?,
            tiers,
            valid_from,
            valid_until,
        })
    }
}

fn promotion_offer(p: &Promotion, currency: Currency) -> Value {
    let mut out = match p.kind {
        PromotionKind::AmountOff { minor } => json!({ "amount_off": money(Money::new(minor, currency)) }),
        PromotionKind::PercentOff { percent } => json!({ "percent_off": percent }),
        PromotionKind::BuyXGetY { buy, get, percent_off } => {
            json!({ "buy": buy, "get": get, "get_percent_off": percent_off })
        }
        PromotionKind::FreeUnits { units } => json!({ "free_units": units }),
    };
    match &p.target {
        Some(Matches::Sku(s)) => out["sku"] = s.as_str().into(),
        Some(Matches::Category(c)) => out["category"] = c.as_str().into(),
        None => {}
    }
    out
}

pub fn promotion(p: &StoredPromotion) -> Value {
    json!({
        "id": PromotionId::from_key(p.id).to_string(),
        "name": p.promotion.name,
        "offer": promotion_offer(&p.promotion, p.currency),
        "stacking": match p.promotion.stacking { Stacking::Exclusive => "exclusive", Stacking::Combinable => "combinable" },
        "minimum": money(Money::new(p.promotion.minimum_minor, p.currency)),
        "tiers": p.tiers,
        "valid_from": p.valid_from.map(time),
        "valid_until": p.valid_until.map(time),
    })
}

pub fn promotions(list: &[StoredPromotion]) -> Value {
    page(list.iter().map(promotion).collect(), None)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CartLineIn {
    pub sku: String,
    pub category: Option<String>,
    pub quantity: i64,
    pub unit_price_minor: i64,
    /// Optional; the cart's currency when absent, and it must be the cart's.
    pub currency: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceIn {
    pub customer_id: Option<String>,
    pub currency: String,
    pub lines: Vec<CartLineIn>,
    #[serde(default)]
    pub coupons: Vec<String>,
}

/// A cart as the pricing function takes it.
pub struct Cart {
    pub customer: Option<CustomerId>,
    pub currency: Currency,
    pub lines: Vec<OrderLine>,
    pub categories: BTreeMap<Sku, String>,
    pub coupons: Vec<regulars_core::loyalty::coupons::CouponCode>,
}

impl PriceIn {
    pub fn parse(self) -> Result<Cart, FieldError> {
        let customer = opt(self.customer_id.as_deref(), |v| CustomerId::parse("customer_id", v))?;
        let currency = Currency::parse("currency", &self.currency)?;
        if self.lines.is_empty() {
            return Err(FieldError::new("lines", "a cart has at least one line"));
        }
        let mut lines = Vec::with_capacity(self.lines.len());
        let mut categories = BTreeMap::new();
        for (i, l) in self.lines.into_iter().enumerate() {
            let parsed = (|| {
                if let Some(code) = l.currency.as_deref()
                    && Currency::parse("currency", code)? != currency
                {
                    return Err(FieldError::new("currency", "every line is in the cart's currency"));
                }
                let sku = Sku::parse("sku", &l.sku)?;
                if let Some(c) = l.category.as_deref() {
                    categories.insert(sku.clone(), bounded_text("category", c, 200)?);
                }
                OrderLine::new(sku, None, Quantity::new("quantity", l.quantity)?, l.unit_price_minor, 0)
            })();
            lines.push(parsed.map_err(|e| e.within(&format!("lines[{i}].")))?);
        }
        let coupons = self
            .coupons
            .iter()
            .enumerate()
            .map(|(i, c)| regulars_core::loyalty::coupons::CouponCode::parse(&format!("coupons[{i}]"), c))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Cart { customer, currency, lines, categories, coupons })
    }
}

/// What became of a coupon given to the pricing.
pub struct CouponPricing {
    pub code: String,
    pub refusal: Option<regulars_core::loyalty::Refusal>,
    pub gift: Option<String>,
}

pub fn priced(currency: Currency, p: &Priced, coupons: &[CouponPricing]) -> Value {
    let lines: Vec<Value> = p
        .lines
        .iter()
        .map(|l| {
            json!({
                "sku": l.sku.as_str(),
                "quantity": l.quantity.get(),
                "unit_price_minor": l.unit_price_minor,
                "gross_minor": l.unit_price_minor * i64::from(l.quantity.get()),
                "discount_minor": l.discount_minor,
                "total_minor": l.net_minor(),
            })
        })
        .collect();
    let coupons: Vec<Value> = coupons
        .iter()
        .map(|c| {
            json!({
                "code": c.code,
                "applied": c.refusal.is_none(),
                "refusal": c.refusal.as_ref().map(|r| r.code()),
                "detail": c.refusal.as_ref().map(ToString::to_string),
                "gift": c.gift,
            })
        })
        .collect();
    json!({
        "currency": currency.code(),
        "lines": lines,
        "applied": p.applied.iter().map(|a| json!({ "name": a.name, "discount_minor": a.discount_minor })).collect::<Vec<_>>(),
        "coupons": coupons,
        "discount_minor": p.discount_minor,
        "total_minor": p.total_minor,
        "explanation": p.explanation,
    })
}

// ----- sales -----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaleIn {
    pub name: String,
    pub starts_at: String,
    pub ends_at: String,
    pub early_access_from: String,
    /// The tiers with early access.
    #[serde(default)]
    pub tiers: Vec<String>,
    /// The RFM segments (of the latest analytics snapshot) with early access; with `tiers`, at least one.
    #[serde(default)]
    pub segments: Vec<String>,
}

impl SaleIn {
    pub fn parse(self) -> Result<Sale, FieldError> {
        let starts_at = parse_time("starts_at", &self.starts_at)?;
        let ends_at = parse_time("ends_at", &self.ends_at)?;
        let early_access_from = parse_time("early_access_from", &self.early_access_from)?;
        if ends_at <= starts_at {
            return Err(FieldError::new("ends_at", "must be after starts_at"));
        }
        if early_access_from > starts_at {
            return Err(FieldError::new("early_access_from", "must not be after starts_at"));
        }
        if self.tiers.is_empty() && self.segments.is_empty() {
            return Err(FieldError::new("tiers", "name at least one tier or segment with early access"));
        }
        let tiers = self
            .tiers
            .iter()
            .enumerate()
            .map(|(i, t)| bounded_text(&format!("tiers[{i}]"), t, 64))
            .collect::<Result<Vec<_>, _>>()?;
        let segments = self
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if SEGMENT_NAMES.contains(&s.as_str()) {
                    Ok(s.clone())
                } else {
                    Err(FieldError::new(
                        format!("segments[{i}]"),
                        format!("unknown segment {s:?}; segments: {SEGMENT_NAMES:?}"),
                    ))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Sale {
            id: 0,
            name: bounded_text("name", &self.name, 200)?,
            starts_at,
            ends_at,
            early_access_from,
            tiers,
            segments,
        })
    }
}

pub fn sale(s: &Sale) -> Value {
    json!({
        "id": SaleId::from_key(s.id).to_string(),
        "name": s.name,
        "starts_at": time(s.starts_at),
        "ends_at": time(s.ends_at),
        "early_access_from": time(s.early_access_from),
        "tiers": s.tiers,
        "segments": s.segments,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessTokenIn {
    pub customer_id: String,
}

/// An issued token, with the tier and the segment (latest snapshot) the customer had at the grant.
pub fn access_token(sale: &Sale, customer: CustomerId, grant: &SaleGrant, token: &str) -> Value {
    json!({
        "sale_id": SaleId::from_key(sale.id).to_string(),
        "customer_id": customer.to_string(),
        "tier": grant.tier,
        "segment": grant.segment,
        "token": token,
        "valid_from": time(sale.early_access_from),
        "valid_until": time(sale.ends_at),
    })
}

pub fn access(sale: &Sale, customer: CustomerId, now: DateTime<Utc>) -> Value {
    json!({
        "valid": true,
        "sale_id": SaleId::from_key(sale.id).to_string(),
        "customer_id": customer.to_string(),
        "early": now < sale.starts_at,
    })
}
