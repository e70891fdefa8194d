//! Per-customer summaries: frequency, recency, age and monetary value, the inputs of every BTYD model,
//! plus a calibration / holdout split for model checking.
//!
//! Conventions follow `lifetimes.utils.summary_data_from_transaction_data` and
//! `calibration_and_holdout_data`: the first purchase is not a repeat purchase; `frequency` x counts
//! repeat transactions (after same-day merging, which the log does); `recency` t_x is the time from the
//! first to the last purchase; `age` T the time from the first purchase to the observation end;
//! `monetary_value` the mean value of the repeat transactions (0 for customers without one).
//! Purchases after the observation end are ignored and customers whose first purchase lies after it
//! are left out. All dates are inclusive days: a purchase on the observation end counts, and
//! `age = (observation_end - first_purchase) / unit`.

use chrono::NaiveDate;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{AnalyticsError, Result};
use crate::log::{TimeUnit, TransactionLog, date_of_day_number, day_number};

/// Summaries of every customer active by the observation end, as columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerSummaries {
    /// Unit of `recency` and `age`.
    pub time_unit: TimeUnit,
    /// Last day (inclusive) of the observation.
    pub observation_end: NaiveDate,
    /// Customer index in the log.
    pub customer: Vec<u32>,
    /// Repeat transactions x.
    pub frequency: Vec<u32>,
    /// Time from first to last purchase t_x, in `time_unit`.
    pub recency: Vec<f64>,
    /// Time from first purchase to the observation end T, in `time_unit`.
    pub age: Vec<f64>,
    /// Mean value of repeat transactions in minor units, 0 without repeat transactions.
    pub monetary_value: Vec<f64>,
    /// Day of the first purchase (days since 1970-01-01).
    pub first_day: Vec<i32>,
    /// Day of the last purchase up to the observation end.
    pub last_day: Vec<i32>,
    /// Total spend up to the observation end, in minor units, first purchase included.
    pub total_spend: Vec<i64>,
}

impl CustomerSummaries {
    /// Number of customers summarised.
    pub fn len(&self) -> usize {
        self.customer.len()
    }
    /// True when nobody is summarised.
    pub fn is_empty(&self) -> bool {
        self.customer.is_empty()
    }
    /// Date of the first purchase of row `row`.
    pub fn first_purchase(&self, row: usize) -> NaiveDate {
        date_of_day_number(self.first_day[row])
    }
    /// Date of the last purchase of row `row`.
    pub fn last_purchase(&self, row: usize) -> NaiveDate {
        date_of_day_number(self.last_day[row])
    }
    /// Number of customers with at least one repeat transaction.
    pub fn repeat_customers(&self) -> usize {
        self.frequency.iter().filter(|&&x| x > 0).count()
    }
}

struct Row {
    customer: u32,
    frequency: u32,
    recency: f64,
    age: f64,
    monetary_value: f64,
    first_day: i32,
    last_day: i32,
    total_spend: i64,
}

fn summarize_rows(log: &TransactionLog, end_day: i32, unit: TimeUnit) -> Vec<Row> {
    let unit_days = unit.days();
    let days = log.days();
    let amounts = log.amounts();
    (0..log.customer_count() as u32)
        .into_par_iter()
        .with_min_len(4096)
        .filter_map(|c| {
            let rows = log.rows_of(c);
            let customer_days = &days[rows.clone()];
            let k = customer_days.partition_point(|&d| d <= end_day);
            if k == 0 {
                return None;
            }
            let customer_amounts = &amounts[rows.start..rows.start + k];
            let total: i64 = customer_amounts.iter().sum();
            let frequency = (k - 1) as u32;
            let monetary_value =
                if frequency > 0 { (total - customer_amounts[0]) as f64 / frequency as f64 } else { 0.0 };
            let first_day = customer_days[0];
            let last_day = customer_days[k - 1];
            Some(Row {
                customer: c,
                frequency,
                recency: (last_day - first_day) as f64 / unit_days,
                age: (end_day - first_day) as f64 / unit_days,
                monetary_value,
                first_day,
                last_day,
                total_spend: total,
            })
        })
        .collect()
}

