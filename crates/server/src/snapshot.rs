//! The analytics snapshot job: reads every order from the store, runs the whole analysis (models,
//! metrics, cohorts, RFM, CLV, risk) and stores a dated snapshot that the analytics endpoints read,
//! so a request never waits for a model fit. `refresh` is one step; `serve` calls it at start and
//! then on an interval.

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use regulars_analytics::log::CustomerKey;
use regulars_analytics::metrics::period_metrics_of_customers;
use regulars_analytics::{AnalyzeOptions, LogOptions, TransactionLogBuilder, analyze};
use regulars_core::CustomerId;
use regulars_store::{CustomerFigures, Store, StoreError};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("analysis failed: {0}")]
    Analytics(#[from] regulars_analytics::AnalyticsError),
    #[error("the analysis task failed: {0}")]
    Task(String),
}

/// What a refresh did.
#[derive(Debug, Clone, PartialEq)]
pub struct Refreshed {
    pub snapshot_id: i64,
    pub as_of: NaiveDate,
    pub customers: u64,
    pub orders: usize,
    pub seconds: f64,
}

/// Computes and stores a snapshot as of `now`'s date; `None` when there are no orders yet.
pub async fn refresh(store: &Store, now: DateTime<Utc>) -> Result<Option<Refreshed>, SnapshotError> {
    let started = Instant::now();
    let purchases = store.purchases().await?;
    if purchases.is_empty() {
        return Ok(None);
    }
    let orders = purchases.len();
    let as_of = now.date_naive();
    let (report_json, figures, customers) = tokio::task::spawn_blocking(move || -> Result<_, SnapshotError> {
        let mut builder = TransactionLogBuilder::with_capacity(LogOptions::default(), purchases.len());
        for p in &purchases {
            builder.push(p.customer_key as u64, p.placed_at.naive_utc(), p.net_minor)?;
        }
        drop(purchases);
        let log = builder.build();
        let options = AnalyzeOptions::default();
        let report = analyze(&log, &options, as_of)?;
        let table = &report.per_customer;
        let figures: Vec<CustomerFigures> = (0..table.key.len())
            .filter_map(|i| {
                let CustomerKey::Number(key) = table.key[i] else { return None };
                let total_spend_minor = table.total_spend[i];
                let alive = table.probability_alive[i];
                Some(CustomerFigures {
                    customer_id: CustomerId::from_key(key as i64),
                    frequency: table.frequency[i],
                    total_spend_minor,
                    last_purchase: table.last_purchase[i],
                    probability_alive: alive,
                    expected_purchases: table.expected_purchases[i],
                    expected_value: table.expected_value[i],
                    clv: table.clv[i],
                    segment: table.segment[i].clone(),
                    rfm: format!("{}{}{}", table.recency_score[i], table.frequency_score[i], table.monetary_score[i]),
                    median_gap_days: table.median_gap_days[i],
                    overdue: table.overdue[i],
                    value_at_risk: (1.0 - alive.unwrap_or(1.0)) * total_spend_minor as f64,
                })
            })
            .collect();
        // Retention metrics per RFM segment.
        let index_of: HashMap<&CustomerKey, u32> =
            log.customer_keys().iter().enumerate().map(|(i, k)| (k, i as u32)).collect();
        let mut members: HashMap<&str, Vec<u32>> = HashMap::new();
        for (key, segment) in table.key.iter().zip(&table.segment) {
            if let Some(&i) = index_of.get(key) {
                members.entry(segment.as_str()).or_default().push(i);
            }
        }
        let mut segment_metrics = serde_json::Map::new();
        for (segment, customers) in members {
            let periods = period_metrics_of_customers(&log, &customers, options.metrics_period, as_of)?;
            segment_metrics.insert(segment.to_owned(), serde_json::to_value(periods).expect("metrics serialise"));
        }
        let mut value = serde_json::to_value(&report).expect("the report serialises");
        value["segment_metrics"] = segment_metrics.into();
        value["horizon_months"] = json!(options.horizon_months);
        Ok((value.to_string(), figures, report.customers))
    })
    .await
    .map_err(|e| SnapshotError::Task(e.to_string()))??;
    let snapshot_id = store.save_snapshot(now, as_of, report_json, figures).await?;
    Ok(Some(Refreshed { snapshot_id, as_of, customers, orders, seconds: started.elapsed().as_secs_f64() }))
}
