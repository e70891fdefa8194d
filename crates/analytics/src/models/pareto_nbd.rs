//! Pareto/NBD (Schmittlein, Morrison and Colombo 1987), in the form of Fader and Hardie's
//! "A note on deriving the Pareto/NBD model and related expressions" (2005).
//!
//! While alive a customer buys at rate λ ~ Gamma(r, α) and has an exponential lifetime with rate
//! μ ~ Gamma(s, β). The likelihood needs ln 2F1 (see [`crate::special`]); the difference of the two
//! 2F1 terms is formed in log space, and is exactly zero (so skipped) when t_x = T.

use serde::{Deserialize, Serialize};

use super::data::{BtydData, Fitted, fit_positive_parameters, warm_start};
use super::{ParetoNbdParams, PurchaseModel};
use crate::error::{AnalyticsError, Result};
use crate::special::{Real, log_add_exp, log_sub_exp};

/// A Pareto/NBD model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ParetoNbd {
    /// Parameters.
    pub params: ParetoNbdParams,
}

/// ln of 2F1(r+s+x, b'; r+s+x+1; |α−β| / (max(α,β) + t)) / (max(α,β) + t)^(r+s+x), the two terms
/// whose difference is A0 of Fader and Hardie's note.
fn log_f<T: Real>(params: [T; 4], x: f64, t: f64) -> Result<T> {
    let [r, alpha, s, beta] = params;
    let (max, difference, b_hyp) =
        if alpha.value() >= beta.value() { (alpha, alpha - beta, s + 1.0) } else { (beta, beta - alpha, r + x) };
    let rsx = r + s + x;
    let shifted = max + t;
    Ok(T::ln_hyp2f1(rsx, b_hyp, rsx + 1.0, difference / shifted)? - rsx * shifted.ln())
}

/// ln A0 of Fader and Hardie's note, or `None` when it is exactly zero (t_x = T).
fn log_a0<T: Real>(params: [T; 4], x: f64, t_x: f64, age: f64) -> Result<Option<T>> {
    if t_x == age {
        return Ok(None);
    }
    Ok(Some(log_sub_exp(log_f(params, x, t_x)?, log_f(params, x, age)?)))
}

/// ln[(α+T)^-(r+x) (β+T)^-s + s/(r+s+x) A0] given ln A0.
fn combine<T: Real>(params: [T; 4], x: f64, age: f64, a0: Option<T>) -> T {
    let [r, alpha, s, beta] = params;
    let first = -((r + x) * (alpha + age).ln()) - s * (beta + age).ln();
    match a0 {
        Some(a0) => log_add_exp(first, s.ln() + a0 - (r + s + x).ln()),
        None => first,
    }
}

/// ln of the likelihood terms that depend on recency and age.
fn log_recency_term<T: Real>(params: [T; 4], x: f64, t_x: f64, age: f64) -> Result<T> {
    Ok(combine(params, x, age, log_a0(params, x, t_x, age)?))
}

/// The distinct (x, t) points at which the likelihood needs 2F1 (t being a recency or an age), and
/// each row's two indices into them: far fewer 2F1 evaluations than two per row.
pub(crate) struct DistinctPoints {
    points: Vec<(f64, f64)>,
    recency_index: Vec<u32>,
    age_index: Vec<u32>,
}

impl DistinctPoints {
    pub(crate) fn new(data: &BtydData) -> Self {
        use rayon::prelude::*;
        let mut keys: Vec<(u64, u64)> = (0..data.rows())
            .flat_map(|i| {
                let x = data.frequency[i].to_bits();
                [(x, data.recency[i].to_bits()), (x, data.age[i].to_bits())]
            })
            .collect();
        keys.par_sort_unstable();
        keys.dedup();
        let find = |x: f64, t: f64| keys.binary_search(&(x.to_bits(), t.to_bits())).expect("point present") as u32;
        let (recency_index, age_index) = (0..data.rows())
            .into_par_iter()
            .map(|i| (find(data.frequency[i], data.recency[i]), find(data.frequency[i], data.age[i])))
            .unzip();
        DistinctPoints {
            points: keys.iter().map(|&(x, t)| (f64::from_bits(x), f64::from_bits(t))).collect(),
            recency_index,
            age_index,
        }
    }
}

