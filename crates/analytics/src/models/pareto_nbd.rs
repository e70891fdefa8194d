//! Pareto/NBD (Schmittlein, Morrison and Colombo 1987), in the form of Fader and Hardie's
//! "A note on deriving the Pareto/NBD model and related expressions" (2005).
//!
//! While alive a customer buys at rate λ ~ Gamma(r, α) and has an exponential lifetime with rate
//! μ ~ Gamma(s, β). The likelihood needs ln 2F1 (see [`crate::special`]); the difference of the two
//! 2F1 terms is formed in log space, and is exactly zero (so skipped) when t_x = T.

use serde::{Deserialize, Serialize};

use super::data::{BtydData, Fitted, fit_positive_parameters, sorted_distinct, warm_start};
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
    /// The ranges of `points` that share a frequency (their times ascending).
    groups: Vec<std::ops::Range<usize>>,
    recency_index: Vec<u32>,
    age_index: Vec<u32>,
}

impl DistinctPoints {
    pub(crate) fn new(data: &BtydData) -> Self {
        Self::of_rows(data.rows(), |i| (data.frequency[i], data.recency[i], data.age[i]))
    }

    /// The points of `rows` rows whose (x, t_x, T) `row` gives.
    fn of_rows(rows: usize, row: impl Fn(usize) -> (f64, f64, f64) + Sync) -> Self {
        use rayon::prelude::*;
        let keys: Vec<(u64, u64)> = sorted_distinct(
            (0..rows)
                .into_par_iter()
                .flat_map_iter(|i| {
                    let (x, t_x, age) = row(i);
                    [(x.to_bits(), t_x.to_bits()), (x.to_bits(), age.to_bits())]
                })
                .collect(),
        );
        let find = |x: f64, t: f64| keys.binary_search(&(x.to_bits(), t.to_bits())).expect("point present") as u32;
        let (recency_index, age_index) = (0..rows)
            .into_par_iter()
            .map(|i| {
                let (x, t_x, age) = row(i);
                (find(x, t_x), find(x, age))
            })
            .unzip();
        let mut groups = Vec::new();
        let mut from = 0;
        for k in 1..=keys.len() {
            if k == keys.len() || keys[k].0 != keys[from].0 {
                groups.push(from..k);
                from = k;
            }
        }
        DistinctPoints {
            points: keys.iter().map(|&(x, t)| (f64::from_bits(x), f64::from_bits(t))).collect(),
            groups,
            recency_index,
            age_index,
        }
    }
}

/// [`log_f`] at every distinct point, one frequency at a time: at the latest time from 2F1, and at
/// each earlier one by adding the integral between it and the next,
///
/// F(t) = (r+s+x) ∫_t^∞ (β+τ)^−(s+1) (α+τ)^−(r+x) dτ,
///
/// which is how Fader and Hardie's note derives A0 = F(t_x) − F(T). The pieces between neighbouring
/// times are short and smooth (see [`log_integral`]), so a few Gauss–Legendre nodes give them to
/// rounding, where 2F1 near z = 1 (β or α far above the other, as when s and β grow together on a log
/// whose customers all drop out at about one rate) needs a quadrature of hundreds of nodes per point.
fn log_fs_at<T: Real>(params: [T; 4], points: &DistinctPoints) -> Result<Vec<T>> {
    use rayon::prelude::*;
    let [r, alpha, s, beta] = params;
    let groups: Vec<Vec<T>> = points
        .groups
        .par_iter()
        .map(|group| {
            let at = &points.points[group.clone()];
            let x = at[0].0;
            let mut out = vec![T::constant(0.0); at.len()];
            let last = at.len() - 1;
            out[last] = log_f(params, x, at[last].1)?;
            let (power, scale) = (r + x, (r + s + x).ln());
            for j in (0..last).rev() {
                out[j] =
                    log_add_exp(out[j + 1], scale + log_integral(alpha, beta, s + 1.0, power, at[j].1, at[j + 1].1));
            }
            Ok(out)
        })
        .collect::<Result<_>>()?;
    Ok(groups.concat())
}

