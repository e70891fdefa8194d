//! Model checking: how well a fitted purchase model predicts what happened after the calibration
//! period (in total and by calibration frequency 0, 1, ..., 7+), the tracking curve of cumulative
//! repeat transactions (actual against expected), and the calibration frequency histogram against
//! the model.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{AnalyticsError, Result};
use crate::log::{TransactionLog, date_of_day_number, day_number};
use crate::models::{BgNbd, PurchaseModel};
use crate::summary::{CalibrationHoldout, CustomerSummaries};

/// Predicted against actual holdout purchases of the customers with one calibration frequency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrequencyGroupCheck {
    /// Calibration frequency; the last group (`7+`) holds 7 and more.
    pub frequency: String,
    /// Customers in the group.
    pub customers: u64,
    /// Mean actual holdout transactions.
    pub actual_mean: f64,
    /// Mean predicted holdout transactions.
    pub predicted_mean: f64,
}

/// Predicted against actual holdout purchases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldoutCheck {
    /// Model name.
    pub model: String,
    /// Length of the holdout period in the model's time unit.
    pub duration: f64,
    /// Total actual holdout transactions.
    pub actual_total: f64,
    /// Total predicted holdout transactions.
    pub predicted_total: f64,
    /// By calibration frequency 0, 1, ..., 6, 7+.
    pub by_frequency: Vec<FrequencyGroupCheck>,
}

/// Compares a model fitted on `split.calibration` with the holdout period.
pub fn holdout_check(model: &dyn PurchaseModel, split: &CalibrationHoldout) -> Result<HoldoutCheck> {
    let cal = &split.calibration;
    let predicted: Vec<f64> = (0..cal.len())
        .into_par_iter()
        .map(|i| model.expected_purchases(split.duration_holdout, cal.frequency[i] as f64, cal.recency[i], cal.age[i]))
        .collect::<Result<_>>()?;
    let mut groups = [(0u64, 0f64, 0f64); 8];
    for i in 0..cal.len() {
        let g = (cal.frequency[i] as usize).min(7);
        groups[g].0 += 1;
        groups[g].1 += split.frequency_holdout[i] as f64;
        groups[g].2 += predicted[i];
    }
    Ok(HoldoutCheck {
        model: model.name().to_string(),
        duration: split.duration_holdout,
        actual_total: groups.iter().map(|g| g.1).sum(),
        predicted_total: groups.iter().map(|g| g.2).sum(),
        by_frequency: groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.0 > 0)
            .map(|(i, g)| FrequencyGroupCheck {
                frequency: if i == 7 { "7+".into() } else { i.to_string() },
                customers: g.0,
                actual_mean: g.1 / g.0 as f64,
                predicted_mean: g.2 / g.0 as f64,
            })
            .collect(),
    })
}

/// One point of the tracking curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackingPoint {
    /// Last day of the step.
    pub date: NaiveDate,
    /// Actual repeat transactions in the step.
    pub actual: f64,
    /// Expected repeat transactions in the step.
    pub expected: f64,
    /// Cumulative actual repeat transactions.
    pub actual_cumulative: f64,
    /// Cumulative expected repeat transactions.
    pub expected_cumulative: f64,
}

