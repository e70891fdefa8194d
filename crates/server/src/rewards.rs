//! Rewards, punch cards, held coupon redemptions and VIP early access over the API.
//!
//! Every write takes `Idempotency-Key` (`idempotency::run`); refusals are `409` problems with the refusal's
//! code. A reward redemption's ledger request id comes from the `Idempotency-Key` like any spending.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use hmac::{Hmac, Mac};
use regulars_core::loyalty::Refusal;
use regulars_core::{CouponHoldId, CustomerId, RewardId, SaleId};
use sha2::Sha256;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::handlers::customer_id;
use crate::idempotency::{self, json_response};
use crate::json::ApiJson;
use crate::loyalty::coupon_code;
use crate::wire;

fn reward_id(raw: &str) -> ApiResult<i64> {
    raw.parse::<RewardId>().map(RewardId::key).map_err(|()| ApiError::not_found(format!("reward {raw:?}")))
}

// ----- rewards -----

pub async fn create_reward(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    uri: Uri,
    body: ApiJson<wire::RewardIn>,
) -> ApiResult<Response> {
    let (reward, currency) = body.value.parse()?;
    let now = (state.clock)();
    let render = |r: &regulars_store::StoredReward| (StatusCode::CREATED, wire::reward(r));
    idempotency::run(&state, &caller, &headers, ("POST", uri.path(), &body.bytes), render, |idem| {
        state.store.create_reward(reward, currency, now, idem)
    })
    .await
}

pub async fn rewards(State(state): State<AppState>) -> ApiResult<Response> {
    let list = state.store.rewards().await?;
    Ok(json_response(StatusCode::OK, wire::rewards(&list).to_string()))
}

pub async fn redeem_reward(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: ApiJson<wire::RewardRedeemIn>,
) -> ApiResult<Response> {
    let id = reward_id(&id)?;
    let (customer, delivery) = body.value.parse()?;
    let request = crate::loyalty::request_id(&caller, &headers);
    let now = (state.clock)();
    let render = |r: &regulars_store::RewardRedeemed| (StatusCode::OK, wire::reward_redeemed(r));
    idempotency::run(&state, &caller, &headers, ("POST", uri.path(), &body.bytes), render, |idem| {
        state.store.redeem_reward(id, customer, request, delivery, now, idem)
    })
    .await
}

// ----- punch cards -----

pub async fn punch_cards(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let customer = customer_id(&id)?;
    let cards = state
        .store
        .punch_cards(customer, (state.clock)())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("customer {customer}")))?;
    Ok(json_response(StatusCode::OK, wire::punch_cards(&cards).to_string()))
}

// ----- coupon holds -----

pub async fn hold_coupon(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(code): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: ApiJson<wire::CouponHoldIn>,
) -> ApiResult<Response> {
    let code = coupon_code(&code)?;
    let now = (state.clock)();
    let (customer, expires_at) = body.value.parse(now)?;
    let render = |h: &regulars_store::CouponHold| (StatusCode::CREATED, wire::coupon_hold(h));
    idempotency::run(&state, &caller, &headers, ("POST", uri.path(), &body.bytes), render, |idem| {
        state.store.hold_coupon(code, customer, expires_at, now, idem)
    })
    .await
}

async fn resolve_hold(
    state: AppState,
    caller: Caller,
    id: String,
    headers: HeaderMap,
    uri: Uri,
    confirm: bool,
) -> ApiResult<Response> {
    let id = id.parse::<CouponHoldId>().map_err(|()| ApiError::not_found(format!("coupon hold {id:?}")))?.key();
    let now = (state.clock)();
    let render = |h: &regulars_store::CouponHold| (StatusCode::OK, wire::coupon_hold(h));
    idempotency::run(&state, &caller, &headers, ("POST", uri.path(), b""), render, |idem| {
        state.store.resolve_coupon_hold(id, confirm, now, idem)
    })
    .await
}

pub async fn confirm_hold(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    resolve_hold(state, caller, id, headers, uri, true).await
}

pub async fn release_hold(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    resolve_hold(state, caller, id, headers, uri, false).await
}

// ----- VIP early access -----

/// The name of the secret signing access tokens in `server_secrets`.
const ACCESS_SECRET: &str = "sale_access_hmac";

fn sale_id(raw: &str) -> ApiResult<SaleId> {
    raw.parse::<SaleId>().map_err(|()| ApiError::not_found(format!("sale {raw:?}")))
}

