//! Promotions and checkout pricing over the API: the owner defines promotions; `POST /checkout/price`
//! prices a cart with the promotions that apply to the customer now and the coupons given, using
//! `loyalty::promotions::price` (no line or total goes negative; exclusive and combinable stacking).
//! Pricing writes nothing: a coupon is used by redeeming it (or holding and confirming it).

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use regulars_core::loyalty::Refusal;
use regulars_core::loyalty::promotions::{Promotion, PromotionKind, Stacking, price};
use regulars_core::loyalty::punch::Matches;
use regulars_core::{FieldError, Sku};
use regulars_store::CouponOffer;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::idempotency::{self, json_response};
use crate::json::ApiJson;
use crate::wire;

pub async fn create_promotion(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    uri: Uri,
    body: ApiJson<wire::PromotionIn>,
) -> ApiResult<Response> {
    let promotion = body.value.parse()?;
    let now = (state.clock)();
    let render = |p: &regulars_store::StoredPromotion| (StatusCode::CREATED, wire::promotion(p));
    idempotency::run(&state, &caller, &headers, ("POST", uri.path(), &body.bytes), render, |idem| {
        state.store.create_promotion(promotion, now, idem)
    })
    .await
}

pub async fn promotions(State(state): State<AppState>) -> ApiResult<Response> {
    let list = state.store.promotions().await?;
    Ok(json_response(StatusCode::OK, wire::promotions(&list).to_string()))
}

/// Prices a cart: each line's discount and the total, the promotions applied and what became of each coupon.
pub async fn price_cart(State(state): State<AppState>, body: ApiJson<wire::PriceIn>) -> ApiResult<Response> {
    let cart = body.value.parse()?;
    let now = (state.clock)();
    let tier = match cart.customer {
        Some(c) => state.store.customer_tier(c).await?.ok_or_else(|| {
            ApiError::field(ErrorCode::NotFound, "customer_id", format!("customer {c} does not exist"))
        })?,
        None => None,
    };
    let mut promotions: Vec<Promotion> = state
        .store
        .promotions()
        .await?
        .into_iter()
        .filter(|p| p.currency == cart.currency && p.applies(tier.as_deref(), now))
        .map(|p| p.promotion)
        .collect();
    let mut coupons = Vec::new();
    for (i, code) in cart.coupons.iter().enumerate() {
        if cart.coupons[..i].contains(code) {
            return Err(FieldError::new(format!("coupons[{i}]"), "the same coupon twice").into());
        }
        let (refusal, gift) = match state.store.coupon_for_checkout(code, cart.customer, now).await? {
            None => (Some(Refusal::CouponNotFound), None),
            Some((coupon, refusal)) => match coupon_promotion(&coupon, refusal, cart.currency) {
                Ok(promotion) => {
                    promotions.extend(promotion);
                    (None, coupon.gift.map(|(what, _)| what))
                }
                Err(refusal) => (Some(refusal), None),
            },
        };
        coupons.push(wire::CouponPricing { code: code.as_str().to_owned(), refusal, gift });
    }
    let priced = price(cart.currency, &cart.lines, &cart.categories, &promotions);
    Ok(json_response(StatusCode::OK, wire::priced(cart.currency, &priced, &coupons).to_string()))
}

/// What a coupon does to the price: its offer as a combinable promotion (a gift without a SKU changes no
/// price: the till hands it over), or why it may not be used now.
fn coupon_promotion(
    coupon: &regulars_store::CouponState,
    refusal: Option<Refusal>,
    currency: regulars_core::Currency,
) -> Result<Option<Promotion>, Refusal> {
    if let Some(refusal) = refusal {
        return Err(refusal);
    }
    let name = format!("coupon {}", coupon.code.as_str());
    let (kind, target) = match (&coupon.gift, coupon.offer) {
        (Some((_, None)), _) => return Ok(None),
        (Some((_, Some(sku))), _) => {
            let sku = Sku::parse("sku", sku).map_err(|_| Refusal::CouponNotFound)?;
            (PromotionKind::FreeUnits { units: 1 }, Some(Matches::Sku(sku)))
        }
        (None, CouponOffer::PercentOff(percent)) => (PromotionKind::PercentOff { percent }, None),
        (None, CouponOffer::AmountOff(m)) if m.currency != currency => return Err(Refusal::CurrencyMismatch),
        (None, CouponOffer::AmountOff(m)) => (PromotionKind::AmountOff { minor: m.minor }, None),
    };
    Ok(Promotion::new(&name, kind, target, Stacking::Combinable, 0).ok())
}
