//! Synthetic purchase data with known true parameters, deterministic by seed.
//!
//! Customers follow a BG/NBD, MBG/NBD or Pareto/NBD purchase process and Gamma-Gamma spend. Used by
//! the tests (a fit must recover the truth) and by demo-shop generators: [`generate_customers`] yields
//! each customer's purchase times and amounts over a date range. Every customer draws from its own
//! ChaCha stream (seed, customer index), so the output does not depend on the number of threads and
//! customer `i` is the same whatever the number of customers.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Exp, Gamma};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{AnalyticsError, Result};
use crate::log::{LogOptions, TimeUnit, TransactionLog, TransactionLogBuilder};
use crate::models::{BgNbdParams, GammaGammaParams, ParetoNbdParams};

/// The purchase process and its true parameters (in `SyntheticConfig::time_unit`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseProcess {
    /// BG/NBD: after each repeat purchase the customer drops out with probability p.
    BgNbd(BgNbdParams),
    /// MBG/NBD: as BG/NBD, but the first purchase may also be the last.
    MbgNbd(BgNbdParams),
    /// Pareto/NBD: an exponential lifetime with rate μ ~ Gamma(s, β).
    ParetoNbd(ParetoNbdParams),
}

/// What to generate. Build it with [`SyntheticConfig::new`] and change fields as needed (the struct is
/// `non_exhaustive` so that new options can be added without breaking callers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SyntheticConfig {
    /// Purchase process with its true parameters.
    pub process: PurchaseProcess,
    /// True spend parameters, in major money units (for example dollars).
    pub spend: GammaGammaParams,
    /// Minor units per major unit (100 for cents).
    pub minor_units_per_major: i64,
    /// Time unit of the process parameters.
    pub time_unit: TimeUnit,
    /// Number of customers.
    pub customers: usize,
    /// First day of the range.
    pub start: NaiveDate,
    /// Last day of the range (inclusive); no purchase is generated after it.
    pub end: NaiveDate,
    /// Last day on which a customer can make a first purchase; first purchases are spread uniformly
    /// over `start..=acquisition_end`. [`SyntheticConfig::new`] sets the first quarter of the range.
    pub acquisition_end: NaiveDate,
    /// Opening hours: purchase times fall uniformly between these seconds after midnight.
    pub open_seconds: (u32, u32),
    /// Random seed.
    pub seed: u64,
}

impl SyntheticConfig {
    /// A configuration with first purchases in the first quarter of `start..=end`, time unit week,
    /// cents, and opening hours 08:00 to 20:00.
    pub fn new(
        process: PurchaseProcess,
        spend: GammaGammaParams,
        customers: usize,
        start: NaiveDate,
        end: NaiveDate,
        seed: u64,
    ) -> Self {
        let span = (end - start).num_days().max(0);
        SyntheticConfig {
            process,
            spend,
            minor_units_per_major: 100,
            time_unit: TimeUnit::Week,
            customers,
            start,
            end,
            acquisition_end: start + Duration::days(span / 4),
            open_seconds: (8 * 3600, 20 * 3600),
            seed,
        }
    }

    fn validate(&self) -> Result<()> {
        let positive = |name: &'static str, value: f64| {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                Err(AnalyticsError::InvalidParameter { model: "synthetic", name, value })
            }
        };
        match self.process {
            PurchaseProcess::BgNbd(p) | PurchaseProcess::MbgNbd(p) => {
                positive("r", p.r)?;
                positive("alpha", p.alpha)?;
                positive("a", p.a)?;
                positive("b", p.b)?;
            }
            PurchaseProcess::ParetoNbd(p) => {
                positive("r", p.r)?;
                positive("alpha", p.alpha)?;
                positive("s", p.s)?;
                positive("beta", p.beta)?;
            }
        }
        positive("p", self.spend.p)?;
        positive("q", self.spend.q)?;
        positive("v", self.spend.v)?;
        if self.minor_units_per_major <= 0 {
            return Err(AnalyticsError::InvalidInput("minor_units_per_major must be positive".into()));
        }
        if self.start > self.acquisition_end || self.acquisition_end > self.end {
            return Err(AnalyticsError::DateOrder {
                what: "start <= acquisition_end <= end",
                earlier: self.start.to_string(),
                later: self.end.to_string(),
            });
        }
        if self.open_seconds.0 > self.open_seconds.1 || self.open_seconds.1 > 86_400 {
            return Err(AnalyticsError::InvalidInput("open_seconds must be an interval within one day".into()));
        }
        Ok(())
    }
}

