//! One call that runs every analysis: [`analyze`] turns a transaction log into a [`Report`] that
//! serialises (serde) to the JSON contract of `regulars analyze --json`, writes the per-customer CSV
//! ([`write_customers_csv`]) and renders a self-contained HTML page ([`crate::html::render_html`]).
//!
//! Fitting: without a calibration end, every model is fitted on the customers' histories up to
//! `as_of`. With a calibration end (as in the papers), the models are fitted on the calibration
//! period, checked against the holdout (predicted against actual by calibration frequency, the
//! tracking curve, churn propensity), and their population parameters are then applied to every
//! customer's full history up to `as_of` for the per-customer predictions.
//!
//! A model that cannot be fitted or used does not stop the report: its error is recorded under
//! `models.errors` and `diagnostics`, and the figures that depend on it are left out (null), never
//! filled with NaN or a negative value.

use std::collections::BTreeMap;
use std::io::Write;

use chrono::NaiveDate;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::checking::{
    FrequencyHistogram, HoldoutCheck, TrackingPoint, frequency_histogram, holdout_check, tracking_curve,
};
use crate::churn::{ChurnData, ChurnModel, fit_churn_model};
use crate::cohorts::{CohortRow, cohort_table};
use crate::error::Result;
use crate::log::{CustomerKey, TimeUnit, TransactionLog, date_of_day_number, day_number};
use crate::metrics::{PeriodMetrics, ShopMetrics, SimpleClvOptions, period_metrics, shop_metrics};
use crate::models::{
    BgNbd, BgNbdParams, BtydData, ClvInputs, FitDiagnostics, Fitted, GammaGamma, GammaGammaParams, MbgNbd, ParetoNbd,
    ParetoNbdParams, PurchaseModel, customer_lifetime_values, expected_purchases_bulk, periods_per_month,
    purchase_probabilities_bulk,
};
use crate::period::Period;
use crate::rfm::{SegmentMap, rfm};
use crate::rhythm::gap_figures_of;
use crate::summary::{CalibrationHoldout, CustomerSummaries, calibration_and_holdout, summarize};

/// Which models to fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelSelection {
    /// BG/NBD (also the model behind probability alive, expected purchases and CLV when present).
    pub bg_nbd: bool,
    /// MBG/NBD.
    pub mbg_nbd: bool,
    /// Pareto/NBD.
    pub pareto_nbd: bool,
    /// Gamma-Gamma spend model (needed for CLV).
    pub gamma_gamma: bool,
}

impl Default for ModelSelection {
    fn default() -> Self {
        ModelSelection { bg_nbd: true, mbg_nbd: true, pareto_nbd: true, gamma_gamma: true }
    }
}

/// Options of [`analyze`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyzeOptions {
    /// Time unit of the models; `None` takes the log's.
    pub time_unit: Option<TimeUnit>,
    /// End of the calibration period (inclusive); enables the holdout check and churn model.
    pub calibration_end: Option<NaiveDate>,
    /// Period of the cohort table (month or week).
    pub cohort_period: Period,
    /// Period of the retention metrics.
    pub metrics_period: Period,
    /// CLV and expected-purchases horizon in months.
    pub horizon_months: u32,
    /// Monthly discount rate of the CLV.
    pub monthly_discount_rate: f64,
    /// Models to fit.
    pub models: ModelSelection,
    /// RFM segment map.
    pub segment_map: SegmentMap,
    /// Options of the simple CLV.
    pub simple_clv: SimpleClvOptions,
    /// Length of the at-risk list.
    pub at_risk_limit: usize,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            time_unit: None,
            calibration_end: None,
            cohort_period: Period::Month,
            metrics_period: Period::Month,
            horizon_months: 12,
            monthly_discount_rate: 0.01,
            models: ModelSelection::default(),
            segment_map: SegmentMap::default(),
            simple_clv: SimpleClvOptions::default(),
            at_risk_limit: 25,
        }
    }
}