pub(crate) fn total_log_likelihood<T: Real>(data: &BtydData, points: &DistinctPoints, params: [T; 4]) -> Result<T> {
    use rayon::prelude::*;
    let [r, alpha, s, beta] = params;
    let ln_gamma_r = r.ln_gamma();
    let mut by_frequency = T::constant(0.0);
    for &(x, n) in &data.frequency_counts {
        by_frequency = by_frequency + ((r + x as f64).ln_gamma() - ln_gamma_r) * n;
    }
    let constant = (r * alpha.ln() + s * beta.ln()) * data.customers as f64;
    let log_fs: Vec<T> =
        points.points.par_iter().with_min_len(256).map(|&(x, t)| log_f(params, x, t)).collect::<Result<_>>()?;
    let by_row = data.sum_rows(|i| {
        let (x, t_x, age) = (data.frequency[i], data.recency[i], data.age[i]);
        let a0 = (t_x != age)
            .then(|| log_sub_exp(log_fs[points.recency_index[i] as usize], log_fs[points.age_index[i] as usize]));
        Ok(combine(params, x, age, a0))
    })?;
    let total = by_frequency + constant + by_row;
    if total.value().is_finite() {
        Ok(total)
    } else {
        Err(AnalyticsError::Numerical { what: "pareto/nbd log-likelihood", detail: "not finite".into() })
    }
}

fn check_customer(x: f64, t_x: f64, age: f64) -> Result<()> {
    let ok = x.is_finite() && x >= 0.0 && t_x.is_finite() && age.is_finite() && t_x >= 0.0 && t_x <= age;
    if ok { Ok(()) } else { Err(AnalyticsError::InvalidInput(format!("frequency {x}, recency {t_x}, age {age}"))) }
}

/// (1 − e^(k L)) / k for L < 0, with its limit −L at k = 0.
fn one_minus_power_over(k: f64, log_ratio: f64) -> f64 {
    if k.abs() < 1e-10 { -log_ratio } else { -(k * log_ratio).exp_m1() / k }
}

impl ParetoNbd {
    /// A model with the given parameters.
    pub fn new(params: ParetoNbdParams) -> Result<Self> {
        for (name, value) in [("r", params.r), ("alpha", params.alpha), ("s", params.s), ("beta", params.beta)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(AnalyticsError::InvalidParameter { model: "pareto/nbd", name, value });
            }
        }
        Ok(ParetoNbd { params })
    }

    /// Maximum-likelihood fit.
    pub fn fit(data: &BtydData) -> Result<Fitted<Self>> {
        if data.repeat_customers() == 0.0 {
            return Err(AnalyticsError::Unidentifiable {
                model: "pareto/nbd",
                reason: "nobody made a repeat purchase".into(),
            });
        }
        let names = ["r", "alpha", "s", "beta"];
        let start = warm_start(data, |sample| {
            let points = DistinctPoints::new(sample);
            fit_positive_parameters("pareto/nbd", names, [1.0; 4], sample.customers, |p| {
                total_log_likelihood(sample, &points, p)
            })
            .map(|(p, _)| p)
        });
        let points = DistinctPoints::new(data);
        let (p, diagnostics) = fit_positive_parameters("pareto/nbd", names, start, data.customers, |p| {
            total_log_likelihood(data, &points, p)
        })?;
        let params = ParetoNbdParams { r: p[0], alpha: p[1], s: p[2], beta: p[3] };
        Ok(Fitted { model: ParetoNbd { params }, diagnostics })
    }

    fn array(&self) -> [f64; 4] {
        let p = self.params;
        [p.r, p.alpha, p.s, p.beta]
    }

    /// Total log-likelihood of `data` under this model.
    pub fn log_likelihood(&self, data: &BtydData) -> Result<f64> {
        total_log_likelihood(data, &DistinctPoints::new(data), self.array())
    }

    /// Log-likelihood of one customer.
    pub fn customer_log_likelihood(&self, x: f64, t_x: f64, age: f64) -> Result<f64> {
        check_customer(x, t_x, age)?;
        let p = self.params;
        Ok(crate::special::ln_gamma(p.r + x) - crate::special::ln_gamma(p.r)
            + p.r * p.alpha.ln()
            + p.s * p.beta.ln()
            + log_recency_term(self.array(), x, t_x, age)?)
    }
}

