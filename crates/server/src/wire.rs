//! The JSON shapes of the API and their conversion to and from domain types. Domain types do not
//! derive `Serialize`: the wire format is decided here, and only here.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use regulars_core::customer::{parse_attributes, parse_birthday, parse_locale, parse_name, parse_time_zone};
use regulars_core::loyalty::earning::OrderEarning;
use regulars_core::loyalty::{Balances, Command, HoldId, LotSource, LotState, Points, Refusal, StatementLine};
use regulars_core::order::CustomerRef;
use regulars_core::text::bounded_text;
use regulars_core::{
    Consent, Currency, Customer, CustomerDraft, CustomerId, CustomerPatch, Email, ExternalId, FieldError, Money, Order,
    OrderDraft, OrderId, OrderLine, Phone, Product, ProductDraft, Quantity, Refund, RefundDraft, RefundDraftKind,
    RefundLine, Sku,
};
use regulars_store::{
    ApiKey, CouponBatch, CouponBatchDraft, CouponOffer, CouponRedeemed, CouponState, CustomerExport, LedgerReceipt,
    ProgramVersion, WalletView,
};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

pub fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn parse_time(field: &str, raw: &str) -> Result<DateTime<Utc>, FieldError> {
    DateTime::parse_from_rfc3339(raw).map(|t| t.with_timezone(&Utc)).map_err(|_| {
        FieldError::new(
            field,
            format!("{raw:?} is not an RFC 3339 date and time that exists, e.g. 2026-03-01T09:30:00Z"),
        )
    })
}

pub fn money(m: Money) -> Value {
    json!({ "amount_minor": m.minor, "currency": m.currency.code() })
}

/// Distinguishes a field that is absent (`None`) from one set to `null` (`Some(None)`).
fn double_option<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn opt<T>(value: Option<&str>, parse: impl FnOnce(&str) -> Result<T, FieldError>) -> Result<Option<T>, FieldError> {
    value.map(parse).transpose()
}

// ----- customers -----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketingConsentIn {
    pub granted: bool,
    pub source: Option<String>,
    /// When consent was given; the time of the request when absent.
    pub recorded_at: Option<String>,
}