/// A fitted model in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelReport<P> {
    /// Estimated parameters.
    pub params: P,
    /// Log-likelihood of the fitted data (unscaled, in the time unit of the report).
    pub log_likelihood: f64,
    /// Fit diagnostics.
    pub diagnostics: FitDiagnostics,
}

/// The models section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ModelsReport {
    /// Customers the models were fitted on.
    pub fitted_customers: u64,
    /// Date the fitted histories end (the calibration end, or `as_of`).
    pub fitted_through: Option<NaiveDate>,
    /// BG/NBD.
    pub bg_nbd: Option<ModelReport<BgNbdParams>>,
    /// MBG/NBD.
    pub mbg_nbd: Option<ModelReport<BgNbdParams>>,
    /// Pareto/NBD.
    pub pareto_nbd: Option<ModelReport<ParetoNbdParams>>,
    /// Gamma-Gamma; `v` in minor units.
    pub gamma_gamma: Option<ModelReport<GammaGammaParams>>,
    /// Why a selected model is missing.
    pub errors: BTreeMap<String, String>,
}

/// The metrics section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsReport {
    /// Shop-level figures (`repeat_purchase_rate`, `average_order_value`, `simple_clv`, ...).
    #[serde(flatten)]
    pub shop: ShopMetrics,
    /// Period of `periods`.
    pub period: Period,
    /// Retention metrics per period.
    pub periods: Vec<PeriodMetrics>,
}

/// The RFM section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfmReport {
    /// Customers per segment.
    pub segments: BTreeMap<String, u64>,
    /// Customers per (R, F) cell, `grid[r - 1][f - 1]`.
    pub grid: [[u64; 5]; 5],
    /// The segment map used.
    pub map: SegmentMap,
}

/// A histogram bin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramBin {
    /// Lower edge (inclusive).
    pub from: f64,
    /// Upper edge (exclusive; the last bin holds everything above).
    pub to: f64,
    /// Customers in the bin.
    pub count: u64,
}

/// The CLV section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClvReport {
    /// Purchase model behind the CLV.
    pub model: String,
    /// Horizon in months.
    pub horizon_months: u32,
    /// Monthly discount rate.
    pub monthly_discount_rate: f64,
    /// Customers with a CLV.
    pub customers_valued: u64,
    /// Customers whose CLV is undefined (see `diagnostics`).
    pub customers_without_value: u64,
    /// Sum of CLVs in minor units.
    pub total: f64,
    /// Mean CLV in minor units.
    pub mean: f64,
    /// Median CLV in minor units.
    pub median: f64,
    /// Distribution of CLVs.
    pub histogram: Vec<HistogramBin>,
}

/// A customer on the at-risk list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AtRiskCustomer {
    /// The customer's key.
    pub customer: CustomerKey,
    /// RFM segment.
    pub segment: String,
    /// Repeat purchases.
    pub frequency: u32,
    /// Total spend in minor units.
    pub total_spend: i64,
    /// Days since the last purchase.
    pub days_since_last_purchase: i32,
    /// Probability alive.
    pub probability_alive: f64,
    /// Probability of no purchase in the horizon (gone, or alive and not buying), when known.
    pub probability_no_purchase: Option<f64>,
    /// (1 − P(alive)) × total spend, minor units: the value of the relationship at risk.
    pub value_at_risk: f64,
}

/// How many purchases customers make in the horizon, by the purchase model behind the predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PurchaseCounts {
    /// The model (`bg_nbd`, `mbg_nbd` or `pareto_nbd`).
    pub model: String,
    /// Horizon in months.
    pub horizon_months: u32,
    /// The same in the report's time unit.
    pub horizon: f64,
    /// P(X(t) = n) for a newly acquired customer, n = 0, 1, ..., 4; the last entry is 5 or more.
    pub new_customer: Vec<f64>,
    /// Customers expected to make no purchase in the horizon (the sum of their probabilities).
    pub customers_none: f64,
    /// Customers expected to make exactly one purchase.
    pub customers_one: f64,
    /// Customers expected to make two or more.
    pub customers_two_or_more: f64,
}

