//! Gamma-Gamma spend model (Fader, Hardie and Lee 2005, "RFM and CLV"; Colombo and Jiang 1999).
//!
//! Each transaction's value is Gamma(p, ν); ν varies across customers as Gamma(q, γ) (here `v`).
//! Fitted on customers with at least one repeat purchase and a positive mean repeat value
//! (zero-value purchases give ln 0; such customers are excluded and counted in the diagnostics).
//! The conditional expected average value p(γ + x m)/(p x + q − 1) exists only when p x + q > 1;
//! for customers without repeat purchases that means q > 1. Where it does not exist the model
//! returns [`AnalyticsError::SpendModelUndefined`], never a negative value.

use serde::{Deserialize, Serialize};

use super::GammaGammaParams;
use super::data::{Fitted, fit_positive_parameters};
use crate::error::{AnalyticsError, Result};
use crate::special::{Dual, Real};

/// A Gamma-Gamma spend model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGamma {
    /// Parameters; `v` is in the money unit of the data it was fitted on.
    pub params: GammaGammaParams,
}

/// Customers' (x, m) rows with what the likelihood needs precomputed: distinct frequencies with their
/// counts and Σ ln m per frequency, and the distinct (x, m) rows with how many customers have each
/// (shops sell at a few prices, so many customers share one; the likelihood's only per-row term is
/// evaluated once per distinct row).
struct SpendRows {
    rows: Vec<(f64, f64, f64)>,
    by_frequency: Vec<(f64, f64, f64)>,
}

impl SpendRows {
    fn new(rows: &[(f64, f64)]) -> Self {
        let mut by_frequency: std::collections::BTreeMap<u64, (f64, f64)> = std::collections::BTreeMap::new();
        for &(x, m) in rows {
            let entry = by_frequency.entry(x as u64).or_default();
            entry.0 += 1.0;
            entry.1 += m.ln();
        }
        let mut sorted = rows.to_vec();
        sorted.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let mut distinct: Vec<(f64, f64, f64)> = Vec::new();
        for (x, m) in sorted {
            match distinct.last_mut() {
                Some(last) if last.0 == x && last.1 == m => last.2 += 1.0,
                _ => distinct.push((x, m, 1.0)),
            }
        }
        SpendRows {
            rows: distinct,
            by_frequency: by_frequency.into_iter().map(|(x, (n, sum_ln_m))| (x as f64, n, sum_ln_m)).collect(),
        }
    }
}

fn total_log_likelihood<T: Real>(data: &SpendRows, params: [T; 3]) -> Result<T> {
    let [p, q, v] = params;
    let ln_gamma_q = q.ln_gamma();
    let ln_v = v.ln();
    // Terms that depend on x only: n_x [ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln v + px ln x] + (px − 1) Σ ln m.
    let mut by_frequency = T::constant(0.0);
    for &(x, n, sum_ln_m) in &data.by_frequency {
        let px = p * x;
        let per_customer = (px + q).ln_gamma() - px.ln_gamma() - ln_gamma_q + q * ln_v + px * x.ln();
        by_frequency = by_frequency + per_customer * n + (px - 1.0) * sum_ln_m;
    }
    let by_row = super::data::deterministic_sum(data.rows.len(), |i| {
        let (x, m, n) = data.rows[i];
        Ok(-((p * x + q) * (v + x * m).ln()) * n)
    })?;
    let total = by_frequency + by_row;
    if total.value().is_finite() {
        Ok(total)
    } else {
        Err(AnalyticsError::Numerical { what: "gamma-gamma log-likelihood", detail: "not finite".into() })
    }
}

