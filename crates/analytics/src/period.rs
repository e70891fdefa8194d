//! Calendar periods (week, month, quarter, year) over day numbers, with labels.

use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::log::{date_of_day_number, day_number};

/// A calendar period length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// ISO weeks starting on Monday.
    Week,
    /// Calendar months.
    #[default]
    Month,
    /// Calendar quarters.
    Quarter,
    /// Calendar years.
    Year,
}

/// The year and month (0 to 11) of a day number (days since 1970-01-01), by the proleptic Gregorian
/// calendar as chrono counts it, in a few integer operations (Howard Hinnant's `civil_from_days`):
/// analyses put every purchase in its month.
fn year_and_month0(day: i32) -> (i32, i32) {
    let z = i64::from(day) + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // day of the 400-year era, 0..=146_096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of the era, 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the year from 1 March, 0..=365
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let month0 = if mp < 10 { mp + 2 } else { mp - 10 };
    let year = yoe + era * 400 + i64::from(month0 < 2);
    (year as i32, month0 as i32)
}

impl Period {
    /// Index of the period holding `day` (days since 1970-01-01); consecutive periods have
    /// consecutive indices.
    pub fn index(self, day: i32) -> i32 {
        match self {
            // 1970-01-05 was a Monday.
            Period::Week => (day - 4).div_euclid(7),
            _ => {
                let (year, month0) = year_and_month0(day);
                let months = year * 12 + month0;
                match self {
                    Period::Month => months,
                    Period::Quarter => months.div_euclid(3),
                    _ => year,
                }
            }
        }
    }

    /// First day of period `index`.
    pub fn start(self, index: i32) -> NaiveDate {
        match self {
            Period::Week => date_of_day_number(index * 7 + 4),
            Period::Month => first_of_month(index),
            Period::Quarter => first_of_month(index * 3),
            Period::Year => NaiveDate::from_ymd_opt(index, 1, 1).unwrap_or(NaiveDate::MIN),
        }
    }

    /// Last day of period `index`.
    pub fn end(self, index: i32) -> NaiveDate {
        self.start(index + 1) - Duration::days(1)
    }

    /// A label: `2024-W05` (ISO week), `2024-03`, `2024-Q1`, `2024`.
    pub fn label(self, index: i32) -> String {
        let start = self.start(index);
        match self {
            Period::Week => {
                let iso = start.iso_week();
                format!("{}-W{:02}", iso.year(), iso.week())
            }
            Period::Month => format!("{}-{:02}", start.year(), start.month()),
            Period::Quarter => format!("{}-Q{}", start.year(), start.month0() / 3 + 1),
            Period::Year => format!("{}", start.year()),
        }
    }

    /// Length of the period in years (approximately, for rates).
    pub fn years(self) -> f64 {
        match self {
            Period::Week => 7.0 / 365.2425,
            Period::Month => 1.0 / 12.0,
            Period::Quarter => 0.25,
            Period::Year => 1.0,
        }
    }
}

fn first_of_month(months: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(months.div_euclid(12), months.rem_euclid(12) as u32 + 1, 1).unwrap_or(NaiveDate::MIN)
}

/// Day number of a date (re-exported for convenience).
pub fn day(date: NaiveDate) -> i32 {
    day_number(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn year_and_month_agree_with_chrono_from_year_minus_400_to_2800() {
        let first = day_number(NaiveDate::from_ymd_opt(-400, 1, 1).unwrap());
        let last = day_number(NaiveDate::from_ymd_opt(2800, 12, 31).unwrap());
        for day in first..=last {
            let date = date_of_day_number(day);
            assert_eq!(year_and_month0(day), (date.year(), date.month0() as i32), "{date}");
        }
    }

    #[test]
    fn periods_round_trip() {
        let d = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
        for p in [Period::Week, Period::Month, Period::Quarter, Period::Year] {
            let i = p.index(day(d));
            assert!(p.start(i) <= d && d <= p.end(i), "{p:?}");
            assert_eq!(p.index(day(p.start(i + 1))), i + 1);
        }
        assert_eq!(Period::Month.label(Period::Month.index(day(d))), "2024-02");
        assert_eq!(Period::Quarter.label(Period::Quarter.index(day(d))), "2024-Q1");
        assert_eq!(Period::Week.label(Period::Week.index(day(d))), "2024-W09");
        assert_eq!(Period::Week.start(Period::Week.index(day(d))).weekday(), chrono::Weekday::Mon);
    }
}