/// Gauss–Legendre nodes and weights on [−1, 1], eight points (the positive half; symmetric).
const LEGENDRE_8: [(f64, f64); 4] = [
    (0.183_434_642_495_649_8, 0.362_683_783_378_362),
    (0.525_532_409_916_329, 0.313_706_645_877_887_3),
    (0.796_666_477_413_626_7, 0.222_381_034_453_374_5),
    (0.960_289_856_497_536_3, 0.101_228_536_290_376_3),
];

/// ln ∫_a^b (β+τ)^−s1 (α+τ)^−k dτ for 0 <= a < b. The integrand's logarithm ψ is convex and
/// falling, its singularities at τ = −α and −β. Each piece is at most 2 / |ψ'| long at its start (so
/// the integrand changes by at most about e² along it) and at most half its distance from either
/// singularity, where eight Gauss–Legendre nodes are exact to rounding; pieces are summed in log space.
fn log_integral<T: Real>(alpha: T, beta: T, s1: T, k: T, a: f64, b: f64) -> T {
    let (alpha_v, beta_v, s1_v, k_v) = (alpha.value(), beta.value(), s1.value(), k.value());
    let psi = |tau: f64| -(s1 * (beta + tau).ln()) - k * (alpha + tau).ln();
    let mut total: Option<T> = None;
    let mut left = a;
    while left < b {
        let slope = s1_v / (beta_v + left) + k_v / (alpha_v + left);
        let step = (2.0 / slope).min(0.5 * (alpha_v + left)).min(0.5 * (beta_v + left));
        let right = if left + step >= b { b } else { left + step };
        let (middle, half) = (0.5 * (left + right), 0.5 * (right - left));
        let reference = psi(middle);
        let mut sum = T::constant(0.0);
        for (node, weight) in LEGENDRE_8 {
            sum = sum
                + ((psi(middle - half * node) - reference).exp() + (psi(middle + half * node) - reference).exp())
                    * weight;
        }
        let piece = reference + (sum * half).ln();
        total = Some(match total {
            None => piece,
            Some(total) => log_add_exp(total, piece),
        });
        left = right;
    }
    total.expect("a < b")
}

