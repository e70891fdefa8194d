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
