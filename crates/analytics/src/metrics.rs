//! Retention metrics per calendar period, and shop-level figures.
//!
//! For each period: E customers who bought in it, N of them new (first purchase in it), S customers
//! who bought in the previous period. The classic retention rate ((E − N) / S) × 100 counts every
//! returning customer as retained, including customers reactivated after a gap; the true (cohort)
//! retention counts only customers who bought in both the previous period and this one. Both are
//! reported, with the reactivated customers that make the difference.

use chrono::NaiveDate;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{AnalyticsError, Result};
use crate::log::{TransactionLog, day_number};
use crate::period::Period;

/// Metrics of one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodMetrics {
    /// Period label, for example `2024-03`.
    pub period: String,
    /// First day of the period.
    pub start: NaiveDate,
    /// E: customers who bought in the period.
    pub active_customers: u64,
    /// N: customers whose first purchase was in the period.
    pub new_customers: u64,
    /// S: customers who bought in the previous period.
    pub previous_active_customers: u64,
    /// Customers who bought in both the previous period and this one.
    pub retained_customers: u64,
    /// Returning customers who did not buy in the previous period.
    pub reactivated_customers: u64,
    /// ((E − N) / S) × 100; counts reactivated customers as retained. `None` when S = 0.
    pub classic_retention_percent: Option<f64>,
    /// Retained / S. `None` when S = 0.
    pub true_retention_rate: Option<f64>,
    /// 1 − true retention rate.
    pub churn_rate: Option<f64>,
    /// Share of active customers who had bought before the period.
    pub returning_share: Option<f64>,
    /// Transactions in the period.
    pub transactions: u64,
    /// Revenue in minor units.
    pub revenue: i64,
    /// Revenue per transaction in minor units.
    pub average_order_value: Option<f64>,
    /// Transactions per active customer.
    pub purchase_frequency: Option<f64>,
}

/// Computes [`PeriodMetrics`] for every period from the first purchase to `as_of` (the last period
/// holds the data up to `as_of` only).
pub fn period_metrics(log: &TransactionLog, period: Period, as_of: NaiveDate) -> Result<Vec<PeriodMetrics>> {
    let everyone: Vec<u32> = (0..log.customer_count() as u32).collect();
    period_metrics_of_customers(log, &everyone, period, as_of)
}

/// [`period_metrics`] of a group of customers (log indices), for example one RFM segment or a
/// loyalty tier; the periods span the whole log, so groups line up.
pub fn period_metrics_of_customers(
    log: &TransactionLog,
    customers: &[u32],
    period: Period,
    as_of: NaiveDate,
) -> Result<Vec<PeriodMetrics>> {
    let end_day = day_number(as_of);
    let days = log.days();
    let amounts = log.amounts();
    let Some((first_day, _)) = log.day_range() else {
        return Err(AnalyticsError::NoTransactions(as_of.to_string()));
    };
    if first_day > end_day {
        return Err(AnalyticsError::NoTransactions(as_of.to_string()));
    }
    let first = period.index(first_day);
    let count = (period.index(end_day) - first + 1) as usize;
    // Accumulators per period: active, new, retained, reactivated, transactions, revenue.
    let zero = || {
        (
            vec![0u64; count],
            vec![0u64; count],
            vec![0u64; count],
            vec![0u64; count],
            vec![0u64; count],
            vec![0i64; count],
        )
    };
    let acc = customers
        .par_iter()
        .copied()
        .with_min_len(4096)
        .fold(zero, |mut acc, c| {
            let rows = log.rows_of(c);
            let d = &days[rows.clone()];
            let k = d.partition_point(|&x| x <= end_day);
            let mut previous: Option<usize> = None;
            for j in 0..k {
                let p = (period.index(d[j]) - first) as usize;
                acc.4[p] += 1;
                acc.5[p] += amounts[rows.start + j];
                if previous == Some(p) {
                    continue;
                }
                acc.0[p] += 1;
                match previous {
                    None => acc.1[p] += 1,
                    Some(q) if q + 1 == p => acc.2[p] += 1,
                    Some(_) => acc.3[p] += 1,
                }
                previous = Some(p);
            }
            acc
        })
        .reduce(zero, |mut a, b| {
            for i in 0..count {
                a.0[i] += b.0[i];
                a.1[i] += b.1[i];
                a.2[i] += b.2[i];
                a.3[i] += b.3[i];
                a.4[i] += b.4[i];
                a.5[i] += b.5[i];
            }
            a
        });
    let ratio = |a: f64, b: u64| if b > 0 { Some(a / b as f64) } else { None };
    Ok((0..count)
        .map(|i| {
            let (e, n, retained, reactivated) = (acc.0[i], acc.1[i], acc.2[i], acc.3[i]);
            let s = if i > 0 { acc.0[i - 1] } else { 0 };
            let true_retention = ratio(retained as f64, s);
            PeriodMetrics {
                period: period.label(first + i as i32),
                start: period.start(first + i as i32),
                active_customers: e,
                new_customers: n,
                previous_active_customers: s,
                retained_customers: retained,
                reactivated_customers: reactivated,
                classic_retention_percent: ratio((e - n) as f64 * 100.0, s),
                true_retention_rate: true_retention,
                churn_rate: true_retention.map(|r| 1.0 - r),
                returning_share: ratio((e - n) as f64, e),
                transactions: acc.4[i],
                revenue: acc.5[i],
                average_order_value: ratio(acc.5[i] as f64, acc.4[i]),
                purchase_frequency: ratio(acc.4[i] as f64, e),
            }
        })
        .collect())
}

