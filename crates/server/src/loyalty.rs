//! The loyalty endpoints: wallets, redemptions, holds, adjustments, statements, the program, the dry run and
//! coupons.
//!
//! Every write is a ledger request whose id is derived from the `Idempotency-Key` (scoped to the calling API
//! key), so a replay is recognised by the HTTP layer (the stored response) and again by the ledger; without
//! the header each call is a new request. Refusals are `409` problems carrying the refusal's code.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use rand::Rng;
use regulars_core::loyalty::{Command, Request, RequestId};
use regulars_core::{CustomerId, LoyaltyHoldId};
use regulars_store::LedgerReceipt;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::handlers::customer_id;
use crate::idempotency::{self, json_response};
use crate::json::ApiJson;
use crate::wire;

/// The ledger request id of an API call: `api:<key id>:<Idempotency-Key>`, or a random one.
pub(crate) fn request_id(caller: &Caller, headers: &HeaderMap) -> RequestId {
    let scope = caller.scope();
    let raw = match headers.get(idempotency::HEADER).and_then(|v| v.to_str().ok()) {
        Some(key) if scope.len() + key.len() + 5 <= RequestId::MAX_CHARS => format!("api:{scope}:{key}"),
        Some(key) => {
            let digest: String = Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
            format!("api:{scope}:{digest}")
        }
        None => format!("api:{scope}:{:032x}", rand::thread_rng().r#gen::<u128>()),
    };
    RequestId::parse("idempotency-key", &raw).expect("a request id within bounds")
}

/// Runs one ledger request for the caller, idempotently.
#[allow(clippy::too_many_arguments)]
async fn ledger_write(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    request: (&str, &str, &[u8]),
    customer: CustomerId,
    command: Command,
    render: impl Fn(&LedgerReceipt) -> (StatusCode, Value) + Clone + Send + 'static,
) -> ApiResult<Response> {
    let now = (state.clock)();
    let ledger_request = Request { id: request_id(caller, headers), command };
    idempotency::run(state, caller, headers, request, render, |idem| {
        state.store.ledger_execute(customer, ledger_request, now, idem)
    })
    .await
}

pub async fn wallet(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = customer_id(&id)?;
    let wallet =
        state.store.wallet(id, (state.clock)()).await?.ok_or_else(|| ApiError::not_found(format!("customer {id}")))?;
    Ok(json_response(StatusCode::OK, wire::wallet(&wallet).to_string()))
}

pub async fn statement(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = customer_id(&id)?;
    let lines = state
        .store
        .statement(id, (state.clock)())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("customer {id}")))?;
    Ok(json_response(StatusCode::OK, wire::statement(&lines).to_string()))
}

pub async fn redeem(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: ApiJson<wire::RedeemIn>,
) -> ApiResult<Response> {
    let customer = customer_id(&id)?;
    let command = body.value.parse()?;
    let render = move |r: &LedgerReceipt| (StatusCode::OK, wire::ledger_receipt(customer, r));
    ledger_write(&state, &caller, &headers, ("POST", uri.path(), &body.bytes), customer, command, render).await
}

pub async fn adjust(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: ApiJson<wire::AdjustIn>,
) -> ApiResult<Response> {
    let customer = customer_id(&id)?;
    let command = body.value.parse()?;
    let render = move |r: &LedgerReceipt| (StatusCode::OK, wire::ledger_receipt(customer, r));
    ledger_write(&state, &caller, &headers, ("POST", uri.path(), &body.bytes), customer, command, render).await
}

pub async fn place_hold(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: ApiJson<wire::HoldIn>,
) -> ApiResult<Response> {
    let customer = customer_id(&id)?;
    let command = body.value.parse((state.clock)())?;
    let Command::PlaceHold { expires_at, .. } = command else { unreachable!("a hold request places a hold") };
    let render = move |r: &LedgerReceipt| (StatusCode::CREATED, wire::hold(customer, r, "open", Some(expires_at)));
    ledger_write(&state, &caller, &headers, ("POST", uri.path(), &body.bytes), customer, command, render).await
}

/// The wallet and number of a hold named by its public id.
async fn hold_of(state: &AppState, raw: &str) -> ApiResult<(CustomerId, regulars_core::loyalty::HoldId)> {
    let id: LoyaltyHoldId = raw.parse().map_err(|()| ApiError::not_found(format!("hold {raw:?}")))?;
    state.store.hold_owner(id).await?.ok_or_else(|| ApiError::not_found(format!("hold {id}")))
}

pub async fn capture(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: ApiJson<wire::CaptureIn>,
) -> ApiResult<Response> {
    let (customer, hold) = hold_of(&state, &id).await?;
    let command = body.value.parse(hold)?;
    let render = move |r: &LedgerReceipt| (StatusCode::OK, wire::hold(customer, r, "captured", None));
    ledger_write(&state, &caller, &headers, ("POST", uri.path(), &body.bytes), customer, command, render).await
}

