//! Customer lifetime value over a horizon, in the convention of `lifetimes`'
//! `GammaGammaFitter.customer_lifetime_value`: the horizon is counted in months, each month's expected
//! purchases (the increase of the conditional expectation over that month) are valued at the
//! customer's expected average value and discounted at a monthly rate.

use super::PurchaseModel;
use crate::error::{AnalyticsError, Result};
use crate::log::TimeUnit;

/// Model time units per month as `lifetimes` counts them (4.345 weeks, 30 days, 1 month).
pub fn periods_per_month(unit: TimeUnit) -> f64 {
    match unit {
        TimeUnit::Day => 30.0,
        TimeUnit::Week => 4.345,
        TimeUnit::Month => 1.0,
    }
}

/// Discounted expected value of a customer's purchases in the next `horizon_months` months.
/// `expected_value` is the expected average transaction value (for example from Gamma-Gamma);
/// `monthly_discount_rate` the discount rate per month (0.01 = 1 %). Never negative: invalid inputs
/// or numerical failures are errors.
#[allow(clippy::too_many_arguments)]
pub fn customer_lifetime_value(
    model: &dyn PurchaseModel,
    unit: TimeUnit,
    x: f64,
    t_x: f64,
    age: f64,
    expected_value: f64,
    horizon_months: u32,
    monthly_discount_rate: f64,
) -> Result<f64> {
    if !(expected_value.is_finite() && expected_value >= 0.0) {
        return Err(AnalyticsError::InvalidInput(format!("expected value {expected_value}")));
    }
    if !(monthly_discount_rate.is_finite() && monthly_discount_rate > -1.0) {
        return Err(AnalyticsError::InvalidInput(format!("discount rate {monthly_discount_rate}")));
    }
    let factor = periods_per_month(unit);
    let mut previous = 0.0;
    let mut value = 0.0;
    for month in 1..=horizon_months {
        let cumulative = model.expected_purchases(month as f64 * factor, x, t_x, age)?;
        let increment = (cumulative - previous).max(0.0);
        previous = cumulative;
        value += expected_value * increment / (1.0 + monthly_discount_rate).powi(month as i32);
    }
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(AnalyticsError::Numerical { what: "customer lifetime value", detail: format!("{value}") })
    }
}

/// Inputs of [`customer_lifetime_values`], one entry per customer.
#[derive(Debug, Clone, Copy)]
pub struct ClvInputs<'a> {
    /// Repeat transactions x.
    pub frequency: &'a [u32],
    /// Recency t_x in the model's time unit.
    pub recency: &'a [f64],
    /// Age T in the model's time unit.
    pub age: &'a [f64],
    /// Expected average transaction value per customer; `None` where it is undefined (the CLV is
    /// then `None` too).
    pub expected_value: &'a [Option<f64>],
}

/// [`customer_lifetime_value`] for many customers at once, in parallel: the horizon part of the
/// expectation is computed once per distinct (frequency, age). Entries are `None` where the
/// expected value is undefined, and errors are reported, not hidden.
pub fn customer_lifetime_values(
    model: &dyn PurchaseModel,
    unit: TimeUnit,
    inputs: ClvInputs<'_>,
    horizon_months: u32,
    monthly_discount_rate: f64,
) -> Result<Vec<Option<f64>>> {
    use rayon::prelude::*;
    use std::collections::HashMap;
    let n = inputs.frequency.len();
    if inputs.recency.len() != n || inputs.age.len() != n || inputs.expected_value.len() != n {
        return Err(AnalyticsError::InvalidInput("CLV input columns differ in length".into()));
    }
    if !(monthly_discount_rate.is_finite() && monthly_discount_rate > -1.0) {
        return Err(AnalyticsError::InvalidInput(format!("discount rate {monthly_discount_rate}")));
    }
    let factor = periods_per_month(unit);
    let mut keys: Vec<(u32, u64)> = (0..n).map(|i| (inputs.frequency[i], inputs.age[i].to_bits())).collect();
    keys.par_sort_unstable();
    keys.dedup();
    let ts: Vec<f64> = (1..=horizon_months).map(|month| month as f64 * factor).collect();
    // One grid of horizon factors per frequency (the model shares work within it).
    let discounted: Vec<Result<f64>> = frequency_groups(&keys)
        .par_iter()
        .map(|group| -> Vec<Result<f64>> {
            let x = group[0].0 as f64;
            let ages: Vec<f64> = group.iter().map(|&(_, a)| f64::from_bits(a)).collect();
            let grid = match model.horizon_factor_grid(&ts, x, &ages) {
                Ok(grid) => grid,
                Err(e) => return vec![Err(e)],
            };
            grid.chunks(ts.len())
                .map(|row| {
                    let mut previous = 0.0;
                    let mut total = 0.0;
                    for (month, &cumulative) in (1..=horizon_months).zip(row) {
                        total += (cumulative - previous).max(0.0) / (1.0 + monthly_discount_rate).powi(month as i32);
                        previous = cumulative;
                    }
                    Ok(total)
                })
                .collect()
        })
        .flatten()
        .collect();
    let discounted = discounted.into_iter().collect::<Result<Vec<f64>>>()?;
    let history = model.history_bulk(inputs.frequency, inputs.recency, inputs.age)?;
    let mut lookup: HashMap<(u32, u64), f64, crate::log::FxBuild> =
        HashMap::with_capacity_and_hasher(keys.len(), Default::default());
    for (key, value) in keys.into_iter().zip(discounted) {
        lookup.insert(key, value);
    }
    (0..n)
        .into_par_iter()
        .map(|i| {
            let Some(value) = inputs.expected_value[i] else {
                return Ok(None);
            };
            if !(value.is_finite() && value >= 0.0) {
                return Err(AnalyticsError::InvalidInput(format!("expected value {value} of customer row {i}")));
            }
            let horizon = lookup[&(inputs.frequency[i], inputs.age[i].to_bits())];
            let clv = value * horizon * history[i];
            if clv.is_finite() && clv >= 0.0 {
                Ok(Some(clv))
            } else {
                Err(AnalyticsError::Numerical { what: "customer lifetime value", detail: format!("{clv} at row {i}") })
            }
        })
        .collect()
}

