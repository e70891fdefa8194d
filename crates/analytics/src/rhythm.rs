//! Visit rhythm of a customer: weekday (and hour, where the log has times) profile, the typical gap
//! between visits (median and 90th percentile, linear interpolation as numpy), the usual items (top
//! SKUs), and an overdue flag when the current gap exceeds the customer's own 90th percentile (only
//! for customers with at least two gaps, so one gap alone never makes anyone overdue).

use chrono::{Datelike, NaiveDate};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::log::{TransactionLog, date_of_day_number, day_number};

/// The rhythm of one customer's visits up to `as_of`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitRhythm {
    /// Customer index in the log.
    pub customer: u32,
    /// Transactions up to `as_of`.
    pub transactions: u32,
    /// Transactions by weekday, Monday first.
    pub weekday_counts: [u32; 7],
    /// Transactions by hour of day, when the log has times.
    pub hour_counts: Option<[u32; 24]>,
    /// Median gap between consecutive transactions, in days.
    pub median_gap_days: Option<f64>,
    /// 90th percentile of the gaps, in days.
    pub p90_gap_days: Option<f64>,
    /// Days from the last transaction to `as_of`.
    pub days_since_last: Option<i32>,
    /// The current gap exceeds the 90th percentile of the customer's own gaps.
    pub overdue: bool,
    /// Most frequent SKUs with their transaction counts, most frequent first (ties by name).
    pub top_skus: Vec<(String, u32)>,
}

/// The p-th percentile (0..=1) of sorted values, with linear interpolation.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let position = p.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let low = position.floor() as usize;
    let high = position.ceil() as usize;
    Some(sorted[low] + (sorted[high] - sorted[low]) * (position - low as f64))
}

fn gaps(days: &[i32]) -> Vec<f64> {
    let mut gaps: Vec<f64> = days.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
    gaps.sort_by(f64::total_cmp);
    gaps
}

/// The visit rhythm of `customer` up to `as_of`, with the `top` most frequent SKUs.
pub fn visit_rhythm(log: &TransactionLog, customer: u32, as_of: NaiveDate, top: usize) -> VisitRhythm {
    let end = day_number(as_of);
    let rows = log.rows_of(customer);
    let days = &log.days()[rows.clone()];
    let k = days.partition_point(|&d| d <= end);
    let days = &days[..k];
    let mut weekday_counts = [0u32; 7];
    for &d in days {
        weekday_counts[date_of_day_number(d).weekday().num_days_from_monday() as usize] += 1;
    }
    let hour_counts = log.seconds_of_day().map(|seconds| {
        let mut hours = [0u32; 24];
        for &s in &seconds[rows.start..rows.start + k] {
            hours[(s / 3600).min(23) as usize] += 1;
        }
        hours
    });
    let (median, p90, since, overdue) = gap_figures(days, end);
    let mut top_skus = Vec::new();
    if let Some(skus) = log.skus() {
        let mut counts: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
        for t in rows.start..rows.start + k {
            let mut seen: Vec<u32> = skus.ids[skus.start[t] as usize..skus.start[t + 1] as usize].to_vec();
            seen.sort_unstable();
            seen.dedup();
            for id in seen {
                *counts.entry(id).or_default() += 1;
            }
        }
        let mut ranked: Vec<(String, u32)> =
            counts.into_iter().map(|(id, n)| (skus.names[id as usize].clone(), n)).collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(top);
        top_skus = ranked;
    }
    VisitRhythm {
        customer,
        transactions: k as u32,
        weekday_counts,
        hour_counts,
        median_gap_days: median,
        p90_gap_days: p90,
        days_since_last: since,
        overdue,
        top_skus,
    }
}

fn gap_figures(days: &[i32], end: i32) -> (Option<f64>, Option<f64>, Option<i32>, bool) {
    let gaps = gaps(days);
    let median = percentile(&gaps, 0.5);
    let p90 = percentile(&gaps, 0.9);
    let since = days.last().map(|&d| end - d);
    let overdue = gaps.len() >= 2 && matches!((since, p90), (Some(s), Some(p)) if s as f64 > p);
    (median, p90, since, overdue)
}

/// Gap figures of many customers at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapFigures {
    /// Median gap in days.
    pub median_gap_days: Vec<Option<f64>>,
    /// 90th percentile gap in days.
    pub p90_gap_days: Vec<Option<f64>>,
    /// Overdue flags.
    pub overdue: Vec<bool>,
}

/// Median and 90th percentile gaps and overdue flags of `customers` up to `as_of`, in parallel.
pub fn gap_figures_of(log: &TransactionLog, customers: &[u32], as_of: NaiveDate) -> GapFigures {
    let end = day_number(as_of);
    let figures: Vec<(Option<f64>, Option<f64>, bool)> = customers
        .par_iter()
        .with_min_len(4096)
        .map(|&c| {
            let days = &log.days()[log.rows_of(c)];
            let k = days.partition_point(|&d| d <= end);
            let (m, p, _, o) = gap_figures(&days[..k], end);
            (m, p, o)
        })
        .collect();
    GapFigures {
        median_gap_days: figures.iter().map(|f| f.0).collect(),
        p90_gap_days: figures.iter().map(|f| f.1).collect(),
        overdue: figures.iter().map(|f| f.2).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{LogOptions, TransactionLogBuilder};

    #[test]
    fn rhythm_of_a_weekly_customer_who_stopped() {
        let mut b = TransactionLogBuilder::new(LogOptions::default());
        let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(); // a Monday
        for week in 0..10 {
            let at = (start + chrono::Duration::days(7 * week)).and_hms_opt(18, 30, 0).unwrap();
            b.push_with_skus("kim", at, 500, &["bread", if week % 2 == 0 { "milk" } else { "eggs" }]).unwrap();
        }
        let log = b.build();
        let as_of = start + chrono::Duration::days(63 + 20);
        let r = visit_rhythm(&log, 0, as_of, 2);
        assert_eq!(r.transactions, 10);
        assert_eq!(r.weekday_counts[0], 10);
        assert_eq!(r.hour_counts.unwrap()[18], 10);
        assert_eq!(r.median_gap_days, Some(7.0));
        assert_eq!(r.p90_gap_days, Some(7.0));
        assert_eq!(r.days_since_last, Some(20));
        assert!(r.overdue);
        assert_eq!(r.top_skus, vec![("bread".to_string(), 10), ("eggs".to_string(), 5)]);
        let g = gap_figures_of(&log, &[0], start + chrono::Duration::days(65));
        assert_eq!(g.overdue, vec![false]);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.9), Some(3.7));
    }
}
