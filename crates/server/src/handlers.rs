//! The API's handlers: parse the wire shape, call the store, render the answer.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use regulars_core::{Currency, CustomerId, Email, ExternalId, OrderId, Phone, ProductId, Role};
use regulars_store::CustomerLookup;
use serde_json::json;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::idempotency::{self, json_response};
use crate::json::ApiJson;
use crate::wire;

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

type Params = Query<BTreeMap<String, String>>;

fn ok(body: serde_json::Value) -> Response {
    json_response(StatusCode::OK, body.to_string())
}

/// Reads `limit` and `cursor`, refusing any parameter not in `allowed`.
fn paging(params: &BTreeMap<String, String>, allowed: &[&str]) -> ApiResult<(u32, Option<String>)> {
    if let Some(unknown) =
        params.keys().find(|k| !["limit", "cursor"].contains(&k.as_str()) && !allowed.contains(&k.as_str()))
    {
        return Err(ApiError::field(
            ErrorCode::InvalidField,
            unknown.clone(),
            format!("unknown query parameter {unknown:?}"),
        ));
    }
    let limit = match params.get("limit") {
        None => DEFAULT_PAGE,
        Some(raw) => raw.parse::<u32>().ok().filter(|l| (1..=MAX_PAGE).contains(l)).ok_or_else(|| {
            ApiError::field(ErrorCode::InvalidField, "limit", format!("must be a number from 1 to {MAX_PAGE}"))
        })?,
    };
    Ok((limit, params.get("cursor").cloned()))
}

/// Splits one extra fetched item off into the next cursor.
fn paginate<T>(mut items: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(cursor_of)
    } else {
        None
    };
    (items, next)
}

pub(crate) fn customer_id(raw: &str) -> ApiResult<CustomerId> {
    raw.parse().map_err(|()| ApiError::not_found(format!("customer {raw:?}")))
}

fn order_id(raw: &str) -> ApiResult<OrderId> {
    raw.parse().map_err(|()| ApiError::not_found(format!("order {raw:?}")))
}

// ----- health and documents -----

