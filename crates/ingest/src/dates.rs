//! Timestamps in the shapes exports use, recognised value by value:
//!
//! | shape | example | notes |
//! |---|---|---|
//! | RFC 3339 | `2025-05-11T13:55:16Z`, `2025-05-11T09:55:16.250-04:00` | |
//! | date | `2025-05-11` | midnight |
//! | date and time | `2025-05-11 09:55:16`, `2025-05-11T09:55`, `2025-05-11 09:55:16 UTC` | |
//! | with an offset (Shopify) | `2025-05-11 09:55:16 -0400` | |
//! | compact date (CDNOW) | `19970101` | eight digits are always a date |
//! | day or month first | `11/05/2025`, `5/11/2025 09:55`, `11.05.2025` | see below |
//! | Unix seconds (Stripe) | `1746971716` | nine to eleven digits |
//!
//! A value without a time zone or offset is read in [`TimestampParser::time_zone`] (UTC unless an option
//! says otherwise); a local time that does not exist there (the hour skipped when clocks go forward) is an
//! error, and an ambiguous one (the hour repeated when clocks go back) takes the earlier instant.
//! A calendar date that does not exist (`2023-02-30`) is an error, never rolled over.
//!
//! **Day or month first.** `a/b/YYYY` is ambiguous. The reader sniffs the first 64 KiB of the file: if some
//! value has `a > 12` the file is day-first, if some value has `b > 12` it is month-first; if the sample does
//! not decide (or decides both ways), day-first, the order of most of the world, unless the caller chose one.
//! `a.b.YYYY` (German style) is always day-first. Whatever the order, a value that does not fit it (a
//! month 13) is a rejected row.

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Which number comes first in a `a/b/YYYY` date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlashDateOrder {
    #[default]
    DayFirst,
    MonthFirst,
}

/// Parses timestamps of any of the shapes above into UTC.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimestampParser {
    pub slash_order: SlashDateOrder,
    /// The zone of values without an offset.
    pub time_zone: Tz,
}

impl Default for TimestampParser {
    fn default() -> Self {
        TimestampParser { slash_order: SlashDateOrder::DayFirst, time_zone: Tz::UTC }
    }
}

const SHAPES: &str = "expected YYYY-MM-DD, YYYY-MM-DD HH:MM:SS with an optional offset, RFC 3339, YYYYMMDD, \
                      DD/MM/YYYY or MM/DD/YYYY, or Unix seconds";

impl TimestampParser {
    /// Parses one value; the error message says what is wrong with it (the caller adds the column name).
    pub fn parse(&self, raw: &str) -> Result<DateTime<Utc>, String> {
        match utc_seconds(raw.as_bytes()) {
            Some(at) => Ok(at),
            None => self.parse_any(raw),
        }
    }

