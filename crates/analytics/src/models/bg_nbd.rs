//! BG/NBD (Fader, Hardie and Lee 2005) and MBG/NBD (Batislam, Denizel and Filiztekin 2007).
//!
//! While alive a customer buys at rate λ ~ Gamma(r, α); after each repeat purchase (BG/NBD), or after
//! every purchase including the first (MBG/NBD), the customer drops out with probability
//! p ~ Beta(a, b). The log-likelihood is written once over [`Real`] so the fit gets exact gradients.

use serde::{Deserialize, Serialize};

use super::data::{BtydData, Fitted, fit_positive_parameters, warm_start};
use super::{BgNbdParams, PurchaseModel};
use crate::error::{AnalyticsError, Result};
use crate::special::{Real, ln_abs_hyp2f1_with_sign, ln_abs_hyp2f1_with_sign_many, ln_beta, ln_gamma, softplus};

/// A BG/NBD model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbd {
    /// Parameters.
    pub params: BgNbdParams,
}

/// An MBG/NBD model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MbgNbd {
    /// Parameters.
    pub params: BgNbdParams,
}

fn check_params(model: &'static str, p: &BgNbdParams) -> Result<()> {
    for (name, value) in [("r", p.r), ("alpha", p.alpha), ("a", p.a), ("b", p.b)] {
        if !(value.is_finite() && value > 0.0) {
            return Err(AnalyticsError::InvalidParameter { model, name, value });
        }
    }
    Ok(())
}

fn check_customer(x: f64, t_x: f64, age: f64) -> Result<()> {
    let ok = x.is_finite() && x >= 0.0 && t_x.is_finite() && age.is_finite() && t_x >= 0.0 && t_x <= age;
    if ok { Ok(()) } else { Err(AnalyticsError::InvalidInput(format!("frequency {x}, recency {t_x}, age {age}"))) }
}

/// Total log-likelihood; `modified` selects MBG/NBD.
pub(crate) fn total_log_likelihood<T: Real>(data: &BtydData, params: [T; 4], modified: bool) -> Result<T> {
    let [r, alpha, a, b] = params;
    let shift = if modified { 1.0 } else { 0.0 };
    let ln_gamma_r = r.ln_gamma();
    let ln_gamma_b = b.ln_gamma();
    let ab = a + b;
    let ln_gamma_ab = ab.ln_gamma();
    let mut by_frequency = T::constant(0.0);
    for &(x, n) in &data.frequency_counts {
        let x = x as f64;
        let term = (r + x).ln_gamma() - ln_gamma_r + ln_gamma_ab + (b + (x + shift)).ln_gamma()
            - ln_gamma_b
            - (ab + (x + shift)).ln_gamma();
        by_frequency = by_frequency + term * n;
    }
    let ln_alpha = alpha.ln();
    let ln_a = a.ln();
    // What depends on the age, the recency or the frequency alone, once per distinct value.
    let ln_alpha_ages: Vec<T> = data.ages.iter().map(|&age| (alpha + age).ln()).collect();
    let ln_alpha_recencies: Vec<T> = data.recencies.iter().map(|&t_x| (alpha + t_x).ln()).collect();
    let highest = data.frequency_counts.last().map_or(0, |&(x, _)| x as usize);
    let ln_denominators: Vec<T> = (0..=highest)
        .map(|x| {
            let x = x as f64;
            if modified { b + x } else { b + (x - 1.0) }.ln()
        })
        .collect();
    let by_row = data.sum_rows(|i| {
        let x = data.frequency[i];
        let r_x = r + x;
        let ln_alpha_age = ln_alpha_ages[data.age_index[i] as usize];
        let base = -(r_x * ln_alpha_age);
        if !modified && x == 0.0 {
            return Ok(base);
        }
        let ln_alpha_recency = ln_alpha_recencies[data.recency_index[i] as usize];
        let odds = ln_a - ln_denominators[x as usize] + r_x * (ln_alpha_age - ln_alpha_recency);
        Ok(base + softplus(odds))
    })?;
    let total = by_frequency + r * ln_alpha * data.customers as f64 + by_row;
    if total.value().is_finite() {
        Ok(total)
    } else {
        Err(AnalyticsError::Numerical { what: "bg/nbd log-likelihood", detail: "not finite".into() })
    }
}