/// Per-customer figures (not serialised into the JSON report; see [`write_customers_csv`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CustomerTable {
    /// Customer keys.
    pub key: Vec<CustomerKey>,
    /// Summaries as of `as_of`.
    pub frequency: Vec<u32>,
    /// Recency.
    pub recency: Vec<f64>,
    /// Age.
    pub age: Vec<f64>,
    /// Mean repeat value, minor units.
    pub monetary_value: Vec<f64>,
    /// Total spend, minor units.
    pub total_spend: Vec<i64>,
    /// First purchase.
    pub first_purchase: Vec<NaiveDate>,
    /// Last purchase.
    pub last_purchase: Vec<NaiveDate>,
    /// Probability alive.
    pub probability_alive: Vec<Option<f64>>,
    /// Expected purchases over the horizon.
    pub expected_purchases: Vec<Option<f64>>,
    /// P(no purchase), P(one purchase), P(two or more) over the horizon.
    pub purchase_probabilities: Vec<Option<[f64; 3]>>,
    /// Expected average transaction value, minor units.
    pub expected_value: Vec<Option<f64>>,
    /// CLV over the horizon, minor units.
    pub clv: Vec<Option<f64>>,
    /// RFM scores.
    pub recency_score: Vec<u8>,
    /// RFM scores.
    pub frequency_score: Vec<u8>,
    /// RFM scores.
    pub monetary_score: Vec<u8>,
    /// RFM segment.
    pub segment: Vec<String>,
    /// Median gap between purchases, days.
    pub median_gap_days: Vec<Option<f64>>,
    /// 90th percentile gap, days.
    pub p90_gap_days: Vec<Option<f64>>,
    /// Overdue flag.
    pub overdue: Vec<bool>,
}

/// Everything [`analyze`] found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Date the analysis is as of (inclusive).
    pub as_of: NaiveDate,
    /// Time unit of models, recency and age.
    pub time_unit: TimeUnit,
    /// Customers first seen by `as_of`.
    pub customers: u64,
    /// Transactions up to `as_of` (after same-day merging).
    pub transactions: u64,
    /// Records in the log (before merging, all dates).
    pub records: u64,
    /// First purchase in the log.
    pub first_purchase: NaiveDate,
    /// Last purchase up to `as_of`.
    pub last_purchase: NaiveDate,
    /// Calibration end, when a holdout check was made.
    pub calibration_end: Option<NaiveDate>,
    /// Fitted models.
    pub models: ModelsReport,
    /// Retention metrics.
    pub metrics: MetricsReport,
    /// Period of the cohort table.
    pub cohort_period: Period,
    /// Cohort table.
    pub cohorts: Vec<CohortRow>,
    /// RFM.
    pub rfm: RfmReport,
    /// CLV, when a purchase model and Gamma-Gamma are available.
    pub clv: Option<ClvReport>,
    /// Repeat-frequency histogram of the fitted customers against the BG/NBD.
    pub frequency_histogram: Option<FrequencyHistogram>,
    /// Holdout check (with a calibration end).
    pub holdout: Option<HoldoutCheck>,
    /// Weekly tracking curve of the fitted customers up to `as_of`.
    pub tracking: Option<Vec<TrackingPoint>>,
    /// Churn propensity (with a calibration end).
    pub churn: Option<ChurnModel>,
    /// Purchases in the horizon: how likely 0, 1, 2+ are (per customer in the customers CSV).
    pub purchase_counts: Option<PurchaseCounts>,
    /// Customers with the most value at risk.
    pub at_risk: Vec<AtRiskCustomer>,
    /// Warnings and reasons for missing figures.
    pub diagnostics: Vec<String>,
    /// Per-customer figures.
    #[serde(skip)]
    pub per_customer: CustomerTable,
}