async fn sale_of(state: &AppState, id: SaleId) -> ApiResult<regulars_store::Sale> {
    state.store.sale(id.key()).await?.ok_or_else(|| ApiError::not_found(format!("sale {id}")))
}

/// The signature of `payload`: HMAC-SHA256 under the server's secret, in hex.
fn sign(secret: &str, payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(b"regulars sale access\0");
    mac.update(payload.as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a token `<sale>.<customer>.<signature>` in constant time; returns the sale and customer it names.
fn verify(secret: &str, token: &str) -> Option<(SaleId, CustomerId)> {
    let (payload, signature) = token.rsplit_once('.')?;
    let (sale, customer) = payload.split_once('.')?;
    let bytes: Vec<u8> = (0..signature.len())
        .step_by(2)
        .map(|i| signature.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect::<Option<_>>()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(b"regulars sale access\0");
    mac.update(payload.as_bytes());
    mac.verify_slice(&bytes).ok()?;
    Some((sale.parse().ok()?, customer.parse().ok()?))
}

pub async fn create_sale(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    uri: Uri,
    body: ApiJson<wire::SaleIn>,
) -> ApiResult<Response> {
    let sale = body.value.parse()?;
    let now = (state.clock)();
    let render = |s: &regulars_store::Sale| (StatusCode::CREATED, wire::sale(s));
    idempotency::run(&state, &caller, &headers, ("POST", uri.path(), &body.bytes), render, |idem| {
        state.store.create_sale(sale, now, idem)
    })
    .await
}

/// Issues a signed early-access token to a customer whose tier the sale names, or whose segment in the latest
/// analytics snapshot it names, and records the grant (the statement writing it is what checks that, so a
/// refusal is `sale_not_for_tier` from the store). The token is a function of the sale, the customer and the
/// secret, so issuing it again gives the same token.
pub async fn issue_access_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: ApiJson<wire::AccessTokenIn>,
) -> ApiResult<Response> {
    let sale = sale_of(&state, sale_id(&id)?).await?;
    let customer = CustomerId::parse("customer_id", &body.value.customer_id)?;
    let now = (state.clock)();
    if state.store.customer_tier(customer).await?.is_none() {
        return Err(ApiError::field(ErrorCode::NotFound, "customer_id", format!("customer {customer} does not exist")));
    }
    if now >= sale.ends_at {
        return Err(ApiError::from(Refusal::SaleNotOpen));
    }
    let secret = state.store.ensure_secret(ACCESS_SECRET, now).await?;
    let payload = format!("{}.{customer}", SaleId::from_key(sale.id));
    let token = format!("{payload}.{}", sign(&secret, &payload));
    let shown = sale.clone();
    let render =
        move |g: &regulars_store::SaleGrant| (StatusCode::CREATED, wire::access_token(&shown, customer, g, &token));
    idempotency::run(&state, &caller, &headers, ("POST", uri.path(), &body.bytes), render, |idem| {
        state.store.grant_sale_access(sale, customer, now, idem)
    })
    .await
}

/// Checks a token: signed by this server, for this sale, and inside the sale's window (early access from
/// `early_access_from` until the sale ends).
pub async fn check_access(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<std::collections::BTreeMap<String, String>>,
) -> ApiResult<Response> {
    let id = sale_id(&id)?;
    if let Some(unknown) = params.keys().find(|k| k.as_str() != "token") {
        return Err(ApiError::field(
            ErrorCode::InvalidField,
            unknown.clone(),
            format!("unknown query parameter {unknown:?}"),
        ));
    }
    let token = params
        .get("token")
        .ok_or_else(|| ApiError::field(ErrorCode::InvalidField, "token", "the token query parameter is required"))?;
    let sale = sale_of(&state, id).await?;
    let secret = state.store.secret(ACCESS_SECRET).await?;
    let Some((token_sale, customer)) = secret.as_deref().and_then(|s| verify(s, token)) else {
        return Err(ApiError::from(Refusal::AccessTokenInvalid));
    };
    if token_sale != id {
        return Err(ApiError::from(Refusal::AccessTokenInvalid));
    }
    let now = (state.clock)();
    if now < sale.early_access_from || now >= sale.ends_at {
        return Err(ApiError::from(Refusal::SaleNotOpen));
    }
    Ok(json_response(StatusCode::OK, wire::access(&sale, customer, now).to_string()))
}
