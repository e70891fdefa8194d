//! When points expire: policies that compute a lot's expiry from when it was earned, and the selection of
//! points expiring soon for reminders.
//!
//! "End of month" and "end of year" are the first instant of the next month or year in the program's time
//! zone: points earned on 14 March in Berlin with `end_of_month = 0` expire at 1 April 00:00 Berlin time.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::points::Points;
use super::wallet::{LotId, WalletState};

/// How long points last. In a program file: `expiry = "never"`, `expiry = { after_days = 365 }`,
/// `expiry = { end_of_month = 12 }` (the end of the 12th month after the month earned; 0 is the month
/// earned), `expiry = { end_of_year = 1 }` (the end of the year after the year earned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryPolicy {
    #[default]
    Never,
    AfterDays(u32),
    EndOfMonth(u32),
    EndOfYear(u32),
}

impl ExpiryPolicy {
    /// When points earned at `earned_at` expire; `None` for never.
    pub fn expires_at(self, earned_at: DateTime<Utc>, time_zone: Tz) -> Option<DateTime<Utc>> {
        let local = earned_at.with_timezone(&time_zone).date_naive();
        let start_of = |date: NaiveDate| local_midnight(date, time_zone);
        match self {
            ExpiryPolicy::Never => None,
            ExpiryPolicy::AfterDays(days) => Some(earned_at + Duration::days(i64::from(days))),
            ExpiryPolicy::EndOfMonth(months) => {
                let index = i64::from(local.year()) * 12 + i64::from(local.month0()) + i64::from(months) + 1;
                let (year, month0) = (index.div_euclid(12) as i32, index.rem_euclid(12) as u32);
                NaiveDate::from_ymd_opt(year, month0 + 1, 1).map(start_of)
            }
            ExpiryPolicy::EndOfYear(years) => {
                let year = i64::from(local.year()) + i64::from(years) + 1;
                i32::try_from(year).ok().and_then(|y| NaiveDate::from_ymd_opt(y, 1, 1)).map(start_of)
            }
        }
    }
}

/// The first instant of `date` in `time_zone` (an hour later where midnight does not exist that day).
fn local_midnight(date: NaiveDate, time_zone: Tz) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    time_zone
        .from_local_datetime(&midnight)
        .earliest()
        .or_else(|| time_zone.from_local_datetime(&(midnight + Duration::hours(1))).earliest())
        .map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&Utc))
}

/// Points of one lot that expire soon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiringLot {
    pub lot: LotId,
    pub points: Points,
    pub expires_at: DateTime<Utc>,
}

/// Lots with points left that expire after `now` and at most `days` days from it, soonest first. A store
/// records one "points expiring" event per (lot, expiry) so a reminder is sent once.
pub fn expiring_within(state: &WalletState, now: DateTime<Utc>, days: u32) -> Vec<ExpiringLot> {
    let until = now + Duration::days(i64::from(days));
    let mut lots: Vec<ExpiringLot> = state
        .lots
        .values()
        .filter(|l| l.remaining.is_positive())
        .filter_map(|l| {
            let expires_at = l.lot.expires_at.filter(|&e| e > now && e <= until)?;
            Some(ExpiringLot { lot: l.lot.id, points: l.remaining, expires_at })
        })
        .collect();
    lots.sort_by_key(|l| (l.expires_at, l.lot));
    lots
}