impl MarketingConsentIn {
    fn parse(self, now: DateTime<Utc>) -> Result<Consent, FieldError> {
        Ok(Consent {
            marketing: self.granted,
            recorded_at: Some(
                opt(self.recorded_at.as_deref(), |v| parse_time("marketing_consent.recorded_at", v))?.unwrap_or(now),
            ),
            source: opt(self.source.as_deref(), |v| bounded_text("marketing_consent.source", v, 100))?,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerIn {
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub name: Option<String>,
    pub birthday: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    pub marketing_consent: Option<MarketingConsentIn>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// The customer who referred this one (`cus_7`), for the program's referral bonus.
    pub referred_by: Option<String>,
}

impl CustomerIn {
    pub fn parse(self, now: DateTime<Utc>) -> Result<CustomerDraft, FieldError> {
        Ok(CustomerDraft {
            external_id: opt(self.external_id.as_deref(), |v| ExternalId::parse("external_id", v))?,
            email: opt(self.email.as_deref(), |v| Email::parse("email", v))?,
            phone: opt(self.phone.as_deref(), |v| Phone::parse("phone", v))?,
            name: opt(self.name.as_deref(), |v| parse_name("name", v))?,
            birthday: opt(self.birthday.as_deref(), |v| parse_birthday("birthday", v, now.date_naive()))?,
            locale: opt(self.locale.as_deref(), |v| parse_locale("locale", v))?,
            time_zone: opt(self.time_zone.as_deref(), |v| parse_time_zone("time_zone", v))?,
            consent: self.marketing_consent.map(|c| c.parse(now)).transpose()?.unwrap_or_default(),
            attributes: parse_attributes("attributes", self.attributes)?,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatchIn {
    #[serde(default, deserialize_with = "double_option")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub birthday: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub locale: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub time_zone: Option<Option<String>>,
    pub marketing_consent: Option<MarketingConsentIn>,
    pub attributes: Option<BTreeMap<String, String>>,
}

impl CustomerPatchIn {
    pub fn parse(self, now: DateTime<Utc>) -> Result<CustomerPatch, FieldError> {
        fn field<T>(
            v: Option<Option<String>>,
            parse: impl FnOnce(&str) -> Result<T, FieldError>,
        ) -> Result<Option<Option<T>>, FieldError> {
            v.map(|inner| inner.as_deref().map(parse).transpose()).transpose()
        }
        Ok(CustomerPatch {
            email: field(self.email, |v| Email::parse("email", v))?,
            phone: field(self.phone, |v| Phone::parse("phone", v))?,
            name: field(self.name, |v| parse_name("name", v))?,
            birthday: field(self.birthday, |v| parse_birthday("birthday", v, now.date_naive()))?,
            locale: field(self.locale, |v| parse_locale("locale", v))?,
            time_zone: field(self.time_zone, |v| parse_time_zone("time_zone", v))?,
            consent: self.marketing_consent.map(|c| c.parse(now)).transpose()?,
            attributes: self.attributes.map(|a| parse_attributes("attributes", a)).transpose()?,
        })
    }
}

pub fn customer(c: &Customer) -> Value {
    json!({
        "id": c.id.to_string(),
        "external_id": c.external_id.as_ref().map(ToString::to_string),
        "email": c.email.as_ref().map(|e| e.as_str()),
        "phone": c.phone.as_ref().map(|p| p.as_str()),
        "name": c.name,
        "birthday": c.birthday.map(|b: NaiveDate| b.to_string()),
        "locale": c.locale,
        "time_zone": c.time_zone,
        "marketing_consent": {
            "granted": c.consent.marketing,
            "recorded_at": c.consent.recorded_at.map(time),
            "source": c.consent.source,
        },
        "attributes": c.attributes,
        "first_seen_at": time(c.first_seen_at),
        "erased_at": c.erased_at.map(time),
    })
}

// ----- products -----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductIn {
    pub sku: String,
    pub name: String,
    pub category: Option<String>,
    pub price_minor: Option<i64>,
    pub currency: Option<String>,
}

impl ProductIn {
    pub fn parse(self) -> Result<ProductDraft, FieldError> {
        let price = match (self.price_minor, self.currency.as_deref()) {
            (Some(minor), Some(code)) if minor >= 0 => Some(Money::new(minor, Currency::parse("currency", code)?)),
            (Some(minor), Some(_)) => {
                return Err(FieldError::new("price_minor", format!("must not be negative, got {minor}")));
            }
            (None, None) => None,
            (Some(_), None) => return Err(FieldError::new("currency", "is required with price_minor")),
            (None, Some(_)) => return Err(FieldError::new("price_minor", "is required with currency")),
        };
        Ok(ProductDraft {
            sku: Sku::parse("sku", &self.sku)?,
            name: bounded_text("name", &self.name, 200)?,
            category: opt(self.category.as_deref(), |v| bounded_text("category", v, 100))?,
            price,
        })
    }
}

pub fn product(p: &Product) -> Value {
    json!({
        "id": p.id.to_string(),
        "sku": p.sku.as_str(),
        "name": p.name,
        "category": p.category,
        "price": p.price.map(money),
    })
}

// ----- orders -----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderLineIn {
    pub sku: String,
    pub name: Option<String>,
    pub quantity: i64,
    pub unit_price_minor: i64,
    #[serde(default)]
    pub discount_minor: i64,
}

/// An order's lines, each error named by its line (`lines[1].quantity`).
fn order_lines(lines: Vec<OrderLineIn>) -> Result<Vec<OrderLine>, FieldError> {
    lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let parsed = (|| {
                let name = opt(l.name.as_deref(), |v| bounded_text("name", v, 200))?;
                OrderLine::new(
                    Sku::parse("sku", &l.sku)?,
                    name,
                    Quantity::new("quantity", l.quantity)?,
                    l.unit_price_minor,
                    l.discount_minor,
                )
            })();
            parsed.map_err(|e| e.within(&format!("lines[{i}].")))
        })
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderIn {
    pub external_id: Option<String>,
    pub customer_id: Option<String>,
    pub customer_external_id: Option<String>,
    pub placed_at: String,
    pub currency: String,
    pub lines: Vec<OrderLineIn>,
}

impl OrderIn {
    pub fn parse(self) -> Result<OrderDraft, FieldError> {
        let customer = match (self.customer_id.as_deref(), self.customer_external_id.as_deref()) {
            (Some(id), None) => CustomerRef::Id(CustomerId::parse("customer_id", id)?),
            (None, Some(ext)) => CustomerRef::External(ExternalId::parse("customer_external_id", ext)?),
            (Some(_), Some(_)) => {
                return Err(FieldError::new("customer_id", "give customer_id or customer_external_id, not both"));
            }
            (None, None) => {
                return Err(FieldError::new("customer_id", "customer_id or customer_external_id is required"));
            }
        };
        let lines = order_lines(self.lines)?;
        OrderDraft::new(
            opt(self.external_id.as_deref(), |v| ExternalId::parse("external_id", v))?,
            customer,
            parse_time("placed_at", &self.placed_at)?,
            Currency::parse("currency", &self.currency)?,
            lines,
        )
    }
}

pub fn order(o: &Order) -> Value {
    json!({
        "id": o.id.to_string(),
        "external_id": o.external_id.as_ref().map(ToString::to_string),
        "customer_id": o.customer_id.to_string(),
        "placed_at": time(o.placed_at),
        "currency": o.currency.code(),
        "total": money(Money::new(o.total_minor, o.currency)),
        "refunded": money(Money::new(o.refunded_minor, o.currency)),
        "lines": o.lines.iter().map(|l| json!({
            "sku": l.sku.as_str(),
            "name": l.name,
            "quantity": l.quantity.get(),
            "unit_price_minor": l.unit_price_minor,
            "discount_minor": l.discount_minor,
            "net_minor": l.net_minor(),
        })).collect::<Vec<_>>(),
    })
}

// ----- refunds -----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundLineIn {
    /// The position of the line in the order, from 0.
    pub line: usize,
    pub quantity: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundIn {
    pub external_id: Option<String>,
    pub refunded_at: Option<String>,
    pub reason: Option<String>,
    /// Which lines and how many; absent means everything not yet refunded.
    pub lines: Option<Vec<RefundLineIn>>,
}

impl RefundIn {
    pub fn parse(self, order_id: OrderId, now: DateTime<Utc>) -> Result<RefundDraft, FieldError> {
        let kind = match self.lines {
            None => RefundDraftKind::Whole,
            Some(lines) if lines.is_empty() => {
                return Err(FieldError::new("lines", "leave lines out to refund everything"));
            }
            Some(lines) => RefundDraftKind::Lines(
                lines
                    .into_iter()
                    .enumerate()
                    .map(|(i, l)| {
                        let quantity = u32::try_from(l.quantity).ok().filter(|q| *q > 0).ok_or_else(|| {
                            FieldError::new(
                                format!("lines[{i}].quantity"),
                                format!("must be at least 1, got {}", l.quantity),
                            )
                        })?;
                        Ok(RefundLine { line: l.line, quantity, amount_minor: 0 })
                    })
                    .collect::<Result<_, FieldError>>()?,
            ),
        };
        Ok(RefundDraft {
            external_id: opt(self.external_id.as_deref(), |v| ExternalId::parse("external_id", v))?,
            order_id,
            refunded_at: opt(self.refunded_at.as_deref(), |v| parse_time("refunded_at", v))?.unwrap_or(now),
            reason: opt(self.reason.as_deref(), |v| bounded_text("reason", v, 500))?,
            kind,
        })
    }
}

pub fn refund(r: &Refund, currency: Currency) -> Value {
    json!({
        "id": r.id.to_string(),
        "external_id": r.external_id.as_ref().map(ToString::to_string),
        "order_id": r.order_id.to_string(),
        "refunded_at": time(r.refunded_at),
        "reason": r.reason,
        "amount": money(Money::new(r.amount_minor, currency)),
        "lines": r.lines.iter().map(|l| json!({"line": l.line, "quantity": l.quantity, "amount_minor": l.amount_minor})).collect::<Vec<_>>(),
    })
}

pub fn export(e: &CustomerExport) -> Value {
    let currency_of = |order_id: OrderId| e.orders.iter().find(|o| o.id == order_id).map(|o| o.currency);
    json!({
        "customer": customer(&e.customer),
        "orders": e.orders.iter().map(order).collect::<Vec<_>>(),
        "refunds": e.refunds.iter().filter_map(|r| Some(refund(r, currency_of(r.order_id)?))).collect::<Vec<_>>(),
    })
}

// ----- keys -----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyIn {
    pub name: String,
    pub role: String,
}

pub fn api_key(k: &ApiKey) -> Value {
    json!({
        "prefix": k.prefix,
        "name": k.name,
        "role": k.role.as_str(),
        "created_at": time(k.created_at),
        "revoked_at": k.revoked_at.map(time),
    })
}

/// A page of results with the cursor of the next page (`null` on the last).
pub fn page(items: Vec<Value>, next_cursor: Option<String>) -> Value {
    json!({ "items": items, "next_cursor": next_cursor })
}

// ----- loyalty -----

/// `points` as a request field: a whole number of at least 1.
fn points(field: &str, n: i64) -> Result<Points, FieldError> {
    Points::parse_positive(field, n)
}

fn note(field: &str, raw: Option<&str>) -> Result<Option<String>, FieldError> {
    opt(raw, |v| bounded_text(field, v, 500))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedeemIn {
    pub points: i64,
    pub reason: Option<String>,
}

impl RedeemIn {
    pub fn parse(self) -> Result<Command, FieldError> {
        Ok(Command::Redeem { points: points("points", self.points)?, note: note("reason", self.reason.as_deref())? })
    }
}

/// The longest a checkout may hold points.
pub const MAX_HOLD_SECONDS: i64 = 30 * 24 * 3600;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldIn {
    pub points: i64,
    pub ttl_seconds: i64,
}

impl HoldIn {
    pub fn parse(self, now: DateTime<Utc>) -> Result<Command, FieldError> {
        if !(1..=MAX_HOLD_SECONDS).contains(&self.ttl_seconds) {
            return Err(FieldError::new(
                "ttl_seconds",
                format!("must be between 1 and {MAX_HOLD_SECONDS} seconds, got {}", self.ttl_seconds),
            ));
        }
        Ok(Command::PlaceHold {
            points: points("points", self.points)?,
            expires_at: now + chrono::Duration::seconds(self.ttl_seconds),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureIn {
    /// How many of the hold's points to spend; all of them when absent.
    pub points: Option<i64>,
}

impl CaptureIn {
    pub fn parse(self, hold: HoldId) -> Result<Command, FieldError> {
        Ok(Command::Capture { hold, points: self.points.map(|n| points("points", n)).transpose()? })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdjustIn {
    /// Positive adds a lot of available points; negative spends available points.
    pub points: i64,
    pub reason: String,
}

impl AdjustIn {
    pub fn parse(self) -> Result<Command, FieldError> {
        if self.points == 0 || self.points.unsigned_abs() > Points::MAX_REQUEST as u64 {
            return Err(FieldError::new(
                "points",
                format!("must be between -10^12 and 10^12 and not 0, got {}", self.points),
            ));
        }
        let note = bounded_text("reason", &self.reason, 500)?;
        Ok(Command::Adjust { points: Points::new(self.points), note, expires_at: None })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunIn {
    pub customer_id: Option<String>,
    pub currency: String,
    pub lines: Vec<OrderLineIn>,
}

impl DryRunIn {
    pub fn parse(self) -> Result<(Option<CustomerId>, Currency, Vec<OrderLine>), FieldError> {
        let customer = opt(self.customer_id.as_deref(), |v| CustomerId::parse("customer_id", v))?;
        let currency = Currency::parse("currency", &self.currency)?;
        if self.lines.is_empty() {
            return Err(FieldError::new("lines", "an order has at least one line"));
        }
        let lines = order_lines(self.lines)?;
        Ok((customer, currency, lines))
    }
}

fn balances(b: &Balances) -> Value {
    json!({
        "available": b.available.get(),
        "pending": b.pending.get(),
        "held": b.held.get(),
        "owed": b.owed().get(),
    })
}

fn lot(l: &LotState) -> Value {
    let (source, order) = match &l.lot.source {
        LotSource::Order(o) => ("order", Some(o.id.to_string())),
        LotSource::Award => ("award", None),
        LotSource::Adjustment => ("adjustment", None),
    };
    json!({
        "lot": l.lot.id.0,
        "points": l.lot.points.get(),
        "remaining": l.remaining.get(),
        "status": if l.matured { "available" } else { "pending" },
        "earned_at": time(l.lot.earned_at),
        "available_from": time(l.lot.available_from),
        "expires_at": l.lot.expires_at.map(time),
        "source": source,
        "order_id": order,
    })
}

/// `GET /customers/{id}/wallet`: `{"available", "pending", "held", "tier", "lots"}` (and `owed`).
pub fn wallet(w: &WalletView) -> Value {
    let mut out = balances(&w.balances);
    out["customer_id"] = w.customer.to_string().into();
    out["tier"] = w.tier.clone().into();
    out["lots"] = w.lots.iter().map(lot).collect::<Vec<_>>().into();
    out
}

/// What a redemption or an adjustment did, and the wallet after it.
pub fn ledger_receipt(customer: CustomerId, r: &LedgerReceipt) -> Value {
    json!({
        "customer_id": customer.to_string(),
        "points": r.receipt.points.get(),
        "lot": r.receipt.lot.map(|l| l.0),
        "wallet": balances(&r.balances),
    })
}

/// A hold as placed, captured or voided.
pub fn hold(customer: CustomerId, r: &LedgerReceipt, status: &str, expires_at: Option<DateTime<Utc>>) -> Value {
    let mut out = json!({
        "id": r.hold.map(|h| h.to_string()),
        "customer_id": customer.to_string(),
        "status": status,
        "points": r.receipt.points.get(),
        "wallet": balances(&r.balances),
    });
    if let Some(at) = expires_at {
        out["expires_at"] = time(at).into();
    }
    out
}

pub fn statement(lines: &[StatementLine]) -> Value {
    let items: Vec<Value> = lines
        .iter()
        .map(|l| {
            json!({
                "at": time(l.at),
                "change": l.change.get(),
                "points": l.points.get(),
                "text": l.text,
                "line": l.to_string(),
            })
        })
        .collect();
    page(items, None)
}

pub fn program(p: &ProgramVersion) -> Value {
    json!({
        "version": p.version,
        "name": p.program.name,
        "currency": p.program.currency.code(),
        "defined_at": time(p.defined_at),
        "definition": p.definition,
    })
}

pub fn dry_run(
    version: i64,
    earning: &OrderEarning,
    available_from: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> Value {
    json!({
        "program_version": version,
        "points": earning.total.get(),
        "parts": earning.parts.iter().map(|p| json!({ "rule": p.reason.rule.kind(), "points": p.points.get() })).collect::<Vec<_>>(),
        "explanation": earning.explanation,
        "available_from": time(available_from),
        "expires_at": expires_at.map(time),
    })
}

// ----- coupons -----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CouponBatchIn {
    pub name: String,
    pub count: u32,
    /// Percent off the order (1 to 100), or `amount_off_minor` with `currency`.
    pub percent_off: Option<u32>,
    pub amount_off_minor: Option<i64>,
    pub currency: Option<String>,
    pub max_uses: Option<u32>,
    pub max_uses_per_customer: Option<u32>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
}

impl CouponBatchIn {
    pub fn parse(self) -> Result<CouponBatchDraft, FieldError> {
        let offer = match (self.percent_off, self.amount_off_minor, self.currency.as_deref()) {
            (Some(p), None, None) if (1..=100).contains(&p) => CouponOffer::PercentOff(p),
            (Some(p), None, None) => return Err(FieldError::new("percent_off", format!("must be 1 to 100, got {p}"))),
            (None, Some(minor), Some(code)) if minor > 0 => {
                CouponOffer::AmountOff(Money::new(minor, Currency::parse("currency", code)?))
            }
            (None, Some(minor), Some(_)) => {
                return Err(FieldError::new("amount_off_minor", format!("must be more than 0, got {minor}")));
            }
            (None, Some(_), None) => return Err(FieldError::new("currency", "is required with amount_off_minor")),
            _ => return Err(FieldError::new("percent_off", "give percent_off, or amount_off_minor with currency")),
        };
        let positive = |field: &str, v: Option<u32>| match v {
            Some(0) => Err(FieldError::new(field, "must be at least 1 (leave it out for no limit)")),
            v => Ok(v),
        };
        let valid_from = opt(self.valid_from.as_deref(), |v| parse_time("valid_from", v))?;
        let valid_until = opt(self.valid_until.as_deref(), |v| parse_time("valid_until", v))?;
        if let (Some(from), Some(until)) = (valid_from, valid_until)
            && until <= from
        {
            return Err(FieldError::new("valid_until", "must be after valid_from"));
        }
        Ok(CouponBatchDraft {
            name: bounded_text("name", &self.name, 200)?,
            offer,
            count: self.count,
            max_uses: positive("max_uses", self.max_uses)?,
            max_uses_per_customer: positive("max_uses_per_customer", self.max_uses_per_customer)?,
            valid_from,
            valid_until,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CouponRedeemIn {
    pub customer_id: String,
}

fn offer(o: &CouponOffer) -> Value {
    match o {
        CouponOffer::AmountOff(m) => json!({ "amount_off": money(*m) }),
        CouponOffer::PercentOff(p) => json!({ "percent_off": p }),
    }
}

pub fn coupon_batch(b: &CouponBatch) -> Value {
    json!({ "batch_id": b.id, "name": b.name, "codes": b.codes.iter().map(|c| c.as_str()).collect::<Vec<_>>() })
}

fn coupon_state(c: &CouponState) -> Value {
    json!({
        "code": c.code.as_str(),
        "batch_id": c.batch_id,
        "name": c.name,
        "offer": offer(&c.offer),
        "uses": c.uses,
        "max_uses": c.max_uses,
        "max_uses_per_customer": c.max_uses_per_customer,
        "valid_from": c.valid_from.map(time),
        "valid_until": c.valid_until.map(time),
    })
}

/// The dry validation of a coupon: whether a redemption now would be accepted, and if not, why.
pub fn coupon_check(c: &CouponState, refusal: Option<&Refusal>) -> Value {
    let mut out = coupon_state(c);
    out["valid"] = refusal.is_none().into();
    out["refusal"] = refusal.map(|r| r.code()).into();
    out["detail"] = refusal.map(ToString::to_string).into();
    out["customer_uses"] = c.customer_uses.into();
    out
}

pub fn coupon_redeemed(customer: CustomerId, r: &CouponRedeemed) -> Value {
    let mut out = coupon_state(&r.coupon);
    out["redemption_id"] = r.redemption_id.into();
    out["customer_id"] = customer.to_string().into();
    out["customer_uses"] = r.coupon.customer_uses.into();
    out
}

// Rewards, punch cards, coupon holds, promotions, checkout pricing and sales: their own file.
#[path = "wire_rewards.rs"]
mod rewards;
pub use rewards::*;
