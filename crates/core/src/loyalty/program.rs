//! A loyalty program's definition: the TOML file (or the same document as JSON over the API) and the
//! validated [`Program`] it becomes.
//!
//! ```toml
//! name = "Coffee club"
//! currency = "EUR"
//! time_zone = "Europe/Berlin"
//! lock_days = 14                 # points from orders stay pending through the return window
//! expiry = { after_days = 365 }
//! expiry_reminder_days = [30, 7]  # "points expiring" events this many days before a lot expires
//! shortfall = "debt"             # or "write_off": refunded points the customer already spent
//!
//! [earning]
//! points_per_unit = 1            # per EUR of the order's net amount
//! welcome_bonus = 100
//! sign_up = 50
//! birthday = 100
//! skus = [{ sku = "BEANS-1KG", multiplier = "3" }]
//! categories = [{ category = "pastry", multiplier = "0.5" }]
//! nth_purchase = [{ n = 10, points = 200, repeat = true }]
//! big_spender = [{ above = "100.00", points = 150 }]
//! referral = { referrer = 200, friend = 100 }
//! events = [{ name = "review", points = 20, limit_per_customer = 5 }]
//!
//! [tiers]                        # see tiers.rs
//! ```
//!
//! Floats are refused everywhere: multipliers are strings or whole numbers, amounts are strings in major
//! units of the program's currency.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::money::Currency;
use crate::order::Sku;
use crate::text::{FieldError, bounded_text};

use super::expiry::ExpiryPolicy;
use super::ledger::Shortfall;
use super::points::{Multiplier, Points};
use super::punch::{PunchCard, PunchCardFile};
use super::rewards::{Reward, RewardFile};
use super::tiers::{Tiers, TiersFile};