struct Fits {
    bg: Option<BgNbd>,
    mbg: Option<MbgNbd>,
    pareto: Option<ParetoNbd>,
    gamma_gamma: Option<GammaGamma>,
    report: ModelsReport,
}

/// Fits the selected models, the purchase models and the spend model at once; failures are recorded
/// in `report.errors`.
fn fit_models(summaries: &CustomerSummaries, selection: ModelSelection) -> Fits {
    let ((data, (bg, (mbg, pareto))), gamma_gamma) = rayon::join(
        || match BtydData::from_summaries(summaries) {
            Ok(data) => (
                Ok(()),
                rayon::join(
                    || selection.bg_nbd.then(|| BgNbd::fit(&data)),
                    || {
                        rayon::join(
                            || selection.mbg_nbd.then(|| MbgNbd::fit(&data)),
                            || selection.pareto_nbd.then(|| ParetoNbd::fit(&data)),
                        )
                    },
                ),
            ),
            Err(e) => (Err(e), (None, (None, None))),
        },
        || selection.gamma_gamma.then(|| GammaGamma::fit(&summaries.frequency, &summaries.monetary_value)),
    );
    let mut report = ModelsReport {
        fitted_customers: summaries.len() as u64,
        fitted_through: Some(summaries.observation_end),
        ..ModelsReport::default()
    };
    if let Err(e) = data {
        report.errors.insert("data".into(), e.to_string());
    }
    let errors = &mut report.errors;
    Fits {
        bg: take_fit(bg, "bg_nbd", |f| f.model.params, &mut report.bg_nbd, errors),
        mbg: take_fit(mbg, "mbg_nbd", |f| f.model.params, &mut report.mbg_nbd, errors),
        pareto: take_fit(pareto, "pareto_nbd", |f| f.model.params, &mut report.pareto_nbd, errors),
        gamma_gamma: take_fit(gamma_gamma, "gamma_gamma", |f| f.model.params, &mut report.gamma_gamma, errors),
        report,
    }
}

/// The model of a selected fit, with its report put in `slot`; or its error recorded under `name`.
fn take_fit<M, P>(
    fit: Option<Result<Fitted<M>>>,
    name: &str,
    params: impl Fn(&Fitted<M>) -> P,
    slot: &mut Option<ModelReport<P>>,
    errors: &mut BTreeMap<String, String>,
) -> Option<M> {
    match fit? {
        Ok(f) => {
            *slot = Some(ModelReport {
                params: params(&f),
                log_likelihood: f.diagnostics.log_likelihood,
                diagnostics: f.diagnostics,
            });
            Some(f.model)
        }
        Err(e) => {
            errors.insert(name.to_string(), e.to_string());
            None
        }
    }
}

fn clv_histogram(values: &[f64]) -> Vec<HistogramBin> {
    if values.is_empty() {
        return Vec::new();
    }
    let mut sorted = values.to_vec();
    sorted.par_sort_unstable_by(f64::total_cmp);
    let top = sorted[((sorted.len() - 1) as f64 * 0.99) as usize].max(1.0);
    let bins = 20;
    let width = top / bins as f64;
    let mut counts = vec![0u64; bins];
    for v in values {
        counts[((v / width) as usize).min(bins - 1)] += 1;
    }
    (0..bins)
        .map(|i| HistogramBin {
            from: i as f64 * width,
            to: if i + 1 == bins { f64::INFINITY } else { (i + 1) as f64 * width },
            count: counts[i],
        })
        .collect()
}