fn fit(data: &BtydData, modified: bool) -> Result<(BgNbdParams, super::FitDiagnostics)> {
    let model = if modified { "mbg/nbd" } else { "bg/nbd" };
    if data.repeat_customers() == 0.0 {
        return Err(AnalyticsError::Unidentifiable { model, reason: "nobody made a repeat purchase".into() });
    }
    let names = ["r", "alpha", "a", "b"];
    let start = warm_start(data, |sample| {
        fit_positive_parameters(model, names, [1.0; 4], sample.customers, |p| total_log_likelihood(sample, p, modified))
            .map(|(p, _)| p)
    });
    let (p, diagnostics) =
        fit_positive_parameters(model, names, start, data.customers, |p| total_log_likelihood(data, p, modified))?;
    Ok((BgNbdParams { r: p[0], alpha: p[1], a: p[2], b: p[3] }, diagnostics))
}

/// ((α+T)/(α+t_x))^(r+x) · a / d in logs, the odds that the customer is dead.
fn log_death_odds(p: &BgNbdParams, x: f64, t_x: f64, age: f64, denominator: f64) -> f64 {
    p.a.ln() - denominator.ln() + (p.r + x) * ((p.alpha + age).ln() - (p.alpha + t_x).ln())
}

/// 1 − e^log_factor · 2F1(a, b; c; z), formed without cancellation when the product is near 1.
///
/// c may be negative (BG/NBD with a + b < 1 gives c = a + b − 1 for x = 0 and the population
/// expectation), where 2F1 can be negative; then the bracket is 1 + e^log_factor |2F1|.
fn one_minus_scaled_hyp2f1(log_factor: f64, a: f64, b: f64, c: f64, z: f64) -> Result<f64> {
    let (ln_abs, sign) = ln_abs_hyp2f1_with_sign(a, b, c, z)?;
    Ok(one_minus_scaled(log_factor, ln_abs, sign))
}

/// 1 − e^log_factor · F given (ln |F|, sign of F).
fn one_minus_scaled(log_factor: f64, ln_abs: f64, sign: f64) -> f64 {
    let log_term = log_factor + ln_abs;
    if sign > 0.0 {
        -log_term.exp_m1()
    } else if sign < 0.0 {
        1.0 + log_term.exp()
    } else {
        1.0
    }
}

/// (1 − ((α+T)/(α+T+t))^(r+x) 2F1(r+x, b'; c; t/(α+T+t))) / (a − 1), formed without cancellation.
fn bracket_over_a_minus_1(p: &BgNbdParams, t: f64, x: f64, age: f64, b_hyp: f64, c_hyp: f64) -> Result<f64> {
    let z = t / (p.alpha + age + t);
    let log_factor = (p.r + x) * ((p.alpha + age).ln() - (p.alpha + age + t).ln());
    let bracket = one_minus_scaled_hyp2f1(log_factor, p.r + x, b_hyp, c_hyp, z)?;
    Ok(bracket / (p.a - 1.0))
}