    /// Every shape; [`TimestampParser::parse`] tries the most common one first.
    fn parse_any(&self, raw: &str) -> Result<DateTime<Utc>, String> {
        let s = raw.trim();
        let b = s.as_bytes();
        let unknown = || format!("{s:?} is not a date: {SHAPES}");
        if !b.is_empty() && b.iter().all(u8::is_ascii_digit) {
            return match b.len() {
                8 => {
                    let date = self.date(s, num(&b[0..4]), num(&b[4..6]), num(&b[6..8]))?;
                    self.local(s, date.and_time(NaiveTime::MIN))
                }
                9..=11 => {
                    let seconds: i64 = s.parse().map_err(|_| unknown())?;
                    DateTime::from_timestamp(seconds, 0).ok_or_else(unknown)
                }
                _ => Err(unknown()),
            };
        }
        let (date, rest) = if b.len() >= 10 && b[4] == b'-' && b[7] == b'-' && digits(&b[0..4]) {
            if !digits(&b[5..7]) || !digits(&b[8..10]) {
                return Err(unknown());
            }
            (self.date(s, num(&b[0..4]), num(&b[5..7]), num(&b[8..10]))?, &s[10..])
        } else {
            let end = s.find([' ', 'T']).unwrap_or(s.len());
            let (date_part, rest) = s.split_at(end);
            let separator = if date_part.contains('/') {
                '/'
            } else if date_part.contains('.') {
                '.'
            } else {
                return Err(unknown());
            };
            let mut parts = date_part.split(separator);
            let (Some(a), Some(b2), Some(y), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
                return Err(unknown());
            };
            let ok = |p: &str, lens: std::ops::RangeInclusive<usize>| lens.contains(&p.len()) && digits(p.as_bytes());
            if !ok(a, 1..=2) || !ok(b2, 1..=2) || !ok(y, 4..=4) {
                return Err(unknown());
            }
            let (a, b2, y) = (num(a.as_bytes()), num(b2.as_bytes()), num(y.as_bytes()));
            let (day, month) =
                if separator == '.' || self.slash_order == SlashDateOrder::DayFirst { (a, b2) } else { (b2, a) };
            (self.date(s, y, month, day)?, rest)
        };
        if rest.is_empty() {
            return self.local(s, date.and_time(NaiveTime::MIN));
        }
        let rest = rest.as_bytes();
        if rest[0] != b' ' && rest[0] != b'T' && rest[0] != b't' {
            return Err(unknown());
        }
        let rest = &rest[1..];
        // HH:MM[:SS[.fraction]]
        if rest.len() < 5 || !digits(&rest[0..2]) || rest[2] != b':' || !digits(&rest[3..5]) {
            return Err(unknown());
        }
        let (hour, minute) = (num(&rest[0..2]), num(&rest[3..5]));
        let mut i = 5;
        let mut second = 0;
        let mut nanos = 0u32;
        if rest.len() >= 8 && rest[5] == b':' && digits(&rest[6..8]) {
            second = num(&rest[6..8]);
            i = 8;
            if rest.len() > 8 && (rest[8] == b'.' || rest[8] == b',') {
                i = 9;
                let mut scale = 100_000_000u32;
                while i < rest.len() && rest[i].is_ascii_digit() {
                    nanos += u32::from(rest[i] - b'0') * scale;
                    scale /= 10;
                    i += 1;
                }
            }
        }
        let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)
            .ok_or_else(|| format!("{s:?} is not a time that exists"))?;
        let naive = date.and_time(time);
        let zone = std::str::from_utf8(&rest[i..]).unwrap_or("").trim_start();
        if zone.is_empty() {
            return self.local(s, naive);
        }
        if zone.eq_ignore_ascii_case("z") || zone.eq_ignore_ascii_case("utc") || zone.eq_ignore_ascii_case("gmt") {
            return Ok(naive.and_utc());
        }
        let zb = zone.as_bytes();
        let sign = match zb[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return Err(unknown()),
        };
        let zone_digits: Vec<u8> = zb[1..].iter().copied().filter(|&c| c != b':').collect();
        if !(zone_digits.len() == 4 || zone_digits.len() == 2) || !digits(&zone_digits) {
            return Err(unknown());
        }
        let offset_minutes =
            num(&zone_digits[0..2]) * 60 + if zone_digits.len() == 4 { num(&zone_digits[2..4]) } else { 0 };
        let offset = FixedOffset::east_opt(sign * offset_minutes as i32 * 60)
            .ok_or_else(|| format!("{s:?} has an offset out of range"))?;
        match offset.from_local_datetime(&naive) {
            LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
            _ => Err(unknown()),
        }
    }

    fn date(&self, s: &str, year: u32, month: u32, day: u32) -> Result<NaiveDate, String> {
        NaiveDate::from_ymd_opt(year as i32, month, day).ok_or_else(|| format!("{s:?} is not a date that exists"))
    }

    fn local(&self, s: &str, naive: NaiveDateTime) -> Result<DateTime<Utc>, String> {
        if self.time_zone == Tz::UTC {
            return Ok(naive.and_utc());
        }
        match self.time_zone.from_local_datetime(&naive) {
            LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(earlier, _) => Ok(earlier.with_timezone(&Utc)),
            LocalResult::None => Err(format!("{s:?} does not exist in the time zone {}", self.time_zone.name())),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` exactly (what the generic writer and most APIs write), when it is a date and time
/// that exist; `None` for anything else, which [`TimestampParser::parse_any`] then reads (or refuses) the
/// same way it reads every other shape.
fn utc_seconds(b: &[u8]) -> Option<DateTime<Utc>> {
    let b: &[u8; 20] = b.try_into().ok()?;
    let shape = b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && b[13] == b':'
        && b[16] == b':'
        && matches!(b[19], b'Z' | b'z');
    let at_digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    if !shape || !at_digits.iter().all(|&i| b[i].is_ascii_digit()) {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(num(&b[0..4]) as i32, num(&b[5..7]), num(&b[8..10]))?;
    let time = NaiveTime::from_hms_opt(num(&b[11..13]), num(&b[14..16]), num(&b[17..19]))?;
    Some(date.and_time(time).and_utc())
}

/// Finds evidence of the order of `a/b/YYYY` dates in sampled values: `Some(DayFirst)` when some first
/// number is above 12 and no second number is, `Some(MonthFirst)` for the reverse, `None` when undecided.
pub fn sniff_slash_order<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<SlashDateOrder> {
    let (mut day_first, mut month_first) = (false, false);
    for value in values {
        let v = value.trim();
        let date_part = v.split([' ', 'T']).next().unwrap_or("");
        let mut parts = date_part.split('/');
        let (Some(a), Some(b), Some(y), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if y.len() != 4 || !digits(y.as_bytes()) || !digits(a.as_bytes()) || !digits(b.as_bytes()) {
            continue;
        }
        let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) else { continue };
        day_first |= a > 12 && b <= 12;
        month_first |= b > 12 && a <= 12;
    }
    match (day_first, month_first) {
        (true, false) => Some(SlashDateOrder::DayFirst),
        (false, true) => Some(SlashDateOrder::MonthFirst),
        _ => None,
    }
}

fn digits(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_digit)
}

/// The value of a short run of ASCII digits (checked by the caller).
fn num(b: &[u8]) -> u32 {
    b.iter().fold(0, |n, &d| n * 10 + u32::from(d - b'0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn every_shape_parses_to_the_same_instant() {
        let p = TimestampParser::default();
        let noon = utc("2025-05-11T12:30:00Z");
        for raw in [
            "2025-05-11T12:30:00Z",
            "2025-05-11T14:30:00+02:00",
            "2025-05-11 12:30:00",
            "2025-05-11 12:30",
            "2025-05-11 08:30:00 -0400",
            "2025-05-11 12:30:00 UTC",
            "11/05/2025 12:30",
            "11.05.2025 12:30:00",
            "1746966600",
        ] {
            assert_eq!(p.parse(raw), Ok(noon), "{raw}");
        }
        assert_eq!(p.parse("2025-05-11T12:30:00.250Z").unwrap().timestamp_subsec_millis(), 250);
        assert_eq!(p.parse("19970101"), Ok(utc("1997-01-01T00:00:00Z")));
        assert_eq!(p.parse("2025-05-11"), Ok(utc("2025-05-11T00:00:00Z")));
        let us = TimestampParser { slash_order: SlashDateOrder::MonthFirst, ..p };
        assert_eq!(us.parse("05/11/2025 12:30"), Ok(noon));
    }

    #[test]
    fn the_common_shape_reads_as_every_shape_does() {
        let p = TimestampParser { time_zone: chrono_tz::Europe::Berlin, ..TimestampParser::default() };
        let mut values: Vec<String> = [
            "2025-05-11T12:30:00Z",
            "2025-05-11t12:30:00z",
            "2025-05-11 12:30:00Z",
            "2024-02-29T23:59:59Z",
            "2023-02-29T10:00:00Z",
            "2025-05-11T24:00:00Z",
            "2025-05-11T12:60:00Z",
            "2025-05-11T12:30:60Z",
            "2025-13-11T12:30:00Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "2025-05-11T12:30:00+",
            "2025-05-11X12:30:00Z",
            "2025-05-1a12:30:00Z ",
            "2025-05-11T12:30:0Z",
        ]
        .map(String::from)
        .to_vec();
        for (i, c) in "0123456789-T:Zz +.".chars().enumerate() {
            for at in 0..20 {
                let mut v: Vec<char> = "2025-05-11T12:30:00Z".chars().collect();
                v[(at + i) % 20] = c;
                values.push(v.into_iter().collect());
            }
        }
        for v in &values {
            if let Some(fast) = utc_seconds(v.as_bytes()) {
                assert_eq!(Ok(fast), p.parse_any(v), "{v}");
            }
            assert_eq!(p.parse(v), p.parse_any(v), "{v}");
        }
        assert!(utc_seconds(b"2025-05-11T12:30:00Z").is_some());
    }

    #[test]
    fn dates_that_do_not_exist_are_errors() {
        let p = TimestampParser::default();
        assert!(p.parse("2023-02-30").unwrap_err().contains("not a date that exists"));
        assert!(p.parse("20230230").unwrap_err().contains("not a date that exists"));
        assert!(p.parse("30/02/2023").unwrap_err().contains("not a date that exists"));
        assert!(p.parse("2023-02-03 24:00:00").unwrap_err().contains("time that exists"));
        for bad in ["", "yesterday", "2023-2-3", "2023-02-03X", "12/2023", "2023-02-03 10:00 +5"] {
            assert!(p.parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn naive_times_are_read_in_the_chosen_zone() {
        let berlin = TimestampParser { time_zone: chrono_tz::Europe::Berlin, ..TimestampParser::default() };
        assert_eq!(berlin.parse("2025-05-11 14:30:00"), Ok(utc("2025-05-11T12:30:00Z")));
        assert!(berlin.parse("2025-03-30 02:30:00").unwrap_err().contains("Europe/Berlin"));
        assert_eq!(berlin.parse("2025-10-26 02:30:00"), Ok(utc("2025-10-26T00:30:00Z")));
    }

    #[test]
    fn slash_order_is_sniffed_from_values_above_twelve() {
        assert_eq!(sniff_slash_order(["01/02/2024", "25/02/2024"]), Some(SlashDateOrder::DayFirst));
        assert_eq!(sniff_slash_order(["01/02/2024", "02/25/2024 10:00"]), Some(SlashDateOrder::MonthFirst));
        assert_eq!(sniff_slash_order(["01/02/2024", "x", "2024-01-30"]), None);
        assert_eq!(sniff_slash_order(["13/02/2024", "02/25/2024"]), None);
    }
}
