//! RFM: recency, frequency and monetary quintile scores (1 to 5, 5 best) and named segments.
//!
//! Scores are quintiles of the rank, with ties handled deterministically: every customer with the same
//! value gets the score of the first rank of its tie group (as pandas' `rank(method="min")`), so equal
//! customers always score equally and the result does not depend on input order. Recency is days since
//! the last purchase (fewer scores higher), frequency the number of transactions, monetary the total
//! spend. Segments come from a configurable 5 × 5 map on (R, F), [`SegmentMap::default`] being the
//! widely used eleven-segment map.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::log::day_number;
use crate::summary::CustomerSummaries;

/// The segment names of the default map.
pub const SEGMENT_NAMES: [&str; 11] = [
    "champions",
    "loyal",
    "potential_loyalists",
    "new",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cant_lose_them",
    "hibernating",
    "lost",
];

/// Segment name by recency score (rows, 1..=5) and frequency score (columns, 1..=5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentMap {
    /// `grid[r - 1][f - 1]` is the segment of customers with scores R = r, F = f.
    pub grid: [[String; 5]; 5],
}

impl Default for SegmentMap {
    fn default() -> Self {
        let rows: [[&str; 5]; 5] = [
            ["lost", "hibernating", "at_risk", "at_risk", "cant_lose_them"],
            ["hibernating", "hibernating", "at_risk", "at_risk", "cant_lose_them"],
            ["about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"],
            ["promising", "potential_loyalists", "potential_loyalists", "loyal", "loyal"],
            ["new", "potential_loyalists", "potential_loyalists", "champions", "champions"],
        ];
        SegmentMap { grid: rows.map(|row| row.map(String::from)) }
    }
}

/// RFM scores and segments of summarised customers (rows as in the summaries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfmTable {
    /// Recency score 1..=5.
    pub recency_score: Vec<u8>,
    /// Frequency score 1..=5.
    pub frequency_score: Vec<u8>,
    /// Monetary score 1..=5.
    pub monetary_score: Vec<u8>,
    /// Segment name per customer.
    pub segment: Vec<String>,
    /// Customers per segment.
    pub segments: BTreeMap<String, u64>,
    /// Customers per (R, F) cell: `grid[r - 1][f - 1]`.
    pub grid: [[u64; 5]; 5],
}

/// Quintile scores 1..=5 of `values` (higher value, higher score), ties scored by their first rank.
pub fn quintile_scores(values: &[f64]) -> Vec<u8> {
    let n = values.len();
    // Sorted as (value by `total_cmp`, index): the value as a number in the same order, so the sort
    // compares pairs of numbers instead of looking values up.
    let key = |v: f64| {
        let bits = v.to_bits();
        if bits >> 63 == 1 { !bits } else { bits | 1 << 63 }
    };
    let mut order: Vec<(u64, u32)> = values.par_iter().enumerate().map(|(i, &v)| (key(v), i as u32)).collect();
    order.par_sort_unstable();
    let mut scores = vec![0u8; n];
    let mut rank_of_group = 0;
    for (rank, &(_, i)) in order.iter().enumerate() {
        if rank == 0 || values[i as usize] != values[order[rank - 1].1 as usize] {
            rank_of_group = rank;
        }
        scores[i as usize] = (1 + rank_of_group * 5 / n.max(1)) as u8;
    }
    scores
}

/// Scores and segments customers as of the summaries' observation end.
pub fn rfm(summaries: &CustomerSummaries, map: &SegmentMap) -> RfmTable {
    let end = day_number(summaries.observation_end);
    let recency: Vec<f64> = summaries.last_day.iter().map(|&d| -((end - d) as f64)).collect();
    let frequency: Vec<f64> = summaries.frequency.iter().map(|&x| x as f64 + 1.0).collect();
    let monetary: Vec<f64> = summaries.total_spend.iter().map(|&m| m as f64).collect();
    let recency_score = quintile_scores(&recency);
    let frequency_score = quintile_scores(&frequency);
    let monetary_score = quintile_scores(&monetary);
    let mut grid = [[0u64; 5]; 5];
    let mut segments: BTreeMap<String, u64> = BTreeMap::new();
    let segment: Vec<String> = recency_score
        .iter()
        .zip(&frequency_score)
        .map(|(&r, &f)| {
            grid[r as usize - 1][f as usize - 1] += 1;
            map.grid[r as usize - 1][f as usize - 1].clone()
        })
        .collect();
    for (r, row) in grid.iter().enumerate() {
        for (f, &count) in row.iter().enumerate() {
            if count > 0 {
                *segments.entry(map.grid[r][f].clone()).or_default() += count;
            }
        }
    }
    RfmTable { recency_score, frequency_score, monetary_score, segment, segments, grid }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quintiles_order_values_as_total_cmp_then_position() {
        // The scores of sorting positions by (value, position) with `total_cmp`, grouping equal values.
        let reference = |values: &[f64]| {
            let n = values.len();
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| values[a].total_cmp(&values[b]).then(a.cmp(&b)));
            let mut scores = vec![0u8; n];
            let mut group = 0;
            for (rank, &i) in order.iter().enumerate() {
                if rank == 0 || values[i] != values[order[rank - 1]] {
                    group = rank;
                }
                scores[i] = (1 + group * 5 / n) as u8;
            }
            scores
        };
        let mut values = vec![0.0, -0.0, -1.5, 1.5, f64::MAX, f64::MIN, 1e-300, -1e-300, 7.0, 7.0, -7.0];
        values.extend((0..500).map(|i| ((i * 7919) % 113) as f64 - 50.0));
        assert_eq!(quintile_scores(&values), reference(&values));
    }

    #[test]
    fn quintiles_are_deterministic_with_ties() {
        let s = quintile_scores(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]);
        assert_eq!(s, vec![1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
        let ties = quintile_scores(&[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 3.0, 9.0]);
        assert_eq!(ties, vec![1, 1, 1, 1, 1, 1, 4, 4, 4, 5]);
        let default = SegmentMap::default();
        let mut all: Vec<&str> = default.grid.iter().flatten().map(|s| s.as_str()).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), SEGMENT_NAMES.len());
    }
}