impl GammaGamma {
    /// A model with the given parameters.
    pub fn new(params: GammaGammaParams) -> Result<Self> {
        for (name, value) in [("p", params.p), ("q", params.q), ("v", params.v)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(AnalyticsError::InvalidParameter { model: "gamma-gamma", name, value });
            }
        }
        Ok(GammaGamma { params })
    }

    /// Fits on per-customer frequency (repeat transactions) and mean repeat-transaction value.
    /// Customers with x = 0 are not used; customers with x > 0 and a mean value <= 0 are excluded
    /// and counted in `diagnostics.excluded_customers`.
    pub fn fit(frequency: &[u32], monetary_value: &[f64]) -> Result<Fitted<Self>> {
        if frequency.len() != monetary_value.len() {
            return Err(AnalyticsError::InvalidInput("frequency and monetary value differ in length".into()));
        }
        let mut rows = Vec::new();
        let mut excluded = 0;
        for (&x, &m) in frequency.iter().zip(monetary_value) {
            if x == 0 {
                continue;
            }
            if m.is_finite() && m > 0.0 {
                rows.push((x as f64, m));
            } else {
                excluded += 1;
            }
        }
        if rows.len() < 2 {
            return Err(AnalyticsError::Unidentifiable {
                model: "gamma-gamma",
                reason: format!("{} customers with repeat purchases of positive value; need at least 2", rows.len()),
            });
        }
        let mean = rows.iter().map(|r| r.1).sum::<f64>() / rows.len() as f64;
        let spend = SpendRows::new(&rows);
        let (p, mut diagnostics) =
            fit_positive_parameters("gamma-gamma", ["p", "q", "v"], [1.0, 1.0, mean], rows.len(), |d: [Dual; 3]| {
                total_log_likelihood(&spend, d)
            })?;
        diagnostics.excluded_customers = excluded;
        if excluded > 0 {
            diagnostics.notes.push(format!("{excluded} customers with zero-value repeat purchases excluded"));
        }
        if p[1] <= 1.0 {
            diagnostics.notes.push(format!(
                "q = {} <= 1: the expected spend of customers without repeat purchases is undefined; their CLV is not computed",
                p[1]
            ));
        }
        Ok(Fitted { model: GammaGamma { params: GammaGammaParams { p: p[0], q: p[1], v: p[2] } }, diagnostics })
    }

    /// Log-likelihood of the given customers (those with x > 0 and a positive mean value).
    pub fn log_likelihood(&self, frequency: &[u32], monetary_value: &[f64]) -> Result<f64> {
        let rows: Vec<(f64, f64)> = frequency
            .iter()
            .zip(monetary_value)
            .filter(|(x, m)| **x > 0 && **m > 0.0)
            .map(|(&x, &m)| (x as f64, m))
            .collect();
        let p = self.params;
        total_log_likelihood(&SpendRows::new(&rows), [p.p, p.q, p.v])
    }

    /// Expected average transaction value of a customer with `x` repeat transactions of mean value
    /// `m`: p (v + x m) / (p x + q − 1).
    pub fn expected_average_value(&self, x: u32, m: f64) -> Result<f64> {
        let p = self.params;
        let denominator = p.p * x as f64 + p.q - 1.0;
        if denominator <= 0.0 {
            return Err(AnalyticsError::SpendModelUndefined { q: p.q });
        }
        let m = if x == 0 { 0.0 } else { m.max(0.0) };
        let value = p.p * (p.v + x as f64 * m) / denominator;
        if value.is_finite() {
            Ok(value)
        } else {
            Err(AnalyticsError::Numerical { what: "gamma-gamma expected value", detail: format!("{value}") })
        }
    }

    /// Mean transaction value across the population, p v / (q − 1).
    pub fn population_average_value(&self) -> Result<f64> {
        self.expected_average_value(0, 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::special::ln_gamma;

    #[test]
    fn q_at_most_one_is_a_diagnostic_not_a_negative_value() {
        let m = GammaGamma::new(GammaGammaParams { p: 6.0, q: 0.8, v: 15.0 }).unwrap();
        assert!(matches!(m.expected_average_value(0, 0.0), Err(AnalyticsError::SpendModelUndefined { .. })));
        assert!(m.expected_average_value(2, 30.0).unwrap() > 0.0);
    }

    #[test]
    fn zero_value_repeat_purchases_are_excluded_and_counted() {
        use crate::models::BgNbdParams;
        use crate::synth::{PurchaseProcess, SyntheticConfig, generate_log};
        let start = chrono::NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
        let end = chrono::NaiveDate::from_ymd_opt(2024, 6, 29).unwrap();
        let process = PurchaseProcess::BgNbd(BgNbdParams { r: 0.5, alpha: 5.0, a: 0.8, b: 2.5 });
        let config = SyntheticConfig::new(process, GammaGammaParams { p: 6.0, q: 4.0, v: 15.0 }, 3000, start, end, 5);
        let log = generate_log(&config, crate::log::LogOptions::default()).unwrap();
        let mut s = crate::summary::summarize(&log, end, crate::log::TimeUnit::Week).unwrap();
        let repeaters: Vec<usize> = (0..s.len()).filter(|&i| s.frequency[i] > 0).collect();
        for &i in repeaters.iter().take(3) {
            s.monetary_value[i] = 0.0;
        }
        let fit = GammaGamma::fit(&s.frequency, &s.monetary_value).unwrap();
        assert_eq!(fit.diagnostics.customers, repeaters.len() - 3);
        assert_eq!(fit.diagnostics.excluded_customers, 3);
        assert!(fit.diagnostics.log_likelihood.is_finite());
    }

    #[test]
    fn customers_sharing_a_row_count_as_many() {
        // Few prices, many customers: the likelihood summed over distinct (x, m) rows with their counts
        // is the sum over customers of Fader, Hardie and Lee's per-customer log-likelihood.
        let (p, q, v) = (6.25, 3.74, 15.44);
        let prices = [3.9, 7.8, 12.5, 3.9, 3.9, 7.8];
        let frequency: Vec<u32> = (0..600).map(|i| 1 + (i % 7) as u32 % 3).collect();
        let monetary: Vec<f64> = (0..600).map(|i| if i % 50 == 0 { 0.0 } else { prices[i % prices.len()] }).collect();
        let by_customer: f64 = frequency
            .iter()
            .zip(&monetary)
            .filter(|(_, m)| **m > 0.0)
            .map(|(&x, &m)| {
                let x = x as f64;
                ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q)
                    + q * v.ln()
                    + (p * x - 1.0) * m.ln()
                    + p * x * x.ln()
                    - (p * x + q) * (x * m + v).ln()
            })
            .sum();
        let model = GammaGamma::new(GammaGammaParams { p, q, v }).unwrap();
        let total = model.log_likelihood(&frequency, &monetary).unwrap();
        assert!((total - by_customer).abs() <= 1e-9 * by_customer.abs(), "{total} against {by_customer}");
    }

    #[test]
    fn nobody_repeating_is_unidentifiable() {
        assert!(matches!(GammaGamma::fit(&[0, 0, 0], &[0.0; 3]), Err(AnalyticsError::Unidentifiable { .. })));
    }
}