/// P(X(T, T + t) = n | alive at T, x, T) for BG/NBD (`modified` false) and MBG/NBD (true).
///
/// Given λ and p, a customer alive at T buys at rate λ and drops out with probability p after each
/// purchase, so P(n | λ, p) = (1−p)^n Poisson(n; λt) + [n > 0] p (1−p)^(n−1) P(Poisson(λt) ≥ n)
/// (Fader, Hardie and Lee 2005, eq. 8, whose derivation of the conditional PMF (Fader, Hardie and Lee,
/// "Deriving the conditional PMF of the BG/NBD model") this follows). Alive at T with x repeat purchases
/// weights p by (1−p)^x (MBG/NBD: (1−p)^(x+1), the drop-out at the first purchase not having happened)
/// and λ by λ^x e^(−λT), which leaves p ~ Beta(a, b + x [+ 1]) and λ ~ Gamma(r + x, α + T):
/// P(n) = [B(a, b'+n) NB(n) + [n > 0] B(a+1, b'+n−1) (1 − Σ_{j<n} NB(j))] / B(a, b'), with b' = b + x
/// [+ 1] and NB the negative binomial of shape r + x and success probability (α+T)/(α+T+t).
fn alive_pmf(p: &BgNbdParams, modified: bool, n: u32, t: f64, x: f64, age: f64) -> Result<f64> {
    check_customer(x, 0.0, age)?;
    if !(t.is_finite() && t >= 0.0) {
        return Err(AnalyticsError::InvalidInput(format!("time {t}")));
    }
    let b = p.b + x + if modified { 1.0 } else { 0.0 };
    let shape = p.r + x;
    let ln_base = ln_beta(p.a, b);
    let ln_u = (p.alpha + age).ln() - (p.alpha + age + t).ln();
    let ln_one_minus_u = if t > 0.0 { t.ln() - (p.alpha + age + t).ln() } else { f64::NEG_INFINITY };
    let ln_gamma_shape = ln_gamma(shape);
    let nb = |j: u32| -> f64 {
        let jf = j as f64;
        let power = if j == 0 { 0.0 } else { jf * ln_one_minus_u };
        (ln_gamma(shape + jf) - ln_gamma_shape - ln_gamma(jf + 1.0) + shape * ln_u + power).exp()
    };
    let nf = n as f64;
    let mut probability = (ln_beta(p.a, b + nf) - ln_base).exp() * nb(n);
    if n > 0 {
        let below: f64 = (0..n).map(nb).sum();
        probability += (ln_beta(p.a + 1.0, b + nf - 1.0) - ln_base).exp() * (1.0 - below).max(0.0);
    }
    super::probability(if modified { "mbg/nbd P(X = n)" } else { "bg/nbd P(X = n)" }, t, probability)
}

/// [`PurchaseModel::horizon_factor_grid`] of BG/NBD (`modified` false) or MBG/NBD: every 2F1 with
/// 0 < z <= 0.98 from shared series ([`ln_abs_hyp2f1_with_sign_many`], the same values as one at a
/// time), the others one at a time by `one(t, age)`.
fn horizon_factor_grid(
    p: &BgNbdParams,
    modified: bool,
    ts: &[f64],
    x: f64,
    ages: &[f64],
    one: impl Fn(f64, f64) -> Result<f64>,
) -> Result<Vec<f64>> {
    let (b_hyp, c) = if modified { (p.b + x + 1.0, p.a + p.b + x) } else { (p.b + x, p.a + p.b + x - 1.0) };
    let what =
        if modified { "mbg/nbd conditional expected purchases" } else { "bg/nbd conditional expected purchases" };
    let cells: Vec<(f64, f64)> = ages.iter().flat_map(|&age| ts.iter().map(move |&t| (age, t))).collect();
    let z = |&(age, t): &(f64, f64)| t / (p.alpha + age + t);
    // Cells whose 2F1 is summed as a series (not Euler's integral, which z > 0.98 takes unless
    // c <= min(a, b)); see ln_hyp2f1_many.
    let series_above = c > 0.0 && c <= (p.r + x).min(b_hyp);
    let batched = |cell: &(f64, f64)| {
        let z = z(cell);
        cell.1 > 0.0 && z > 0.0 && (z <= 0.98 || (series_above && z < 1.0)) && check_customer(x, 0.0, cell.0).is_ok()
    };
    let zs: Vec<f64> = cells.iter().filter(|cell| batched(cell)).map(z).collect();
    let mut shared = match ln_abs_hyp2f1_with_sign_many(p.r + x, b_hyp, c, &zs) {
        Some(values) if !zs.is_empty() => Some(values?.into_iter()),
        _ => None,
    };
    cells
        .iter()
        .map(|cell| {
            let &(age, t) = cell;
            match shared.as_mut() {
                Some(values) if batched(cell) => {
                    let (ln_abs, sign) = values.next().expect("one value per batched cell");
                    // As bracket_over_a_minus_1 forms it.
                    let log_factor = (p.r + x) * ((p.alpha + age).ln() - (p.alpha + age + t).ln());
                    let bracket = one_minus_scaled(log_factor, ln_abs, sign) / (p.a - 1.0);
                    finite_non_negative(what, c * bracket)
                }
                _ => one(t, age),
            }
        })
        .collect()
}

