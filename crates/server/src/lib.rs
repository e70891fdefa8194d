//! The HTTP API of Regulars (axum): routes, keys and roles, idempotency, problem documents,
//! OpenAPI and metrics. Only this crate knows HTTP and the JSON wire shapes.

mod analytics;
pub mod auth;
mod checkout;
pub mod error;
mod handlers;
pub mod idempotency;
pub mod json;
mod loyalty;
pub mod metrics;
pub mod openapi;
mod openapi_rewards;
mod rewards;
pub mod routes;
pub mod snapshot;
mod tiers;
pub mod wire;

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use regulars_store::Store;

use crate::error::{ApiError, ErrorCode};

/// Where the server learns the time: the system clock in production, a fixed one in tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Store,
    pub clock: Clock,
    pub metrics: metrics::Metrics,
    /// Idempotency keys whose first request is still running in this process.
    pub in_flight: Mutex<HashSet<(String, String)>>,
    /// Recently authenticated keys (see `auth::KEY_CACHE_SECONDS`).
    pub key_cache: auth::KeyCache,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(store: Store, clock: Clock) -> AppState {
        let metrics = metrics::Metrics::new(store.commit_batch_sizes());
        AppState(Arc::new(Inner {
            store,
            clock,
            metrics,
            in_flight: Mutex::new(HashSet::new()),
            key_cache: auth::KeyCache::default(),
        }))
    }
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    use handlers::*;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/customers", post(create_customer).get(list_customers))
        .route("/api/v1/customers/{id}", get(get_customer).patch(patch_customer))
        .route("/api/v1/customers/{id}/orders", get(customer_orders))
        .route("/api/v1/customers/{id}/export", get(export_customer))
        .route("/api/v1/customers/{id}/erase", post(erase_customer))
        .route("/api/v1/products", post(upsert_product).get(list_products))
        .route("/api/v1/products/{id}", get(get_product))
        .route("/api/v1/orders", post(record_order))
        .route("/api/v1/orders/{id}", get(get_order))
        .route("/api/v1/orders/{id}/refunds", post(refund_order).get(order_refunds))
        .route("/api/v1/customers/{id}/predictions", get(analytics::predictions))
        .route("/api/v1/analytics/summary", get(analytics::summary))
        .route("/api/v1/analytics/metrics", get(analytics::metrics))
        .route("/api/v1/analytics/cohorts", get(analytics::cohorts))
        .route("/api/v1/analytics/segments", get(analytics::segments))
        .route("/api/v1/analytics/at-risk", get(analytics::at_risk))
        .route("/api/v1/analytics/snapshot", post(analytics::refresh))
        .route("/api/v1/customers/{id}/wallet", get(loyalty::wallet))
        .route("/api/v1/customers/{id}/wallet/statement", get(loyalty::statement))
        .route("/api/v1/customers/{id}/wallet/redeem", post(loyalty::redeem))
        .route("/api/v1/customers/{id}/wallet/holds", post(loyalty::place_hold))
        .route("/api/v1/customers/{id}/wallet/adjust", post(loyalty::adjust))
        .route("/api/v1/holds/{id}/capture", post(loyalty::capture))
        .route("/api/v1/holds/{id}/void", post(loyalty::void))
        .route("/api/v1/loyalty/program", get(loyalty::get_program).put(loyalty::put_program))
        .route("/api/v1/loyalty/dry-run", post(loyalty::dry_run))
        .route("/api/v1/customers/{id}/tier", get(tiers::tier))
        .route("/api/v1/customers/{id}/events", post(tiers::earn_event))
        .route("/api/v1/loyalty/events", get(tiers::events))
        .route("/api/v1/coupons", post(loyalty::create_coupons))
        .route("/api/v1/coupons/{code}", get(loyalty::coupon))
        .route("/api/v1/coupons/{code}/redeem", post(loyalty::redeem_coupon))
        .route("/api/v1/rewards", post(rewards::create_reward).get(rewards::rewards))
        .route("/api/v1/rewards/{id}/redeem", post(rewards::redeem_reward))
        .route("/api/v1/customers/{id}/punch-cards", get(rewards::punch_cards))
        .route("/api/v1/coupons/{code}/holds", post(rewards::hold_coupon))
        .route("/api/v1/coupon-holds/{id}/confirm", post(rewards::confirm_hold))
        .route("/api/v1/coupon-holds/{id}/release", post(rewards::release_hold))
        .route("/api/v1/promotions", post(checkout::create_promotion).get(checkout::promotions))
        .route("/api/v1/checkout/price", post(checkout::price_cart))
        .route("/api/v1/sales", post(rewards::create_sale))
        .route("/api/v1/sales/{id}/access-tokens", post(rewards::issue_access_token))
        .route("/api/v1/sales/{id}/access", get(rewards::check_access))
        .route("/api/v1/keys", post(create_key).get(list_keys))
        .route("/api/v1/keys/{prefix}/revoke", post(revoke_key))
        .route_layer(from_fn_with_state(state.clone(), auth::authorize))
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route").into_response() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::MethodNotAllowed, "this route does not take this method").into_response()
        })
        .layer(DefaultBodyLimit::max(json::MAX_BODY_BYTES))
        .layer(from_fn_with_state(state.clone(), metrics::record))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, then finishes the requests in progress.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}
