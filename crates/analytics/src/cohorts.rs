//! Cohort tables: customers grouped by the period of their first purchase (month or week), with the
//! share that bought again in period N after it ("returned in N") and in period N or later, customer
//! counts and revenue. Period 0 is the acquisition period (retention 1.0). Cells of periods that have
//! not started by `as_of` are `None` (null in JSON), never zero; the period holding `as_of` is
//! observed so far.

use chrono::NaiveDate;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{AnalyticsError, Result};
use crate::log::{TransactionLog, day_number};
use crate::period::Period;

/// One cohort's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortRow {
    /// Label of the acquisition period, for example `2024-03`.
    pub cohort: String,
    /// First day of the acquisition period.
    pub start: NaiveDate,
    /// Customers acquired in the period.
    pub size: u64,
    /// Fraction of the cohort that bought in period N (N = 0, 1, ...).
    pub retention: Vec<Option<f64>>,
    /// Fraction that bought in period N or later.
    pub retention_or_later: Vec<Option<f64>>,
    /// Customers who bought in period N.
    pub customers: Vec<Option<u64>>,
    /// Revenue in period N, minor units.
    pub revenue: Vec<Option<i64>>,
    /// Revenue in period N over revenue in period 0.
    pub revenue_retention: Vec<Option<f64>>,
}

/// Builds the cohort table of all customers first seen on or before `as_of`.
pub fn cohort_table(log: &TransactionLog, period: Period, as_of: NaiveDate) -> Result<Vec<CohortRow>> {
    let end_day = day_number(as_of);
    let days = log.days();
    let amounts = log.amounts();
    let Some((first_day, _)) = log.day_range() else {
        return Err(AnalyticsError::NoTransactions(as_of.to_string()));
    };
    if first_day > end_day {
        return Err(AnalyticsError::NoTransactions(as_of.to_string()));
    }
    let first_period = period.index(first_day);
    let last_period = period.index(end_day);
    let cohorts = (last_period - first_period + 1) as usize;
    let width = cohorts; // offsets 0..cohorts-1
    let cells = cohorts * width;
    // Per thread: [size | customers | or_later_at | revenue] accumulators.
    let (size, customers, or_later_at, revenue) = (0..log.customer_count() as u32)
        .into_par_iter()
        .with_min_len(4096)
        .fold(
            || (vec![0u64; cohorts], vec![0u64; cells], vec![0u64; cells], vec![0i64; cells]),
            |mut acc, c| {
                let rows = log.rows_of(c);
                let d = &days[rows.clone()];
                let k = d.partition_point(|&x| x <= end_day);
                if k == 0 {
                    return acc;
                }
                let cohort = (period.index(d[0]) - first_period) as usize;
                acc.0[cohort] += 1;
                let mut previous_offset = usize::MAX;
                for j in 0..k {
                    let offset = (period.index(d[j]) - first_period) as usize - cohort;
                    acc.3[cohort * width + offset] += amounts[rows.start + j];
                    if offset != previous_offset {
                        acc.1[cohort * width + offset] += 1;
                        previous_offset = offset;
                    }
                }
                acc.2[cohort * width + previous_offset] += 1;
                acc
            },
        )
        .reduce(
            || (vec![0u64; cohorts], vec![0u64; cells], vec![0u64; cells], vec![0i64; cells]),
            |mut a, b| {
                for i in 0..cohorts {
                    a.0[i] += b.0[i];
                }
                for i in 0..cells {
                    a.1[i] += b.1[i];
                    a.2[i] += b.2[i];
                    a.3[i] += b.3[i];
                }
                a
            },
        );
    let mut table = Vec::new();
    for cohort in 0..cohorts {
        if size[cohort] == 0 {
            continue;
        }
        let observable = cohorts - cohort; // offsets 0..observable-1 have started by as_of
        let n = size[cohort] as f64;
        let row = &customers[cohort * width..(cohort + 1) * width];
        let last = &or_later_at[cohort * width..(cohort + 1) * width];
        let money = &revenue[cohort * width..(cohort + 1) * width];
        let mut or_later = vec![0u64; width];
        let mut running = 0;
        for offset in (0..width).rev() {
            running += last[offset];
            or_later[offset] = running;
        }
        let cell = |offset: usize| offset < observable;
        table.push(CohortRow {
            cohort: period.label(first_period + cohort as i32),
            start: period.start(first_period + cohort as i32),
            size: size[cohort],
            retention: (0..width).map(|o| cell(o).then(|| row[o] as f64 / n)).collect(),
            retention_or_later: (0..width).map(|o| cell(o).then(|| or_later[o] as f64 / n)).collect(),
            customers: (0..width).map(|o| cell(o).then_some(row[o])).collect(),
            revenue: (0..width).map(|o| cell(o).then_some(money[o])).collect(),
            revenue_retention: (0..width)
                .map(|o| cell(o).then(|| if money[0] > 0 { money[o] as f64 / money[0] as f64 } else { 0.0 }))
                .collect(),
        });
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{LogOptions, TransactionLogBuilder};

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn returned_in_n_and_n_or_later() {
        let mut b = TransactionLogBuilder::new(LogOptions::default());
        b.push("a", date(2024, 1, 3), 100).unwrap();
        b.push("a", date(2024, 3, 3), 50).unwrap();
        b.push("b", date(2024, 1, 9), 100).unwrap();
        b.push("b", date(2024, 2, 9), 30).unwrap();
        b.push("c", date(2024, 2, 1), 10).unwrap();
        let t = cohort_table(&b.build(), Period::Month, date(2024, 3, 15)).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].cohort, "2024-01");
        assert_eq!(t[0].size, 2);
        assert_eq!(t[0].retention, vec![Some(1.0), Some(0.5), Some(0.5)]);
        assert_eq!(t[0].retention_or_later, vec![Some(1.0), Some(1.0), Some(0.5)]);
        assert_eq!(t[0].revenue, vec![Some(200), Some(30), Some(50)]);
        assert_eq!(t[1].cohort, "2024-02");
        assert_eq!(t[1].retention, vec![Some(1.0), Some(0.0), None]);
        assert_eq!(t[1].retention_or_later, vec![Some(1.0), Some(0.0), None]);
    }

    #[test]
    fn weekly_cohorts_start_on_monday() {
        let mut b = TransactionLogBuilder::new(LogOptions::default());
        b.push("a", date(2024, 1, 3), 100).unwrap(); // Wednesday of ISO week 1
        b.push("a", date(2024, 1, 8), 100).unwrap(); // Monday of week 2
        b.push("b", date(2024, 1, 7), 100).unwrap(); // Sunday of week 1
        let t = cohort_table(&b.build(), Period::Week, date(2024, 1, 9)).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].cohort.as_str(), t[0].start, t[0].size), ("2024-W01", date(2024, 1, 1), 2));
        assert_eq!(t[0].retention, vec![Some(1.0), Some(0.5)]);
    }
}