/// One generated purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntheticPurchase {
    /// When it happened.
    pub at: NaiveDateTime,
    /// Its value in minor units (at least 1).
    pub amount_minor: i64,
}

/// The hidden truth of one generated customer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CustomerTruth {
    /// Purchase rate λ per time unit while alive.
    pub purchase_rate: f64,
    /// Dropout probability p (BG/NBD, MBG/NBD) or dropout rate μ per time unit (Pareto/NBD).
    pub dropout: f64,
    /// Whether the customer is still alive at the end of the range.
    pub alive_at_end: bool,
    /// Mean transaction value p / ν in major units.
    pub mean_spend: f64,
}

/// One generated customer: purchases in time order (the first is the acquisition purchase).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyntheticCustomer {
    /// Customer number, 0-based.
    pub index: u64,
    /// Purchases in time order.
    pub purchases: Vec<SyntheticPurchase>,
    /// The hidden truth behind them.
    pub truth: CustomerTruth,
}

/// Generates customer `index` of the configuration (the same customer whatever the total number).
pub fn generate_customer(config: &SyntheticConfig, index: u64) -> Result<SyntheticCustomer> {
    config.validate()?;
    Ok(generate_one(config, index))
}

fn generate_one(config: &SyntheticConfig, index: u64) -> SyntheticCustomer {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    rng.set_stream(index);
    let unit_days = config.time_unit.days();
    let acquisition_days = ((config.acquisition_end - config.start).num_days() + 1) as f64;
    // Horizon in days from `start` (exclusive): the day after `end`.
    let horizon_days = ((config.end - config.start).num_days() + 1) as f64;
    let first_day = rng.gen_range(0.0..acquisition_days).floor();
    let first_fraction: f64 = rng.r#gen();
    let first = first_day + first_fraction;
    let remaining_units = (horizon_days - first_day) / unit_days; // time units available after day start

    let gamma = |shape: f64, rate: f64, rng: &mut ChaCha8Rng| -> f64 {
        Gamma::new(shape, 1.0 / rate).map(|g| g.sample(rng)).unwrap_or(0.0)
    };
    let (lambda, dropout, events, alive_at_end) = match config.process {
        PurchaseProcess::BgNbd(p) | PurchaseProcess::MbgNbd(p) => {
            let lambda = gamma(p.r, p.alpha, &mut rng);
            let drop = Beta::new(p.a, p.b).map(|d| d.sample(&mut rng)).unwrap_or(1.0);
            let modified = matches!(config.process, PurchaseProcess::MbgNbd(_));
            let mut events = Vec::new();
            let mut t = 0.0;
            let mut alive = !(modified && rng.r#gen::<f64>() < drop);
            if lambda > 0.0 {
                let exp = Exp::new(lambda).expect("positive rate");
                while alive {
                    t += exp.sample(&mut rng);
                    if first_fraction / unit_days + t >= remaining_units {
                        break;
                    }
                    events.push(t);
                    alive = rng.r#gen::<f64>() >= drop;
                }
            }
            (lambda, drop, events, alive)
        }
        PurchaseProcess::ParetoNbd(p) => {
            let lambda = gamma(p.r, p.alpha, &mut rng);
            let mu = gamma(p.s, p.beta, &mut rng);
            let lifetime = if mu > 0.0 { Exp::new(mu).expect("positive rate").sample(&mut rng) } else { f64::INFINITY };
            let mut events = Vec::new();
            let mut t = 0.0;
            let available = remaining_units - first_fraction / unit_days;
            if lambda > 0.0 {
                let exp = Exp::new(lambda).expect("positive rate");
                loop {
                    t += exp.sample(&mut rng);
                    if t >= lifetime || t >= available {
                        break;
                    }
                    events.push(t);
                }
            }
            (lambda, mu, events, lifetime >= available)
        }
    };
    let nu = gamma(config.spend.q, config.spend.v, &mut rng);
    let spend = if nu > 0.0 { Gamma::new(config.spend.p, 1.0 / nu).ok() } else { None };
    let amount = |rng: &mut ChaCha8Rng| -> i64 {
        let value = spend.map(|g| g.sample(rng)).unwrap_or(0.0);
        ((value * config.minor_units_per_major as f64).round() as i64).max(1)
    };
    let (open, close) = config.open_seconds;
    let to_time = |day_offset: f64| -> NaiveDateTime {
        let day = day_offset.floor();
        let fraction = day_offset - day;
        let seconds = open + ((close - open) as f64 * fraction) as u32;
        let date = config.start + Duration::days(day as i64);
        date.and_time(NaiveTime::from_num_seconds_from_midnight_opt(seconds.min(86_399), 0).expect("valid time"))
    };
    let mut purchases = Vec::with_capacity(events.len() + 1);
    purchases.push(SyntheticPurchase { at: to_time(first), amount_minor: amount(&mut rng) });
    for t in events {
        purchases.push(SyntheticPurchase { at: to_time(first + t * unit_days), amount_minor: amount(&mut rng) });
    }
    SyntheticCustomer {
        index,
        purchases,
        truth: CustomerTruth {
            purchase_rate: lambda,
            dropout,
            alive_at_end,
            mean_spend: if nu > 0.0 { config.spend.p / nu } else { f64::INFINITY },
        },
    }
}

/// Generates all customers of the configuration, in parallel, deterministically.
pub fn generate_customers(config: &SyntheticConfig) -> Result<Vec<SyntheticCustomer>> {
    config.validate()?;
    Ok((0..config.customers as u64).into_par_iter().map(|i| generate_one(config, i)).collect())
}

/// Generates the customers and loads their purchases into a transaction log (customer keys are the
/// customer numbers).
pub fn generate_log(config: &SyntheticConfig, options: LogOptions) -> Result<TransactionLog> {
    let customers = generate_customers(config)?;
    let records = customers.iter().map(|c| c.purchases.len()).sum();
    let mut builder = TransactionLogBuilder::with_capacity(options, records);
    for customer in &customers {
        for purchase in &customer.purchases {
            builder.push(customer.index, purchase.at, purchase.amount_minor)?;
        }
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64) -> SyntheticConfig {
        SyntheticConfig::new(
            PurchaseProcess::BgNbd(BgNbdParams { r: 0.25, alpha: 4.0, a: 0.8, b: 2.5 }),
            GammaGammaParams { p: 6.0, q: 4.0, v: 15.0 },
            500,
            NaiveDate::from_ymd_opt(2023, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2024, 6, 30).unwrap(),
            seed,
        )
    }

    #[test]
    fn deterministic_by_seed_and_within_range() {
        let a = generate_customers(&config(7)).unwrap();
        let b = generate_customers(&config(7)).unwrap();
        let c = generate_customers(&config(8)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let cfg = config(7);
        for customer in &a {
            assert!(!customer.purchases.is_empty());
            assert!(customer.purchases[0].at.date() <= cfg.acquisition_end);
            assert!(customer.purchases.windows(2).all(|w| w[0].at <= w[1].at));
            for p in &customer.purchases {
                assert!(p.at.date() >= cfg.start && p.at.date() <= cfg.end);
                assert!(p.amount_minor >= 1);
            }
        }
        // Customer 3 is the same whatever the number of customers.
        assert_eq!(generate_customer(&cfg, 3).unwrap(), a[3]);
    }

    #[test]
    fn rejects_bad_parameters() {
        let mut cfg = config(1);
        cfg.spend.q = -1.0;
        assert!(matches!(generate_customers(&cfg), Err(AnalyticsError::InvalidParameter { name: "q", .. })));
    }
}
