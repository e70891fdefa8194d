//! Model inputs (frequency, recency, age), compressed to distinct rows with weights, and the common
//! maximum-likelihood driver: L-BFGS on log-parameters with exact gradients from [`Dual`] numbers,
//! parallel likelihood sums, and standard errors from a numerical Hessian.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{AnalyticsError, Result};
use crate::optimize::{LbfgsOptions, minimize};
use crate::special::{Dual, Real};
use crate::summary::CustomerSummaries;

/// Frequency x, recency t_x and age T of customers, with identical rows merged into one weighted row.
#[derive(Debug, Clone, PartialEq)]
pub struct BtydData {
    /// Repeat transactions x of each distinct row.
    pub frequency: Vec<f64>,
    /// Recency t_x.
    pub recency: Vec<f64>,
    /// Age T.
    pub age: Vec<f64>,
    /// Number of customers with this row.
    pub weight: Vec<f64>,
    /// Customers per distinct frequency: (x, count).
    pub frequency_counts: Vec<(u32, f64)>,
    /// The distinct ages, ascending: a likelihood computes what depends on the age alone once per age.
    pub(crate) ages: Vec<f64>,
    /// Each row's age among `ages`.
    pub(crate) age_index: Vec<u32>,
    /// The distinct recencies, ascending.
    pub(crate) recencies: Vec<f64>,
    /// Each row's recency among `recencies`.
    pub(crate) recency_index: Vec<u32>,
    /// Number of customers (sum of weights).
    pub customers: usize,
}

/// `keys` sorted, each once.
pub(crate) fn sorted_distinct<K: Ord + Send>(mut keys: Vec<K>) -> Vec<K> {
    keys.par_sort_unstable();
    keys.dedup();
    keys
}

impl BtydData {
    /// Validates and compresses per-customer columns. Frequencies must be whole numbers; recency must
    /// lie in [0, age]; customers without repeat purchases get recency 0.
    pub fn new(frequency: &[f64], recency: &[f64], age: &[f64]) -> Result<Self> {
        if frequency.len() != recency.len() || frequency.len() != age.len() {
            return Err(AnalyticsError::InvalidInput("frequency, recency and age differ in length".into()));
        }
        if frequency.is_empty() {
            return Err(AnalyticsError::InvalidInput("no customers".into()));
        }
        let mut rows: Vec<(u64, u64, u64)> = Vec::with_capacity(frequency.len());
        for i in 0..frequency.len() {
            let (x, tx, t) = (frequency[i], recency[i], age[i]);
            let valid = x.is_finite() && x >= 0.0 && x.fract() == 0.0 && tx.is_finite() && t.is_finite();
            if !valid || tx < 0.0 || tx > t * (1.0 + 1e-12) {
                return Err(AnalyticsError::InvalidInput(format!(
                    "customer row {i}: frequency {x}, recency {tx}, age {t} (need whole x >= 0, 0 <= recency <= age)"
                )));
            }
            let tx = if x == 0.0 { 0.0 } else { tx.min(t) };
            rows.push((x.to_bits(), tx.to_bits(), t.to_bits()));
        }
        rows.par_sort_unstable();
        let mut data = BtydData {
            frequency: Vec::new(),
            recency: Vec::new(),
            age: Vec::new(),
            weight: Vec::new(),
            frequency_counts: Vec::new(),
            ages: Vec::new(),
            age_index: Vec::new(),
            recencies: Vec::new(),
            recency_index: Vec::new(),
            customers: frequency.len(),
        };
        for (i, row) in rows.iter().enumerate() {
            if i > 0 && rows[i - 1] == *row {
                *data.weight.last_mut().expect("row pushed") += 1.0;
            } else {
                data.frequency.push(f64::from_bits(row.0));
                data.recency.push(f64::from_bits(row.1));
                data.age.push(f64::from_bits(row.2));
                data.weight.push(1.0);
            }
        }
        let mut counts: BTreeMap<u32, f64> = BTreeMap::new();
        for (x, w) in data.frequency.iter().zip(&data.weight) {
            *counts.entry(*x as u32).or_default() += w;
        }
        data.frequency_counts = counts.into_iter().collect();
        data.index_values();
        Ok(data)
    }

