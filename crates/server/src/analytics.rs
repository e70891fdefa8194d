//! The analytics endpoints: read the latest snapshot (see `snapshot.rs`), never compute on request,
//! except `POST /api/v1/analytics/snapshot`, which refreshes it now.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use regulars_store::{CustomerFigures, Snapshot};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::idempotency::json_response;
use crate::wire::time;

async fn latest(state: &AppState) -> ApiResult<(Snapshot, Value)> {
    let snapshot = state.store.latest_snapshot().await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "there is no analytics snapshot yet: POST /api/v1/analytics/snapshot, or wait for the job",
        )
    })?;
    let report: Value = serde_json::from_str(&snapshot.report_json)
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("stored snapshot is not JSON: {e}")))?;
    Ok((snapshot, report))
}

fn about(s: &Snapshot) -> Value {
    json!({ "id": s.id, "computed_at": time(s.computed_at), "as_of": s.as_of.to_string() })
}

fn ok(body: Value) -> Response {
    json_response(StatusCode::OK, body.to_string())
}

fn figures(f: &CustomerFigures) -> Value {
    json!({
        "customer_id": f.customer_id.to_string(),
        "frequency": f.frequency,
        "total_spend_minor": f.total_spend_minor,
        "last_purchase": f.last_purchase.to_string(),
        "probability_alive": f.probability_alive,
        "expected_purchases": f.expected_purchases,
        "expected_value_minor": f.expected_value,
        "clv_minor": f.clv,
        "segment": f.segment,
        "rfm": f.rfm,
        "median_gap_days": f.median_gap_days,
        "overdue": f.overdue,
        "value_at_risk_minor": f.value_at_risk,
    })
}

pub async fn summary(State(state): State<AppState>) -> ApiResult<Response> {
    let (s, r) = latest(&state).await?;
    Ok(ok(json!({
        "snapshot": about(&s),
        "customers": r["customers"],
        "transactions": r["transactions"],
        "first_purchase": r["first_purchase"],
        "last_purchase": r["last_purchase"],
        "time_unit": r["time_unit"],
        "horizon_months": r["horizon_months"],
        "models": r["models"],
        "shop": r["metrics"]["shop"],
        "clv": r["clv"],
        "diagnostics": r["diagnostics"],
    })))
}

pub async fn metrics(
    State(state): State<AppState>,
    Query(params): Query<BTreeMap<String, String>>,
) -> ApiResult<Response> {
    if let Some(unknown) = params.keys().find(|k| k.as_str() != "segment") {
        return Err(ApiError::field(
            ErrorCode::InvalidField,
            unknown.clone(),
            format!("unknown query parameter {unknown:?}"),
        ));
    }
    let (s, r) = latest(&state).await?;
    let periods = match params.get("segment") {
        None => r["metrics"]["periods"].clone(),
        Some(segment) => r["segment_metrics"].get(segment).cloned().ok_or_else(|| {
            let known: Vec<&String> = r["segment_metrics"].as_object().map(|m| m.keys().collect()).unwrap_or_default();
            ApiError::field(
                ErrorCode::InvalidField,
                "segment",
                format!("no customers in segment {segment:?}; segments: {known:?}"),
            )
        })?,
    };
    Ok(ok(
        json!({ "snapshot": about(&s), "period": r["metrics"]["period"], "segment": params.get("segment"), "periods": periods }),
    ))
}

pub async fn cohorts(State(state): State<AppState>) -> ApiResult<Response> {
    let (s, r) = latest(&state).await?;
    Ok(ok(json!({ "snapshot": about(&s), "cohort_period": r["cohort_period"], "cohorts": r["cohorts"] })))
}

pub async fn segments(State(state): State<AppState>) -> ApiResult<Response> {
    let (s, r) = latest(&state).await?;
    Ok(ok(json!({ "snapshot": about(&s), "segments": r["rfm"]["segments"], "grid": r["rfm"]["grid"] })))
}

pub async fn at_risk(
    State(state): State<AppState>,
    Query(params): Query<BTreeMap<String, String>>,
) -> ApiResult<Response> {
    let limit = match params.get("limit") {
        None => 50,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| ApiError::field(ErrorCode::InvalidField, "limit", "must be a number from 1 to 1000"))?,
    };
    let (s, _) = latest(&state).await?;
    let items = state.store.at_risk(s.id, limit).await?;
    Ok(ok(json!({ "snapshot": about(&s), "items": items.iter().map(figures).collect::<Vec<_>>() })))
}

pub async fn predictions(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = crate::handlers::customer_id(&id)?;
    if state.store.customer(id).await?.is_none() {
        return Err(ApiError::not_found(format!("customer {id}")));
    }
    let (s, _) = latest(&state).await?;
    let found = state.store.customer_figures(s.id, id).await?.ok_or_else(|| {
        ApiError::not_found(format!("figures of customer {id} (no purchase before the snapshot of {})", s.as_of))
    })?;
    Ok(ok(json!({ "snapshot": about(&s), "figures": figures(&found) })))
}

/// Recomputes the snapshot now. Safe to repeat: each call analyses the same stored orders again.
pub async fn refresh(State(state): State<AppState>) -> ApiResult<Response> {
    let refreshed = crate::snapshot::refresh(&state.store, (state.clock)())
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "there are no orders to analyse yet"))?;
    Ok(json_response(
        StatusCode::CREATED,
        json!({
            "snapshot": { "id": refreshed.snapshot_id, "as_of": refreshed.as_of.to_string() },
            "customers": refreshed.customers,
            "orders": refreshed.orders,
            "seconds": refreshed.seconds,
        })
        .to_string(),
    ))
}