fn finite_non_negative(what: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() && value >= -1e-12 {
        Ok(value.max(0.0))
    } else {
        Err(AnalyticsError::Numerical { what, detail: format!("value {value}") })
    }
}

impl BgNbd {
    /// A model with the given parameters.
    pub fn new(params: BgNbdParams) -> Result<Self> {
        check_params("bg/nbd", &params)?;
        Ok(BgNbd { params })
    }

    /// Maximum-likelihood fit.
    pub fn fit(data: &BtydData) -> Result<Fitted<Self>> {
        let (params, diagnostics) = fit(data, false)?;
        Ok(Fitted { model: BgNbd { params }, diagnostics })
    }

    /// Total log-likelihood of `data` under this model.
    pub fn log_likelihood(&self, data: &BtydData) -> Result<f64> {
        let p = self.params;
        total_log_likelihood(data, [p.r, p.alpha, p.a, p.b], false)
    }
}

impl PurchaseModel for BgNbd {
    fn name(&self) -> &'static str {
        "bg_nbd"
    }

    fn probability_alive(&self, x: f64, t_x: f64, age: f64) -> Result<f64> {
        check_customer(x, t_x, age)?;
        if x == 0.0 {
            return Ok(1.0);
        }
        let odds = log_death_odds(&self.params, x, t_x, age, self.params.b + x - 1.0);
        Ok(1.0 / (1.0 + odds.exp()))
    }

    fn horizon_factor(&self, t: f64, x: f64, age: f64) -> Result<f64> {
        check_customer(x, 0.0, age)?;
        let p = self.params;
        if t == 0.0 {
            return Ok(0.0);
        }
        let c = p.a + p.b + x - 1.0;
        let bracket = bracket_over_a_minus_1(&p, t, x, age, p.b + x, c)?;
        finite_non_negative("bg/nbd conditional expected purchases", c * bracket)
    }

    fn horizon_factor_grid(&self, ts: &[f64], x: f64, ages: &[f64]) -> Result<Vec<f64>> {
        horizon_factor_grid(&self.params, false, ts, x, ages, |t, age| self.horizon_factor(t, x, age))
    }

    fn history_factor(&self, x: f64, t_x: f64, age: f64) -> Result<f64> {
        self.probability_alive(x, t_x, age)
    }

    fn expected_purchases_population(&self, t: f64) -> Result<f64> {
        let p = self.params;
        if t == 0.0 {
            return Ok(0.0);
        }
        let c = p.a + p.b - 1.0;
        let z = t / (p.alpha + t);
        let bracket = one_minus_scaled_hyp2f1(p.r * (p.alpha / (p.alpha + t)).ln(), p.r, p.b, c, z)?;
        finite_non_negative("bg/nbd E[X(t)]", c / (p.a - 1.0) * bracket)
    }

    fn alive_probability_of_purchases(&self, n: u32, t: f64, x: f64, age: f64) -> Result<f64> {
        alive_pmf(&self.params, false, n, t, x, age)
    }

    /// P(X(t) = n) of a new customer (Fader, Hardie and Lee 2005, eq. 8).
    fn probability_of_purchases(&self, n: u32, t: f64) -> Result<f64> {
        let p = self.params;
        if !(t.is_finite() && t >= 0.0) {
            return Err(AnalyticsError::InvalidInput(format!("time {t}")));
        }
        let x = n as f64;
        let ln_beta_ab = ln_beta(p.a, p.b);
        let ln_q = (p.alpha / (p.alpha + t)).ln();
        let ln_z = if t > 0.0 { (t / (p.alpha + t)).ln() } else { f64::NEG_INFINITY };
        let nb = |j: f64| -> f64 {
            let power = if j == 0.0 { 0.0 } else { j * ln_z };
            (ln_gamma(p.r + j) - ln_gamma(p.r) - ln_gamma(j + 1.0) + p.r * ln_q + power).exp()
        };
        let mut probability = (ln_beta(p.a, p.b + x) - ln_beta_ab).exp() * nb(x);
        if n > 0 {
            let below: f64 = (0..n).map(|j| nb(j as f64)).sum();
            probability += (ln_beta(p.a + 1.0, p.b + x - 1.0) - ln_beta_ab).exp() * (1.0 - below).max(0.0);
        }
        finite_non_negative("bg/nbd P(X(t) = n)", probability)
    }
}

