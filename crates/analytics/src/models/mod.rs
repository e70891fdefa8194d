//! Buy-till-you-die (BTYD) models: BG/NBD, MBG/NBD, Pareto/NBD for the purchase process and
//! Gamma-Gamma for spend, fitted by maximum likelihood.

use serde::{Deserialize, Serialize};

/// Parameters of the BG/NBD and MBG/NBD models: purchase rates λ ~ Gamma(r, α) (α a rate, in the
/// model's time unit), dropout probability after a purchase p ~ Beta(a, b).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbdParams {
    /// Shape of the purchase-rate gamma distribution.
    pub r: f64,
    /// Rate (inverse scale) of the purchase-rate gamma distribution.
    pub alpha: f64,
    /// First shape of the dropout beta distribution.
    pub a: f64,
    /// Second shape of the dropout beta distribution.
    pub b: f64,
}

/// Parameters of the Pareto/NBD model: purchase rates λ ~ Gamma(r, α), dropout rates μ ~ Gamma(s, β).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ParetoNbdParams {
    /// Shape of the purchase-rate gamma distribution.
    pub r: f64,
    /// Rate of the purchase-rate gamma distribution.
    pub alpha: f64,
    /// Shape of the dropout-rate gamma distribution.
    pub s: f64,
    /// Rate of the dropout-rate gamma distribution.
    pub beta: f64,
}

/// Parameters of the Gamma-Gamma spend model: each transaction's value z ~ Gamma(p, ν), the
/// customer's ν ~ Gamma(q, v). `v` carries the money unit of the data it was fitted on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaParams {
    /// Shape of the per-transaction value distribution.
    pub p: f64,
    /// Shape of the distribution of ν across customers.
    pub q: f64,
    /// Rate of the distribution of ν across customers (Fader and Hardie's γ).
    pub v: f64,
}

pub mod bg_nbd;
pub mod clv;
pub mod data;
pub mod gamma_gamma;
pub mod pareto_nbd;

pub use bg_nbd::{BgNbd, MbgNbd};
pub use clv::{
    ClvInputs, customer_lifetime_value, customer_lifetime_values, expected_purchases_bulk, periods_per_month,
    purchase_probabilities_bulk,
};
pub use data::{BtydData, FitDiagnostics, Fitted};
pub use gamma_gamma::GammaGamma;
pub use pareto_nbd::ParetoNbd;

use crate::error::Result;

/// What every purchase-process model predicts. Times are in the model's time unit; `x` is the
/// frequency (repeat purchases), `t_x` the recency and `age` the customer's age T.
pub trait PurchaseModel: Send + Sync {
    /// Short name (`bg_nbd`, `mbg_nbd`, `pareto_nbd`).
    fn name(&self) -> &'static str;
    /// Probability that the customer is still alive at the end of the observation.
    fn probability_alive(&self, x: f64, t_x: f64, age: f64) -> Result<f64>;
    /// Expected purchases in the next `t` time units given the customer's history.
    fn expected_purchases(&self, t: f64, x: f64, t_x: f64, age: f64) -> Result<f64> {
        Ok(self.horizon_factor(t, x, age)? * self.history_factor(x, t_x, age)?)
    }
    /// The part of [`PurchaseModel::expected_purchases`] that depends on the horizon, x and age only;
    /// the conditional expectation is `horizon_factor * history_factor`. Bulk predictions (CLV for a
    /// million customers) evaluate it once per distinct (x, age).
    fn horizon_factor(&self, t: f64, x: f64, age: f64) -> Result<f64>;
    /// [`PurchaseModel::horizon_factor`] at every horizon of `ts` for every age of `ages` (one
    /// frequency), row by row: value `[i * ts.len() + j]` is for `ages[i]` and `ts[j]`. The same values
    /// as one at a time; models may share work between them.
    fn horizon_factor_grid(&self, ts: &[f64], x: f64, ages: &[f64]) -> Result<Vec<f64>> {
        ages.iter().flat_map(|&age| ts.iter().map(move |&t| self.horizon_factor(t, x, age))).collect()
    }
    /// The part of [`PurchaseModel::expected_purchases`] that depends on the customer's recency.
    fn history_factor(&self, x: f64, t_x: f64, age: f64) -> Result<f64>;
    /// [`PurchaseModel::history_factor`] of every customer, in parallel: the values one at a time give,
    /// up to rounding; models may share work between customers.
    fn history_bulk(&self, frequency: &[u32], recency: &[f64], age: &[f64]) -> Result<Vec<f64>> {
        use rayon::prelude::*;
        (0..frequency.len())
            .into_par_iter()
            .map(|i| self.history_factor(f64::from(frequency[i]), recency[i], age[i]))
            .collect()
    }
    /// ([`PurchaseModel::history_factor`], [`PurchaseModel::probability_alive`]) of every customer,
    /// in parallel: the values one at a time give, up to rounding; models may share work between
    /// customers.
    fn history_and_alive_bulk(&self, frequency: &[u32], recency: &[f64], age: &[f64]) -> Result<Vec<(f64, f64)>> {
        use rayon::prelude::*;
        (0..frequency.len())
            .into_par_iter()
            .map(|i| {
                let (x, t_x, a) = (f64::from(frequency[i]), recency[i], age[i]);
                Ok((self.history_factor(x, t_x, a)?, self.probability_alive(x, t_x, a)?))
            })
            .collect()
    }
    /// Expected repeat purchases E[X(t)] of a customer in the first `t` time units after acquisition.
    fn expected_purchases_population(&self, t: f64) -> Result<f64>;
    /// P(X(T, T + t) = n | alive at T): the probability of exactly `n` purchases in the next `t` time
    /// units of a customer who is alive at the end of the observation, with `x` repeat purchases over
    /// an age of `age` (the recency matters only through [`PurchaseModel::probability_alive`]).
    fn alive_probability_of_purchases(&self, n: u32, t: f64, x: f64, age: f64) -> Result<f64>;
    /// P(X(T, T + t) = n | x, t_x, T): the probability of exactly `n` purchases in the next `t` time
    /// units given the customer's history: alive, and then n purchases; or, for n = 0, already gone.
    fn conditional_probability_of_purchases(&self, n: u32, t: f64, x: f64, t_x: f64, age: f64) -> Result<f64> {
        let alive = self.probability_alive(x, t_x, age)?;
        let gone = if n == 0 { 1.0 - alive } else { 0.0 };
        Ok(alive * self.alive_probability_of_purchases(n, t, x, age)? + gone)
    }
    /// P(X(t) = n): the probability that a newly acquired customer makes exactly `n` repeat purchases in
    /// the first `t` time units.
    fn probability_of_purchases(&self, n: u32, t: f64) -> Result<f64> {
        self.conditional_probability_of_purchases(n, t, 0.0, 0.0, 0.0)
    }
}

/// Checks a horizon and a probability computed for it: finite, in [0, 1] up to rounding.
pub(crate) fn probability(what: &'static str, t: f64, value: f64) -> Result<f64> {
    if !(t.is_finite() && t >= 0.0) {
        return Err(crate::error::AnalyticsError::InvalidInput(format!("time {t}")));
    }
    if value.is_finite() && (-1e-9..=1.0 + 1e-9).contains(&value) {
        Ok(value.clamp(0.0, 1.0))
    } else {
        Err(crate::error::AnalyticsError::Numerical { what, detail: format!("probability {value}") })
    }
}
