//! Tiers: levels a customer reaches by points earned or money spent in a rolling window, with benefits.
//!
//! The rules, as [`evaluate`] applies them:
//! - The **measure** is the customer's points earned, or net spend (orders less refunds), in the last
//!   `window_days` days; the store sums it and passes it in.
//! - **Upgrade** is immediate, straight to the highest level whose threshold the measure reaches.
//! - A level reached by qualifying is kept at least `qualification_days` days (the qualification period),
//!   whatever the measure does meanwhile.
//! - When the measure falls below the current level's threshold, a **grace period** of `grace_days` starts;
//!   if the measure is still below at its end (and the qualification period is over), the customer goes
//!   **down one level**, never more at once. Each further step down needs its own grace period.
//! - Reaching the threshold again during grace ends the grace period.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use crate::money::Currency;
use crate::text::{FieldError, bounded_text};

use super::points::Multiplier;

/// What a tier's threshold counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    PointsEarned,
    /// Net spend in minor units of the program's currency.
    Spend,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TiersFile {
    pub measure: Measure,
    pub window_days: u32,
    #[serde(default)]
    pub qualification_days: u32,
    #[serde(default)]
    pub grace_days: u32,
    pub levels: Vec<TierFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierFile {
    pub name: String,
    /// Points (a whole number), or spend in major units (`"500.00"` or `500`).
    pub threshold: Threshold,
    #[serde(default)]
    pub multiplier: Option<Multiplier>,
    #[serde(default)]
    pub perks: Vec<String>,
    #[serde(default)]
    pub early_access: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Threshold {
    Whole(i64),
    Text(String),
}

/// What a tier gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Benefits {
    /// Multiplies purchase points (not fixed bonuses).
    pub multiplier: Multiplier,
    pub perks: Vec<String>,
    /// Access to sale windows opened early for this tier.
    pub early_access: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub name: String,
    /// Points, or minor units of spend.
    pub threshold: i64,
    pub benefits: Benefits,
}

/// The tier ladder, lowest level first; thresholds strictly ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiers {
    pub measure: Measure,
    pub window_days: u32,
    pub qualification_days: u32,
    pub grace_days: u32,
    pub levels: Vec<Tier>,
}

impl Tiers {
    pub fn parse(file: &TiersFile, currency: Currency) -> Result<Tiers, FieldError> {
        if !(1..=3660).contains(&file.window_days) {
            return Err(FieldError::new("window_days", "between 1 and 3660 days"));
        }
        if file.levels.is_empty() {
            return Err(FieldError::new("levels", "at least one level"));
        }
        let mut levels: Vec<Tier> = Vec::with_capacity(file.levels.len());
        for (i, level) in file.levels.iter().enumerate() {
            let field = |f: &str| format!("levels[{i}].{f}");
            let name = bounded_text(&field("name"), &level.name, 64)?;
            if levels.iter().any(|t| t.name == name) {
                return Err(FieldError::new(field("name"), format!("{name:?} is defined twice")));
            }
            let threshold = match (&level.threshold, file.measure) {
                (Threshold::Whole(n), Measure::PointsEarned) => Some(*n),
                (Threshold::Text(s), Measure::PointsEarned) => s.trim().parse().ok(),
                (Threshold::Whole(n), Measure::Spend) => n.checked_mul(10i64.pow(u32::from(currency.minor_digits()))),
                (Threshold::Text(s), Measure::Spend) => currency.parse_major(&field("threshold"), s).ok(),
            }
            .filter(|&t| t > 0)
            .ok_or_else(|| FieldError::new(field("threshold"), "a positive number of points, or an amount"))?;
            if levels.last().is_some_and(|prev| prev.threshold >= threshold) {
                return Err(FieldError::new(field("threshold"), "thresholds must rise from level to level"));
            }
            let perks =
                level.perks.iter().map(|p| bounded_text(&field("perks"), p, 200)).collect::<Result<Vec<_>, _>>()?;
            let benefits = Benefits {
                multiplier: level.multiplier.unwrap_or(Multiplier::ONE),
                perks,
                early_access: level.early_access,
            };
            levels.push(Tier { name, threshold, benefits });
        }
        Ok(Tiers {
            measure: file.measure,
            window_days: file.window_days,
            qualification_days: file.qualification_days,
            grace_days: file.grace_days,
            levels,
        })
    }

    pub fn get(&self, name: &str) -> Option<&Tier> {
        self.levels.iter().find(|t| t.name == name)
    }

    fn index(&self, name: Option<&str>) -> Option<usize> {
        name.and_then(|n| self.levels.iter().position(|t| t.name == n))
    }

    /// The start of the rolling window the measure is summed over.
    pub fn window_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - Duration::days(i64::from(self.window_days))
    }
}

/// Where a customer stands: their tier (none below the first level) and the clocks running on it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TierStatus {
    pub tier: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// End of the qualification period of a level reached by qualifying.
    pub kept_until: Option<DateTime<Utc>>,
    /// When the measure was first seen below the current level's threshold, if it still is.
    pub below_since: Option<DateTime<Utc>>,
}

/// Why a tier changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TierReason {
    /// The measure reached the new level's threshold.
    Qualified { measure: i64, threshold: i64 },
    /// The measure stayed below the old level's threshold through the grace period.
    Downgraded { measure: i64, threshold: i64, below_since: DateTime<Utc> },
}

/// A change of tier, for the store to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierChange {
    pub from: Option<String>,
    pub to: Option<String>,
    pub reason: TierReason,
    pub at: DateTime<Utc>,
}

/// The result of an evaluation: the new status, the change if there was one, and when a running grace
/// period ends (for the customer's view).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierEvaluation {
    pub status: TierStatus,
    pub change: Option<TierChange>,
    pub grace_ends_at: Option<DateTime<Utc>>,
}