/// Runs every analysis on the log as of `as_of` (inclusive).
pub fn analyze(log: &TransactionLog, options: &AnalyzeOptions, as_of: NaiveDate) -> Result<Report> {
    let unit = options.time_unit.unwrap_or(log.options().time_unit);
    let mut notes = Vec::new();
    let summaries = summarize(log, as_of, unit)?;
    let split: Option<CalibrationHoldout> = match options.calibration_end {
        Some(end) => Some(calibration_and_holdout(log, end, as_of, unit)?),
        None => None,
    };
    let fit_summaries = split.as_ref().map(|s| &s.calibration).unwrap_or(&summaries);

    // Models, and in parallel the model-free figures and the per-customer table's first columns.
    let (fits, (metrics, (cohorts, (rfm_table, mut table)))) = rayon::join(
        || fit_models(fit_summaries, options.models),
        || {
            rayon::join(
                || -> Result<MetricsReport> {
                    let periods = period_metrics(log, options.metrics_period, as_of)?;
                    let shop = shop_metrics(log, as_of, options.metrics_period, &periods, options.simple_clv)?;
                    Ok(MetricsReport { shop, period: options.metrics_period, periods })
                },
                || {
                    rayon::join(
                        || cohort_table(log, options.cohort_period, as_of),
                        || {
                            rayon::join(
                                || rfm(&summaries, &options.segment_map),
                                || customer_table(log, &summaries, as_of),
                            )
                        },
                    )
                },
            )
        },
    );
    let metrics = metrics?;
    let cohorts = cohorts?;
    for (name, error) in &fits.report.errors {
        notes.push(format!("{name}: {error}"));
    }
    if let Some(gg) = &fits.report.gamma_gamma {
        for note in gg.diagnostics.notes.iter().filter(|n| n.contains("q =") || n.contains("excluded")) {
            notes.push(format!("gamma_gamma: {note}"));
        }
    }
    if let Some(pareto) = &fits.report.pareto_nbd {
        for note in pareto.diagnostics.notes.iter().filter(|n| n.contains("grew together")) {
            notes.push(format!("pareto_nbd: {note}"));
        }
    }

    // The purchase model behind per-customer predictions: BG/NBD, else Pareto/NBD, else MBG/NBD.
    let purchase_model: Option<&dyn PurchaseModel> = fits
        .bg
        .as_ref()
        .map(|m| m as &dyn PurchaseModel)
        .or(fits.pareto.as_ref().map(|m| m as &dyn PurchaseModel))
        .or(fits.mbg.as_ref().map(|m| m as &dyn PurchaseModel));

    let n = summaries.len();
    table.recency_score = rfm_table.recency_score;
    table.frequency_score = rfm_table.frequency_score;
    table.monetary_score = rfm_table.monetary_score;
    table.segment = rfm_table.segment;

    let horizon = options.horizon_months as f64 * periods_per_month(unit);
    let purchase_counts = purchase_model.and_then(|model| {
        let history = History { frequency: &summaries.frequency, recency: &summaries.recency, age: &summaries.age };
        per_customer_predictions(model, horizon, options.horizon_months, history, &mut table, &mut notes)
    });
    let mut clv_report = None;
    if let Some(gg) = &fits.gamma_gamma {
        let mut undefined = 0u64;
        table.expected_value = (0..n)
            .map(|i| match gg.expected_average_value(summaries.frequency[i], summaries.monetary_value[i]) {
                Ok(v) => Some(v),
                Err(_) => {
                    undefined += 1;
                    None
                }
            })
            .collect();
        if undefined > 0 {
            notes.push(format!(
                "gamma_gamma: expected value undefined for {undefined} customers (p x + q <= 1); their CLV is null"
            ));
        }
        if let Some(model) = purchase_model {
            let inputs = ClvInputs {
                frequency: &summaries.frequency,
                recency: &summaries.recency,
                age: &summaries.age,
                expected_value: &table.expected_value,
            };
            match customer_lifetime_values(model, unit, inputs, options.horizon_months, options.monthly_discount_rate) {
                Ok(values) => {
                    table.clv = values;
                    let valued: Vec<f64> = table.clv.iter().flatten().copied().collect();
                    let mut sorted = valued.clone();
                    sorted.par_sort_unstable_by(f64::total_cmp);
                    let total: f64 = valued.iter().sum();
                    clv_report = Some(ClvReport {
                        model: model.name().into(),
                        horizon_months: options.horizon_months,
                        monthly_discount_rate: options.monthly_discount_rate,
                        customers_valued: valued.len() as u64,
                        customers_without_value: (n - valued.len()) as u64,
                        total,
                        mean: if valued.is_empty() { 0.0 } else { total / valued.len() as f64 },
                        median: crate::rhythm::percentile(&sorted, 0.5).unwrap_or(0.0),
                        histogram: clv_histogram(&valued),
                    });
                }
                Err(e) => notes.push(format!("clv: {e}")),
            }
        }
    }

    // Checks against the data.
    let mut histogram = None;
    let mut tracking = None;
    let mut holdout = None;
    let mut churn = None;
    if let Some(bg) = &fits.bg {
        match frequency_histogram(fit_summaries, bg, 7) {
            Ok(h) => histogram = Some(h),
            Err(e) => notes.push(format!("frequency histogram: {e}")),
        }
    }
    if let Some(model) = purchase_model {
        match tracking_curve(log, fit_summaries, model, as_of, 7) {
            Ok(t) => tracking = Some(t),
            Err(e) => notes.push(format!("tracking curve: {e}")),
        }
        if let Some(split) = &split {
            match holdout_check(model, split) {
                Ok(h) => holdout = Some(h),
                Err(e) => notes.push(format!("holdout check: {e}")),
            }
            match fit_churn_model(&ChurnData::from_split(split), split, Some(model)) {
                Ok(c) => churn = Some(c),
                Err(e) => notes.push(format!("churn: {e}")),
            }
        }
    }

    // At-risk list: repeat buyers by (1 − P(alive)) × total spend.
    let end_day = day_number(as_of);
    let value_at_risk = |i: usize| -> Option<f64> {
        let alive = table.probability_alive[i]?;
        (summaries.frequency[i] > 0).then(|| (1.0 - alive) * summaries.total_spend[i] as f64)
    };
    // Largest value first, ties by customer key; only the top of the list is ever ordered fully.
    let order =
        |a: &(f64, usize), b: &(f64, usize)| b.0.total_cmp(&a.0).then_with(|| table.key[a.1].cmp(&table.key[b.1]));
    let mut candidates: Vec<(f64, usize)> = (0..n).filter_map(|i| value_at_risk(i).map(|v| (v, i))).collect();
    let limit = options.at_risk_limit.min(candidates.len());
    if limit > 0 && limit < candidates.len() {
        candidates.select_nth_unstable_by(limit - 1, order);
    }
    candidates.truncate(limit);
    candidates.sort_by(order);
    let at_risk: Vec<AtRiskCustomer> = candidates
        .into_iter()
        .map(|(value, i)| AtRiskCustomer {
            customer: table.key[i].clone(),
            segment: table.segment[i].clone(),
            frequency: summaries.frequency[i],
            total_spend: summaries.total_spend[i],
            days_since_last_purchase: end_day - summaries.last_day[i],
            probability_alive: table.probability_alive[i].unwrap_or(1.0),
            probability_no_purchase: table.purchase_probabilities[i].map(|p| p[0]),
            value_at_risk: value,
        })
        .collect();

    let first_day = summaries.first_day.iter().min().copied().unwrap_or(end_day);
    let last_day = summaries.last_day.iter().max().copied().unwrap_or(end_day);
    Ok(Report {
        as_of,
        time_unit: unit,
        customers: n as u64,
        transactions: metrics.shop.transactions,
        records: log.record_count() as u64,
        first_purchase: date_of_day_number(first_day),
        last_purchase: date_of_day_number(last_day),
        calibration_end: options.calibration_end,
        models: fits.report,
        metrics,
        cohort_period: options.cohort_period,
        cohorts,
        rfm: RfmReport { segments: rfm_table.segments, grid: rfm_table.grid, map: options.segment_map.clone() },
        clv: clv_report,
        purchase_counts,
        frequency_histogram: histogram,
        holdout,
        tracking,
        churn,
        at_risk,
        diagnostics: notes,
        per_customer: table,
    })
}

