//! Churn propensity: a logistic regression on per-customer features at the calibration end, with the
//! label "no purchase in the holdout period". Customers are split deterministically into training
//! (70 %) and held-out (30 %) sets by a hash of their index; the report gives the coefficients, the AUC
//! on held-out customers and, beside it, the AUC of the BG/NBD baseline (fewer expected holdout
//! purchases = more likely to churn; and 1 − P(alive)) on the same customers.
//!
//! Features are standardised before fitting; [`ChurnData::add_feature`] takes further columns
//! (service or loyalty signals) without changing the fit.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{AnalyticsError, Result};
use crate::models::PurchaseModel;
use crate::optimize::{LbfgsOptions, minimize};
use crate::summary::CalibrationHoldout;

/// Features and labels of the customers of a calibration / holdout split.
#[derive(Debug, Clone, PartialEq)]
pub struct ChurnData {
    /// Feature names.
    pub feature_names: Vec<String>,
    /// Feature columns.
    pub columns: Vec<Vec<f64>>,
    /// 1.0 when the customer made no purchase in the holdout period.
    pub churned: Vec<f64>,
    /// Whether the customer is in the training set.
    pub training: Vec<bool>,
}

fn split_mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl ChurnData {
    /// Base features: time since last purchase, repeat purchases, tenure (all in the summary's time
    /// unit) and ln(1 + total spend in minor units).
    pub fn from_split(split: &CalibrationHoldout) -> Self {
        let cal = &split.calibration;
        ChurnData {
            feature_names: vec![
                "time_since_last_purchase".into(),
                "repeat_purchases".into(),
                "tenure".into(),
                "log_total_spend".into(),
            ],
            columns: vec![
                (0..cal.len()).map(|i| cal.age[i] - cal.recency[i]).collect(),
                cal.frequency.iter().map(|&x| x as f64).collect(),
                cal.age.clone(),
                cal.total_spend.iter().map(|&m| (m as f64).ln_1p()).collect(),
            ],
            churned: split.frequency_holdout.iter().map(|&n| if n == 0 { 1.0 } else { 0.0 }).collect(),
            training: cal.customer.iter().map(|&c| split_mix(c as u64) % 10 < 7).collect(),
        }
    }

    /// Adds a feature column (one value per customer).
    pub fn add_feature(&mut self, name: &str, values: Vec<f64>) -> Result<()> {
        if values.len() != self.churned.len() || values.iter().any(|v| !v.is_finite()) {
            return Err(AnalyticsError::InvalidInput(format!("feature {name}: wrong length or non-finite values")));
        }
        self.feature_names.push(name.into());
        self.columns.push(values);
        Ok(())
    }
}

/// A fitted churn model and how well it ranks held-out customers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnModel {
    /// Feature names.
    pub feature_names: Vec<String>,
    /// Means used for standardising.
    pub means: Vec<f64>,
    /// Standard deviations used for standardising.
    pub standard_deviations: Vec<f64>,
    /// Intercept on the standardised scale.
    pub intercept: f64,
    /// Coefficients on the standardised features.
    pub coefficients: Vec<f64>,
    /// Training customers.
    pub training_customers: u64,
    /// Held-out customers.
    pub held_out_customers: u64,
    /// Share of held-out customers who churned.
    pub held_out_churn_rate: f64,
    /// AUC of the logistic model on held-out customers.
    pub auc: f64,
    /// AUC on the same customers of the purchase model's expected holdout purchases (fewer = churn).
    pub baseline_auc_expected_purchases: Option<f64>,
    /// AUC on the same customers of 1 − P(alive).
    pub baseline_auc_probability_alive: Option<f64>,
    /// Name of the baseline model.
    pub baseline_model: Option<String>,
}

impl ChurnModel {
    /// Churn probability of a customer with the given (unstandardised) features.
    pub fn probability(&self, features: &[f64]) -> f64 {
        let mut z = self.intercept;
        for j in 0..self.coefficients.len() {
            z += self.coefficients[j] * (features[j] - self.means[j]) / self.standard_deviations[j];
        }
        1.0 / (1.0 + (-z).exp())
    }
}

/// Area under the ROC curve of `scores` for binary `labels` (1.0 positive), ties averaged.
pub fn auc(scores: &[f64], labels: &[f64]) -> Option<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let positives = labels.iter().filter(|&&l| l > 0.5).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            if labels[order[k]] > 0.5 {
                rank_sum += average_rank;
            }
        }
        i = j + 1;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