/// Evaluates a customer's tier at `now` given their `measure` over the window.
pub fn evaluate(tiers: &Tiers, status: &TierStatus, measure: i64, now: DateTime<Utc>) -> TierEvaluation {
    let current = tiers.index(status.tier.as_deref());
    let reached = tiers.levels.iter().rposition(|t| measure >= t.threshold);
    let unchanged = |status: TierStatus, grace_ends_at| TierEvaluation { status, change: None, grace_ends_at };
    if reached > current || (current.is_none() && status.tier.is_some()) {
        // Up (or a tier no longer in the program, replaced by what the measure says).
        let to = reached.map(|i| &tiers.levels[i]);
        let next = TierStatus {
            tier: to.map(|t| t.name.clone()),
            since: Some(now),
            kept_until: to.map(|_| now + Duration::days(i64::from(tiers.qualification_days))),
            below_since: None,
        };
        let change = TierChange {
            from: status.tier.clone(),
            to: next.tier.clone(),
            reason: TierReason::Qualified { measure, threshold: to.map_or(0, |t| t.threshold) },
            at: now,
        };
        return TierEvaluation { status: next, change: Some(change), grace_ends_at: None };
    }
    let Some(current) = current else {
        return unchanged(status.clone(), None);
    };
    if reached == Some(current) {
        return unchanged(TierStatus { below_since: None, ..status.clone() }, None);
    }
    let below_since = status.below_since.unwrap_or(now);
    let grace_end = below_since + Duration::days(i64::from(tiers.grace_days));
    let grace_end = status.kept_until.map_or(grace_end, |k| k.max(grace_end));
    if now < grace_end {
        return unchanged(TierStatus { below_since: Some(below_since), ..status.clone() }, Some(grace_end));
    }
    let to = current.checked_sub(1).map(|i| &tiers.levels[i]);
    let still_below = to.is_some_and(|t| measure < t.threshold);
    let next = TierStatus {
        tier: to.map(|t| t.name.clone()),
        since: Some(now),
        kept_until: None,
        below_since: still_below.then_some(now),
    };
    let change = TierChange {
        from: status.tier.clone(),
        to: next.tier.clone(),
        reason: TierReason::Downgraded { measure, threshold: tiers.levels[current].threshold, below_since },
        at: now,
    };
    let grace_ends_at = still_below.then(|| now + Duration::days(i64::from(tiers.grace_days)));
    TierEvaluation { status: next, change: Some(change), grace_ends_at }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn tiers() -> Tiers {
        crate::loyalty::program::tests::example().tiers.unwrap()
    }

    fn day(d: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(d)
    }

    fn name(e: &TierEvaluation) -> Option<&str> {
        e.status.tier.as_deref()
    }

    #[test]
    fn upgrades_are_immediate_and_may_skip_levels() {
        let t = tiers();
        let none = TierStatus::default();
        assert_eq!(evaluate(&t, &none, 499, day(0)).change, None);
        let gold = evaluate(&t, &none, 2500, day(0));
        assert_eq!(name(&gold), Some("Gold"));
        let change = gold.change.unwrap();
        assert_eq!((change.from, change.to.as_deref()), (None, Some("Gold")));
        assert_eq!(change.reason, TierReason::Qualified { measure: 2500, threshold: 2000 });
        assert_eq!(gold.status.kept_until, Some(day(365)));
    }

    #[test]
    fn downgrades_wait_for_qualification_and_grace_and_go_one_step() {
        let t = tiers();
        let gold = evaluate(&t, &TierStatus::default(), 2500, day(0)).status;
        // Below every threshold from day 100: kept through the qualification period (day 365).
        let e = evaluate(&t, &gold, 0, day(100));
        assert_eq!((name(&e), e.grace_ends_at), (Some("Gold"), Some(day(365))));
        let e = evaluate(&t, &e.status, 0, day(364));
        assert_eq!(name(&e), Some("Gold"));
        let e = evaluate(&t, &e.status, 0, day(365));
        assert_eq!(name(&e), Some("Silver"), "one step, not straight to no tier");
        assert!(matches!(e.change.as_ref().unwrap().reason, TierReason::Downgraded { threshold: 2000, .. }));
        assert_eq!(e.grace_ends_at, Some(day(395)));
        let e = evaluate(&t, &e.status, 0, day(380));
        assert_eq!(name(&e), Some("Silver"));
        let e = evaluate(&t, &e.status, 0, day(395));
        assert_eq!(name(&e), None);
    }

    #[test]
    fn reaching_the_threshold_again_ends_the_grace_period() {
        let t = tiers();
        let silver = TierStatus { tier: Some("Silver".into()), since: Some(day(0)), ..TierStatus::default() };
        let e = evaluate(&t, &silver, 100, day(10));
        assert_eq!(e.status.below_since, Some(day(10)));
        let e = evaluate(&t, &e.status, 600, day(20));
        assert_eq!(e.status.below_since, None);
        let e = evaluate(&t, &e.status, 100, day(45));
        assert_eq!((name(&e), e.grace_ends_at), (Some("Silver"), Some(day(75))), "a fresh grace period");
    }

    #[test]
    fn spend_thresholds_are_money() {
        let file: TiersFile = toml::from_str(
            "measure = \"spend\"\nwindow_days = 365\nlevels = [{ name = \"VIP\", threshold = \"250.50\" }, { name = \"VVIP\", threshold = 1000 }]",
        )
        .unwrap();
        let t = Tiers::parse(&file, Currency::parse("c", "EUR").unwrap()).unwrap();
        assert_eq!((t.levels[0].threshold, t.levels[1].threshold), (25050, 100_000));
        assert_eq!(t.window_start(day(365)), day(0));
    }
}