pub async fn healthz() -> Response {
    ok(json!({ "status": "ok" }))
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => ok(json!({ "status": "ready", "database": state.store.backend_name() })),
        Err(e) => ApiError::new(ErrorCode::Unavailable, format!("the database does not answer: {e}")).into_response(),
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

pub async fn openapi() -> Response {
    ok(crate::openapi::document())
}

// ----- customers -----

pub async fn create_customer(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    uri: Uri,
    body: ApiJson<wire::CustomerIn>,
) -> ApiResult<Response> {
    let now = (state.clock)();
    let referred_by = body.value.referred_by.as_deref().map(|r| CustomerId::parse("referred_by", r)).transpose()?;
    let draft = body.value.parse(now)?;
    let render = |c: &regulars_core::Customer| (StatusCode::CREATED, wire::customer(c));
    idempotency::run(&state, &caller, &headers, ("POST", uri.path(), &body.bytes), render, |idem| {
        state.store.enrol_customer(draft, referred_by, now, idem)
    })
    .await
}

pub async fn list_customers(State(state): State<AppState>, Query(params): Params) -> ApiResult<Response> {
    let (limit, cursor) = paging(&params, &["external_id", "email", "phone"])?;
    let lookup = if let Some(v) = params.get("external_id") {
        Some(CustomerLookup::ExternalId(ExternalId::parse("external_id", v)?))
    } else if let Some(v) = params.get("email") {
        Some(CustomerLookup::Email(Email::parse("email", v)?))
    } else if let Some(v) = params.get("phone") {
        Some(CustomerLookup::Phone(Phone::parse("phone", v)?))
    } else {
        None
    };
    if let Some(lookup) = lookup {
        let found = state.store.find_customers(lookup, limit).await?;
        return Ok(ok(wire::page(found.iter().map(wire::customer).collect(), None)));
    }
    let after = cursor.map(|c| CustomerId::parse("cursor", &c)).transpose()?;
    let items = state.store.customers(after, limit + 1).await?;
    let (items, next) = paginate(items, limit, |c| c.id.to_string());
    Ok(ok(wire::page(items.iter().map(wire::customer).collect(), next)))
}

pub async fn get_customer(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = customer_id(&id)?;
    let customer = state.store.customer(id).await?.ok_or_else(|| ApiError::not_found(format!("customer {id}")))?;
    Ok(ok(wire::customer(&customer)))
}

pub async fn patch_customer(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: ApiJson<wire::CustomerPatchIn>,
) -> ApiResult<Response> {
    let id = customer_id(&id)?;
    let patch = body.value.parse((state.clock)())?;
    let render = |c: &regulars_core::Customer| (StatusCode::OK, wire::customer(c));
    idempotency::run(&state, &caller, &headers, ("PATCH", uri.path(), &body.bytes), render, |idem| {
        state.store.update_customer(id, patch, idem)
    })
    .await
}

pub async fn customer_orders(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Params,
) -> ApiResult<Response> {
    let id = customer_id(&id)?;
    let (limit, cursor) = paging(&params, &[])?;
    if state.store.customer(id).await?.is_none() {
        return Err(ApiError::not_found(format!("customer {id}")));
    }
    let after = cursor.map(|c| OrderId::parse("cursor", &c)).transpose()?;
    let items = state.store.orders_of_customer(id, after, limit + 1).await?;
    let (items, next) = paginate(items, limit, |o| o.id.to_string());
    Ok(ok(wire::page(items.iter().map(wire::order).collect(), next)))
}

pub async fn export_customer(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = customer_id(&id)?;
    let export = state.store.export_customer(id).await?.ok_or_else(|| ApiError::not_found(format!("customer {id}")))?;
    Ok(ok(wire::export(&export)))
}

pub async fn erase_customer(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let id = customer_id(&id)?;
    let now = (state.clock)();
    let render = |c: &regulars_core::Customer| (StatusCode::OK, wire::customer(c));
    idempotency::run(&state, &caller, &headers, ("POST", uri.path(), b""), render, |idem| {
        state.store.erase_customer(id, now, idem)
    })
    .await
}

// ----- products -----

pub async fn upsert_product(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    uri: Uri,
    body: ApiJson<wire::ProductIn>,
) -> ApiResult<Response> {
    let draft = body.value.parse()?;
    let render = |p: &regulars_core::Product| (StatusCode::OK, wire::product(p));
    idempotency::run(&state, &caller, &headers, ("POST", uri.path(), &body.bytes), render, |idem| {
        state.store.upsert_product(draft, idem)
    })
    .await
}

pub async fn list_products(State(state): State<AppState>, Query(params): Params) -> ApiResult<Response> {
    let (limit, cursor) = paging(&params, &[])?;
    let after = cursor.map(|c| ProductId::parse("cursor", &c)).transpose()?;
    let items = state.store.products(after, limit + 1).await?;
    let (items, next) = paginate(items, limit, |p| p.id.to_string());
    Ok(ok(wire::page(items.iter().map(wire::product).collect(), next)))
}

pub async fn get_product(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let parsed: ProductId = id.parse().map_err(|()| ApiError::not_found(format!("product {id:?}")))?;
    let product = state.store.product(parsed).await?.ok_or_else(|| ApiError::not_found(format!("product {id}")))?;
    Ok(ok(wire::product(&product)))
}

// ----- orders and refunds -----

pub async fn record_order(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    uri: Uri,
    body: ApiJson<wire::OrderIn>,
) -> ApiResult<Response> {
    let draft = body.value.parse()?;
    let now = (state.clock)();
    let render = |(order, created): &(regulars_core::Order, bool)| {
        (if *created { StatusCode::CREATED } else { StatusCode::OK }, wire::order(order))
    };
    idempotency::run(&state, &caller, &headers, ("POST", uri.path(), &body.bytes), render, |idem| {
        state.store.record_order(draft, now, idem)
    })
    .await
}

pub async fn get_order(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = order_id(&id)?;
    let order = state.store.order(id).await?.ok_or_else(|| ApiError::not_found(format!("order {id}")))?;
    Ok(ok(wire::order(&order)))
}

pub async fn refund_order(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: ApiJson<wire::RefundIn>,
) -> ApiResult<Response> {
    let id = order_id(&id)?;
    let now = (state.clock)();
    let draft = body.value.parse(id, now)?;
    let currency: Currency =
        state.store.order(id).await?.ok_or_else(|| ApiError::not_found(format!("order {id}")))?.currency;
    let render = move |(refund, created): &(regulars_core::Refund, bool)| {
        (if *created { StatusCode::CREATED } else { StatusCode::OK }, wire::refund(refund, currency))
    };
    idempotency::run(&state, &caller, &headers, ("POST", uri.path(), &body.bytes), render, |idem| {
        state.store.record_refund(draft, now, idem)
    })
    .await
}

pub async fn order_refunds(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = order_id(&id)?;
    let order = state.store.order(id).await?.ok_or_else(|| ApiError::not_found(format!("order {id}")))?;
    let refunds = state.store.refunds_of_order(id).await?;
    Ok(ok(wire::page(refunds.iter().map(|r| wire::refund(r, order.currency)).collect(), None)))
}

// ----- keys -----

/// Creates a key. Not idempotent by design: the secret is never stored, so no replay could return it.
pub async fn create_key(State(state): State<AppState>, body: ApiJson<wire::KeyIn>) -> ApiResult<Response> {
    let role: Role =
        body.value.role.parse().map_err(|e: String| ApiError::field(ErrorCode::InvalidField, "role", e))?;
    let new = state.store.create_api_key(&body.value.name, role, (state.clock)()).await?;
    let mut out = wire::api_key(&new.key);
    out["secret"] = new.secret.into();
    Ok(json_response(StatusCode::CREATED, out.to_string()))
}

pub async fn list_keys(State(state): State<AppState>) -> ApiResult<Response> {
    let keys = state.store.api_keys().await?;
    Ok(ok(wire::page(keys.iter().map(wire::api_key).collect(), None)))
}

pub async fn revoke_key(State(state): State<AppState>, Path(prefix): Path<String>) -> ApiResult<Response> {
    let key = state
        .store
        .revoke_api_key(&prefix, (state.clock)())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("API key {prefix:?}")))?;
    state.key_cache.clear();
    Ok(ok(wire::api_key(&key)))
}
