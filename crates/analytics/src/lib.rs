//! `regulars-analytics`: the retention analytics engine of Regulars.
//!
//! Pure and parallel: no I/O, no clock (every `now` / `as_of` is a parameter), money in integer minor
//! units on input. Start from a [`log::TransactionLogBuilder`], build a [`log::TransactionLog`], then
//! derive summaries, models and metrics from it.

// Index loops mirror the formulas in the numerical code; iterator chains would obscure them.
#![allow(clippy::needless_range_loop)]

pub mod checking;
pub mod churn;
pub mod cohorts;
pub mod error;
pub mod html;
pub mod log;
pub mod metrics;
pub mod models;
pub mod optimize;
pub mod period;
pub mod report;
pub mod rfm;
pub mod rhythm;
pub mod special;
pub mod summary;
pub mod synth;

pub use cohorts::{CohortRow, cohort_table};
pub use error::{AnalyticsError, Result};
pub use log::{CustomerKey, LogOptions, TimeUnit, TransactionLog, TransactionLogBuilder};
pub use metrics::{
    PeriodMetrics, ShopMetrics, SimpleClvOptions, period_metrics, period_metrics_of_customers, shop_metrics,
};
pub use period::Period;
pub use report::{AnalyzeOptions, Report, analyze, write_customers_csv};
pub use rfm::{RfmTable, SegmentMap, rfm};
pub use summary::{CalibrationHoldout, CustomerSummaries, calibration_and_holdout, summarize};