impl PurchaseModel for ParetoNbd {
    fn name(&self) -> &'static str {
        "pareto_nbd"
    }

    fn probability_alive(&self, x: f64, t_x: f64, age: f64) -> Result<f64> {
        check_customer(x, t_x, age)?;
        let p = self.params;
        let Some(a0) = log_a0(self.array(), x, t_x, age)? else {
            return Ok(1.0);
        };
        let odds = p.s.ln() - (p.r + p.s + x).ln() + (p.r + x) * (p.alpha + age).ln() + p.s * (p.beta + age).ln() + a0;
        Ok(1.0 / (1.0 + odds.exp()))
    }

    fn horizon_factor(&self, t: f64, x: f64, age: f64) -> Result<f64> {
        check_customer(x, 0.0, age)?;
        if t == 0.0 {
            return Ok(0.0);
        }
        let p = self.params;
        let first =
            crate::special::ln_gamma(p.r + x) - crate::special::ln_gamma(p.r) + p.r * p.alpha.ln() + p.s * p.beta.ln()
                - (p.r + x) * (p.alpha + age).ln()
                - p.s * (p.beta + age).ln();
        let second = (p.r + x).ln() + (p.beta + age).ln() - (p.alpha + age).ln();
        let third = one_minus_power_over(p.s - 1.0, ((p.beta + age) / (p.beta + age + t)).ln()).ln();
        let value = (first + second + third).exp();
        if value.is_finite() && value >= 0.0 {
            Ok(value)
        } else {
            Err(AnalyticsError::Numerical {
                what: "pareto/nbd conditional expected purchases",
                detail: format!("{value}"),
            })
        }
    }

    fn history_factor(&self, x: f64, t_x: f64, age: f64) -> Result<f64> {
        let value = (-self.customer_log_likelihood(x, t_x, age)?).exp();
        if value.is_finite() {
            Ok(value)
        } else {
            Err(AnalyticsError::Numerical { what: "pareto/nbd likelihood", detail: format!("1/L = {value}") })
        }
    }

    fn expected_purchases_population(&self, t: f64) -> Result<f64> {
        let p = self.params;
        let value = p.r * p.beta / p.alpha * one_minus_power_over(p.s - 1.0, (p.beta / (p.beta + t)).ln());
        if value.is_finite() && value >= 0.0 {
            Ok(value)
        } else {
            Err(AnalyticsError::Numerical { what: "pareto/nbd E[X(t)]", detail: format!("{value}") })
        }
    }

    /// Equation (16) of Fader and Hardie's "Deriving the conditional PMF of the Pareto/NBD model"
    /// (2006) for a customer alive at T (t_x = T, so P(alive) = 1 and its first term vanishes): the n
    /// purchases come before T + t while alive throughout, or before a death in (T, T + t]; the latter
    /// is a difference of 2F1 terms, formed in log space.
    fn alive_probability_of_purchases(&self, n: u32, t: f64, x: f64, age: f64) -> Result<f64> {
        use crate::special::{ln_beta, ln_gamma, ln_hyp2f1};
        check_customer(x, age, age)?;
        if !(t.is_finite() && t >= 0.0) {
            return Err(AnalyticsError::InvalidInput(format!("time {t}")));
        }
        if t == 0.0 {
            return Ok(if n == 0 { 1.0 } else { 0.0 });
        }
        let ParetoNbdParams { r, alpha, s, beta } = self.params;
        let nf = n as f64;
        let common = r * alpha.ln() + s * beta.ln() - ln_gamma(r) - self.customer_log_likelihood(x, age, age)?;
        let power = |i: f64| if i == 0.0 { 0.0 } else { i * t.ln() };
        let alive_throughout = power(nf) - ln_gamma(nf + 1.0) + ln_gamma(r + x + nf)
            - (r + x + nf) * (alpha + age + t).ln()
            - s * (beta + age + t).ln()
            + common;
        let (max, b_hyp) = if alpha < beta { (beta, r + x + nf) } else { (alpha, s + 1.0) };
        let difference = (alpha - beta).abs();
        let c = r + s + x + nf + 1.0;
        let death_common = common - ln_gamma(s) + ln_beta(r + x + nf, s + 1.0);
        let term = |i: f64, at: f64| -> Result<f64> {
            Ok(power(i) - ln_gamma(i + 1.0)
                + ln_gamma(r + s + x + i)
                + ln_hyp2f1(r + s + x + i, b_hyp, c, difference / (max + at))?
                - (r + s + x + i) * (max + at).ln()
                + death_common)
        };
        // At T only the i = 0 term (t^0); at T + t the sum over i = 0..=n.
        let at_start = term(0.0, age)?;
        let mut at_end = f64::NEG_INFINITY;
        for i in 0..=n {
            at_end = log_add_exp(at_end, term(i as f64, age + t)?);
        }
        let dying = if at_end < at_start { (at_start + (-(at_end - at_start).exp()).ln_1p()).exp() } else { 0.0 };
        let value = alive_throughout.exp() + dying;
        super::probability("pareto/nbd P(X = n)", t, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ParetoNbd {
        ParetoNbd::new(ParetoNbdParams { r: 0.553, alpha: 10.578, s: 0.606, beta: 11.669 }).unwrap()
    }

    #[test]
    fn recency_equal_to_age_is_certainly_alive_and_finite() {
        let m = model();
        assert_eq!(m.probability_alive(3.0, 20.0, 20.0).unwrap(), 1.0);
        let ll = m.customer_log_likelihood(3.0, 20.0, 20.0).unwrap();
        assert!(ll.is_finite());
        // Continuity: t_x just below T gives nearly the same likelihood.
        let near = m.customer_log_likelihood(3.0, 20.0 - 1e-9, 20.0).unwrap();
        assert!((ll - near).abs() < 1e-6, "{ll} vs {near}");
        let e = m.expected_purchases(10.0, 3.0, 20.0, 20.0).unwrap();
        assert!(e.is_finite() && e > 0.0);
    }

    #[test]
    fn frequencies_above_300_and_both_orders_of_alpha_beta() {
        let m = model();
        let e = m.expected_purchases(39.0, 320.0, 37.0, 38.0).unwrap();
        assert!(e.is_finite() && e > 0.0, "{e}");
        let flipped = ParetoNbd::new(ParetoNbdParams { r: 0.553, alpha: 20.0, s: 0.606, beta: 2.0 }).unwrap();
        let p = flipped.probability_alive(2.0, 10.0, 30.0).unwrap();
        assert!(p > 0.0 && p < 1.0);
    }

    #[test]
    fn population_expectation_with_s_equal_one() {
        let m = ParetoNbd::new(ParetoNbdParams { r: 1.0, alpha: 10.0, s: 1.0, beta: 10.0 }).unwrap();
        let e = m.expected_purchases_population(10.0).unwrap();
        assert!((e - 2f64.ln()).abs() < 1e-12);
    }
}