/// The reminder windows of a program's `expiry_reminder_days` (ascending): `(after, until, days)`. A lot
/// expiring at `e` is reminded in window `days` when `now + after < e <= now + until`, so a lot first seen
/// 5 days before expiry gets the 7-day reminder only, not the 30-day one as well; a store records one event
/// per (lot, window), so each reminder is recorded once.
pub fn reminder_windows(days: &[u32]) -> Vec<(Duration, Duration, u32)> {
    let mut previous = 0;
    days.iter()
        .map(|&d| {
            let window = (Duration::days(i64::from(previous)), Duration::days(i64::from(d)), d);
            previous = d;
            window
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reminder_windows_do_not_overlap() {
        let w = super::reminder_windows(&[7, 30]);
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].0.num_days(), w[0].1.num_days(), w[0].2), (0, 7, 7));
        assert_eq!((w[1].0.num_days(), w[1].1.num_days(), w[1].2), (7, 30, 30));
    }

    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    #[test]
    fn policies_compute_expiry_in_the_program_time_zone() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let earned = utc(2026, 3, 14, 12);
        assert_eq!(ExpiryPolicy::Never.expires_at(earned, berlin), None);
        assert_eq!(ExpiryPolicy::AfterDays(30).expires_at(earned, berlin), Some(utc(2026, 4, 13, 12)));
        // 1 April 00:00 in Berlin (summer time) is 31 March 22:00 UTC.
        assert_eq!(ExpiryPolicy::EndOfMonth(0).expires_at(earned, berlin), Some(utc(2026, 3, 31, 22)));
        assert_eq!(ExpiryPolicy::EndOfMonth(10).expires_at(earned, berlin), Some(utc(2027, 1, 31, 23)));
        assert_eq!(ExpiryPolicy::EndOfYear(0).expires_at(earned, berlin), Some(utc(2026, 12, 31, 23)));
        assert_eq!(ExpiryPolicy::EndOfYear(1).expires_at(earned, berlin), Some(utc(2027, 12, 31, 23)));
        // 31 December 23:30 UTC is already 1 January in Berlin: the next year's end.
        let new_year = Utc.with_ymd_and_hms(2026, 12, 31, 23, 30, 0).unwrap();
        assert_eq!(ExpiryPolicy::EndOfYear(0).expires_at(new_year, berlin), Some(utc(2027, 12, 31, 23)));
    }

    #[test]
    fn expiring_within_selects_lots_with_points_left_soonest_first() {
        use crate::loyalty::ledger::{Command, Request, execute};
        use crate::loyalty::wallet::RequestId;
        let now = utc(2026, 5, 1, 0);
        let mut state = WalletState::default();
        for (i, days) in [40, 10, 5, 20].into_iter().enumerate() {
            let command = Command::Adjust {
                points: Points::new(10 * (i as i64 + 1)),
                note: "test".into(),
                expires_at: Some(now + Duration::days(days)),
            };
            let id = RequestId::parse("id", &format!("a{i}")).unwrap();
            state.apply(&execute(&state, &Request { id, command }, now).unwrap());
        }
        let id = RequestId::parse("id", "spend").unwrap();
        let spend = Command::Redeem { points: Points::new(30), note: None };
        state.apply(&execute(&state, &Request { id, command: spend }, now).unwrap());
        // Lots 1..4 hold 10, 20, 30, 40 expiring in 40, 10, 5, 20 days; the 5-day lot was spent.
        let soon: Vec<(u32, i64)> =
            expiring_within(&state, now, 20).iter().map(|e| (e.lot.0, e.points.get())).collect();
        assert_eq!(soon, vec![(2, 20), (4, 40)]);
        assert!(expiring_within(&state, now + Duration::days(41), 30).is_empty());
    }

    #[test]
    fn policies_read_from_toml() {
        #[derive(Deserialize)]
        struct F {
            expiry: ExpiryPolicy,
        }
        let read = |s: &str| toml::from_str::<F>(s).map(|f| f.expiry);
        assert_eq!(read("expiry = \"never\"").unwrap(), ExpiryPolicy::Never);
        assert_eq!(read("expiry = { after_days = 365 }").unwrap(), ExpiryPolicy::AfterDays(365));
        assert_eq!(read("expiry = { end_of_month = 12 }").unwrap(), ExpiryPolicy::EndOfMonth(12));
        assert!(read("expiry = { after_weeks = 3 }").is_err());
    }
}