    /// Fills the distinct ages and recencies and each row's index among them.
    fn index_values(&mut self) {
        fn distinct(values: &[f64]) -> (Vec<f64>, Vec<u32>) {
            // Not negative: the bits order as the numbers do.
            let bits = sorted_distinct(values.iter().map(|v| v.to_bits()).collect());
            let index = values
                .par_iter()
                .map(|v| bits.binary_search(&v.to_bits()).expect("a value of the list") as u32)
                .collect();
            (bits.into_iter().map(f64::from_bits).collect(), index)
        }
        (self.ages, self.age_index) = distinct(&self.age);
        (self.recencies, self.recency_index) = distinct(&self.recency);
    }

    /// The model inputs of summarised customers.
    pub fn from_summaries(summaries: &CustomerSummaries) -> Result<Self> {
        let x: Vec<f64> = summaries.frequency.iter().map(|&x| x as f64).collect();
        Self::new(&x, &summaries.recency, &summaries.age)
    }

    /// Number of distinct rows.
    pub fn rows(&self) -> usize {
        self.frequency.len()
    }

    /// Customers with at least one repeat purchase.
    pub fn repeat_customers(&self) -> f64 {
        self.frequency_counts.iter().filter(|(x, _)| *x > 0).map(|(_, w)| w).sum()
    }

    /// Every `step`-th distinct row, its weight multiplied by `step`: a systematic subsample whose
    /// likelihood estimates the full one (used for start values on large data).
    pub fn subsample(&self, step: usize) -> BtydData {
        let step = step.max(1);
        let keep: Vec<usize> = (0..self.rows()).step_by(step).collect();
        let weight: Vec<f64> = keep.iter().map(|&i| self.weight[i] * step as f64).collect();
        let mut counts: BTreeMap<u32, f64> = BTreeMap::new();
        for (&i, w) in keep.iter().zip(&weight) {
            *counts.entry(self.frequency[i] as u32).or_default() += w;
        }
        let mut data = BtydData {
            frequency: keep.iter().map(|&i| self.frequency[i]).collect(),
            recency: keep.iter().map(|&i| self.recency[i]).collect(),
            age: keep.iter().map(|&i| self.age[i]).collect(),
            customers: weight.iter().sum::<f64>().round() as usize,
            weight,
            frequency_counts: counts.into_iter().collect(),
            ages: Vec::new(),
            age_index: Vec::new(),
            recencies: Vec::new(),
            recency_index: Vec::new(),
        };
        data.index_values();
        data
    }

    /// Weighted sum over rows of `f(row)`, in parallel, in fixed blocks added in order: the result
    /// does not depend on the number of threads or on scheduling, so fits are reproducible.
    pub(crate) fn sum_rows<T: Real, F>(&self, f: F) -> Result<T>
    where
        F: Fn(usize) -> Result<T> + Sync + Send,
    {
        deterministic_sum(self.rows(), |i| f(i).map(|v| v * self.weight[i]))
    }
}

/// Σ f(i) for i in 0..n, in parallel over fixed blocks whose partial sums are added in order.
pub(crate) fn deterministic_sum<T: Real, F>(n: usize, f: F) -> Result<T>
where
    F: Fn(usize) -> Result<T> + Sync + Send,
{
    const BLOCK: usize = 4096;
    let blocks: Vec<T> = (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let mut sum = T::constant(0.0);
            for i in b * BLOCK..((b + 1) * BLOCK).min(n) {
                sum = sum + f(i)?;
            }
            Ok(sum)
        })
        .collect::<Result<_>>()?;
    Ok(blocks.into_iter().fold(T::constant(0.0), |a, b| a + b))
}