/// Options of the simple (non-model) customer lifetime value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SimpleClvOptions {
    /// Gross margin as a fraction of revenue (1.0 = revenue).
    pub margin: f64,
    /// Annual discount rate (0.1 = 10 % a year).
    pub annual_discount_rate: f64,
    /// Expected customer lifespan in years; `None` estimates it as 1 / annual churn from the true
    /// retention of the periods.
    pub lifespan_years: Option<f64>,
}

impl Default for SimpleClvOptions {
    fn default() -> Self {
        SimpleClvOptions { margin: 1.0, annual_discount_rate: 0.1, lifespan_years: None }
    }
}

/// Shop-level figures as of a date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShopMetrics {
    /// Customers first seen by `as_of`.
    pub customers: u64,
    /// Transactions up to `as_of`.
    pub transactions: u64,
    /// Revenue in minor units.
    pub revenue: i64,
    /// Share of customers with at least two transactions.
    pub repeat_purchase_rate: f64,
    /// Revenue per transaction, minor units.
    pub average_order_value: f64,
    /// Transactions per customer per year over the customers' observed time.
    pub purchase_frequency_per_year: f64,
    /// Mean true retention per period, weighted by S.
    pub mean_true_retention_rate: Option<f64>,
    /// Lifespan used for the simple CLV, in years.
    pub lifespan_years: Option<f64>,
    /// Simple CLV: AOV × yearly frequency × margin over the lifespan, discounted yearly; minor units.
    pub simple_clv: Option<f64>,
}

/// Computes [`ShopMetrics`]; `periods` are the metrics of `period`-long periods (for the lifespan).
pub fn shop_metrics(
    log: &TransactionLog,
    as_of: NaiveDate,
    period: Period,
    periods: &[PeriodMetrics],
    options: SimpleClvOptions,
) -> Result<ShopMetrics> {
    let end_day = day_number(as_of);
    let days = log.days();
    let amounts = log.amounts();
    let (customers, repeaters, transactions, revenue, customer_days) = (0..log.customer_count() as u32)
        .into_par_iter()
        .with_min_len(4096)
        .map(|c| {
            let rows = log.rows_of(c);
            let d = &days[rows.clone()];
            let k = d.partition_point(|&x| x <= end_day);
            if k == 0 {
                return (0u64, 0u64, 0u64, 0i64, 0i64);
            }
            let revenue: i64 = amounts[rows.start..rows.start + k].iter().sum();
            (1, (k >= 2) as u64, k as u64, revenue, (end_day - d[0] + 1) as i64)
        })
        .reduce(|| (0, 0, 0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2, a.3 + b.3, a.4 + b.4));
    if customers == 0 {
        return Err(AnalyticsError::NoTransactions(as_of.to_string()));
    }
    let average_order_value = revenue as f64 / transactions as f64;
    let purchase_frequency_per_year = transactions as f64 / (customer_days as f64 / 365.2425);
    let (retained, base) = periods
        .iter()
        .filter(|p| p.previous_active_customers > 0)
        .fold((0u64, 0u64), |(r, s), p| (r + p.retained_customers, s + p.previous_active_customers));
    let mean_true_retention_rate = (base > 0).then(|| retained as f64 / base as f64);
    let lifespan_years = options.lifespan_years.or_else(|| {
        let r = mean_true_retention_rate?;
        (r < 1.0).then(|| period.years() / (1.0 - r))
    });
    let simple_clv = lifespan_years.map(|years| {
        let per_year = average_order_value * purchase_frequency_per_year * options.margin;
        let mut total = 0.0;
        let mut year = 0.0;
        while year < years {
            let share = (years - year).min(1.0);
            total += per_year * share / (1.0 + options.annual_discount_rate).powf(year);
            year += 1.0;
        }
        total
    });
    Ok(ShopMetrics {
        customers,
        transactions,
        revenue,
        repeat_purchase_rate: repeaters as f64 / customers as f64,
        average_order_value,
        purchase_frequency_per_year,
        mean_true_retention_rate,
        lifespan_years,
        simple_clv,
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
    fn classic_and_true_retention_differ_by_reactivated_customers() {
        let mut b = TransactionLogBuilder::new(LogOptions::default());
        // a: Jan, Feb, Mar; b: Jan, Mar (reactivated in Mar); c: new in Mar.
        for (k, m) in [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 3), ("c", 3)] {
            b.push(k, date(2024, m, 10), 1000).unwrap();
        }
        let log = b.build();
        let p = period_metrics(&log, Period::Month, date(2024, 3, 31)).unwrap();
        assert_eq!(p.len(), 3);
        let march = &p[2];
        assert_eq!((march.active_customers, march.new_customers, march.previous_active_customers), (3, 1, 1));
        assert_eq!((march.retained_customers, march.reactivated_customers), (1, 1));
        assert_eq!(march.classic_retention_percent, Some(200.0));
        assert_eq!(march.true_retention_rate, Some(1.0));
        assert_eq!(p[1].true_retention_rate, Some(0.5));
        let only_b = period_metrics_of_customers(&log, &[1], Period::Month, date(2024, 3, 31)).unwrap();
        assert_eq!(only_b.len(), 3);
        assert_eq!((only_b[2].active_customers, only_b[2].reactivated_customers), (1, 1));
        let shop = shop_metrics(&log, date(2024, 3, 31), Period::Month, &p, SimpleClvOptions::default()).unwrap();
        assert_eq!(shop.customers, 3);
        assert!((shop.repeat_purchase_rate - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(shop.average_order_value, 1000.0);
    }
}