impl MbgNbd {
    /// A model with the given parameters.
    pub fn new(params: BgNbdParams) -> Result<Self> {
        check_params("mbg/nbd", &params)?;
        Ok(MbgNbd { params })
    }

    /// Maximum-likelihood fit.
    pub fn fit(data: &BtydData) -> Result<Fitted<Self>> {
        let (params, diagnostics) = fit(data, true)?;
        Ok(Fitted { model: MbgNbd { params }, diagnostics })
    }

    /// Total log-likelihood of `data` under this model.
    pub fn log_likelihood(&self, data: &BtydData) -> Result<f64> {
        let p = self.params;
        total_log_likelihood(data, [p.r, p.alpha, p.a, p.b], true)
    }
}

impl PurchaseModel for MbgNbd {
    fn name(&self) -> &'static str {
        "mbg_nbd"
    }

    fn probability_alive(&self, x: f64, t_x: f64, age: f64) -> Result<f64> {
        check_customer(x, t_x, age)?;
        let odds = log_death_odds(&self.params, x, t_x, age, self.params.b + x);
        Ok(1.0 / (1.0 + odds.exp()))
    }

    fn horizon_factor(&self, t: f64, x: f64, age: f64) -> Result<f64> {
        check_customer(x, 0.0, age)?;
        let p = self.params;
        if t == 0.0 {
            return Ok(0.0);
        }
        let c = p.a + p.b + x;
        let bracket = bracket_over_a_minus_1(&p, t, x, age, p.b + x + 1.0, c)?;
        finite_non_negative("mbg/nbd conditional expected purchases", c * bracket)
    }

    fn horizon_factor_grid(&self, ts: &[f64], x: f64, ages: &[f64]) -> Result<Vec<f64>> {
        horizon_factor_grid(&self.params, true, ts, x, ages, |t, age| self.horizon_factor(t, x, age))
    }

    fn history_factor(&self, x: f64, t_x: f64, age: f64) -> Result<f64> {
        self.probability_alive(x, t_x, age)
    }

    fn expected_purchases_population(&self, t: f64) -> Result<f64> {
        let p = self.params;
        if t == 0.0 {
            return Ok(0.0);
        }
        let z = t / (p.alpha + t);
        let bracket = one_minus_scaled_hyp2f1(p.r * (p.alpha / (p.alpha + t)).ln(), p.r, p.b + 1.0, p.a + p.b, z)?;
        finite_non_negative("mbg/nbd E[X(t)]", p.b / (p.a - 1.0) * bracket)
    }

    fn alive_probability_of_purchases(&self, n: u32, t: f64, x: f64, age: f64) -> Result<f64> {
        alive_pmf(&self.params, true, n, t, x, age)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardie_example_customer() {
        // Fader, Hardie and Lee (2005): x = 2, t_x = 30.43, T = 38.86 expects 1.226 purchases in 39 weeks.
        let model = BgNbd::new(BgNbdParams { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 }).unwrap();
        let expected = model.expected_purchases(39.0, 2.0, 30.43, 38.86).unwrap();
        assert!((expected - 1.226).abs() < 5e-4, "{expected}");
    }

    #[test]
    fn probabilities_of_purchases_sum_to_one() {
        let model = BgNbd::new(BgNbdParams { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 }).unwrap();
        let total: f64 = (0..400).map(|n| model.probability_of_purchases(n, 39.0).unwrap()).sum();
        assert!((total - 1.0).abs() < 1e-6, "{total}");
        let mean: f64 = (0..400).map(|n| n as f64 * model.probability_of_purchases(n, 39.0).unwrap()).sum();
        let expected = model.expected_purchases_population(39.0).unwrap();
        assert!((mean - expected).abs() < 1e-4, "{mean} vs {expected}");
    }

    /// BG/NBD fitted on the demo shop with a + b < 1, so 2F1(r, b; a + b − 1; z) has c < 0 for x = 0.
    fn demo_shop_model() -> BgNbd {
        BgNbd::new(BgNbdParams { r: 0.1894811857454989, alpha: 0.6176, a: 0.13734514195852055, b: 0.7550061089619886 })
            .unwrap()
    }

    #[test]
    #[allow(clippy::excessive_precision)] // reference values keep the digits mpmath printed
    fn conditional_expectation_with_a_plus_b_below_one_matches_lifetimes() {
        // Reference: lifetimes' conditional_expected_number_of_purchases_up_to_time,
        // (a+b+x−1)/(a−1) · (1 − ((α+T)/(α+T+t))^(r+x) 2F1(r+x, b+x; a+b+x−1; t/(α+T+t)))
        //   / (1 + [x > 0] a/(b+x−1) ((α+T)/(α+t_x))^(r+x)),
        // evaluated with Python mpmath 1.3.0 at 40 digits; (t, x, t_x, T, expected).
        let model = demo_shop_model();
        let cases = [
            (30.0, 0.0, 0.0, 20.0, 0.2520511029475907),
            (365.0, 0.0, 0.0, 5.0, 7.4571875458528423),
            (30.0, 2.0, 10.0, 20.0, 2.2128145969226635),
        ];
        for (t, x, t_x, age, reference) in cases {
            let e = model.expected_purchases(t, x, t_x, age).unwrap();
            assert!(e.is_finite() && e > 0.0, "{e}");
            assert!((e - reference).abs() <= 1e-12 * reference, "E[X({t}) | {x}, {t_x}, {age}] = {e} vs {reference}");
        }
        // Same formula without conditioning (x = 0, T = 0): (a+b−1)/(a−1) (1 − (α/(α+t))^r 2F1(r, b; a+b−1; t/(α+t))).
        for (t, reference) in [(30.0, 5.7932865678119556), (365.0, 50.295642735258967)] {
            let e = model.expected_purchases_population(t).unwrap();
            assert!((e - reference).abs() <= 1e-12 * reference, "E[X({t})] = {e} vs {reference}");
        }
    }

    #[test]
    fn zero_frequency_customers_with_a_plus_b_below_one_are_finite_and_positive() {
        let model = demo_shop_model();
        let mut previous = 0.0;
        for age in [0.0, 0.5, 3.0, 40.0, 400.0] {
            for t in [0.1, 1.0, 30.0, 365.0, 5000.0] {
                let e = model.expected_purchases(t, 0.0, 0.0, age).unwrap();
                assert!(e.is_finite() && e > 0.0, "t={t}, T={age}: {e}");
                if age == 0.0 {
                    assert!(e > previous, "grows with the horizon");
                    previous = e;
                }
            }
        }
        let (expected, alive) =
            crate::models::expected_purchases_bulk(&model, 30.0, &[0, 0, 3], &[0.0, 0.0, 12.0], &[5.0, 80.0, 80.0])
                .unwrap();
        assert!(expected.iter().all(|e| e.is_finite() && *e > 0.0), "{expected:?}");
        assert_eq!(alive[0], 1.0);
    }

    #[test]
    fn frequencies_above_300_stay_finite() {
        let model = BgNbd::new(BgNbdParams { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 }).unwrap();
        let e = model.expected_purchases(52.0, 350.0, 38.0, 38.86).unwrap();
        assert!(e.is_finite() && e > 0.0);
        let m = MbgNbd::new(BgNbdParams { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 }).unwrap();
        let e = m.expected_purchases(52.0, 350.0, 38.0, 38.86).unwrap();
        assert!(e.is_finite() && e > 0.0);
    }
}