pub(crate) fn total_log_likelihood<T: Real>(data: &BtydData, points: &DistinctPoints, params: [T; 4]) -> Result<T> {
    let [r, alpha, s, beta] = params;
    let ln_gamma_r = r.ln_gamma();
    let mut by_frequency = T::constant(0.0);
    for &(x, n) in &data.frequency_counts {
        by_frequency = by_frequency + ((r + x as f64).ln_gamma() - ln_gamma_r) * n;
    }
    let constant = (r * alpha.ln() + s * beta.ln()) * data.customers as f64;
    let log_fs = log_fs_at(params, points)?;
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

/// Above this s the dropout rates μ ~ Gamma(s, β) differ by less than 1 % (coefficient of variation
/// 1/√s) and the likelihood no longer tells s from β, only their ratio.
const RUNAWAY_S: f64 = 1e4;

/// What to tell an analyst when s and β ran away together: the data show one dropout rate for all.
fn runaway_note(params: &ParetoNbdParams) -> Option<String> {
    let ParetoNbdParams { s, beta, .. } = *params;
    (s > RUNAWAY_S).then(|| {
        format!(
            "s = {s:.0} and beta = {beta:.0} grew together: every customer drops out at about one rate, \
             {rate:.4} per time unit (the rates vary by {spread:.2} %), so only s / beta is identified; \
             predictions are sound, the two parameters alone are not",
            rate = s / beta,
            spread = 100.0 / s.sqrt(),
        )
    })
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
        let (p, mut diagnostics) = fit_positive_parameters("pareto/nbd", names, start, data.customers, |p| {
            total_log_likelihood(data, &points, p)
        })?;
        let params = ParetoNbdParams { r: p[0], alpha: p[1], s: p[2], beta: p[3] };
        if let Some(note) = runaway_note(&params) {
            diagnostics.notes.push(note);
        }
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

    fn history_bulk(&self, frequency: &[u32], recency: &[f64], age: &[f64]) -> Result<Vec<f64>> {
        // P(alive) costs next to nothing once A0 is known.
        Ok(self.history_and_alive_bulk(frequency, recency, age)?.into_iter().map(|(history, _)| history).collect())
    }

    fn history_and_alive_bulk(&self, frequency: &[u32], recency: &[f64], age: &[f64]) -> Result<Vec<(f64, f64)>> {
        use rayon::prelude::*;
        for i in 0..frequency.len() {
            check_customer(f64::from(frequency[i]), recency[i], age[i])?;
        }
        let points = DistinctPoints::of_rows(frequency.len(), |i| (f64::from(frequency[i]), recency[i], age[i]));
        let params = self.array();
        let log_fs = log_fs_at(params, &points)?;
        let p = self.params;
        let ln_gamma_r = crate::special::ln_gamma(p.r);
        let constant = p.r * p.alpha.ln() + p.s * p.beta.ln() - ln_gamma_r;
        (0..frequency.len())
            .into_par_iter()
            .map(|i| {
                let (x, t_x, age) = (f64::from(frequency[i]), recency[i], age[i]);
                let a0 = (t_x != age).then(|| {
                    log_sub_exp(log_fs[points.recency_index[i] as usize], log_fs[points.age_index[i] as usize])
                });
                let log_likelihood = crate::special::ln_gamma(p.r + x) + constant + combine(params, x, age, a0);
                let history = (-log_likelihood).exp();
                if !history.is_finite() {
                    return Err(AnalyticsError::Numerical {
                        what: "pareto/nbd likelihood",
                        detail: format!("1/L = {history}"),
                    });
                }
                let alive = match a0 {
                    None => 1.0,
                    Some(a0) => {
                        let odds = p.s.ln() - (p.r + p.s + x).ln()
                            + (p.r + x) * (p.alpha + age).ln()
                            + p.s * (p.beta + age).ln()
                            + a0;
                        1.0 / (1.0 + odds.exp())
                    }
                };
                Ok((history, alive))
            })
            .collect()
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

    /// Customers on a day grid in weeks, with every frequency from 0 to 340 and recency equal to age
    /// among them.
    fn day_grid_customers() -> BtydData {
        let (mut x, mut t_x, mut age) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..6000u32 {
            let frequency = if i % 3 == 0 { f64::from(i % 341) } else { f64::from(i % 23) };
            let days_age = 30 + (i * 7919) % 700;
            let days_recency = if frequency == 0.0 {
                0
            } else if i % 11 == 0 {
                days_age
            } else {
                (i * 104_729) % (days_age + 1)
            };
            x.push(frequency);
            t_x.push(f64::from(days_recency) / 7.0);
            age.push(f64::from(days_age) / 7.0);
        }
        BtydData::new(&x, &t_x, &age).unwrap()
    }

    #[test]
    fn integrals_between_points_agree_with_2f1_at_each_point() {
        use crate::special::Dual;
        let data = day_grid_customers();
        let points = DistinctPoints::new(&data);
        let regimes = [
            [0.553, 10.578, 0.606, 11.669],        // CDNOW, alpha close to beta
            [2.36, 16.4, 259_689.8, 38_317_156.7], // s and beta running away together: z near 1
            [0.2, 1.0, 0.4, 300.0],                // beta far above a small alpha
            [1.5, 400.0, 2.0, 0.7],                // alpha far above beta
            [0.9, 0.05, 30.0, 3.0],                // a tiny alpha: many short pieces
        ];
        for [r, alpha, s, beta] in regimes {
            let values = log_fs_at([r, alpha, s, beta], &points).unwrap();
            let grads = log_fs_at(
                [
                    Dual::variable(r, 0, 1.0),
                    Dual::variable(alpha, 1, 1.0),
                    Dual::variable(s, 2, 1.0),
                    Dual::variable(beta, 3, 1.0),
                ],
                &points,
            )
            .unwrap();
            for (k, &(x, t)) in points.points.iter().enumerate() {
                let direct = log_f([r, alpha, s, beta], x, t).unwrap();
                let tolerance = 1e-12 * direct.abs().max(1.0);
                assert!(
                    (values[k] - direct).abs() <= tolerance,
                    "{:?} x={x} t={t}: {} vs {direct}",
                    [r, alpha, s, beta],
                    values[k]
                );
                assert_eq!(grads[k].v, values[k]);
                let direct_grad = log_f(
                    [
                        Dual::variable(r, 0, 1.0),
                        Dual::variable(alpha, 1, 1.0),
                        Dual::variable(s, 2, 1.0),
                        Dual::variable(beta, 3, 1.0),
                    ],
                    x,
                    t,
                )
                .unwrap();
                for i in 0..4 {
                    let scale = direct_grad.d[i].abs().max(1.0);
                    assert!(
                        (grads[k].d[i] - direct_grad.d[i]).abs() <= 1e-8 * scale,
                        "d{i} at x={x} t={t}: {} vs {}",
                        grads[k].d[i],
                        direct_grad.d[i]
                    );
                }
            }
        }
    }

    #[test]
    fn bulk_history_and_alive_are_the_values_one_at_a_time() {
        let data = day_grid_customers();
        let frequency: Vec<u32> = data.frequency.iter().map(|&x| x as u32).collect();
        // (parameters, relative tolerance of the history factor, absolute tolerance of P(alive)). Where s
        // and β run away together, ln F is near −4.5e6 and one ulp of it is 1e-9, so both ways of
        // forming A0 carry errors of that order (see the reference values below).
        for (params, history_tolerance, alive_tolerance) in [
            (ParetoNbdParams { r: 0.553, alpha: 10.578, s: 0.606, beta: 11.669 }, 1e-11, 1e-12),
            (ParetoNbdParams { r: 2.36, alpha: 16.4, s: 259_689.8, beta: 38_317_156.7 }, 1e-6, 1e-7),
            (ParetoNbdParams { r: 1.5, alpha: 400.0, s: 2.0, beta: 0.7 }, 1e-11, 1e-12),
        ] {
            let m = ParetoNbd::new(params).unwrap();
            let bulk = m.history_and_alive_bulk(&frequency, &data.recency, &data.age).unwrap();
            let history_only = m.history_bulk(&frequency, &data.recency, &data.age).unwrap();
            assert!(bulk.iter().zip(&history_only).all(|(both, &history)| both.0 == history));
            for i in 0..frequency.len() {
                let (x, t_x, age) = (data.frequency[i], data.recency[i], data.age[i]);
                let history = m.history_factor(x, t_x, age).unwrap();
                let alive = m.probability_alive(x, t_x, age).unwrap();
                let history_error = if bulk[i].0 == history { 0.0 } else { (bulk[i].0 / history - 1.0).abs() };
                assert!(history_error < history_tolerance, "{params:?} row {i}: {} vs {history}", bulk[i].0);
                assert!((bulk[i].1 - alive).abs() < alive_tolerance, "{params:?} row {i}: {} vs {alive}", bulk[i].1);
            }
        }
        // P(alive) = first / (first + ∫ s (β+τ)^−(s+1) (α+τ)^−(r+x) dτ) by mpmath's quadrature at 40 digits.
        let runaway =
            ParetoNbd::new(ParetoNbdParams { r: 2.36, alpha: 16.4, s: 259_689.8, beta: 38_317_156.7 }).unwrap();
        let bulk = runaway.history_and_alive_bulk(&[0, 0], &[0.0, 0.0], &[32.0 / 7.0, 11.0]).unwrap();
        for (got, reference) in bulk.iter().zip([0.959_497_261_757_424, 0.873_959_007_561_395_6]) {
            assert!((got.1 - reference).abs() < 2e-10, "{} vs {reference}", got.1);
        }
        let bad = ParetoNbd::new(ParetoNbdParams { r: 1.0, alpha: 1.0, s: 1.0, beta: 1.0 })
            .unwrap()
            .history_and_alive_bulk(&[2], &[5.0], &[4.0]);
        assert!(matches!(bad, Err(AnalyticsError::InvalidInput(_))), "{bad:?}");
    }

    #[test]
    fn a_runaway_of_s_and_beta_is_named() {
        let runaway = ParetoNbdParams { r: 2.34, alpha: 16.33, s: 783_540.0, beta: 117_714_680.0 };
        let note = runaway_note(&runaway).expect("a note");
        assert!(note.contains("0.0067 per time unit") && note.contains("0.11 %"), "{note}");
        assert_eq!(runaway_note(&ParetoNbdParams { r: 0.553, alpha: 10.578, s: 0.606, beta: 11.669 }), None);
    }
}