/// Repeat transactions of the summarised customers per `step_days`-day step from the first purchase
/// to `end`, against the model's expectation Σ over acquisition days f of n_f · E[X((d − f) / unit)].
pub fn tracking_curve(
    log: &TransactionLog,
    customers: &CustomerSummaries,
    model: &dyn PurchaseModel,
    end: NaiveDate,
    step_days: i32,
) -> Result<Vec<TrackingPoint>> {
    if customers.is_empty() || step_days <= 0 {
        return Err(AnalyticsError::InvalidInput("tracking curve needs customers and a positive step".into()));
    }
    let unit = customers.time_unit.days();
    let start = *customers.first_day.iter().min().expect("not empty");
    let end_day = day_number(end);
    if end_day < start {
        return Err(AnalyticsError::DateOrder {
            what: "tracking curve",
            earlier: date_of_day_number(start).to_string(),
            later: end.to_string(),
        });
    }
    let steps = ((end_day - start) / step_days + 1) as usize;
    let days = log.days();
    let actual = customers
        .customer
        .par_iter()
        .fold(
            || vec![0f64; steps],
            |mut acc, &c| {
                for &d in days[log.rows_of(c)].iter().skip(1) {
                    if d <= end_day {
                        acc[((d - start) / step_days) as usize] += 1.0;
                    }
                }
                acc
            },
        )
        .reduce(
            || vec![0f64; steps],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        );
    let mut acquired: BTreeMap<i32, f64> = BTreeMap::new();
    for &f in &customers.first_day {
        *acquired.entry(f).or_default() += 1.0;
    }
    let acquired: Vec<(i32, f64)> = acquired.into_iter().collect();
    // E[X(t)] depends on the days between acquisition and the step's end only: once per number of days.
    let population: Vec<f64> = (0..=(end_day - start))
        .into_par_iter()
        .map(|days| model.expected_purchases_population(days as f64 / unit))
        .collect::<Result<_>>()?;
    let cumulative_expected: Vec<f64> = (0..steps)
        .into_par_iter()
        .map(|k| {
            let step_end = (start + (k as i32 + 1) * step_days - 1).min(end_day);
            acquired
                .iter()
                .filter(|(f, _)| *f <= step_end)
                .map(|&(f, n)| n * population[(step_end - f) as usize])
                .sum::<f64>()
        })
        .collect();
    let mut points = Vec::with_capacity(steps);
    let mut actual_cumulative = 0.0;
    for k in 0..steps {
        actual_cumulative += actual[k];
        let previous = if k > 0 { cumulative_expected[k - 1] } else { 0.0 };
        points.push(TrackingPoint {
            date: date_of_day_number((start + (k as i32 + 1) * step_days - 1).min(end_day)),
            actual: actual[k],
            expected: cumulative_expected[k] - previous,
            actual_cumulative,
            expected_cumulative: cumulative_expected[k],
        });
    }
    Ok(points)
}

/// Customers by repeat frequency 0..=max−1 and max+ (actual), against the BG/NBD expectation
/// Σ_i P(X(T_i) = x).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrequencyHistogram {
    /// Labels `0`, `1`, ..., `7+`.
    pub frequency: Vec<String>,
    /// Customers with that frequency.
    pub actual: Vec<f64>,
    /// Expected customers under the model.
    pub expected: Vec<f64>,
}

/// Frequency histogram of `summaries` against a BG/NBD model, frequencies grouped at `max`+.
pub fn frequency_histogram(summaries: &CustomerSummaries, model: &BgNbd, max: u32) -> Result<FrequencyHistogram> {
    let bins = max as usize + 1;
    let mut actual = vec![0f64; bins];
    let mut ages: BTreeMap<u64, f64> = BTreeMap::new();
    for i in 0..summaries.len() {
        actual[(summaries.frequency[i] as usize).min(max as usize)] += 1.0;
        *ages.entry(summaries.age[i].to_bits()).or_default() += 1.0;
    }
    let ages: Vec<(f64, f64)> = ages.into_iter().map(|(a, n)| (f64::from_bits(a), n)).collect();
    // Rows in parallel, added in order: the same figures on every run.
    let rows = ages
        .par_iter()
        .map(|&(age, n)| {
            let mut row = vec![0f64; bins];
            let mut below = 0.0;
            for x in 0..max {
                let p = model.probability_of_purchases(x, age)?;
                row[x as usize] = n * p;
                below += p;
            }
            row[max as usize] = n * (1.0 - below).max(0.0);
            Ok(row)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut expected = vec![0f64; bins];
    for row in rows {
        expected.iter_mut().zip(row).for_each(|(x, y)| *x += y);
    }
    Ok(FrequencyHistogram {
        frequency: (0..bins).map(|x| if x == max as usize { format!("{x}+") } else { x.to_string() }).collect(),
        actual,
        expected,
    })
}