pub async fn void(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let (customer, hold) = hold_of(&state, &id).await?;
    let render = move |r: &LedgerReceipt| (StatusCode::OK, wire::hold(customer, r, "voided", None));
    ledger_write(&state, &caller, &headers, ("POST", uri.path(), b""), customer, Command::Void { hold }, render).await
}

pub async fn put_program(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> ApiResult<Response> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::field(ErrorCode::InvalidField, "program", "the program must be UTF-8 TOML text"))?
        .to_owned();
    let now = (state.clock)();
    let render = |p: &regulars_store::ProgramVersion| (StatusCode::OK, wire::program(p));
    idempotency::run(&state, &caller, &headers, ("PUT", uri.path(), &body), render, |idem| {
        state.store.set_program(text, now, idem)
    })
    .await
}

pub async fn get_program(State(state): State<AppState>) -> ApiResult<Response> {
    let program =
        state.store.program().await?.ok_or_else(|| ApiError::not_found("a loyalty program (none is defined yet)"))?;
    Ok(json_response(StatusCode::OK, wire::program(&program).to_string()))
}

pub async fn dry_run(State(state): State<AppState>, body: ApiJson<wire::DryRunIn>) -> ApiResult<Response> {
    let (customer, currency, lines) = body.value.parse()?;
    let current =
        state.store.program().await?.ok_or_else(|| ApiError::not_found("a loyalty program (none is defined yet)"))?;
    if let Some(c) = customer
        && state.store.customer(c).await?.is_none()
    {
        return Err(ApiError::field(ErrorCode::NotFound, "customer_id", format!("customer {c} does not exist")));
    }
    let skus = lines.iter().map(|l| l.sku.clone()).collect();
    let (tier, orders_before, categories) = state.store.order_context(current.program.clone(), customer, skus).await?;
    let referred_by = match customer {
        Some(c) if orders_before == 0 && current.program.earning.referral.is_some() => {
            state.store.referrer_of(c).await?
        }
        _ => None,
    };
    let context = regulars_core::loyalty::earning::CustomerContext {
        customer: customer.unwrap_or(CustomerId::from_key(1)),
        tier: tier.as_deref(),
        orders_before,
        referred_by,
    };
    let earning =
        regulars_core::loyalty::earning::earn_for_lines(&current.program, None, currency, &lines, &categories, context);
    let (available_from, expires_at) = current.program.lot_times((state.clock)(), true);
    Ok(json_response(StatusCode::OK, wire::dry_run(current.version, &earning, available_from, expires_at).to_string()))
}

// ----- coupons -----

pub(crate) fn coupon_code(raw: &str) -> ApiResult<regulars_core::loyalty::coupons::CouponCode> {
    regulars_core::loyalty::coupons::CouponCode::parse("code", raw)
        .map_err(|_| ApiError::not_found(format!("coupon {raw:?}")))
}

pub async fn create_coupons(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    uri: Uri,
    body: ApiJson<wire::CouponBatchIn>,
) -> ApiResult<Response> {
    let draft = body.value.parse()?;
    let now = (state.clock)();
    let render = |b: &regulars_store::CouponBatch| (StatusCode::CREATED, wire::coupon_batch(b));
    idempotency::run(&state, &caller, &headers, ("POST", uri.path(), &body.bytes), render, |idem| {
        state.store.create_coupons(draft, now, idem)
    })
    .await
}

/// Validates a coupon without using it: `valid`, and the refusal a redemption would meet now.
pub async fn coupon(
    State(state): State<AppState>,
    Path(code): Path<String>,
    axum::extract::Query(params): axum::extract::Query<std::collections::BTreeMap<String, String>>,
) -> ApiResult<Response> {
    let code = coupon_code(&code)?;
    if let Some(unknown) = params.keys().find(|k| k.as_str() != "customer_id") {
        return Err(ApiError::field(
            ErrorCode::InvalidField,
            unknown.clone(),
            format!("unknown query parameter {unknown:?}"),
        ));
    }
    let customer = params.get("customer_id").map(|c| CustomerId::parse("customer_id", c)).transpose()?;
    let now = (state.clock)();
    let (coupon, refusal) = state
        .store
        .coupon_for_checkout(&code, customer, now)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("coupon {}", code.as_str())))?;
    Ok(json_response(StatusCode::OK, wire::coupon_check(&coupon, refusal.as_ref()).to_string()))
}

pub async fn redeem_coupon(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(code): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: ApiJson<wire::CouponRedeemIn>,
) -> ApiResult<Response> {
    let code = coupon_code(&code)?;
    let customer = CustomerId::parse("customer_id", &body.value.customer_id)?;
    let now = (state.clock)();
    let render = move |r: &regulars_store::CouponRedeemed| (StatusCode::OK, wire::coupon_redeemed(customer, r));
    idempotency::run(&state, &caller, &headers, ("POST", uri.path(), &body.bytes), render, |idem| {
        state.store.redeem_coupon(code, customer, now, idem)
    })
    .await
}