/// How a fit went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitDiagnostics {
    /// Log-likelihood of the data at the estimate (unscaled, in the data's time unit).
    pub log_likelihood: f64,
    /// Whether the optimiser met its gradient tolerance.
    pub converged: bool,
    /// Optimiser iterations.
    pub iterations: usize,
    /// Likelihood evaluations.
    pub evaluations: usize,
    /// Largest gradient component of the mean log-likelihood with respect to log-parameters.
    pub gradient_max_abs: f64,
    /// Standard errors of the parameters (delta method from the inverse Hessian in log-parameters),
    /// absent when the Hessian is not positive definite.
    pub standard_errors: Option<BTreeMap<String, f64>>,
    /// Customers used in the fit.
    pub customers: usize,
    /// Customers left out of the fit (for example zero-value repeat purchases in Gamma-Gamma).
    pub excluded_customers: usize,
    /// Why the optimiser stopped, and any warnings.
    pub notes: Vec<String>,
}

/// A fitted model with its diagnostics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted<M> {
    /// The model with its estimated parameters.
    pub model: M,
    /// How the fit went.
    pub diagnostics: FitDiagnostics,
}

/// Rows above which fits start from an estimate on a subsample of about this many rows.
const WARM_START_ROWS: usize = 20_000;

/// Start values for a fit: ones on small data; on large data the estimate `fit` finds on a
/// systematic subsample (falling back to ones if that fails), which saves most full-data iterations.
pub(crate) fn warm_start<const K: usize>(data: &BtydData, fit: impl Fn(&BtydData) -> Result<[f64; K]>) -> [f64; K] {
    if data.rows() <= 2 * WARM_START_ROWS {
        return [1.0; K];
    }
    let sample = data.subsample(data.rows() / WARM_START_ROWS);
    match fit(&sample) {
        Ok(p) if p.iter().all(|v| v.is_finite() && *v > 0.0) => p,
        _ => [1.0; K],
    }
}