/// The program file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramFile {
    pub name: String,
    pub currency: String,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub lock_days: u32,
    #[serde(default)]
    pub expiry: ExpiryPolicy,
    /// Days before a lot expires when a "points expiring" event is recorded, e.g. `[30, 7]`.
    #[serde(default)]
    pub expiry_reminder_days: Vec<u32>,
    #[serde(default)]
    pub shortfall: Shortfall,
    #[serde(default)]
    pub earning: EarningFile,
    #[serde(default)]
    pub tiers: Option<TiersFile>,
    #[serde(default)]
    pub punch_cards: Vec<PunchCardFile>,
    #[serde(default)]
    pub rewards: Vec<RewardFile>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarningFile {
    #[serde(default)]
    pub points_per_unit: u32,
    #[serde(default)]
    pub skus: Vec<SkuMultiplierFile>,
    #[serde(default)]
    pub categories: Vec<CategoryMultiplierFile>,
    #[serde(default)]
    pub welcome_bonus: i64,
    #[serde(default)]
    pub nth_purchase: Vec<NthPurchase>,
    #[serde(default)]
    pub big_spender: Vec<BigSpenderFile>,
    #[serde(default)]
    pub sign_up: i64,
    #[serde(default)]
    pub birthday: i64,
    #[serde(default)]
    pub referral: Option<ReferralFile>,
    #[serde(default)]
    pub events: Vec<EventFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkuMultiplierFile {
    pub sku: String,
    pub multiplier: Multiplier,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryMultiplierFile {
    pub category: String,
    pub multiplier: Multiplier,
}

/// A bonus on the customer's `n`th purchase (and every `n`th with `repeat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NthPurchase {
    pub n: u32,
    pub points: i64,
    #[serde(default)]
    pub repeat: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BigSpenderFile {
    pub above: String,
    pub points: i64,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferralFile {
    pub referrer: i64,
    pub friend: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFile {
    pub name: String,
    pub points: i64,
    #[serde(default)]
    pub limit_per_customer: Option<u32>,
}

/// A validated program.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub name: String,
    pub currency: Currency,
    pub time_zone: Tz,
    /// Days points from orders stay pending.
    pub lock_days: u32,
    pub expiry: ExpiryPolicy,
    /// Reminder windows in days before expiry, ascending (see `expiry::reminder_windows`).
    pub expiry_reminder_days: Vec<u32>,
    pub shortfall: Shortfall,
    pub earning: EarningRules,
    pub tiers: Option<Tiers>,
    pub punch_cards: Vec<PunchCard>,
    pub rewards: Vec<Reward>,
}

/// The earning rules; see [`super::earning`] for the order in which they apply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EarningRules {
    pub points_per_unit: u32,
    pub skus: BTreeMap<Sku, Multiplier>,
    pub categories: BTreeMap<String, Multiplier>,
    pub welcome_bonus: Points,
    /// Sorted by `n`.
    pub nth_purchase: Vec<NthPurchase>,
    /// Thresholds in minor units, ascending: only the highest reached applies.
    pub big_spender: Vec<(i64, Points)>,
    pub sign_up: Points,
    pub birthday: Points,
    /// (referrer's points, friend's points)
    pub referral: Option<(Points, Points)>,
    pub events: BTreeMap<String, EventRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRule {
    pub points: Points,
    pub limit_per_customer: Option<u32>,
}

impl Program {
    /// Reads and validates a program file; an error names the field at fault.
    pub fn from_toml(text: &str) -> Result<Program, FieldError> {
        let file: ProgramFile = toml::from_str(text).map_err(|e| FieldError::new("program", e.to_string()))?;
        Program::from_file(file)
    }

    pub fn from_file(file: ProgramFile) -> Result<Program, FieldError> {
        let currency = Currency::parse("currency", &file.currency)?;
        let time_zone: Tz = match &file.time_zone {
            None => Tz::UTC,
            Some(raw) => raw.trim().parse().map_err(|_| {
                FieldError::new("time_zone", format!("{raw:?} is not an IANA time zone such as Europe/Berlin"))
            })?,
        };
        if file.lock_days > 3650 {
            return Err(FieldError::new("lock_days", "at most 3650 days"));
        }
        let earning = parse_earning(&file.earning, currency).map_err(|e| e.within("earning."))?;
        let mut expiry_reminder_days = file.expiry_reminder_days.clone();
        expiry_reminder_days.sort_unstable();
        if expiry_reminder_days.iter().any(|d| !(1..=3650).contains(d)) {
            return Err(FieldError::new("expiry_reminder_days", "each between 1 and 3650 days"));
        }
        if expiry_reminder_days.windows(2).any(|w| w[0] == w[1]) {
            return Err(FieldError::new("expiry_reminder_days", "a reminder window is given twice"));
        }
        let tiers =
            file.tiers.as_ref().map(|t| Tiers::parse(t, currency)).transpose().map_err(|e| e.within("tiers."))?;
        if let Some(tiers) = &tiers {
            for tier in &tiers.levels {
                if tier.benefits.multiplier.hundredths() == 0 {
                    return Err(FieldError::new(format!("tiers.levels.{}", tier.name), "a multiplier of 0"));
                }
            }
        }
        let punch_cards = file
            .punch_cards
            .iter()
            .enumerate()
            .map(|(i, c)| PunchCard::parse(c).map_err(|e| e.within(&format!("punch_cards[{i}]."))))
            .collect::<Result<Vec<_>, _>>()?;
        let rewards = file
            .rewards
            .iter()
            .enumerate()
            .map(|(i, r)| Reward::parse(r, currency).map_err(|e| e.within(&format!("rewards[{i}]."))))
            .collect::<Result<Vec<_>, _>>()?;
        let mut keys = std::collections::BTreeSet::new();
        if let Some(r) = rewards.iter().find(|r| !keys.insert(r.key.as_str())) {
            return Err(FieldError::new("rewards", format!("the reward {:?} is defined twice", r.key)));
        }
        Ok(Program {
            name: bounded_text("name", &file.name, 200)?,
            currency,
            time_zone,
            lock_days: file.lock_days,
            expiry: file.expiry,
            expiry_reminder_days,
            shortfall: file.shortfall,
            earning,
            tiers,
            punch_cards,
            rewards,
        })
    }

    /// When points earned at `now` become available (after the lock period when `pending`) and expire.
    pub fn lot_times(&self, now: DateTime<Utc>, pending: bool) -> (DateTime<Utc>, Option<DateTime<Utc>>) {
        let available_from = if pending { now + Duration::days(i64::from(self.lock_days)) } else { now };
        (available_from, self.expiry.expires_at(now, self.time_zone))
    }
}

fn points(field: &str, n: i64) -> Result<Points, FieldError> {
    Points::parse_non_negative(field, n)
}

fn parse_earning(file: &EarningFile, currency: Currency) -> Result<EarningRules, FieldError> {
    if file.points_per_unit > 1_000_000 {
        return Err(FieldError::new("points_per_unit", "at most 1,000,000 points per unit"));
    }
    let mut skus = BTreeMap::new();
    for (i, rule) in file.skus.iter().enumerate() {
        let sku = Sku::parse(&format!("skus[{i}].sku"), &rule.sku)?;
        if skus.insert(sku, rule.multiplier).is_some() {
            return Err(FieldError::new(format!("skus[{i}].sku"), format!("{:?} has two multipliers", rule.sku)));
        }
    }
    let mut categories = BTreeMap::new();
    for (i, rule) in file.categories.iter().enumerate() {
        let category = bounded_text(&format!("categories[{i}].category"), &rule.category, 200)?;
        if categories.insert(category, rule.multiplier).is_some() {
            return Err(FieldError::new(format!("categories[{i}].category"), "this category has two multipliers"));
        }
    }
    let mut nth_purchase = file.nth_purchase.clone();
    for (i, rule) in nth_purchase.iter().enumerate() {
        if rule.n < 1 {
            return Err(FieldError::new(format!("nth_purchase[{i}].n"), "must be at least 1"));
        }
        points(&format!("nth_purchase[{i}].points"), rule.points)?;
    }
    nth_purchase.sort_by_key(|r| (r.n, r.repeat));
    let mut big_spender = Vec::new();
    for (i, rule) in file.big_spender.iter().enumerate() {
        let above = currency.parse_major(&format!("big_spender[{i}].above"), &rule.above)?;
        if above <= 0 {
            return Err(FieldError::new(format!("big_spender[{i}].above"), "must be more than 0"));
        }
        big_spender.push((above, points(&format!("big_spender[{i}].points"), rule.points)?));
    }
    big_spender.sort();
    if big_spender.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(FieldError::new("big_spender", "two bonuses for the same order value"));
    }
    let mut events = BTreeMap::new();
    for (i, e) in file.events.iter().enumerate() {
        let name = bounded_text(&format!("events[{i}].name"), &e.name, 64)?;
        let rule = EventRule {
            points: points(&format!("events[{i}].points"), e.points)?,
            limit_per_customer: e.limit_per_customer,
        };
        if events.insert(name, rule).is_some() {
            return Err(FieldError::new(format!("events[{i}].name"), "this event is defined twice"));
        }
    }
    Ok(EarningRules {
        points_per_unit: file.points_per_unit,
        skus,
        categories,
        welcome_bonus: points("welcome_bonus", file.welcome_bonus)?,
        nth_purchase,
        big_spender,
        sign_up: points("sign_up", file.sign_up)?,
        birthday: points("birthday", file.birthday)?,
        referral: file
            .referral
            .map(|r| {
                Ok::<_, FieldError>((points("referral.referrer", r.referrer)?, points("referral.friend", r.friend)?))
            })
            .transpose()?,
        events,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const EXAMPLE: &str = r#"
name = "Coffee club"
currency = "EUR"
time_zone = "Europe/Berlin"
lock_days = 14
expiry = { after_days = 365 }
expiry_reminder_days = [7, 30]
shortfall = "write_off"

[earning]
points_per_unit = 1
welcome_bonus = 100
sign_up = 50
birthday = 100
skus = [{ sku = "BEANS-1KG", multiplier = "3" }]
categories = [{ category = "pastry", multiplier = "0.5" }, { category = "beans", multiplier = 2 }]
nth_purchase = [{ n = 10, points = 200, repeat = true }, { n = 3, points = 30 }]
big_spender = [{ above = "100.00", points = 150 }, { above = "50", points = 50 }]
referral = { referrer = 200, friend = 100 }
events = [{ name = "review", points = 20, limit_per_customer = 5 }]

[tiers]
measure = "points_earned"
window_days = 365
qualification_days = 365
grace_days = 30
levels = [
  { name = "Silver", threshold = 500, multiplier = "1.5", perks = ["free refill"] },
  { name = "Gold", threshold = 2000, multiplier = "2", perks = ["free refill", "birthday cake"], early_access = true },
]

[[punch_cards]]
name = "Espresso card"
stamps = 10
sku = "ESP"
reward = "a free espresso"

[[rewards]]
key = "free-croissant"
name = "Free croissant"
free_item = "CROISSANT"
cost = 150
stock = 100
per_customer_limit = 2
valid_until = "2026-12-31T23:00:00Z"
"#;

    pub(crate) fn example() -> Program {
        Program::from_toml(EXAMPLE).unwrap()
    }

    #[test]
    fn the_example_program_reads() {
        let p = example();
        assert_eq!((p.currency.code(), p.time_zone.name(), p.lock_days), ("EUR", "Europe/Berlin", 14));
        assert_eq!(p.shortfall, Shortfall::WriteOff);
        assert_eq!(p.expiry_reminder_days, vec![7, 30]);
        assert_eq!(p.earning.categories["pastry"].hundredths(), 50);
        assert_eq!(p.earning.big_spender, vec![(5000, Points::new(50)), (10000, Points::new(150))]);
        assert_eq!(p.earning.nth_purchase[0].n, 3, "sorted by n");
        assert_eq!(p.tiers.as_ref().unwrap().levels[1].name, "Gold");
        assert_eq!(p.punch_cards[0].stamps, 10);
        assert_eq!(p.rewards[0].cost, Points::new(150));
    }

    #[test]
    fn mistakes_name_their_field() {
        let with = |from: &str, to: &str| Program::from_toml(&EXAMPLE.replace(from, to)).unwrap_err();
        assert_eq!(with("\"EUR\"", "\"EUX\"").field, "currency");
        assert_eq!(with("Europe/Berlin", "Mars/Olympus").field, "time_zone");
        assert_eq!(with("multiplier = \"0.5\"", "multiplier = 0.5").field, "program", "no floats");
        assert!(with("multiplier = \"0.5\"", "multiplier = 0.5").message.contains("multiplier"));
        assert_eq!(with("\"100.00\"", "\"100.001\"").field, "earning.big_spender[0].above");
        assert_eq!(with("welcome_bonus = 100", "welcome_bonus = -1").field, "earning.welcome_bonus");
        assert_eq!(with("lock_days = 14", "lock_days = 14\nlock_dayz = 1").field, "program");
        assert_eq!(with("threshold = 2000", "threshold = 400").field, "tiers.levels[1].threshold");
        assert_eq!(with("stamps = 10", "stamps = 0").field, "punch_cards[0].stamps");
        assert_eq!(with("[7, 30]", "[7, 7]").field, "expiry_reminder_days");
        assert_eq!(with("[7, 30]", "[0]").field, "expiry_reminder_days");
    }

    #[test]
    fn lots_are_pending_through_the_lock_and_expire_by_policy() {
        let p = example();
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 5, 1, 10, 0, 0).unwrap();
        let (from, until) = p.lot_times(now, true);
        assert_eq!(from, now + Duration::days(14));
        assert_eq!(until, Some(now + Duration::days(365)));
        assert_eq!(p.lot_times(now, false).0, now);
    }
}