/// Summarises every customer whose first purchase is on or before `observation_end`.
pub fn summarize(log: &TransactionLog, observation_end: NaiveDate, unit: TimeUnit) -> Result<CustomerSummaries> {
    let rows = summarize_rows(log, day_number(observation_end), unit);
    if rows.is_empty() {
        return Err(AnalyticsError::NoTransactions(observation_end.to_string()));
    }
    let mut s = CustomerSummaries {
        time_unit: unit,
        observation_end,
        customer: Vec::with_capacity(rows.len()),
        frequency: Vec::with_capacity(rows.len()),
        recency: Vec::with_capacity(rows.len()),
        age: Vec::with_capacity(rows.len()),
        monetary_value: Vec::with_capacity(rows.len()),
        first_day: Vec::with_capacity(rows.len()),
        last_day: Vec::with_capacity(rows.len()),
        total_spend: Vec::with_capacity(rows.len()),
    };
    for r in rows {
        s.customer.push(r.customer);
        s.frequency.push(r.frequency);
        s.recency.push(r.recency);
        s.age.push(r.age);
        s.monetary_value.push(r.monetary_value);
        s.first_day.push(r.first_day);
        s.last_day.push(r.last_day);
        s.total_spend.push(r.total_spend);
    }
    Ok(s)
}

/// A calibration summary and what the same customers did in the holdout period after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationHoldout {
    /// Summaries at the calibration end (customers first seen by then).
    pub calibration: CustomerSummaries,
    /// Last day (inclusive) of the holdout period.
    pub observation_end: NaiveDate,
    /// Transactions in the holdout period (calibration end, observation end].
    pub frequency_holdout: Vec<u32>,
    /// Mean value of holdout transactions in minor units, 0 without any.
    pub monetary_value_holdout: Vec<f64>,
    /// Length of the holdout period in the summary's time unit.
    pub duration_holdout: f64,
}

/// Splits the log at `calibration_end`: calibration summaries for customers first seen by then, and
/// their transactions in the holdout period up to `observation_end` (as `lifetimes`'
/// `calibration_and_holdout_data`).
pub fn calibration_and_holdout(
    log: &TransactionLog,
    calibration_end: NaiveDate,
    observation_end: NaiveDate,
    unit: TimeUnit,
) -> Result<CalibrationHoldout> {
    if calibration_end > observation_end {
        return Err(AnalyticsError::DateOrder {
            what: "calibration end and observation end",
            earlier: calibration_end.to_string(),
            later: observation_end.to_string(),
        });
    }
    let calibration = summarize(log, calibration_end, unit)?;
    let cal_day = day_number(calibration_end);
    let end_day = day_number(observation_end);
    let days = log.days();
    let amounts = log.amounts();
    let (frequency_holdout, monetary_value_holdout): (Vec<u32>, Vec<f64>) = calibration
        .customer
        .par_iter()
        .with_min_len(4096)
        .map(|&c| {
            let rows = log.rows_of(c);
            let d = &days[rows.clone()];
            let from = d.partition_point(|&x| x <= cal_day);
            let to = d.partition_point(|&x| x <= end_day);
            let n = to - from;
            let total: i64 = amounts[rows.start + from..rows.start + to].iter().sum();
            (n as u32, if n > 0 { total as f64 / n as f64 } else { 0.0 })
        })
        .unzip();
    Ok(CalibrationHoldout {
        calibration,
        observation_end,
        frequency_holdout,
        monetary_value_holdout,
        duration_holdout: (end_day - cal_day) as f64 / unit.days(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{LogOptions, TransactionLogBuilder};

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn summary_follows_lifetimes_conventions() {
        let mut b = TransactionLogBuilder::new(LogOptions { time_unit: TimeUnit::Day, merge_same_day: true });
        b.push("a", date(2024, 1, 1), 1000).unwrap();
        b.push("a", date(2024, 1, 1), 500).unwrap(); // same day: merged into the first purchase
        b.push("a", date(2024, 1, 11), 200).unwrap();
        b.push("a", date(2024, 1, 21), 400).unwrap();
        b.push("a", date(2024, 2, 21), 999).unwrap(); // after the end: ignored
        b.push("b", date(2024, 1, 30), 300).unwrap();
        b.push("c", date(2024, 2, 2), 300).unwrap(); // first seen after the end: left out
        let log = b.build();
        let s = summarize(&log, date(2024, 1, 31), TimeUnit::Day).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.frequency, vec![2, 0]);
        assert_eq!(s.recency, vec![20.0, 0.0]);
        assert_eq!(s.age, vec![30.0, 1.0]);
        assert_eq!(s.monetary_value, vec![300.0, 0.0]);
        assert_eq!(s.total_spend, vec![2100, 300]);
        assert_eq!(s.last_purchase(0), date(2024, 1, 21));

        let split = calibration_and_holdout(&log, date(2024, 1, 15), date(2024, 2, 29), TimeUnit::Day).unwrap();
        assert_eq!(split.calibration.len(), 1);
        assert_eq!(split.calibration.frequency, vec![1]);
        assert_eq!(split.frequency_holdout, vec![2]);
        assert_eq!(split.monetary_value_holdout, vec![(400.0 + 999.0) / 2.0]);
        assert_eq!(split.duration_holdout, 45.0);
    }
}