/// Fits the churn model; `baseline` (a purchase model fitted on the same calibration period) is scored
/// beside it.
pub fn fit_churn_model(
    data: &ChurnData,
    split: &CalibrationHoldout,
    baseline: Option<&dyn PurchaseModel>,
) -> Result<ChurnModel> {
    let k = data.columns.len();
    let n = data.churned.len();
    let train: Vec<usize> = (0..n).filter(|&i| data.training[i]).collect();
    let test: Vec<usize> = (0..n).filter(|&i| !data.training[i]).collect();
    let train_positive = train.iter().filter(|&&i| data.churned[i] > 0.5).count();
    if train.len() < 10 || test.len() < 10 || train_positive == 0 || train_positive == train.len() {
        return Err(AnalyticsError::Unidentifiable {
            model: "churn",
            reason: "too few customers, or everyone (or no one) churned in the training set".into(),
        });
    }
    let means: Vec<f64> =
        data.columns.iter().map(|c| train.iter().map(|&i| c[i]).sum::<f64>() / train.len() as f64).collect();
    let standard_deviations: Vec<f64> = data
        .columns
        .iter()
        .zip(&means)
        .map(|(c, m)| {
            let v = train.iter().map(|&i| (c[i] - m).powi(2)).sum::<f64>() / train.len() as f64;
            if v > 0.0 { v.sqrt() } else { 1.0 }
        })
        .collect();
    let standardised = |i: usize, j: usize| (data.columns[j][i] - means[j]) / standard_deviations[j];
    let penalty = 1e-4;
    let objective = |w: &[f64]| -> (f64, Vec<f64>) {
        // Fixed blocks added in order: the same fit on every run.
        let blocks: Vec<(f64, Vec<f64>)> = train
            .par_chunks(4096)
            .map(|block| {
                block.iter().fold((0.0, vec![0.0; k + 1]), |(mut loss, mut g), &i| {
                    let mut z = w[0];
                    for j in 0..k {
                        z += w[j + 1] * standardised(i, j);
                    }
                    let y = data.churned[i];
                    // log(1 + e^z) - y z, stably.
                    loss += if z > 0.0 { z + (-z).exp().ln_1p() } else { z.exp().ln_1p() } - y * z;
                    let residual = 1.0 / (1.0 + (-z).exp()) - y;
                    g[0] += residual;
                    for j in 0..k {
                        g[j + 1] += residual * standardised(i, j);
                    }
                    (loss, g)
                })
            })
            .collect();
        let (loss, mut gradient) = blocks.into_iter().fold((0.0, vec![0.0; k + 1]), |a, b| {
            (a.0 + b.0, a.1.iter().zip(&b.1).map(|(x, y)| x + y).collect::<Vec<f64>>())
        });
        let m = train.len() as f64;
        let mut value = loss / m;
        for j in 0..=k {
            gradient[j] /= m;
        }
        for j in 1..=k {
            value += 0.5 * penalty * w[j] * w[j];
            gradient[j] += penalty * w[j];
        }
        (value, gradient)
    };
    let minimum =
        minimize(objective, &vec![0.0; k + 1], LbfgsOptions { gradient_tolerance: 1e-8, ..Default::default() });
    if !minimum.converged {
        return Err(AnalyticsError::NotConverged {
            model: "churn",
            iterations: minimum.iterations,
            reason: minimum.message,
        });
    }
    let mut model = ChurnModel {
        feature_names: data.feature_names.clone(),
        means,
        standard_deviations,
        intercept: minimum.x[0],
        coefficients: minimum.x[1..].to_vec(),
        training_customers: train.len() as u64,
        held_out_customers: test.len() as u64,
        held_out_churn_rate: test.iter().map(|&i| data.churned[i]).sum::<f64>() / test.len() as f64,
        auc: 0.0,
        baseline_auc_expected_purchases: None,
        baseline_auc_probability_alive: None,
        baseline_model: None,
    };
    let labels: Vec<f64> = test.iter().map(|&i| data.churned[i]).collect();
    let scores: Vec<f64> =
        test.iter().map(|&i| model.probability(&data.columns.iter().map(|c| c[i]).collect::<Vec<_>>())).collect();
    model.auc = auc(&scores, &labels).unwrap_or(0.5);
    if let Some(purchase_model) = baseline {
        let cal = &split.calibration;
        let expected: Vec<f64> = test
            .par_iter()
            .map(|&i| {
                purchase_model
                    .expected_purchases(split.duration_holdout, cal.frequency[i] as f64, cal.recency[i], cal.age[i])
                    .map(|e| -e)
            })
            .collect::<Result<_>>()?;
        let dead: Vec<f64> = test
            .par_iter()
            .map(|&i| {
                purchase_model.probability_alive(cal.frequency[i] as f64, cal.recency[i], cal.age[i]).map(|p| 1.0 - p)
            })
            .collect::<Result<_>>()?;
        model.baseline_auc_expected_purchases = auc(&expected, &labels);
        model.baseline_auc_probability_alive = auc(&dead, &labels);
        model.baseline_model = Some(purchase_model.name().to_string());
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_handles_ties_and_perfect_ranking() {
        assert_eq!(auc(&[0.1, 0.2, 0.8, 0.9], &[0.0, 0.0, 1.0, 1.0]), Some(1.0));
        assert_eq!(auc(&[0.5, 0.5, 0.5, 0.5], &[0.0, 1.0, 0.0, 1.0]), Some(0.5));
        assert_eq!(auc(&[0.1, 0.2], &[1.0, 1.0]), None);
    }
}
