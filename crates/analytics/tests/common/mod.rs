//! Test helpers: reading the CDNOW files from the repository's test data.
#![allow(dead_code)]

use std::path::PathBuf;

use chrono::NaiveDate;
use regulars_analytics::{LogOptions, TransactionLog, TransactionLogBuilder};

/// Path of a file under `testdata/cdnow`.
pub fn cdnow_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cdnow").join(file)
}

/// Parses "29.33" into 2933 minor units exactly.
pub fn parse_minor(text: &str) -> i64 {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let mut frac = frac.to_string();
    while frac.len() < 2 {
        frac.push('0');
    }
    whole.parse::<i64>().unwrap() * 100 + frac[..2].parse::<i64>().unwrap()
}

/// Loads a CDNOW file; `sample` selects the 5-column sample layout (customer id in column 2).
pub fn load_cdnow(file: &str, options: LogOptions) -> TransactionLog {
    let path = cdnow_path(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("CDNOW test data not found at {}: {e}", path.display()));
    let mut builder = TransactionLogBuilder::new(options);
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() || fields[0].parse::<u64>().is_err() {
            continue; // header
        }
        let (customer, date, dollars) =
            if fields.len() == 5 { (fields[1], fields[2], fields[4]) } else { (fields[0], fields[1], fields[3]) };
        let date = NaiveDate::parse_from_str(date, "%Y%m%d").unwrap();
        builder.push(customer.parse::<u64>().unwrap(), date, parse_minor(dollars)).unwrap();
    }
    builder.build()
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}