/// Conditional expected purchases in the next `t` time units and probability alive for many
/// customers at once, in parallel; the horizon part is computed once per distinct (frequency, age).
pub fn expected_purchases_bulk(
    model: &dyn PurchaseModel,
    t: f64,
    frequency: &[u32],
    recency: &[f64],
    age: &[f64],
) -> Result<(Vec<f64>, Vec<f64>)> {
    use rayon::prelude::*;
    use std::collections::HashMap;
    let n = frequency.len();
    if recency.len() != n || age.len() != n {
        return Err(AnalyticsError::InvalidInput("input columns differ in length".into()));
    }
    let mut keys: Vec<(u32, u64)> = (0..n).map(|i| (frequency[i], age[i].to_bits())).collect();
    keys.par_sort_unstable();
    keys.dedup();
    let factors: Vec<f64> = frequency_groups(&keys)
        .par_iter()
        .map(|group| {
            let ages: Vec<f64> = group.iter().map(|&(_, a)| f64::from_bits(a)).collect();
            model.horizon_factor_grid(&[t], group[0].0 as f64, &ages)
        })
        .collect::<Result<Vec<Vec<f64>>>>()?
        .concat();
    let lookup: HashMap<(u32, u64), f64, crate::log::FxBuild> = keys.into_iter().zip(factors).collect();
    let history_and_alive = model.history_and_alive_bulk(frequency, recency, age)?;
    let pairs: Vec<(f64, f64)> = (0..n)
        .into_par_iter()
        .map(|i| {
            let horizon = lookup[&(frequency[i], age[i].to_bits())];
            let (history, alive) = history_and_alive[i];
            let expected = horizon * history;
            if expected.is_finite() && expected >= 0.0 {
                Ok((expected, alive))
            } else {
                Err(AnalyticsError::Numerical { what: "expected purchases", detail: format!("{expected} at row {i}") })
            }
        })
        .collect::<Result<_>>()?;
    Ok(pairs.into_iter().unzip())
}

/// P(no purchase), P(one purchase) and P(two or more) in the next `t` time units for many customers at
/// once, given each customer's P(alive) (`None` where it is unknown, which gives `None`); the part of an
/// alive customer's probabilities that depends on frequency and age only is computed once per distinct
/// (frequency, age).
pub fn purchase_probabilities_bulk(
    model: &dyn PurchaseModel,
    t: f64,
    frequency: &[u32],
    age: &[f64],
    alive: &[Option<f64>],
) -> Result<Vec<Option<[f64; 3]>>> {
    use rayon::prelude::*;
    use std::collections::HashMap;
    let n = frequency.len();
    if age.len() != n || alive.len() != n {
        return Err(AnalyticsError::InvalidInput("input columns differ in length".into()));
    }
    let mut keys: Vec<(u32, u64)> = (0..n).map(|i| (frequency[i], age[i].to_bits())).collect();
    keys.par_sort_unstable();
    keys.dedup();
    let alive_pmf: Vec<[f64; 2]> = keys
        .par_iter()
        .map(|&(x, a)| {
            let (x, a) = (x as f64, f64::from_bits(a));
            Ok([model.alive_probability_of_purchases(0, t, x, a)?, model.alive_probability_of_purchases(1, t, x, a)?])
        })
        .collect::<Result<_>>()?;
    let lookup: HashMap<(u32, u64), [f64; 2], crate::log::FxBuild> = keys.into_iter().zip(alive_pmf).collect();
    Ok((0..n)
        .into_par_iter()
        .map(|i| {
            let alive = alive[i]?;
            let [none, one] = lookup[&(frequency[i], age[i].to_bits())];
            let none = alive * none + (1.0 - alive);
            let one = alive * one;
            Some([none, one, (1.0 - none - one).max(0.0)])
        })
        .collect())
}

/// Sorted (frequency, age bits) keys cut into runs of one frequency.
fn frequency_groups(keys: &[(u32, u64)]) -> Vec<&[(u32, u64)]> {
    keys.chunk_by(|a, b| a.0 == b.0).collect()
}
