//! Tier, custom-event and loyalty-event endpoints, with their wire shapes (kept here, beside the handlers,
//! so that `wire.rs` stays as it was for the loyalty endpoints it already shapes).
//!
//! - `GET /api/v1/customers/{id}/tier`: the tier, its benefits, the qualification and grace clocks, and
//!   every change with its reason (the tier history lives here, not in the wallet response, which shows
//!   only the current `tier`).
//! - `POST /api/v1/customers/{id}/events` `{"event": "review", "id": "review-981"}`: the points the
//!   program's `[[earning.events]]` rule gives, once per `id` (or per `Idempotency-Key`); an event the
//!   program does not define is a `422` naming `event`.
//! - `GET /api/v1/loyalty/events?kind=points_expiring&cursor=evt_12&limit=50`: events for engagement,
//!   oldest first; the cursor is the last event id of the page.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use chrono::Duration;
use regulars_core::FieldError;
use regulars_core::loyalty::{Program, RequestId};
use regulars_store::{LedgerReceipt, LoyaltyEvent, TierView};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::handlers::customer_id;
use crate::idempotency::{self, json_response};
use crate::json::ApiJson;
use crate::loyalty::request_id;
use crate::wire::{self, time};

/// The kinds of loyalty events there are.
pub const EVENT_KINDS: &[&str] = &["points_expiring"];

fn tier_json(view: &TierView, program: Option<&Program>) -> Value {
    let tiers = program.and_then(|p| p.tiers.as_ref());
    let level = view.tier.as_deref().and_then(|t| tiers?.get(t));
    let grace_ends_at = match (tiers, view.below_since) {
        (Some(t), Some(below)) => {
            let end = below + Duration::days(i64::from(t.grace_days));
            Some(view.kept_until.map_or(end, |k| k.max(end)))
        }
        _ => None,
    };
    let history: Vec<Value> = view
        .history
        .iter()
        .map(|h| {
            json!({
                "from": h.from,
                "to": h.to,
                "reason": h.reason,
                "measure": h.measure,
                "threshold": h.threshold,
                "below_since": h.below_since.map(time),
                "at": time(h.at),
            })
        })
        .collect();
    json!({
        "customer_id": view.customer.to_string(),
        "tier": view.tier,
        "since": view.since.map(time),
        "kept_until": view.kept_until.map(time),
        "below_since": view.below_since.map(time),
        "grace_ends_at": grace_ends_at.map(time),
        "benefits": level.map(|l| json!({
            "multiplier": l.benefits.multiplier.to_string(),
            "perks": l.benefits.perks,
            "early_access": l.benefits.early_access,
        })),
        "history": history,
    })
}

fn event_json(e: &LoyaltyEvent) -> Value {
    json!({
        "id": format!("evt_{}", e.id),
        "kind": e.kind,
        "customer_id": e.customer.to_string(),
        "points": e.points,
        "expires_at": e.expires_at.map(time),
        "created_at": time(e.created_at),
    })
}

pub async fn tier(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = customer_id(&id)?;
    let view = state.store.tier(id).await?.ok_or_else(|| ApiError::not_found(format!("customer {id}")))?;
    let program = state.store.program().await?;
    let body = tier_json(&view, program.as_ref().map(|p| p.program.as_ref()));
    Ok(json_response(StatusCode::OK, body.to_string()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    /// The event's name in the program (`review`).
    pub event: String,
    /// The shop's id of this occurrence: the same id earns once.
    pub id: Option<String>,
    /// Whatever the shop wants to say about it; not stored.
    #[serde(default)]
    #[allow(dead_code)]
    pub properties: Option<serde_json::Map<String, Value>>,
}

pub async fn earn_event(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: ApiJson<EventIn>,
) -> ApiResult<Response> {
    let customer = customer_id(&id)?;
    let name = body.value.event.trim().to_owned();
    let program = state.store.program().await?;
    let known = program.as_ref().is_some_and(|p| p.program.earning.events.contains_key(&name));
    if !known {
        let defined = program
            .as_ref()
            .map(|p| p.program.earning.events.keys().map(String::as_str).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        let detail = if defined.is_empty() {
            format!("unknown event {name:?}: the program defines no events")
        } else {
            format!("unknown event {name:?}: the program defines {defined}")
        };
        return Err(ApiError::field(ErrorCode::InvalidField, "event", detail));
    }
    let request = match body.value.id.as_deref() {
        Some(occurrence) => RequestId::parse("id", &format!("event:{name}:{}", occurrence.trim()))?,
        None => request_id(&caller, &headers),
    };
    let now = (state.clock)();
    let event = name.clone();
    let render = move |r: &LedgerReceipt| {
        let mut out = wire::ledger_receipt(customer, r);
        out["event"] = event.clone().into();
        (StatusCode::OK, out)
    };
    idempotency::run(&state, &caller, &headers, ("POST", uri.path(), &body.bytes), render, |idem| {
        state.store.earn_event(customer, name, request, now, idem)
    })
    .await
}

pub async fn events(
    State(state): State<AppState>,
    Query(params): Query<BTreeMap<String, String>>,
) -> ApiResult<Response> {
    if let Some(unknown) = params.keys().find(|k| !["kind", "cursor", "limit"].contains(&k.as_str())) {
        return Err(ApiError::field(
            ErrorCode::InvalidField,
            unknown.clone(),
            format!("unknown query parameter {unknown:?}"),
        ));
    }
    let kind = params.get("kind").cloned();
    if let Some(kind) = &kind
        && !EVENT_KINDS.contains(&kind.as_str())
    {
        let message = format!("unknown kind {kind:?}: one of {}", EVENT_KINDS.join(", "));
        return Err(FieldError::new("kind", message).into());
    }
    let after = match params.get("cursor") {
        None => 0,
        Some(raw) => raw
            .strip_prefix("evt_")
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| FieldError::new("cursor", "an event id such as evt_12"))?,
    };
    let limit = match params.get("limit") {
        None => 50,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=200).contains(l))
            .ok_or_else(|| FieldError::new("limit", "must be a number from 1 to 200"))?,
    };
    let mut items = state.store.loyalty_events(kind, after, limit + 1).await?;
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|e| format!("evt_{}", e.id))
    } else {
        None
    };
    Ok(json_response(StatusCode::OK, wire::page(items.iter().map(event_json).collect(), next).to_string()))
}