/// Fits `K <= 4` positive parameters by maximising `log_likelihood` over log-parameters.
/// `log_likelihood(params)` returns the total log-likelihood.
pub(crate) fn fit_positive_parameters<const K: usize, F>(
    model: &'static str,
    names: [&'static str; K],
    start: [f64; K],
    customers: usize,
    log_likelihood: F,
) -> Result<([f64; K], FitDiagnostics)>
where
    F: Fn([Dual; K]) -> Result<Dual> + Sync,
{
    let scale = 1.0 / customers.max(1) as f64;
    let evaluate = |theta: &[f64]| -> Result<Dual> {
        let mut params = [Dual::constant(0.0); K];
        for i in 0..K {
            let p = theta[i].exp();
            params[i] = Dual::variable(p, i, p);
        }
        log_likelihood(params)
    };
    let objective = |theta: &[f64]| -> (f64, Vec<f64>) {
        match evaluate(theta) {
            Ok(ll) => (-ll.v * scale, (0..K).map(|i| -ll.d[i] * scale).collect()),
            Err(_) => (f64::INFINITY, vec![0.0; K]),
        }
    };
    let start_theta: Vec<f64> = start.iter().map(|p| p.ln()).collect();
    let minimum = minimize(objective, &start_theta, LbfgsOptions::default());
    if !minimum.value.is_finite() {
        return Err(AnalyticsError::NotConverged { model, iterations: minimum.iterations, reason: minimum.message });
    }
    let mut params = [0.0; K];
    for i in 0..K {
        params[i] = minimum.x[i].exp();
        if !params[i].is_finite() || params[i] <= 0.0 || params[i] > 1e12 {
            return Err(AnalyticsError::Unidentifiable {
                model,
                reason: format!("parameter {} ran off to {:e}", names[i], params[i]),
            });
        }
    }
    // Numerical Hessian of the total negative log-likelihood in log-parameters, from exact gradients.
    let gradient_at = |theta: &[f64]| evaluate(theta).map(|ll| ll.d);
    let h = 1e-5;
    let mut hessian = [[0.0; K]; K];
    let mut hessian_ok = true;
    for j in 0..K {
        let mut plus = minimum.x.clone();
        let mut minus = minimum.x.clone();
        plus[j] += h;
        minus[j] -= h;
        match (gradient_at(&plus), gradient_at(&minus)) {
            (Ok(gp), Ok(gm)) => {
                for i in 0..K {
                    hessian[i][j] = -(gp[i] - gm[i]) / (2.0 * h);
                }
            }
            _ => hessian_ok = false,
        }
    }
    for i in 0..K {
        for j in 0..i {
            let mean = 0.5 * (hessian[i][j] + hessian[j][i]);
            hessian[i][j] = mean;
            hessian[j][i] = mean;
        }
    }
    let standard_errors = if hessian_ok {
        invert_positive_definite(hessian)
            .map(|cov| (0..K).map(|i| (names[i].to_string(), params[i] * cov[i][i].sqrt())).collect::<BTreeMap<_, _>>())
    } else {
        None
    };
    let mut notes = vec![minimum.message.clone()];
    if standard_errors.is_none() {
        notes.push("Hessian not positive definite: no standard errors".into());
    }
    let diagnostics = FitDiagnostics {
        log_likelihood: -minimum.value / scale,
        converged: minimum.converged,
        iterations: minimum.iterations,
        evaluations: minimum.evaluations,
        gradient_max_abs: minimum.gradient.iter().fold(0.0, |m, v| m.max(v.abs())),
        standard_errors,
        customers,
        excluded_customers: 0,
        notes,
    };
    if !minimum.converged {
        return Err(AnalyticsError::NotConverged {
            model,
            iterations: minimum.iterations,
            reason: format!("{}; max |gradient| {:e}", minimum.message, diagnostics.gradient_max_abs),
        });
    }
    Ok((params, diagnostics))
}

/// Inverse of a symmetric positive definite matrix by Cholesky decomposition, or `None`.
fn invert_positive_definite<const K: usize>(m: [[f64; K]; K]) -> Option<[[f64; K]; K]> {
    let mut l = [[0.0; K]; K];
    for i in 0..K {
        for j in 0..=i {
            let mut sum = m[i][j];
            for k in 0..j {
                sum -= l[i][k] * l[j][k];
            }
            if i == j {
                if sum <= 0.0 || !sum.is_finite() {
                    return None;
                }
                l[i][i] = sum.sqrt();
            } else {
                l[i][j] = sum / l[j][j];
            }
        }
    }
    // inverse = L^-T L^-1
    let mut l_inv = [[0.0; K]; K];
    for i in 0..K {
        l_inv[i][i] = 1.0 / l[i][i];
        for j in 0..i {
            let mut sum = 0.0;
            for k in j..i {
                sum -= l[i][k] * l_inv[k][j];
            }
            l_inv[i][j] = sum / l[i][i];
        }
    }
    let mut inv = [[0.0; K]; K];
    for i in 0..K {
        for j in 0..K {
            inv[i][j] = (0..K).map(|k| l_inv[k][i] * l_inv[k][j]).sum();
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compresses_identical_rows() {
        let d = BtydData::new(&[0.0, 2.0, 0.0, 2.0], &[0.0, 3.0, 0.0, 3.0], &[5.0, 5.0, 5.0, 5.0]).unwrap();
        assert_eq!(d.rows(), 2);
        assert_eq!(d.weight, vec![2.0, 2.0]);
        assert_eq!(d.frequency_counts, vec![(0, 2.0), (2, 2.0)]);
        assert!(BtydData::new(&[1.0], &[6.0], &[5.0]).is_err());
        assert!(BtydData::new(&[1.5], &[1.0], &[5.0]).is_err());
    }

    #[test]
    fn inverts_a_positive_definite_matrix() {
        let inv = invert_positive_definite([[4.0, 2.0], [2.0, 3.0]]).unwrap();
        assert!(
            (inv[0][0] - 0.375).abs() < 1e-12 && (inv[0][1] + 0.25).abs() < 1e-12 && (inv[1][1] - 0.5).abs() < 1e-12
        );
        assert!(invert_positive_definite([[1.0, 2.0], [2.0, 1.0]]).is_none());
    }
}