/// The per-customer table with what needs neither a model nor the RFM scores: the summaries, first and
/// last purchase, and the gaps between visits; the other columns empty.
fn customer_table(log: &TransactionLog, summaries: &CustomerSummaries, as_of: NaiveDate) -> CustomerTable {
    let n = summaries.len();
    let gaps = gap_figures_of(log, &summaries.customer, as_of);
    CustomerTable {
        key: summaries.customer.par_iter().map(|&c| log.customer_key(c).clone()).collect(),
        frequency: summaries.frequency.clone(),
        recency: summaries.recency.clone(),
        age: summaries.age.clone(),
        monetary_value: summaries.monetary_value.clone(),
        total_spend: summaries.total_spend.clone(),
        first_purchase: summaries.first_day.par_iter().map(|&d| date_of_day_number(d)).collect(),
        last_purchase: summaries.last_day.par_iter().map(|&d| date_of_day_number(d)).collect(),
        probability_alive: vec![None; n],
        expected_purchases: vec![None; n],
        purchase_probabilities: vec![None; n],
        expected_value: vec![None; n],
        clv: vec![None; n],
        median_gap_days: gaps.median_gap_days,
        p90_gap_days: gaps.p90_gap_days,
        overdue: gaps.overdue,
        ..Default::default()
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

fn optional(value: Option<f64>) -> String {
    value.map(|v| format!("{v:.6}")).unwrap_or_default()
}

/// The customers' histories the predictions start from.
#[derive(Clone, Copy)]
struct History<'a> {
    frequency: &'a [u32],
    recency: &'a [f64],
    age: &'a [f64],
}

/// P(alive), expected purchases and the probabilities of 0, 1, 2+ purchases in the horizon, per
/// customer, into `table`. A figure that cannot be computed is noted and left out; the others stay:
/// P(alive) does not need the horizon part of the expectations, so it is kept when they fail.
fn per_customer_predictions(
    model: &dyn PurchaseModel,
    horizon: f64,
    horizon_months: u32,
    history: History<'_>,
    table: &mut CustomerTable,
    notes: &mut Vec<String>,
) -> Option<PurchaseCounts> {
    let History { frequency, recency, age } = history;
    match expected_purchases_bulk(model, horizon, frequency, recency, age) {
        Ok((expected, alive)) => {
            table.expected_purchases = expected.into_iter().map(Some).collect();
            table.probability_alive = alive.into_iter().map(Some).collect();
        }
        Err(e) => {
            notes.push(format!("{}: per-customer predictions: {e}", model.name()));
            table.probability_alive = (0..frequency.len())
                .map(|i| {
                    model.probability_alive(frequency[i] as f64, recency[i], age[i]).ok().filter(|p| p.is_finite())
                })
                .collect();
        }
    }
    let counts = purchase_probabilities_bulk(model, horizon, frequency, age, &table.probability_alive).and_then(
        |probabilities| {
            let mut new_customer =
                (0..5).map(|k| model.probability_of_purchases(k, horizon)).collect::<Result<Vec<_>>>()?;
            new_customer.push((1.0 - new_customer.iter().sum::<f64>()).max(0.0));
            Ok((probabilities, new_customer))
        },
    );
    match counts {
        Ok((probabilities, new_customer)) => {
            let sum = |k: usize| probabilities.iter().flatten().map(|p| p[k]).sum::<f64>();
            let counts = PurchaseCounts {
                model: model.name().into(),
                horizon_months,
                horizon,
                new_customer,
                customers_none: sum(0),
                customers_one: sum(1),
                customers_two_or_more: sum(2),
            };
            table.purchase_probabilities = probabilities;
            Some(counts)
        }
        Err(e) => {
            notes.push(format!("{}: probabilities of purchase counts: {e}", model.name()));
            None
        }
    }
}

/// Writes every per-customer figure of the report as CSV (header line first; empty cells where a
/// figure is undefined).
pub fn write_customers_csv<W: Write>(report: &Report, mut out: W) -> std::io::Result<()> {
    let t = &report.per_customer;
    writeln!(
        out,
        "customer,frequency,recency,age,monetary_value_minor,total_spend_minor,first_purchase,last_purchase,\
probability_alive,expected_purchases,p_no_purchase,p_one_purchase,p_two_or_more_purchases,expected_value_minor,\
clv_minor,r,f,m,segment,median_gap_days,p90_gap_days,overdue"
    )?;
    for i in 0..t.key.len() {
        let probability = |k: usize| optional(t.purchase_probabilities.get(i).copied().flatten().map(|p| p[k]));
        writeln!(
            out,
            "{},{},{:.6},{:.6},{:.2},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(&t.key[i].to_string()),
            t.frequency[i],
            t.recency[i],
            t.age[i],
            t.monetary_value[i],
            t.total_spend[i],
            t.first_purchase[i],
            t.last_purchase[i],
            optional(t.probability_alive[i]),
            optional(t.expected_purchases[i]),
            probability(0),
            probability(1),
            probability(2),
            optional(t.expected_value[i]),
            optional(t.clv[i]),
            t.recency_score[i],
            t.frequency_score[i],
            t.monetary_score[i],
            t.segment[i],
            optional(t.median_gap_days[i]),
            optional(t.p90_gap_days[i]),
            t.overdue[i],
        )?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AnalyticsError;

    /// A model whose P(alive) works and whose expectations fail, as a model near a singular point can.
    struct NoHorizon;

    impl PurchaseModel for NoHorizon {
        fn name(&self) -> &'static str {
            "stub"
        }
        fn probability_alive(&self, x: f64, _t_x: f64, _age: f64) -> Result<f64> {
            Ok(1.0 / (1.0 + x))
        }
        fn horizon_factor(&self, _t: f64, _x: f64, _age: f64) -> Result<f64> {
            Err(AnalyticsError::Numerical { what: "stub expected purchases", detail: "no horizon".into() })
        }
        fn history_factor(&self, x: f64, t_x: f64, age: f64) -> Result<f64> {
            self.probability_alive(x, t_x, age)
        }
        fn expected_purchases_population(&self, _t: f64) -> Result<f64> {
            Ok(1.0)
        }
        fn alive_probability_of_purchases(&self, n: u32, _t: f64, _x: f64, _age: f64) -> Result<f64> {
            Ok(if n == 0 { 0.5 } else { 0.25 })
        }
    }

    #[test]
    fn probability_alive_is_kept_when_expectations_fail() {
        let (frequency, recency, age) = (vec![0, 1, 3], vec![0.0, 2.0, 5.0], vec![10.0, 10.0, 10.0]);
        let mut table = CustomerTable {
            probability_alive: vec![None; 3],
            expected_purchases: vec![None; 3],
            purchase_probabilities: vec![None; 3],
            ..Default::default()
        };
        let mut notes = Vec::new();
        let history = History { frequency: &frequency, recency: &recency, age: &age };
        let counts = per_customer_predictions(&NoHorizon, 52.0, 12, history, &mut table, &mut notes).unwrap();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with("stub: per-customer predictions:") && notes[0].contains("no horizon"),
            "{notes:?}"
        );
        assert_eq!(table.expected_purchases, vec![None, None, None]);
        assert_eq!(table.probability_alive, vec![Some(1.0), Some(0.5), Some(0.25)]);
        // The purchase-count probabilities need P(alive) only: there for every customer.
        let none: Vec<f64> = table.purchase_probabilities.iter().map(|p| p.unwrap()[0]).collect();
        assert_eq!(none, vec![0.5, 0.75, 0.875]);
        assert!((counts.customers_none - 2.125).abs() < 1e-12);
        assert!(table.purchase_probabilities.iter().all(|p| (p.unwrap().iter().sum::<f64>() - 1.0).abs() < 1e-12));
    }
}
