//! The CDNOW files summarised as the papers and `lifetimes` do.

mod common;

use common::{date, load_cdnow};
use regulars_analytics::{LogOptions, TimeUnit, calibration_and_holdout, summarize};

#[test]
fn sample_has_the_published_shape() {
    let log = load_cdnow("CDNOW_sample.txt", LogOptions::default());
    assert_eq!(log.customer_count(), 2357);
    assert_eq!(log.record_count(), 6919);
    let split = calibration_and_holdout(&log, date(1997, 9, 30), date(1998, 6, 30), TimeUnit::Week).unwrap();
    let cal = &split.calibration;
    assert_eq!(cal.len(), 2357);
    assert_eq!(cal.repeat_customers(), 946);
    let max_age = cal.age.iter().cloned().fold(0.0, f64::max);
    assert!((max_age - 38.857).abs() < 1e-3, "T of the earliest customers is 272 days = 38.86 weeks");
}

#[test]
fn master_has_the_documented_counts() {
    let log = load_cdnow("CDNOW_master.txt", LogOptions::default());
    assert_eq!(log.record_count(), 69_659);
    assert_eq!(log.customer_count(), 23_570);
    assert_eq!(log.transaction_count(), 67_591);
    let s = summarize(&log, date(1998, 6, 30), TimeUnit::Week).unwrap();
    assert_eq!(s.len(), 23_570);
    let zero_value = log.amounts().iter().filter(|&&a| a == 0).count();
    assert!(zero_value > 0, "master has zero-value purchases");
}
